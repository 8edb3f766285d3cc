// SPDX-License-Identifier: MIT
// Unit tests for the granter side of grant/gnt.h on a local table (no hv):
// the ref allocator (reserved refs 0-7 never handed out, lowest free first,
// exhaustion), Xen's publish order and end-access compare-and-swap refused
// while GTF_reading/GTF_writing are set (including a race against a thread
// playing the hv's pin CAS), segment frame/address helpers, status codes.
// Mapping and copy framing are tested in check_hvc.c against a fake peer;
// their real behaviour in the twodom integration suite.
#include "grant/gnt.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NR 64u

static struct grant_entry_v1 ents[NR];

static struct gnt_table *local_table(void)
{
	struct gnt_table *t;
	memset(ents, 0, sizeof(ents));
	ck_assert_int_eq(gnt_table_init_local(ents, NR, &t), 0);
	ck_assert_uint_eq(gnt_table_size(t), NR);
	return t;
}

START_TEST(first_ref_is_8_and_reserved_never_given)
{
	struct gnt_table *t = local_table();
	grant_ref_t r;
	for (uint32_t i = GNTTAB_NR_RESERVED_ENTRIES; i < NR; i++) {
		ck_assert_int_eq(gnt_grant_access(t, 5, 100 + i, 0, &r), 0);
		ck_assert_uint_eq(r, i);
	}
	ck_assert_int_eq(gnt_grant_access(t, 5, 1, 0, &r), -ENOSPC);
	for (uint32_t i = 0; i < GNTTAB_NR_RESERVED_ENTRIES; i++)
		ck_assert_uint_eq(ents[i].flags, 0);
	/* Freed refs come back lowest first. */
	ck_assert_int_eq(gnt_end_access(t, 20), 0);
	ck_assert_int_eq(gnt_end_access(t, 12), 0);
	ck_assert_int_eq(gnt_grant_access(t, 5, 7, 0, &r), 0);
	ck_assert_uint_eq(r, 12);
	ck_assert_int_eq(gnt_grant_access(t, 5, 7, 0, &r), 0);
	ck_assert_uint_eq(r, 20);
	ck_assert_int_eq(gnt_grant_access(t, 5, 7, 0, &r), -ENOSPC);
	gnt_table_close(t);
}
END_TEST

START_TEST(publish_writes_xen_v1_entry)
{
	struct gnt_table *t = local_table();
	grant_ref_t r;
	ck_assert_int_eq(gnt_grant_access(t, 7, 0x12345, 0, &r), 0);
	ck_assert_uint_eq(ents[r].flags, GTF_permit_access);
	ck_assert_uint_eq(ents[r].domid, 7);
	ck_assert_uint_eq(ents[r].frame, 0x12345);
	ck_assert_int_eq(gnt_grant_access(t, 9, 42, 1, &r), 0);
	ck_assert_uint_eq(ents[r].flags, GTF_permit_access | GTF_readonly);
	uint16_t f;
	ck_assert_int_eq(gnt_entry_flags(t, r, &f), 0);
	ck_assert_uint_eq(f, GTF_permit_access | GTF_readonly);
	ck_assert_int_eq(gnt_end_access(t, r), 0);
	ck_assert_uint_eq(ents[r].flags, 0);
	gnt_table_close(t);
}
END_TEST

START_TEST(end_access_refused_while_mapped)
{
	struct gnt_table *t = local_table();
	grant_ref_t r;
	ck_assert_int_eq(gnt_grant_access(t, 7, 1, 0, &r), 0);
	ents[r].flags |= GTF_reading; /* what the hv's map does */
	ck_assert_int_eq(gnt_end_access(t, r), -EBUSY);
	ents[r].flags |= GTF_writing;
	ck_assert_int_eq(gnt_end_access(t, r), -EBUSY);
	ents[r].flags &= (uint16_t)~GTF_reading;
	ck_assert_int_eq(gnt_end_access(t, r), -EBUSY);
	/* Still granted and still allocated: no other grant got this ref. */
	ck_assert_uint_eq(ents[r].flags & GTF_type_mask, GTF_permit_access);
	grant_ref_t r2;
	ck_assert_int_eq(gnt_grant_access(t, 7, 2, 0, &r2), 0);
	ck_assert_uint_ne(r2, r);
	ents[r].flags &= (uint16_t)~GTF_writing; /* the last unmap */
	ck_assert_int_eq(gnt_end_access(t, r), 0);
	ck_assert_uint_eq(ents[r].flags, 0);
	gnt_table_close(t);
}
END_TEST

START_TEST(bad_refs_rejected)
{
	struct gnt_table *t = local_table();
	for (grant_ref_t r = 0; r < GNTTAB_NR_RESERVED_ENTRIES; r++)
		ck_assert_int_eq(gnt_end_access(t, r), -EINVAL);
	ck_assert_int_eq(gnt_end_access(t, NR), -EINVAL);
	ck_assert_int_eq(gnt_end_access(t, 0xFFFFFFFFu), -EINVAL);
	ck_assert_int_eq(gnt_end_access(t, 30), -EINVAL); /* never allocated */
	ck_assert_int_eq(gnt_ref_release(t, 30), -EINVAL);
	ck_assert_int_eq(gnt_ref_release(t, 1), -EINVAL);
	grant_ref_t r;
	ck_assert_int_eq(gnt_grant_access(t, 3, 3, 0, &r), 0);
	ck_assert_int_eq(gnt_end_access(t, r), 0);
	ck_assert_int_eq(gnt_end_access(t, r), -EINVAL); /* twice */
	uint16_t f;
	ck_assert_int_eq(gnt_entry_flags(t, NR, &f), -EINVAL);
	ck_assert_int_eq(gnt_entry_publish(t, NR, 1, 1, 0), -EINVAL);
	struct gnt_table *t2;
	ck_assert_int_eq(gnt_table_init_local(ents, GNTTAB_NR_RESERVED_ENTRIES, &t2), -EINVAL);
	ck_assert_int_eq(gnt_table_init_local(NULL, NR, &t2), -EINVAL);
	gnt_table_close(t);
}
END_TEST

START_TEST(reserved_ref_publish_and_overwrite_refused)
{
	struct gnt_table *t = local_table();
	/* A toolstack fills the xenstore ref itself with the raw calls. */
	ck_assert_int_eq(gnt_entry_publish(t, GNTTAB_RESERVED_XENSTORE, 0, 77, 0), 0);
	ck_assert_uint_eq(ents[1].frame, 77);
	ck_assert_int_eq(gnt_entry_publish(t, GNTTAB_RESERVED_XENSTORE, 0, 78, 0), -EBUSY);
	ck_assert_uint_eq(ents[1].frame, 77);
	ck_assert_int_eq(gnt_entry_end(t, GNTTAB_RESERVED_XENSTORE), 0);
	ck_assert_int_eq(gnt_entry_publish(t, GNTTAB_RESERVED_XENSTORE, 0, 78, 0), 0);
	grant_ref_t r;
	ck_assert_int_eq(gnt_ref_claim(t, &r), 0);
	ck_assert_uint_eq(r, 8);
	ck_assert_uint_eq(ents[8].flags, 0);
	ck_assert_int_eq(gnt_ref_release(t, r), 0);
	gnt_table_close(t);
}
END_TEST

/* A thread plays the hv: pin = CAS on the (flags, domid) word adding
 * GTF_reading only if the entry permits access to domid 7; unpin clears it.
 * The granter ends access concurrently. Once end access succeeded, no pin
 * may ever succeed again, and end access never succeeds while pinned. */
struct race {
	_Atomic uint32_t *word;
	atomic_int ended;
	atomic_int pinned;
	atomic_int pins_after_end;
	atomic_int stop;
};

static void *hv_pinner(void *p)
{
	struct race *rc = p;
	while (!atomic_load(&rc->stop)) {
		uint32_t old = atomic_load(rc->word);
		uint16_t flags = (uint16_t)(old & 0xFFFF);
		if ((flags & GTF_type_mask) != GTF_permit_access || (old >> 16) != 7)
			continue;
		uint32_t nw = old | GTF_reading;
		if (atomic_compare_exchange_strong(rc->word, &old, nw)) {
			if (atomic_load(&rc->ended))
				atomic_fetch_add(&rc->pins_after_end, 1);
			atomic_store(&rc->pinned, 1);
			for (volatile int i = 0; i < 50; i++)
				;
			atomic_store(&rc->pinned, 0);
			atomic_fetch_and(rc->word, ~(uint32_t)GTF_reading);
		}
	}
	return NULL;
}

START_TEST(end_access_races_hv_pin)
{
	struct gnt_table *t = local_table();
	for (int round = 0; round < 2000; round++) {
		grant_ref_t r;
		ck_assert_int_eq(gnt_grant_access(t, 7, 5, 0, &r), 0);
		struct race rc = {.word = (_Atomic uint32_t *)(void *)&ents[r]};
		pthread_t th;
		pthread_create(&th, NULL, hv_pinner, &rc);
		int ret;
		while ((ret = gnt_end_access(t, r)) == -EBUSY)
			;
		ck_assert_int_eq(ret, 0);
		atomic_store(&rc.ended, 1);
		ck_assert_int_eq(atomic_load(&rc.pinned), 0);
		for (volatile int i = 0; i < 200; i++)
			;
		atomic_store(&rc.stop, 1);
		pthread_join(th, NULL);
		ck_assert_int_eq(atomic_load(&rc.pins_after_end), 0);
		ck_assert_uint_eq(ents[r].flags, 0);
	}
	gnt_table_close(t);
}
END_TEST

START_TEST(seg_helpers)
{
	static char buf[5 * HV_PAGE_SIZE];
	char *mem = buf + HV_PAGE_SIZE;
	struct gnt_seg seg = {.peer = 3, .id = 1, .first_frame = 100, .npages = 4, .base = mem};
	ck_assert_ptr_eq(gnt_seg_page(&seg, 0), mem);
	ck_assert_ptr_eq(gnt_seg_page(&seg, 3), mem + 3 * HV_PAGE_SIZE);
	ck_assert_ptr_null(gnt_seg_page(&seg, 4));
	ck_assert_uint_eq(gnt_seg_frame(&seg, 2), 102);
	uint32_t f;
	ck_assert_int_eq(gnt_seg_addr_to_frame(&seg, mem + HV_PAGE_SIZE + 17, &f), 0);
	ck_assert_uint_eq(f, 101);
	ck_assert_int_eq(gnt_seg_addr_to_frame(&seg, mem + 4 * HV_PAGE_SIZE, &f), -EFAULT);
	ck_assert_int_eq(gnt_seg_addr_to_frame(&seg, mem - 1, &f), -EFAULT);
	ck_assert_ptr_eq(gnt_seg_frame_to_addr(&seg, 103), mem + 3 * HV_PAGE_SIZE);
	ck_assert_ptr_null(gnt_seg_frame_to_addr(&seg, 104));
	ck_assert_ptr_null(gnt_seg_frame_to_addr(&seg, 99));
}
END_TEST

START_TEST(status_codes)
{
	ck_assert_int_eq(gnt_status_errno(GNTST_okay), 0);
	ck_assert_int_eq(gnt_status_errno(GNTST_bad_domain), -ESRCH);
	ck_assert_int_eq(gnt_status_errno(GNTST_bad_gntref), -EINVAL);
	ck_assert_int_eq(gnt_status_errno(GNTST_permission_denied), -EPERM);
	ck_assert_int_eq(gnt_status_errno(GNTST_no_space), -ENOSPC);
	ck_assert_int_eq(gnt_status_errno(-99), -EIO);
}
END_TEST

Suite *grant_suite(void);
Suite *grant_suite(void)
{
	Suite *s = suite_create("grant");
	TCase *tc = tcase_create("table");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, first_ref_is_8_and_reserved_never_given);
	tcase_add_test(tc, publish_writes_xen_v1_entry);
	tcase_add_test(tc, end_access_refused_while_mapped);
	tcase_add_test(tc, bad_refs_rejected);
	tcase_add_test(tc, reserved_ref_publish_and_overwrite_refused);
	tcase_add_test(tc, end_access_races_hv_pin);
	suite_add_tcase(s, tc);
	tc = tcase_create("helpers");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, seg_helpers);
	tcase_add_test(tc, status_codes);
	suite_add_tcase(s, tc);
	return s;
}
