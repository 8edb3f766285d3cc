// SPDX-License-Identifier: MIT
// Suite hv_call: the hv's hypercall decoder (hv/hv_call.c) without
// processes. Every op's well-formed payload passes; each malformed shape
// (short header, length field, truncation, unknown op, nonzero ret, fds,
// fixed sizes, batch counts, create strings) is refused with -EBADMSG; the
// name and grant-copy argument checks refuse what they must. A second case
// races the hv's map path (hv/hv_grant.c, in-process with two fake domains)
// against a granter thread that ends access and reuses the frame, the way a
// domain does in its own memory: a map never yields a frame the granter had
// already taken back, and end-access never succeeds while a map holds it.
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hv/hv_internal.h"

static uint8_t msg[HV_MSG_MAX + 16];

/* Build a datagram: header (len = payload bytes) + payload; returns size. */
static size_t mk(uint32_t op, const void *payload, uint32_t len)
{
	struct hv_hdr h = {.op = op, .id = 5, .len = len, .ret = 0};
	memcpy(msg, &h, sizeof(h));
	if (len)
		memcpy(msg + sizeof(h), payload, len);
	return sizeof(h) + len;
}

static int check(size_t size, unsigned nfds, const char **why)
{
	const struct hv_op_desc *d;
	const char *w = NULL;
	int r = hv_call_check(msg, size, nfds, false, &d, &w);
	if (why)
		*why = w;
	if (r == 0)
		ck_assert_ptr_nonnull(d);
	else
		ck_assert_ptr_nonnull(w);
	return r;
}

struct fixed_case {
	uint32_t op;
	uint32_t len;
	unsigned nfds;
};
static const struct fixed_case fixed[] = {
    {HV_OP_DOMAIN_INFO, sizeof(struct hv_domain_info_req), 0},
    {HV_OP_SEG_ALLOC, sizeof(struct hv_seg_alloc_req), 0},
    {HV_OP_SEG_FREE, sizeof(struct hv_seg_free_req), 0},
    {HV_OP_GNTTAB_SETUP, sizeof(struct hv_gnttab_setup_req), 0},
    {HV_OP_EVTCHN_ALLOC_UNBOUND, sizeof(struct hv_evtchn_alloc_unbound_req), 0},
    {HV_OP_EVTCHN_BIND_INTERDOMAIN, sizeof(struct hv_evtchn_bind_interdomain_req), 0},
    {HV_OP_EVTCHN_CLOSE, sizeof(struct hv_evtchn_close_req), 0},
    {HV_OP_EVTCHN_STATUS, sizeof(struct hv_evtchn_status_req), 0},
    {HV_OP_DEVICE_GET, sizeof(struct hv_device_req), 0},
    {HV_OP_HEARTBEAT, 0, 0},
    {HV_OP_STORE_SEG, 0, 0},
    {HV_OP_WATCHDOG_STALL, sizeof(struct hv_watchdog_stall_req), 0},
    {HV_OP_DOMCTL_DESTROY, sizeof(struct hv_domid_req), 0},
    {HV_OP_DOMCTL_PAUSE, sizeof(struct hv_domid_req), 0},
    {HV_OP_DOMCTL_UNPAUSE, sizeof(struct hv_domid_req), 0},
    {HV_OP_DOMCTL_KILL, sizeof(struct hv_domid_req), 0},
    {HV_OP_DOMCTL_ASSIGN_DEVICE, sizeof(struct hv_assign_device_req), 1},
    {HV_OP_DOMCTL_REVOKE_DEVICE, sizeof(struct hv_assign_device_req), 0},
    {HV_OP_DOMCTL_LIST, 0, 0},
    {HV_OP_DOMCTL_SUBSCRIBE, 0, 0},
    {HV_OP_DOMCTL_SET_POLICY, sizeof(struct hv_policy_req), 0},
    {HV_OP_DOMCTL_SET_AFFINITY, sizeof(struct hv_affinity_req), 0},
};
#define NFIXED (sizeof(fixed) / sizeof(fixed[0]))

/* Each fixed-size op: exact size passes; one byte less or more, a missing
 * or an extra fd, a nonzero ret are malformed. */
START_TEST(test_fixed_ops)
{
	const struct fixed_case *c = &fixed[_i];
	uint8_t zero[256] = {0};
	const char *why;
	ck_assert_int_eq(check(mk(c->op, zero, c->len), c->nfds, NULL), 0);
	if (c->len) {
		ck_assert_int_eq(check(mk(c->op, zero, c->len - 1), c->nfds, &why), -EBADMSG);
		ck_assert_str_eq(why, "payload size wrong for the op");
	}
	ck_assert_int_eq(check(mk(c->op, zero, c->len + 1), c->nfds, &why), -EBADMSG);
	ck_assert_str_eq(why, "payload size wrong for the op");
	ck_assert_int_eq(check(mk(c->op, zero, c->len), c->nfds + 1, &why), -EBADMSG);
	ck_assert_str_eq(why, "unexpected fds");
	if (c->nfds) {
		ck_assert_int_eq(check(mk(c->op, zero, c->len), 0, &why), -EBADMSG);
		ck_assert_str_eq(why, "missing fd");
	}
	size_t n = mk(c->op, zero, c->len);
	((struct hv_hdr *)msg)->ret = -1;
	ck_assert_int_eq(check(n, c->nfds, &why), -EBADMSG);
	ck_assert_str_eq(why, "nonzero ret in a request");
}
END_TEST

START_TEST(test_dom0_only_flags)
{
	ck_assert(!hv_call_desc(HV_OP_DOMAIN_INFO)->dom0_only);
	ck_assert(!hv_call_desc(HV_OP_GNT_MAP)->dom0_only);
	ck_assert(hv_call_desc(HV_OP_DOMCTL_CREATE)->dom0_only);
	ck_assert(hv_call_desc(HV_OP_DOMCTL_REVOKE_DEVICE)->dom0_only);
	ck_assert(hv_call_desc(HV_OP_DOMCTL_SET_POLICY)->dom0_only);
	ck_assert(hv_call_desc(HV_OP_DOMCTL_SET_AFFINITY)->dom0_only);
	ck_assert(hv_call_desc(HV_OP_DOMCTL_ASSIGN_DEVICE)->dom0_only);
	ck_assert(hv_call_desc(HV_OP_DOMCTL_SUBSCRIBE)->dom0_only);
	ck_assert_ptr_null(hv_call_desc(0));
	ck_assert_ptr_null(hv_call_desc(HV_EVT_PORT_BOUND));
}
END_TEST

START_TEST(test_header)
{
	const char *why;
	const struct hv_op_desc *d;
	mk(HV_OP_HEARTBEAT, NULL, 0);
	ck_assert_int_eq(check(sizeof(struct hv_hdr) - 1, 0, &why), -EBADMSG);
	ck_assert_str_eq(why, "shorter than the header");
	ck_assert_int_eq(check(0, 0, &why), -EBADMSG);
	/* len says more, or less, than the datagram holds */
	mk(HV_OP_HEARTBEAT, NULL, 0);
	((struct hv_hdr *)msg)->len = 4;
	ck_assert_int_eq(check(sizeof(struct hv_hdr), 0, &why), -EBADMSG);
	ck_assert_str_eq(why, "length field disagrees with the datagram size");
	uint8_t z[8] = {0};
	mk(HV_OP_DOMAIN_INFO, z, 8);
	((struct hv_hdr *)msg)->len = 4;
	ck_assert_int_eq(check(sizeof(struct hv_hdr) + 8, 0, &why), -EBADMSG);
	/* unknown op, event ops sent as requests */
	mk(999, NULL, 0);
	ck_assert_int_eq(check(sizeof(struct hv_hdr), 0, &why), -EBADMSG);
	ck_assert_str_eq(why, "unknown op");
	mk(HV_EVT_DOMAIN_EXIT, NULL, 0);
	ck_assert_int_eq(check(sizeof(struct hv_hdr), 0, &why), -EBADMSG);
	/* truncated by the kernel (too big, or fds cut off) */
	size_t n = mk(HV_OP_HEARTBEAT, NULL, 0);
	ck_assert_int_eq(hv_call_check(msg, n, 0, true, &d, &why), -EBADMSG);
	ck_assert_str_eq(why, "message or its fds truncated (too large)");
}
END_TEST

struct batch_case {
	uint32_t op, fixed, elem, max;
};
static const struct batch_case batches[] = {
    {HV_OP_GNT_MAP, 4, sizeof(struct hv_gnt_map_op), HV_BATCH_MAX},
    {HV_OP_GNT_UNMAP, 4, 4, HV_BATCH_MAX},
    {HV_OP_GNT_COPY, 8, sizeof(struct hv_gnt_copy), HV_COPY_BATCH_MAX},
};

static size_t mk_batch(const struct batch_case *b, uint32_t count, uint32_t elems, int extra)
{
	static uint8_t p[HV_MSG_MAX];
	memset(p, 0, sizeof(p));
	memcpy(p, &count, 4);
	return mk(b->op, p, (uint32_t)((int)(b->fixed + elems * b->elem) + extra));
}

START_TEST(test_batches)
{
	const struct batch_case *b = &batches[_i];
	const char *why;
	ck_assert_int_eq(check(mk_batch(b, 0, 0, 0), 0, NULL), 0);
	ck_assert_int_eq(check(mk_batch(b, 1, 1, 0), 0, NULL), 0);
	ck_assert_int_eq(check(mk_batch(b, b->max, b->max, 0), 0, NULL), 0);
	ck_assert_int_eq(check(mk_batch(b, b->max + 1, b->max + 1, 0), 0, &why), -EBADMSG);
	ck_assert_str_eq(why, "batch larger than the op allows");
	ck_assert_int_eq(check(mk_batch(b, 2, 1, 0), 0, &why), -EBADMSG);
	ck_assert_str_eq(why, "payload size disagrees with its count");
	ck_assert_int_eq(check(mk_batch(b, 1, 2, 0), 0, &why), -EBADMSG);
	ck_assert_int_eq(check(mk_batch(b, 1, 1, 1), 0, &why), -EBADMSG);
	ck_assert_int_eq(check(mk_batch(b, 1, 1, -1), 0, &why), -EBADMSG);
	ck_assert_int_eq(check(mk(b->op, "\0\0", 2), 0, &why), -EBADMSG);
	ck_assert_str_eq(why, "payload shorter than its count");
	ck_assert_int_eq(check(mk_batch(b, UINT32_MAX, 1, 0), 0, &why), -EBADMSG);
	ck_assert_int_eq(check(mk_batch(b, 1, 1, 0), 1, &why), -EBADMSG);
	ck_assert_str_eq(why, "unexpected fds");
}
END_TEST

static size_t mk_create(uint32_t nr, const char *strs, size_t slen)
{
	static uint8_t p[HV_MSG_MAX];
	struct hv_create_req q = {.nr_strings = nr};
	strcpy(q.name, "dom");
	memcpy(p, &q, sizeof(q));
	memcpy(p + sizeof(q), strs, slen);
	return mk(HV_OP_DOMCTL_CREATE, p, (uint32_t)(sizeof(q) + slen));
}

START_TEST(test_create_strings)
{
	const char *why;
	const char *strs[8];
	ck_assert_int_eq(check(mk_create(1, "/k", 3), 0, NULL), 0);
	ck_assert_int_eq(check(mk_create(3, "/k\0a\0b", 7), 0, NULL), 0);
	ck_assert_int_eq(hv_call_create_strings(msg + 16, ((struct hv_hdr *)msg)->len, strs, 8), 0);
	ck_assert_str_eq(strs[0], "/k");
	ck_assert_str_eq(strs[2], "b");
	ck_assert_int_eq(check(mk_create(3, "/k\0\0\0", 5), 0, NULL), 0); /* empty args are fine */
	/* no strings, too few, too many, unterminated, trailing bytes, no payload */
	ck_assert_int_eq(check(mk_create(0, "", 0), 0, &why), -EBADMSG);
	ck_assert_str_eq(why, "strings do not fill the payload");
	ck_assert_int_eq(check(mk_create(1, "", 0), 0, &why), -EBADMSG);
	ck_assert_int_eq(check(mk_create(2, "/k", 3), 0, &why), -EBADMSG);
	ck_assert_int_eq(check(mk_create(1, "/k\0a", 5), 0, &why), -EBADMSG);
	ck_assert_int_eq(check(mk_create(1, "/k", 2), 0, &why), -EBADMSG);
	ck_assert_int_eq(check(mk_create(1, "/k\0", 4), 0, &why), -EBADMSG);
	ck_assert_int_eq(check(mk_create(100000, "/k", 3), 0, &why), -EBADMSG);
	ck_assert_int_eq(check(mk(HV_OP_DOMCTL_CREATE, "x", 1), 0, &why), -EBADMSG);
	ck_assert_int_eq(check(mk_create(1, "/k", 3), 1, &why), -EBADMSG);
	ck_assert_int_eq(hv_call_create_strings(msg + 16, 10, strs, 8), -EBADMSG);
	ck_assert_int_eq(check(mk_create(3, "/k\0a\0b", 7), 0, NULL), 0);
	ck_assert_int_eq(hv_call_create_strings(msg + 16, ((struct hv_hdr *)msg)->len, strs, 2),
			 -EBADMSG);
}
END_TEST

/* DOMCTL_CREATE with HV_CREATE_F_POLICY: a policy between the fixed part
 * and the strings (docs/recovery.md). */
START_TEST(test_create_policy)
{
	struct hv_create_req r = {.flags = HV_CREATE_F_POLICY, .nr_strings = 1};
	uint8_t p[sizeof(r) + sizeof(struct hv_policy_req) + 3];
	memset(p, 0, sizeof(p));
	memcpy(p, &r, sizeof(r));
	memcpy(p + sizeof(r) + sizeof(struct hv_policy_req), "/k", 3);
	const char *strs[4], *why;
	ck_assert_int_eq(check(mk(HV_OP_DOMCTL_CREATE, p, sizeof(p)), 0, &why), 0);
	ck_assert_int_eq(hv_call_create_strings(p, sizeof(p), strs, 4), 0);
	ck_assert_str_eq(strs[0], "/k");
	/* the flag without the policy bytes */
	uint8_t q[sizeof(r) + 3];
	memcpy(q, &r, sizeof(r));
	memcpy(q + sizeof(r), "/k", 3);
	ck_assert_int_eq(check(mk(HV_OP_DOMCTL_CREATE, q, sizeof(q)), 0, &why), -EBADMSG);
	/* the policy bytes without the flag: they do not parse as strings */
	r.flags = 0;
	memcpy(p, &r, sizeof(r));
	ck_assert_int_eq(check(mk(HV_OP_DOMCTL_CREATE, p, sizeof(p)), 0, &why), -EBADMSG);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_int_eq(hv_call_name_check("blk-dom_1.x", HV_NAME_MAX), 0);
	ck_assert_int_eq(hv_call_name_check("", HV_NAME_MAX), -EINVAL);
	ck_assert_int_eq(hv_call_name_check("a/b", HV_NAME_MAX), -EINVAL);
	ck_assert_int_eq(hv_call_name_check("..", HV_NAME_MAX), -EINVAL);
	ck_assert_int_eq(hv_call_name_check(".hidden", HV_NAME_MAX), -EINVAL);
	ck_assert_int_eq(hv_call_devname_check("vbd/3/51712", HV_DEVNAME_MAX), 0);
	ck_assert_int_eq(hv_call_devname_check("nic/phys0", HV_DEVNAME_MAX), 0);
	ck_assert_int_eq(hv_call_devname_check("vbd//1", HV_DEVNAME_MAX), -EINVAL);
	ck_assert_int_eq(hv_call_devname_check("/vbd", HV_DEVNAME_MAX), -EINVAL);
	ck_assert_int_eq(hv_call_devname_check("vbd/", HV_DEVNAME_MAX), -EINVAL);
	ck_assert_int_eq(hv_call_devname_check("vbd/../x", HV_DEVNAME_MAX), -EINVAL);
	ck_assert_int_eq(hv_call_name_check("sp ace", HV_NAME_MAX), -EINVAL);
	ck_assert_int_eq(hv_call_name_check("nl\n", HV_NAME_MAX), -EINVAL);
	char full[HV_NAME_MAX];
	memset(full, 'a', sizeof(full)); /* no NUL inside the field */
	ck_assert_int_eq(hv_call_name_check(full, sizeof(full)), -EINVAL);
	full[HV_NAME_MAX - 1] = 0;
	ck_assert_int_eq(hv_call_name_check(full, sizeof(full)), 0);
}
END_TEST

START_TEST(test_copy_fits)
{
	ck_assert(hv_call_copy_fits(0, HV_PAGE_SIZE));
	ck_assert(hv_call_copy_fits(4000, 96));
	ck_assert(hv_call_copy_fits(HV_PAGE_SIZE, 0));
	ck_assert(!hv_call_copy_fits(4000, 97));
	ck_assert(!hv_call_copy_fits(1, HV_PAGE_SIZE));
	ck_assert(!hv_call_copy_fits(UINT16_MAX, UINT16_MAX));
	ck_assert(!hv_call_copy_fits(0, HV_PAGE_SIZE + 1));
}
END_TEST

/* --- grant pins against a live granter -------------------------------------- */

/* What hv_grant.c needs from the rest of the daemon. */
struct hv hv;
struct hv_dom *hv_dom_get(domid_t domid)
{
	return domid < DOMID_FIRST_FREE ? hv.doms[domid] : NULL;
}

#define RACE_GRANTER 1
#define RACE_MAPPER 5
#define RACE_REF 8
#define RACE_ROUNDS 50000
#define RACE_SECONDS 5 /* bound the time on a loaded machine */

static struct hv_dom race_g, race_m;
static uint32_t race_good_frame;
static atomic_int race_stop;
static atomic_long race_ended, race_refused_while_mapped, race_violations;
static atomic_int race_mapped; /* the hv side holds a pin now */
static atomic_long race_granted_round, race_ended_round = -1;

static void *race_granter(void *arg)
{
	(void)arg;
	struct grant_entry_v1 *e = &race_g.gnt[RACE_REF];
	_Atomic uint16_t *flags = (_Atomic uint16_t *)(void *)&e->flags;
	time_t deadline = time(NULL) + RACE_SECONDS;
	for (int round = 0; round < RACE_ROUNDS && !atomic_load(&race_stop); round++) {
		if ((round & 255) == 0 && time(NULL) > deadline)
			break;
		e->domid = RACE_MAPPER;
		e->frame = race_good_frame;
		atomic_store(&race_granted_round, round);
		atomic_store_explicit(flags, GTF_permit_access, memory_order_release);
		/* Leave the grant up a little, a different while each round. */
		for (volatile int spin = (int)(((unsigned)round * 7919u) % 4000u); spin > 0; spin--)
			;
		for (;;) {
			uint16_t expect = GTF_permit_access;
			bool mapped = atomic_load(&race_mapped);
			if (atomic_compare_exchange_strong(flags, &expect, 0)) {
				/* The hv must not have held a pin right now. */
				if (mapped && atomic_load(&race_mapped))
					atomic_fetch_add(&race_violations, 1);
				break;
			}
			if (mapped)
				atomic_fetch_add(&race_refused_while_mapped, 1);
		}
		/* Ended: reuse the page for something else. */
		atomic_store(&race_ended_round, round);
		e->frame = 999999;
		atomic_fetch_add(&race_ended, 1);
		for (volatile int spin = (int)(((unsigned)round * 104729u) % 2000u); spin > 0;
		     spin--)
			;
	}
	atomic_store(&race_stop, 1);
	return NULL;
}

START_TEST(test_pin_race)
{
	memset(&hv, 0, sizeof(hv));
	atomic_store(&race_ended_round, -1);
	race_g = (struct hv_dom){.domid = RACE_GRANTER, .memory = 1u << 20, .next_frame = 1};
	race_m = (struct hv_dom){.domid = RACE_MAPPER, .memory = 1u << 20, .next_frame = 1};
	ck_assert_int_eq(hv_gnttab_init(&race_g), 0);
	ck_assert_int_eq(hv_gnttab_init(&race_m), 0);
	hv.doms[RACE_GRANTER] = &race_g;
	hv.doms[RACE_MAPPER] = &race_m;
	struct hv_conn c = {.fd = -1, .dom = &race_m};
	struct hv_seg *seg;
	ck_assert_int_eq(hv_seg_alloc(&race_g, NULL, RACE_MAPPER, 4, &seg), 0);
	race_good_frame = seg->first_frame + 2;

	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, race_granter, NULL), 0);
	long ok = 0, refused = 0;
	struct hv_gnt_map_op op = {.domid = RACE_GRANTER, .ref = RACE_REF};
	while (!atomic_load(&race_stop)) {
		struct hv_gnt_map_res res;
		int fds[HV_MAX_FDS];
		unsigned nfds;
		hv_gnt_map(&c, &op, 1, &res, fds, &nfds);
		if (res.status == GNTST_okay) {
			atomic_store(&race_mapped, 1);
			ok++;
			/* the frame read after the pin is the granted one */
			ck_assert_uint_eq(res.offset, 2 * HV_PAGE_SIZE);
			ck_assert_uint_eq(nfds, 1);
			uint16_t f =
			    atomic_load((_Atomic uint16_t *)(void *)&race_g.gnt[RACE_REF].flags);
			ck_assert_uint_eq(f & (GTF_reading | GTF_writing),
					  GTF_reading | GTF_writing);
			/* hold it a while: the granter cannot end this round */
			for (volatile int spin = 0; spin < 300; spin++)
				;
			ck_assert_int_lt(atomic_load(&race_ended_round),
					 atomic_load(&race_granted_round));
			atomic_store(&race_mapped, 0);
			ck_assert_int_eq(hv_gnt_unmap_one(&race_m, &c, res.handle), GNTST_okay);
		} else {
			/* ended or not yet granted: never a stale frame */
			ck_assert_int_eq(res.status, GNTST_general_error);
			refused++;
		}
	}
	pthread_join(t, NULL);
	ck_assert_int_eq(atomic_load(&race_violations), 0);
	ck_assert_int_gt(atomic_load(&race_refused_while_mapped), 0);
	ck_assert_int_ge(atomic_load(&race_ended), 256);
	ck_assert_int_gt(ok, 0);
	ck_assert_uint_eq(seg->pins, 0);
	uint16_t f = race_g.gnt[RACE_REF].flags;
	ck_assert_uint_eq(f & (GTF_reading | GTF_writing), 0);
	(void)refused;
	hv_seg_free_all(&race_g, NULL);
	hv_gnttab_free(&race_g);
	hv_gnttab_free(&race_m);
}
END_TEST

Suite *hv_call_suite(void);
Suite *hv_call_suite(void)
{
	Suite *s = suite_create("hv_call");
	TCase *tc = tcase_create("decode");
	tcase_set_timeout(tc, 10);
	tcase_add_loop_test(tc, test_fixed_ops, 0, (int)NFIXED);
	tcase_add_test(tc, test_dom0_only_flags);
	tcase_add_test(tc, test_header);
	tcase_add_loop_test(tc, test_batches, 0, (int)(sizeof(batches) / sizeof(batches[0])));
	tcase_add_test(tc, test_create_strings);
	tcase_add_test(tc, test_create_policy);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_copy_fits);
	suite_add_tcase(s, tc);
	TCase *race = tcase_create("pins");
	tcase_set_timeout(race, 60);
	tcase_add_test(race, test_pin_race);
	suite_add_tcase(s, race);
	return s;
}
