// SPDX-License-Identifier: MIT
// Test frontend for drvdom-blkback (a static guest domain kernel, started by
// `drvdom create` in the blkback suite with kernel = this program and
// extra_args = [MODE]). It does the blkif handshake itself on every disk of
// its domain (device/vbd/*), then as MODE says:
//   good     order-2 rings, 2 queues, persistent grants: write then read
//            back patterns (inline and indirect segments, 32 requests at
//            once, on both queues), flush, discard; then check drvdom-stats
//   simple   one-page ring with the legacy ring-ref key, one queue, no
//            persistent grants: the same I/O
//   loop     like simple, then write/read/verify forever, counting
//            iterations in data/iter (the "other guest" of the evil test)
//   rings    like good, but the rings are published in drvdom-rings alone
//            (docs/recovery.md, "Fast reconnect"; no ring-ref, event-channel,
//            ring-page-order or queue keys): blkback must connect from it
//   badhs    handshakes the backend must refuse (ring-page-order, queues,
//            protocol, ring-ref, event-channel, drvdom-rings well-formed
//            but naming what is not ours, drvdom-rings malformed beside no
//            single keys), each followed by a reconnect, then the simple
//            I/O on the same device with a malformed drvdom-rings beside
//            good single keys (which blkback must use)
//   evil     bad requests on disk 0 (read-write) and disk 1 (read-only):
//            each must be refused with the right status, a request is
//            rewritten while the backend reads it, and at last disk 0's
//            producer index jumps past the ring size: disk 0 must go to
//            Closing while disk 1 still answers
//   scribble index games against the ring-progress watchdog (the suite
//            runs blkdom with a short watchdog_ms): requests published
//            without a notification and with scribbled event indices must
//            still be answered; then a thread flips req_prod back and forth
//            (which may break the ring). None of it may get blkdom killed.
//   budget   blocking inline writes (ext4) within the per-round budget:
//            32 writes of 4 KiB pushed at once, then 32 of 44 KiB; reports
//            how many of each blkback did inline (data/inline_small,
//            data/inline_big, from drvdom-stats) and reads every write back
// Results go to the console and to data/result ("ok", or "fail: ...") in
// the domain's own xenstore directory; the suite reads them from dom0.
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdnoreturn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "grant/gnt.h"
#include "hv/evtchn.h"
#include "hv/hvc.h"
#include "ring/blkif.h"
#include "ring/xenbus.h"
#include "xenstore/include/xenstore.h"
#include "xenstore/xs_transport.h"

#define TF_MAX_DEVS 2
#define TF_MAX_QUEUES 2
#define TF_DATA_PAGES 80 /* data pages per device; pages 70.. are indirect pages */
#define TF_IND_PAGE 70
#define TF_PATTERN_SECTOR 64 /* the suite checks the disk file here */

struct tf_queue {
	struct gnt_seg *seg;
	struct blkif_ring_front front;
	evtchn_port_t port;
	grant_ref_t refs[16];
};

struct tf_dev {
	unsigned devid;
	char fe[128], be[128];
	domid_t be_domid;
	unsigned order, nq;
	bool persistent;
	struct tf_queue q[TF_MAX_QUEUES];
	struct gnt_seg *data;
	grant_ref_t dref[TF_DATA_PAGES];
	uint64_t sectors;
	unsigned info, max_indirect;
	bool discard;
};

static struct hvc *H;
static struct xs_handle *XS;
static struct gnt_table *GT;
static domid_t SELF;
static struct tf_dev DEV[TF_MAX_DEVS];
static unsigned NDEV;
static char FIRST_FAIL[256];
static unsigned NFAIL;
static uint64_t NEXT_ID = 1;
/* What tf_connect publishes in drvdom-rings: nothing, the rings in it
 * alone (no single ring keys), or a malformed one beside the single keys
 * that names a ref and a port that are not ours. */
static enum { RK_NONE, RK_ONLY, RK_JUNK } RINGS_KEY;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("evilfront: ");
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
}

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	say("%s %s", ok ? "ok  " : "FAIL", msg);
	if (!ok && NFAIL++ == 0)
		snprintf(FIRST_FAIL, sizeof(FIRST_FAIL), "%s", msg);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void put(const char *path, const char *val)
{
	if (!xs_write(XS, XBT_NULL, path, val, (unsigned)strlen(val)))
		say("xs_write %s: %s", path, strerror(errno));
}

static void putf(const char *dir, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void putf(const char *dir, const char *key, const char *fmt, ...)
{
	char p[256], v[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	snprintf(p, sizeof(p), "%s/%s", dir, key);
	put(p, v);
}

static void finish(void)
{
	char p[128];
	snprintf(p, sizeof(p), "/local/domain/%u/data/result", SELF);
	char v[300];
	if (NFAIL)
		snprintf(v, sizeof(v), "fail: %u checks failed, first: %s", NFAIL, FIRST_FAIL);
	else
		snprintf(v, sizeof(v), "ok");
	put(p, v);
	say("result: %s", v);
}

static noreturn void fatal(const char *what, int err)
{
	check(false, "%s: %s", what, strerror(err < 0 ? -err : err));
	finish();
	for (;;)
		sleep_ms(1000);
}

static long get_num(const char *dir, const char *key, long def)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, key);
	unsigned len;
	char *v = xs_read(XS, XBT_NULL, p, &len);
	if (!v)
		return def;
	long n = strtol(v, NULL, 10);
	free(v);
	return n;
}

/* Wait up to ms for the backend's state to become st. */
static bool wait_be_state(struct tf_dev *d, long st, unsigned ms)
{
	for (unsigned t = 0; t < ms; t += 10) {
		if (get_num(d->be, "state", -1) == st)
			return true;
		hvc_dispatch(H);
		sleep_ms(10);
	}
	return false;
}

/* --- the handshake ------------------------------------------------------------ */

static int tf_connect(struct tf_dev *d, unsigned want_order, unsigned want_nq, bool pers)
{
	int r;
	unsigned len;
	char p[256];
	snprintf(p, sizeof(p), "%s/backend", d->fe);
	char *be = xs_read(XS, XBT_NULL, p, &len);
	if (!be)
		return -errno;
	snprintf(d->be, sizeof(d->be), "%s", be);
	free(be);
	d->be_domid = (domid_t)get_num(d->fe, "backend-id", 0);
	if (!wait_be_state(d, XENBUS_STATE_INIT_WAIT, 30000))
		return -ETIMEDOUT;
	long maxo = get_num(d->be, "max-ring-page-order", 0);
	long maxq = get_num(d->be, "multi-queue-max-queues", 1);
	d->order = want_order <= maxo ? want_order : (unsigned)maxo;
	d->nq = want_nq <= maxq ? want_nq : (unsigned)maxq;
	d->persistent = pers && get_num(d->be, "feature-persistent", 0) == 1;
	d->max_indirect = (unsigned)get_num(d->be, "feature-max-indirect-segments", 0);
	d->discard = get_num(d->be, "feature-discard", 0) == 1;
	if (get_num(d->be, "feature-flush-cache", 0) != 1)
		check(false, "vbd %u: feature-flush-cache published", d->devid);

	if ((r = gnt_seg_alloc(H, d->be_domid, TF_DATA_PAGES, &d->data)))
		return r;
	for (unsigned i = 0; i < TF_DATA_PAGES; i++)
		if ((r = gnt_grant_access(GT, d->be_domid, gnt_seg_frame(d->data, i), 0,
					  &d->dref[i])))
			return r;
	for (unsigned qi = 0; qi < d->nq; qi++) {
		struct tf_queue *q = &d->q[qi];
		unsigned np = 1u << d->order;
		if ((r = gnt_seg_alloc(H, d->be_domid, np, &q->seg)))
			return r;
		blkif_ring_front_init(&q->front, q->seg->base, d->order);
		for (unsigned i = 0; i < np; i++)
			if ((r = gnt_grant_access(GT, d->be_domid, gnt_seg_frame(q->seg, i), 0,
						  &q->refs[i])))
				return r;
		if ((r = evtchn_alloc_unbound(H, d->be_domid, &q->port)))
			return r;
		if (RINGS_KEY == RK_ONLY)
			continue;
		char dir[192];
		if (d->nq == 1)
			snprintf(dir, sizeof(dir), "%s", d->fe);
		else
			snprintf(dir, sizeof(dir), "%s/queue-%u", d->fe, qi);
		if (d->order == 0) {
			putf(dir, "ring-ref", "%u", q->refs[0]);
		} else {
			for (unsigned i = 0; i < np; i++) {
				char key[32];
				snprintf(key, sizeof(key), "ring-ref%u", i);
				putf(dir, key, "%u", q->refs[i]);
			}
		}
		putf(dir, "event-channel", "%u", q->port);
	}
	if (RINGS_KEY == RK_ONLY) {
		/* "order=O queues=N refs=R,... ports=P,...", every page's ref
		 * of queue 0, then of queue 1; one port a queue. */
		char v[512];
		int n = snprintf(v, sizeof(v), "order=%u queues=%u refs=", d->order, d->nq);
		for (unsigned qi = 0; qi < d->nq; qi++)
			for (unsigned i = 0; i < (1u << d->order); i++)
				n += snprintf(v + n, sizeof(v) - (size_t)n, "%s%u",
					      qi || i ? "," : "", d->q[qi].refs[i]);
		n += snprintf(v + n, sizeof(v) - (size_t)n, " ports=");
		for (unsigned qi = 0; qi < d->nq; qi++)
			n += snprintf(v + n, sizeof(v) - (size_t)n, "%s%u", qi ? "," : "",
				      d->q[qi].port);
		putf(d->fe, "drvdom-rings", "%s", v);
	} else if (RINGS_KEY == RK_JUNK) {
		/* A name twice: void, whatever it says. */
		putf(d->fe, "drvdom-rings", "order=0 queues=1 refs=4000 ports=4000 queues=1");
	}
	if (d->order && RINGS_KEY != RK_ONLY)
		putf(d->fe, "ring-page-order", "%u", d->order);
	if (d->nq > 1 && RINGS_KEY != RK_ONLY)
		putf(d->fe, "multi-queue-num-queues", "%u", d->nq);
	putf(d->fe, "protocol", "x86_64-abi");
	putf(d->fe, "feature-persistent", "%u", d->persistent ? 1 : 0);
	putf(d->fe, "state", "%d", XENBUS_STATE_INITIALISED);
	if (!wait_be_state(d, XENBUS_STATE_CONNECTED, 30000))
		return -ETIMEDOUT;
	d->sectors = (uint64_t)get_num(d->be, "sectors", 0);
	d->info = (unsigned)get_num(d->be, "info", 0);
	/* The backend bound our ports: wait for the hv to tell us. */
	for (unsigned qi = 0; qi < d->nq; qi++) {
		for (int t = 0; evtchn_wait_fd(H, d->q[qi].port) < 0; t++) {
			if (t > 1000)
				return -ETIMEDOUT;
			hvc_dispatch(H);
			sleep_ms(5);
		}
	}
	putf(d->fe, "state", "%d", XENBUS_STATE_CONNECTED);
	say("vbd %u connected: order %u, %u queue(s)%s, %" PRIu64 " sectors, info %u", d->devid,
	    d->order, d->nq, d->persistent ? ", persistent" : "", d->sectors, d->info);
	return 0;
}

/* Keys a handshake attempt may leave in the frontend directory. */
static void clear_fe_keys(struct tf_dev *d)
{
	static const char *const keys[] = {"ring-ref",
					   "ring-ref0",
					   "ring-ref1",
					   "ring-page-order",
					   "event-channel",
					   "protocol",
					   "multi-queue-num-queues",
					   "queue-0",
					   "queue-1",
					   "drvdom-rings"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char p[256];
		snprintf(p, sizeof(p), "%s/%s", d->fe, keys[i]);
		xs_rm(XS, XBT_NULL, p);
	}
}

/* Handshakes the backend must refuse: each moves the device to Closing
 * with an error key, and the device comes back for the next attempt when
 * the frontend goes Closed and Initialising again (a reconnect). */
static void bad_handshakes(struct tf_dev *d)
{
	char p[256];
	unsigned len;
	snprintf(p, sizeof(p), "%s/backend", d->fe);
	char *be = xs_read(XS, XBT_NULL, p, &len);
	if (!be)
		fatal("no backend key", errno);
	snprintf(d->be, sizeof(d->be), "%s", be);
	free(be);
	d->be_domid = (domid_t)get_num(d->fe, "backend-id", 0);
	if (!wait_be_state(d, XENBUS_STATE_INIT_WAIT, 30000))
		fatal("backend never in InitWait", ETIMEDOUT);
	/* One real ring page and port, for the cases about something else. */
	struct gnt_seg *seg;
	grant_ref_t ref;
	evtchn_port_t port;
	int r;
	if ((r = gnt_seg_alloc(H, d->be_domid, 1, &seg)) ||
	    (r = gnt_grant_access(GT, d->be_domid, gnt_seg_frame(seg, 0), 0, &ref)) ||
	    (r = evtchn_alloc_unbound(H, d->be_domid, &port)))
		fatal("ring setup", r);
	struct blkif_ring_front f;
	blkif_ring_front_init(&f, seg->base, 0);
	char sref[16], sport[16];
	snprintf(sref, sizeof(sref), "%u", ref);
	snprintf(sport, sizeof(sport), "%u", port);
	/* want: what the error key must say (NULL: anything). */
	static const struct {
		const char *what;
		const char *kv[12];
		const char *want;
	} cases[] = {
	    {"ring-page-order 5",
	     {"ring-page-order", "5", "ring-ref0", "REF", "event-channel", "PORT"},
	     NULL},
	    {"9 queues",
	     {"multi-queue-num-queues", "9", "ring-ref", "REF", "event-channel", "PORT"},
	     NULL},
	    {"protocol x86_32-abi",
	     {"protocol", "x86_32-abi", "ring-ref", "REF", "event-channel", "PORT"},
	     NULL},
	    {"ring-ref not granted", {"ring-ref", "4000", "event-channel", "PORT"}, NULL},
	    {"ring-ref missing", {"event-channel", "PORT"}, NULL},
	    {"ring-ref not a number", {"ring-ref", "12abc", "event-channel", "PORT"}, NULL},
	    {"event-channel not ours", {"ring-ref", "REF", "event-channel", "4000"}, NULL},
	    {"event-channel missing", {"ring-ref", "REF"}, NULL},
	    {"queue 1 of 2 not granted",
	     {"multi-queue-num-queues", "2", "queue-0/ring-ref", "REF", "queue-0/event-channel",
	      "PORT", "queue-1/ring-ref", "4000", "queue-1/event-channel", "PORT"},
	     NULL},
	    /* drvdom-rings well-formed: used, and checked as the single keys */
	    {"drvdom-rings ref not granted",
	     {"drvdom-rings", "order=0 queues=1 refs=4000 ports=PORT"},
	     "cannot map"},
	    {"drvdom-rings event-channel not ours",
	     {"drvdom-rings", "order=0 queues=1 refs=REF ports=4000"},
	     "cannot map"},
	    /* malformed or out of bounds: void, the (missing) single keys read */
	    {"drvdom-rings one ref for a 2-page ring",
	     {"drvdom-rings", "order=1 queues=1 refs=REF ports=PORT"},
	     "ring-ref"},
	    {"drvdom-rings two ports for one queue",
	     {"drvdom-rings", "order=0 queues=1 refs=REF ports=PORT,PORT"},
	     "ring-ref"},
	    {"drvdom-rings order 5",
	     {"drvdom-rings", "order=5 queues=1 refs=REF ports=PORT"},
	     "ring-ref"},
	    {"drvdom-rings 0 queues",
	     {"drvdom-rings", "order=0 queues=0 refs=REF ports=PORT"},
	     "ring-ref"},
	    {"drvdom-rings port past the last",
	     {"drvdom-rings", "order=0 queues=1 refs=REF ports=4096"},
	     "ring-ref"},
	    {"drvdom-rings stray word",
	     {"drvdom-rings", "order=0 queues=1 refs=REF ports=PORT x"},
	     "ring-ref"},
	    {"drvdom-rings ref overflows",
	     {"drvdom-rings", "order=0 queues=1 refs=18446744073709551616 ports=PORT"},
	     "ring-ref"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		clear_fe_keys(d);
		snprintf(p, sizeof(p), "%s/error", d->be);
		for (size_t k = 0; k < 12 && cases[i].kv[k]; k += 2) {
			/* REF and PORT stand for the real ring page and port */
			char v[256];
			size_t o = 0;
			for (const char *s = cases[i].kv[k + 1]; *s && o + 16 < sizeof(v);) {
				if (!strncmp(s, "REF", 3)) {
					o += (size_t)snprintf(v + o, sizeof(v) - o, "%s", sref);
					s += 3;
				} else if (!strncmp(s, "PORT", 4)) {
					o += (size_t)snprintf(v + o, sizeof(v) - o, "%s", sport);
					s += 4;
				} else {
					v[o++] = *s++;
				}
			}
			v[o] = 0;
			putf(d->fe, cases[i].kv[k], "%s", v);
		}
		putf(d->fe, "state", "%d", XENBUS_STATE_INITIALISED);
		bool closing = wait_be_state(d, XENBUS_STATE_CLOSING, 10000);
		char *err = xs_read(XS, XBT_NULL, p, &len);
		check(closing && err && (!cases[i].want || strstr(err, cases[i].want)),
		      "bad handshake (%s): backend Closing, error '%s'", cases[i].what,
		      err ? err : "");
		free(err);
		putf(d->fe, "state", "%d", XENBUS_STATE_CLOSED);
		check(wait_be_state(d, XENBUS_STATE_CLOSED, 10000), "(%s): backend Closed",
		      cases[i].what);
		putf(d->fe, "state", "%d", XENBUS_STATE_INITIALISING);
		check(wait_be_state(d, XENBUS_STATE_INIT_WAIT, 10000),
		      "(%s): backend back to InitWait", cases[i].what);
	}
	clear_fe_keys(d);
}

/* --- requests ------------------------------------------------------------------ */

static union blkif_req_slot *tf_slot(struct tf_dev *d, unsigned qi)
{
	return (union blkif_req_slot *)blkif_ring_front_next_req(&d->q[qi].front);
}

static void tf_push(struct tf_dev *d, unsigned qi)
{
	if (blkif_ring_front_push_requests_check_notify(&d->q[qi].front))
		evtchn_notify(H, d->q[qi].port);
}

/* Wait for n responses on a queue; their statuses by id order of arrival go
 * to st[] (NULL: ignore). Returns how many arrived within 5 s. */
static unsigned tf_wait(struct tf_dev *d, unsigned qi, unsigned n, struct blkif_rsp *out)
{
	unsigned got = 0;
	for (unsigned spins = 0; got < n && spins < 50000; spins++) {
		struct blkif_rsp rsp;
		int r = blkif_ring_front_take_response(&d->q[qi].front, &rsp);
		if (r == 0) {
			if (out)
				out[got] = rsp;
			got++;
			spins = 0;
			continue;
		}
		if (r != -EAGAIN)
			break;
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	return got;
}

/* One request built by the caller in *s (id assigned here); its status, or
 * 99 if no response came. */
static int tf_one(struct tf_dev *d, unsigned qi, const union blkif_req_slot *s)
{
	union blkif_req_slot *slot = tf_slot(d, qi);
	*slot = *s;
	uint64_t id = NEXT_ID++;
	if (s->operation == BLKIF_OP_DISCARD)
		slot->discard.id = id;
	else if (s->operation == BLKIF_OP_INDIRECT)
		slot->indirect.id = id;
	else
		slot->rw.id = id;
	tf_push(d, qi);
	struct blkif_rsp rsp;
	if (tf_wait(d, qi, 1, &rsp) != 1)
		return 99;
	if (rsp.id != id)
		return 98;
	return rsp.status;
}

static uint8_t *page(struct tf_dev *d, unsigned i)
{
	return gnt_seg_page(d->data, i);
}

/* A read or write of nseg full pages (data pages first..) at sector. */
static union blkif_req_slot rw_req(struct tf_dev *d, uint8_t op, uint64_t sector, unsigned first,
				   unsigned nseg)
{
	union blkif_req_slot s;
	memset(&s, 0, sizeof(s));
	s.rw.operation = op;
	s.rw.nr_segments = (uint8_t)nseg;
	s.rw.sector_number = sector;
	for (unsigned i = 0; i < nseg && i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++)
		s.rw.seg[i] = (struct blkif_seg){d->dref[first + i], 0, 7};
	return s;
}

static void fill(struct tf_dev *d, unsigned first, unsigned n, uint64_t seed)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = page(d, first + i);
		for (unsigned j = 0; j < 4096; j++)
			p[j] = (uint8_t)((seed * 131 + i * 4096 + j) * 2654435761u >> 13);
	}
}

static bool same(struct tf_dev *d, unsigned a, unsigned b, unsigned n)
{
	return memcmp(page(d, a), page(d, b), (size_t)n * 4096) == 0;
}

/* --- good path --------------------------------------------------------------------- */

static void good_io(struct tf_dev *d, uint64_t seed)
{
	union blkif_req_slot s;
	/* 1. 11 inline segments written then read back (sector 64: the suite
	 * checks the file there). */
	fill(d, 0, 11, seed);
	s = rw_req(d, BLKIF_OP_WRITE, TF_PATTERN_SECTOR, 0, 11);
	check(tf_one(d, 0, &s) == BLKIF_RSP_OKAY, "vbd %u: write 11 segments", d->devid);
	memset(page(d, 20), 0, 11 * 4096);
	s = rw_req(d, BLKIF_OP_READ, TF_PATTERN_SECTOR, 20, 11);
	check(tf_one(d, 0, &s) == BLKIF_RSP_OKAY && same(d, 0, 20, 11),
	      "vbd %u: read back 11 segments", d->devid);

	/* 2. partial segments: sectors 2..5 of one page, 0..0 of another. */
	s = rw_req(d, BLKIF_OP_READ, TF_PATTERN_SECTOR + 2, 40, 2);
	s.rw.seg[0].first_sect = 2, s.rw.seg[0].last_sect = 5;
	s.rw.seg[1].first_sect = 0, s.rw.seg[1].last_sect = 0;
	memset(page(d, 40), 0, 2 * 4096);
	check(tf_one(d, 0, &s) == BLKIF_RSP_OKAY &&
		  !memcmp(page(d, 40) + 1024, page(d, 0) + 1024, 2048) &&
		  !memcmp(page(d, 41), page(d, 0) + 3072, 512),
	      "vbd %u: partial segments", d->devid);

	/* 3. flush. */
	memset(&s, 0, sizeof(s));
	s.rw.operation = BLKIF_OP_FLUSH_DISKCACHE;
	check(tf_one(d, 0, &s) == BLKIF_RSP_OKAY, "vbd %u: flush", d->devid);

	/* 4. indirect: 64 pages in one request, written then read back. */
	if (d->max_indirect >= 64) {
		struct blkif_seg *ind = (struct blkif_seg *)page(d, TF_IND_PAGE);
		fill(d, 0, 32, seed + 1);
		fill(d, 32, 32, seed + 2);
		for (unsigned i = 0; i < 64; i++)
			ind[i] = (struct blkif_seg){d->dref[i], 0, 7};
		memset(&s, 0, sizeof(s));
		s.indirect.operation = BLKIF_OP_INDIRECT;
		s.indirect.indirect_op = BLKIF_OP_WRITE;
		s.indirect.nr_segments = 64;
		s.indirect.sector_number = 1024;
		s.indirect.indirect_grefs[0] = d->dref[TF_IND_PAGE];
		check(tf_one(d, 0, &s) == BLKIF_RSP_OKAY, "vbd %u: indirect write 64 segments",
		      d->devid);
		uint8_t *keep = malloc(64 * 4096);
		memcpy(keep, page(d, 0), 64 * 4096);
		memset(page(d, 0), 0, 64 * 4096);
		s.indirect.indirect_op = BLKIF_OP_READ;
		check(tf_one(d, 0, &s) == BLKIF_RSP_OKAY && !memcmp(keep, page(d, 0), 64 * 4096),
		      "vbd %u: indirect read back", d->devid);
		free(keep);
	} else {
		check(false, "vbd %u: feature-max-indirect-segments >= 64 (%u)", d->devid,
		      d->max_indirect);
	}

	/* 5. 32 requests at once on each queue: single-page writes, then reads. */
	for (unsigned qi = 0; qi < d->nq; qi++) {
		unsigned n = 32;
		uint64_t base = 4096 + qi * 1024;
		fill(d, 0, n, seed + 10 + qi);
		for (unsigned i = 0; i < n; i++) {
			union blkif_req_slot *slot = tf_slot(d, qi);
			*slot = rw_req(d, BLKIF_OP_WRITE, base + i * 8, i, 1);
			slot->rw.id = NEXT_ID++;
		}
		tf_push(d, qi);
		struct blkif_rsp rsp[32];
		unsigned got = tf_wait(d, qi, n, rsp);
		unsigned okc = 0;
		for (unsigned i = 0; i < got; i++)
			okc += rsp[i].status == BLKIF_RSP_OKAY;
		check(got == n && okc == n, "vbd %u queue %u: 32 writes in flight (%u/%u ok)",
		      d->devid, qi, okc, got);
		for (unsigned i = 0; i < n; i++) {
			union blkif_req_slot *slot = tf_slot(d, qi);
			*slot = rw_req(d, BLKIF_OP_READ, base + i * 8, 40 + (i % 30), 1);
			slot->rw.id = NEXT_ID++;
			/* Only the first 30 fit in scratch pages: read them again below. */
		}
		tf_push(d, qi);
		got = tf_wait(d, qi, n, rsp);
		check(got == n, "vbd %u queue %u: 32 reads in flight", d->devid, qi);
		s = rw_req(d, BLKIF_OP_READ, base, 40, 11);
		check(tf_one(d, qi, &s) == BLKIF_RSP_OKAY && same(d, 0, 40, 11),
		      "vbd %u queue %u: batched writes read back", d->devid, qi);
	}

	/* 6. discard: the range reads back as zeros. */
	if (d->discard) {
		memset(&s, 0, sizeof(s));
		s.discard.operation = BLKIF_OP_DISCARD;
		s.discard.sector_number = 4096;
		s.discard.nr_sectors = 64;
		check(tf_one(d, 0, &s) == BLKIF_RSP_OKAY, "vbd %u: discard", d->devid);
		memset(page(d, 40), 0xee, 8 * 4096);
		memset(page(d, 0), 0, 8 * 4096);
		s = rw_req(d, BLKIF_OP_READ, 4096, 40, 8);
		check(tf_one(d, 0, &s) == BLKIF_RSP_OKAY && same(d, 0, 40, 8),
		      "vbd %u: discarded range reads as zeros", d->devid);
	}
}

/* The backend's drvdom-stats as one counter. */
static long stat_of(struct tf_dev *d, const char *key)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/drvdom-stats", d->be);
	unsigned len;
	char *v = xs_read(XS, XBT_NULL, p, &len);
	if (!v)
		return -1;
	long n = -1;
	char pat[64];
	snprintf(pat, sizeof(pat), " %s=", key);
	char *hit = strstr(v, pat);
	if (!hit && !strncmp(v, pat + 1, strlen(pat) - 1))
		hit = v - 1;
	if (hit)
		n = strtol(hit + strlen(pat), NULL, 10);
	free(v);
	return n;
}

/* --- budget -------------------------------------------------------------------------- */

/* inline_io once drvdom-stats has caught up (rewritten every 0.5 s). */
static long settled_inline(struct tf_dev *d)
{
	sleep_ms(1200);
	return stat_of(d, "inline_io");
}

/* Push n writes of nseg pages (data pages 0..) at once, sector base + i *
 * stride; true when every one is answered OKAY. */
static bool push_writes(struct tf_dev *d, unsigned n, unsigned nseg, uint64_t base,
			uint64_t stride)
{
	for (unsigned i = 0; i < n; i++) {
		union blkif_req_slot *slot = tf_slot(d, 0);
		*slot = rw_req(d, BLKIF_OP_WRITE, base + i * stride, nseg == 1 ? i : 0, nseg);
		slot->rw.id = NEXT_ID++;
	}
	tf_push(d, 0); /* one req_prod update: blkback takes them in one round */
	struct blkif_rsp rsp[32];
	unsigned got = tf_wait(d, 0, n, rsp), okc = 0;
	for (unsigned i = 0; i < got; i++)
		okc += rsp[i].status == BLKIF_RSP_OKAY;
	return got == n && okc == n;
}

static void budget(struct tf_dev *d)
{
	union blkif_req_slot s;
	/* The device's first write tells blkback whether RWF_NOWAIT writes
	 * work here. */
	fill(d, 0, 1, 7);
	s = rw_req(d, BLKIF_OP_WRITE, 0, 0, 1);
	check(tf_one(d, 0, &s) == BLKIF_RSP_OKAY, "first write");
	long i0 = settled_inline(d);

	fill(d, 0, 32, 8);
	check(push_writes(d, 32, 1, 4096, 8), "32 writes of 4 KiB at once");
	long i1 = settled_inline(d);
	/* (Reads are inline too: count before and after them.) */
	for (unsigned i = 0; i < 32; i += 11) {
		s = rw_req(d, BLKIF_OP_READ, 4096 + i * 8, 40, i + 11 <= 32 ? 11 : 32 - i);
		check(tf_one(d, 0, &s) == BLKIF_RSP_OKAY &&
			  same(d, i, 40, i + 11 <= 32 ? 11 : 32 - i),
		      "4 KiB writes %u.. read back", i);
	}
	long i1r = settled_inline(d);

	fill(d, 0, 11, 9);
	check(push_writes(d, 32, 11, 8192, 88), "32 writes of 44 KiB at once");
	long i2 = settled_inline(d);
	unsigned bad = 0;
	for (unsigned i = 0; i < 32; i++) {
		memset(page(d, 40), 0, 11 * 4096);
		s = rw_req(d, BLKIF_OP_READ, 8192 + i * 88, 40, 11);
		bad += tf_one(d, 0, &s) != BLKIF_RSP_OKAY || !same(d, 0, 40, 11);
	}
	check(bad == 0, "44 KiB writes read back (%u bad)", bad);
	check(i0 >= 0 && i1 >= i0 && i2 >= i1r && i1r >= i1, "drvdom-stats inline_io %ld %ld %ld %ld",
	      i0, i1, i1r, i2);
	char dir[128];
	snprintf(dir, sizeof(dir), "/local/domain/%u/data", SELF);
	putf(dir, "inline_small", "%ld", i1 - i0);
	putf(dir, "inline_big", "%ld", i2 - i1r);
	say("inline: %ld of 32 small writes, %ld of 32 big writes", i1 - i0, i2 - i1r);
}

/* --- evil ---------------------------------------------------------------------------- */

struct racer {
	struct tf_dev *d;
	_Atomic bool stop;
	union blkif_req_slot good, bad;
};

static void *race_slots(void *arg)
{
	struct racer *rc = arg;
	struct blkif_ring_front *f = &rc->d->q[0].front;
	unsigned n = blkif_ring_front_size(f);
	volatile uint8_t *ring = (volatile uint8_t *)f->sring->ring;
	for (unsigned k = 0; !atomic_load(&rc->stop); k++) {
		const union blkif_req_slot *src = (k & 1) ? &rc->bad : &rc->good;
		for (unsigned i = 0; i < n; i++)
			for (unsigned b = 0; b < sizeof(*src); b++)
				ring[i * sizeof(union blkif_ring_sring_entry) + b] =
				    ((const uint8_t *)src)[b];
	}
	return NULL;
}

/* Send one request on queue 0 and check its status. */
static void expect(struct tf_dev *d, const union blkif_req_slot *s, int want, const char *what)
{
	int st = tf_one(d, 0, s);
	check(st == want, "%s (status %d, want %d)", what, st, want);
}

static void evil(void)
{
	struct tf_dev *rw = &DEV[0], *ro = &DEV[1];
	if (NDEV < 2 || !(ro->info & VDISK_READONLY) || (rw->info & VDISK_READONLY)) {
		check(false, "evil needs disk 0 read-write and disk 1 read-only");
		return;
	}
	union blkif_req_slot s;
	int st;
	s = rw_req(rw, BLKIF_OP_READ, 0, 0, 1);
	check(tf_one(rw, 0, &s) == BLKIF_RSP_OKAY, "valid read before the attacks");

	s = rw_req(rw, BLKIF_OP_READ, 0, 0, 1);
	s.rw.nr_segments = 0;
	expect(rw, &s, BLKIF_RSP_ERROR, "zero segments -> error");
	s = rw_req(rw, BLKIF_OP_WRITE, 0, 0, 11);
	s.rw.nr_segments = 12;
	expect(rw, &s, BLKIF_RSP_ERROR, "12 segments -> error");
	s = rw_req(rw, BLKIF_OP_READ, 0, 0, 1);
	s.rw.nr_segments = 255;
	expect(rw, &s, BLKIF_RSP_ERROR, "255 segments -> error");
	s = rw_req(rw, BLKIF_OP_READ, 0, 0, 2);
	s.rw.seg[1].first_sect = 5, s.rw.seg[1].last_sect = 2;
	expect(rw, &s, BLKIF_RSP_ERROR, "first_sect > last_sect -> error");
	s = rw_req(rw, BLKIF_OP_READ, 0, 0, 1);
	s.rw.seg[0].last_sect = 8;
	expect(rw, &s, BLKIF_RSP_ERROR, "last_sect 8 -> error");
	s = rw_req(rw, BLKIF_OP_READ, rw->sectors - 4, 0, 1);
	expect(rw, &s, BLKIF_RSP_ERROR, "read across the end -> error");
	s = rw_req(rw, BLKIF_OP_WRITE, UINT64_MAX - 3, 0, 1);
	expect(rw, &s, BLKIF_RSP_ERROR, "sector near 2^64 -> error");
	s = rw_req(rw, BLKIF_OP_READ, 0, 0, 1);
	s.rw.operation = 99;
	expect(rw, &s, BLKIF_RSP_EOPNOTSUPP, "unknown op -> EOPNOTSUPP");
	s.rw.operation = BLKIF_OP_WRITE_BARRIER;
	expect(rw, &s, BLKIF_RSP_EOPNOTSUPP, "write barrier -> EOPNOTSUPP");
	s = rw_req(rw, BLKIF_OP_READ, 0, 0, 3);
	s.rw.seg[1].gref = 4000; /* never granted */
	expect(rw, &s, BLKIF_RSP_ERROR, "ungranted grant ref -> error");
	s = rw_req(rw, BLKIF_OP_READ, 0, 0, 1);
	s.rw.seg[0].gref = 1; /* the xenstore page: granted to dom0, not to us */
	expect(rw, &s, BLKIF_RSP_ERROR, "grant of another domain -> error");

	/* Indirect. */
	struct blkif_seg *ind = (struct blkif_seg *)page(rw, TF_IND_PAGE);
	for (unsigned i = 0; i < 16; i++)
		ind[i] = (struct blkif_seg){rw->dref[i], 0, 7};
	memset(&s, 0, sizeof(s));
	s.indirect.operation = BLKIF_OP_INDIRECT;
	s.indirect.indirect_op = BLKIF_OP_READ;
	s.indirect.nr_segments = 16;
	s.indirect.indirect_grefs[0] = rw->dref[TF_IND_PAGE];
	expect(rw, &s, BLKIF_RSP_OKAY, "valid indirect read");
	s.indirect.nr_segments = 0;
	expect(rw, &s, BLKIF_RSP_ERROR, "indirect 0 segments -> error");
	s.indirect.nr_segments = (uint16_t)(rw->max_indirect + 1);
	expect(rw, &s, BLKIF_RSP_ERROR, "indirect above max -> error");
	s.indirect.nr_segments = 16;
	s.indirect.indirect_op = BLKIF_OP_DISCARD;
	expect(rw, &s, BLKIF_RSP_ERROR, "indirect discard -> error");
	s.indirect.indirect_op = BLKIF_OP_READ;
	s.indirect.indirect_grefs[0] = 4001;
	expect(rw, &s, BLKIF_RSP_ERROR, "indirect page not granted -> error");
	s.indirect.indirect_grefs[0] = rw->dref[TF_IND_PAGE];
	ind[7].last_sect = 9;
	expect(rw, &s, BLKIF_RSP_ERROR, "indirect bad segment -> error");
	ind[7].last_sect = 7;
	ind[3].gref = 4002;
	expect(rw, &s, BLKIF_RSP_ERROR, "indirect segment not granted -> error");
	ind[3].gref = rw->dref[3];

	memset(&s, 0, sizeof(s));
	s.discard.operation = BLKIF_OP_DISCARD;
	s.discard.sector_number = rw->sectors - 8;
	s.discard.nr_sectors = 16;
	expect(rw, &s, BLKIF_RSP_ERROR, "discard past the end -> error");

	/* The read-only disk. */
	s = rw_req(ro, BLKIF_OP_WRITE, 0, 0, 1);
	expect(ro, &s, BLKIF_RSP_ERROR, "write to read-only disk -> error");
	memset(&s, 0, sizeof(s));
	s.rw.operation = BLKIF_OP_FLUSH_DISKCACHE;
	expect(ro, &s, BLKIF_RSP_ERROR, "flush of read-only disk -> error");
	memset(&s, 0, sizeof(s));
	s.discard.operation = BLKIF_OP_DISCARD;
	s.discard.nr_sectors = 8;
	st = tf_one(ro, 0, &s);
	check(st == BLKIF_RSP_ERROR || st == BLKIF_RSP_EOPNOTSUPP,
	      "discard on read-only disk -> refused (%d)", st);
	s = rw_req(ro, BLKIF_OP_READ, 0, 0, 1);
	expect(ro, &s, BLKIF_RSP_OKAY, "read of read-only disk");

	/* A request rewritten while the backend reads it: a thread flips every
	 * slot between a valid read and garbage as fast as it can while we push
	 * requests. Each must get some status, none may crash the backend. */
	struct racer rc = {.d = rw};
	rc.good = rw_req(rw, BLKIF_OP_READ, 0, 0, 11);
	memset(&rc.bad, 0xff, sizeof(rc.bad));
	rc.bad.rw.operation = BLKIF_OP_INDIRECT;
	pthread_t th;
	pthread_create(&th, NULL, race_slots, &rc);
	unsigned answered = 0, statuses_ok = 1;
	for (unsigned i = 0; i < 300; i++) {
		(void)blkif_ring_front_next_req(&rw->q[0].front); /* the racer writes it */
		tf_push(rw, 0);
		struct blkif_rsp rsp;
		if (tf_wait(rw, 0, 1, &rsp) == 1) {
			answered++;
			/* Request and response share the slot, and the racer
			 * keeps writing it: a response it overwrote after the
			 * backend wrote it carries the racer's bytes, not an id
			 * the backend answered (the good or the bad one). Only
			 * the backend's own responses say something. */
			bool ours = rsp.id == rc.good.rw.id || rsp.id == rc.bad.rw.id;
			if (ours && rsp.status != BLKIF_RSP_OKAY && rsp.status != BLKIF_RSP_ERROR &&
			    rsp.status != BLKIF_RSP_EOPNOTSUPP)
				statuses_ok = 0;
		}
	}
	atomic_store(&rc.stop, true);
	pthread_join(th, NULL);
	check(answered == 300 && statuses_ok, "racing rewrites: %u/300 answered, statuses %s",
	      answered, statuses_ok ? "valid" : "INVALID");
	s = rw_req(rw, BLKIF_OP_READ, 0, 0, 1);
	expect(rw, &s, BLKIF_RSP_OKAY, "valid read after the race");
	check(get_num(rw->be, "state", -1) == XENBUS_STATE_CONNECTED,
	      "disk 0 still Connected after bad requests");

	/* The producer index jumps past the ring size: disk 0 closes. */
	struct blkif_ring_front *f = &rw->q[0].front;
	atomic_store_explicit(&f->sring->req_prod, f->req_prod_pvt + blkif_ring_front_size(f) + 7,
			      memory_order_release);
	evtchn_notify(H, rw->q[0].port);
	check(wait_be_state(rw, XENBUS_STATE_CLOSING, 5000),
	      "producer index past the ring: disk 0 Closing");
	/* The read-only disk, another ring of the same backend, carries on. */
	s = rw_req(ro, BLKIF_OP_READ, 8, 0, 4);
	expect(ro, &s, BLKIF_RSP_OKAY, "disk 1 still served");
	check(get_num(ro->be, "state", -1) == XENBUS_STATE_CONNECTED, "disk 1 still Connected");
}

/* --- scribble ---------------------------------------------------------------------- */

struct flipper {
	struct blkif_ring_front *f;
	_Atomic bool stop;
	unsigned flips;
};

static void *flip_prod(void *arg)
{
	struct flipper *fl = arg;
	uint32_t base = fl->f->req_prod_pvt;
	while (!atomic_load(&fl->stop)) {
		atomic_store(&fl->f->sring->req_prod, base + 1);
		atomic_store(&fl->f->sring->req_prod, base);
		atomic_store(&fl->f->sring->req_event, base + 0x40000000u);
		fl->flips++;
	}
	return NULL;
}

static void scribble(struct tf_dev *d)
{
	struct blkif_ring_front *f = &d->q[0].front;
	/* 1. Published with no notification, with the event indices made
	 * garbage: the backend must take them anyway (with a watchdog its loop
	 * wakes every quarter period and polls every ring) and answer them. */
	unsigned answered = 0;
	for (unsigned it = 0; it < 20; it++) {
		for (unsigned i = 0; i < 4; i++) {
			union blkif_req_slot *slot = tf_slot(d, 0);
			*slot = rw_req(d, BLKIF_OP_READ, 8 * (it * 4 + i), 40 + i, 1);
			slot->rw.id = NEXT_ID++;
		}
		atomic_store(&f->sring->req_event, f->req_prod_pvt + 0x10000u);
		atomic_store(&f->sring->rsp_event, f->rsp_cons + 0x20000u);
		blkif_ring_front_push_requests(f); /* and no evtchn_notify */
		answered += tf_wait(d, 0, 4, NULL);
	}
	check(answered == 80, "un-notified requests with scribbled event indices: %u/80 answered",
	      answered);
	atomic_store(&f->sring->rsp_event, f->rsp_cons + 1);
	union blkif_req_slot s = rw_req(d, BLKIF_OP_READ, 0, 0, 1);
	check(tf_one(d, 0, &s) == BLKIF_RSP_OKAY, "a notified read after that");

	/* 2. req_prod flipped between two values for a second, next slot a
	 * valid read: whatever the backend makes of it (a request taken, the
	 * ring stopped as the index goes back), it must not count as a stall. */
	*tf_slot(d, 0) = rw_req(d, BLKIF_OP_READ, 0, 0, 1);
	f->req_prod_pvt--; /* the flipper publishes it, or not */
	struct flipper fl = {.f = f};
	pthread_t th;
	pthread_create(&th, NULL, flip_prod, &fl);
	evtchn_notify(H, d->q[0].port);
	sleep_ms(1000);
	atomic_store(&fl.stop, true);
	pthread_join(th, NULL);
	say("req_prod flipped %u times; backend state %ld", fl.flips, get_num(d->be, "state", -1));
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Not a test: 4 KiB reads at queue depth 1 and 32 straight on the ring,
 * spinning on responses, to measure blkback alone (numbers on the
 * console). */
static void bench(struct tf_dev *d)
{
	unsigned qds[] = {1, 32};
	for (unsigned k = 0; k < 2; k++) {
		unsigned qd = qds[k], inflight = 0;
		uint64_t done = 0, x = 88172645463325252ull;
		double t0 = now_s(), t;
		while ((t = now_s()) - t0 < 2.0) {
			while (inflight < qd) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				union blkif_req_slot *slot = tf_slot(d, 0);
				*slot = rw_req(d, BLKIF_OP_READ, (x % (d->sectors / 8)) * 8,
					       inflight % 32, 1);
				slot->rw.id = NEXT_ID++;
				inflight++;
			}
			tf_push(d, 0);
			struct blkif_rsp rsp;
			while (blkif_ring_front_take_response(&d->q[0].front, &rsp) == 0) {
				inflight--;
				done++;
			}
		}
		say("bench: 4k randread qd%u: %.1f kIOPS", qd, (double)done / (t - t0) / 1e3);
		tf_wait(d, 0, inflight, NULL);
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "simple";
	int r;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((r = hvc_open_domain(&H)))
		return 1;
	if ((r = hvc_self_domid(H, &SELF)))
		return 1;
	xs_ring_use_hvc(H);
	XS = xs_open(0);
	if (!XS)
		fatal("xs_open", errno);
	if ((r = gnt_table_open(H, 1024, &GT)))
		fatal("gnt_table_open", r);
	char p[128];
	snprintf(p, sizeof(p), "/local/domain/%u/device/vbd", SELF);
	unsigned n = 0;
	/* The toolstack writes the device directories after starting us. */
	char **ids = NULL;
	for (int t = 0; t < 1000 && (!ids || n < (strcmp(mode, "evil") ? 1u : 2u)); t++) {
		free(ids);
		sleep_ms(10);
		ids = xs_directory(XS, XBT_NULL, p, &n);
	}
	if (!ids || n == 0)
		fatal("no vbd in device/vbd", ENOENT);
	/* Disks in devid order: xvda first. */
	for (unsigned i = 0; i < n && NDEV < TF_MAX_DEVS; i++)
		DEV[NDEV++].devid = (unsigned)strtoul(ids[i], NULL, 10);
	free(ids);
	if (NDEV == 2 && DEV[0].devid > DEV[1].devid) {
		unsigned t = DEV[0].devid;
		DEV[0].devid = DEV[1].devid;
		DEV[1].devid = t;
	}
	bool good = !strcmp(mode, "good") || !strcmp(mode, "rings");
	if (!strcmp(mode, "rings"))
		RINGS_KEY = RK_ONLY;
	for (unsigned i = 0; i < NDEV; i++) {
		struct tf_dev *d = &DEV[i];
		snprintf(d->fe, sizeof(d->fe), "/local/domain/%u/device/vbd/%u", SELF, d->devid);
		if (!strcmp(mode, "badhs")) {
			bad_handshakes(d);
			RINGS_KEY = RK_JUNK;
		}
		r = good ? tf_connect(d, 2, 2, true) : tf_connect(d, 0, 1, !strcmp(mode, "bench"));
		if (r)
			fatal("handshake", r);
	}
	if (!strcmp(mode, "evil")) {
		evil();
	} else if (!strcmp(mode, "scribble")) {
		scribble(&DEV[0]);
	} else if (!strcmp(mode, "bench")) {
		bench(&DEV[0]);
	} else if (!strcmp(mode, "budget")) {
		budget(&DEV[0]);
	} else {
		for (unsigned i = 0; i < NDEV; i++)
			if (!(DEV[i].info & VDISK_READONLY))
				good_io(&DEV[i], DEV[i].devid);
		if (good) {
			struct tf_dev *d = &DEV[0];
			check(d->order == 2 && d->nq == 2 && d->persistent,
			      "negotiated order 2, 2 queues, persistent grants");
			sleep_ms(1200); /* drvdom-stats is rewritten every 0.5 s */
			long hits = stat_of(d, "pgnt_hits"), req = stat_of(d, "reqs");
			check(hits > 0 && req >= 70, "drvdom-stats: reqs=%ld pgnt_hits=%ld", req,
			      hits);
		}
	}
	finish();
	if (!strcmp(mode, "loop")) {
		struct tf_dev *d = &DEV[0];
		snprintf(p, sizeof(p), "/local/domain/%u/data/iter", SELF);
		for (unsigned it = 1;; it++) {
			fill(d, 0, 4, it);
			union blkif_req_slot s = rw_req(d, BLKIF_OP_WRITE, 2048, 0, 4);
			int st1 = tf_one(d, 0, &s);
			s = rw_req(d, BLKIF_OP_READ, 2048, 40, 4);
			int st2 = tf_one(d, 0, &s);
			if (st1 || st2 || !same(d, 0, 40, 4)) {
				check(false, "loop iteration %u: %d %d", it, st1, st2);
				finish();
				break;
			}
			char v[16];
			snprintf(v, sizeof(v), "%u", it);
			put(p, v);
			sleep_ms(20);
		}
	}
	for (;;)
		sleep_ms(1000);
}
