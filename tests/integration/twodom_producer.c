// SPDX-License-Identifier: MIT
// twodom producer: a static test domain kernel (started by drvdom-hv for
// check_twodom.c). It allocates one segment dedicated to its peer (data
// pages + a ring page), grants the data pages read-only (refs 8..) and the
// ring page (after initialising it), allocates an unbound port for the
// peer, then streams: fills a free data page with the position-dependent
// pattern, pushes a request, reuses the page when the response comes back.
// Usage: twodom_producer PEER_DOMID MIB|endless. With "endless" it runs
// until the peer dies, then checks that its port went back to unbound and
// that every grant can be ended and the segment freed. Results are console
// lines (see check_twodom.c). Protocol notes: twodom_common.h.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "grant/gnt.h"
#include "hv/evloop.h"
#include "hv/evtchn.h"
#include "hv/hvc.h"
#include "tests/integration/twodom_common.h"

static struct {
	struct hvc *h;
	struct evloop *loop;
	struct gnt_table *tbl;
	struct gnt_seg *seg;
	struct twodom_front ring;
	domid_t peer;
	evtchn_port_t port;
	grant_ref_t refs[TWODOM_PAGES + 1];
	uint32_t free_pages[TWODOM_PAGES];
	unsigned nfree;
	uint64_t total_pages; /* 0: endless */
	uint64_t next_seq, done_pages;
	uint64_t sum;
	uint64_t notifies;
	int peer_closed;
	int failed;
	/* Checked when the peer binds (it mapped everything before): ending a
	 * mapped grant is refused, and the hv's status bits are visible. */
	int bound_seen, busy_ring;
	uint16_t flags_data, flags_ring;
} P;

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void fail(const char *what, int err)
{
	printf("PRODUCER FAIL %s: %s\n", what, strerror(-err));
	fflush(stdout);
	exit(1);
}

static int producer_poll(void *arg, unsigned flags)
{
	(void)arg;
	int work = 0;
	struct twodom_rsp rsp;
	int r;
	while ((r = twodom_front_take_response(&P.ring, &rsp)) == 0) {
		if (rsp.id >= TWODOM_PAGES || rsp.status != 0) {
			printf("PRODUCER FAIL response id %u status %d\n", rsp.id, rsp.status);
			P.failed = 1;
			evloop_stop(P.loop);
			return 1;
		}
		P.free_pages[P.nfree++] = rsp.id;
		P.done_pages++;
		work++;
	}
	if (r == -EOVERFLOW) {
		printf("PRODUCER FAIL response index overflow\n");
		P.failed = 1;
		evloop_stop(P.loop);
		return 1;
	}
	int pushed = 0;
	while (P.nfree && !twodom_front_full(&P.ring) &&
	       (P.total_pages == 0 || P.next_seq < P.total_pages)) {
		uint32_t id = P.free_pages[--P.nfree];
		void *page = gnt_seg_page(P.seg, id);
		twodom_fill(page, P.next_seq);
		twodom_sum(page, &P.sum);
		struct twodom_req *q = twodom_front_next_req(&P.ring);
		q->id = id;
		q->gref = P.refs[id];
		q->seq = P.next_seq++;
		pushed++;
	}
	if (pushed) {
		work++;
		if (twodom_front_push_requests_check_notify(&P.ring)) {
			evtchn_notify(P.h, P.port);
			P.notifies++;
		}
	}
	if (P.total_pages && P.done_pages == P.total_pages) {
		evloop_stop(P.loop);
		return 1;
	}
	if (!work && (flags & EVLOOP_POLL_FINAL)) {
		uint32_t n = 0;
		if (twodom_front_final_check_for_responses(&P.ring, &n) == 0 && n)
			work = 1;
	}
	return work;
}

static void on_port(void *arg, evtchn_port_t port, enum evtchn_event ev)
{
	(void)arg;
	(void)port;
	if (ev == EVTCHN_EV_CLOSED) {
		P.peer_closed = 1;
		evloop_stop(P.loop);
	} else if (ev == EVTCHN_EV_BOUND && !P.bound_seen) {
		P.bound_seen = 1;
		P.busy_ring = gnt_end_access(P.tbl, P.refs[TWODOM_PAGES]);
		gnt_entry_flags(P.tbl, P.refs[0], &P.flags_data);
		gnt_entry_flags(P.tbl, P.refs[TWODOM_PAGES], &P.flags_ring);
	}
}

/* After the peer is gone: the port is unbound again and every grant can be
 * ended (the hv revoked the dead mapper's pins), then the segment freed. */
static void check_after_peer_death(void)
{
	struct hv_evtchn_status_rep st;
	int r = evtchn_status(P.h, DOMID_SELF, P.port, &st);
	if (r < 0)
		fail("evtchn_status", r);
	int ended = 0, tries = 0;
	for (unsigned i = 0; i <= TWODOM_PAGES; i++) {
		while ((r = gnt_end_access(P.tbl, P.refs[i])) == -EBUSY && tries < 5000) {
			tries++;
			sleep_ms(1);
		}
		if (r == 0)
			ended++;
	}
	int freed = gnt_seg_free(P.h, P.seg);
	printf("PRODUCER peer-closed port=%u status=%s ended=%d/%u busy-retries=%d seg-free=%d "
	       "pages=%llu\n",
	       P.port, st.status == EVTCHNSTAT_unbound ? "unbound" : "NOT-unbound", ended,
	       TWODOM_PAGES + 1, tries, freed, (unsigned long long)P.done_pages);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	log_init("twodom_producer");
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 3) {
		printf("PRODUCER FAIL usage\n");
		return 2;
	}
	P.peer = (domid_t)atoi(argv[1]);
	P.total_pages = strcmp(argv[2], "endless") ? strtoull(argv[2], NULL, 10) * 256u : 0;
	int r = hvc_open_domain(&P.h);
	if (r < 0)
		fail("hvc_open_domain", r);
	domid_t self;
	if ((r = hvc_self_domid(P.h, &self)) < 0)
		fail("domain info", r);
	if ((r = gnt_table_open(P.h, 1024, &P.tbl)) < 0)
		fail("gnt_table_open", r);
	/* The peer may not exist yet: retry. */
	for (int i = 0;
	     (r = gnt_seg_alloc(P.h, P.peer, TWODOM_PAGES + 1, &P.seg)) == -ESRCH && i < 10000; i++)
		sleep_ms(1);
	if (r < 0)
		fail("gnt_seg_alloc", r);
	for (uint32_t i = 0; i < TWODOM_PAGES; i++) {
		if ((r = gnt_grant_access(P.tbl, P.peer, gnt_seg_frame(P.seg, i), 1, &P.refs[i])))
			fail("grant data", r);
		if (P.refs[i] != TWODOM_FIRST_REF + i)
			fail("deterministic ref", -EPROTO);
		P.free_pages[P.nfree++] = TWODOM_PAGES - 1 - i;
	}
	void *ring_page = gnt_seg_page(P.seg, TWODOM_PAGES);
	if ((r = twodom_front_init(&P.ring, ring_page, 0)) < 0)
		fail("ring init", r);
	if ((r = gnt_grant_access(P.tbl, P.peer, gnt_seg_frame(P.seg, TWODOM_PAGES), 0,
				  &P.refs[TWODOM_PAGES])))
		fail("grant ring", r);
	for (int i = 0; (r = evtchn_alloc_unbound(P.h, P.peer, &P.port)) == -ESRCH && i < 10000;
	     i++)
		sleep_ms(1);
	if (r < 0)
		fail("evtchn_alloc_unbound", r);
	printf("PRODUCER ready dom=%u peer=%u port=%u ring-ref=%u\n", self, P.peer, P.port,
	       P.refs[TWODOM_PAGES]);
	fflush(stdout);

	if ((r = evloop_create(P.h, &P.loop)) < 0)
		fail("evloop_create", r);
	evloop_add_port(P.loop, P.port, on_port, NULL);
	evloop_add_poller(P.loop, producer_poll, NULL);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = evloop_run(P.loop);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r < 0)
		fail("evloop_run", r);
	if (P.failed)
		return 1;
	if (P.peer_closed) {
		check_after_peer_death();
		return 0;
	}
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	struct evloop_stats st;
	evloop_get_stats(P.loop, &st);
	printf("PRODUCER done bytes=%llu pages=%llu sum=%016llx notifies=%llu sleeps=%llu "
	       "secs=%.3f ring-end-access=%d flags=%#x/%#x\n",
	       (unsigned long long)(P.done_pages * HV_PAGE_SIZE), (unsigned long long)P.done_pages,
	       (unsigned long long)P.sum, (unsigned long long)P.notifies,
	       (unsigned long long)st.sleeps, s, P.busy_ring, P.flags_data, P.flags_ring);
	/* Wait for the consumer to unmap and go, then end every grant. */
	evloop_del_poller(P.loop, producer_poll, NULL);
	while (!P.peer_closed) {
		r = evloop_run_once(P.loop, 100);
		if (r < 0)
			break;
	}
	int ended = 0;
	for (unsigned i = 0; i <= TWODOM_PAGES; i++) {
		for (int k = 0; k < 5000 && (r = gnt_end_access(P.tbl, P.refs[i])) == -EBUSY; k++)
			sleep_ms(1);
		ended += r == 0;
	}
	printf("PRODUCER grants-ended=%d/%u\n", ended, TWODOM_PAGES + 1);
	fflush(stdout);
	evloop_destroy(P.loop);
	hvc_close(P.h);
	return 0;
}
