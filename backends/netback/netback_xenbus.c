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

/* The same, but only into a directory the toolstack still has (its
 * frontend key there), in one transaction: after a detach removed it, a
 * write would create it again. */
static void vif_set_state_if_there(struct netback_vif *v, int st)
{
	struct xs_handle *xs = v->nb->xs;
	char p[200], b[8];
	snprintf(b, sizeof(b), "%d", st);
	for (int tries = 0; tries < 16; tries++) {
		xs_transaction_t t = xs_transaction_start(xs);
		if (t == XBT_NULL)
			break;
		unsigned len;
		snprintf(p, sizeof(p), "%s/frontend", v->path);
		char *fe = xs_read(xs, t, p, &len);
		snprintf(p, sizeof(p), "%s/state", v->path);
		bool ok = fe && xs_write(xs, t, p, b, (unsigned)strlen(b));
		free(fe);
		if (!ok) {
			xs_transaction_end(xs, t, true);
			break;
		}
		if (xs_transaction_end(xs, t, false))
			break;
		if (errno != EAGAIN)
			break;
	}
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
 * event loop's callback or poller, once per port: with one channel for both rings, a ping answered
 * within one round (tx response and the reply's rx response) costs the guest one wake-up, not two,
 * and the guest is never woken while we still have work for it. */
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

/* ref's entry, or the free slot where it goes (the table is never full:
 * NETBACK_PGNT_MAX < NETBACK_PGNT_SLOTS). */
static struct netback_pgnt *pgnt_find(struct netback_vif *v, grant_ref_t ref)
{
	for (uint32_t i = pgnt_hash(ref);; i = (i + 1) & (NETBACK_PGNT_SLOTS - 1)) {
		struct netback_pgnt *e = &v->pgnt[i];
		if (!e->used || e->ref == ref)
			return e;
	}
}

/* Remember ref's mapping (addr NULL: it could not be mapped, remembered so
 * that a bad ref costs no hypercall storm) in its free slot e. */
static void pgnt_put(struct netback_vif *v, struct netback_pgnt *e, grant_ref_t ref, bool write,
		     void *addr, gnt_handle_t hd)
{
	e->used = true;
	e->ref = ref;
	e->handle = hd;
	e->addr = addr;
	e->writable = write;
	v->npgnt++;
	if (addr)
		v->st.gnt_maps++;
}

uint8_t *netback_pgnt_get(struct netback_vif *v, grant_ref_t ref, bool write)
{
	if (!v->pgnt)
		return NULL;
	struct netback_pgnt *e = pgnt_find(v, ref);
	if (e->used) {
		if (!e->addr || (write && !e->writable))
			return NULL; /* could not map it (so): grant copy */
		v->st.pgnt_hits++;
		return e->addr;
	}
	if (v->npgnt >= NETBACK_PGNT_MAX)
		return NULL;
	void *addr = NULL;
	gnt_handle_t hd = 0;
	if (gnt_map(v->nb->h, v->fe_domid, ref, write ? 0 : GNTMAP_readonly, &addr, &hd))
		addr = NULL;
	pgnt_put(v, e, ref, write, addr, hd);
	return addr;
}

bool netback_pgnt_cached(struct netback_vif *v, grant_ref_t ref)
{
	return !v->pgnt || pgnt_find(v, ref)->used || v->npgnt >= NETBACK_PGNT_MAX;
}

void netback_pgnt_map_ahead(struct netback_vif *v, const grant_ref_t *refs, unsigned n, bool write)
{
	struct gnt_map_op ops[NETBACK_PGNT_AHEAD];
	unsigned nops = 0;
	if (!v->pgnt)
		return;
	for (unsigned i = 0; i < n && nops < NETBACK_PGNT_AHEAD; i++) {
		if (v->npgnt + nops >= NETBACK_PGNT_MAX || pgnt_find(v, refs[i])->used)
			continue;
		bool dup = false;
		for (unsigned k = 0; k < nops && !dup; k++)
			dup = ops[k].ref == refs[i];
		if (!dup)
			ops[nops++] = (struct gnt_map_op){.domid = v->fe_domid,
							  .flags = write ? 0 : GNTMAP_readonly,
							  .ref = refs[i]};
	}
	if (!nops)
		return;
	int r = gnt_map_batch(v->nb->h, ops, nops);
	if (r && r != -EIO)
		return; /* the hv failed, not the refs: netback_pgnt_get tries each */
	for (unsigned k = 0; k < nops; k++) {
		bool ok = ops[k].status == GNTST_okay;
		pgnt_put(v, pgnt_find(v, ops[k].ref), ops[k].ref, write, ok ? ops[k].addr : NULL,
			 ok ? ops[k].handle : 0);
	}
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

static int vif_bind(struct netback_vif *v, evtchn_port_t remote, evtchn_port_t *local)
{
	int r = evtchn_bind_interdomain(v->nb->h, v->fe_domid, remote, local);
	if (r)
		return r;
	return evloop_add_port(v->nb->loop, *local, vif_port_event, v);
}

/* Queues offered (multi-queue-max-queues): one per CPU this domain may run
 * on, as Linux netback offers one per CPU, at most NETBACK_MAX_QUEUES. The
 * hv sets our affinity before we run: asked once. */
static unsigned vif_max_queues(void)
{
	static unsigned n;
	if (n)
		return n;
	cpu_set_t set;
	unsigned c = 1;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		c = (unsigned)CPU_COUNT(&set);
	n = c < NETBACK_MAX_QUEUES ? c : NETBACK_MAX_QUEUES;
	return n;
}

/* Combined keys and lists hold at most this many queues (more is not
 * well-formed: the single keys are read instead, and refused there). */
#define VIF_KEYS_MAX_QUEUES 8u

/* What a frontend published for a connection, from its drvdom-rings or its
 * single keys; checked by vif_keys_check before anything is used. */
struct vif_keys {
	uint64_t nq, rx_copy, sg, gso4, gso6, rx_notify, persistent;
	uint64_t tx_ref[VIF_KEYS_MAX_QUEUES], rx_ref[VIF_KEYS_MAX_QUEUES];
	uint64_t port_tx[VIF_KEYS_MAX_QUEUES], port_rx[VIF_KEYS_MAX_QUEUES];
};

/* drvdom-rings (docs/recovery.md, "Failover (network)"): netfront writes
 * what its ring, channel and feature keys say once more in one key,
 * "multi-queue-num-queues=N tx-ring-ref=R[,R..] rx-ring-ref=R[,R..]
 * event-channel=P[,P..] request-rx-copy=1 feature-rx-notify=B feature-sg=B
 * feature-gso-tcpv4=B feature-gso-tcpv6=B drvdom-persistent-grants=B" (one
 * entry per queue in each list), so a connect reads one key, not 6 + 3 per
 * queue. s: its value as read with the frontend's state (NULL: none).
 * Anything not exactly that (xbkey_parse, lists of N entries): false, and
 * the single keys are read. The values are checked as theirs are. */
static bool vif_parse_rings_key(struct netback_vif *v, const char *s, struct vif_keys *k)
{
	if (!s)
		return false;
	struct xbkey_field f[] = {
	    {"multi-queue-num-queues", VIF_KEYS_MAX_QUEUES, 1, &k->nq, 0},
	    {"tx-ring-ref", UINT64_MAX, VIF_KEYS_MAX_QUEUES, k->tx_ref, 0},
	    {"rx-ring-ref", UINT64_MAX, VIF_KEYS_MAX_QUEUES, k->rx_ref, 0},
	    {"event-channel", UINT64_MAX, VIF_KEYS_MAX_QUEUES, k->port_tx, 0},
	    {"request-rx-copy", UINT64_MAX, 1, &k->rx_copy, 0},
	    {"feature-rx-notify", UINT64_MAX, 1, &k->rx_notify, 0},
	    {"feature-sg", UINT64_MAX, 1, &k->sg, 0},
	    {"feature-gso-tcpv4", UINT64_MAX, 1, &k->gso4, 0},
	    {"feature-gso-tcpv6", UINT64_MAX, 1, &k->gso6, 0},
	    {"drvdom-persistent-grants", UINT64_MAX, 1, &k->persistent, 0},
	};
	bool ok = xbkey_parse(s, f, sizeof(f) / sizeof(f[0])) && k->nq >= 1 &&
		  f[1].nvals == k->nq && f[2].nvals == k->nq && f[3].nvals == k->nq;
	if (!ok) {
		log_debug("vif %u/%u: drvdom-rings not usable: the keys one by one", v->fe_domid,
			  v->handle);
		return false;
	}
	memcpy(k->port_rx, k->port_tx, sizeof(k->port_rx)); /* one channel per queue */
	return true;
}

/* A port key: 0 (never a valid port) if absent or not a number. */
static uint64_t vif_get_port(struct netback_vif *v, const char *dir, const char *key)
{
	uint64_t p;
	return xs_get_uint(v->nb, dir, key, 0, &p) ? 0 : p;
}

/* The single keys (netif.h), as Linux netfront and the test frontends
 * write them. What is absent or not a number reads as a value that
 * vif_keys_check refuses (0 for request-rx-copy, queues and ports,
 * UINT64_MAX for ring refs); the queue keys are read only for a sane
 * queue count. */
static void vif_read_keys(struct netback_vif *v, struct vif_keys *k)
{
	struct netback *nb = v->nb;
	xs_get_uint(nb, v->fe_path, "request-rx-copy", 0, &k->rx_copy);
	/* absent: one queue, keys at the top level (netif.h) */
	if (xs_get_uint(nb, v->fe_path, "multi-queue-num-queues", 1, &k->nq) == -EINVAL)
		k->nq = 0;
	xs_get_uint(nb, v->fe_path, "feature-sg", 0, &k->sg);
	xs_get_uint(nb, v->fe_path, "feature-gso-tcpv4", 0, &k->gso4);
	xs_get_uint(nb, v->fe_path, "feature-gso-tcpv6", 0, &k->gso6);
	xs_get_uint(nb, v->fe_path, "feature-rx-notify", 0, &k->rx_notify);
	xs_get_uint(nb, v->fe_path, "drvdom-persistent-grants", 0, &k->persistent);
	if (k->rx_copy != 1 || k->nq == 0 || k->nq > vif_max_queues())
		return; /* refused before the queue keys matter */
	for (unsigned q = 0; q < k->nq; q++) {
		char dir[192];
		if (k->nq == 1)
			snprintf(dir, sizeof(dir), "%s", v->fe_path);
		else
			snprintf(dir, sizeof(dir), "%s/queue-%u", v->fe_path, q);
		if (xs_get_uint(nb, dir, "tx-ring-ref", 0, &k->tx_ref[q]))
			k->tx_ref[q] = UINT64_MAX;
		if (xs_get_uint(nb, dir, "rx-ring-ref", 0, &k->rx_ref[q]))
			k->rx_ref[q] = UINT64_MAX;
		if ((k->port_tx[q] = vif_get_port(v, dir, "event-channel-tx")) != 0) {
			k->port_rx[q] = vif_get_port(v, dir, "event-channel-rx");
		} else {
			k->port_tx[q] = k->port_rx[q] = vif_get_port(v, dir, "event-channel");
		}
	}
}

/* The checks every frontend's keys get, from whichever source: 0, or
 * -EINVAL with the reason in why (for the error key). */
static int vif_keys_check(const struct vif_keys *k, char *why, size_t len)
{
	if (k->rx_copy != 1) {
		snprintf(why, len, "request-rx-copy is required (no page flipping)");
		return -EINVAL;
	}
	if (k->nq == 0 || k->nq > vif_max_queues()) {
		snprintf(why, len,
			 "bad multi-queue-num-queues (not a number, 0, or more than "
			 "multi-queue-max-queues)");
		return -EINVAL;
	}
	for (unsigned q = 0; q < k->nq; q++) {
		const char *w = NULL;
		if (k->tx_ref[q] > UINT32_MAX || k->rx_ref[q] > UINT32_MAX)
			w = "bad ring refs";
		else if (k->port_tx[q] == 0 || k->port_tx[q] >= HV_EVTCHN_PORTS ||
			 k->port_rx[q] == 0 || k->port_rx[q] >= HV_EVTCHN_PORTS)
			w = "bad event channel";
		if (!w)
			continue;
		if (k->nq > 1)
			snprintf(why, len, "queue %u: %s", q, w);
		else
			snprintf(why, len, "%s", w);
		return -EINVAL;
	}
	return 0;
}

/* One queue's ring pair, event channel(s) and staging memory, from the
 * checked keys of queue qi. */
static int vif_queue_connect(struct netback_vif *v, const struct vif_keys *k, unsigned qi,
			     const char **whyp)
{
	struct netback *nb = v->nb;
	const char *why = "cannot map the rings";
	int r;
	if (v->persistent && !(v->pgnt = calloc(NETBACK_PGNT_SLOTS, sizeof(*v->pgnt))))
		v->persistent = false;

	struct gnt_map_op ops[2] = {
	    {.domid = v->fe_domid, .ref = (grant_ref_t)k->tx_ref[qi]},
	    {.domid = v->fe_domid, .ref = (grant_ref_t)k->rx_ref[qi]},
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

	why = "cannot bind the event channel";
	evtchn_port_t rtx = (evtchn_port_t)k->port_tx[qi], rrx = (evtchn_port_t)k->port_rx[qi];
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

/* Connect with the frontend's keys: its drvdom-rings (rings, as read with
 * its state; NULL or malformed: the single keys are read now), checked
 * first. announce: we never wrote InitWait (a failover's fast path,
 * netback_vif_probe): our name goes with the state. kept: the frontend
 * kept its rings for us ("!D"): once Connected is written, each channel
 * gets a notification, which such a frontend takes as "look at the
 * backend" (docs/recovery.md, "Failover (network)") — sooner than the
 * watch event on our state, which comes through its xenstore reader. */
static int vif_connect(struct netback_vif *v, const char *rings, bool announce, bool kept)
{
	struct netback *nb = v->nb;
	struct vif_keys k;
	memset(&k, 0, sizeof(k));
	char whyb[160];
	const char *why = whyb;
	bool compact = vif_parse_rings_key(v, rings, &k);
	if (!compact)
		vif_read_keys(v, &k);
	int r = vif_keys_check(&k, whyb, sizeof(whyb));
	if (r)
		goto fail;
	unsigned nq = (unsigned)k.nq;
	v->fe_sg = k.sg == 1;
	v->fe_gso4 = k.gso4 == 1;
	v->fe_gso6 = k.gso6 == 1;
	v->fe_rx_notify = k.rx_notify == 1;
	v->persistent = k.persistent == 1;

	/* Queue 0 is v; queues 1.. are structures of their own sharing its
	 * bridge port and features. With one queue the keys are at the top
	 * level, with several in queue-N (netif.h). */
	v->queue[0] = v;
	v->nqueues = 1;
	for (unsigned q = 0; q < nq; q++) {
		struct netback_vif *qv = v;
		if (q > 0) {
			why = "out of memory for a queue";
			r = -ENOMEM;
			if (q >= v->nalloc) {
				if (!(qv = calloc(1, sizeof(*qv))))
					goto fail;
				v->queue[q] = qv;
				v->nalloc = q + 1;
			}
			qv = v->queue[q];
			qv->nb = nb;
			qv->parent = v;
			qv->qidx = q;
			qv->port = v->port;
			qv->fe_domid = v->fe_domid;
			qv->handle = v->handle;
			memcpy(qv->path, v->path, sizeof(qv->path));
			memcpy(qv->fe_path, v->fe_path, sizeof(qv->fe_path));
			qv->fe_sg = v->fe_sg, qv->fe_gso4 = v->fe_gso4, qv->fe_gso6 = v->fe_gso6;
			qv->fe_rx_notify = v->fe_rx_notify;
			qv->persistent = v->persistent;
			qv->state = XENBUS_STATE_CONNECTED;
			qv->tx_kick = qv->rx_kick = qv->rx_dirty = false;
			atomic_store(&qv->kicked, false);
			v->nqueues = q + 1;
		}
		const char *qwhy = "";
		if ((r = vif_queue_connect(qv, &k, q, &qwhy))) {
			if (nq > 1)
				snprintf(whyb, sizeof(whyb), "queue %u: %s", q, qwhy);
			else
				snprintf(whyb, sizeof(whyb), "%s", qwhy);
			why = whyb;
			goto fail;
		}
	}
	for (unsigned q = 0; q < nq; q++) {
		v->queue[q]->connected = true;
		if ((r = evloop_add_poller(nb->loop, vif_poll, v->queue[q]))) {
			why = "no poller";
			goto fail;
		}
	}
	/* Connected (after our name, when it goes with it: a frontend that
	 * reads the state then the name reads ours), then the carrier and the
	 * removal of a refused connection's reason: one round trip, the
	 * frontend's part first. */
	struct xs_batch_op w[4];
	char wp[4][200];
	unsigned nw = 0;
	if (announce) {
		xs_batch_write(&w[nw], wp[nw], sizeof(wp[nw]), v->path, "drvdom-instance", nb->instance);
		nw++;
	}
	unsigned wst = nw;
	xs_batch_write(&w[nw], wp[nw], sizeof(wp[nw]), v->path, "state", "4");
	nw++;
	xs_batch_write(&w[nw], wp[nw], sizeof(wp[nw]), v->path, "carrier", "1");
	nw++;
	if (v->error_written) {
		snprintf(wp[nw], sizeof(wp[nw]), "%s/error", v->path);
		w[nw] = (struct xs_batch_op){.type = XS_RM, .path = wp[nw]};
		nw++;
	}
	if (!xs_batch(nb->xs, XBT_NULL, w, nw) || w[wst].err || (announce && w[0].err))
		log_warn("vif %u/%u: cannot write state %d", v->fe_domid, v->handle,
			 XENBUS_STATE_CONNECTED);
	xs_batch_free(w, nw);
	v->state = XENBUS_STATE_CONNECTED;
	v->error_written = false;
	for (unsigned q = 0; kept && q < nq; q++) {
		struct netback_vif *qv = v->queue[q];
		evtchn_notify(nb->h, qv->port_tx);
		if (qv->port_rx != qv->port_tx)
			evtchn_notify(nb->h, qv->port_rx);
	}
	log_info(
	    "vif %u/%u connected (sg %d gso4 %d gso6 %d, %u queue(s), %s event channels, %s%s)",
	    v->fe_domid, v->handle, v->fe_sg, v->fe_gso4, v->fe_gso6, v->nqueues,
	    v->port_rx != v->port_tx ? "split" : "one",
	    v->persistent ? "persistent grants mapped once" : "grant copy",
	    compact ? ", from drvdom-rings" : "");
	return 0;
fail:
	log_warn("vif %u/%u: cannot connect: %s (%s)", v->fe_domid, v->handle, why, strerror(-r));
	/* the reason for the toolstack and the frontend, as blkback does */
	v->error_written = xs_put(nb, v->path, "error", why);
	vif_disconnect(v);
	vif_set_state(v, XENBUS_STATE_CLOSING);
	return r;
}

/* The features netback offers, once more in one key (drvdom-connect, and
 * drvdom-features for the mark), as vif_init_wait writes them. */
static void vif_conn_key(char *conn, size_t cap)
{
	snprintf(conn, cap,
		 "feature-rx-copy=1 feature-sg=1 feature-gso-tcpv4=1 feature-gso-tcpv6=1 "
		 "drvdom-persistent-grants=1 multi-queue-max-queues=%u",
		 vif_max_queues());
}

/* (found), or a frontend (re)starting -> InitWait, in one transaction:
 * the features, our instance's name (drvdom-instance) and the state, so a
 * frontend that reads InitWait reads the name of the instance that wrote
 * it. drvdom-features marks the feature keys an instance of ours wrote
 * here: only we (and dom0) write in this directory, so when it says what
 * we would write, the keys are there as we would write them, and a
 * restarted instance skips twelve writes of a failover. drvdom-connect
 * says the same features in one key (docs/recovery.md, "Failover
 * (network)"). have: drvdom-features was read as we would write it just
 * before (the probe's look): the transaction reads it again and writes the
 * name and state in the same round trip, and only if it changed meanwhile
 * goes round again with every key. Three round trips (start, one batch,
 * commit); a failed operation aborts the transaction. */
static int vif_init_wait(struct netback_vif *v, bool have)
{
	struct netback *nb = v->nb;
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
	char nq[12], conn[256];
	snprintf(nq, sizeof(nq), "%u", vif_max_queues());
	vif_conn_key(conn, sizeof(conn));
	const char *more[][2] = {{"multi-queue-max-queues", nq},
				 {"carrier", "0"},
				 {"drvdom-connect", conn},
				 {"drvdom-features", conn}};
	enum { NFEATS = sizeof(feats) / sizeof(feats[0]), NMORE = sizeof(more) / sizeof(more[0]) };
	_Static_assert(1 + NFEATS + NMORE + 2 <= XS_BATCH_MAX, "InitWait in one batch");
	v->broken = false;
	for (int tries = 0;; tries++) {
		xs_transaction_t t = xs_transaction_start(nb->xs);
		if (t == XBT_NULL)
			return -errno;
		struct xs_batch_op w[XS_BATCH_MAX];
		char wp[XS_BATCH_MAX][200];
		unsigned n = 0;
		xs_batch_read(&w[n], wp[n], sizeof(wp[n]), v->path, "drvdom-features");
		n++;
		for (size_t i = 0; !have && i < NFEATS; i++, n++)
			xs_batch_write(&w[n], wp[n], sizeof(wp[n]), v->path, feats[i][0], feats[i][1]);
		for (size_t i = 0; !have && i < NMORE; i++, n++)
			xs_batch_write(&w[n], wp[n], sizeof(wp[n]), v->path, more[i][0], more[i][1]);
		xs_batch_write(&w[n], wp[n], sizeof(wp[n]), v->path, "drvdom-instance", nb->instance);
		n++;
		xs_batch_write(&w[n], wp[n], sizeof(wp[n]), v->path, "state", "2");
		n++;
		bool ok = xs_batch(nb->xs, t, w, n);
		int e = ok ? 0 : (errno ? errno : EIO);
		for (unsigned i = 1; ok && i < n; i++)
			if (w[i].err)
				e = w[i].err, ok = false;
		/* the mark changed since we looked: every key, in a new one */
		bool stale = ok && have && !(w[0].reply && !strcmp(w[0].reply, conn));
		xs_batch_free(w, n);
		if (!ok || stale) {
			xs_transaction_end(nb->xs, t, true);
			if (stale) {
				have = false;
				continue;
			}
			log_warn("vif %u/%u: cannot publish InitWait: %s", v->fe_domid, v->handle,
				 strerror(e));
			return -e;
		}
		if (xs_transaction_end(nb->xs, t, false))
			break;
		if (errno != EAGAIN || tries > 20) {
			e = errno ? errno : EIO;
			log_warn("vif %u/%u: cannot publish InitWait: %s", v->fe_domid, v->handle,
				 strerror(e));
			return -e;
		}
	}
	v->state = XENBUS_STATE_INIT_WAIT;
	return 0;
}

/* What a look at the frontend reads, in one round trip (xs_batch): its
 * state, our online key, its drvdom-backend-instance and drvdom-rings. */
enum { FE_STATE, FE_ONLINE, FE_ECHO, FE_RINGS, FE_NKEYS };
struct fe_view {
	int st_r; /* reading the state: 0, -ENOENT (no frontend), -EINVAL */
	uint64_t st, online;
	char *echo, *rings; /* malloc'ed, NULL: none */
};

/* Fill fe_path's part of a look (4 ops: FE_*) into ops, paths in buf. */
static void fe_view_ops(struct netback_vif *v, const char *fe_path, struct xs_batch_op *ops,
			char (*buf)[200])
{
	xs_batch_read(&ops[FE_STATE], buf[FE_STATE], sizeof(buf[0]), fe_path, "state");
	xs_batch_read(&ops[FE_ONLINE], buf[FE_ONLINE], sizeof(buf[0]), v->path, "online");
	xs_batch_read(&ops[FE_ECHO], buf[FE_ECHO], sizeof(buf[0]), fe_path, "drvdom-backend-instance");
	xs_batch_read(&ops[FE_RINGS], buf[FE_RINGS], sizeof(buf[0]), fe_path, "drvdom-rings");
}

/* The look from its replies (taken over: the ops keep none). */
static void fe_view_take(struct fe_view *f, struct xs_batch_op *ops)
{
	f->st_r = xs_batch_uint(&ops[FE_STATE], XENBUS_STATE_UNKNOWN, &f->st);
	if (xs_batch_uint(&ops[FE_ONLINE], 1, &f->online))
		f->online = 1;
	f->echo = ops[FE_ECHO].reply;
	f->rings = ops[FE_RINGS].reply;
	ops[FE_ECHO].reply = ops[FE_RINGS].reply = NULL;
	xs_batch_free(ops, FE_NKEYS);
}

static void fe_view_free(struct fe_view *f)
{
	free(f->echo);
	free(f->rings);
	f->echo = f->rings = NULL;
}

/* Look at the frontend (with watch: register the watch on its state first,
 * in the same round trip). A failed look reads as no frontend. */
static void fe_view_read(struct netback_vif *v, struct fe_view *f, bool watch)
{
	struct xs_batch_op ops[FE_NKEYS + 1];
	char buf[FE_NKEYS + 1][200];
	unsigned base = watch ? 1 : 0;
	if (watch) {
		snprintf(buf[0], sizeof(buf[0]), "%s/state", v->fe_path);
		ops[0] =
		    (struct xs_batch_op){.type = XS_WATCH, .path = buf[0], .data = v->fe_token};
	}
	fe_view_ops(v, v->fe_path, ops + base, buf + base);
	memset(f, 0, sizeof(*f));
	if (!xs_batch(v->nb->xs, XBT_NULL, ops, base + FE_NKEYS)) {
		f->st_r = -ENOENT;
		return;
	}
	if (watch && ops[0].err)
		log_warn("vif %u/%u: cannot watch %s: %s", v->fe_domid, v->handle, buf[0],
			 strerror(ops[0].err));
	fe_view_take(f, ops + base);
}

/* A drvdom frontend says in drvdom-backend-instance (echo) which backend
 * instance its ring keys and rings are for (docs/recovery.md, "Failover
 * (network)"): ours, or "!D" after instance D died. Anything else: keys
 * and rings of a connection to an instance before us, which the frontend
 * has not reset yet (a cold-restarted instance can be faster than the
 * frontend's reset): wait for its next state write rather than map them.
 * No key: a frontend without the extension (Linux, the test frontends):
 * the plain handshake. */
static bool vif_frontend_ready_for_us(struct netback_vif *v, const char *echo)
{
	bool ok = xbkey_echo_allows(echo, v->nb->instance);
	if (!ok)
		log_debug("vif %u/%u: frontend still set up for instance %.24s", v->fe_domid,
			  v->handle, echo);
	return ok;
}

/* What the frontend's state (in a look) asks of us. */
static void vif_frontend_look(struct netback_vif *v, const struct fe_view *f)
{
	uint64_t fst = f->st, online = f->online;
	if (f->st_r == -ENOENT)
		return; /* the frontend directory is going away: the scan frees us */
	if (online == 0 && fst != XENBUS_STATE_CLOSING && fst != XENBUS_STATE_CLOSED)
		return; /* being detached: only the way down */
	switch (fst) {
	case XENBUS_STATE_INITIALISED:
	case XENBUS_STATE_CONNECTED:
		if (v->state == XENBUS_STATE_INIT_WAIT && !v->connected &&
		    vif_frontend_ready_for_us(v, f->echo))
			vif_connect(v, f->rings, false, f->echo && f->echo[0] == '!');
		break;
	case XENBUS_STATE_CLOSING:
	case XENBUS_STATE_CLOSED:
		/* Being detached (online = 0): the toolstack removes the
		 * directory once the frontend is Closed, maybe before we get
		 * here; a plain write would create it again (the vif would
		 * never go): no last counters or carrier, and the state only
		 * into a directory that is still there. */
		vif_disconnect_keys(v, online != 0);
		if (v->state != XENBUS_STATE_CLOSED)
			vif_set_state_if_there(v, (int)fst);
		break;
	case XENBUS_STATE_INITIALISING:
		/* a frontend starting (again): offer ourselves (the feature
		 * keys are most likely ours already) */
		if (v->state != XENBUS_STATE_INIT_WAIT) {
			vif_disconnect(v);
			(void)vif_init_wait(v, true);
		}
		break;
	default:
		break;
	}
}

void netback_vif_frontend_changed(struct netback_vif *v)
{
	struct fe_view f;
	fe_view_read(v, &f, false);
	vif_frontend_look(v, &f);
	fe_view_free(&f);
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
	snprintf(v->fe_token, sizeof(v->fe_token), "fe:%u:%u", fe, handle);
	/* One round trip (xs_batch) for the toolstack's keys (it writes the
	 * directory in one transaction: one key there, all there), the mark
	 * of our features, and a look at the frontend where the toolstack
	 * puts it (its watch first, then its keys): used only if the
	 * frontend key names that very directory, else looked at again
	 * where it says. */
	enum { P_FRONTEND, P_MAC, P_FEATURES, P_WATCH, P_LOOK, P_N = P_LOOK + FE_NKEYS };
	struct xs_batch_op ops[P_N];
	char buf[P_N][200], spec[128], conn[256];
	snprintf(spec, sizeof(spec), "/local/domain/%u/device/vif/%u", fe, handle);
	xs_batch_read(&ops[P_FRONTEND], buf[P_FRONTEND], sizeof(buf[0]), v->path, "frontend");
	xs_batch_read(&ops[P_MAC], buf[P_MAC], sizeof(buf[0]), v->path, "mac");
	xs_batch_read(&ops[P_FEATURES], buf[P_FEATURES], sizeof(buf[0]), v->path, "drvdom-features");
	snprintf(buf[P_WATCH], sizeof(buf[0]), "%s/state", spec);
	ops[P_WATCH] =
	    (struct xs_batch_op){.type = XS_WATCH, .path = buf[P_WATCH], .data = v->fe_token};
	fe_view_ops(v, spec, ops + P_LOOK, buf + P_LOOK);
	if (!xs_batch(nb->xs, XBT_NULL, ops, P_N)) {
		free(v);
		return; /* the connection failed: a later watch event probes again */
	}
	const char *fp = ops[P_FRONTEND].reply, *mac = ops[P_MAC].reply;
	bool watched = !ops[P_WATCH].err, at_spec = fp && !strcmp(fp, spec) && watched;
	if (watched && !at_spec)
		(void)xs_unwatch(nb->xs, buf[P_WATCH], v->fe_token);
	if (!fp || strlen(fp) >= sizeof(v->fe_path)) {
		xs_batch_free(ops, P_N);
		free(v);
		return; /* not complete yet; a later watch event probes again */
	}
	snprintf(v->fe_path, sizeof(v->fe_path), "%s", fp);
	unsigned m[6];
	if (mac && sscanf(mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) == 6)
		for (int i = 0; i < 6; i++)
			v->mac[i] = (uint8_t)m[i];
	vif_conn_key(conn, sizeof(conn));
	bool have = ops[P_FEATURES].reply && !strcmp(ops[P_FEATURES].reply, conn);
	struct fe_view f;
	memset(&f, 0, sizeof(f));
	if (at_spec)
		fe_view_take(&f, ops + P_LOOK);
	xs_batch_free(ops, P_N);
	/* An error an earlier instance wrote may be there: the first
	 * connection removes it (with its Connected; a refused one
	 * replaces it). */
	v->error_written = true;
	nb->vifs[port] = v;
	if (!at_spec)
		fe_view_read(v, &f, true);
	/* A frontend that kept its rings for the next instance after ours
	 * died ("!D", docs/recovery.md "Failover (network)") waits for
	 * Connected, not for InitWait: with our features there as we would
	 * write them, we connect at once and write our name with the state.
	 * Anything else: InitWait, then what the frontend's state asks (a
	 * change since the look fires the watch). */
	bool at_once = have && f.st_r == 0 && f.online != 0 &&
		       (f.st == XENBUS_STATE_INITIALISED || f.st == XENBUS_STATE_CONNECTED) &&
		       f.echo && f.echo[0] == '!' && vif_frontend_ready_for_us(v, f.echo);
	log_info("vif %u/%u: probing (frontend %s, bridge port %u, instance %s%s)", fe, handle,
		 v->fe_path, port, nb->instance, at_once ? "; rings kept for us: no InitWait" : "");
	if (at_once) {
		vif_connect(v, f.rings, true, true);
	} else if (vif_init_wait(v, have) == 0) {
		vif_frontend_look(v, &f);
	}
	fe_view_free(&f);
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
		 s->rx_pkts, s->rx_bytes, inflight, s->tx_drops + s->rx_drops, s->tx_drops,
		 s->rx_drops, s->tx_errors, s->ntf_sent, s->ntf_supp, s->gnt_copies,
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
