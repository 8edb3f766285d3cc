// SPDX-License-Identifier: MIT
// A vif's XenbusState machine (xen/io/netif.h; docs/devices.md "A virtual
// network interface"): a backend directory found under our backend/vif is
// probed (features published, InitWait); when its frontend is Initialised
// or Connected we read its ring refs, event channel(s) and features, map
// the two ring pages (the only guest memory netback maps), bind the
// channels, take staging memory and go Connected; frontend Closing/Closed
// or a misbehaving frontend disconnects; a frontend back in Initialising
// (a reconnect) gets InitWait again. Also drvdom-stats.
#include "backends/netback/netback.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static char *xs_get(struct netback *nb, const char *dir, const char *key)
{
	char p[256];
	unsigned len;
	snprintf(p, sizeof(p), "%s/%s", dir, key);
	return xs_read(nb->xs, XBT_NULL, p, &len);
}

static int xs_get_uint(struct netback *nb, const char *dir, const char *key, uint64_t def,
		       uint64_t *out)
{
	char *s = xs_get(nb, dir, key);
	if (!s) {
		*out = def;
		return -ENOENT;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	int r = (errno || end == s || *end) ? -EINVAL : 0;
	free(s);
	*out = r ? def : v;
	return r;
}

static bool xs_put(struct netback *nb, const char *dir, const char *key, const char *val)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, key);
	return xs_write(nb->xs, XBT_NULL, p, val, (unsigned)strlen(val));
}

static void vif_set_state(struct netback_vif *v, int st)
{
	char b[8];
	snprintf(b, sizeof(b), "%d", st);
	if (!xs_put(v->nb, v->path, "state", b))
		log_warn("vif %u/%u: cannot write state %d", v->fe_domid, v->handle, st);
	v->state = st;
}

static int vif_poll(void *arg, unsigned flags);
static void vif_disconnect(struct netback_vif *v);

/* Port handlers may run in the xenstore reader's thread (its hvc_dispatch):
 * outside the loop thread they only leave a flag and wake the loop. */
static void vif_port_event(void *arg, evtchn_port_t port, enum evtchn_event ev)
{
	struct netback_vif *v = arg;
	(void)port;
	if (ev == EVTCHN_EV_CLOSED) /* any queue's channel: the whole vif */
		atomic_store(&(v->parent ? v->parent : v)->peer_closed, true);
	else if (ev == EVTCHN_EV_NOTIFY)
		atomic_store(&v->kicked, true);
	else
		return;
	if (netback_on_loop(v->nb))
		netback_vif_run_kicks(v);
	else
		netback_wake(v->nb);
}

void netback_vif_run_kicks(struct netback_vif *v)
{
	if (atomic_exchange(&v->peer_closed, false) && v->connected) {
		uint64_t fst, online;
		xs_get_uint(v->nb, v->fe_path, "state", XENBUS_STATE_UNKNOWN, &fst);
		xs_get_uint(v->nb, v->path, "online", 1, &online);
		if (online == 0 || fst == XENBUS_STATE_CLOSING || fst == XENBUS_STATE_CLOSED ||
		    fst == XENBUS_STATE_UNKNOWN)
			vif_disconnect(
			    v); /* an orderly close (or detach): the watch does the rest */
		else
			netback_vif_fail(v, "frontend closed its event channel");
	}
	if (atomic_exchange(&v->kicked, false)) {
		v->rx_kick = true;
		vif_poll(v, 0);
	} else if (v->fail_pending) {
		vif_poll(v, 0);
	}
	/* the other queues' kicks (a failure above disconnected them: nqueues 1) */
	for (unsigned k = 1; !v->parent && k < v->nqueues; k++)
		if (v->queue[k])
			netback_vif_run_kicks(v->queue[k]);
}

/* Publish responses; whether the frontend asked to be told is only noted
 * here (ntf_tx / ntf_rx) and netback_kick_all sends it at the end of the
 * event loop's callback or poller, once per port: with one channel for both rings, a ping answered within one round
 * (tx response and the reply's rx response) costs the guest one wake-up,
 * not two, and the guest is never woken while we still have work for it. */
void netback_vif_notify_tx(struct netback_vif *v)
{
	if (netif_tx_ring_back_push_responses_check_notify(&v->tx))
		v->ntf_tx = v->nb->kick_pending = true;
	else
		v->st.ntf_supp++;
}

void netback_vif_notify_rx(struct netback_vif *v)
{
	v->rx_dirty = false;
	if (netif_rx_ring_back_push_responses_check_notify(&v->rx))
		v->ntf_rx = v->nb->kick_pending = true;
	else
		v->st.ntf_supp++;
}

static void vif_kick(struct netback_vif *v)
{
	bool tx = v->ntf_tx, rx = v->ntf_rx;
	v->ntf_tx = v->ntf_rx = false;
	if (v->port_rx == v->port_tx && tx && rx) {
		rx = false; /* one channel: one notification says both */
		v->st.ntf_supp++;
	} else if (v->port_rx == v->port_tx && rx) {
		tx = true, rx = false;
	}
	if (tx) {
		evtchn_notify(v->nb->h, v->port_tx);
		v->st.ntf_sent++;
	}
	if (rx) {
		evtchn_notify(v->nb->h, v->port_rx);
		v->st.ntf_sent++;
	}
}

void netback_kick_all(struct netback *nb)
{
	if (!nb->kick_pending)
		return;
	nb->kick_pending = false;
	for (unsigned i = 1; i <= NETBACK_MAX_VIFS; i++) {
		struct netback_vif *v = nb->vifs[i];
		for (unsigned k = 0; v && k < v->nqueues; k++) {
			struct netback_vif *q = v->queue[k];
			if (q && (q->ntf_tx || q->ntf_rx))
				vif_kick(q);
		}
	}
}

static uint32_t pgnt_hash(grant_ref_t ref)
{
	return (ref * 2654435761u) & (NETBACK_PGNT_SLOTS - 1);
}

uint8_t *netback_pgnt_get(struct netback_vif *v, grant_ref_t ref, bool write)
{
	if (!v->pgnt)
		return NULL;
	uint32_t i = pgnt_hash(ref);
	for (;; i = (i + 1) & (NETBACK_PGNT_SLOTS - 1)) {
		struct netback_pgnt *e = &v->pgnt[i];
		if (e->used && e->ref == ref) {
			if (!e->addr || (write && !e->writable))
				return NULL; /* could not map it (so): grant copy */
			v->st.pgnt_hits++;
			return e->addr;
		}
		if (!e->used)
			break;
	}
	if (v->npgnt >= NETBACK_PGNT_MAX)
		return NULL;
	void *addr = NULL;
	gnt_handle_t hd = 0;
	if (gnt_map(v->nb->h, v->fe_domid, ref, write ? 0 : GNTMAP_readonly, &addr, &hd))
		addr = NULL; /* remembered: no hypercall storm on a bad ref */
	else
		v->st.gnt_maps++;
	struct netback_pgnt *e = &v->pgnt[i];
	e->used = true;
	e->ref = ref;
	e->handle = hd;
	e->addr = addr;
	e->writable = write;
	v->npgnt++;
	return addr;
}

void netback_pgnt_drop_all(struct netback_vif *v)
{
	if (!v->pgnt)
		return;
	for (unsigned i = 0; i < NETBACK_PGNT_SLOTS; i++)
		if (v->pgnt[i].used && v->pgnt[i].addr)
			gnt_unmap(v->nb->h, v->pgnt[i].handle);
	free(v->pgnt);
	v->pgnt = NULL;
	v->npgnt = 0;
}

static void vif_disconnect_keys(struct netback_vif *v, bool keys);

static void vif_disconnect(struct netback_vif *v)
{
	vif_disconnect_keys(v, true);
}

/* keys: also write carrier = 0 (not when the directory is being removed:
 * a write would create it again). */
static void vif_disconnect_keys(struct netback_vif *v, bool keys)
{
	struct netback *nb = v->nb;
	if (v->connected) {
		evloop_del_poller(nb->loop, vif_poll, v);
		if (keys && !v->parent) /* all queues' counters, one last time */
			netback_vif_stats_publish(v, true);
	}
	/* queues 1..: their rings, channels and memory (the structures stay
	 * for the next connection; netback_vif_free frees them) */
	for (unsigned k = 1; k < v->nalloc; k++)
		vif_disconnect_keys(v->queue[k], false);
	if (!v->parent)
		v->nqueues = 1;
	v->connected = false;
	v->ntf_tx = v->ntf_rx = false; /* the channels close: nothing to tell */
	if (v->port_bound_rx && v->port_rx != v->port_tx) {
		evloop_del_port(nb->loop, v->port_rx);
		evtchn_close(nb->h, v->port_rx);
	}
	if (v->port_bound_tx) {
		evloop_del_port(nb->loop, v->port_tx);
		evtchn_close(nb->h, v->port_tx);
	}
	v->port_bound_tx = v->port_bound_rx = false;
	if (v->tx_mapped)
		gnt_unmap(nb->h, v->tx_handle);
	if (v->rx_mapped)
		gnt_unmap(nb->h, v->rx_handle);
	v->tx_mapped = v->rx_mapped = false;
	netback_pgnt_drop_all(v);
	if (v->tx_stage && gnt_seg_free(nb->h, v->tx_stage) == 0)
		v->tx_stage = NULL;
	netback_rxq_fini(v);
	if (!v->parent)
		netback_bridge_forget_port(nb, v->port);
	if (keys)
		(void)xs_put(nb, v->path, "carrier", "0");
}

static int vif_read_port(struct netback_vif *v, const char *dir, const char *key,
			 evtchn_port_t *out)
{
	uint64_t p;
	if (xs_get_uint(v->nb, dir, key, 0, &p) || p == 0 || p >= HV_EVTCHN_PORTS)
		return -EINVAL;
	*out = (evtchn_port_t)p;
	return 0;
}

static int vif_bind(struct netback_vif *v, evtchn_port_t remote, evtchn_port_t *local)
{
	int r = evtchn_bind_interdomain(v->nb->h, v->fe_domid, remote, local);
	if (r)
		return r;
	return evloop_add_port(v->nb->loop, *local, vif_port_event, v);
}

/* Queues offered (multi-queue-max-queues): one per CPU this domain may run
 * on, as Linux netback offers one per CPU, at most NETBACK_MAX_QUEUES. */
static unsigned vif_max_queues(void)
{
	cpu_set_t set;
	unsigned n = 1;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		n = (unsigned)CPU_COUNT(&set);
	return n < NETBACK_MAX_QUEUES ? n : NETBACK_MAX_QUEUES;
}

/* One queue's ring pair, event channel(s) and staging memory; the keys are
 * in dir (the frontend directory, or its queue-N with several queues). */
static int vif_queue_connect(struct netback_vif *v, const char *dir, const char **whyp)
{
	struct netback *nb = v->nb;
	uint64_t tx_ref, rx_ref;
	const char *why = "bad ring refs";
	int r = -EINVAL;
	if (xs_get_uint(nb, dir, "tx-ring-ref", 0, &tx_ref) ||
	    xs_get_uint(nb, dir, "rx-ring-ref", 0, &rx_ref) || tx_ref > UINT32_MAX ||
	    rx_ref > UINT32_MAX)
		goto fail;
	if (v->persistent && !(v->pgnt = calloc(NETBACK_PGNT_SLOTS, sizeof(*v->pgnt))))
		v->persistent = false;

	why = "cannot map the rings";
	struct gnt_map_op ops[2] = {
	    {.domid = v->fe_domid, .ref = (grant_ref_t)tx_ref},
	    {.domid = v->fe_domid, .ref = (grant_ref_t)rx_ref},
	};
	r = gnt_map_batch(nb->h, ops, 2);
	if (ops[0].status == GNTST_okay) {
		v->tx_mapped = true;
		v->tx_handle = ops[0].handle;
		v->tx_page = ops[0].addr;
	}
	if (ops[1].status == GNTST_okay) {
		v->rx_mapped = true;
		v->rx_handle = ops[1].handle;
		v->rx_page = ops[1].addr;
	}
	if (r)
		goto fail;
	netif_tx_ring_back_attach(&v->tx, v->tx_page, 0);
	netif_rx_ring_back_attach(&v->rx, v->rx_page, 0);

	why = "bad event channel";
	evtchn_port_t rtx, rrx;
	if (!vif_read_port(v, dir, "event-channel-tx", &rtx)) {
		if ((r = vif_read_port(v, dir, "event-channel-rx", &rrx)))
			goto fail;
	} else if ((r = vif_read_port(v, dir, "event-channel", &rtx))) {
		goto fail;
	} else {
		rrx = rtx;
	}
	if ((r = vif_bind(v, rtx, &v->port_tx)))
		goto fail;
	v->port_bound_tx = true;
	if (rrx != rtx) {
		if ((r = vif_bind(v, rrx, &v->port_rx)))
			goto fail;
		v->port_bound_rx = true;
	} else {
		v->port_rx = v->port_tx;
	}

	why = "out of memory for staging";
	if ((r = gnt_seg_alloc(nb->h, v->fe_domid, NETBACK_TX_STAGE_PAGES, &v->tx_stage)) ||
	    (r = netback_rxq_init(v)))
		goto fail;
	memset(&v->st, 0, sizeof(v->st));
	v->last_stats[0] = 0;
	v->broken = false;
	return 0;
fail:
	*whyp = why;
	return r ? r : -EINVAL;
}

static int vif_connect(struct netback_vif *v)
{
	struct netback *nb = v->nb;
	uint64_t u, nq = 1;
	const char *why = "request-rx-copy is required (no page flipping)";
	char whyq[160];
	int r = -EINVAL;
	if (xs_get_uint(nb, v->fe_path, "request-rx-copy", 0, &u) || u != 1)
		goto fail;
	/* absent: one queue, keys at the top level (netif.h) */
	why = "bad multi-queue-num-queues (not a number, 0, or more than multi-queue-max-queues)";
	if (xs_get_uint(nb, v->fe_path, "multi-queue-num-queues", 1, &nq) == -EINVAL || nq == 0 ||
	    nq > vif_max_queues())
		goto fail;
	xs_get_uint(nb, v->fe_path, "feature-sg", 0, &u);
	v->fe_sg = u == 1;
	xs_get_uint(nb, v->fe_path, "feature-gso-tcpv4", 0, &u);
	v->fe_gso4 = u == 1;
	xs_get_uint(nb, v->fe_path, "feature-gso-tcpv6", 0, &u);
	v->fe_gso6 = u == 1;
	xs_get_uint(nb, v->fe_path, "feature-rx-notify", 0, &u);
	v->fe_rx_notify = u == 1;
	xs_get_uint(nb, v->fe_path, "drvdom-persistent-grants", 0, &u);
	v->persistent = u == 1;

	/* Queue 0 is v; queues 1.. are structures of their own sharing its
	 * bridge port and features. With one queue the keys are at the top
	 * level, with several in queue-N (netif.h). */
	v->queue[0] = v;
	v->nqueues = 1;
	for (unsigned k = 0; k < nq; k++) {
		struct netback_vif *q = v;
		if (k > 0) {
			why = "out of memory for a queue";
			r = -ENOMEM;
			if (k >= v->nalloc) {
				if (!(q = calloc(1, sizeof(*q))))
					goto fail;
				v->queue[k] = q;
				v->nalloc = k + 1;
			}
			q = v->queue[k];
			q->nb = nb;
			q->parent = v;
			q->qidx = k;
			q->port = v->port;
			q->fe_domid = v->fe_domid;
			q->handle = v->handle;
			memcpy(q->path, v->path, sizeof(q->path));
			memcpy(q->fe_path, v->fe_path, sizeof(q->fe_path));
			q->fe_sg = v->fe_sg, q->fe_gso4 = v->fe_gso4, q->fe_gso6 = v->fe_gso6;
			q->fe_rx_notify = v->fe_rx_notify;
			q->persistent = v->persistent;
			q->state = XENBUS_STATE_CONNECTED;
			q->tx_kick = q->rx_kick = q->rx_dirty = false;
			atomic_store(&q->kicked, false);
			v->nqueues = k + 1;
		}
		char dir[192];
		if (nq == 1)
			snprintf(dir, sizeof(dir), "%s", v->fe_path);
		else
			snprintf(dir, sizeof(dir), "%s/queue-%u", v->fe_path, k);
		if ((r = vif_queue_connect(q, dir, &why))) {
			if (nq > 1) {
				snprintf(whyq, sizeof(whyq), "queue %u: %s", k, why);
				why = whyq;
			}
			goto fail;
		}
	}
	for (unsigned k = 0; k < nq; k++) {
		v->queue[k]->connected = true;
		if ((r = evloop_add_poller(nb->loop, vif_poll, v->queue[k]))) {
			why = "no poller";
			goto fail;
		}
	}
	if (v->error_written) { /* a refused connection's reason: gone now */
		char p[200];
		snprintf(p, sizeof(p), "%s/error", v->path);
		(void)xs_rm(nb->xs, XBT_NULL, p);
		v->error_written = false;
	}
	(void)xs_put(nb, v->path, "carrier", "1");
	vif_set_state(v, XENBUS_STATE_CONNECTED);
	log_info("vif %u/%u connected (sg %d gso4 %d gso6 %d, %u queue(s), %s event channels, %s)",
		 v->fe_domid, v->handle, v->fe_sg, v->fe_gso4, v->fe_gso6, v->nqueues,
		 v->port_rx != v->port_tx ? "split" : "one",
		 v->persistent ? "persistent grants mapped once" : "grant copy");
	return 0;
fail:
	log_warn("vif %u/%u: cannot connect: %s (%s)", v->fe_domid, v->handle, why, strerror(-r));
	/* the reason for the toolstack and the frontend, as blkback does */
	v->error_written = xs_put(nb, v->path, "error", why);
	vif_disconnect(v);
	vif_set_state(v, XENBUS_STATE_CLOSING);
	return r;
}

static void vif_init_wait(struct netback_vif *v)
{
	static const char *const feats[][2] = {
	    {"feature-sg", "1"},
	    {"feature-gso-tcpv4", "1"},
	    {"feature-gso-tcpv6", "1"},
	    {"feature-rx-copy", "1"},
	    {"feature-rx-flip", "0"},
	    {"feature-split-event-channels", "1"},
	    {"feature-ipv6-csum-offload", "1"},
	    {"feature-multicast-control", "0"},
	    {"drvdom-persistent-grants", "1"},
	};
	for (size_t i = 0; i < sizeof(feats) / sizeof(feats[0]); i++)
		(void)xs_put(v->nb, v->path, feats[i][0], feats[i][1]);
	char nq[12];
	snprintf(nq, sizeof(nq), "%u", vif_max_queues());
	(void)xs_put(v->nb, v->path, "multi-queue-max-queues", nq);
	(void)xs_put(v->nb, v->path, "carrier", "0");
	v->broken = false;
	vif_set_state(v, XENBUS_STATE_INIT_WAIT);
}

void netback_vif_frontend_changed(struct netback_vif *v)
{
	uint64_t fst, online;
	if (xs_get_uint(v->nb, v->fe_path, "state", XENBUS_STATE_UNKNOWN, &fst))
		return; /* the frontend directory is going away: the scan frees us */
	xs_get_uint(v->nb, v->path, "online", 1, &online);
	if (online == 0 && fst != XENBUS_STATE_CLOSING && fst != XENBUS_STATE_CLOSED)
		return; /* being detached: only the way down */
	switch (fst) {
	case XENBUS_STATE_INITIALISED:
	case XENBUS_STATE_CONNECTED:
		if (v->state == XENBUS_STATE_INIT_WAIT && !v->connected)
			vif_connect(v);
		break;
	case XENBUS_STATE_CLOSING:
		vif_disconnect(v);
		if (v->state != XENBUS_STATE_CLOSED)
			vif_set_state(v, XENBUS_STATE_CLOSING);
		break;
	case XENBUS_STATE_CLOSED:
		vif_disconnect(v);
		if (v->state != XENBUS_STATE_CLOSED)
			vif_set_state(v, XENBUS_STATE_CLOSED);
		break;
	case XENBUS_STATE_INITIALISING:
		/* a frontend starting (again): offer ourselves */
		if (v->state != XENBUS_STATE_INIT_WAIT) {
			vif_disconnect(v);
			vif_init_wait(v);
		}
		break;
	default:
		break;
	}
}

void netback_vif_fail(struct netback_vif *v, const char *why)
{
	if (v->parent) {
		/* a queue: stop serving it, and take the whole vif down from
		 * the loop (wake_ready runs the vif's deferred work) */
		v->broken = true;
		v = v->parent;
		if (!v->broken)
			netback_wake(v->nb);
	}
	if (v->broken)
		return;
	log_warn("vif %u/%u: %s: disconnecting", v->fe_domid, v->handle, why);
	v->broken = true;
	v->broken_why = why;
	v->fail_pending = true;
}

static void vif_deferred(struct netback_vif *v)
{
	if (!v->fail_pending)
		return;
	v->fail_pending = false;
	vif_disconnect(v);
	uint64_t online;
	char *fe = xs_get(v->nb, v->path, "frontend");
	xs_get_uint(v->nb, v->path, "online", 1, &online);
	if (fe && online) /* not while the directory is being removed */
		vif_set_state(v, XENBUS_STATE_CLOSING);
	free(fe);
}

static int vif_poll(void *arg, unsigned flags)
{
	struct netback_vif *v = arg;
	struct netback *nb = v->nb;
	int w = 0;
	if (v->connected && !v->broken) {
		w += netback_tx_poll(v, flags);
		if (v->rxq_head != v->rxq_tail || v->rx_kick || v->rx_dirty)
			w += netback_rx_poll(v, flags);
		v->tx_kick = v->rx_kick = false;
	}
	if (v->fail_pending)
		vif_deferred(v);
	netback_kick_all(nb);
	return w > 0;
}

void netback_vif_probe(struct netback *nb, domid_t fe, unsigned handle)
{
	for (unsigned i = 1; i <= NETBACK_MAX_VIFS; i++) {
		struct netback_vif *o = nb->vifs[i];
		if (o && o->fe_domid == fe && o->handle == handle)
			return;
	}
	unsigned port = 0;
	for (unsigned i = 1; i <= NETBACK_MAX_VIFS && !port; i++)
		if (!nb->vifs[i])
			port = i;
	if (!port) {
		log_warn("vif %u/%u: more than %u vifs: ignored", fe, handle, NETBACK_MAX_VIFS);
		return;
	}
	struct netback_vif *v = calloc(1, sizeof(*v));
	if (!v)
		return;
	v->nb = nb;
	v->port = port;
	v->queue[0] = v;
	v->nqueues = v->nalloc = 1;
	v->fe_domid = fe;
	v->handle = handle;
	snprintf(v->path, sizeof(v->path), "%s/%u/%u", nb->vif_path, fe, handle);
	char *fp = xs_get(nb, v->path, "frontend");
	char *st = xs_get(nb, v->path, "state");
	char *mac = xs_get(nb, v->path, "mac");
	if (!fp || !st || strlen(fp) >= sizeof(v->fe_path)) {
		free(fp);
		free(st);
		free(mac);
		free(v);
		return; /* not complete yet; a later watch event probes again */
	}
	snprintf(v->fe_path, sizeof(v->fe_path), "%s", fp);
	unsigned m[6];
	if (mac && sscanf(mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) == 6)
		for (int i = 0; i < 6; i++)
			v->mac[i] = (uint8_t)m[i];
	free(fp);
	free(st);
	free(mac);
	snprintf(v->fe_token, sizeof(v->fe_token), "fe:%u:%u", fe, handle);
	nb->vifs[port] = v;
	char p[200];
	snprintf(p, sizeof(p), "%s/state", v->fe_path);
	if (!xs_watch(nb->xs, p, v->fe_token))
		log_warn("vif %u/%u: cannot watch %s", fe, handle, p);
	log_info("vif %u/%u: probing (frontend %s, bridge port %u)", fe, handle, v->fe_path, port);
	vif_init_wait(v);
	netback_vif_frontend_changed(v);
}

void netback_vif_free(struct netback_vif *v)
{
	struct netback *nb = v->nb;
	vif_disconnect_keys(v, false);
	for (unsigned k = 1; k < v->nalloc; k++)
		free(v->queue[k]);
	char p[200];
	snprintf(p, sizeof(p), "%s/state", v->fe_path);
	(void)xs_unwatch(nb->xs, p, v->fe_token);
	nb->vifs[v->port] = NULL;
	log_info("vif %u/%u: removed", v->fe_domid, v->handle);
	free(v);
}

void netback_vif_stats_publish(struct netback_vif *v, bool force)
{
	uint64_t now = netback_now_ns();
	if (!force && now - v->stats_ns < NETBACK_STATS_NS)
		return;
	/* all queues' counters together */
	struct netback_stats sum = v->st;
	unsigned inflight = v->rxq_tail - v->rxq_head;
	unsigned mapped = (unsigned)v->tx_mapped + (unsigned)v->rx_mapped + v->npgnt;
	for (unsigned k = 1; k < v->nqueues; k++) {
		const struct netback_vif *q = v->queue[k];
		if (!q)
			continue;
		uint64_t *d = (uint64_t *)&sum;
		const uint64_t *a = (const uint64_t *)&q->st;
		for (size_t i = 0; i < sizeof(sum) / sizeof(uint64_t); i++)
			d[i] += a[i];
		inflight += q->rxq_tail - q->rxq_head;
		mapped += (unsigned)q->tx_mapped + (unsigned)q->rx_mapped + q->npgnt;
	}
	const struct netback_stats *s = &sum;
	char b[512];
	snprintf(b, sizeof(b),
		 "reqs=%" PRIu64 " bytes=%" PRIu64 " tx_pkts=%" PRIu64 " tx_bytes=%" PRIu64
		 " rx_pkts=%" PRIu64 " rx_bytes=%" PRIu64 " inflight=%u drops=%" PRIu64
		 " tx_drops=%" PRIu64 " rx_drops=%" PRIu64 " errors=%" PRIu64 " ntf_sent=%" PRIu64
		 " ntf_supp=%" PRIu64 " gnt_copies=%" PRIu64 " gnt_copy_calls=%" PRIu64
		 " gnt_maps=%" PRIu64 " pgnt_hits=%" PRIu64 " mapped=%u",
		 s->tx_pkts + s->rx_pkts, s->tx_bytes + s->rx_bytes, s->tx_pkts, s->tx_bytes,
		 s->rx_pkts, s->rx_bytes, inflight, s->tx_drops + s->rx_drops,
		 s->tx_drops, s->rx_drops, s->tx_errors, s->ntf_sent, s->ntf_supp, s->gnt_copies,
		 s->gnt_copy_calls, s->gnt_maps, s->pgnt_hits, mapped);
	if (v->nqueues > 1) { /* how the flows spread: packets per queue */
		size_t l = strlen(b);
		l += (size_t)snprintf(b + l, sizeof(b) - l, " queues=%u q_tx_pkts=", v->nqueues);
		for (unsigned k = 0; k < v->nqueues && l < sizeof(b); k++)
			l += (size_t)snprintf(b + l, sizeof(b) - l, "%s%" PRIu64, k ? "," : "",
					      v->queue[k] ? v->queue[k]->st.tx_pkts : 0);
		if (l < sizeof(b))
			l += (size_t)snprintf(b + l, sizeof(b) - l, " q_rx_pkts=");
		for (unsigned k = 0; k < v->nqueues && l < sizeof(b); k++)
			l += (size_t)snprintf(b + l, sizeof(b) - l, "%s%" PRIu64, k ? "," : "",
					      v->queue[k] ? v->queue[k]->st.rx_pkts : 0);
	}
	v->stats_ns = now;
	if (!strcmp(b, v->last_stats))
		return;
	snprintf(v->last_stats, sizeof(v->last_stats), "%s", b);
	(void)xs_put(v->nb, v->path, "drvdom-stats", b);
}
