// SPDX-License-Identifier: MIT
// The granter's grant table (see grant/gnt.h): Xen v1 entries in memory the
// hv shares with us (GNTTAB_SETUP memfd), written directly with Xen's
// barrier discipline, and a lowest-free-first ref allocator that never hands
// out the reserved refs 0-7. The hv sets GTF_reading/GTF_writing with a
// CAS on the (flags, domid) word when a grantee maps an entry and clears
// them on the last unmap (or when the grantee dies).
#include "grant/gnt.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hv/hvc_internal.h"

/* The most entries we accept from the hv: 2^20 (8 MiB of table). */
#define GNT_TABLE_MAX (1u << 20)

struct gnt_table {
	struct hvc *h;	/* NULL for a local table, or after hvc_close */
	unsigned users; /* gnt_table_open calls not yet closed (under lock) */
	struct grant_entry_v1 *e;
	uint32_t nr;
	size_t map_len; /* 0 if the memory is the caller's */
	pthread_mutex_t lock;
	uint64_t *used; /* allocator bitmap: 1 = ref taken */
	uint32_t hint;	/* no free ref below this */
};

static int table_new(struct grant_entry_v1 *e, uint32_t nr, size_t map_len, struct gnt_table **out)
{
	if (nr <= GNTTAB_NR_RESERVED_ENTRIES || nr > GNT_TABLE_MAX)
		return -EINVAL;
	struct gnt_table *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->used = calloc((nr + 63) / 64, sizeof(uint64_t));
	if (!t->used) {
		free(t);
		return -ENOMEM;
	}
	t->e = e;
	t->users = 1;
	t->nr = nr;
	t->map_len = map_len;
	pthread_mutex_init(&t->lock, NULL);
	for (uint32_t r = 0; r < GNTTAB_NR_RESERVED_ENTRIES; r++)
		t->used[r / 64] |= 1ull << (r % 64);
	t->hint = GNTTAB_NR_RESERVED_ENTRIES;
	*out = t;
	return 0;
}

int gnt_table_init_local(void *entries, uint32_t nr_entries, struct gnt_table **out)
{
	if (!entries)
		return -EINVAL;
	return table_new(entries, nr_entries, 0, out);
}

static int table_open_new(struct hvc *h, uint32_t nr_entries, struct gnt_table **out)
{
	struct hv_gnttab_setup_req req = {.nr_entries = nr_entries};
	struct hv_gnttab_setup_rep rep;
	int fd = -1;
	struct hvc_msg m = {.op = HV_OP_GNTTAB_SETUP,
			    .req = &req,
			    .req_len = sizeof(req),
			    .rep = &rep,
			    .rep_cap = sizeof(rep),
			    .rfds = &fd,
			    .rfds_cap = 1};
	int ret = hvc_call_exact(h, &m);
	if (ret < 0)
		return ret;
	/* The hv's table has a fixed size, possibly larger than asked. */
	if (rep.nr_entries <= GNTTAB_NR_RESERVED_ENTRIES || rep.nr_entries > GNT_TABLE_MAX) {
		close(fd);
		return -EPROTO;
	}
	size_t len = ((size_t)rep.nr_entries * sizeof(struct grant_entry_v1) + HV_PAGE_SIZE - 1) &
		     ~(size_t)(HV_PAGE_SIZE - 1);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int err = errno;
	close(fd);
	if (p == MAP_FAILED)
		return -err;
	ret = table_new(p, rep.nr_entries, len, out);
	if (ret < 0)
		munmap(p, len);
	else
		(*out)->h = h;
	return ret;
}

/* hvc_close with the table still open: it keeps working, alone. */
static void table_detach(struct gnt_table *t)
{
	t->h = NULL;
}

int gnt_table_open(struct hvc *h, uint32_t nr_entries, struct gnt_table **out)
{
	int ret = 0;
	/* One table per domain: a second opener (say netfront beside blkfront
	 * in one guest) shares the first one's, allocator included, so two
	 * users can never be handed the same ref. */
	pthread_mutex_lock(&h->gnt_lock);
	if (!h->gnt_table) {
		ret = table_open_new(h, nr_entries, &h->gnt_table);
		h->gnt_table_detach = table_detach;
	} else {
		pthread_mutex_lock(&h->gnt_table->lock);
		h->gnt_table->users++;
		pthread_mutex_unlock(&h->gnt_table->lock);
	}
	if (ret == 0)
		*out = h->gnt_table;
	pthread_mutex_unlock(&h->gnt_lock);
	return ret;
}

void gnt_table_close(struct gnt_table *t)
{
	if (!t)
		return;
	struct hvc *h = t->h;
	if (h)
		pthread_mutex_lock(&h->gnt_lock);
	pthread_mutex_lock(&t->lock);
	bool last = --t->users == 0;
	pthread_mutex_unlock(&t->lock);
	if (h && last && h->gnt_table == t)
		h->gnt_table = NULL;
	if (h)
		pthread_mutex_unlock(&h->gnt_lock);
	if (!last)
		return;
	if (t->map_len)
		munmap(t->e, t->map_len);
	pthread_mutex_destroy(&t->lock);
	free(t->used);
	free(t);
}

uint32_t gnt_table_size(const struct gnt_table *t)
{
	return t->nr;
}

/* --- allocator ------------------------------------------------------------------ */

int gnt_ref_claim(struct gnt_table *t, grant_ref_t *ref)
{
	int ret = -ENOSPC;
	pthread_mutex_lock(&t->lock);
	uint32_t words = (t->nr + 63) / 64;
	for (uint32_t w = t->hint / 64; w < words; w++) {
		uint64_t free_bits = ~t->used[w];
		if (w == t->hint / 64)
			free_bits &= ~0ull << (t->hint % 64);
		if (!free_bits)
			continue;
		uint32_t r = w * 64 + (uint32_t)__builtin_ctzll(free_bits);
		if (r >= t->nr)
			break;
		t->used[w] |= 1ull << (r % 64);
		t->hint = r + 1;
		*ref = r;
		ret = 0;
		break;
	}
	if (ret < 0)
		t->hint = t->nr;
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int gnt_ref_release(struct gnt_table *t, grant_ref_t ref)
{
	if (ref < GNTTAB_NR_RESERVED_ENTRIES || ref >= t->nr)
		return -EINVAL;
	int ret = 0;
	pthread_mutex_lock(&t->lock);
	uint64_t b = 1ull << (ref % 64);
	if (!(t->used[ref / 64] & b)) {
		ret = -EINVAL;
	} else {
		t->used[ref / 64] &= ~b;
		if (ref < t->hint)
			t->hint = ref;
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

static bool ref_taken(struct gnt_table *t, grant_ref_t ref)
{
	pthread_mutex_lock(&t->lock);
	bool r = t->used[ref / 64] & (1ull << (ref % 64));
	pthread_mutex_unlock(&t->lock);
	return r;
}

/* --- entries ---------------------------------------------------------------------- */

int gnt_entry_publish(struct gnt_table *t, grant_ref_t ref, domid_t domid, uint32_t frame,
		      int readonly)
{
	if (ref >= t->nr)
		return -EINVAL;
	struct grant_entry_v1 *e = &t->e[ref];
	if (__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & GTF_type_mask)
		return -EBUSY;
	/* The hv reads domid and frame only after seeing GTF_permit_access in
	 * flags (its acquire CAS); this release store of flags pairs with it. */
	__atomic_store_n(&e->domid, domid, __ATOMIC_RELAXED);
	__atomic_store_n(&e->frame, frame, __ATOMIC_RELAXED);
	__atomic_store_n(&e->flags, (uint16_t)(GTF_permit_access | (readonly ? GTF_readonly : 0)),
			 __ATOMIC_RELEASE);
	return 0;
}

int gnt_entry_end(struct gnt_table *t, grant_ref_t ref)
{
	if (ref >= t->nr)
		return -EINVAL;
	uint16_t *pf = &t->e[ref].flags;
	uint16_t flags = __atomic_load_n(pf, __ATOMIC_ACQUIRE);
	do {
		if (flags & (GTF_reading | GTF_writing))
			return -EBUSY;
		/* acq_rel: a success orders our later reuse of the frame after
		 * the hv's clearing of the status bits (its release). */
	} while (
	    !__atomic_compare_exchange_n(pf, &flags, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	return 0;
}

int gnt_grant_access(struct gnt_table *t, domid_t domid, uint32_t frame, int readonly,
		     grant_ref_t *ref)
{
	grant_ref_t r;
	int ret = gnt_ref_claim(t, &r);
	if (ret < 0)
		return ret;
	ret = gnt_entry_publish(t, r, domid, frame, readonly);
	if (ret < 0) {
		gnt_ref_release(t, r);
		return ret;
	}
	*ref = r;
	return 0;
}

int gnt_end_access(struct gnt_table *t, grant_ref_t ref)
{
	if (ref < GNTTAB_NR_RESERVED_ENTRIES || ref >= t->nr || !ref_taken(t, ref))
		return -EINVAL;
	int ret = gnt_entry_end(t, ref);
	if (ret < 0)
		return ret;
	return gnt_ref_release(t, ref);
}

int gnt_entry_flags(const struct gnt_table *t, grant_ref_t ref, uint16_t *flags)
{
	if (ref >= t->nr)
		return -EINVAL;
	*flags = __atomic_load_n(&t->e[ref].flags, __ATOMIC_ACQUIRE);
	return 0;
}
