// SPDX-License-Identifier: MIT
// netfront (docs/netfront.md): one `struct netfront_vif` per
// device/vif/N. Memory given to the backend lives in two segments dedicated
// to it: one of the two ring pages (the only pages the backend maps) and one
// of data pages (256 tx pages, 256 rx pages, each granted once for the
// life of the vif; the backend reaches them only by grant copy). Tx: readv
// from the TAP puts the virtio_net_hdr aside and the frame straight into up
// to 17 free tx pages, which become one request per page (plus a GSO extra
// slot). Rx: every rx ring slot holds a request for its own page (id = ring
// index, as Linux netfront does); responses are checked (id, offset,
// length, slot count), then the packet is written to the TAP with one
// writev. Anything wrong from the backend (unknown id, producer jump,
// malformed extra) resets the connection; the TAP stays up meanwhile.
#include "frontends/netfront/netfront.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/netpkt.h"
#include "common/xbkey.h"
#include "grant/gnt.h"
#include "hv/evloop.h"
#include "hv/hvc.h"
#include "ring/netif.h"
#include "ring/xenbus.h"
#include "xenstore/include/xenstore.h"

#define NF_PAGE 4096u
#define NF_NTX 256u
#define NF_NRX 256u
#define NF_MAX_FRAME (65535u + 18u)
#define NF_FRAME_PAGES 17u /* pages a maximal frame spans */
#define NF_VH_LEN 12u	   /* struct virtio_net_hdr_mrg_rxbuf, docs/devices.md */
#define NF_MAX_VIFS 16u
/* After the guest sent something, keep polling (rings and the TAP) this
 * long before the loop may sleep: the answer usually comes within it, and a
 * sleeping netfront costs a cross-core wake-up (~25 us) per round trip. */
#define NF_TX_HOT_NS 60000u
/* Queues at most (netfront_set_max_queues; the backend's
 * multi-queue-max-queues may allow fewer). */
#define NF_MAX_QUEUES 4u

struct netfront_vif {
	unsigned devid;
	char path[128];	   /* our device directory */
	char be_path[128]; /* backend directory */
	char tok_be[48], tok_self[48], tok_dom[48];
	domid_t be_domid;
	bool link_down; /* carrier dropped: the backend domain failed for good */
	int tap;
	int state;	 /* our XenbusState */
	bool connected;	 /* rings live */
	bool detaching;	 /* the toolstack asked us to close */
	bool tap_polled; /* TAP in the event loop with EPOLLIN */
	bool be_gso4, be_gso6, be_sg;
	unsigned offloads;

	struct gnt_seg *ring_seg, *data_seg;
	grant_ref_t ring_ref[2];
	grant_ref_t data_ref[NF_NTX + NF_NRX];
	bool granted;
	struct netif_tx_ring_front tx;
	struct netif_rx_ring_front rx;
	evtchn_port_t port;
	bool port_alloc;

	uint16_t tx_free[NF_NTX];
	unsigned ntx_free;
	bool tx_busy[NF_NTX];

	uint64_t tx_pkts, rx_pkts, rx_drops, tx_drops, resets;
	_Atomic bool kicked, peer_closed; /* from port handlers off the loop thread */
	uint64_t hot_until;		  /* see NF_TX_HOT_NS */
	char last_stats[256];

	/* Multiple queues (docs/netfront.md): each queue is a netfront_vif of
	 * its own for its rings, channel, pages and counters; queue[0] is
	 * the vif itself (TAP, xenbus state, paths), queues 1.. point back
	 * with parent and share its TAP fd. nqueues: in use by the current
	 * connection; nalloc: structures allocated (kept, with their grants,
	 * across reconnections). tx_bounce: with several queues a frame is
	 * read here first, its flow hash picks the queue, then it is copied
	 * into that queue's pages (one flow, one tx queue: in order). */
	struct netfront_vif *parent;
	struct netfront_vif *queue[NF_MAX_QUEUES];
	unsigned nqueues, nalloc;
	uint8_t *tx_bounce;

	/* The fast reconnect (docs/recovery.md, "Failover (network)"), on
	 * the vif only. be_instance: the backend's drvdom-instance our rings
	 * and keys are for, echoed as drvdom-backend-instance ("" with a
	 * backend without the extension, and while kept). kept: the rings
	 * were reset in place after dead_instance died; ports, grants and
	 * keys wait for the next instance, which may take them ("!DEAD"). */
	char be_instance[XBKEY_INSTANCE_LEN], dead_instance[XBKEY_INSTANCE_LEN];
	bool kept;
};

static struct {
	bool persistent_set;
	struct hvc *h;
	struct xs_handle *xs;
	struct evloop *l;
	struct gnt_table *gt;
	bool own_gt;
	bool persistent;     /* offer drvdom-persistent-grants (netfront_set_persistent) */
	unsigned max_queues; /* netfront_set_max_queues */
	domid_t self;
	pthread_t loop_thread;
	int wake_fd, timer_fd;
	char dir[96];
	struct netfront_vif *vifs[NF_MAX_VIFS];
} nf;

static uint64_t nf_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int vif_poll(void *arg, unsigned flags);
static void tap_ready(void *arg, int fd, uint32_t events);

/* --- xenstore helpers ------------------------------------------------------ */

static char *xget(const char *dir, const char *key)
{
	char p[256];
	unsigned len;
	snprintf(p, sizeof(p), "%s/%s", dir, key);
	return xs_read(nf.xs, XBT_NULL, p, &len);
}

static long xget_long(const char *dir, const char *key, long def)
{
	char *s = xget(dir, key);
	if (!s)
		return def;
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s || *end)
		v = def;
	free(s);
	return v;
}

static bool xput(const char *dir, const char *key, const char *fmt, unsigned long v)
{
	char p[256], b[32];
	snprintf(p, sizeof(p), "%s/%s", dir, key);
	snprintf(b, sizeof(b), fmt, v);
	return xs_write(nf.xs, XBT_NULL, p, b, (unsigned)strlen(b));
}

static void set_state(struct netfront_vif *v, int st)
{
	v->state = st;
	if (!xput(v->path, "state", "%lu", (unsigned long)st))
		log_warn("vif %u: cannot write state", v->devid);
}

/* --- connection ---------------------------------------------------------- */

static void tap_poll_set(struct netfront_vif *v, bool on)
{
	if (on == v->tap_polled || v->tap < 0)
		return;
	if (on)
		evloop_add_fd(nf.l, v->tap, EPOLLIN, tap_ready, v);
	else
		evloop_del_fd(nf.l, v->tap);
	v->tap_polled = on;
}

static void vif_disconnect(struct netfront_vif *v)
{
	for (unsigned k = 1; !v->parent && k < v->nalloc; k++)
		vif_disconnect(v->queue[k]);
	if (v->connected)
		evloop_del_poller(nf.l, vif_poll, v);
	v->connected = false;
	tap_poll_set(v, false);
	if (v->port_alloc) {
		evloop_del_port(nf.l, v->port);
		evtchn_close(nf.h, v->port);
		v->port_alloc = false;
	}
	v->kept = false; /* the ports are gone: nothing left to take over */
	v->be_instance[0] = 0;
}

static void port_event(void *arg, evtchn_port_t port, enum evtchn_event ev);

static int vif_alloc_memory(struct netfront_vif *v)
{
	int r;
	if (v->granted)
		return 0;
	if ((r = gnt_seg_alloc(nf.h, v->be_domid, 2, &v->ring_seg)) ||
	    (r = gnt_seg_alloc(nf.h, v->be_domid, NF_NTX + NF_NRX, &v->data_seg)))
		return r;
	for (unsigned i = 0; i < 2; i++)
		if ((r = gnt_grant_access(nf.gt, v->be_domid, gnt_seg_frame(v->ring_seg, i), 0,
					  &v->ring_ref[i])))
			return r;
	for (unsigned i = 0; i < NF_NTX + NF_NRX; i++)
		if ((r = gnt_grant_access(nf.gt, v->be_domid, gnt_seg_frame(v->data_seg, i),
					  i >= NF_NTX ? 0 : 1, &v->data_ref[i])))
			return r;
	v->granted = true;
	return 0;
}

/* Post a request for every free rx slot and push them, notifying the
 * backend if its event index asks for it. */
static void rx_post(struct netfront_vif *v)
{
	bool any = false;
	while (!netif_rx_ring_front_full(&v->rx)) {
		uint32_t idx = v->rx.req_prod_pvt;
		struct netif_rx_req *rq = netif_rx_ring_front_next_req(&v->rx);
		uint16_t id = (uint16_t)(idx & (NF_NRX - 1));
		rq->id = id;
		rq->pad = 0;
		rq->gref = v->data_ref[NF_NTX + id];
		any = true;
	}
	if (any && netif_rx_ring_front_push_requests_check_notify(&v->rx))
		evtchn_notify(nf.h, v->port);
}

/* Reset a queue's rings in place (producer and consumer indices 0, events
 * 1) and give every tx page back: nothing is on them any more. */
static void vif_queue_rings_init(struct netfront_vif *q)
{
	netif_tx_ring_front_init(&q->tx, gnt_seg_page(q->ring_seg, 0), 0);
	netif_rx_ring_front_init(&q->rx, gnt_seg_page(q->ring_seg, 1), 0);
	q->ntx_free = 0;
	for (unsigned i = 0; i < NF_NTX; i++) {
		q->tx_busy[i] = false;
		q->tx_free[q->ntx_free++] = (uint16_t)(NF_NTX - 1 - i);
	}
}

/* Backend in InitWait: one queue's rings, tx ids, event channel and rx
 * buffers (vif_setup publishes the keys). */
static int vif_queue_setup(struct netfront_vif *v, const char **why)
{
	int r;
	*why = "memory";
	if ((r = vif_alloc_memory(v)))
		return r;
	vif_queue_rings_init(v);
	*why = "event channel";
	if ((r = evtchn_alloc_unbound(nf.h, v->be_domid, &v->port)))
		return r;
	v->port_alloc = true;
	if ((r = evloop_add_port(nf.l, v->port, port_event, v)))
		return r;
	rx_post(v);
	return 0;
}

/* Queues for this connection: as many as the backend offers (bmax, its
 * multi-queue-max-queues; absent: 1) and we allow, and their structures. */
static unsigned vif_queues(struct netfront_vif *v, uint64_t bmax)
{
	unsigned n = nf.max_queues ? nf.max_queues : 1;
	if (bmax < 1)
		bmax = 1;
	if (bmax < n)
		n = (unsigned)bmax;
	if (n > NF_MAX_QUEUES)
		n = NF_MAX_QUEUES;
	if (n > 1 && !v->tx_bounce &&
	    !(v->tx_bounce = malloc(NF_VH_LEN + NF_FRAME_PAGES * NF_PAGE)))
		n = 1;
	v->queue[0] = v;
	if (v->nalloc < 1)
		v->nalloc = 1;
	while (v->nalloc < n) {
		struct netfront_vif *q = calloc(1, sizeof(*q));
		if (!q)
			break;
		q->parent = v;
		q->devid = v->devid;
		q->tap = v->tap;
		q->be_domid = v->be_domid;
		memcpy(q->path, v->path, sizeof(q->path));
		memcpy(q->be_path, v->be_path, sizeof(q->be_path));
		v->queue[v->nalloc++] = q;
	}
	return n < v->nalloc ? n : v->nalloc;
}

/* What a look at the backend reads, in one round trip (xs_batch): its
 * state, online, drvdom-instance and drvdom-connect, in that order (the
 * backend writes its name before or with its state: a state read first
 * comes with the name of the instance that wrote it, or a later one). */
enum { BE_STATE, BE_ONLINE, BE_INSTANCE, BE_CONNECT, BE_NKEYS };
struct be_view {
	long state, online;
	char *instance, *connect; /* malloc'ed, NULL: none */
};

/* A key's value as xget_long reads it: def if absent or not a number. */
static long val_long(const char *s, long def)
{
	if (!s)
		return def;
	char *end;
	long v = strtol(s, &end, 10);
	return end == s || *end ? def : v;
}

static void be_view_read(struct netfront_vif *v, struct be_view *b)
{
	static const char *const keys[BE_NKEYS] = {"state", "online", "drvdom-instance",
						   "drvdom-connect"};
	struct xs_batch_op ops[BE_NKEYS];
	char paths[BE_NKEYS][200];
	for (unsigned i = 0; i < BE_NKEYS; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", v->be_path, keys[i]);
		ops[i] = (struct xs_batch_op){.type = XS_READ, .path = paths[i]};
	}
	memset(b, 0, sizeof(*b));
	if (!xs_batch(nf.xs, XBT_NULL, ops, BE_NKEYS)) {
		b->state = XENBUS_STATE_UNKNOWN;
		b->online = 1;
		return;
	}
	b->state = val_long(ops[BE_STATE].reply, XENBUS_STATE_UNKNOWN);
	b->online = val_long(ops[BE_ONLINE].reply, 1);
	b->instance = ops[BE_INSTANCE].reply;
	b->connect = ops[BE_CONNECT].reply;
	free(ops[BE_STATE].reply);
	free(ops[BE_ONLINE].reply);
}

static void be_view_free(struct be_view *b)
{
	free(b->instance);
	free(b->connect);
}

/* The backend instance's drvdom-instance (in the look b) into out; false if
 * it publishes none (a backend without the extension: netevil_back,
 * Linux) or a bad one. */
static bool read_be_instance(const struct be_view *b, char out[XBKEY_INSTANCE_LEN])
{
	bool ok = xbkey_instance_valid(b->instance);
	if (ok)
		snprintf(out, XBKEY_INSTANCE_LEN, "%s", b->instance);
	return ok;
}

/* What the backend offers for a connection. */
struct be_feats {
	uint64_t rx_copy, sg, gso4, gso6, persistent, max_queues;
};

/* drvdom-connect (docs/recovery.md, "Failover (network)"): netback's
 * features once more in one key, "feature-rx-copy=B feature-sg=B
 * feature-gso-tcpv4=B feature-gso-tcpv6=B drvdom-persistent-grants=B
 * multi-queue-max-queues=N", read with the state (in the look b) instead of
 * six keys; if it is absent or not exactly well-formed (xbkey_parse), the
 * single keys are read now. The values are used as theirs are. */
static void read_be_feats(struct netfront_vif *v, const struct be_view *b, struct be_feats *f)
{
	const char *s = b->connect;
	struct xbkey_field k[] = {
	    {"feature-rx-copy", UINT64_MAX, 1, &f->rx_copy, 0},
	    {"feature-sg", UINT64_MAX, 1, &f->sg, 0},
	    {"feature-gso-tcpv4", UINT64_MAX, 1, &f->gso4, 0},
	    {"feature-gso-tcpv6", UINT64_MAX, 1, &f->gso6, 0},
	    {"drvdom-persistent-grants", UINT64_MAX, 1, &f->persistent, 0},
	    {"multi-queue-max-queues", UINT64_MAX, 1, &f->max_queues, 0},
	};
	bool ok = s && xbkey_parse(s, k, sizeof(k) / sizeof(k[0]));
	if (ok)
		return;
	f->rx_copy = (uint64_t)xget_long(v->be_path, "feature-rx-copy", 0);
	f->sg = (uint64_t)xget_long(v->be_path, "feature-sg", 0);
	f->gso4 = (uint64_t)xget_long(v->be_path, "feature-gso-tcpv4", 0);
	f->gso6 = (uint64_t)xget_long(v->be_path, "feature-gso-tcpv6", 0);
	f->persistent = (uint64_t)xget_long(v->be_path, "drvdom-persistent-grants", 0);
	long mq = xget_long(v->be_path, "multi-queue-max-queues", 1);
	f->max_queues = mq < 1 ? 1 : (uint64_t)mq;
}

static void apply_be_feats(struct netfront_vif *v, const struct be_feats *f)
{
	v->be_sg = f->sg == 1;
	v->be_gso4 = f->gso4 == 1;
	v->be_gso6 = f->gso6 == 1;
}

static bool xput_t(xs_transaction_t t, const char *dir, const char *key, const char *val)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, key);
	return xs_write(nf.xs, t, p, val, (unsigned)strlen(val));
}

static bool xputu_t(xs_transaction_t t, const char *dir, const char *key, unsigned long val)
{
	char b[24];
	snprintf(b, sizeof(b), "%lu", val);
	return xput_t(t, dir, key, b);
}

/* Every key of a connection and our state Initialised, in one
 * transaction: a backend sees all of them or none. inst: the backend
 * instance they are for (drvdom-backend-instance), "" for a backend
 * without the extension (the key is removed). */
static int vif_publish(struct netfront_vif *v, const char *inst, bool persistent)
{
	unsigned nq = v->nqueues;
	/* The same once more in one key for a drvdom backend (docs/recovery.md,
	 * "Failover (network)"): its connect reads one key, not 6 + 3 per
	 * queue. */
	char rings[512], tx[96] = "", rx[96] = "", ev[96] = "";
	for (unsigned k = 0; k < nq; k++) {
		const struct netfront_vif *q = v->queue[k];
		size_t l = strlen(tx);
		snprintf(tx + l, sizeof(tx) - l, "%s%u", k ? "," : "", q->ring_ref[0]);
		l = strlen(rx);
		snprintf(rx + l, sizeof(rx) - l, "%s%u", k ? "," : "", q->ring_ref[1]);
		l = strlen(ev);
		snprintf(ev + l, sizeof(ev) - l, "%s%u", k ? "," : "", q->port);
	}
	snprintf(rings, sizeof(rings),
		 "multi-queue-num-queues=%u tx-ring-ref=%s rx-ring-ref=%s event-channel=%s "
		 "request-rx-copy=1 feature-rx-notify=1 feature-sg=1 feature-gso-tcpv4=1 "
		 "feature-gso-tcpv6=1 drvdom-persistent-grants=%d",
		 nq, tx, rx, ev, persistent ? 1 : 0);
	for (int tries = 0;; tries++) {
		xs_transaction_t t = xs_transaction_start(nf.xs);
		if (t == XBT_NULL)
			return -errno;
		char p[200];
		bool ok = true;
		for (unsigned k = 0; ok && k < nq; k++) {
			const struct netfront_vif *q = v->queue[k];
			char dir[160];
			if (nq == 1)
				snprintf(dir, sizeof(dir), "%s", v->path);
			else
				snprintf(dir, sizeof(dir), "%s/queue-%u", v->path, k);
			ok = xputu_t(t, dir, "tx-ring-ref", q->ring_ref[0]) &&
			     xputu_t(t, dir, "rx-ring-ref", q->ring_ref[1]) &&
			     xputu_t(t, dir, "event-channel", q->port);
		}
		if (nq > 1) {
			ok = ok && xputu_t(t, v->path, "multi-queue-num-queues", nq);
		} else if (v->nalloc > 1) { /* an earlier connection had several */
			snprintf(p, sizeof(p), "%s/multi-queue-num-queues", v->path);
			xs_rm(nf.xs, t, p);
		}
		ok = ok && xput_t(t, v->path, "request-rx-copy", "1") &&
		     xput_t(t, v->path, "feature-rx-notify", "1") &&
		     xput_t(t, v->path, "feature-sg", "1") &&
		     xput_t(t, v->path, "feature-gso-tcpv4", "1") &&
		     xput_t(t, v->path, "feature-gso-tcpv6", "1") &&
		     xput_t(t, v->path, "drvdom-persistent-grants", persistent ? "1" : "0") &&
		     xput_t(t, v->path, "drvdom-rings", rings);
		if (inst[0]) {
			ok = ok && xput_t(t, v->path, "drvdom-backend-instance", inst);
		} else {
			snprintf(p, sizeof(p), "%s/drvdom-backend-instance", v->path);
			xs_rm(nf.xs, t, p);
		}
		ok = ok && xputu_t(t, v->path, "state", XENBUS_STATE_INITIALISED);
		if (!ok) {
			int e = errno ? errno : EIO;
			xs_transaction_end(nf.xs, t, true);
			return -e;
		}
		if (xs_transaction_end(nf.xs, t, false))
			break;
		if (errno != EAGAIN || tries > 20)
			return errno ? -errno : -EIO;
	}
	v->state = XENBUS_STATE_INITIALISED;
	return 0;
}

/* Backend in InitWait and nothing of ours to take over: the full netif
 * handshake. Memory is allocated and granted the first time only; rings,
 * ports and keys are made anew, then -> Initialised. */
static void vif_setup(struct netfront_vif *v, const struct be_view *b)
{
	int r;
	const char *why = "memory";
	vif_disconnect(v);
	struct be_feats f;
	read_be_feats(v, b, &f);
	char inst[XBKEY_INSTANCE_LEN] = "";
	if (!read_be_instance(b, inst))
		inst[0] = 0;
	unsigned nq = vif_queues(v, f.max_queues);
	v->nqueues = nq;
	apply_be_feats(v, &f);
	why = "rx-copy not offered";
	r = -EOPNOTSUPP;
	if (f.rx_copy != 1)
		goto fail;
	/* one queue: the keys at the top level, as always; several:
	 * multi-queue-num-queues and queue-N/ (netif.h) */
	for (unsigned k = 0; k < nq; k++)
		if ((r = vif_queue_setup(v->queue[k], &why)))
			goto fail;
	why = "xenstore";
	if ((r = vif_publish(v, inst, nf.persistent && f.persistent == 1)))
		goto fail;
	snprintf(v->be_instance, sizeof(v->be_instance), "%s", inst);
	log_info("vif %u: frontend -> Initialised (%u queue(s)%s%s)", v->devid, nq,
		 inst[0] ? ", for backend instance " : "", inst);
	return;
fail:
	log_warn("vif %u: cannot set up: %s (%s)", v->devid, why, strerror(-r));
	vif_disconnect(v);
}

/* The rings go live. state_written: our Connected went out already (with
 * the claim of kept rings, vif_reconnect); else it is written last. */
static void vif_connected(struct netfront_vif *v, bool state_written)
{
	unsigned off = TUN_F_CSUM;
	if (v->be_gso4)
		off |= TUN_F_TSO4;
	if (v->be_gso6)
		off |= TUN_F_TSO6;
	if (!v->be_sg)
		off = TUN_F_CSUM; /* a frame must fit one page: no GSO */
	if (off != v->offloads && ioctl(v->tap, TUNSETOFFLOAD, off) < 0)
		log_warn("vif %u: TUNSETOFFLOAD: %s", v->devid, strerror(errno));
	v->offloads = off;
	for (unsigned k = 0; k < v->nqueues; k++) {
		struct netfront_vif *q = v->queue[k];
		q->be_sg = v->be_sg, q->be_gso4 = v->be_gso4, q->be_gso6 = v->be_gso6;
		q->connected = true;
		rx_post(q); /* kept rings: their rx buffers (full setup: already there) */
		evloop_add_poller(nf.l, vif_poll, q);
	}
	tap_poll_set(v, true);
	/* What the stack sent meanwhile waits in the TAP: on its way now. Our
	 * state last: the backend serves without waiting for it. */
	tap_ready(v, v->tap, EPOLLIN);
	if (!state_written)
		set_state(v, XENBUS_STATE_CONNECTED);
	log_info("vif %u connected to domain %u (gso4 %d gso6 %d sg %d, %u queue(s)%s%s)", v->devid,
		 v->be_domid, v->be_gso4, v->be_gso6, v->be_sg, v->nqueues,
		 v->be_instance[0] ? ", instance " : "", v->be_instance);
}

/* The backend broke the protocol or went away: drop the rings, keep the
 * TAP, and ask for a new handshake (the backend answers Initialising with
 * InitWait). */
static void vif_reset(struct netfront_vif *v, const char *why)
{
	if (v->parent) /* a queue: the whole vif */
		v = v->parent;
	log_warn("vif %u: %s: resetting the connection", v->devid, why);
	v->resets++;
	vif_disconnect(v);
	if (!v->detaching)
		set_state(v, XENBUS_STATE_INITIALISING);
}

/* drvdom-backend-instance = echo, then our state st, in one round trip
 * (xs_batch): true if both were written. */
static bool vif_write_echo_state(struct netfront_vif *v, const char *echo, int st)
{
	char p[2][200], sb[12];
	snprintf(p[0], sizeof(p[0]), "%s/drvdom-backend-instance", v->path);
	snprintf(p[1], sizeof(p[1]), "%s/state", v->path);
	snprintf(sb, sizeof(sb), "%d", st);
	struct xs_batch_op w[2] = {
	    {.type = XS_WRITE, .path = p[0], .data = echo, .len = (unsigned)strlen(echo)},
	    {.type = XS_WRITE, .path = p[1], .data = sb, .len = (unsigned)strlen(sb)}};
	v->state = st;
	bool ok = xs_batch(nf.xs, XBT_NULL, w, 2) && !w[0].err && !w[1].err;
	free(w[0].reply);
	free(w[1].reply);
	return ok;
}

/* The backend instance our rings were for died (our ports were closed by
 * the hv, which had revoked every mapping the instance held) or a new
 * instance announced itself: stop the data path and reset every queue's
 * rings in place, keeping their segments, grants, ports (unbound again,
 * for the same domain to bind) and xenstore keys for the next instance of
 * the same domain to take as they are. No hypercall; two xenstore writes:
 * the echo "!DEAD" (these keys and rings are fresh for any instance but
 * DEAD) and our state Initialised, so an instance that comes up after
 * this connects at once (docs/recovery.md, "Failover (network)"). The rx
 * buffers are posted again when the next instance is claimed, not now:
 * until then nothing is on the rings, so an instance that takes them and
 * dies before we claim them leaves them as they are. The grants stay with
 * the domain they were made for. */
static void vif_keep_rings(struct netfront_vif *v)
{
	log_info("vif %u: backend instance %s gone: rings kept", v->devid, v->be_instance);
	v->resets++;
	for (unsigned k = 0; k < v->nqueues; k++) {
		struct netfront_vif *q = v->queue[k];
		if (q->connected)
			evloop_del_poller(nf.l, vif_poll, q);
		q->connected = false;
		q->hot_until = 0;
		vif_queue_rings_init(q);
	}
	tap_poll_set(v, false);
	memcpy(v->dead_instance, v->be_instance, sizeof(v->dead_instance));
	v->be_instance[0] = 0;
	v->kept = true;
	/* The echo first: a backend that reads it may use the keys with
	 * whatever state it reads beside it. Both in one round trip
	 * (xs_batch; xenstored takes them in order). */
	char echo[XBKEY_INSTANCE_LEN + 1];
	snprintf(echo, sizeof(echo), "!%s", v->dead_instance);
	if (!vif_write_echo_state(v, echo, XENBUS_STATE_INITIALISED))
		log_warn("vif %u: cannot write drvdom-backend-instance and state", v->devid);
}

/* Kept rings, backend instance inst Connected to them (the look b): read
 * its features, claim the rings for it (the echo "inst": from now on they
 * hold requests only inst may answer, so no later instance may take them
 * before we reset them again) with our Connected in the same round trip,
 * then connect. The claim is written before anything is put on a ring. */
static void vif_reconnect(struct netfront_vif *v, const struct be_view *b, const char *inst)
{
	struct be_feats f;
	read_be_feats(v, b, &f);
	if (f.rx_copy != 1) {
		vif_reset(v, "the new backend instance offers no rx-copy");
		return;
	}
	if (!vif_write_echo_state(v, inst, XENBUS_STATE_CONNECTED)) {
		vif_reset(v, "cannot claim the kept rings");
		return;
	}
	snprintf(v->be_instance, sizeof(v->be_instance), "%s", inst);
	v->kept = false;
	apply_be_feats(v, &f);
	log_info("vif %u: kept rings taken by backend instance %s", v->devid, inst);
	vif_connected(v, true);
}

/* A port of ours was closed (the hv's EVT_PORT_CLOSED): is it still
 * unbound? The instance we were connected to died (it is), or the report
 * is the dead instance's, read only after the next instance bound the
 * port again (it is not: a stale report). One round trip per queue, on
 * this rare path only. */
static bool vif_loss_is_real(struct netfront_vif *v)
{
	for (unsigned k = 0; k < v->nqueues; k++) {
		struct hv_evtchn_status_rep st;
		if (evtchn_status(nf.h, DOMID_SELF, v->queue[k]->port, &st) ||
		    st.status != EVTCHNSTAT_interdomain || st.remote_dom != v->be_domid)
			return true;
	}
	return false;
}

static void vif_peer_closed(struct netfront_vif *v)
{
	if (v->detaching || v->kept || !v->port_alloc)
		return; /* kept: the ports are unbound anyway, for the next instance */
	if (!v->connected && v->state != XENBUS_STATE_INITIALISED)
		return;
	if (!v->be_instance[0]) {
		vif_reset(v, "backend closed the event channel (gone?)");
		return;
	}
	if (!vif_loss_is_real(v)) {
		log_info("vif %u: a stale event channel close ignored", v->devid);
		return;
	}
	vif_keep_rings(v);
}

static void backend_changed(struct netfront_vif *v)
{
	char inst[XBKEY_INSTANCE_LEN];
	if (v->detaching)
		return;
	struct be_view b;
	be_view_read(v, &b);
	switch (b.state) {
	case XENBUS_STATE_INIT_WAIT:
		if (v->kept) {
			/* a new instance on its way to Connected (our "!DEAD"
			 * lets it), or the dead one's state not yet replaced */
			if (!read_be_instance(&b, inst))
				vif_setup(v, &b); /* a backend without the extension */
			break;
		}
		if (v->port_alloc && v->be_instance[0] && read_be_instance(&b, inst) &&
		    strcmp(inst, v->be_instance)) {
			/* a new instance (we may not have seen the old one go) */
			vif_keep_rings(v);
			break;
		}
		if (v->state == XENBUS_STATE_INITIALISING || v->state == XENBUS_STATE_CLOSED ||
		    v->state == XENBUS_STATE_CONNECTED || v->state == XENBUS_STATE_UNKNOWN)
			vif_setup(v, &b);
		break;
	case XENBUS_STATE_CONNECTED:
		if (v->kept) {
			/* a new instance that took the kept rings: after an
			 * InitWait, or at once (docs/recovery.md, "Failover
			 * (network)") */
			if (!read_be_instance(&b, inst))
				vif_reset(
				    v, "a backend without the fast reconnect took the kept rings");
			else if (strcmp(inst, v->dead_instance)) /* else: the dead one's state */
				vif_reconnect(v, &b, inst);
			break;
		}
		if (v->state == XENBUS_STATE_INITIALISED && !v->connected)
			vif_connected(v, false);
		break;
	case XENBUS_STATE_CLOSING:
	case XENBUS_STATE_CLOSED:
		if (b.online == 0) {
			/* the toolstack detaches the vif (xl's online = 0 + Closing) */
			v->detaching = true;
			vif_disconnect(v);
			set_state(v, XENBUS_STATE_CLOSED);
		} else if (v->state != XENBUS_STATE_INITIALISING) {
			/* the backend reset or went away: reconnect when it offers
			 * itself again (InitWait) */
			vif_disconnect(v);
			set_state(v, XENBUS_STATE_INITIALISING);
		}
		break;
	default:
		break;
	}
	be_view_free(&b);
}

/* The hv gave up restarting the backend domain (its crash limit: xenstored
 * wrote /local/domain/B/drvdom/state = failed). Nothing will carry our
 * frames again: drop the TAP's carrier, as Linux netfront does when its
 * backend goes, and the toolstack's ignore_routes_with_linkdown turns
 * every send into "Network is unreachable" at once — a clean error, not
 * silence. A backend domain brought back (state no longer failed) gets
 * the carrier back. */
static void backend_domain_changed(struct netfront_vif *v)
{
	char dir[64];
	snprintf(dir, sizeof(dir), "/local/domain/%u/drvdom", v->be_domid);
	char *st = xget(dir, "state");
	bool failed = st && !strcmp(st, "failed");
	free(st);
	if (failed == v->link_down)
		return;
	int on = !failed;
	if (ioctl(v->tap, TUNSETCARRIER, &on) < 0) {
		log_warn("vif %u: TUNSETCARRIER %d: %s", v->devid, on, strerror(errno));
		return;
	}
	v->link_down = failed;
	if (failed)
		log_err("vif %u: backend domain %u failed for good: carrier off", v->devid,
			v->be_domid);
	else
		log_info("vif %u: backend domain %u back: carrier on", v->devid, v->be_domid);
}

static void self_changed(struct netfront_vif *v)
{
	long st = xget_long(v->path, "state", XENBUS_STATE_UNKNOWN);
	if (st == XENBUS_STATE_CLOSING && v->state != XENBUS_STATE_CLOSING) {
		/* the toolstack detaches us */
		v->detaching = true;
		vif_disconnect(v);
		set_state(v, XENBUS_STATE_CLOSED);
	}
}

/* --- tx: TAP -> ring ----------------------------------------------------- */

static void tx_complete(struct netfront_vif *v)
{
	for (;;) {
		struct netif_tx_rsp r;
		int rc = netif_tx_ring_front_take_response(&v->tx, &r);
		if (rc == -EAGAIN)
			break;
		if (rc) {
			vif_reset(v, "tx ring: response producer index jump");
			return;
		}
		if (r.status == NETIF_RSP_NULL)
			continue;
		if (r.id >= NF_NTX || !v->tx_busy[r.id]) {
			vif_reset(v, "tx ring: response for an unknown id");
			return;
		}
		if (r.status != NETIF_RSP_OKAY)
			v->tx_drops++;
		v->tx_busy[r.id] = false;
		v->tx_free[v->ntx_free++] = r.id;
	}
}

static void tx_post(struct netfront_vif *v, const uint16_t *ids, unsigned np, uint32_t len,
		    const struct virtio_net_hdr_mrg_rxbuf *vhp);

static int tx_from_tap(struct netfront_vif *v)
{
	int n = 0;
	bool pushed = false;
	while (v->connected && v->ntx_free >= NF_FRAME_PAGES &&
	       netif_tx_ring_front_free_requests(&v->tx) >= NF_FRAME_PAGES + 2) {
		struct virtio_net_hdr_mrg_rxbuf vh;
		struct iovec iov[1 + NF_FRAME_PAGES];
		uint16_t ids[NF_FRAME_PAGES];
		iov[0].iov_base = &vh;
		iov[0].iov_len = NF_VH_LEN;
		for (unsigned i = 0; i < NF_FRAME_PAGES; i++) {
			ids[i] = v->tx_free[v->ntx_free - 1 - i];
			iov[1 + i].iov_base = gnt_seg_page(v->data_seg, ids[i]);
			iov[1 + i].iov_len = NF_PAGE;
		}
		ssize_t r = readv(v->tap, iov, 1 + NF_FRAME_PAGES);
		if (r < 0)
			break;
		if (r < (ssize_t)NF_VH_LEN + 14)
			continue;
		uint32_t len = (uint32_t)r - NF_VH_LEN;
		unsigned np = (len + NF_PAGE - 1) / NF_PAGE;
		if (len > XEN_NETIF_MAX_TX_SIZE + 14u || (np > 1 && !v->be_sg)) {
			v->tx_drops++;
			continue;
		}
		tx_post(v, ids, np, len, &vh);
		n++;
		pushed = true;
		if (n % 16 == 0 && netif_tx_ring_front_push_requests_check_notify(&v->tx))
			evtchn_notify(nf.h, v->port);
	}
	if (pushed && netif_tx_ring_front_push_requests_check_notify(&v->tx))
		evtchn_notify(nf.h, v->port);
	return n;
}

/* Room in every queue for a maximal frame (a frame read from the TAP must
 * find room in whichever queue its flow hashes to). */
static bool tx_room(struct netfront_vif *v)
{
	for (unsigned k = 0; k < v->nqueues; k++) {
		struct netfront_vif *q = v->queue[k];
		if (!q->connected || q->ntx_free < NF_FRAME_PAGES ||
		    netif_tx_ring_front_free_requests(&q->tx) < NF_FRAME_PAGES + 2)
			return false;
	}
	return true;
}

/* Several queues: each frame is read into the bounce buffer, its flow hash
 * picks the tx queue (one connection stays in order on one queue), and it
 * is copied into that queue's pages. */
static int tx_from_tap_mq(struct netfront_vif *v)
{
	int n = 0;
	unsigned pushed = 0;
	while (v->connected && tx_room(v)) {
		ssize_t r = read(v->tap, v->tx_bounce, NF_VH_LEN + NF_FRAME_PAGES * NF_PAGE);
		if (r < 0)
			break;
		if (r < (ssize_t)NF_VH_LEN + 14)
			continue;
		uint32_t len = (uint32_t)r - NF_VH_LEN;
		unsigned np = (len + NF_PAGE - 1) / NF_PAGE;
		if (len > XEN_NETIF_MAX_TX_SIZE + 14u || (np > 1 && !v->be_sg)) {
			v->tx_drops++;
			continue;
		}
		const uint8_t *frame = v->tx_bounce + NF_VH_LEN;
		unsigned k = netpkt_flow_hash(frame, len) % v->nqueues;
		struct netfront_vif *q = v->queue[k];
		struct virtio_net_hdr_mrg_rxbuf vh;
		memcpy(&vh, v->tx_bounce, NF_VH_LEN);
		uint16_t ids[NF_FRAME_PAGES];
		for (unsigned i = 0; i < np; i++) {
			ids[i] = q->tx_free[q->ntx_free - 1 - i];
			uint32_t c = len - i * NF_PAGE > NF_PAGE ? NF_PAGE : len - i * NF_PAGE;
			memcpy(gnt_seg_page(q->data_seg, ids[i]), frame + i * NF_PAGE, c);
		}
		tx_post(q, ids, np, len, &vh);
		n++;
		pushed |= 1u << k;
		if (n % 16 == 0 && netif_tx_ring_front_push_requests_check_notify(&q->tx))
			evtchn_notify(nf.h, q->port);
	}
	for (unsigned k = 0; k < v->nqueues; k++)
		if ((pushed & (1u << k)) &&
		    netif_tx_ring_front_push_requests_check_notify(&v->queue[k]->tx))
			evtchn_notify(nf.h, v->queue[k]->port);
	return n;
}

/* A frame of len bytes in v's tx pages ids[0..np): its requests (and a GSO
 * extra slot). Room was checked by the caller. */
static void tx_post(struct netfront_vif *v, const uint16_t *ids, unsigned np, uint32_t len,
		    const struct virtio_net_hdr_mrg_rxbuf *vhp)
{
	struct virtio_net_hdr_mrg_rxbuf vh = *vhp;
	v->ntx_free -= np;
	uint16_t fl = 0;
	if (vh.hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
		fl = NETTXF_CSUM_BLANK | NETTXF_DATA_VALIDATED;
	else if (vh.hdr.flags & VIRTIO_NET_HDR_F_DATA_VALID)
		fl = NETTXF_DATA_VALIDATED;
	uint8_t gt = vh.hdr.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	bool gso = gt == VIRTIO_NET_HDR_GSO_TCPV4 || gt == VIRTIO_NET_HDR_GSO_TCPV6;
	for (unsigned i = 0; i < np; i++) {
		union netif_tx_req_slot *s = netif_tx_ring_front_next_req(&v->tx);
		uint16_t id = ids[i];
		if (!s) /* room was checked above */
			break;
		v->tx_busy[id] = true;
		s->req.gref = v->data_ref[id];
		s->req.offset = 0;
		s->req.id = id;
		s->req.flags = (uint16_t)((i == 0 ? fl : 0) | (i + 1 < np ? NETTXF_MORE_DATA : 0));
		if (i == 0) {
			s->req.size = (uint16_t)len;
			if (gso) {
				s->req.flags |= NETTXF_EXTRA_INFO;
				union netif_tx_req_slot *e = netif_tx_ring_front_next_req(&v->tx);
				if (!e) /* room was checked above */
					break;
				e->extra = (struct netif_extra){0};
				e->extra.type = XEN_NETIF_EXTRA_TYPE_GSO;
				e->extra.u.gso.size = vh.hdr.gso_size;
				e->extra.u.gso.type = gt == VIRTIO_NET_HDR_GSO_TCPV6
							  ? XEN_NETIF_GSO_TYPE_TCPV6
							  : XEN_NETIF_GSO_TYPE_TCPV4;
			}
		} else {
			uint32_t rest = len - i * NF_PAGE;
			s->req.size = (uint16_t)(rest > NF_PAGE ? NF_PAGE : rest);
		}
	}
	v->tx_pkts++;
}

static void tap_ready(void *arg, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	struct netfront_vif *v = arg;
	if (!v->connected)
		return;
	for (unsigned k = 0; k < v->nqueues && v->connected; k++)
		tx_complete(v->queue[k]);
	if (!v->connected)
		return;
	if ((v->nqueues > 1 ? tx_from_tap_mq(v) : tx_from_tap(v)) > 0)
		v->hot_until = nf_now_ns() + NF_TX_HOT_NS;
	/* out of tx room: stop reading until responses free some */
	if (v->connected && !tx_room(v))
		tap_poll_set(v, false);
}

/* --- rx: ring -> TAP ----------------------------------------------------- */

/* One packet from rsp_cons if complete: 1 handled, 0 wait, -1 reset done. */
static int rx_one(struct netfront_vif *v, uint32_t avail)
{
	uint32_t cons = v->rx.rsp_cons, k = 0;
	struct iovec iov[1 + XEN_NETIF_NR_SLOTS_MIN];
	unsigned niov = 1;
	struct virtio_net_hdr_mrg_rxbuf vh;
	memset(&vh, 0, sizeof(vh));
	bool bad = false, more = true, gso = false;
	uint16_t first_flags = 0;
	struct netif_extra ex;
	uint32_t total = 0;
	while (more) {
		if (k >= avail)
			return 0;
		union netif_rx_rsp_slot s;
		netif_rx_ring_front_copy_response(&v->rx, cons + k, &s);
		if (s.rsp.id != ((cons + k) & (NF_NRX - 1))) {
			vif_reset(v, "rx ring: response id not that of its slot");
			return -1;
		}
		k++;
		if (niov > XEN_NETIF_NR_SLOTS_MIN) {
			vif_reset(v, "rx ring: packet of too many slots");
			return -1;
		}
		more = (s.rsp.flags & NETRXF_MORE_DATA) != 0;
		if (s.rsp.status < 0 || (uint32_t)s.rsp.offset + (uint32_t)s.rsp.status > NF_PAGE) {
			bad = true;
		} else {
			iov[niov].iov_base =
			    (uint8_t *)gnt_seg_page(v->data_seg, NF_NTX + s.rsp.id) + s.rsp.offset;
			iov[niov].iov_len = (size_t)s.rsp.status;
			total += (uint32_t)s.rsp.status;
			niov++;
		}
		if (k == 1) {
			first_flags = s.rsp.flags;
			if (s.rsp.flags & NETRXF_EXTRA_INFO) {
				if (k >= avail)
					return 0;
				union netif_rx_rsp_slot e;
				netif_rx_ring_front_copy_response(&v->rx, cons + k, &e);
				k++;
				ex = e.extra;
				if (ex.flags & NETIF_EXTRA_FLAG_MORE) {
					vif_reset(v, "rx ring: chained extra info");
					return -1;
				}
				if (ex.type == XEN_NETIF_EXTRA_TYPE_GSO)
					gso = true;
			}
		}
	}
	v->rx.rsp_cons = cons + k;
	if (bad || total < 14 || total > NF_MAX_FRAME) {
		v->rx_drops++;
		return 1;
	}
	if (first_flags & NETRXF_CSUM_BLANK || gso) {
		struct netpkt_l4 l4;
		if (netpkt_l4_parse(iov[1].iov_base, iov[1].iov_len, &l4)) {
			v->rx_drops++;
			return 1;
		}
		vh.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		vh.hdr.csum_start = l4.csum_start;
		vh.hdr.csum_offset = l4.csum_offset;
		if (gso) {
			if (l4.proto != 6 || ex.u.gso.size == 0) {
				v->rx_drops++;
				return 1;
			}
			vh.hdr.gso_type =
			    l4.ipv6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
			vh.hdr.gso_size = ex.u.gso.size;
			vh.hdr.hdr_len = l4.hdr_len;
		}
	} else if (first_flags & NETRXF_DATA_VALIDATED) {
		vh.hdr.flags = VIRTIO_NET_HDR_F_DATA_VALID;
	}
	iov[0].iov_base = &vh;
	iov[0].iov_len = NF_VH_LEN;
	if (writev(v->tap, iov, (int)niov) < 0)
		v->rx_drops++;
	else
		v->rx_pkts++;
	return 1;
}

static int rx_poll(struct netfront_vif *v)
{
	int n = 0;
	while (v->connected) {
		uint32_t avail;
		if (netif_rx_ring_front_unconsumed_responses(&v->rx, &avail)) {
			vif_reset(v, "rx ring: response producer index jump");
			return n;
		}
		if (avail == 0)
			break;
		int r = rx_one(v, avail);
		if (r <= 0)
			break;
		n++;
		if (n % 32 == 0)
			rx_post(v);
	}
	if (v->connected && n)
		rx_post(v);
	return n;
}

static int vif_poll(void *arg, unsigned flags)
{
	struct netfront_vif *v = arg;
	if (!v->connected)
		return 0;
	int w = rx_poll(v);
	if (v->connected && v->hot_until) {
		/* An answer is due: the loop spins (no system calls, the TAP
		 * looked at every EVLOOP_SPIN_FDCHECK_NS) rather than sleep,
		 * unless it runs on one CPU with its peers (hv/evloop.c). */
		if (nf_now_ns() < v->hot_until)
			evloop_poll_pending(nf.l);
		else
			v->hot_until = 0;
	}
	if (!v->connected)
		return w > 0;
	uint32_t before = v->ntx_free;
	tx_complete(v);
	if (!v->connected)
		return 1;
	struct netfront_vif *pv = v->parent ? v->parent : v; /* the TAP's owner */
	if (v->ntx_free != before) {
		w++;
		if (!pv->tap_polled && v->ntx_free >= NF_FRAME_PAGES && tx_room(pv))
			tap_poll_set(pv, true);
	}
	if (flags & EVLOOP_POLL_FINAL) {
		uint32_t n;
		if (netif_rx_ring_front_final_check_for_responses(&v->rx, &n))
			vif_reset(v, "rx ring: response producer index jump");
		else if (n)
			w++;
		/* Tx responses only give pages back, and every TAP read
		 * collects them first: ask to be told of them only when out
		 * of pages (the TAP is off the loop), so a frame sent costs
		 * the guest no wake-up for its completion. */
		if (v->connected && !pv->tap_polled) {
			if (netif_tx_ring_front_final_check_for_responses(&v->tx, &n))
				vif_reset(v, "tx ring: response producer index jump");
			else if (n)
				w++;
		}
	}
	return w > 0;
}

static void vif_run_kicks(struct netfront_vif *v)
{
	struct netfront_vif *pv = v->parent ? v->parent : v;
	if (atomic_exchange(&v->peer_closed, false))
		vif_peer_closed(pv);
	/* A notification on kept rings: a new backend instance bound the
	 * channel and says it is Connected (docs/recovery.md, "Failover
	 * (network)"): look at the backend now rather than when the watch
	 * event on its state comes round. Nothing else is done on it. */
	if (atomic_exchange(&v->kicked, false)) {
		if (pv->kept)
			backend_changed(pv);
		else
			vif_poll(v, 0);
	}
	for (unsigned k = 1; !v->parent && k < v->nqueues; k++)
		vif_run_kicks(v->queue[k]);
}

/* Port handlers may run in the xenstore reader's thread (its hvc_dispatch):
 * there they only leave a flag and wake the loop. */
static void port_event(void *arg, evtchn_port_t port, enum evtchn_event ev)
{
	(void)port;
	struct netfront_vif *v = arg;
	if (ev == EVTCHN_EV_CLOSED)
		atomic_store(&v->peer_closed, true);
	else if (ev == EVTCHN_EV_NOTIFY)
		atomic_store(&v->kicked, true);
	else
		return;
	if (pthread_equal(pthread_self(), nf.loop_thread)) {
		vif_run_kicks(v);
	} else {
		uint64_t one = 1;
		(void)!write(nf.wake_fd, &one, sizeof(one));
	}
}

/* Every 0.5 s: each vif's counters as drvdom-stats in its device directory
 * (for drvdom top; written only when they changed). */
static void stats_tick(void *arg, int fd, uint32_t events)
{
	(void)arg;
	(void)events;
	uint64_t x;
	(void)!read(fd, &x, sizeof(x));
	for (unsigned i = 0; i < NF_MAX_VIFS; i++) {
		struct netfront_vif *v = nf.vifs[i];
		if (!v || v->detaching)
			continue;
		char b[256], p[160];
		uint64_t txp = 0, rxp = 0, txd = 0, rxd = 0; /* all queues */
		for (unsigned k = 0; k < (v->nalloc ? v->nalloc : 1); k++) {
			const struct netfront_vif *q = k ? v->queue[k] : v;
			txp += q->tx_pkts, rxp += q->rx_pkts, txd += q->tx_drops,
			    rxd += q->rx_drops;
		}
		snprintf(b, sizeof(b),
			 "reqs=%llu tx_pkts=%llu rx_pkts=%llu drops=%llu tx_drops=%llu "
			 "rx_drops=%llu resets=%llu",
			 (unsigned long long)(txp + rxp), (unsigned long long)txp,
			 (unsigned long long)rxp, (unsigned long long)(txd + rxd),
			 (unsigned long long)txd, (unsigned long long)rxd,
			 (unsigned long long)v->resets);
		if (!strcmp(b, v->last_stats))
			continue;
		snprintf(v->last_stats, sizeof(v->last_stats), "%s", b);
		snprintf(p, sizeof(p), "%s/drvdom-stats", v->path);
		xs_write(nf.xs, XBT_NULL, p, b, (unsigned)strlen(b));
	}
}

static void wake_ready(void *arg, int fd, uint32_t events)
{
	(void)arg;
	(void)events;
	uint64_t x;
	(void)!read(fd, &x, sizeof(x));
	for (unsigned i = 0; i < NF_MAX_VIFS; i++)
		if (nf.vifs[i])
			vif_run_kicks(nf.vifs[i]);
}

/* --- discovery ----------------------------------------------------------- */

static struct netfront_vif *vif_find(unsigned devid)
{
	for (unsigned i = 0; i < NF_MAX_VIFS; i++)
		if (nf.vifs[i] && nf.vifs[i]->devid == devid)
			return nf.vifs[i];
	return NULL;
}

static void vif_probe(unsigned devid)
{
	if (vif_find(devid))
		return;
	unsigned slot = NF_MAX_VIFS;
	for (unsigned i = 0; i < NF_MAX_VIFS && slot == NF_MAX_VIFS; i++)
		if (!nf.vifs[i])
			slot = i;
	if (slot == NF_MAX_VIFS)
		return;
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/%u", nf.dir, devid);
	char *be = xget(dir, "backend"), *tapname = xget(dir, "drvdom-tap");
	long beid = xget_long(dir, "backend-id", -1);
	if (!be || !tapname || beid < 0 || beid >= DOMID_SELF || strlen(be) >= 128) {
		free(be);
		free(tapname);
		return; /* incomplete: a later event retries */
	}
	int fd, r = hvc_device_get(nf.h, tapname, &fd);
	if (r) {
		log_warn("vif %u: TAP %s: %s", devid, tapname, strerror(-r));
		free(be);
		free(tapname);
		return;
	}
	struct netfront_vif *v = calloc(1, sizeof(*v));
	if (!v) {
		close(fd);
		free(be);
		free(tapname);
		return;
	}
	v->devid = devid;
	v->tap = fd;
	v->be_domid = (domid_t)beid;
	snprintf(v->path, sizeof(v->path), "%s", dir);
	snprintf(v->be_path, sizeof(v->be_path), "%s", be);
	free(be);
	free(tapname);
	int hl = (int)NF_VH_LEN;
	if (ioctl(fd, TUNSETVNETHDRSZ, &hl) < 0)
		log_warn("vif %u: TUNSETVNETHDRSZ: %s", devid, strerror(errno));
	int fl = 1;
	ioctl(fd, FIONBIO, &fl);
	v->state = XENBUS_STATE_INITIALISING;
	nf.vifs[slot] = v;
	snprintf(v->tok_be, sizeof(v->tok_be), "netfront:be:%u", devid);
	snprintf(v->tok_self, sizeof(v->tok_self), "netfront:fe:%u", devid);
	snprintf(v->tok_dom, sizeof(v->tok_dom), "netfront:dom:%u", devid);
	char p[200];
	snprintf(p, sizeof(p), "%s/state", v->be_path);
	xs_watch(nf.xs, p, v->tok_be);
	snprintf(p, sizeof(p), "%s/state", v->path);
	xs_watch(nf.xs, p, v->tok_self);
	snprintf(p, sizeof(p), "/local/domain/%u/drvdom/state", v->be_domid);
	xs_watch(nf.xs, p, v->tok_dom);
	log_info("vif %u: backend %s (domain %u)", devid, v->be_path, v->be_domid);
	backend_changed(v);
}

static void vif_free(struct netfront_vif *v)
{
	char p[200];
	vif_disconnect(v);
	snprintf(p, sizeof(p), "%s/state", v->be_path);
	xs_unwatch(nf.xs, p, v->tok_be);
	snprintf(p, sizeof(p), "%s/state", v->path);
	xs_unwatch(nf.xs, p, v->tok_self);
	snprintf(p, sizeof(p), "/local/domain/%u/drvdom/state", v->be_domid);
	xs_unwatch(nf.xs, p, v->tok_dom);
	for (unsigned k = v->nalloc ? v->nalloc : 1; k-- > 0;) {
		struct netfront_vif *q = k ? v->queue[k] : v;
		if (q->granted) {
			for (unsigned i = 0; i < 2; i++)
				gnt_end_access(nf.gt, q->ring_ref[i]);
			for (unsigned i = 0; i < NF_NTX + NF_NRX; i++)
				gnt_end_access(nf.gt, q->data_ref[i]);
		}
		if (q->ring_seg)
			gnt_seg_free(nf.h, q->ring_seg);
		if (q->data_seg)
			gnt_seg_free(nf.h, q->data_seg);
		if (k)
			free(q);
	}
	free(v->tx_bounce);
	close(v->tap);
	log_info("vif %u: removed", v->devid);
	for (unsigned i = 0; i < NF_MAX_VIFS; i++)
		if (nf.vifs[i] == v)
			nf.vifs[i] = NULL;
	free(v);
}

static void scan(void)
{
	unsigned n = 0;
	char **ents = xs_directory(nf.xs, XBT_NULL, nf.dir, &n);
	bool seen[NF_MAX_VIFS] = {false};
	for (unsigned i = 0; ents && i < n; i++) {
		char *end;
		unsigned long id = strtoul(ents[i], &end, 10);
		if (end == ents[i] || *end || id > 0xffff)
			continue;
		vif_probe((unsigned)id);
		for (unsigned k = 0; k < NF_MAX_VIFS; k++)
			if (nf.vifs[k] && nf.vifs[k]->devid == id)
				seen[k] = true;
	}
	free(ents);
	for (unsigned k = 0; k < NF_MAX_VIFS; k++)
		if (nf.vifs[k] && !seen[k])
			vif_free(nf.vifs[k]);
}

void netfront_set_max_queues(unsigned n)
{
	nf.max_queues = n < 1 ? 1 : n > NF_MAX_QUEUES ? NF_MAX_QUEUES : n;
}

void netfront_set_persistent(bool on)
{
	nf.persistent = on;
	nf.persistent_set = true;
}

bool netfront_xs_event(const char *path, const char *token)
{
	(void)path;
	if (strncmp(token, "netfront:", 9))
		return false;
	if (!strcmp(token, "netfront:dir")) {
		scan();
		return true;
	}
	for (unsigned i = 0; i < NF_MAX_VIFS; i++) {
		struct netfront_vif *v = nf.vifs[i];
		if (!v)
			continue;
		if (!strcmp(token, v->tok_be))
			backend_changed(v);
		else if (!strcmp(token, v->tok_self))
			self_changed(v);
		else if (!strcmp(token, v->tok_dom))
			backend_domain_changed(v);
	}
	return true;
}

int netfront_watch_start(struct hvc *h, struct xs_handle *xs, struct evloop *l,
			 struct gnt_table *gt)
{
	nf.h = h;
	nf.xs = xs;
	nf.l = l;
	int r = hvc_self_domid(h, &nf.self);
	if (r)
		return r;
	if (!nf.persistent_set)
		nf.persistent = true;
	nf.loop_thread = pthread_self();
	nf.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (nf.wake_fd < 0)
		return -errno;
	if ((r = evloop_add_fd(l, nf.wake_fd, EPOLLIN, wake_ready, NULL)))
		return r;
	nf.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = {.it_interval = {0, 500000000}, .it_value = {0, 500000000}};
	if (nf.timer_fd < 0 || timerfd_settime(nf.timer_fd, 0, &its, NULL) < 0 ||
	    evloop_add_fd(l, nf.timer_fd, EPOLLIN, stats_tick, NULL))
		log_warn("netfront: no statistics timer (drvdom top will not see the vifs)");
	nf.gt = gt;
	nf.own_gt = !gt;
	if (!gt && (r = gnt_table_open(h, 4096, &nf.gt)))
		return r;
	snprintf(nf.dir, sizeof(nf.dir), "/local/domain/%u/device/vif", nf.self);
	if (!xs_watch(xs, nf.dir, "netfront:dir"))
		return -EIO;
	scan();
	return 0;
}

void netfront_stop(void)
{
	for (unsigned k = 0; k < NF_MAX_VIFS; k++) {
		if (nf.vifs[k]) {
			nf.vifs[k]->detaching = true;
			set_state(nf.vifs[k], XENBUS_STATE_CLOSED);
			vif_free(nf.vifs[k]);
		}
	}
	if (nf.own_gt)
		gnt_table_close(nf.gt);
	evloop_del_fd(nf.l, nf.wake_fd);
	close(nf.wake_fd);
	if (nf.timer_fd >= 0) {
		evloop_del_fd(nf.l, nf.timer_fd);
		close(nf.timer_fd);
	}
	nf.gt = NULL;
}
