// SPDX-License-Identifier: MIT
// twodom consumer: a static test domain kernel (started by drvdom-hv for
// check_twodom.c), the backend side of the twodom ring. It maps the
// producer's ring grant (retrying until the producer has made it), binds
// to the producer's port (trying its ports in turn until one is unbound
// for us), then consumes requests: checks each request (copied out of the
// ring first), reads the page — mapped read-only (mode "map": all data
// pages mapped once, like persistent grants) or fetched by the hv with
// grant copy into a segment of its own (mode "copy") — verifies the
// position-dependent pattern and answers. Usage: twodom_consumer
// PEER_DOMID map|copy MIB|endless. Reports on its console (check_twodom.c
// parses it); in endless mode prints progress until it is killed.
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

#define COPY_BATCH 64u

static struct {
	struct hvc *h;
	struct evloop *loop;
	struct twodom_back ring;
	domid_t peer;
	evtchn_port_t port;
	int copy_mode;
	gnt_handle_t ring_handle;
	struct gnt_map_op maps[TWODOM_PAGES];
	struct gnt_seg *buf; /* copy mode: COPY_BATCH pages of our own */
	uint64_t total_pages, next_seq, errors, sum, notifies, copies;
	uint64_t progress_mark;
	int peer_closed;
	int stopped_bad;
} C;

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void fail(const char *what, int err)
{
	printf("CONSUMER FAIL %s: %s\n", what, strerror(-err));
	fflush(stdout);
	exit(1);
}

static int check_page(const struct twodom_req *q, const void *page)
{
	int bad = twodom_check(page, q->seq, &C.sum);
	if (bad >= 0) {
		if (C.errors++ < 5)
			printf("CONSUMER bad data seq=%llu word=%d\n", (unsigned long long)q->seq,
			       bad);
		return -EILSEQ;
	}
	return 0;
}

/* Validate a request copied out of the ring. */
static int check_req(const struct twodom_req *q)
{
	if (q->id >= TWODOM_PAGES || q->gref != TWODOM_FIRST_REF + q->id) {
		printf("CONSUMER bad request id=%u gref=%u\n", q->id, q->gref);
		return -EINVAL;
	}
	if (q->seq != C.next_seq) {
		printf("CONSUMER out of order: seq=%llu expected %llu\n",
		       (unsigned long long)q->seq, (unsigned long long)C.next_seq);
		return -EINVAL;
	}
	C.next_seq++;
	return 0;
}

static void respond(uint32_t id, int status)
{
	struct twodom_rsp *p = twodom_back_next_rsp(&C.ring);
	p->id = id;
	p->status = status;
}

static int consumer_poll(void *arg, unsigned flags)
{
	(void)arg;
	struct twodom_req reqs[COPY_BATCH];
	unsigned n = 0;
	int r;
	while (n < COPY_BATCH && (r = twodom_back_take_request(&C.ring, &reqs[n])) == 0)
		n++;
	if (n == 0 && r == -EOVERFLOW) {
		printf("CONSUMER FAIL request index overflow\n");
		C.stopped_bad = 1;
		evloop_stop(C.loop);
		return 1;
	}
	if (n == 0) {
		if (flags & EVLOOP_POLL_FINAL) {
			uint32_t k = 0;
			if (twodom_back_final_check_for_requests(&C.ring, &k) == 0 && k)
				return 1;
		}
		return 0;
	}
	int st[COPY_BATCH];
	for (unsigned i = 0; i < n; i++)
		st[i] = check_req(&reqs[i]);
	if (C.copy_mode) {
		struct hv_gnt_copy ops[COPY_BATCH];
		memset(ops, 0, sizeof(ops));
		for (unsigned i = 0; i < n; i++) {
			ops[i].source.u = reqs[i].gref;
			ops[i].source.domid = C.peer;
			ops[i].dest.u = gnt_seg_frame(C.buf, i);
			ops[i].dest.domid = DOMID_SELF;
			ops[i].len = HV_PAGE_SIZE;
			ops[i].flags = GNTCOPY_source_gref;
		}
		r = gnt_copy(C.h, ops, n);
		if (r < 0 && r != -EIO)
			fail("gnt_copy", r);
		C.copies++;
		for (unsigned i = 0; i < n; i++) {
			if (st[i] == 0 && ops[i].status != GNTST_okay) {
				printf("CONSUMER copy status %d\n", ops[i].status);
				st[i] = -EIO;
				C.errors++;
			}
			if (st[i] == 0)
				st[i] = check_page(&reqs[i], gnt_seg_page(C.buf, i));
		}
	} else {
		for (unsigned i = 0; i < n; i++)
			if (st[i] == 0)
				st[i] = check_page(&reqs[i], C.maps[reqs[i].id].addr);
	}
	for (unsigned i = 0; i < n; i++)
		respond(reqs[i].id < TWODOM_PAGES ? reqs[i].id : 0, st[i]);
	if (twodom_back_push_responses_check_notify(&C.ring)) {
		evtchn_notify(C.h, C.port);
		C.notifies++;
	}
	if (C.total_pages == 0 && C.next_seq - C.progress_mark >= 16384) { /* 64 MiB */
		C.progress_mark = C.next_seq;
		printf("CONSUMER progress MiB=%llu\n", (unsigned long long)(C.next_seq / 256));
		fflush(stdout);
	}
	if (C.total_pages && C.next_seq >= C.total_pages)
		evloop_stop(C.loop);
	return 1;
}

static void on_port(void *arg, evtchn_port_t port, enum evtchn_event ev)
{
	(void)arg;
	(void)port;
	if (ev == EVTCHN_EV_CLOSED) {
		C.peer_closed = 1;
		evloop_stop(C.loop);
	}
}

int main(int argc, char **argv)
{
	log_init("twodom_consumer");
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 4) {
		printf("CONSUMER FAIL usage\n");
		return 2;
	}
	C.peer = (domid_t)atoi(argv[1]);
	C.copy_mode = !strcmp(argv[2], "copy");
	C.total_pages = strcmp(argv[3], "endless") ? strtoull(argv[3], NULL, 10) * 256u : 0;
	int r = hvc_open_domain(&C.h);
	if (r < 0)
		fail("hvc_open_domain", r);
	domid_t self;
	if ((r = hvc_self_domid(C.h, &self)) < 0)
		fail("domain info", r);

	/* Rendezvous 1: the ring grant appears once the producer made it (it
	 * grants the data pages first, so they exist by then). */
	void *ring_page = NULL;
	int tries = 0;
	while ((r = gnt_map(C.h, C.peer, TWODOM_RING_REF, 0, &ring_page, &C.ring_handle)) < 0) {
		if (++tries > 20000)
			fail("map ring", r);
		sleep_ms(1);
	}
	if ((r = twodom_back_attach(&C.ring, ring_page, 0)) < 0)
		fail("ring attach", r);
	if (C.copy_mode) {
		if ((r = gnt_seg_alloc(C.h, C.peer, COPY_BATCH, &C.buf)) < 0)
			fail("seg_alloc", r);
	} else {
		for (uint32_t i = 0; i < TWODOM_PAGES; i++)
			C.maps[i] = (struct gnt_map_op){
			    .domid = C.peer, .flags = GNTMAP_readonly, .ref = TWODOM_FIRST_REF + i};
		if ((r = gnt_map_batch(C.h, C.maps, TWODOM_PAGES)) < 0)
			fail("map data", r);
	}
	/* Rendezvous 2: the producer's port (its first one after start info). */
	for (tries = 0;; tries++) {
		for (evtchn_port_t p = 1; p < TWODOM_MAX_PORT; p++) {
			r = evtchn_bind_interdomain(C.h, C.peer, p, &C.port);
			if (r == 0)
				break;
		}
		if (r == 0)
			break;
		if (tries > 20000)
			fail("bind", r);
		sleep_ms(1);
	}
	printf("CONSUMER ready dom=%u peer=%u port=%u mode=%s\n", self, C.peer, C.port,
	       C.copy_mode ? "copy" : "map");
	fflush(stdout);

	if ((r = evloop_create(C.h, &C.loop)) < 0)
		fail("evloop_create", r);
	evloop_add_port(C.loop, C.port, on_port, NULL);
	evloop_add_poller(C.loop, consumer_poll, NULL);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = evloop_run(C.loop);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r < 0)
		fail("evloop_run", r);
	if (C.stopped_bad)
		return 1;
	if (C.peer_closed) {
		struct hv_evtchn_status_rep st;
		r = evtchn_status(C.h, DOMID_SELF, C.port, &st);
		printf("CONSUMER peer-closed port=%u status=%s pages=%llu\n", C.port,
		       r == 0 && st.status == EVTCHNSTAT_unbound ? "unbound" : "NOT-unbound",
		       (unsigned long long)C.next_seq);
		fflush(stdout);
		return 0;
	}
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	struct evloop_stats es;
	evloop_get_stats(C.loop, &es);
	printf("CONSUMER done bytes=%llu pages=%llu sum=%016llx errors=%llu notifies=%llu "
	       "sleeps=%llu copies=%llu secs=%.3f MiB/s=%.0f\n",
	       (unsigned long long)(C.next_seq * HV_PAGE_SIZE), (unsigned long long)C.next_seq,
	       (unsigned long long)C.sum, (unsigned long long)C.errors,
	       (unsigned long long)C.notifies, (unsigned long long)es.sleeps,
	       (unsigned long long)C.copies, s, (double)C.next_seq / 256.0 / s);
	fflush(stdout);
	/* Unmap everything, then go: the producer can end its grants. */
	if (!C.copy_mode) {
		gnt_handle_t hs[TWODOM_PAGES];
		for (unsigned i = 0; i < TWODOM_PAGES; i++)
			hs[i] = C.maps[i].handle;
		if ((r = gnt_unmap_batch(C.h, hs, TWODOM_PAGES, NULL)) < 0)
			printf("CONSUMER unmap data: %s\n", strerror(-r));
	}
	if ((r = gnt_unmap(C.h, C.ring_handle)) < 0)
		printf("CONSUMER unmap ring: %s\n", strerror(-r));
	evtchn_close(C.h, C.port);
	printf("CONSUMER exit\n");
	fflush(stdout);
	evloop_destroy(C.loop);
	hvc_close(C.h);
	return 0;
}
