// SPDX-License-Identifier: MIT
// Test domain kernel that makes hypercalls by hand (tests/integration/
// hvtest_msg.h) as argv[1] says, printing results on its console:
//   info       DOMAIN_INFO(self), STORE_SEG, a dom0-only op; then sleep
//   truncated | oversized | short | unknown | fds | huge | manyfds
//              one malformed message
//   grant      learn the peer from port 2 (dom0 allocates it unbound with
//              remote = peer), allocate a 4-page segment for it, grant
//              ref 8 (rw, frame 0), 9 (ro, frame 1), 11 (frame 0 to another
//              domain), 12 (a frame in no segment); then watch ref 8: once
//              mapped, try to end access every 10 ms and say how it went
//   map        learn the granter from port 2, map its ref 8 rw; sleep
//   device     wait for a device, take it, write to it, take it again
//   memlimit   allocate 1 MiB segments until refused, try a 64 MiB malloc
#include "tests/integration/hvtest_msg.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int hfd = 3;

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void sleep_forever(void)
{
	for (;;)
		sleep_ms(1000);
}

static domid_t learn_peer(void)
{
	for (;;) {
		struct hv_evtchn_status_req q = {.dom = DOMID_SELF, .port = 2};
		struct hvt_msg *m = malloc(sizeof(*m));
		int r = hvt_call(hfd, HV_OP_EVTCHN_STATUS, &q, sizeof(q), NULL, 0, m);
		struct hv_evtchn_status_rep st;
		memcpy(&st, m->payload, sizeof(st));
		free(m);
		if (r == 0 && st.status == EVTCHNSTAT_unbound)
			return st.remote_dom;
		sleep_ms(5);
	}
}

static int malformed(const char *mode)
{
	struct hv_hdr h = {.op = HV_OP_DOMAIN_INFO, .id = 1};
	uint8_t buf[64] = {0};
	printf("hcall: sending %s\n", mode);
	if (!strcmp(mode, "truncated")) {
		h.len = 4 + 8; /* says more than it carries */
		return hvt_send(hfd, &h, buf, 4, NULL, 0);
	}
	if (!strcmp(mode, "oversized")) {
		h.len = 8; /* DOMAIN_INFO takes 4 */
		return hvt_send(hfd, &h, buf, 8, NULL, 0);
	}
	if (!strcmp(mode, "short")) /* 8 bytes: less than a header */
		return send(hfd, buf, 8, 0) == 8 ? 0 : -errno;
	if (!strcmp(mode, "unknown")) {
		h.op = 999;
		return hvt_send(hfd, &h, NULL, 0, NULL, 0);
	}
	if (!strcmp(mode, "huge")) {
		/* A datagram larger than HV_MSG_MAX, its header consistent. */
		static uint8_t big[HV_MSG_MAX + 4096];
		h.len = sizeof(big);
		return hvt_send(hfd, &h, big, sizeof(big), NULL, 0);
	}
	if (!strcmp(mode, "manyfds")) {
		int fds[HV_MAX_FDS + 4];
		for (unsigned i = 0; i < HV_MAX_FDS + 4; i++)
			fds[i] = 1;
		h.op = HV_OP_DOMCTL_ASSIGN_DEVICE;
		h.len = sizeof(struct hv_assign_device_req);
		return hvt_send(hfd, &h, buf, h.len, fds, HV_MAX_FDS + 4);
	}
	if (!strcmp(mode, "fds")) {
		h.len = 4;
		int fds[1] = {1};
		return hvt_send(hfd, &h, buf, 4, fds, 1);
	}
	return -EINVAL;
}

static void do_info(void)
{
	struct hvt_msg *m = malloc(sizeof(*m));
	struct hv_domain_info_req q = {.domid = DOMID_SELF};
	int r = hvt_call(hfd, HV_OP_DOMAIN_INFO, &q, sizeof(q), NULL, 0, m);
	struct hv_domain_info info;
	memcpy(&info, m->payload, sizeof(info));
	printf("hcall: info ret=%d domid=%u name=%s store_port=%u store_frame=%u pid=%d\n", r,
	       info.domid, info.name, info.store_port, info.store_frame, info.pid);
	r = hvt_call(hfd, HV_OP_STORE_SEG, NULL, 0, NULL, 0, m);
	struct hv_seg_alloc_rep seg;
	memcpy(&seg, m->payload, sizeof(seg));
	printf("hcall: store_seg ret=%d frame=%u npages=%u fds=%u\n", r, seg.first_frame,
	       seg.npages, m->nfds);
	hvt_msg_close_fds(m);
	r = hvt_call(hfd, HV_OP_DOMCTL_LIST, NULL, 0, NULL, 0, NULL);
	printf("hcall: list ret=%d\n", r);
	q.domid = 0;
	r = hvt_call(hfd, HV_OP_DOMAIN_INFO, &q, sizeof(q), NULL, 0, NULL);
	printf("hcall: info(0) ret=%d\n", r);
	free(m);
}

static void do_grant(void)
{
	domid_t peer = learn_peer();
	struct hvt_msg *m = malloc(sizeof(*m));
	struct hv_gnttab_setup_req gq = {.nr_entries = 64};
	int r = hvt_call(hfd, HV_OP_GNTTAB_SETUP, &gq, sizeof(gq), NULL, 0, m);
	if (r || m->nfds != 1) {
		printf("hcall: gnttab_setup failed %d\n", r);
		sleep_forever();
	}
	struct hv_gnttab_setup_rep grep;
	memcpy(&grep, m->payload, sizeof(grep));
	struct grant_entry_v1 *gt = mmap(NULL, grep.nr_entries * sizeof(*gt),
					 PROT_READ | PROT_WRITE, MAP_SHARED, m->fds[0], 0);
	close(m->fds[0]);
	struct hv_seg_alloc_req sq = {.peer = peer, .npages = 4};
	r = hvt_call(hfd, HV_OP_SEG_ALLOC, &sq, sizeof(sq), NULL, 0, m);
	if (r || m->nfds != 1 || gt == MAP_FAILED) {
		printf("hcall: seg_alloc failed %d\n", r);
		sleep_forever();
	}
	struct hv_seg_alloc_rep seg;
	memcpy(&seg, m->payload, sizeof(seg));
	char *mem = mmap(NULL, 4 * HV_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, m->fds[0], 0);
	close(m->fds[0]);
	for (int i = 0; i < 4; i++)
		snprintf(mem + i * HV_PAGE_SIZE, 64, "page%d of domain %s", i,
			 getenv("DRVDOM_DOMID"));
	struct {
		grant_ref_t ref;
		domid_t dom;
		uint32_t frame;
		uint16_t flags;
	} g[] = {
	    {8, peer, seg.first_frame, GTF_permit_access},
	    {9, peer, seg.first_frame + 1, GTF_permit_access | GTF_readonly},
	    {11, (domid_t)0x7000, seg.first_frame, GTF_permit_access},
	    {12, peer, 999999, GTF_permit_access},
	};
	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		gt[g[i].ref].domid = g[i].dom;
		gt[g[i].ref].frame = g[i].frame;
		atomic_thread_fence(memory_order_release);
		atomic_store_explicit((_Atomic uint16_t *)&gt[g[i].ref].flags, g[i].flags,
				      memory_order_relaxed);
	}
	printf("hcall: granted peer=%u first_frame=%u\n", peer, seg.first_frame);
	_Atomic uint16_t *f8 = (_Atomic uint16_t *)&gt[8].flags;
	while (!(atomic_load(f8) & GTF_reading))
		sleep_ms(5);
	printf("hcall: ref 8 mapped (flags %#x)\n", atomic_load(f8));
	bool said = false;
	for (;;) {
		uint16_t expect = GTF_permit_access;
		if (atomic_compare_exchange_strong(f8, &expect, 0)) {
			printf("hcall: endaccess 8: ok\n");
			break;
		}
		if (!said)
			printf("hcall: endaccess 8: refused (flags %#x)\n", expect);
		said = true;
		sleep_ms(10);
	}
	free(m);
	sleep_forever();
}

static void do_map(void)
{
	domid_t granter = learn_peer();
	struct {
		uint32_t n;
		struct hv_gnt_map_op op;
	} q = {1, {.domid = granter, .flags = 0, .ref = 8}};
	struct hvt_msg *m = malloc(sizeof(*m));
	struct hv_gnt_map_res res;
	int r;
	/* The granter may not have granted yet: retry a while. */
	for (int i = 0; i < 500; i++) {
		r = hvt_call(hfd, HV_OP_GNT_MAP, &q, sizeof(q), NULL, 0, m);
		memcpy(&res, m->payload + 4, sizeof(res));
		if (r || res.status != GNTST_general_error)
			break;
		sleep_ms(10);
	}
	printf("hcall: map %u/8 ret=%d status=%d fds=%u\n", granter, r, res.status, m->nfds);
	if (r == 0 && res.status == 0 && m->nfds == 1) {
		char *p = mmap(NULL, HV_PAGE_SIZE, PROT_READ, MAP_SHARED, m->fds[0], res.offset);
		printf("hcall: mapped: %s\n", p != MAP_FAILED ? p : "(mmap failed)");
	}
	sleep_forever();
}

static void do_device(void)
{
	struct hvt_msg *m = malloc(sizeof(*m));
	int r = hvt_wait_event(hfd, HV_EVT_DEVICE_ASSIGNED, 10000, m);
	struct hv_evt_device_assigned ev;
	memcpy(&ev, m->payload, sizeof(ev));
	ev.name[sizeof(ev.name) - 1] = 0;
	printf("hcall: device assigned ret=%d name=%s\n", r, ev.name);
	struct hv_device_req q;
	memset(&q, 0, sizeof(q));
	memcpy(q.name, ev.name, sizeof(q.name));
	r = hvt_call(hfd, HV_OP_DEVICE_GET, &q, sizeof(q), NULL, 0, m);
	printf("hcall: device get ret=%d fds=%u\n", r, m->nfds);
	if (r == 0 && m->nfds == 1) {
		ssize_t w = write(m->fds[0], "hello device", 12);
		printf("hcall: device write %zd\n", w);
		close(m->fds[0]);
	}
	r = hvt_call(hfd, HV_OP_DEVICE_GET, &q, sizeof(q), NULL, 0, m);
	printf("hcall: device get again ret=%d\n", r);
	free(m);
	sleep_forever();
}

/* Allocate 1 MiB segments for dom0 until refused; try a private 64 MiB. */
static void do_memlimit(void)
{
	int n = 0, r;
	struct hv_seg_alloc_req q = {.peer = 0, .npages = 256};
	struct hvt_msg *m = malloc(sizeof(*m));
	while ((r = hvt_call(hfd, HV_OP_SEG_ALLOC, &q, sizeof(q), NULL, 0, m)) == 0 && n < 1000) {
		hvt_msg_close_fds(m);
		n++;
	}
	free(m);
	void *big = malloc(64 << 20);
	printf("hcall: memlimit segments=%d ret=%d private64=%s\n", n, r, big ? "ok" : "refused");
	sleep_forever();
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "info";
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "info"))
		do_info();
	else if (!strcmp(mode, "grant"))
		do_grant();
	else if (!strcmp(mode, "map"))
		do_map();
	else if (!strcmp(mode, "device"))
		do_device();
	else if (!strcmp(mode, "memlimit"))
		do_memlimit();
	else if (malformed(mode))
		printf("hcall: bad mode %s\n", mode);
	/* A malformed sender is killed: wait for it. */
	for (int i = 0; i < 100; i++) {
		struct hv_hdr h = {.op = HV_OP_HEARTBEAT, .id = 7};
		hvt_send(hfd, &h, NULL, 0, NULL, 0);
		sleep_ms(50);
	}
	printf("hcall: still alive\n");
	sleep_forever();
}
