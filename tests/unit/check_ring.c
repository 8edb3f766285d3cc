// SPDX-License-Identifier: MIT
// The ring/ suite: layout of the blkif and netif rings against Xen's headers
// (two translation units, see check_ring_layout.h), every header compiling
// alone, the ring API's validation paths (bad init, full ring, empty ring,
// producer index jumps: XSA-39), copy-out semantics (XSA-155), the
// event-index notification rule, index wrap at 2^32, the adaptive-poll
// helper, and a real producer and consumer thread racing millions of
// messages with eventfds as event channels: no loss, duplication or
// reordering, no lost wake-up, and no more notifications than the rule
// allows.
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "ring/blkif.h"
#include "ring/netif.h"
#include "ring/ring.h"
#include "ring/xenbus.h"
#include "tests/unit/check_ring_layout.h"

/* A ring of scalars: the macro works for any slot type. */
RING_DEFINE_TYPES(tring, uint64_t, uint64_t);

static void *alloc_ring(unsigned int order)
{
	void *p = aligned_alloc(RING_PAGE_SIZE, ring_bytes(order));
	ck_assert_ptr_nonnull(p);
	memset(p, 0xa5, ring_bytes(order)); /* init must not rely on zeroed pages */
	return p;
}

/* ---- layout -------------------------------------------------------------- */

START_TEST(test_layout_matches_xen)
{
	static struct ring_fact xen[RING_NR_FACTS], ours[RING_NR_FACTS];
	size_t nx = ring_facts_xen(xen);
	size_t no = ring_facts_ours(ours);
	ck_assert_uint_eq(nx, no);
	ck_assert_uint_gt(nx, 100);
	for (size_t i = 0; i < nx; i++) {
		ck_assert_str_eq(xen[i].name, ours[i].name);
		ck_assert_msg(xen[i].value == ours[i].value, "%s: Xen %lld, drvdom %lld",
			      xen[i].name, xen[i].value, ours[i].value);
	}
}
END_TEST

START_TEST(test_layout_ring_sizes)
{
	/* What the formula gives (and Xen's __CONST_RING_SIZE agrees, above). */
	static const uint32_t blk[] = {32, 64, 128, 256, 512};
	static const uint32_t tx[] = {256, 512, 1024, 2048, 4096};
	static const uint32_t rx[] = {256, 512, 1024, 2048, 4096};
	for (unsigned int o = 0; o <= RING_MAX_ORDER; o++) {
		ck_assert_uint_eq(blkif_ring_nr_slots(o), blk[o]);
		ck_assert_uint_eq(netif_tx_ring_nr_slots(o), tx[o]);
		ck_assert_uint_eq(netif_rx_ring_nr_slots(o), rx[o]);
	}
	/* Negative: beyond the largest order, or nothing fits. */
	ck_assert_uint_eq(blkif_ring_nr_slots(RING_MAX_ORDER + 1), 0);
	ck_assert_uint_eq(ring_nr_slots(RING_HEADER_SIZE + 111, 112), 0);
	ck_assert_uint_eq(ring_nr_slots(RING_HEADER_SIZE + 112, 112), 1);
	ck_assert_uint_eq(ring_nr_slots(4096, 0), 0);
	ck_assert_uint_eq(ring_nr_slots(10, 8), 0);
	ck_assert_uint_eq(sizeof(struct blkif_ring_sring), RING_HEADER_SIZE);
}
END_TEST

START_TEST(test_headers_alone)
{
	ck_assert_int_ne(ring_hdr_ring_alone(), 0);
	ck_assert_int_ne(ring_hdr_blkif_alone(), 0);
	ck_assert_int_ne(ring_hdr_netif_alone(), 0);
	ck_assert_int_ne(ring_hdr_xenbus_alone(), 0);
	ck_assert_int_ne(ring_hdr_coexist(), 0);
	ck_assert_str_eq(xenbus_st_name(XENBUS_STATE_INIT_WAIT), "InitWait");
	ck_assert_str_eq(xenbus_st_name(9), "Invalid");
	ck_assert_str_eq(xenbus_st_name(-1), "Invalid");
}
END_TEST

/* ---- basic API and validation ---------------------------------------------- */

START_TEST(test_init_attach)
{
	struct blkif_ring_front f;
	struct blkif_ring_back b;
	void *page = alloc_ring(2);
	struct blkif_ring_sring *s = page;

	ck_assert_int_eq(blkif_ring_front_init(NULL, page, 0), -EINVAL);
	ck_assert_int_eq(blkif_ring_front_init(&f, NULL, 0), -EINVAL);
	ck_assert_int_eq(blkif_ring_front_init(&f, page, RING_MAX_ORDER + 1), -EINVAL);
	ck_assert_int_eq(blkif_ring_back_attach(NULL, page, 0), -EINVAL);
	ck_assert_int_eq(blkif_ring_back_attach(&b, NULL, 0), -EINVAL);
	ck_assert_int_eq(blkif_ring_back_attach(&b, page, RING_MAX_ORDER + 1), -EINVAL);

	ck_assert_int_eq(blkif_ring_front_init(&f, page, 2), 0);
	ck_assert_uint_eq(atomic_load(&s->req_prod), 0);
	ck_assert_uint_eq(atomic_load(&s->rsp_prod), 0);
	ck_assert_uint_eq(atomic_load(&s->req_event), 1);
	ck_assert_uint_eq(atomic_load(&s->rsp_event), 1);
	for (size_t i = 0; i < sizeof(s->pvt); i++)
		ck_assert_uint_eq(s->pvt[i], 0);
	for (size_t i = 0; i < sizeof(s->pad); i++)
		ck_assert_uint_eq(s->pad[i], 0);
	ck_assert_uint_eq(blkif_ring_front_size(&f), 128);
	ck_assert_uint_eq(blkif_ring_front_free_requests(&f), 128);
	ck_assert_int_eq(blkif_ring_back_attach(&b, page, 2), 0);
	ck_assert_uint_eq(blkif_ring_back_size(&b), 128);
	ck_assert_uint_eq(b.req_cons, 0);
	ck_assert_uint_eq(b.rsp_prod_pvt, 0);
	free(page);
}
END_TEST

START_TEST(test_roundtrip_and_limits)
{
	struct blkif_ring_front f;
	struct blkif_ring_back b;
	void *page = alloc_ring(0);
	ck_assert_int_eq(blkif_ring_front_init(&f, page, 0), 0);
	ck_assert_int_eq(blkif_ring_back_attach(&b, page, 0), 0);
	uint32_t n = 99;
	union blkif_req_slot r;
	struct blkif_rsp rsp;

	/* Empty ring: nothing to take on either side, no response slot to claim. */
	ck_assert_int_eq(blkif_ring_back_unconsumed_requests(&b, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(blkif_ring_back_take_request(&b, &r), -EAGAIN);
	ck_assert_int_eq(blkif_ring_front_take_response(&f, &rsp), -EAGAIN);
	ck_assert_ptr_null(blkif_ring_back_next_rsp(&b));

	/* Fill the ring: the 33rd request has no slot. */
	for (uint32_t i = 0; i < 32; i++) {
		union blkif_req_slot *q = blkif_ring_front_next_req(&f);
		ck_assert_ptr_nonnull(q);
		q->rw.operation = BLKIF_OP_READ;
		q->rw.id = 1000 + i;
	}
	ck_assert(blkif_ring_front_full(&f));
	ck_assert_ptr_null(blkif_ring_front_next_req(&f));
	/* Not pushed yet: the backend sees nothing. */
	ck_assert_int_eq(blkif_ring_back_take_request(&b, &r), -EAGAIN);
	blkif_ring_front_push_requests(&f);
	ck_assert_int_eq(blkif_ring_back_unconsumed_requests(&b, &n), 0);
	ck_assert_uint_eq(n, 32);

	for (uint32_t i = 0; i < 32; i++) {
		ck_assert_int_eq(blkif_ring_back_take_request(&b, &r), 0);
		ck_assert_uint_eq(r.rw.id, 1000 + i);
		struct blkif_rsp *p = blkif_ring_back_next_rsp(&b);
		ck_assert_ptr_nonnull(p);
		p->id = r.rw.id;
		p->operation = r.operation;
		p->status = BLKIF_RSP_OKAY;
	}
	ck_assert_int_eq(blkif_ring_back_take_request(&b, &r), -EAGAIN);
	ck_assert_ptr_null(blkif_ring_back_next_rsp(&b)); /* one response per request */
	/* Responses not pushed: the front still has no free slot. */
	ck_assert_int_eq(blkif_ring_front_take_response(&f, &rsp), -EAGAIN);
	blkif_ring_back_push_responses(&b);
	for (uint32_t i = 0; i < 32; i++) {
		ck_assert_int_eq(blkif_ring_front_take_response(&f, &rsp), 0);
		ck_assert_uint_eq(rsp.id, 1000 + i);
		ck_assert_int_eq(rsp.status, BLKIF_RSP_OKAY);
		ck_assert_uint_eq(blkif_ring_front_free_requests(&f), i + 1);
	}
	ck_assert_int_eq(blkif_ring_front_take_response(&f, &rsp), -EAGAIN);
	free(page);
}
END_TEST

/* ---- XSA-39: a producer index that jumps ------------------------------------ */

START_TEST(test_request_overflow)
{
	struct blkif_ring_front f;
	struct blkif_ring_back b;
	void *page = alloc_ring(0);
	struct blkif_ring_sring *s = page;
	uint32_t n;
	union blkif_req_slot r;
	ck_assert_int_eq(blkif_ring_front_init(&f, page, 0), 0);
	ck_assert_int_eq(blkif_ring_back_attach(&b, page, 0), 0);

	/* Exactly a ring's worth is legal. */
	atomic_store(&s->req_prod, 32);
	ck_assert_int_eq(blkif_ring_back_unconsumed_requests(&b, &n), 0);
	ck_assert_uint_eq(n, 32);
	/* One more is an attack, from every entry point, and nothing is consumed. */
	atomic_store(&s->req_prod, 33);
	n = 7;
	ck_assert_int_eq(blkif_ring_back_unconsumed_requests(&b, &n), -EOVERFLOW);
	ck_assert_uint_eq(n, 0);
	b.req_seen = b.req_cons; /* forget what was validated before */
	ck_assert_int_eq(blkif_ring_back_take_request(&b, &r), -EOVERFLOW);
	ck_assert_int_eq(blkif_ring_back_final_check_for_requests(&b, &n), -EOVERFLOW);
	ck_assert_uint_eq(b.req_cons, 0);
	/* A huge jump, and an index moved backwards (= 2^32 - 1 ahead). */
	atomic_store(&s->req_prod, 0x80000000u);
	ck_assert_int_eq(blkif_ring_back_unconsumed_requests(&b, &n), -EOVERFLOW);
	atomic_store(&s->req_prod, UINT32_MAX);
	ck_assert_int_eq(blkif_ring_back_unconsumed_requests(&b, &n), -EOVERFLOW);

	/* Requests consumed but not yet answered still occupy their slots: with 3
	 * of them, only 29 more requests can be pending. */
	atomic_store(&s->req_prod, 3);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(blkif_ring_back_take_request(&b, &r), 0);
	atomic_store(&s->req_prod, 3 + 29);
	ck_assert_int_eq(blkif_ring_back_unconsumed_requests(&b, &n), 0);
	ck_assert_uint_eq(n, 29);
	atomic_store(&s->req_prod, 3 + 30);
	ck_assert_int_eq(blkif_ring_back_unconsumed_requests(&b, &n), -EOVERFLOW);
	/* Once answered, the room is back. */
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_nonnull(blkif_ring_back_next_rsp(&b));
	ck_assert_int_eq(blkif_ring_back_unconsumed_requests(&b, &n), 0);
	ck_assert_uint_eq(n, 30);
	free(page);
}
END_TEST

START_TEST(test_response_overflow)
{
	struct blkif_ring_front f;
	void *page = alloc_ring(0);
	struct blkif_ring_sring *s = page;
	uint32_t n;
	struct blkif_rsp rsp;
	ck_assert_int_eq(blkif_ring_front_init(&f, page, 0), 0);

	/* No request outstanding: any response is an attack. */
	atomic_store(&s->rsp_prod, 1);
	ck_assert_int_eq(blkif_ring_front_unconsumed_responses(&f, &n), -EOVERFLOW);
	ck_assert_int_eq(blkif_ring_front_take_response(&f, &rsp), -EOVERFLOW);
	ck_assert_int_eq(blkif_ring_front_final_check_for_responses(&f, &n), -EOVERFLOW);
	/* Five outstanding: five responses are fine, six are not. */
	for (int i = 0; i < 5; i++)
		ck_assert_ptr_nonnull(blkif_ring_front_next_req(&f));
	blkif_ring_front_push_requests(&f);
	atomic_store(&s->rsp_prod, 5);
	ck_assert_int_eq(blkif_ring_front_unconsumed_responses(&f, &n), 0);
	ck_assert_uint_eq(n, 5);
	atomic_store(&s->rsp_prod, 6);
	ck_assert_int_eq(blkif_ring_front_unconsumed_responses(&f, &n), -EOVERFLOW);
	atomic_store(&s->rsp_prod, UINT32_MAX); /* backwards */
	f.rsp_seen = f.rsp_cons;
	ck_assert_int_eq(blkif_ring_front_take_response(&f, &rsp), -EOVERFLOW);
	ck_assert_uint_eq(f.rsp_cons, 0);
	free(page);
}
END_TEST

/* ---- XSA-155: copy out, then check ------------------------------------------ */

START_TEST(test_copy_out)
{
	struct blkif_ring_front f;
	struct blkif_ring_back b;
	void *page = alloc_ring(0);
	ck_assert_int_eq(blkif_ring_front_init(&f, page, 0), 0);
	ck_assert_int_eq(blkif_ring_back_attach(&b, page, 0), 0);

	union blkif_req_slot *q = blkif_ring_front_next_req(&f);
	q->rw.operation = BLKIF_OP_WRITE;
	q->rw.nr_segments = 2;
	q->rw.id = 42;
	blkif_ring_front_push_requests(&f);

	union blkif_req_slot r;
	ck_assert_int_eq(blkif_ring_back_take_request(&b, &r), 0);
	/* A hostile frontend rewrites the slot after the backend took it. */
	q->rw.nr_segments = 200;
	q->rw.id = 666;
	q->operation = BLKIF_OP_INDIRECT;
	ck_assert_uint_eq(r.rw.nr_segments, 2);
	ck_assert_uint_eq(r.rw.id, 42);
	ck_assert_uint_eq(r.operation, BLKIF_OP_WRITE);
	/* copy_request by index gives today's content, again as a private copy. */
	union blkif_req_slot r2;
	blkif_ring_back_copy_request(&b, 0, &r2);
	ck_assert_uint_eq(r2.rw.nr_segments, 200);
	q->rw.nr_segments = 3;
	ck_assert_uint_eq(r2.rw.nr_segments, 200);

	struct blkif_rsp *p = blkif_ring_back_next_rsp(&b);
	p->id = 42;
	p->status = BLKIF_RSP_OKAY;
	blkif_ring_back_push_responses(&b);
	struct blkif_rsp rsp;
	ck_assert_int_eq(blkif_ring_front_take_response(&f, &rsp), 0);
	p->status = BLKIF_RSP_ERROR;
	ck_assert_int_eq(rsp.status, BLKIF_RSP_OKAY);
	free(page);
}
END_TEST

/* ---- notification rule ------------------------------------------------------ */

START_TEST(test_event_rule_arith)
{
	ck_assert(ring_event_in_range(1, 0, 1));
	ck_assert(ring_event_in_range(5, 0, 5));
	ck_assert(!ring_event_in_range(6, 0, 5));
	ck_assert(!ring_event_in_range(0, 0, 5)); /* old is excluded */
	ck_assert(!ring_event_in_range(3, 3, 3)); /* nothing pushed */
	/* Across the wrap. */
	ck_assert(ring_event_in_range(0, UINT32_MAX, 0));
	ck_assert(ring_event_in_range(2, UINT32_MAX - 3, 5));
	ck_assert(ring_event_in_range(UINT32_MAX, UINT32_MAX - 3, 5));
	ck_assert(!ring_event_in_range(UINT32_MAX - 3, UINT32_MAX - 3, 5));
	ck_assert(!ring_event_in_range(6, UINT32_MAX - 3, 5));
}
END_TEST

START_TEST(test_notify_rule)
{
	struct tring_front f;
	struct tring_back b;
	void *page = alloc_ring(0);
	struct tring_sring *s = page;
	uint32_t n;
	uint64_t v;
	ck_assert_int_eq(tring_front_init(&f, page, 0), 0);
	ck_assert_int_eq(tring_back_attach(&b, page, 0), 0);
	ck_assert_uint_eq(tring_front_size(&f), 256);

	/* The initial req_event (1) asks for the first request. */
	*tring_front_next_req(&f) = 1;
	ck_assert(tring_front_push_requests_check_notify(&f));
	/* The backend has not re-armed: no more notifications, however many. */
	for (int i = 0; i < 100; i++) {
		*tring_front_next_req(&f) = 2;
		ck_assert(!tring_front_push_requests_check_notify(&f));
	}
	/* Work pending: the final check reports it and leaves req_event alone. */
	ck_assert_int_eq(tring_back_final_check_for_requests(&b, &n), 0);
	ck_assert_uint_eq(n, 101);
	ck_assert_uint_eq(atomic_load(&s->req_event), 1);
	for (int i = 0; i < 101; i++) {
		ck_assert_int_eq(tring_back_take_request(&b, &v), 0);
		*tring_back_next_rsp(&b) = v;
	}
	/* Idle: the final check arms req_event = req_cons + 1 and finds nothing. */
	ck_assert_int_eq(tring_back_final_check_for_requests(&b, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(atomic_load(&s->req_event), 102);
	/* Now the next push (a batch of 3) notifies once. */
	for (int i = 0; i < 3; i++)
		*tring_front_next_req(&f) = 3;
	ck_assert(tring_front_push_requests_check_notify(&f));
	*tring_front_next_req(&f) = 4;
	ck_assert(!tring_front_push_requests_check_notify(&f));
	/* An unchecked push never changes the event either. */
	*tring_front_next_req(&f) = 4;
	tring_front_push_requests(&f);
	ck_assert_uint_eq(atomic_load(&s->req_event), 102);

	/* Batching: armed 10 ahead, the 1st..9th request go unannounced, the 10th
	 * is announced. */
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(tring_back_take_request(&b, &v), 0);
		*tring_back_next_rsp(&b) = v;
	}
	ck_assert_int_eq(tring_back_final_check_ahead(&b, 10, &n), 0);
	ck_assert_uint_eq(n, 0);
	for (int i = 1; i <= 9; i++) {
		*tring_front_next_req(&f) = 5;
		ck_assert_msg(!tring_front_push_requests_check_notify(&f), "request %d", i);
	}
	*tring_front_next_req(&f) = 5;
	ck_assert(tring_front_push_requests_check_notify(&f));
	/* ahead = 0 means 1. */
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(tring_back_take_request(&b, &v), 0);
		*tring_back_next_rsp(&b) = v;
	}
	ck_assert_int_eq(tring_back_final_check_ahead(&b, 0, &n), 0);
	ck_assert_uint_eq(atomic_load(&s->req_event), b.req_cons + 1);

	/* Responses, the same way: rsp_event starts at 1. */
	ck_assert(tring_back_push_responses_check_notify(&b));
	ck_assert_int_eq(tring_front_final_check_for_responses(&f, &n), 0);
	ck_assert_uint_eq(n, 116); /* all there: nothing armed */
	ck_assert_uint_eq(atomic_load(&s->rsp_event), 1);
	for (int i = 0; i < 116; i++)
		ck_assert_int_eq(tring_front_take_response(&f, &v), 0);
	ck_assert_int_eq(tring_front_final_check_for_responses(&f, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(atomic_load(&s->rsp_event), 117);
	/* Nothing new pushed: no notification. */
	ck_assert(!tring_back_push_responses_check_notify(&b));
	*tring_front_next_req(&f) = 6;
	tring_front_push_requests(&f);
	ck_assert_int_eq(tring_back_take_request(&b, &v), 0);
	*tring_back_next_rsp(&b) = v;
	ck_assert(tring_back_push_responses_check_notify(&b));
	ck_assert_int_eq(tring_front_final_check_ahead(&f, 4, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(page);
}
END_TEST

/* The final check must find work that arrived before it armed the event: the
 * producer's push then saw no event in range (no notification), so the
 * consumer may not sleep. */
START_TEST(test_final_check_sees_late_push)
{
	struct tring_front f;
	struct tring_back b;
	void *page = alloc_ring(0);
	uint32_t n;
	uint64_t v;
	ck_assert_int_eq(tring_front_init(&f, page, 0), 0);
	ck_assert_int_eq(tring_back_attach(&b, page, 0), 0);
	*tring_front_next_req(&f) = 1;
	ck_assert(tring_front_push_requests_check_notify(&f));
	ck_assert_int_eq(tring_back_take_request(&b, &v), 0);
	ck_assert_int_eq(tring_back_take_request(&b, &v), -EAGAIN);
	/* Producer pushes while the consumer's event is stale (1): no notify... */
	*tring_front_next_req(&f) = 2;
	ck_assert(!tring_front_push_requests_check_notify(&f));
	/* ...so the consumer's final check must report it. */
	ck_assert_int_eq(tring_back_final_check_for_requests(&b, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(page);
}
END_TEST

/* Plain pushes, then one checked push: the check covers every request pushed
 * since the previous check (with Xen's macros, whose range starts at the
 * last push, the event crossed by the plain push would be missed). */
START_TEST(test_deferred_check)
{
	struct tring_front f;
	struct tring_back b;
	void *page = alloc_ring(0);
	struct tring_sring *s = page;
	uint32_t n;
	uint64_t v;
	ck_assert_int_eq(tring_front_init(&f, page, 0), 0);
	ck_assert_int_eq(tring_back_attach(&b, page, 0), 0);
	/* The consumer is armed at 1 (init) and asleep. */
	*tring_front_next_req(&f) = 1;
	tring_front_push_requests(&f); /* crosses req_event = 1, unchecked */
	*tring_front_next_req(&f) = 2;
	ck_assert(tring_front_push_requests_check_notify(&f));
	/* Nothing new since that check: no notification. */
	ck_assert(!tring_front_push_requests_check_notify(&f));
	/* Consume, re-arm at 3, then three plain pushes and a check. */
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(tring_back_take_request(&b, &v), 0);
		*tring_back_next_rsp(&b) = v;
	}
	ck_assert_int_eq(tring_back_final_check_for_requests(&b, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(atomic_load(&s->req_event), 3);
	for (int i = 0; i < 3; i++) {
		*tring_front_next_req(&f) = 3;
		tring_front_push_requests(&f);
	}
	ck_assert(tring_front_push_requests_check_notify(&f));
	/* Responses, the same way. */
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(tring_back_take_request(&b, &v), 0);
		*tring_back_next_rsp(&b) = v;
	}
	tring_back_push_responses(&b); /* crosses rsp_event = 1, unchecked */
	ck_assert(tring_back_push_responses_check_notify(&b));
	ck_assert(!tring_back_push_responses_check_notify(&b));
	free(page);
}
END_TEST

/* ---- index wrap --------------------------------------------------------------- */

START_TEST(test_wrap_single)
{
	struct tring_front f;
	struct tring_back b;
	void *page = alloc_ring(0);
	struct tring_sring *s = page;
	uint32_t start = UINT32_MAX - 300;
	uint64_t v;
	uint32_t n;
	ck_assert_int_eq(tring_front_init_at(NULL, page, 0, start), -EINVAL);
	ck_assert_int_eq(tring_front_init_at(&f, page, 0, start), 0);
	ck_assert_int_eq(tring_back_attach(&b, page, 0), 0);
	ck_assert_uint_eq(b.req_cons, start);
	ck_assert_uint_eq(atomic_load(&s->req_event), start + 1);

	uint64_t sent = 0, got = 0;
	unsigned int notifies = 0, pushes = 0;
	/* 4 laps of the 256-slot ring in odd batches, crossing 2^32. */
	while (got < 1024) {
		unsigned int batch = 1 + (unsigned int)(sent % 37);
		for (unsigned int i = 0; i < batch && !tring_front_full(&f); i++)
			*tring_front_next_req(&f) = sent++;
		pushes++;
		notifies += tring_front_push_requests_check_notify(&f);
		ck_assert_int_eq(tring_back_unconsumed_requests(&b, &n), 0);
		ck_assert_uint_le(n, 256);
		while (tring_back_take_request(&b, &v) == 0) {
			uint64_t *rsp = tring_back_next_rsp(&b);
			ck_assert_ptr_eq(rsp, &s->ring[(b.req_cons - 1) & 255].rsp);
			*rsp = v * 3;
		}
		ck_assert_int_eq(tring_back_final_check_for_requests(&b, &n), 0);
		ck_assert_uint_eq(n, 0);
		tring_back_push_responses(&b);
		while (tring_front_take_response(&f, &v) == 0) {
			ck_assert_uint_eq(v, got * 3);
			got++;
		}
	}
	/* The backend re-armed after every batch (req_event = req_cons + 1, across
	 * the wrap too): every push was announced. */
	ck_assert_uint_eq(notifies, pushes);
	ck_assert_uint_gt(pushes, 50);
	ck_assert_uint_eq(f.req_prod_pvt, (uint32_t)(start + sent));
	ck_assert_uint_lt(f.req_prod_pvt, start); /* wrapped */
	free(page);
}
END_TEST

/* ---- adaptive poll helper ------------------------------------------------------ */

struct late_push {
	struct tring_front *f;
	unsigned int delay_us;
};

static void *late_push_main(void *arg)
{
	struct late_push *lp = arg;
	usleep(lp->delay_us);
	*tring_front_next_req(lp->f) = 7;
	tring_front_push_requests(lp->f);
	return NULL;
}

START_TEST(test_poll_helper)
{
	struct tring_front f;
	struct tring_back b;
	void *page = alloc_ring(0);
	ck_assert_int_eq(tring_front_init(&f, page, 0), 0);
	ck_assert_int_eq(tring_back_attach(&b, page, 0), 0);
	/* Nothing comes: returns false after the time, not much later. */
	uint64_t t0 = ring_clock_ns();
	ck_assert(!tring_back_poll_requests(&b, 2000000));
	uint64_t dt = ring_clock_ns() - t0;
	ck_assert_uint_ge(dt, 2000000);
	ck_assert_uint_lt(dt, 2000000000);
	ck_assert(!tring_back_poll_requests(&b, 0));
	/* Something comes while spinning. */
	struct late_push lp = {&f, 1000};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, late_push_main, &lp), 0);
	ck_assert(tring_back_poll_requests(&b, 5000000000ull));
	pthread_join(th, NULL);
	/* Already there: true at once, even with no spin allowed. */
	ck_assert(tring_back_poll_requests(&b, 0));
	ck_assert(!tring_front_poll_responses(&f, 1000));
	free(page);
}
END_TEST

/* ---- racing producer and consumer ------------------------------------------------ */

enum { SLEEP_TIMEOUT_MS = 3000 };

struct race {
	struct blkif_ring_front f;
	struct blkif_ring_back b;
	uint64_t n;
	uint64_t spin_ns;
	bool never_arm;		   /* consumers only spin: no notification after the first */
	bool defer;		   /* producers push plainly, check only before waiting */
	int wake_back, wake_front; /* eventfds: the two event channels */
	/* What each side counted (written by one thread, read after join). */
	uint64_t notify_back, notify_front; /* notifications sent to ... */
	uint64_t arms_back, arms_front;	    /* final checks that armed an event */
	uint64_t sleeps_back, sleeps_front;
	uint64_t lost_back, lost_front; /* sleeps that timed out: lost wake-ups */
	char err_back[200], err_front[200];
};

static void evt_send(int fd)
{
	uint64_t one = 1;
	ck_assert_int_eq(write(fd, &one, sizeof(one)), sizeof(one));
}

/* Sleep on an event channel; false if it timed out. */
static bool evt_wait(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int rc = poll(&p, 1, SLEEP_TIMEOUT_MS);
	if (rc <= 0)
		return false;
	uint64_t v;
	ck_assert_int_eq(read(fd, &v, sizeof(v)), sizeof(v));
	return true;
}

static void *race_back_main(void *arg)
{
	struct race *R = arg;
	struct blkif_ring_back *b = &R->b;
	uint64_t expect = 0;
	unsigned int pending = 0;
	uint32_t n;
	while (expect < R->n) {
		union blkif_req_slot r;
		int rc = blkif_ring_back_take_request(b, &r);
		if (rc == 0) {
			const struct blkif_req *q = &r.rw;
			if (q->id != expect || q->sector_number != expect * 3 + 1 ||
			    q->nr_segments != expect % 12 || q->seg[0].gref != (uint32_t)expect ||
			    q->seg[10].gref != (uint32_t)(expect + 10) ||
			    q->operation != (expect & 1)) {
				snprintf(R->err_back, sizeof(R->err_back),
					 "request %" PRIu64 ": got id %" PRIu64 " sector %" PRIu64,
					 expect, q->id, q->sector_number);
				break;
			}
			struct blkif_rsp *p = blkif_ring_back_next_rsp(b);
			p->id = q->id;
			p->operation = q->operation;
			p->status = (int16_t)(q->id & 0x3fff);
			expect++;
			if (++pending >= 16) {
				if (R->defer) {
					blkif_ring_back_push_responses(b);
				} else if (blkif_ring_back_push_responses_check_notify(b)) {
					R->notify_front++;
					evt_send(R->wake_front);
				}
				pending = 0;
			}
			continue;
		}
		if (rc != -EAGAIN) {
			snprintf(R->err_back, sizeof(R->err_back), "take_request: %d", rc);
			break;
		}
		/* Before waiting: a checked push (also covering plain ones). */
		if (pending || R->defer) {
			if (blkif_ring_back_push_responses_check_notify(b)) {
				R->notify_front++;
				evt_send(R->wake_front);
			}
			if (pending) {
				pending = 0;
				continue;
			}
		}
		if (R->spin_ns && blkif_ring_back_poll_requests(b, R->spin_ns))
			continue;
		if (R->never_arm) {
			ring_cpu_relax();
			continue;
		}
		R->arms_back++;
		rc = blkif_ring_back_final_check_for_requests(b, &n);
		if (rc < 0) {
			snprintf(R->err_back, sizeof(R->err_back), "final check: %d", rc);
			break;
		}
		if (n > 0)
			continue;
		R->sleeps_back++;
		if (!evt_wait(R->wake_back))
			R->lost_back++;
	}
	/* Stopping: a checked push, which also covers plain pushes not yet checked. */
	if ((pending || R->defer) && blkif_ring_back_push_responses_check_notify(b)) {
		R->notify_front++;
		evt_send(R->wake_front);
	}
	return NULL;
}

static void *race_front_main(void *arg)
{
	struct race *R = arg;
	struct blkif_ring_front *f = &R->f;
	uint64_t sent = 0, got = 0, lcg = 12345;
	uint32_t n;
	while (got < R->n) {
		/* A batch of pseudo-random size, as much as fits. */
		lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
		unsigned int batch = 1 + (unsigned int)((lcg >> 33) % blkif_ring_front_size(f));
		unsigned int made = 0;
		while (made < batch && sent < R->n) {
			union blkif_req_slot *s = blkif_ring_front_next_req(f);
			if (!s)
				break;
			struct blkif_req *q = &s->rw;
			q->operation = (uint8_t)(sent & 1);
			q->nr_segments = (uint8_t)(sent % 12);
			q->handle = 7;
			q->id = sent;
			q->sector_number = sent * 3 + 1;
			for (int i = 0; i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++)
				q->seg[i].gref = (uint32_t)(sent + i);
			sent++;
			made++;
		}
		if (made && R->defer) {
			blkif_ring_front_push_requests(f);
		} else if (made && blkif_ring_front_push_requests_check_notify(f)) {
			R->notify_back++;
			evt_send(R->wake_back);
		}
		struct blkif_rsp rsp;
		int rc;
		unsigned int took = 0;
		while ((rc = blkif_ring_front_take_response(f, &rsp)) == 0) {
			if (rsp.id != got || rsp.status != (int16_t)(got & 0x3fff) ||
			    rsp.operation != (got & 1)) {
				snprintf(R->err_front, sizeof(R->err_front),
					 "response %" PRIu64 ": got id %" PRIu64, got, rsp.id);
				return NULL;
			}
			got++;
			took++;
		}
		if (rc != -EAGAIN) {
			snprintf(R->err_front, sizeof(R->err_front), "take_response: %d", rc);
			return NULL;
		}
		if (took || made)
			continue;
		/* Ring full or all sent: wait for responses, after a checked push. */
		if (R->defer && blkif_ring_front_push_requests_check_notify(f)) {
			R->notify_back++;
			evt_send(R->wake_back);
		}
		if (R->spin_ns && blkif_ring_front_poll_responses(f, R->spin_ns))
			continue;
		if (R->never_arm) {
			ring_cpu_relax();
			continue;
		}
		R->arms_front++;
		rc = blkif_ring_front_final_check_for_responses(f, &n);
		if (rc < 0) {
			snprintf(R->err_front, sizeof(R->err_front), "final check: %d", rc);
			return NULL;
		}
		if (n > 0)
			continue;
		R->sleeps_front++;
		if (!evt_wait(R->wake_front))
			R->lost_front++;
	}
	return NULL;
}

static void run_race(uint64_t n, unsigned int order, uint32_t start, uint64_t spin_ns,
		     bool never_arm, bool defer)
{
	struct race *R = calloc(1, sizeof(*R));
	ck_assert_ptr_nonnull(R);
	void *page = alloc_ring(order);
	ck_assert_int_eq(blkif_ring_front_init_at(&R->f, page, order, start), 0);
	ck_assert_int_eq(blkif_ring_back_attach(&R->b, page, order), 0);
	R->n = n;
	R->spin_ns = spin_ns;
	R->never_arm = never_arm;
	R->defer = defer;
	R->wake_back = eventfd(0, EFD_CLOEXEC);
	R->wake_front = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_ge(R->wake_back, 0);
	ck_assert_int_ge(R->wake_front, 0);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_t tb, tf;
	ck_assert_int_eq(pthread_create(&tb, NULL, race_back_main, R), 0);
	ck_assert_int_eq(pthread_create(&tf, NULL, race_front_main, R), 0);
	pthread_join(tf, NULL);
	if (R->err_front[0]) /* the back may wait for requests that never come */
		evt_send(R->wake_back);
	pthread_join(tb, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr,
		"ring race: %" PRIu64 " msgs order %u start %#x spin %" PRIu64 "ns%s%s: %.2fs; "
		"to back: %" PRIu64 " notifies, %" PRIu64 " arms, %" PRIu64 " sleeps; "
		"to front: %" PRIu64 " notifies, %" PRIu64 " arms, %" PRIu64 " sleeps\n",
		n, order, start, spin_ns, never_arm ? " never-arm" : "", defer ? " deferred" : "",
		secs, R->notify_back, R->arms_back, R->sleeps_back, R->notify_front, R->arms_front,
		R->sleeps_front);

	ck_assert_msg(!R->err_back[0], "backend: %s", R->err_back);
	ck_assert_msg(!R->err_front[0], "frontend: %s", R->err_front);
	/* No lost wake-up: no sleep ever had to time out. */
	ck_assert_msg(R->lost_back == 0, "%" PRIu64 " backend sleeps timed out", R->lost_back);
	ck_assert_msg(R->lost_front == 0, "%" PRIu64 " frontend sleeps timed out", R->lost_front);
	/* Every request consumed and answered exactly once. */
	ck_assert_uint_eq(R->b.req_cons, (uint32_t)(start + n));
	ck_assert_uint_eq(R->f.rsp_cons, (uint32_t)(start + n));
	/* Notifications only where the rule requires them: the producer's index
	 * only moves forward, so each event value the consumer sets (one per arm,
	 * plus the initial one) can be crossed by one push at most. */
	ck_assert_uint_le(R->notify_back, R->arms_back + 1);
	ck_assert_uint_le(R->notify_front, R->arms_front + 1);
	if (never_arm) {
		/* Nobody ever asked again after the initial event index. */
		ck_assert_uint_eq(R->notify_back, 1);
		ck_assert_uint_eq(R->notify_front, 1);
	} else {
		/* And a sleeper is only ever woken by a notification. */
		ck_assert_uint_le(R->sleeps_back, R->notify_back);
		ck_assert_uint_le(R->sleeps_front, R->notify_front);
	}
	close(R->wake_back);
	close(R->wake_front);
	free(page);
	free(R);
}

/* Pure event-driven: every idle moment sleeps on the eventfd. */
START_TEST(test_race_sleeping)
{
	run_race(1000000, 0, 0, 0, false, false);
}
END_TEST

/* Adaptive: spin 20 us before sleeping. */
START_TEST(test_race_adaptive)
{
	run_race(4000000, 1, 0, 20000, false, false);
}
END_TEST

/* Consumers that never re-arm: exactly one notification each way. */
START_TEST(test_race_no_arm)
{
	run_race(4000000, 0, 0, 0, true, false);
}
END_TEST

/* Producers push as they go and check only before waiting: the check
 * covers the plain pushes, so no wake-up is lost. */
START_TEST(test_race_deferred)
{
	run_race(1000000, 0, 0, 0, false, true);
	run_race(3000000, 1, UINT32_MAX - 777, 20000, false, true);
}
END_TEST

/* Indices start just below 2^32 and wrap during the race. */
START_TEST(test_race_wrap)
{
	run_race(1000000, 0, UINT32_MAX - 5000, 0, false, false);
	run_race(2000000, 4, UINT32_MAX - 100000, 5000, false, false);
}
END_TEST

/* Depth 1 ping-pong with sleeping on both sides: every message needs a
 * wake-up, so a lost one would show at once. */
struct pingpong {
	struct tring_front f;
	struct tring_back b;
	int wake_back, wake_front;
	uint64_t n;
	uint64_t lost;
	char err[100];
};

static void *pp_back_main(void *arg)
{
	struct pingpong *P = arg;
	uint32_t n;
	uint64_t v;
	for (uint64_t i = 0; i < P->n;) {
		int rc = tring_back_take_request(&P->b, &v);
		if (rc == 0) {
			*tring_back_next_rsp(&P->b) = v + 1;
			if (tring_back_push_responses_check_notify(&P->b))
				evt_send(P->wake_front);
			i++;
			continue;
		}
		if (tring_back_final_check_for_requests(&P->b, &n) < 0) {
			snprintf(P->err, sizeof(P->err), "final check failed");
			return NULL;
		}
		if (n == 0 && !evt_wait(P->wake_back))
			P->lost++;
	}
	return NULL;
}

START_TEST(test_pingpong_wakeups)
{
	struct pingpong *P = calloc(1, sizeof(*P));
	void *page = alloc_ring(0);
	ck_assert_int_eq(tring_front_init(&P->f, page, 0), 0);
	ck_assert_int_eq(tring_back_attach(&P->b, page, 0), 0);
	P->wake_back = eventfd(0, 0);
	P->wake_front = eventfd(0, 0);
	P->n = 50000;
	pthread_t tb;
	ck_assert_int_eq(pthread_create(&tb, NULL, pp_back_main, P), 0);
	uint64_t notifies = 0, lost = 0;
	for (uint64_t i = 0; i < P->n; i++) {
		*tring_front_next_req(&P->f) = i * 2;
		if (tring_front_push_requests_check_notify(&P->f)) {
			notifies++;
			evt_send(P->wake_back);
		}
		uint64_t v;
		uint32_t n;
		while (tring_front_take_response(&P->f, &v) == -EAGAIN) {
			ck_assert_int_eq(tring_front_final_check_for_responses(&P->f, &n), 0);
			if (n == 0 && !evt_wait(P->wake_front))
				lost++;
		}
		ck_assert_uint_eq(v, i * 2 + 1);
	}
	pthread_join(tb, NULL);
	ck_assert_msg(!P->err[0], "%s", P->err);
	ck_assert_uint_eq(lost, 0);
	ck_assert_uint_eq(P->lost, 0);
	ck_assert_uint_le(notifies, P->n);
	close(P->wake_back);
	close(P->wake_front);
	free(page);
	free(P);
}
END_TEST

Suite *ring_suite(void);
Suite *ring_suite(void)
{
	Suite *s = suite_create("ring");
	TCase *tc = tcase_create("layout");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_layout_matches_xen);
	tcase_add_test(tc, test_layout_ring_sizes);
	tcase_add_test(tc, test_headers_alone);
	suite_add_tcase(s, tc);

	tc = tcase_create("api");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_init_attach);
	tcase_add_test(tc, test_roundtrip_and_limits);
	tcase_add_test(tc, test_request_overflow);
	tcase_add_test(tc, test_response_overflow);
	tcase_add_test(tc, test_copy_out);
	tcase_add_test(tc, test_event_rule_arith);
	tcase_add_test(tc, test_notify_rule);
	tcase_add_test(tc, test_final_check_sees_late_push);
	tcase_add_test(tc, test_deferred_check);
	tcase_add_test(tc, test_wrap_single);
	tcase_add_test(tc, test_poll_helper);
	suite_add_tcase(s, tc);

	tc = tcase_create("race");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_race_sleeping);
	tcase_add_test(tc, test_race_adaptive);
	tcase_add_test(tc, test_race_no_arm);
	tcase_add_test(tc, test_race_wrap);
	tcase_add_test(tc, test_race_deferred);
	tcase_add_test(tc, test_pingpong_wakeups);
	suite_add_tcase(s, tc);
	return s;
}
