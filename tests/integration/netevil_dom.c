// SPDX-License-Identifier: MIT
// A malicious netif frontend for the net suite (a static guest domain
// kernel, started with extra_args = [MODE]): it does the netif handshake
// itself on device/vif/0 (no TAP), then as MODE says:
//   offset  a tx request whose offset + size runs past its page, then a good
//           frame: the first must be answered NETIF_RSP_ERROR, the second
//           NETIF_RSP_OKAY (the vif stays up)
//   zero    a packet with a zero-length fragment, then a good frame: same
//   slots   a packet of XEN_NETIF_NR_SLOTS_MIN + 1 slots: the backend must
//           disconnect (state Closing)
//   jump    req_prod moved 5000 slots ahead: the backend must disconnect
//   norx    one good broadcast frame (so the bridge learns our MAC), then
//           never post an rx buffer while the suite floods us
//   split   not malicious: split event channels (event-channel-tx/-rx),
//           one good frame must be answered NETIF_RSP_OKAY
//   mq-many  multi-queue-num-queues one more than the backend's
//            multi-queue-max-queues (queue-N keys for all of them)
//   mq-noref multi-queue-num-queues 2, queue-1 without tx-ring-ref
//   mq-zero  multi-queue-num-queues 0
//   mq-junk  multi-queue-num-queues "two"
//           for each mq-*: the backend must refuse the vif (state Closing,
//           its error key set) and stay up
//   drvdom-rings, the combined key of the fast reconnect (docs/recovery.md,
//   "Failover (network)"):
//   rings-only      only a well-formed drvdom-rings, no single ring keys:
//                   served from it (one good frame answered NETIF_RSP_OKAY)
//   rings-junk      a malformed drvdom-rings beside good single keys: the
//                   single keys are read, served
//   rings-junk-only a malformed drvdom-rings and no single keys: refused
//   rings-port      well-formed, event-channel past the last port (good
//                   single keys beside it): refused, not read from the
//                   single keys
//   rings-queues    well-formed, one queue more than offered: refused
//   rings-ref       well-formed, a ring ref never granted: refused
//   rings-copy      well-formed, request-rx-copy=0: refused
//           each refused one: the backend goes Closing with its error key
//           set and stays up
// The result goes to data/result in the domain's own xenstore directory
// ("ok ..." or "fail: ..."), read by the suite from dom0.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "grant/gnt.h"
#include "hv/evtchn.h"
#include "hv/hvc.h"
#include "ring/netif.h"
#include "ring/xenbus.h"
#include "tests/integration/netevil_common.h"
#include "xenstore/include/xenstore.h"
#include "xenstore/xs_transport.h"

static struct hvc *h;
static domid_t be_domid;
static char fe[128], be[128];
static struct netif_tx_ring_front tx;
static struct netif_rx_ring_front rx;
static struct gnt_seg *rings, *data;
static grant_ref_t data_ref[4];
static evtchn_port_t port, port_rx;
static int split;
static const char *mq; /* an mq-* mode */
static const char *rk; /* a rings-* mode (drvdom-rings) */

static void wrs(const char *key, const char *b)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", fe, key);
	xs_write(xs, XBT_NULL, p, b, (unsigned)strlen(b));
}

static void wr(const char *key, unsigned long v)
{
	char b[32];
	snprintf(b, sizeof(b), "%lu", v);
	wrs(key, b);
}

static int wait_be_state(int want, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (rd(be, "state") == want)
			return 0;
		sleep_ms(10);
	}
	return -ETIMEDOUT;
}

/* A broadcast frame of len bytes in data page `page`. */
static void frame(unsigned page, unsigned len)
{
	unsigned char *p = gnt_seg_page(data, page);
	memset(p, 0xff, 6);
	unsigned char src[6] = {0x00, 0x16, 0x3e, 0x00, 0x00, 0x66};
	memcpy(p + 6, src, 6);
	p[12] = 0x88, p[13] = 0xb5; /* local experimental ethertype */
	memset(p + 14, 0xab, len - 14);
}

static void push(void)
{
	if (netif_tx_ring_front_push_requests_check_notify(&tx))
		evtchn_notify(h, port);
}

static void req(uint16_t id, unsigned page, uint16_t off, uint16_t size, uint16_t flags)
{
	union netif_tx_req_slot *s = netif_tx_ring_front_next_req(&tx);
	s->req.gref = data_ref[page];
	s->req.offset = off;
	s->req.size = size;
	s->req.flags = flags;
	s->req.id = id;
}

/* Wait for a response with this id; its status, or 99 on timeout. */
static int wait_rsp(uint16_t id)
{
	for (int i = 0; i < 300; i++) {
		struct netif_tx_rsp r;
		while (netif_tx_ring_front_take_response(&tx, &r) == 0)
			if (r.id == id && r.status != NETIF_RSP_NULL)
				return r.status;
		sleep_ms(10);
	}
	return 99;
}

static int connect_be(void)
{
	int r;
	struct gnt_table *gt;
	if ((r = gnt_table_open(h, 64, &gt)) || (r = gnt_seg_alloc(h, be_domid, 2, &rings)) ||
	    (r = gnt_seg_alloc(h, be_domid, 4, &data)))
		return r;
	grant_ref_t rr[2];
	for (unsigned i = 0; i < 2; i++)
		if ((r = gnt_grant_access(gt, be_domid, gnt_seg_frame(rings, i), 0, &rr[i])))
			return r;
	for (unsigned i = 0; i < 4; i++)
		if ((r = gnt_grant_access(gt, be_domid, gnt_seg_frame(data, i), 0, &data_ref[i])))
			return r;
	netif_tx_ring_front_init(&tx, gnt_seg_page(rings, 0), 0);
	netif_rx_ring_front_init(&rx, gnt_seg_page(rings, 1), 0);
	if ((r = evtchn_alloc_unbound(h, be_domid, &port)))
		return r;
	if (split && (r = evtchn_alloc_unbound(h, be_domid, &port_rx)))
		return r;
	if (wait_be_state(XENBUS_STATE_INIT_WAIT, 10000))
		return -ETIMEDOUT;
	if (mq) {
		/* every queue's keys name the same (valid) rings and channel:
		 * the backend must refuse before it would map anything twice */
		long max = rd(be, "multi-queue-max-queues");
		long nq = !strcmp(mq, "mq-many") ? max + 1 : 2;
		for (long k = 0; k < nq && k < 8; k++) {
			char key[64];
			snprintf(key, sizeof(key), "queue-%ld/tx-ring-ref", k);
			if (k == 0 || strcmp(mq, "mq-noref"))
				wr(key, rr[0]);
			snprintf(key, sizeof(key), "queue-%ld/rx-ring-ref", k);
			wr(key, rr[1]);
			snprintf(key, sizeof(key), "queue-%ld/event-channel", k);
			wr(key, port);
		}
		if (!strcmp(mq, "mq-zero"))
			wrs("multi-queue-num-queues", "0");
		else if (!strcmp(mq, "mq-junk"))
			wrs("multi-queue-num-queues", "two");
		else
			wr("multi-queue-num-queues", (unsigned long)nq);
		wr("request-rx-copy", 1);
		wr("state", XENBUS_STATE_INITIALISED);
		return 0;
	}
	if (rk) {
		char k[512];
		unsigned tref = rr[0], p = port, nq = 1, copy = 1;
		if (!strcmp(rk, "rings-port"))
			p = 4096 + 7; /* HV_EVTCHN_PORTS + 7 */
		if (!strcmp(rk, "rings-ref"))
			tref = 60; /* a ref of our table never granted */
		if (!strcmp(rk, "rings-copy"))
			copy = 0;
		if (!strcmp(rk, "rings-queues"))
			nq = (unsigned)rd(be, "multi-queue-max-queues") + 1;
		char ltx[64] = "", lrx[64] = "", lev[64] = "";
		for (unsigned q = 0; q < nq && q < 8; q++) {
			size_t l = strlen(ltx);
			snprintf(ltx + l, sizeof(ltx) - l, "%s%u", q ? "," : "", tref);
			l = strlen(lrx);
			snprintf(lrx + l, sizeof(lrx) - l, "%s%u", q ? "," : "", rr[1]);
			l = strlen(lev);
			snprintf(lev + l, sizeof(lev) - l, "%s%u", q ? "," : "", p);
		}
		if (!strncmp(rk, "rings-junk", 10))
			snprintf(k, sizeof(k),
				 "multi-queue-num-queues=1 tx-ring-ref=%u rx-ring-ref=%u "
				 "event-channel=%u request-rx-copy=1 feature-rx-notify=0 "
				 "feature-sg=1 feature-gso-tcpv4=0 feature-gso-tcpv6=0 "
				 "drvdom-persistent-grants=0 feature-sg=1", /* a name twice */
				 tref, rr[1], p);
		else
			snprintf(k, sizeof(k),
				 "multi-queue-num-queues=%u tx-ring-ref=%s rx-ring-ref=%s "
				 "event-channel=%s request-rx-copy=%u feature-rx-notify=0 "
				 "feature-sg=1 feature-gso-tcpv4=0 feature-gso-tcpv6=0 "
				 "drvdom-persistent-grants=0",
				 nq, ltx, lrx, lev, copy);
		wrs("drvdom-rings", k);
		if (!strcmp(rk, "rings-only") || !strcmp(rk, "rings-junk-only")) {
			wr("state", XENBUS_STATE_INITIALISED);
			if (!strcmp(rk, "rings-junk-only"))
				return 0;
			if (wait_be_state(XENBUS_STATE_CONNECTED, 10000))
				return -ETIMEDOUT;
			wr("state", XENBUS_STATE_CONNECTED);
			return 0;
		}
	}
	wr("tx-ring-ref", rr[0]);
	wr("rx-ring-ref", rr[1]);
	if (split) {
		wr("event-channel-tx", port);
		wr("event-channel-rx", port_rx);
	} else {
		wr("event-channel", port);
	}
	wr("request-rx-copy", 1);
	wr("feature-sg", 1);
	wr("state", XENBUS_STATE_INITIALISED);
	if (rk && strcmp(rk, "rings-junk"))
		return 0; /* to be refused: the caller waits for Closing */
	if (wait_be_state(XENBUS_STATE_CONNECTED, 10000))
		return -ETIMEDOUT;
	wr("state", XENBUS_STATE_CONNECTED);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "offset";
	int r;
	if ((r = hvc_open_domain(&h)) || (r = hvc_self_domid(h, &self))) {
		fprintf(stderr, "netevil: hv: %s\n", strerror(-r));
		return 1;
	}
	xs_ring_use_hvc(h);
	if (!(xs = xs_open(0))) {
		fprintf(stderr, "netevil: xs_open failed\n");
		return 1;
	}
	snprintf(fe, sizeof(fe), "/local/domain/%u/device/vif/0", self);
	for (int i = 0; i < 500; i++) {
		char p[200];
		unsigned len;
		snprintf(p, sizeof(p), "%s/backend", fe);
		char *b = xs_read(xs, XBT_NULL, p, &len);
		if (b) {
			snprintf(be, sizeof(be), "%s", b);
			free(b);
			break;
		}
		sleep_ms(10);
	}
	be_domid = (domid_t)rd(fe, "backend-id");
	split = !strcmp(mode, "split");
	if (!strncmp(mode, "mq-", 3))
		mq = mode;
	if (!strncmp(mode, "rings-", 6))
		rk = mode;
	if ((r = connect_be())) {
		result("fail: handshake: %s", strerror(-r));
		goto idle;
	}
	printf("netevil: connected, mode %s\n", mode);
	fflush(stdout);
	if (!strcmp(mode, "offset") || !strcmp(mode, "zero")) {
		frame(0, 200);
		frame(1, 60);
		if (!strcmp(mode, "offset")) {
			req(1, 0, 4000, 200, 0); /* 4000 + 200 > 4096 */
		} else {
			req(1, 0, 0, 200, NETTXF_MORE_DATA);
			req(2, 2, 0, 0, 0); /* zero-length fragment */
		}
		push();
		int bad = wait_rsp(1);
		req(3, 1, 0, 60, 0);
		push();
		int good = wait_rsp(3);
		long st = rd(be, "state");
		if (bad == NETIF_RSP_ERROR && good == NETIF_RSP_OKAY &&
		    st == XENBUS_STATE_CONNECTED)
			result("ok %s: bad=%d good=%d state=%ld", mode, bad, good, st);
		else
			result("fail: %s: bad=%d good=%d state=%ld", mode, bad, good, st);
	} else if (!strcmp(mode, "slots")) {
		frame(0, 60);
		for (unsigned i = 0; i <= XEN_NETIF_NR_SLOTS_MIN; i++)
			req((uint16_t)i, 0, 0, i == 0 ? 1000 : 10,
			    i < XEN_NETIF_NR_SLOTS_MIN ? NETTXF_MORE_DATA : 0);
		push();
		r = wait_be_state(XENBUS_STATE_CLOSING, 5000);
		result(r ? "fail: slots: backend state %ld" : "ok slots: state %ld",
		       rd(be, "state"));
	} else if (!strcmp(mode, "jump")) {
		tx.req_prod_pvt += 5000;
		push();
		r = wait_be_state(XENBUS_STATE_CLOSING, 5000);
		result(r ? "fail: jump: backend state %ld" : "ok jump: state %ld", rd(be, "state"));
	} else if (rk && (!strcmp(mode, "rings-only") || !strcmp(mode, "rings-junk"))) {
		frame(0, 60);
		req(1, 0, 0, 60, 0);
		push();
		int st = wait_rsp(1);
		result(st == NETIF_RSP_OKAY ? "ok %s: status %d" : "fail: %s: status %d", mode, st);
	} else if (mq || rk) {
		r = wait_be_state(XENBUS_STATE_CLOSING, 5000);
		char p[256];
		unsigned len;
		snprintf(p, sizeof(p), "%s/error", be);
		char *err = xs_read(xs, XBT_NULL, p, &len);
		if (r || !err || !*err)
			result("fail: %s: backend state %ld, error '%s'", mode, rd(be, "state"),
			       err ? err : "");
		else
			result("ok %s: state %ld, error '%s'", mode, rd(be, "state"), err);
		free(err);
	} else if (!strcmp(mode, "split")) {
		frame(0, 60);
		req(1, 0, 0, 60, 0);
		push();
		int st = wait_rsp(1);
		result(st == NETIF_RSP_OKAY ? "ok split: status %d" : "fail: split: status %d", st);
	} else if (!strcmp(mode, "norx")) {
		frame(0, 60);
		req(1, 0, 0, 60, 0);
		push();
		int st = wait_rsp(1);
		result(st == NETIF_RSP_OKAY ? "ok norx: announced" : "fail: norx: status %d", st);
	} else {
		result("fail: unknown mode %s", mode);
	}
idle:
	for (;;)
		sleep_ms(1000);
}
