// SPDX-License-Identifier: MIT
// blkfront's XenbusState machine (Xen's io/blkif.h handshake, as fixed for
// drvdom in docs/devices.md), one function per transition:
//   Initialising -> Initialised   blkfront_initialise: the backend is in
//       InitWait; read its features, set up rings and event channels in
//       segments dedicated to it, publish them
//   Initialised -> Connected      blkfront_connect: the backend is Connected;
//       read the geometry and the data-path features, send the shadow
//   any -> Initialising/Closed    blkfront_disconnect: the backend went
//       away (port closed, state back to Initialising, Closing or Closed);
//       keep every unanswered request in the shadow for the next backend
//   any -> Closed                 blkfront_closing: our device is removed
//       (the backend's online = 0, or our state set to Closing by the
//       toolstack); blkfront_release frees the rings once the backend let go
// Every step re-reads the states, so spurious or coalesced watch events
// are harmless. Xenstore calls block for a round trip; they happen only on
// these transitions, never on the data path.
#include "frontends/blkfront/blkfront_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "hv/evloop.h"
#include "hv/evtchn.h"
#include "hv/hvc.h"
#include "ring/xenbus.h"
#include "xenstore/include/xenstore.h"

/* --- xenstore helpers ------------------------------------------------------- */

static char *xs_read_key(struct blkfront *bf, xs_transaction_t t, const char *dir, const char *key)
{
	char p[384];
	unsigned len;
	snprintf(p, sizeof(p), "%s/%s", dir, key);
	return xs_read(bf->env.xs, t, p, &len);
}

/* An unsigned value of dir/key, or def if it is missing or not a number. */
static uint64_t read_u64(struct blkfront *bf, const char *dir, const char *key, uint64_t def)
{
	char *v = xs_read_key(bf, XBT_NULL, dir, key);
	if (!v)
		return def;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	bool ok = end != v && *end == 0 && errno == 0 && v[0] != '-';
	free(v);
	return ok ? (uint64_t)n : def;
}

static bool write_key(struct blkfront *bf, xs_transaction_t t, const char *key, const char *fmt,
		      ...) __attribute__((format(printf, 4, 5)));
static bool write_key(struct blkfront *bf, xs_transaction_t t, const char *key, const char *fmt,
		      ...)
{
	char p[384], v[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	snprintf(p, sizeof(p), "%s/%s", bf->fe_path, key);
	return xs_write(bf->env.xs, t, p, v, (unsigned)strlen(v));
}

static void set_state(struct blkfront *bf, int st)
{
	if (!write_key(bf, XBT_NULL, "state", "%d", st))
		log_warn("vbd %u: writing state %s: %s", bf->devid, xenbus_st_name(st),
			 strerror(errno));
	if (bf->state != st)
		log_info("vbd %u: frontend %s -> %s", bf->devid, xenbus_st_name(bf->state),
			 xenbus_st_name(st));
	bf->state = st;
}

/* Remove what an earlier negotiation published (ring refs, channels). */
static void rm_ring_keys(struct blkfront *bf, xs_transaction_t t)
{
	static const char *const keys[] = {"ring-ref",
					   "event-channel",
					   "ring-page-order",
					   "multi-queue-num-queues",
					   "num-ring-pages",
					   "drvdom-backend-instance",
					   "drvdom-rings"};
	char p[384];
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", bf->fe_path, keys[i]);
		xs_rm(bf->env.xs, t, p);
	}
	for (unsigned i = 0; i < (1u << RING_MAX_ORDER); i++) {
		snprintf(p, sizeof(p), "%s/ring-ref%u", bf->fe_path, i);
		xs_rm(bf->env.xs, t, p);
	}
	for (unsigned i = 0; i < BF_MAX_QUEUES; i++) {
		snprintf(p, sizeof(p), "%s/queue-%u", bf->fe_path, i);
		xs_rm(bf->env.xs, t, p);
	}
}

/* --- transitions -------------------------------------------------------------- */

/* The ring order and queue count we use with what the backend offers
 * (read in InitWait). */
static void backend_ring_geometry(struct blkfront *bf, unsigned *order_out, unsigned *nq_out)
{
	uint64_t order = read_u64(bf, bf->be_path, "max-ring-page-order", 0);
	if (order == 0) {
		/* The older key: a page count. */
		uint64_t pages = read_u64(bf, bf->be_path, "max-ring-pages", 1);
		while (order < RING_MAX_ORDER && (2ull << order) <= pages)
			order++;
	}
	*order_out = (unsigned)(order < BF_MAX_RING_ORDER ? order : BF_MAX_RING_ORDER);
	uint64_t nq = read_u64(bf, bf->be_path, "multi-queue-max-queues", 1);
	if (nq == 0)
		nq = 1;
	*nq_out = (unsigned)(nq < BF_MAX_QUEUES ? nq : BF_MAX_QUEUES);
}

static void read_ring_features(struct blkfront *bf)
{
	backend_ring_geometry(bf, &bf->ring_order, &bf->nr_queues);
}

/* The backend instance's drvdom-instance (docs/recovery.md, "Fast
 * reconnect") into out; false if it publishes none (a backend without the
 * extension) or a bad one. */
static bool read_be_instance(struct blkfront *bf, char out[XBKEY_INSTANCE_LEN])
{
	char *v = bf->pf_valid ? (bf->pf_instance ? strdup(bf->pf_instance) : NULL)
			       : xs_read_key(bf, XBT_NULL, bf->be_path, "drvdom-instance");
	bool ok = xbkey_instance_copy(v, out);
	free(v);
	return ok;
}

/* What a backend publishes for a connection: the geometry and the
 * data-path features. */
struct be_connect {
	uint64_t sectors, ssize, info, persistent, indirect, flush, barrier, discard;
};

static void apply_io_features(struct blkfront *bf, const struct be_connect *c)
{
	bf->persistent = c->persistent == 1;
	uint64_t ind = c->indirect;
	if (ind > BF_MAX_INDIRECT_SEGS)
		ind = BF_MAX_INDIRECT_SEGS;
	bf->max_indirect = ind > BLKIF_MAX_SEGMENTS_PER_REQUEST ? (unsigned)ind : 0;
	bf->max_segs = bf->max_indirect ? bf->max_indirect : BLKIF_MAX_SEGMENTS_PER_REQUEST;
	bf->can_flush = c->flush == 1;
	bf->can_barrier = c->barrier == 1;
	bf->can_discard = c->discard == 1;
}

/* Features of the data path. Backends may publish them in InitWait or only
 * when Connected (Linux blkback does the latter), so this runs at connect. */
static void read_io_features(struct blkfront *bf, struct be_connect *c)
{
	c->persistent = read_u64(bf, bf->be_path, "feature-persistent", 0);
	c->indirect = read_u64(bf, bf->be_path, "feature-max-indirect-segments", 0);
	c->flush = read_u64(bf, bf->be_path, "feature-flush-cache", 0);
	c->barrier = read_u64(bf, bf->be_path, "feature-barrier", 0);
	c->discard = read_u64(bf, bf->be_path, "feature-discard", 0);
}

/* drvdom-connect (docs/recovery.md, "Fast reconnect"): the same values as
 * sectors, sector-size, info and the feature-* keys, in one key the backend
 * writes in its Connected transaction, "name=value" separated by spaces,
 * so a reconnect reads one key instead of nine. Unknown names are skipped
 * (a newer backend); anything not well-formed (xbkey_parse: a name twice
 * or missing, a value that is not a decimal number) makes the whole key
 * void: then the keys one by one. The values go through the same checks
 * as the single keys. */
static bool read_be_connect(struct blkfront *bf, struct be_connect *c)
{
	struct xbkey_field f[] = {
	    {"sectors", UINT64_MAX, 1, &c->sectors, 0},
	    {"sector-size", UINT64_MAX, 1, &c->ssize, 0},
	    {"info", UINT64_MAX, 1, &c->info, 0},
	    {"feature-persistent", UINT64_MAX, 1, &c->persistent, 0},
	    {"feature-max-indirect-segments", UINT64_MAX, 1, &c->indirect, 0},
	    {"feature-flush-cache", UINT64_MAX, 1, &c->flush, 0},
	    {"feature-barrier", UINT64_MAX, 1, &c->barrier, 0},
	    {"feature-discard", UINT64_MAX, 1, &c->discard, 0},
	};
	char *v = bf->pf_valid ? (bf->pf_connect ? strdup(bf->pf_connect) : NULL)
			       : xs_read_key(bf, XBT_NULL, bf->be_path, "drvdom-connect");
	bool ok = v && xbkey_parse(v, f, sizeof(f) / sizeof(f[0]));
	free(v);
	return ok;
}

/* drvdom-rings, what the ring keys say once more in one key
 * (docs/recovery.md, "Fast reconnect"): "order=O queues=N refs=R,R,...
 * ports=P,...", the 2^O refs of queue 0, then of queue 1, ...; one port a
 * queue. "" if it does not fit (then it is not published). */
static void format_rings_key(const struct blkfront *bf, char *out, size_t size)
{
	uint64_t refs[BF_MAX_QUEUES << BF_MAX_RING_ORDER], ports[BF_MAX_QUEUES];
	unsigned nr = 0;
	for (unsigned i = 0; i < bf->nr_queues; i++) {
		for (unsigned p = 0;
		     p < bf->queues[i].nr_ring_refs && nr < sizeof(refs) / sizeof(refs[0]); p++)
			refs[nr++] = bf->queues[i].ring_refs[p];
		ports[i] = bf->queues[i].port;
	}
	const struct xbkey_field f[] = {
	    XBKEY_SCALAR("order", bf->ring_order),
	    XBKEY_SCALAR("queues", bf->nr_queues),
	    {.name = "refs", .vals = refs, .nvals = nr},
	    {.name = "ports", .vals = ports, .nvals = bf->nr_queues},
	};
	if (xbkey_format(out, size, f, sizeof(f) / sizeof(f[0])))
		out[0] = 0;
}

/* Initialising -> Initialised: the backend waits in InitWait. */
static int blkfront_initialise(struct blkfront *bf)
{
	read_ring_features(bf);
	char inst[XBKEY_INSTANCE_LEN] = "";
	read_be_instance(bf, inst);
	int r = bf_pool_setup(bf);
	if (r) {
		log_err("vbd %u: data segment for domain %u: %s", bf->devid, bf->backend_id,
			strerror(-r));
		return r;
	}
	r = bf_queues_setup(bf);
	if (r) {
		log_err("vbd %u: rings: %s", bf->devid, strerror(-r));
		return r;
	}
	char rings[512];
	format_rings_key(bf, rings, sizeof(rings));
	for (int tries = 0; tries < 20; tries++) {
		xs_transaction_t t = xs_transaction_start(bf->env.xs);
		if (t == XBT_NULL) {
			r = -errno;
			break;
		}
		rm_ring_keys(bf, t);
		bool ok = true;
		if (bf->ring_order > 0)
			ok = ok && write_key(bf, t, "ring-page-order", "%u", bf->ring_order);
		if (bf->nr_queues > 1)
			ok = ok && write_key(bf, t, "multi-queue-num-queues", "%u", bf->nr_queues);
		for (unsigned i = 0; i < bf->nr_queues; i++) {
			struct bf_queue *q = &bf->queues[i];
			char pfx[32] = "";
			if (bf->nr_queues > 1)
				snprintf(pfx, sizeof(pfx), "queue-%u/", i);
			char key[64];
			for (unsigned p = 0; p < q->nr_ring_refs; p++) {
				if (bf->ring_order == 0)
					snprintf(key, sizeof(key), "%sring-ref", pfx);
				else
					snprintf(key, sizeof(key), "%sring-ref%u", pfx, p);
				ok = ok && write_key(bf, t, key, "%u", q->ring_refs[p]);
			}
			snprintf(key, sizeof(key), "%sevent-channel", pfx);
			ok = ok && write_key(bf, t, key, "%u", q->port);
		}
		/* The same once more in one key (docs/recovery.md, "Fast
		 * reconnect"): a backend's connect reads it instead of 2 + 5 per
		 * queue keys. */
		if (rings[0]) {
			char p[384];
			snprintf(p, sizeof(p), "%s/drvdom-rings", bf->fe_path);
			ok = ok && xs_write(bf->env.xs, t, p, rings, (unsigned)strlen(rings));
		}
		ok = ok && write_key(bf, t, "protocol", "x86_64-abi") &&
		     write_key(bf, t, "feature-persistent", "1") &&
		     (!inst[0] || write_key(bf, t, "drvdom-backend-instance", "%s", inst)) &&
		     write_key(bf, t, "state", "%d", XENBUS_STATE_INITIALISED);
		if (!ok) {
			r = -errno;
			xs_transaction_end(bf->env.xs, t, true);
			break;
		}
		if (xs_transaction_end(bf->env.xs, t, false)) {
			r = 0;
			break;
		}
		r = -errno;
		if (r != -EAGAIN)
			break;
	}
	if (r) {
		log_err("vbd %u: publishing rings: %s", bf->devid, strerror(-r));
		bf_queues_teardown(bf, true);
		return r;
	}
	bf->rings_up = true;
	memcpy(bf->be_instance, inst, sizeof(inst));
	log_info("vbd %u: frontend %s -> Initialised (%u queue%s, ring order %u)", bf->devid,
		 xenbus_st_name(bf->state), bf->nr_queues, bf->nr_queues > 1 ? "s" : "",
		 bf->ring_order);
	bf->state = XENBUS_STATE_INITIALISED;
	return 0;
}

/* Initialised -> Connected: the backend is Connected. */
static int blkfront_connect(struct blkfront *bf)
{
	struct be_connect bc;
	bool compact = read_be_connect(bf, &bc);
	uint64_t sectors = compact ? bc.sectors : read_u64(bf, bf->be_path, "sectors", UINT64_MAX);
	if (sectors == UINT64_MAX || sectors > (UINT64_MAX >> 10)) {
		log_warn("vbd %u: backend Connected without valid 'sectors'", bf->devid);
		return -EPROTO;
	}
	uint64_t ssize = compact ? bc.ssize : read_u64(bf, bf->be_path, "sector-size", 512);
	if (ssize < 512 || ssize > 65536 || (ssize & (ssize - 1))) {
		log_warn("vbd %u: bad sector-size %" PRIu64 ", using 512", bf->devid, ssize);
		ssize = 512;
	}
	uint64_t info = compact ? bc.info : read_u64(bf, bf->be_path, "info", 0);
	/* A drvdom backend's info says read-only whatever made it so. */
	char *mode = compact ? NULL : xs_read_key(bf, XBT_NULL, bf->be_path, "mode");
	if (!compact)
		read_io_features(bf, &bc);
	apply_io_features(bf, &bc);
	if (bf->ever_connected && sectors != bf->sectors)
		log_warn("vbd %u: the new backend reports %" PRIu64 " sectors, was %" PRIu64
			 "; keeping the old size",
			 bf->devid, sectors, bf->sectors);
	else
		bf->sectors = sectors;
	bf->sector_size = (uint32_t)ssize;
	bf->read_only = (info & VDISK_READONLY) || (mode && strcmp(mode, "r") == 0);
	free(mode);
	if (!bf->persistent)
		bf_grants_end_persistent(bf);
	bf->connected = true;
	bf->broken = false;
	log_info("vbd %u: connected: %" PRIu64 " sectors of %u bytes%s; %u queue%s, order %u, "
		 "%u segments per request%s%s%s%s",
		 bf->devid, bf->sectors, bf->sector_size, bf->read_only ? ", read-only" : "",
		 bf->nr_queues, bf->nr_queues > 1 ? "s" : "", bf->ring_order, bf->max_segs,
		 bf->persistent ? ", persistent grants" : "", bf->max_indirect ? ", indirect" : "",
		 bf->can_flush ? ", flush" : (bf->can_barrier ? ", barrier" : ""),
		 bf->can_discard ? ", discard" : "");
	if (bf->ever_connected) {
		bf->stats.reconnects++;
		if (bf->head)
			log_info("vbd %u: replaying %u requests to the new backend", bf->devid,
				 bf->stats.shadow_live);
	}
	bf_pump(bf);
	bf->want_kick = true;
	if (!bf->ever_connected) {
		bf->ever_connected = true;
		int r = bf_nbd_start(bf);
		if (r)
			log_err("vbd %u: NBD export: %s", bf->devid, strerror(-r));
		if (bf->connected_cb)
			bf->connected_cb(bf->connected_arg, bf);
	}
	bf_kick(bf);
	/* Our state last: the backend serves without waiting for it, so a
	 * replay does not wait for this round trip either. */
	set_state(bf, XENBUS_STATE_CONNECTED);
	return 0;
}

/* The backend went away (crash, restart, close): stop the data path, put
 * every request back in the queued part of the shadow, drop the rings and
 * grants; our state goes to `st` so a new backend instance knows no ring is
 * published. */
static void blkfront_disconnect(struct blkfront *bf, int st)
{
	if (bf->rings_up || bf->connected)
		log_info("vbd %u: backend gone; %u requests kept for replay", bf->devid,
			 bf->stats.shadow_live);
	bf->connected = false;
	bf_shadow_requeue_all(bf);
	bf_queues_teardown(bf, true);
	bf_grants_end_persistent(bf);
	bf->rings_up = false;
	bf->kept = false;
	bf->be_instance[0] = 0;
	atomic_store_explicit(&bf->backend_lost, false, memory_order_release);
	xs_transaction_t t = XBT_NULL;
	rm_ring_keys(bf, t);
	if (bf->state != st)
		set_state(bf, st);
}

/* The backend instance we were connected to died (our ports were closed
 * by the hv, which has revoked every mapping the instance held) or a new
 * instance announced itself: put every request back in the queued part of
 * the shadow and reset each ring in place, keeping its segment, grants,
 * event channel (unbound again, for the same domain to bind) and xenstore
 * keys, for the next instance of the same domain to take as they are. No
 * hypercall; two xenstore writes: the echo "!DEAD" (these keys and rings
 * are fresh for any instance but DEAD) and our state Initialised, so an
 * instance that comes up after this connects at once instead of waiting
 * for us to see its InitWait (docs/recovery.md, "Fast reconnect"). The
 * grants stay with the domain they were made for: nothing here is shown to
 * anyone who could not already see it. */
static void blkfront_keep_rings(struct blkfront *bf)
{
	log_info("vbd %u: backend instance %s gone; %u requests kept for replay, rings kept",
		 bf->devid, bf->be_instance, bf->stats.shadow_live);
	bf->connected = false;
	bf_shadow_requeue_all(bf);
	for (unsigned i = 0; i < bf->nr_queues; i++) {
		struct bf_queue *q = &bf->queues[i];
		blkif_ring_front_init(&q->ring, q->ring_seg->base, bf->ring_order);
		q->sent = 0;
		q->pushed = false;
	}
	atomic_store_explicit(&bf->backend_lost, false, memory_order_release);
	memcpy(bf->dead_instance, bf->be_instance, sizeof(bf->dead_instance));
	bf->be_instance[0] = 0;
	bf->kept = true;
	/* The echo first: a backend that reads it may use the keys with
	 * whatever state it reads beside it. */
	if (!write_key(bf, XBT_NULL, "drvdom-backend-instance", "!%s", bf->dead_instance))
		log_warn("vbd %u: writing drvdom-backend-instance: %s", bf->devid, strerror(errno));
	set_state(bf, XENBUS_STATE_INITIALISED);
}

/* Kept rings, backend instance inst Connected to them: claim the rings for
 * it (the echo "inst": from now on they hold requests only inst may see
 * answered, so no later instance may take them before we reset them
 * again), then the usual connect. The claim is written before anything is
 * put on a ring. */
static int blkfront_reconnect(struct blkfront *bf, const char *inst)
{
	if (!write_key(bf, XBT_NULL, "drvdom-backend-instance", "%s", inst))
		return -errno;
	snprintf(bf->be_instance, sizeof(bf->be_instance), "%s", inst);
	bf->kept = false;
	return blkfront_connect(bf);
}

/* any -> Closed: our device is being removed. Nothing will be replayed:
 * outstanding requests fail with ESHUTDOWN and the export stops. As in Xen
 * the frontend goes Closed while the backend may still map the rings (it
 * lets go when it sees Closed); blkfront_release frees them afterwards. */
static void blkfront_closing(struct blkfront *bf)
{
	bf->closing = true;
	bf->connected = false;
	bf_nbd_stop(bf);
	bf_fail_all(bf, -ESHUTDOWN);
	/* Only if our directory is still there: a write would create it again
	 * (and the guest would see a new disk) after the toolstack removed it. */
	char *be = xs_read_key(bf, XBT_NULL, bf->fe_path, "backend");
	if (be)
		set_state(bf, XENBUS_STATE_CLOSED);
	free(be);
}

/* Free rings and pool once the backend let go: 0, or -EBUSY while it still
 * maps them (leak == false) — call again later. */
static int blkfront_release(struct blkfront *bf, bool leak)
{
	int r = bf_queues_teardown(bf, leak);
	if (!r)
		r = bf_pool_teardown(bf, leak);
	if (!r) {
		bf->rings_up = false;
		bf->detached = true;
	}
	return r;
}

/* A port of ours was closed under us (poller, loop thread). The xenbus
 * code decides what it means (a stale report is ignored there) and stops
 * the data path if it is real. */
void bf_handle_lost(struct blkfront *bf)
{
	if (bf->failed || bf->detached) {
		atomic_store_explicit(&bf->backend_lost, false, memory_order_release);
		return;
	}
	blkfront_watch_event(bf);
}

/* A closed port was reported: is it still unbound at the hv? The instance
 * we were connected to died (it is), or the report is one of the dead
 * instance's, read only after we reconnected to the next one, whose bind
 * the hv has made since (it is not). One round trip per queue, on this
 * rare path only. */
static bool bf_loss_is_real(struct blkfront *bf)
{
	for (unsigned i = 0; i < bf->nr_queues; i++) {
		struct hv_evtchn_status_rep st;
		if (evtchn_status(bf->env.h, DOMID_SELF, bf->queues[i].port, &st) ||
		    st.status != EVTCHNSTAT_interdomain || st.remote_dom != bf->backend_id)
			return true;
	}
	return false;
}

void bf_backend_broken(struct blkfront *bf, const char *why)
{
	if (bf->broken)
		return;
	log_err("vbd %u: backend broke the ring protocol (%s): resetting the connection", bf->devid,
		why);
	bf->broken = true;
	bf->connected = false;
	/* Requests stay in the shadow; the rings and grants go once the
	 * backend has left Connected (it may still map them), and a backend
	 * that comes back through InitWait gets every request again. */
	set_state(bf, XENBUS_STATE_CLOSING);
}

/* The hv gave up restarting our backend domain (its crash limit: xenstored
 * wrote /local/domain/B/drvdom/state = failed). Nothing will ever answer
 * what the shadow holds for replay: fail it, and every later request, with
 * EIO — a clean error, not a hang (docs/recovery.md). The export stays up
 * so clients get the error as a reply. */
static bool bf_backend_failed(struct blkfront *bf)
{
	char p[64];
	unsigned len;
	snprintf(p, sizeof(p), "/local/domain/%u/drvdom/state", bf->backend_id);
	char *v = xs_read(bf->env.xs, XBT_NULL, p, &len);
	bool failed = v && !strcmp(v, "failed");
	free(v);
	return failed;
}

static void blkfront_fail_for_good(struct blkfront *bf)
{
	log_err("vbd %u: backend domain %u failed for good: every request fails with EIO",
		bf->devid, bf->backend_id);
	bf->failed = true;
	bf->connected = false;
	bf_fail_all(bf, -EIO);
	bf->want_kick = true;
	bf_kick(bf); /* requests the export held for a connection: now refused */
}

/* A strict unsigned decimal (a batch read's reply), or def. */
static uint64_t op_u64(const struct xs_batch_op *op, uint64_t def)
{
	uint64_t v;
	(void)xs_batch_uint(op, def, &v);
	return v;
}

static void pf_clear(struct blkfront *bf)
{
	free(bf->pf_instance);
	free(bf->pf_connect);
	bf->pf_instance = bf->pf_connect = NULL;
	bf->pf_valid = false;
}

/* One round's look at the states and the backend's instance keys, in one
 * round trip (xs_batch), rather than one per key: a failover's reconnect
 * is a few rounds of this (docs/recovery.md, "Fast reconnect"). With
 * failed, also /local/domain/B/drvdom/state. */
static void pf_read(struct blkfront *bf, int *be, int *fe, bool *failed)
{
	char p[5][384];
	struct xs_batch_op ops[5];
	snprintf(p[0], sizeof(p[0]), "%s/state", bf->be_path);
	snprintf(p[1], sizeof(p[1]), "%s/state", bf->fe_path);
	snprintf(p[2], sizeof(p[2]), "%s/drvdom-instance", bf->be_path);
	snprintf(p[3], sizeof(p[3]), "%s/drvdom-connect", bf->be_path);
	snprintf(p[4], sizeof(p[4]), "/local/domain/%u/drvdom/state", bf->backend_id);
	unsigned n = failed ? 5 : 4;
	for (unsigned i = 0; i < n; i++)
		ops[i] = (struct xs_batch_op){.type = XS_READ, .path = p[i]};
	pf_clear(bf);
	if (!xs_batch(bf->env.xs, XBT_NULL, ops, n)) {
		/* The connection broke: the key by key reads say so too. */
		*be = (int)read_u64(bf, bf->be_path, "state", XENBUS_STATE_UNKNOWN);
		*fe = (int)read_u64(bf, bf->fe_path, "state", XENBUS_STATE_UNKNOWN);
		if (failed)
			*failed = bf_backend_failed(bf);
		return;
	}
	*be = (int)op_u64(&ops[0], XENBUS_STATE_UNKNOWN);
	*fe = (int)op_u64(&ops[1], XENBUS_STATE_UNKNOWN);
	if (failed)
		*failed = !ops[4].err && ops[4].reply && !strcmp(ops[4].reply, "failed");
	bf->pf_instance = ops[2].err ? NULL : ops[2].reply;
	bf->pf_connect = ops[3].err ? NULL : ops[3].reply;
	ops[2].reply = ops[3].reply = NULL;
	for (unsigned i = 0; i < n; i++)
		free(ops[i].reply);
	bf->pf_valid = true;
}

void blkfront_watch_event(struct blkfront *bf)
{
	if (bf->in_xenbus || bf->detached || bf->failed)
		return;
	bf->in_xenbus = true;
	for (int round = 0; round < 4; round++) {
		int be, fe;
		bool failed = false;
		pf_read(bf, &be, &fe, round == 0 ? &failed : NULL);
		if (failed) {
			pf_clear(bf);
			bf->in_xenbus = false;
			blkfront_fail_for_good(bf);
			return;
		}
		bool lost = atomic_load_explicit(&bf->backend_lost, memory_order_acquire);
		if (lost && (bf->kept || (bf->rings_up && bf->be_instance[0] && !bf->broken &&
					  !bf_loss_is_real(bf)))) {
			/* Kept rings: their ports are unbound anyway, and rebound
			 * by the next instance. Else a stale report. */
			atomic_store_explicit(&bf->backend_lost, false, memory_order_release);
			lost = false;
		}
		if (be != bf->be_state)
			log_debug("vbd %u: backend %s", bf->devid, xenbus_st_name(be));
		bf->be_state = be;
		if (bf->closing) {
			if (be == XENBUS_STATE_CLOSED || be == XENBUS_STATE_UNKNOWN)
				blkfront_release(bf, false);
			break;
		}
		if (fe == XENBUS_STATE_CLOSING && bf->state != XENBUS_STATE_CLOSING &&
		    bf->state != XENBUS_STATE_CLOSED && !bf->broken) {
			/* The toolstack detaches the disk through our state. */
			blkfront_closing(bf);
			continue;
		}
		if (be >= XENBUS_STATE_CLOSING && read_u64(bf, bf->be_path, "online", 1) == 0) {
			/* The toolstack detaches the disk (xl's way: the backend's
			 * online = 0 and Closing). */
			blkfront_closing(bf);
			continue;
		}
		if (bf->state == XENBUS_STATE_CLOSED && fe == XENBUS_STATE_CLOSED && !bf->head &&
		    !bf->ever_connected)
			break;
		if (bf->rings_up && !bf->broken && bf->be_instance[0] &&
		    (lost || be == XENBUS_STATE_INIT_WAIT)) {
			/* Our instance died (lost), or a new one waits in
			 * InitWait (we may not have seen the old one go). */
			char inst[XBKEY_INSTANCE_LEN];
			if (lost || (read_be_instance(bf, inst) && strcmp(inst, bf->be_instance))) {
				blkfront_keep_rings(bf);
				continue;
			}
		}
		if (bf->kept && !bf->broken &&
		    (be == XENBUS_STATE_INIT_WAIT || be == XENBUS_STATE_CONNECTED)) {
			char inst[XBKEY_INSTANCE_LEN];
			if (!read_be_instance(bf, inst)) {
				/* A backend without the extension: wait for it to
				 * come back, then the full handshake. */
				if (be == XENBUS_STATE_CONNECTED)
					break;
				blkfront_disconnect(bf, XENBUS_STATE_INITIALISING);
				continue;
			}
			/* The dead instance's state not yet replaced, or a new
			 * one on its way to Connected (our "!DEAD" lets it). */
			if (!strcmp(inst, bf->dead_instance) || be == XENBUS_STATE_INIT_WAIT)
				break;
			if (blkfront_reconnect(bf, inst))
				log_warn("vbd %u: reconnecting to instance %s failed", bf->devid, inst);
			continue;
		}
		if (lost || (bf->broken && bf->rings_up && be != XENBUS_STATE_CONNECTED) ||
		    ((be <= XENBUS_STATE_INITIALISING || be >= XENBUS_STATE_CLOSING) &&
		     bf->rings_up)) {
			int st = be >= XENBUS_STATE_CLOSING ? XENBUS_STATE_CLOSED
							    : XENBUS_STATE_INITIALISING;
			if (bf->broken)
				st = XENBUS_STATE_CLOSING;
			blkfront_disconnect(bf, st);
			continue;
		}
		if (bf->broken) {
			/* Wait for the backend that broke the protocol to leave. */
			if (be == XENBUS_STATE_CONNECTED)
				break;
			bf->broken = false;
		}
		if (be == XENBUS_STATE_INIT_WAIT && bf->rings_up &&
		    bf->state == XENBUS_STATE_CONNECTED) {
			/* A new backend instance we did not see go away. */
			blkfront_disconnect(bf, XENBUS_STATE_INITIALISING);
			continue;
		}
		if (be == XENBUS_STATE_CLOSING && !bf->rings_up &&
		    bf->state == XENBUS_STATE_INITIALISING) {
			/* A restarted backend that read our previous
			 * instance's keys before we reset them refused them
			 * and waits in Closing for us to close: go Closed,
			 * then Initialising again once it is Closed. */
			set_state(bf, XENBUS_STATE_CLOSED);
			break;
		}
		if (be == XENBUS_STATE_CLOSED && !bf->rings_up &&
		    bf->state != XENBUS_STATE_INITIALISING) {
			/* Ask the backend for a new handshake (blkback re-enters
			 * InitWait when a Closed device's frontend is Initialising). */
			set_state(bf, XENBUS_STATE_INITIALISING);
			break;
		}
		if (be == XENBUS_STATE_INIT_WAIT && !bf->rings_up) {
			if (blkfront_initialise(bf) == 0)
				continue;
			break;
		}
		if (be == XENBUS_STATE_CONNECTED && bf->rings_up &&
		    bf->state == XENBUS_STATE_INITIALISED) {
			blkfront_connect(bf);
			continue;
		}
		break;
	}
	pf_clear(bf);
	bf->in_xenbus = false;
}

/* --- creation ----------------------------------------------------------------- */

int blkfront_create(const struct blkfront_env *env, unsigned devid, struct blkfront **out)
{
	struct blkfront *bf = calloc(1, sizeof(*bf));
	if (!bf)
		return -ENOMEM;
	bf->env = *env;
	bf->devid = devid;
	bf->nbd_fd = -1;
	bf->wake_fd = -1;
	bf->state = XENBUS_STATE_INITIALISING;
	bf->be_state = XENBUS_STATE_UNKNOWN;
	for (uint32_t i = 0; i < BF_SHADOW_MAX; i++)
		bf->shadow_free[i] = BF_SHADOW_MAX - 1 - i;
	bf->shadow_nfree = BF_SHADOW_MAX;
	snprintf(bf->fe_path, sizeof(bf->fe_path), "/local/domain/%u/device/vbd/%u", env->self,
		 devid);
	snprintf(bf->token, sizeof(bf->token), "vbd-%u", devid);
	int r = -EPROTO;
	char *be = xs_read_key(bf, XBT_NULL, bf->fe_path, "backend");
	uint64_t beid = read_u64(bf, bf->fe_path, "backend-id", UINT64_MAX);
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "/local/domain/%" PRIu64 "/backend/vbd/", beid);
	if (!be || beid >= DOMID_SELF || strncmp(be, prefix, strlen(prefix)) != 0 ||
	    strlen(be) >= sizeof(bf->be_path)) {
		log_err("vbd %u: no valid backend/backend-id in %s", devid, bf->fe_path);
		free(be);
		goto fail;
	}
	snprintf(bf->be_path, sizeof(bf->be_path), "%s", be);
	free(be);
	bf->backend_id = (domid_t)beid;
	char *vdev = xs_read_key(bf, XBT_NULL, bf->fe_path, "drvdom-vdev");
	snprintf(bf->vdev, sizeof(bf->vdev), "%s", vdev ? vdev : "");
	free(vdev);
	if (!bf->vdev[0])
		snprintf(bf->vdev, sizeof(bf->vdev), "%u", devid);
	char *nbd = xs_read_key(bf, XBT_NULL, bf->fe_path, "drvdom-nbd");
	if (nbd) {
		r = hvc_device_get(env->h, nbd, &bf->nbd_fd);
		if (r)
			log_warn("vbd %u: NBD socket device %s: %s (will retry)", devid, nbd,
				 strerror(-r));
		free(nbd);
	} else {
		log_warn("vbd %u: no drvdom-nbd key: the disk is not exported", devid);
	}
	bf->state = (int)read_u64(bf, bf->fe_path, "state", XENBUS_STATE_INITIALISING);
	r = bf_wake_setup(bf);
	if (r)
		goto fail;
	r = evloop_add_poller(env->loop, bf_poll, bf);
	if (r)
		goto fail;
	char p[384];
	snprintf(p, sizeof(p), "%s/state", bf->be_path);
	if (!xs_watch(env->xs, p, bf->token)) {
		r = -errno;
		evloop_del_poller(env->loop, bf_poll, bf);
		goto fail;
	}
	snprintf(p, sizeof(p), "%s/state", bf->fe_path);
	xs_watch(env->xs, p, bf->token);
	snprintf(p, sizeof(p), "/local/domain/%u/drvdom/state", bf->backend_id);
	xs_watch(env->xs, p, bf->token);
	log_info("vbd %u (%s): backend domain %u at %s", devid, bf->vdev, bf->backend_id,
		 bf->be_path);
	*out = bf;
	blkfront_watch_event(bf);
	return 0;
fail:
	bf_wake_teardown(bf);
	if (bf->nbd_fd >= 0)
		close(bf->nbd_fd);
	free(bf);
	return r;
}

int blkfront_destroy(struct blkfront *bf, bool force)
{
	if (!bf)
		return 0;
	if (!bf->unhooked) {
		char p[384];
		snprintf(p, sizeof(p), "%s/state", bf->be_path);
		xs_unwatch(bf->env.xs, p, bf->token);
		snprintf(p, sizeof(p), "%s/state", bf->fe_path);
		xs_unwatch(bf->env.xs, p, bf->token);
		snprintf(p, sizeof(p), "/local/domain/%u/drvdom/state", bf->backend_id);
		xs_unwatch(bf->env.xs, p, bf->token);
		evloop_del_poller(bf->env.loop, bf_poll, bf);
		bf->unhooked = true;
	}
	if (!bf->closing)
		blkfront_closing(bf);
	if (!bf->detached && blkfront_release(bf, force) == -EBUSY)
		return -EBUSY;
	bf_wake_teardown(bf);
	if (bf->nbd_fd >= 0)
		close(bf->nbd_fd);
	free(bf);
	return 0;
}

unsigned blkfront_devid(const struct blkfront *bf)
{
	return bf->devid;
}

int blkfront_state(const struct blkfront *bf)
{
	return bf->state;
}

int blkfront_get_info(const struct blkfront *bf, struct blkfront_info *out)
{
	if (!bf->ever_connected)
		return -ENOTCONN;
	*out = (struct blkfront_info){.size = bf->sectors * 512u,
				      .sector_size = bf->sector_size,
				      .read_only = bf->read_only,
				      .can_flush = bf->can_flush || bf->can_barrier,
				      .can_discard = bf->can_discard,
				      .persistent = bf->persistent,
				      .nr_queues = bf->nr_queues,
				      .ring_order = bf->ring_order,
				      .max_segs = bf->max_segs,
				      .max_io = BF_MAX_IO};
	return 0;
}

void blkfront_set_kick(struct blkfront *bf, void (*fn)(void *arg), void *arg)
{
	bf->kick = fn;
	bf->kick_arg = arg;
}

void blkfront_set_connected_cb(struct blkfront *bf, void (*fn)(void *arg, struct blkfront *bf),
			       void *arg)
{
	bf->connected_cb = fn;
	bf->connected_arg = arg;
}

void blkfront_get_stats(const struct blkfront *bf, struct blkfront_stats *out)
{
	*out = bf->stats;
}
