// SPDX-License-Identifier: MIT
// Test backend for blkfront: a static driver domain kernel (started by
// `drvdom create` in the blk_e2e suite with kernel = this program and
// extra_args = [MODE, K]) that serves the first vbd it is given from the
// assigned disk fd (one queue, one-page ring, no persistent grants, inline
// segments, flush), and misbehaves once, after K requests, as MODE says:
//   good     never misbehaves (the control)
//   restart  stops answering, then acts like a restarted instance: unmaps
//            the ring, closes its event channel (the guest gets
//            EVT_PORT_CLOSED, as after a crash), goes back to Initialising
//            then InitWait with its features; requests it held were never
//            answered and must be replayed by blkfront
//   badrsp   answers requests with responses blkfront must ignore (an
//            unknown id, a stale id, an id twice, a wrong operation), then
//            restarts as above so the requests it did not answer come back
//   jump     moves the response producer index far past the requests sent:
//            blkfront must reset the connection (Closing), not crash; the
//            backend then closes and offers a new handshake
// A third argument "fewer" makes the first instance offer persistent grants
// and 64 indirect segments and the restarted one neither (blkfront must
// re-encode and split what it replays). "connect-only" makes both
// instances publish the connection in drvdom-connect alone (no sectors
// key: blkfront must take the combined key); "connect-junk" makes them
// publish a malformed drvdom-connect that says 16 sectors beside the true
// single keys (blkfront must refuse it and read the keys one by one).
// After its one misbehaviour it
// serves correctly, so the client must see
// every request answered correctly: only latency. Single-threaded polling
// loop: simple, and fast enough for a test.
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "grant/gnt.h"
#include "hv/evtchn.h"
#include "hv/hvc.h"
#include "ring/blkif.h"
#include "ring/xenbus.h"
#include "xenstore/include/xenstore.h"

void xs_ring_use_hvc(struct hvc *h) __attribute__((weak));

enum mode { M_GOOD, M_RESTART, M_BADRSP, M_JUMP };

static struct {
	struct hvc *h;
	struct xs_handle *xs;
	domid_t self;
	enum mode mode;
	unsigned k;
	bool misbehaved;
	char be[512], fe[256];
	domid_t fe_id;
	int disk;
	uint64_t sectors;
	int state;
	bool awaiting_fe; /* restarted: InitWait only once the frontend is back to Initialising */
	void *ring_page;
	gnt_handle_t ring_handle;
	bool ring_mapped;
	evtchn_port_t port;
	bool have_port;
	struct blkif_ring_back ring;
	unsigned served;
	uint64_t last_ok_id;
	uint8_t last_ok_op;
	bool fewer, offer_indirect;
	bool connect_only, connect_junk;
	unsigned indirect_served;
} eb;

static char *rd(const char *dir, const char *key)
{
	char p[640];
	unsigned len;
	snprintf(p, sizeof(p), "%s/%s", dir, key);
	return xs_read(eb.xs, XBT_NULL, p, &len);
}

static long rdnum(const char *dir, const char *key, long def)
{
	char *v = rd(dir, key);
	long n = v ? strtol(v, NULL, 10) : def;
	free(v);
	return n;
}

static void wr(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wr(const char *key, const char *fmt, ...)
{
	char p[640], v[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	snprintf(p, sizeof(p), "%s/%s", eb.be, key);
	if (!xs_write(eb.xs, XBT_NULL, p, v, (unsigned)strlen(v)))
		log_warn("write %s: %s", p, strerror(errno));
}

static void set_state(int st)
{
	wr("state", "%d", st);
	log_info("backend -> %s", xenbus_st_name(st));
	eb.state = st;
}

static void init_wait(void)
{
	wr("feature-flush-cache", "1");
	wr("max-ring-page-order", "0");
	wr("multi-queue-max-queues", "1");
	/* With "fewer": the first instance offers indirect segments and
	 * persistent grants, the restarted one neither, so blkfront must
	 * re-encode (and split) what it replays. */
	eb.offer_indirect = eb.fewer && !eb.misbehaved;
	wr("feature-persistent", eb.offer_indirect ? "1" : "0");
	wr("feature-max-indirect-segments", eb.offer_indirect ? "64" : "0");
	set_state(XENBUS_STATE_INIT_WAIT);
}

/* Forget the rings as a dead instance would (the guest's port closes). */
static void drop_rings(void)
{
	if (eb.have_port) {
		evtchn_close(eb.h, eb.port);
		eb.have_port = false;
	}
	if (eb.ring_mapped) {
		gnt_unmap(eb.h, eb.ring_handle);
		eb.ring_mapped = false;
	}
}

static void restart(const char *why)
{
	log_info("acting restarted (%s) after %u requests (%u indirect)", why, eb.served,
		 eb.indirect_served);
	drop_rings();
	eb.misbehaved = true;
	set_state(XENBUS_STATE_INITIALISING);
	eb.awaiting_fe = true;
}

static int connect_ring(void)
{
	long ref = rdnum(eb.fe, "ring-ref", -1), port = rdnum(eb.fe, "event-channel", -1);
	if (ref < 0 || port < 0)
		return -EINVAL;
	int r = gnt_map(eb.h, eb.fe_id, (grant_ref_t)ref, 0, &eb.ring_page, &eb.ring_handle);
	if (r)
		return r;
	eb.ring_mapped = true;
	r = evtchn_bind_interdomain(eb.h, eb.fe_id, (evtchn_port_t)port, &eb.port);
	if (r) {
		drop_rings();
		return r;
	}
	eb.have_port = true;
	blkif_ring_back_attach(&eb.ring, eb.ring_page, 0);
	if (eb.connect_only) {
		wr("drvdom-connect",
		   "sector-size=512 sectors=%" PRIu64 " info=0 feature-persistent=0 "
		   "feature-max-indirect-segments=0 feature-flush-cache=1 feature-barrier=0 "
		   "feature-discard=0 drvdom-future=1,2",
		   eb.sectors);
	} else if (eb.connect_junk) {
		/* A name twice (first instance), a stray word (the restarted
		 * one): either taken would make the disk 16 sectors. */
		static const char *const junk[] = {
		    "sectors=16 sector-size=512 info=0 feature-persistent=0 "
		    "feature-max-indirect-segments=0 feature-flush-cache=1 feature-barrier=0 "
		    "feature-discard=0 sectors=16",
		    "sectors=16 sector-size=512 info=0 feature-persistent=0 "
		    "feature-max-indirect-segments=0 feature-flush-cache=1 feature-barrier=0 "
		    "feature-discard=0 junk"};
		wr("drvdom-connect", "%s", junk[eb.misbehaved ? 1 : 0]);
	}
	if (!eb.connect_only)
		wr("sectors", "%" PRIu64, eb.sectors);
	wr("sector-size", "512");
	wr("info", "0");
	set_state(XENBUS_STATE_CONNECTED);
	return 0;
}

static void xenbus_step(void)
{
	long fe = rdnum(eb.fe, "state", 0);
	if (eb.awaiting_fe) {
		/* A restarted instance: the frontend's Initialised/Connected may be
		 * the dead instance's; wait until it acknowledges us by going back
		 * to Initialising (it does when it sees its port closed). */
		if (fe == XENBUS_STATE_INITIALISING || fe == XENBUS_STATE_CLOSED) {
			eb.awaiting_fe = false;
			init_wait();
		}
		return;
	}
	if (eb.state == XENBUS_STATE_INIT_WAIT && fe == XENBUS_STATE_INITIALISED) {
		int r = connect_ring();
		if (r)
			log_warn("connect: %s", strerror(-r));
	} else if (eb.state == XENBUS_STATE_CONNECTED && fe == XENBUS_STATE_CLOSING) {
		/* The frontend reset the connection (our jump): close, then offer
		 * a new handshake once it is back to Initialising. */
		drop_rings();
		set_state(XENBUS_STATE_CLOSED);
	} else if (eb.state == XENBUS_STATE_CLOSED && fe == XENBUS_STATE_INITIALISING) {
		init_wait();
	}
}

/* Read or write nsegs segments from sector on. */
static int16_t do_segs(bool wr_op, uint64_t sector, const struct blkif_seg *segs, unsigned nsegs)
{
	uint64_t off = sector * 512u;
	for (unsigned i = 0; i < nsegs; i++) {
		const struct blkif_seg *s = &segs[i];
		if (s->first_sect > s->last_sect || s->last_sect > 7)
			return BLKIF_RSP_ERROR;
		size_t len = (size_t)(s->last_sect - s->first_sect + 1) * 512u;
		if (off + len > eb.sectors * 512u)
			return BLKIF_RSP_ERROR;
		void *page;
		gnt_handle_t hd;
		if (gnt_map(eb.h, eb.fe_id, s->gref, wr_op ? GNTMAP_readonly : 0, &page, &hd))
			return BLKIF_RSP_ERROR;
		char *p = (char *)page + s->first_sect * 512u;
		ssize_t n = wr_op ? pwrite(eb.disk, p, len, (off_t)off)
				  : pread(eb.disk, p, len, (off_t)off);
		gnt_unmap(eb.h, hd);
		if (n != (ssize_t)len)
			return BLKIF_RSP_ERROR;
		off += len;
	}
	return BLKIF_RSP_OKAY;
}

static int16_t do_io(const union blkif_req_slot *slot)
{
	const struct blkif_req *rq = &slot->rw;
	if (rq->operation == BLKIF_OP_FLUSH_DISKCACHE)
		return fdatasync(eb.disk) ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY;
	if (rq->operation == BLKIF_OP_INDIRECT && eb.offer_indirect) {
		const struct blkif_req_indirect *ir = &slot->indirect;
		unsigned n = ir->nr_segments;
		if (n == 0 || n > BLKIF_SEGS_PER_INDIRECT_FRAME ||
		    (ir->indirect_op != BLKIF_OP_READ && ir->indirect_op != BLKIF_OP_WRITE))
			return BLKIF_RSP_ERROR;
		void *page;
		gnt_handle_t hd;
		if (gnt_map(eb.h, eb.fe_id, ir->indirect_grefs[0], GNTMAP_readonly, &page, &hd))
			return BLKIF_RSP_ERROR;
		static struct blkif_seg segs[BLKIF_SEGS_PER_INDIRECT_FRAME];
		memcpy(segs, page, n * sizeof(*segs)); /* copy, then check */
		gnt_unmap(eb.h, hd);
		eb.indirect_served++;
		return do_segs(ir->indirect_op == BLKIF_OP_WRITE, ir->sector_number, segs, n);
	}
	if (rq->operation != BLKIF_OP_READ && rq->operation != BLKIF_OP_WRITE)
		return BLKIF_RSP_EOPNOTSUPP;
	if (rq->nr_segments == 0 || rq->nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST)
		return BLKIF_RSP_ERROR;
	return do_segs(rq->operation == BLKIF_OP_WRITE, rq->sector_number, rq->seg,
		       rq->nr_segments);
}

static void respond(uint64_t id, uint8_t op, int16_t st)
{
	struct blkif_rsp *rsp = blkif_ring_back_next_rsp(&eb.ring);
	if (!rsp)
		return;
	rsp->id = id;
	rsp->operation = op;
	rsp->status = st;
}

/* Serve what the frontend pushed; misbehave once when K requests were
 * served. Returns whether there was work. */
static bool serve(void)
{
	if (eb.state != XENBUS_STATE_CONNECTED || !eb.ring_mapped)
		return false;
	bool work = false;
	unsigned bogus = 0;
	union blkif_req_slot rq;
	for (;;) {
		int r = blkif_ring_back_take_request(&eb.ring, &rq);
		if (r == -EAGAIN)
			break;
		if (r) {
			log_warn("frontend overflowed the ring");
			break;
		}
		work = true;
		/* With "fewer", misbehave on an indirect request, so that what is
		 * replayed needs re-encoding. */
		bool due = eb.served >= eb.k && (!eb.fewer || rq.operation == BLKIF_OP_INDIRECT);
		if (!eb.misbehaved && due && eb.mode != M_GOOD) {
			if (eb.mode == M_RESTART) {
				/* Hold it (and everything queued): never answered. */
				restart("held requests");
				return true;
			}
			if (eb.mode == M_BADRSP) {
				/* The slot this request frees carries garbage. */
				static unsigned n;
				switch (n++ % 4) {
				case 0:
					respond(0xdeadbeef00001234ull, rq.operation, 0);
					break;
				case 1:
					respond(eb.last_ok_id, eb.last_ok_op, 0); /* duplicate */
					break;
				case 2:
					respond((uint64_t)7 << 32 | 5, rq.operation, 0); /* stale */
					break;
				default:
					respond(0xffffffffull, 99, 0); /* beyond the shadow */
					break;
				}
				bogus++;
				continue;
			}
			if (eb.mode == M_JUMP) {
				eb.misbehaved = true;
				atomic_store_explicit(&eb.ring.sring->rsp_prod,
						      eb.ring.rsp_prod_pvt + 1000,
						      memory_order_release);
				evtchn_notify(eb.h, eb.port);
				log_info("jumped the response producer index");
				return true;
			}
		}
		int16_t st = do_io(&rq);
		respond(rq.rw.id, rq.operation, st);
		eb.last_ok_id = rq.rw.id;
		eb.last_ok_op = rq.operation;
		eb.served++;
	}
	if (work) {
		blkif_ring_back_push_responses(&eb.ring);
		evtchn_notify(eb.h, eb.port);
	}
	if (bogus) {
		/* The requests answered with garbage are still owed: only a new
		 * instance (a replay) can answer them now. */
		usleep(100000);
		restart("after bad responses");
	}
	return work;
}

/* The first vbd under our backend directory. */
static bool find_device(void)
{
	char base[128];
	snprintf(base, sizeof(base), "/local/domain/%u/backend/vbd", eb.self);
	unsigned nf = 0, nd = 0;
	char **fes = xs_directory(eb.xs, XBT_NULL, base, &nf);
	if (!fes || !nf) {
		free(fes);
		return false;
	}
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", base, fes[0]);
	char **ids = xs_directory(eb.xs, XBT_NULL, p, &nd);
	bool ok = ids && nd;
	if (ok)
		snprintf(eb.be, sizeof(eb.be), "%s/%s", p, ids[0]);
	free(ids);
	free(fes);
	if (!ok)
		return false;
	char *fe = rd(eb.be, "frontend"), *dev = rd(eb.be, "drvdom-device");
	long id = rdnum(eb.be, "frontend-id", -1);
	ok = fe && dev && id > 0;
	if (ok) {
		snprintf(eb.fe, sizeof(eb.fe), "%s", fe);
		eb.fe_id = (domid_t)id;
		ok = hvc_device_get(eb.h, dev, &eb.disk) == 0;
	}
	free(fe);
	free(dev);
	if (!ok)
		return false;
	off_t end = lseek(eb.disk, 0, SEEK_END);
	eb.sectors = end > 0 ? (uint64_t)end / 512u : 0;
	char w[320];
	snprintf(w, sizeof(w), "%s/state", eb.fe);
	xs_watch(eb.xs, w, "fe");
	log_info("serving %s (frontend domain %u) in mode %d after %u requests", eb.be, eb.fe_id,
		 eb.mode, eb.k);
	init_wait();
	return true;
}

int main(int argc, char **argv)
{
	log_init("blkfront-evilback");
	const char *m = argc > 1 ? argv[1] : "good";
	eb.mode = !strcmp(m, "restart")	 ? M_RESTART
		  : !strcmp(m, "badrsp") ? M_BADRSP
		  : !strcmp(m, "jump")	 ? M_JUMP
					 : M_GOOD;
	eb.k = argc > 2 ? (unsigned)atoi(argv[2]) : 20;
	eb.fewer = argc > 3 && !strcmp(argv[3], "fewer");
	eb.connect_only = argc > 3 && !strcmp(argv[3], "connect-only");
	eb.connect_junk = argc > 3 && !strcmp(argv[3], "connect-junk");
	eb.disk = -1;
	int r = hvc_open_domain(&eb.h);
	if (r)
		die_err(-r, "hvc");
	if (xs_ring_use_hvc)
		xs_ring_use_hvc(eb.h);
	if ((r = hvc_self_domid(eb.h, &eb.self)))
		die_err(-r, "domid");
	struct gnt_table *gt;
	if ((r = gnt_table_open(eb.h, 64, &gt)))
		die_err(-r, "grant table");
	eb.xs = xs_open(0);
	if (!eb.xs)
		die("xenstore");
	char base[128];
	snprintf(base, sizeof(base), "/local/domain/%u/backend/vbd", eb.self);
	xs_watch(eb.xs, base, "be");
	bool have = false;
	for (;;) {
		bool changed = false;
		char **ev;
		while ((ev = xs_check_watch(eb.xs))) {
			changed = true;
			free(ev);
		}
		if (changed && !have)
			have = find_device();
		if (have && (changed || eb.awaiting_fe))
			xenbus_step();
		hvc_dispatch(eb.h);
		if (!serve())
			usleep(200);
	}
}
