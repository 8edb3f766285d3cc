// SPDX-License-Identifier: MIT
// The XenbusState machine of drvdom-blkback, one function per transition
// (Xen's io/blkif.h handshake; the drvdom layout is docs/devices.md):
//   (found)      -> InitWait   blkback_dev_init_wait: take the disk, publish
//                              features
//   InitWait     -> Connected  blkback_dev_connect: frontend Initialised
//                              (or Connected): map rings, bind channels,
//                              publish geometry
//   any          -> Closing    blkback_dev_closing: frontend Closing, or the
//                              frontend broke the protocol
//   any          -> Closed     blkback_dev_closed: frontend Closed or gone
//   Closed       -> InitWait   frontend back to Initialising (reconnect)
//   (removed)                  blkback_dev_free: the toolstack removed the
//                              backend directory
// Directories found at start (a restarted instance) are treated as new: the
// features are published again and the state reset to InitWait.
#include "backends/blkback/blkback.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* --- xenstore helpers ---------------------------------------------------------- */

static char *store_get(struct blkback *bb, const char *dir, const char *key)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, key);
	unsigned len;
	return xs_read(bb->xs, XBT_NULL, p, &len);
}

/* Read an unsigned number: 0, -ENOENT (no key: *out = def), -EINVAL. */
static int store_get_uint(struct blkback *bb, const char *dir, const char *key, uint64_t def,
			  uint64_t *out)
{
	*out = def;
	char *v = store_get(bb, dir, key);
	if (!v)
		return -ENOENT;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	int ret = (errno || end == v || *end || v[0] == '-') ? -EINVAL : 0;
	free(v);
	if (!ret)
		*out = n;
	return ret;
}

static bool store_put(struct blkback *bb, xs_transaction_t t, const char *dir, const char *key,
		      const char *val)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, key);
	return xs_write(bb->xs, t, p, val, (unsigned)strlen(val));
}

/* 0, or the first op's error (errno value). */
static int ops_err(const struct xs_batch_op *ops, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (ops[i].err)
			return ops[i].err;
	return 0;
}

/* Write our state, but only into a directory the toolstack still has: a
 * plain write after the toolstack (or xenstored, for a guest gone for good)
 * removed it would create it again, and the device would never go. */
static int dev_set_state(struct blkback_dev *d, int st)
{
	struct xs_handle *xs = d->bb->xs;
	char v[4], fe[256];
	snprintf(v, sizeof(v), "%d", st);
	snprintf(fe, sizeof(fe), "%s/frontend", d->path);
	for (int tries = 0; tries < 16; tries++) {
		xs_transaction_t t = xs_transaction_start(xs);
		if (!t)
			break;
		unsigned len;
		char *probe = xs_read(xs, t, fe, &len);
		if (!probe) {
			xs_transaction_end(xs, t, true);
			log_info("%s: %s -> %s (directory removed: not written)", d->name,
				 xenbus_st_name(d->state), xenbus_st_name(st));
			d->state = st;
			return -ENOENT;
		}
		free(probe);
		if (!store_put(d->bb, t, d->path, "state", v)) {
			xs_transaction_end(xs, t, true);
			break;
		}
		if (xs_transaction_end(xs, t, false)) {
			log_info("%s: %s -> %s", d->name, xenbus_st_name(d->state),
				 xenbus_st_name(st));
			d->state = st;
			return 0;
		}
		if (errno != EAGAIN)
			break;
	}
	int e = errno ? errno : EIO;
	log_warn("%s: write state %s: %s", d->name, xenbus_st_name(st), strerror(e));
	return -e;
}

/* --- connect / disconnect -------------------------------------------------- */

struct fe_view;
static void frontend_changed(struct blkback_dev *d, const struct fe_view *fv);

/* Why a connect failed, for the `error` key and the log (blkback_dev_fail). */
static void dev_why(struct blkback_dev *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void dev_why(struct blkback_dev *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->fail_why, sizeof(d->fail_why), fmt, ap);
	va_end(ap);
}

static void dev_disconnect(struct blkback_dev *d)
{
	for (unsigned i = 0; i < d->nr_rings; i++)
		blkback_ring_disconnect(&d->rings[i]);
	free(d->rings);
	d->rings = NULL;
	d->nr_rings = 0;
	d->stats_last[0] = 0;
}

/* Read one queue's ring refs (ring-ref, or ring-ref0..N-1 with an order)
 * and event channel from dir. */
static int dev_read_queue(struct blkback_dev *d, const char *dir, unsigned order, grant_ref_t *refs,
			  evtchn_port_t *port)
{
	struct blkback *bb = d->bb;
	uint64_t v;
	unsigned n = 1u << order;
	for (unsigned i = 0; i < n; i++) {
		char key[32];
		int r;
		if (order == 0) {
			r = store_get_uint(bb, dir, "ring-ref", 0, &v);
			if (r == -ENOENT)
				r = store_get_uint(bb, dir, "ring-ref0", 0, &v);
		} else {
			snprintf(key, sizeof(key), "ring-ref%u", i);
			r = store_get_uint(bb, dir, key, 0, &v);
		}
		if (r || v > UINT32_MAX) {
			if (order == 0)
				dev_why(d, "%s: bad or missing ring-ref", dir);
			else
				dev_why(d, "%s: bad or missing ring-ref%u", dir, i);
			return -EINVAL;
		}
		refs[i] = (grant_ref_t)v;
	}
	if (store_get_uint(bb, dir, "event-channel", 0, &v) || v >= HV_EVTCHN_PORTS) {
		dev_why(d, "%s: bad or missing event-channel", dir);
		return -EINVAL;
	}
	*port = (evtchn_port_t)v;
	return 0;
}

/* Every queue's ring refs and event channel, as the frontend published
 * them. */
struct dev_rings {
	unsigned nq, order;
	grant_ref_t refs[BLKBACK_MAX_QUEUES][1u << BLKBACK_MAX_RING_ORDER];
	evtchn_port_t ports[BLKBACK_MAX_QUEUES];
};

/* drvdom-rings (docs/recovery.md, "Fast reconnect"): a drvdom frontend
 * writes what its ring keys say once more in one key, in the transaction
 * that publishes them, "order=O queues=N refs=R,R,... ports=P,..." (the
 * 2^O refs of queue 0, then of queue 1, ...; one port per queue), so a
 * connect reads one key, not 2 + 5 per queue. Anything not well-formed
 * (xbkey_parse) within our limits, or lists of other lengths than order
 * and queues say: false, and the keys are read one by one. */
static bool dev_parse_rings_key(struct blkback_dev *d, const char *v, struct dev_rings *out)
{
	if (!v)
		return false;
	uint64_t order, nq, refs[BLKBACK_MAX_QUEUES << BLKBACK_MAX_RING_ORDER],
	    ports[BLKBACK_MAX_QUEUES];
	struct xbkey_field f[] = {
	    {"order", BLKBACK_MAX_RING_ORDER, 1, &order, 0},
	    {"queues", BLKBACK_MAX_QUEUES, 1, &nq, 0},
	    {"refs", UINT32_MAX, BLKBACK_MAX_QUEUES << BLKBACK_MAX_RING_ORDER, refs, 0},
	    {"ports", HV_EVTCHN_PORTS - 1, BLKBACK_MAX_QUEUES, ports, 0},
	};
	bool ok = xbkey_parse(v, f, sizeof(f) / sizeof(f[0])) && nq >= 1 &&
		  f[2].nvals == (unsigned)nq << order && f[3].nvals == nq;
	if (!ok) {
		log_debug("%s: drvdom-rings not usable: the keys one by one", d->name);
		return false;
	}
	out->nq = (unsigned)nq;
	out->order = (unsigned)order;
	for (unsigned q = 0; q < out->nq; q++) {
		for (unsigned i = 0; i < (1u << order); i++)
			out->refs[q][i] = (grant_ref_t)refs[(q << order) + i];
		out->ports[q] = (evtchn_port_t)ports[q];
	}
	return true;
}

/* The ring keys one by one (Xen's layout). */
static int dev_read_rings(struct blkback_dev *d, struct dev_rings *out)
{
	struct blkback *bb = d->bb;
	uint64_t nq, order;
	if (store_get_uint(bb, d->fe_path, "multi-queue-num-queues", 1, &nq) == -EINVAL ||
	    nq == 0 || nq > BLKBACK_MAX_QUEUES) {
		dev_why(d, "bad multi-queue-num-queues (1..%u)", BLKBACK_MAX_QUEUES);
		return -EINVAL;
	}
	if (store_get_uint(bb, d->fe_path, "ring-page-order", 0, &order) == -EINVAL ||
	    order > BLKBACK_MAX_RING_ORDER) {
		dev_why(d, "bad ring-page-order (0..%u)", BLKBACK_MAX_RING_ORDER);
		return -EINVAL;
	}
	out->nq = (unsigned)nq;
	out->order = (unsigned)order;
	for (unsigned i = 0; i < out->nq; i++) {
		char dir[192];
		if (nq == 1)
			snprintf(dir, sizeof(dir), "%s", d->fe_path);
		else
			snprintf(dir, sizeof(dir), "%s/queue-%u", d->fe_path, i);
		int ret = dev_read_queue(d, dir, out->order, out->refs[i], &out->ports[i]);
		if (ret)
			return ret;
	}
	return 0;
}

/* What a look at the frontend reads, in one round trip (xs_batch): its
 * state, drvdom-backend-instance, and what a connect needs. */
enum { FE_STATE, FE_ECHO, FE_RINGS, FE_PROTO, FE_PERSISTENT, FE_NKEYS };
static const char *const fe_keys[FE_NKEYS] = {"state", "drvdom-backend-instance", "drvdom-rings",
					      "protocol", "feature-persistent"};
struct fe_view {
	struct xs_batch_op ops[FE_NKEYS + 1]; /* + the watch made with it */
	char paths[FE_NKEYS + 1][200];
	unsigned base; /* ops[base + FE_*] */
	bool ok;
};

/* Read the frontend's keys; with watch, register the watch on its state in
 * the same round trip first (its first event then finds nothing new). */
static int fe_view_read(struct blkback_dev *d, struct fe_view *v, bool watch)
{
	unsigned n = 0;
	memset(v->ops, 0, sizeof(v->ops));
	if (watch) {
		snprintf(v->paths[n], sizeof(v->paths[n]), "%s/state", d->fe_path);
		v->ops[n] = (struct xs_batch_op){
		    .type = XS_WATCH, .path = v->paths[n], .data = d->fe_token};
		n++;
	}
	v->base = n;
	for (unsigned k = 0; k < FE_NKEYS; k++, n++)
		xs_batch_read(&v->ops[n], v->paths[n], sizeof(v->paths[n]), d->fe_path, fe_keys[k]);
	v->ok = xs_batch(d->bb->xs, XBT_NULL, v->ops, n);
	if (!v->ok)
		return -errno;
	if (watch && v->ops[0].err)
		return -v->ops[0].err;
	return 0;
}

static void fe_view_free(struct fe_view *v)
{
	xs_batch_free(v->ops, FE_NKEYS + 1);
}

static const char *fe_val(const struct fe_view *v, unsigned k)
{
	return v->ops[v->base + k].reply;
}

/* InitWait -> Connected, with what fe_view_read found. */
static int blkback_dev_connect(struct blkback_dev *d, const struct fe_view *fv)
{
	struct blkback *bb = d->bb;
	uint64_t pers;
	struct dev_rings rg;
	if (!dev_parse_rings_key(d, fe_val(fv, FE_RINGS), &rg)) {
		int ret = dev_read_rings(d, &rg);
		if (ret)
			return ret;
	}
	uint64_t nq = rg.nq, order = rg.order;
	const char *proto = fe_val(fv, FE_PROTO);
	if (proto && strcmp(proto, "x86_64-abi")) {
		dev_why(d, "unsupported protocol '%.32s'", proto);
		return -EINVAL;
	}
	if (xs_batch_uint(&fv->ops[fv->base + FE_PERSISTENT], 0, &pers) == -EINVAL)
		pers = 0;
	d->persistent = pers != 0;

	d->rings = calloc(nq, sizeof(*d->rings));
	if (!d->rings)
		return -ENOMEM;
	d->nr_rings = (unsigned)nq;
	/* Every ring knows its device before any connects: a failure below
	 * disconnects them all. */
	for (unsigned i = 0; i < d->nr_rings; i++) {
		d->rings[i].dev = d;
		d->rings[i].idx = i;
	}
	/* Every ring's pages in one GNT_MAP (not one per ring). */
	unsigned per = 1u << order;
	struct gnt_map_op ops[BLKBACK_MAX_QUEUES << BLKBACK_MAX_RING_ORDER];
	for (unsigned i = 0; i < d->nr_rings; i++)
		for (unsigned k = 0; k < per; k++)
			ops[i * per + k] =
			    (struct gnt_map_op){.domid = d->fe_domid, .ref = rg.refs[i][k]};
	int map_ret = gnt_map_batch(bb->h, ops, d->nr_rings * per);
	for (unsigned i = 0; i < d->nr_rings; i++) {
		struct blkback_ring *r = &d->rings[i];
		int ret =
		    blkback_ring_connect(r, &ops[i * per], map_ret, (unsigned)order, rg.ports[i]);
		if (ret)
			dev_why(d, "queue %u: cannot map the ring or bind its event channel", i);
		if (ret) {
			/* The rings after this one never took their pages. */
			for (unsigned k = (i + 1) * per; k < d->nr_rings * per; k++)
				if (ops[k].status == GNTST_okay)
					gnt_unmap(bb->h, ops[k].handle);
			dev_disconnect(d);
			return ret;
		}
	}

	/* The geometry and data-path features once more in one key, so a
	 * reconnecting frontend reads one key, not nine (docs/recovery.md,
	 * "Fast reconnect"); the same values as the single keys. */
	char conn[256];
	const struct xbkey_field cf[] = {
	    XBKEY_SCALAR("sectors", d->sectors),
	    XBKEY_SCALAR("sector-size", BLKIF_SECTOR_SIZE),
	    XBKEY_SCALAR("info", d->readonly ? VDISK_READONLY : 0),
	    XBKEY_SCALAR("feature-persistent", 1),
	    XBKEY_SCALAR("feature-max-indirect-segments", BLKBACK_MAX_INDIRECT),
	    XBKEY_SCALAR("feature-flush-cache", 1),
	    XBKEY_SCALAR("feature-barrier", 0),
	    XBKEY_SCALAR("feature-discard", d->can_discard ? 1 : 0),
	};
	int fr = xbkey_format(conn, sizeof(conn), cf, sizeof(cf) / sizeof(cf[0]));
	if (fr) {
		dev_disconnect(d);
		return fr;
	}
	for (int tries = 0;; tries++) {
		xs_transaction_t t = xs_transaction_start(bb->xs);
		if (t == XBT_NULL)
			return -errno;
		/* The writes in one round trip (xs_batch), state last. */
		char vs[4][24], ps[6][256];
		snprintf(vs[0], sizeof(vs[0]), "%" PRIu64, d->sectors);
		snprintf(vs[1], sizeof(vs[1]), "%u", (unsigned)BLKIF_SECTOR_SIZE);
		snprintf(vs[2], sizeof(vs[2]), "%u", (unsigned)d->phys_sector_size);
		snprintf(vs[3], sizeof(vs[3]), "%u", (unsigned)(d->readonly ? VDISK_READONLY : 0));
		struct xs_batch_op w[6];
		xs_batch_write(&w[0], ps[0], sizeof(ps[0]), d->path, "sectors", vs[0]);
		xs_batch_write(&w[1], ps[1], sizeof(ps[1]), d->path, "sector-size", vs[1]);
		xs_batch_write(&w[2], ps[2], sizeof(ps[2]), d->path, "physical-sector-size", vs[2]);
		xs_batch_write(&w[3], ps[3], sizeof(ps[3]), d->path, "info", vs[3]);
		xs_batch_write(&w[4], ps[4], sizeof(ps[4]), d->path, "drvdom-connect", conn);
		xs_batch_write(&w[5], ps[5], sizeof(ps[5]), d->path, "state", "4");
		bool ok = xs_batch(bb->xs, t, w, 6);
		if (ok && ops_err(w, 6)) {
			errno = ops_err(w, 6);
			ok = false;
		}
		if (!ok) {
			int e = errno;
			xs_transaction_end(bb->xs, t, true);
			dev_disconnect(d);
			return -e;
		}
		if (xs_transaction_end(bb->xs, t, false))
			break;
		if (errno != EAGAIN || tries > 20) {
			int e = errno;
			dev_disconnect(d);
			return -e;
		}
	}
	log_info("%s: %s -> Connected: %u queue(s), ring order %u%s, %" PRIu64 " sectors%s",
		 d->name, xenbus_st_name(d->state), d->nr_rings, (unsigned)order,
		 d->persistent ? ", persistent grants" : "", d->sectors,
		 d->readonly ? ", read-only" : "");
	d->state = XENBUS_STATE_CONNECTED;
	/* The counters go out at the stats timer's next tick (stats_ns 0:
	 * due), not here: a write here is a round trip between Connected and
	 * the first look at the rings a failover's replay is on. */
	d->stats_ns = 0;
	return 0;
}

/* any -> Closing. */
static void blkback_dev_closing(struct blkback_dev *d)
{
	dev_disconnect(d);
	if (d->state != XENBUS_STATE_CLOSING && d->state != XENBUS_STATE_CLOSED)
		dev_set_state(d, XENBUS_STATE_CLOSING);
}

/* any -> Closed. With online = 0 (the toolstack is detaching) the disk fd
 * is closed first, so a toolstack that sees Closed knows the disk (and
 * its lock) is free, as Linux blkback unregisters the device then. */
static void blkback_dev_closed(struct blkback_dev *d)
{
	dev_disconnect(d);
	uint64_t online;
	if (d->disk_fd >= 0 && store_get_uint(d->bb, d->path, "online", 1, &online) == 0 &&
	    online == 0) {
		close(d->disk_fd);
		d->disk_fd = -1;
		log_info("%s: offline: disk released", d->name);
	}
	if (d->state != XENBUS_STATE_CLOSED)
		dev_set_state(d, XENBUS_STATE_CLOSED);
}

/* A connected frontend closed an event channel, or its domain died (the
 * hv closes its ports): nobody will use these rings again, so let go of
 * its pages now rather than when the toolstack removes the directories. */
void blkback_dev_peer_gone(struct blkback_dev *d)
{
	if (d->state != XENBUS_STATE_CONNECTED)
		return;
	log_info("%s: the frontend closed its event channel", d->name);
	blkback_dev_closed(d);
}

void blkback_dev_fail(struct blkback_dev *d, const char *why)
{
	log_warn("%s: %s", d->name, why);
	store_put(d->bb, XBT_NULL, d->path, "error", why);
	blkback_dev_closing(d);
}

void blkback_dev_fail_later(struct blkback_dev *d, const char *why)
{
	d->fail_pending = true;
	snprintf(d->fail_why, sizeof(d->fail_why), "%s", why);
	atomic_store(&d->bb->deferred, true);
	blkback_wake_deferred(d->bb);
}

/* --- Initialising -> InitWait ---------------------------------------------- */

/* Take the disk and learn its geometry. -ENOENT: not assigned yet. */
static int dev_open_disk(struct blkback_dev *d)
{
	if (d->disk_fd >= 0)
		return 0;
	struct blkback *bb = d->bb;
	int fd, r;
	if (bb->stash_fd >= 0 && !strcmp(bb->stash_name, d->name)) {
		fd = bb->stash_fd;
		bb->stash_fd = -1;
	} else if ((r = hvc_device_get(bb->h, d->name, &fd))) {
		return r;
	}
	struct stat st;
	uint64_t bytes = 0;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
			r = -errno;
			close(fd);
			return r;
		}
	} else if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
	} else {
		close(fd);
		return -ENOTBLK;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_ACCMODE) == O_RDONLY)
		d->readonly = true;
	d->disk_fd = fd;
	d->sectors = bytes >> BLKBACK_SECTOR_SHIFT;
	d->phys_sector_size = 4096;
	if (st.st_blksize >= 512 && st.st_blksize <= 4096 && !(st.st_blksize & (st.st_blksize - 1)))
		d->phys_sector_size = (uint32_t)st.st_blksize;
	d->can_discard = S_ISREG(st.st_mode) && !d->readonly;
	return 0;
}

/* (found) or Closed -> InitWait. */
static int blkback_dev_init_wait(struct blkback_dev *d)
{
	struct blkback *bb = d->bb;
	int r = dev_open_disk(d);
	if (r == -ENOENT) {
		log_info("%s: waiting for the toolstack to assign the disk", d->name);
		return 0;
	}
	if (r) {
		log_warn("%s: disk: %s", d->name, strerror(-r));
		return r;
	}
	/* Keys a previous instance (or connection) left behind that say
	 * something now: its counters and its error. The geometry and
	 * drvdom-connect it wrote are rewritten with state Connected in one
	 * transaction, and a frontend reads them only then: removing them
	 * here too would cost a failover five round trips for nothing. */
	static const char *const stale[] = {"drvdom-stats", "error"};
	for (int tries = 0;; tries++) {
		xs_transaction_t t = xs_transaction_start(bb->xs);
		if (t == XBT_NULL)
			return -errno;
		/* One round trip for the removals and the look at
		 * drvdom-features, one for the writes (xs_batch). */
		char p[256], rp[2][256];
		struct xs_batch_op q[3];
		for (size_t i = 0; i < 2; i++) {
			snprintf(rp[i], sizeof(rp[i]), "%s/%s", d->path, stale[i]);
			q[i] = (struct xs_batch_op){.type = XS_RM, .path = rp[i]};
		}
		/* drvdom-features says which feature keys an instance of ours
		 * wrote in this directory. Only we (and dom0) write here, so
		 * when it says what we would write, the keys are there as we
		 * would write them: a restarted instance of the same kernel on
		 * the same disk skips eleven writes of a failover. */
		char feats[128];
		const struct xbkey_field ff[] = {
		    XBKEY_SCALAR("flush", 1),
		    XBKEY_SCALAR("discard", d->can_discard ? 1 : 0),
		    XBKEY_SCALAR("persistent", 1),
		    XBKEY_SCALAR("indirect", BLKBACK_MAX_INDIRECT),
		    XBKEY_SCALAR("order", BLKBACK_MAX_RING_ORDER),
		    XBKEY_SCALAR("queues", BLKBACK_MAX_QUEUES),
		};
		if (xbkey_format(feats, sizeof(feats), ff, sizeof(ff) / sizeof(ff[0])))
			feats[0] = 0; /* too long (cannot be): never "the same" */
		xs_batch_read(&q[2], p, sizeof(p), d->path, "drvdom-features");
		bool ok = xs_batch(bb->xs, t, q, 3);
		bool same = ok && feats[0] && q[2].reply && !strcmp(q[2].reply, feats);
		xs_batch_free(q, 3);
		/* The removals may find nothing (ENOENT): fine. */
		struct {
			const char *key;
			char val[24];
		} kv[14];
		unsigned n = 0;
#define KV(k, fmt, v) (kv[n].key = (k), snprintf(kv[n].val, sizeof(kv[n].val), fmt, v), n++)
		if (!same) {
			KV("feature-flush-cache", "%u", 1u);
			KV("feature-discard", "%u", d->can_discard ? 1u : 0u);
			KV("feature-persistent", "%u", 1u);
			KV("feature-max-indirect-segments", "%u", (unsigned)BLKBACK_MAX_INDIRECT);
			KV("max-ring-page-order", "%u", (unsigned)BLKBACK_MAX_RING_ORDER);
			KV("multi-queue-max-queues", "%u", (unsigned)BLKBACK_MAX_QUEUES);
			KV("hotplug-status", "%s", "connected");
			if (d->can_discard) {
				KV("discard-granularity", "%u", 4096u);
				KV("discard-alignment", "%u", 0u);
				KV("discard-secure", "%u", 0u);
			}
		}
#undef KV
		char wp[16][256];
		struct xs_batch_op w[16];
		unsigned nw = 0;
		for (unsigned i = 0; i < n; i++, nw++)
			xs_batch_write(&w[nw], wp[nw], sizeof(wp[nw]), d->path, kv[i].key, kv[i].val);
		if (!same) {
			xs_batch_write(&w[nw], wp[nw], sizeof(wp[nw]), d->path, "drvdom-features", feats);
			nw++;
		}
		xs_batch_write(&w[nw], wp[nw], sizeof(wp[nw]), d->path, "drvdom-instance", bb->instance);
		nw++;
		xs_batch_write(&w[nw], wp[nw], sizeof(wp[nw]), d->path, "state", "2");
		nw++;
		ok = ok && xs_batch(bb->xs, t, w, nw);
		if (ok && ops_err(w, nw)) {
			errno = ops_err(w, nw);
			ok = false;
		}
		if (!ok) {
			r = -errno;
			xs_transaction_end(bb->xs, t, true);
			return r;
		}
		if (xs_transaction_end(bb->xs, t, false))
			break;
		if (errno != EAGAIN || tries > 20)
			return -errno;
	}
	log_info("%s: %s -> InitWait (%" PRIu64 " sectors%s)", d->name, xenbus_st_name(d->state),
		 d->sectors, d->readonly ? ", read-only" : "");
	d->state = XENBUS_STATE_INIT_WAIT;
	/* Now, not when the new watch's first event comes round through the
	 * xenstore reader: a frontend that already waits for us (its kept
	 * rings, docs/recovery.md) is connected at once. The watch goes in
	 * the same round trip as the look at the frontend; its first event
	 * finds nothing to do. */
	struct fe_view fv;
	r = fe_view_read(d, &fv, !d->fe_watched);
	if (r) {
		fe_view_free(&fv);
		log_warn("%s: watch %s/state: %s", d->name, d->fe_path, strerror(-r));
		return r;
	}
	if (!d->fe_watched)
		d->fe_skip_first = true;
	d->fe_watched = true;
	frontend_changed(d, &fv);
	fe_view_free(&fv);
	return 0;
}

/* --- what the frontend did ------------------------------------------------- */

/* A drvdom frontend says in drvdom-backend-instance which backend instance
 * its ring keys and rings are for (docs/recovery.md, "Fast reconnect"):
 * "I" (set up for, or in use by, instance I) or "!D" (reset after
 * instance D died: for any instance but D). Anything else means keys and
 * rings of a connection to an instance before us, which the frontend has
 * not reset yet: wait for it rather than map them. No key: a frontend that
 * does not know the extension (Linux, the test frontends): the plain
 * handshake. */
static bool frontend_ready_for_us(struct blkback_dev *d, const struct fe_view *fv)
{
	const char *echo = fe_val(fv, FE_ECHO);
	bool ok = xbkey_echo_allows(echo, d->bb->instance);
	if (!ok)
		log_debug("%s: frontend still set up for instance %.24s", d->name, echo);
	return ok;
}

void blkback_frontend_changed(struct blkback_dev *d)
{
	struct fe_view fv;
	if (fe_view_read(d, &fv, false)) {
		fe_view_free(&fv);
		return; /* the connection broke; the loop sees it */
	}
	frontend_changed(d, &fv);
	fe_view_free(&fv);
}

static void frontend_changed(struct blkback_dev *d, const struct fe_view *fv)
{
	uint64_t fe;
	int r = xs_batch_uint(&fv->ops[fv->base + FE_STATE], XENBUS_STATE_UNKNOWN, &fe);
	if (r == -EINVAL || fe > XENBUS_STATE_MAX)
		fe = XENBUS_STATE_UNKNOWN;
	log_debug("%s: frontend %s, backend %s", d->name, xenbus_st_name((int)fe),
		  xenbus_st_name(d->state));
	switch (fe) {
	case XENBUS_STATE_INITIALISING:
		if (d->state == XENBUS_STATE_CLOSED && blkback_dev_init_wait(d))
			blkback_dev_fail(d, "cannot publish features");
		break;
	case XENBUS_STATE_INITIALISED:
	case XENBUS_STATE_CONNECTED:
		if (d->state != XENBUS_STATE_INIT_WAIT || !frontend_ready_for_us(d, fv))
			break;
		d->fail_why[0] = 0;
		r = blkback_dev_connect(d, fv);
		if (r) {
			char why[sizeof(d->fail_why)];
			snprintf(why, sizeof(why), "%s",
				 d->fail_why[0] ? d->fail_why : "cannot connect to the frontend");
			blkback_dev_fail(d, why);
		}
		break;
	case XENBUS_STATE_CLOSING:
		blkback_dev_closing(d);
		break;
	case XENBUS_STATE_CLOSED:
	case XENBUS_STATE_UNKNOWN:
		/* Closed, or the frontend's directory is gone. */
		if (d->state != XENBUS_STATE_INITIALISING)
			blkback_dev_closed(d);
		break;
	default:
		break;
	}
}

/* --- devices appearing and disappearing --------------------------------------- */

static struct blkback_dev *dev_find(struct blkback *bb, domid_t fe, unsigned devid)
{
	for (struct blkback_dev *d = bb->devs; d; d = d->next)
		if (d->fe_domid == fe && d->devid == devid)
			return d;
	return NULL;
}

static void dev_probe(struct blkback *bb, domid_t fe, unsigned devid)
{
	struct blkback_dev *d = calloc(1, sizeof(*d));
	if (!d)
		die("calloc");
	d->bb = bb;
	d->fe_domid = fe;
	d->devid = devid;
	d->disk_fd = -1;
	d->state = XENBUS_STATE_INITIALISING;
	snprintf(d->path, sizeof(d->path), "%s/%u/%u", bb->vbd_path, fe, devid);
	snprintf(d->fe_token, sizeof(d->fe_token), "fe:%u/%u", fe, devid);
	/* The toolstack's keys in one round trip (xs_batch). */
	static const char *const keys[] = {"drvdom-device", "frontend", "frontend-id", "mode"};
	struct xs_batch_op q[4];
	char qp[4][256];
	for (unsigned i = 0; i < 4; i++)
		xs_batch_read(&q[i], qp[i], sizeof(qp[i]), d->path, keys[i]);
	if (!xs_batch(bb->xs, XBT_NULL, q, 4))
		memset(q, 0, sizeof(q));
	const char *v = q[0].reply;
	snprintf(d->name, sizeof(d->name), "%s", v && *v ? v : "");
	if (!v || !*v)
		snprintf(d->name, sizeof(d->name), "vbd/%u/%u", fe, devid);
	d->next = bb->devs;
	bb->devs = d;

	v = q[1].reply;
	bool ok = v && v[0] == '/' && strlen(v) < sizeof(d->fe_path);
	if (ok)
		snprintf(d->fe_path, sizeof(d->fe_path), "%s", v);
	uint64_t id;
	if (!ok || xs_batch_uint(&q[2], 0, &id) || id != fe) {
		xs_batch_free(q, 4);
		log_warn("%s: bad frontend or frontend-id in %s", d->name, d->path);
		return; /* stays Initialising; the toolstack may fix it */
	}
	v = q[3].reply;
	d->readonly = v && v[0] == 'r';
	xs_batch_free(q, 4);
	log_info("%s: found %s (frontend %s)", d->name, d->path, d->fe_path);
	if (blkback_dev_init_wait(d))
		blkback_dev_fail(d, "cannot publish features");
}

/* The hv assigned a device named `name`. If we still hold a device of that
 * name from before (its directory was removed and written again between
 * two of our scans: a detach and re-attach), that one is stale: drop it,
 * keeping the new fd for the fresh probe the caller's scan makes. */
bool blkback_dev_assigned(struct blkback *bb, const char *name)
{
	struct blkback_dev *d = bb->devs;
	while (d && strcmp(d->name, name))
		d = d->next;
	if (!d || (d->disk_fd < 0 && d->state == XENBUS_STATE_INITIALISING))
		return true; /* new, or waiting for exactly this */
	int fd;
	if (hvc_device_get(bb->h, name, &fd))
		return false; /* nothing new: the assignment we already took */
	log_info("%s: assigned again: the device was re-created", name);
	blkback_dev_free(d);
	if (bb->stash_fd >= 0)
		close(bb->stash_fd);
	bb->stash_fd = fd;
	snprintf(bb->stash_name, sizeof(bb->stash_name), "%s", name);
	return true;
}

void blkback_dev_free(struct blkback_dev *d)
{
	struct blkback *bb = d->bb;
	dev_disconnect(d);
	if (d->fe_watched) {
		char p[192];
		snprintf(p, sizeof(p), "%s/state", d->fe_path);
		xs_unwatch(bb->xs, p, d->fe_token);
	}
	if (d->disk_fd >= 0)
		close(d->disk_fd);
	for (struct blkback_dev **pp = &bb->devs; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	}
	log_info("%s: removed", d->name);
	free(d);
}

static bool parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

void blkback_scan(struct blkback *bb)
{
	for (struct blkback_dev *d = bb->devs; d; d = d->next)
		d->seen = false;
	unsigned nfe = 0;
	char **fes = xs_directory(bb->xs, XBT_NULL, bb->vbd_path, &nfe);
	for (unsigned i = 0; fes && i < nfe; i++) {
		unsigned fe;
		if (!parse_uint(fes[i], DOMID_FIRST_FREE - 1, &fe))
			continue;
		char p[192];
		snprintf(p, sizeof(p), "%s/%u", bb->vbd_path, fe);
		unsigned ndev = 0;
		char **devs = xs_directory(bb->xs, XBT_NULL, p, &ndev);
		for (unsigned j = 0; devs && j < ndev; j++) {
			unsigned devid;
			if (!parse_uint(devs[j], UINT32_MAX, &devid))
				continue;
			struct blkback_dev *d = dev_find(bb, (domid_t)fe, devid);
			if (!d) {
				dev_probe(bb, (domid_t)fe, devid);
				d = dev_find(bb, (domid_t)fe, devid);
			} else if (d->disk_fd < 0 && d->state == XENBUS_STATE_INITIALISING &&
				   d->fe_path[0]) {
				if (blkback_dev_init_wait(d))
					blkback_dev_fail(d, "cannot publish features");
			}
			if (d)
				d->seen = true;
		}
		free(devs);
	}
	free(fes);
	for (struct blkback_dev *d = bb->devs, *n; d; d = n) {
		n = d->next;
		if (!d->seen)
			blkback_dev_free(d);
	}
}

/* --- drvdom-stats ------------------------------------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void blkback_stats_publish(struct blkback_dev *d, bool force)
{
	if (d->state != XENBUS_STATE_CONNECTED || !d->nr_rings)
		return;
	uint64_t now = now_ns();
	/* The timer ticks every BLKBACK_STATS_NS: allow for its jitter. */
	if (!force && now - d->stats_ns < BLKBACK_STATS_NS - BLKBACK_STATS_NS / 8)
		return;
	d->stats_ns = now;
	struct blkback_stats t = {0};
	uint32_t pgrants = 0;
	for (unsigned i = 0; i < d->nr_rings; i++) {
		const struct blkback_stats *s = &d->rings[i].st;
		t.requests += s->requests;
		t.rd += s->rd;
		t.wr += s->wr;
		t.flush += s->flush;
		t.discard += s->discard;
		t.errors += s->errors;
		t.bytes_rd += s->bytes_rd;
		t.bytes_wr += s->bytes_wr;
		t.notify_sent += s->notify_sent;
		t.notify_suppressed += s->notify_suppressed;
		t.grant_maps += s->grant_maps;
		t.pgrant_hits += s->pgrant_hits;
		t.inline_io += s->inline_io;
		t.inflight += s->inflight;
		t.inflight_max += s->inflight_max;
		if (d->rings[i].pcache)
			pgrants += gnt_pcache_count(d->rings[i].pcache);
	}
	/* The names of docs/devices.md first (drvdom top shows the first 16
	 * and turns reqs and bytes into rates), then blkback's own. */
	char buf[sizeof(d->stats_last)];
	int n = snprintf(
	    buf, sizeof(buf),
	    "reqs=%" PRIu64 " bytes=%" PRIu64 " inflight=%u ntf_sent=%" PRIu64 " ntf_supp=%" PRIu64
	    " gnt_maps=%" PRIu64 " pgnt_hits=%" PRIu64 " errors=%" PRIu64 " rd=%" PRIu64
	    " wr=%" PRIu64 " flush=%" PRIu64 " discard=%" PRIu64 " bytes_rd=%" PRIu64
	    " bytes_wr=%" PRIu64 " inflight_max=%u inline_io=%" PRIu64 " pgrants=%u queues=%u",
	    t.requests, t.bytes_rd + t.bytes_wr, t.inflight, t.notify_sent, t.notify_suppressed,
	    t.grant_maps, t.pgrant_hits, t.errors, t.rd, t.wr, t.flush, t.discard, t.bytes_rd,
	    t.bytes_wr, t.inflight_max, t.inline_io, pgrants, d->nr_rings);
	for (unsigned i = 0; d->nr_rings > 1 && i < d->nr_rings && n > 0 && (size_t)n < sizeof(buf);
	     i++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n,
			      " q%u.reqs=%" PRIu64 " q%u.inflight=%u", i, d->rings[i].st.requests,
			      i, d->rings[i].st.inflight);
	if (!strcmp(buf, d->stats_last))
		return;
	if (store_put(d->bb, XBT_NULL, d->path, "drvdom-stats", buf))
		memcpy(d->stats_last, buf, sizeof(buf));
}
