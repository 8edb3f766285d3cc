// SPDX-License-Identifier: MIT
// Domains over rings (docs/xenstore.md "Domains over rings"). With
// --hv-socket, drvdom-xenstored is a dom0 client of drvdom-hv. XS_INTRODUCE
// (handled on a socket worker, store lock held) checks the frame against the
// hv's start info, maps the domain's grant ref 1 (its xenstore page), binds
// to its store port and publishes a connection whose transport is the page's
// xenstore_domain_interface. One ring thread waits (epoll) on every bound
// port's eventfd, on the hv socket (async events: domain exit becomes
// @releaseDomain, a restarted domain is introduced again at once, a failed
// one gets drvdom/state = failed: docs/recovery.md) and on a wake eventfd,
// and every 100 ms looks at every ring anyway so a lost notification only
// costs latency. Indices are free-running u32s; a producer more than
// XENSTORE_RING_SIZE ahead of its consumer is an attack and drops that
// connection only. Replies are copied into the response ring by whichever
// thread queues them (under the connection's output lock); requests are
// copied out of the request ring before they are parsed, so the domain
// cannot change them afterwards.
#include "xenstore/xsd.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "grant/gnt.h"
#include "hv/evtchn.h"
#include "hv/hvc.h"

struct xsd_ring {
	struct xsd_ring *next; /* ring thread's list, or the new list */
	struct xsd_conn *conn;
	struct xenstore_domain_interface *intf;
	gnt_handle_t handle;
	evtchn_port_t lport;
	int wait_fd;
	bool closing;
};

static struct hvc *xsd_hv;
static int xsd_ring_ep = -1, xsd_ring_wake = -1;
/* Rings being connected are pushed on xsd_ring_new (under xsd_ring_lock,
 * never held with another lock) and adopted by the ring thread, which alone
 * walks xsd_rings: the ring thread takes xsd_store_lock while handling
 * requests, and connects happen with xsd_store_lock held. */
static pthread_mutex_t xsd_ring_lock = PTHREAD_MUTEX_INITIALIZER;
static struct xsd_ring *xsd_ring_new;
static struct xsd_ring *xsd_rings;

static uint32_t xsd_load(const XENSTORE_RING_IDX *p)
{
	/* Pairs with the peer's release store of the index. */
	return atomic_load_explicit((_Atomic uint32_t *)p, memory_order_acquire);
}

static void xsd_store(XENSTORE_RING_IDX *p, uint32_t v)
{
	/* Publishes the bytes copied before it (the peer's acquire load). */
	atomic_store_explicit((_Atomic uint32_t *)p, v, memory_order_release);
}

static void xsd_ring_wakeup(void)
{
	uint64_t one = 1;
	(void)!write(xsd_ring_wake, &one, sizeof(one));
}

/* Mark a ring broken: the ring thread tears it down. Any thread. */
static void xsd_ring_fail(struct xsd_ring *r, uint32_t error)
{
	if (error)
		xsd_store(&r->intf->error, error);
	r->closing = true;
	xsd_ring_wakeup();
}

/* out_lock held: copy queued output into the response ring. */
static void xsd_ring_flush(struct xsd_conn *c)
{
	struct xsd_ring *r = c->tp_priv;
	struct xenstore_domain_interface *in = r->intf;
	bool sent = false;
	while (c->out_head && !c->dead) {
		uint32_t cons = xsd_load(&in->rsp_cons), prod = in->rsp_prod;
		if (prod - cons > XENSTORE_RING_SIZE) {
			log_warn("domain %u: corrupted response ring indices, dropping it",
				 c->domid);
			c->dead = true;
			xsd_ring_fail(r, XENSTORE_ERROR_RINGIDX);
			return;
		}
		uint32_t space = XENSTORE_RING_SIZE - (prod - cons);
		if (!space)
			break;
		struct xsd_buf *b = c->out_head;
		uint32_t n = b->len - b->off;
		uint32_t chunk = XENSTORE_RING_SIZE - MASK_XENSTORE_IDX(prod);
		if (n > space)
			n = space;
		if (n > chunk)
			n = chunk;
		memcpy(in->rsp + MASK_XENSTORE_IDX(prod), b->data + b->off, n);
		xsd_store(&in->rsp_prod, prod + n);
		sent = true;
		b->off += n;
		c->out_bytes -= n;
		if (b->off == b->len)
			xsd_conn_sent(c, b);
	}
	if (sent)
		evtchn_notify(xsd_hv, r->lport);
}

static void xsd_ring_kill(struct xsd_conn *c)
{
	xsd_ring_fail(c->tp_priv, 0);
}

static const struct xsd_transport xsd_ring_tp = {xsd_ring_flush, xsd_ring_kill};

/* Ring thread: take what the request ring holds, handle it. */
static void xsd_ring_service(struct xsd_ring *r)
{
	struct xsd_conn *c = r->conn;
	struct xenstore_domain_interface *in = r->intf;
	pthread_mutex_lock(&c->out_lock);
	bool was = c->throttled;
	if (c->throttled && xsd_conn_may_resume(c))
		c->throttled = false;
	xsd_ring_flush(c);
	pthread_mutex_unlock(&c->out_lock);
	/* Requests copied in before the throttle are already out of the
	 * ring: handle them now, or a domain that waits for their replies
	 * (and so sends nothing more) waits forever (as xsd_main.c does). */
	if (was && !c->throttled && c->in_len && xsd_conn_input(c) < 0) {
		xsd_ring_fail(r, XENSTORE_ERROR_PROTO);
		return;
	}
	while (!c->dead && !r->closing && !c->throttled) {
		uint32_t cons = in->req_cons, prod = xsd_load(&in->req_prod);
		if (prod - cons > XENSTORE_RING_SIZE) {
			log_warn("domain %u: corrupted request ring indices, dropping it",
				 c->domid);
			xsd_ring_fail(r, XENSTORE_ERROR_RINGIDX);
			return;
		}
		uint32_t avail = prod - cons, room = XSD_IN_MAX - c->in_len;
		if (!avail || !room)
			break;
		uint32_t chunk = XENSTORE_RING_SIZE - MASK_XENSTORE_IDX(cons);
		uint32_t n = avail < room ? avail : room;
		if (n > chunk)
			n = chunk;
		memcpy(c->in + c->in_len, in->req + MASK_XENSTORE_IDX(cons), n);
		c->in_len += n;
		xsd_store(&in->req_cons, cons + n);
		evtchn_notify(xsd_hv, r->lport);
		if (xsd_conn_input(c) < 0) {
			xsd_ring_fail(r, XENSTORE_ERROR_PROTO);
			return;
		}
	}
}

/* Ring thread, r already unlinked. */
static void xsd_ring_close(struct xsd_ring *r)
{
	if (r->wait_fd >= 0)
		epoll_ctl(xsd_ring_ep, EPOLL_CTL_DEL, r->wait_fd, NULL);
	log_info("domain %u: xenstore connection closed", r->conn->domid);
	xsd_conn_free(r->conn);
	evtchn_close(xsd_hv, r->lport);
	gnt_unmap(xsd_hv, r->handle);
	free(r);
}

/* XS_INTRODUCE with an hv: xsd_store_lock held, on a socket worker. */
static int xsd_ring_connect(struct xsd_domain *d)
{
	struct hv_domain_info info;
	int ret = hvc_domain_info(xsd_hv, d->domid, &info);
	if (ret)
		return ret == -ESRCH ? -ENOENT : ret;
	if (info.store_frame != d->gfn || info.store_port != d->port)
		return -EINVAL;
	struct xsd_ring *r = calloc(1, sizeof(*r));
	if (!r)
		die("calloc ring");
	void *addr;
	ret = gnt_map(xsd_hv, d->domid, GNTTAB_RESERVED_XENSTORE, 0, &addr, &r->handle);
	if (ret) {
		free(r);
		return ret;
	}
	r->intf = addr;
	ret = evtchn_bind_interdomain(xsd_hv, d->domid, d->port, &r->lport);
	if (ret) {
		gnt_unmap(xsd_hv, r->handle);
		free(r);
		return ret;
	}
	r->wait_fd = evtchn_wait_fd(xsd_hv, r->lport);
	xsd_store(&r->intf->server_features, XENSTORE_SERVER_FEATURE_ERROR);
	r->conn = xsd_conn_new(d->domid, &xsd_ring_tp, r);
	d->conn = r->conn;
	pthread_mutex_lock(&xsd_ring_lock);
	r->next = xsd_ring_new;
	xsd_ring_new = r;
	pthread_mutex_unlock(&xsd_ring_lock);
	if (r->wait_fd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = r};
		epoll_ctl(xsd_ring_ep, EPOLL_CTL_ADD, r->wait_fd, &ev);
	}
	log_info("domain %u: xenstore ring connected (port %u)", d->domid, r->lport);
	xsd_ring_wakeup();
	return 0;
}

static void xsd_ring_disconnect(struct xsd_domain *d)
{
	(void)d; /* xsd_domain_release killed the connection: the thread reaps it */
	xsd_ring_wakeup();
}

static struct xsd_conn *xsd_ring_self; /* dom0: writes made on the hv's behalf */
bool xsd_ring_clean_dead;

/* Names in a node's children list (NUL-separated), one at a time. */
static const char *xsd_ring_next_child(const struct xsd_node *n, const char *prev)
{
	const char *p = prev ? prev + strlen(prev) + 1 : n->children;
	return n->clen && p < n->children + n->clen ? p : NULL;
}

#define XSD_GONE_MAX 64 /* backend devices of one dead domain handled */

/* A domain gone for good (neither restarted nor preserved nor failed):
 * what libxl does when a domain is destroyed. Take back from its driver
 * domains the devices they were given for it (the hv keeps a copy of each
 * for restarts, and a disk stays locked while any copy is open), remove
 * its backend directories there (each backend sees its device go) and its
 * home. `drvdom destroy` does the same before destroying; doing it again
 * finds nothing. */
static void xsd_ring_cleanup_gone(uint16_t domid)
{
	static const char *const classes[] = {"vbd", "vif"};
	struct {
		uint16_t backend;
		char dev[HV_DEVNAME_MAX];
	} devs[XSD_GONE_MAX];
	char dirs[XSD_GONE_MAX][96];
	unsigned ndevs = 0, ndirs = 0;
	pthread_mutex_lock(&xsd_store_lock);
	rcu_read_lock();
	const struct xsd_node *doms = xsd_view_get(NULL, "/local/domain");
	for (const char *b = doms ? xsd_ring_next_child(doms, NULL) : NULL; b;
	     b = xsd_ring_next_child(doms, b)) {
		for (size_t c = 0; c < 2 && ndirs < XSD_GONE_MAX; c++) {
			char path[96];
			snprintf(path, sizeof(path), "/local/domain/%.8s/backend/%s/%u", b,
				 classes[c], domid);
			const struct xsd_node *dir = xsd_view_get(NULL, path);
			if (!dir)
				continue;
			snprintf(dirs[ndirs++], sizeof(dirs[0]), "%s", path);
			for (const char *d = xsd_ring_next_child(dir, NULL);
			     d && ndevs < XSD_GONE_MAX; d = xsd_ring_next_child(dir, d)) {
				char key[160];
				snprintf(key, sizeof(key), "%s/%.16s/drvdom-device", path, d);
				const struct xsd_node *v = xsd_view_get(NULL, key);
				if (!v || !v->vlen || v->vlen >= HV_DEVNAME_MAX)
					continue;
				devs[ndevs].backend = (uint16_t)atoi(b);
				memcpy(devs[ndevs].dev, v->value, v->vlen);
				devs[ndevs].dev[v->vlen] = 0;
				ndevs++;
			}
		}
	}
	rcu_read_unlock();
	pthread_mutex_unlock(&xsd_store_lock);
	for (unsigned i = 0; i < ndevs; i++)
		hvc_domctl_revoke_device(xsd_hv, devs[i].backend, devs[i].dev); /* -ENOENT: gone */
	for (unsigned i = 0; i < ndirs; i++)
		xsd_op_rm(xsd_ring_self, NULL, dirs[i]);
	char home[32];
	snprintf(home, sizeof(home), "/local/domain/%u", domid);
	int ret = xsd_op_rm(xsd_ring_self, NULL, home);
	if (ndirs || !ret)
		log_info("domain %u gone: its home and %u backend directories removed, %u devices "
			 "taken back",
			 domid, ndirs, ndevs);
}

static void xsd_ring_domain_exit(void *arg, const struct hv_evt_domain_exit *e)
{
	(void)arg;
	/* A domain the hv restarts keeps its identity, so its nodes stay its
	 * own; only the connection, watches and transactions go. */
	bool restart = e->reason & HV_EXIT_F_RESTART;
	pthread_mutex_lock(&xsd_store_lock);
	rcu_read_lock();
	int ret = xsd_domain_release_keep(e->domid, restart);
	/* Only a domain that was introduced is introduced again (or one whose
	 * previous instance died before it could be). */
	struct xsd_domain *d = xsd_domain_get(e->domid, false);
	if (d)
		d->restart_pending = restart && (ret == 0 || d->restart_pending);
	rcu_read_unlock();
	pthread_mutex_unlock(&xsd_store_lock);
	if (ret == 0)
		log_info("domain %u (%s) exited: released%s", e->domid, e->name,
			 restart ? " (restart follows)" : "");
	if (xsd_ring_clean_dead &&
	    !(e->reason & (HV_EXIT_F_RESTART | HV_EXIT_F_FAILED | HV_EXIT_F_PRESERVED)))
		xsd_ring_cleanup_gone(e->domid);
}

/* Output of the internal dom0 connection goes nowhere. */
static void xsd_ring_null_flush(struct xsd_conn *c)
{
	struct xsd_buf *b;
	while ((b = c->out_head)) {
		c->out_bytes -= b->len - b->off;
		b->off = b->len;
		xsd_conn_sent(c, b);
	}
}
static void xsd_ring_null_kill(struct xsd_conn *c)
{
	(void)c;
}
static const struct xsd_transport xsd_ring_null_tp = {xsd_ring_null_flush, xsd_ring_null_kill};

static void xsd_ring_domain_restarted(void *arg, const struct hv_evt_domain_restarted *e)
{
	(void)arg;
	pthread_mutex_lock(&xsd_store_lock);
	rcu_read_lock();
	struct xsd_domain *d = xsd_domain_get(e->domid, false);
	bool want = d && d->restart_pending;
	/* -EINVAL: that instance is already gone (the hv's start info no
	 * longer matches); its exit follows, and the next restart is
	 * introduced instead. */
	int ret = want ? xsd_domain_introduce(e->domid, e->store_frame, e->store_port) : 0;
	if (want && !ret)
		d->restart_pending = false;
	rcu_read_unlock();
	pthread_mutex_unlock(&xsd_store_lock);
	if (!want)
		return;
	if (ret)
		log_warn("domain %u (%s) restarted: introduce failed: %s", e->domid, e->name,
			 strerror(-ret));
	else
		log_info("domain %u (%s) restarted (%u): introduced again", e->domid, e->name,
			 e->restarts);
}

static void xsd_ring_domain_failed(void *arg, const struct hv_evt_domain_failed *e)
{
	(void)arg;
	char path[64];
	snprintf(path, sizeof(path), "/local/domain/%u/drvdom/state", e->domid);
	/* Owned by dom0 and readable by every domain: a guest cannot read
	 * the driver domain's home, but its frontends must see this (the
	 * value is no secret). xsd_op_* take the store lock themselves. */
	struct xsd_perm perm = {.id = 0, .perms = XSD_PERM_READ};
	int ret = xsd_op_write(xsd_ring_self, NULL, path, "failed", 6);
	if (!ret)
		ret = xsd_op_set_perms(xsd_ring_self, NULL, path, &perm, 1);
	if (ret)
		log_warn("domain %u (%s) failed: %s: %s", e->domid, e->name, path, strerror(-ret));
	else
		log_warn("domain %u (%s) failed after %u restarts: %s = failed", e->domid, e->name,
			 e->restarts, path);
}

/* Every ring: service the live ones, close the dead ones. */
static void xsd_ring_sweep(void)
{
	pthread_mutex_lock(&xsd_ring_lock);
	while (xsd_ring_new) {
		struct xsd_ring *r = xsd_ring_new;
		xsd_ring_new = r->next;
		r->next = xsd_rings;
		xsd_rings = r;
	}
	pthread_mutex_unlock(&xsd_ring_lock);
	for (struct xsd_ring **pp = &xsd_rings; *pp;) {
		struct xsd_ring *r = *pp;
		if (!r->closing && !r->conn->dead)
			xsd_ring_service(r);
		if (r->closing || r->conn->dead) {
			*pp = r->next;
			xsd_ring_close(r);
		} else {
			pp = &r->next;
		}
	}
}

static void *xsd_ring_main(void *arg)
{
	(void)arg;
	rcu_register_thread();
	for (;;) {
		struct epoll_event evs[32];
		int n = epoll_wait(xsd_ring_ep, evs, 32, 100);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &xsd_ring_wake) {
				uint64_t v;
				(void)!read(xsd_ring_wake, &v, sizeof(v));
			} else if (evs[i].data.ptr == &xsd_hv) {
				if (hvc_dispatch(xsd_hv) < 0)
					die_err(ECONNRESET, "lost the hv connection");
			} else {
				struct xsd_ring *r = evs[i].data.ptr;
				uint64_t v;
				(void)!read(r->wait_fd, &v, sizeof(v));
			}
		}
		xsd_ring_sweep();
	}
	return NULL;
}

int xsd_ring_init(const char *hv_socket)
{
	int ret = hvc_open_dom0(hv_socket, &xsd_hv);
	if (ret)
		return ret;
	ret = hvc_domctl_subscribe(xsd_hv);
	if (ret)
		return ret;
	xsd_ring_self = xsd_conn_new(0, &xsd_ring_null_tp, NULL);
	hvc_set_domain_exit_cb(xsd_hv, xsd_ring_domain_exit, NULL);
	hvc_set_domain_restarted_cb(xsd_hv, xsd_ring_domain_restarted, NULL);
	hvc_set_domain_failed_cb(xsd_hv, xsd_ring_domain_failed, NULL);
	xsd_ring_ep = epoll_create1(EPOLL_CLOEXEC);
	xsd_ring_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (xsd_ring_ep < 0 || xsd_ring_wake < 0)
		return -errno;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &xsd_ring_wake};
	epoll_ctl(xsd_ring_ep, EPOLL_CTL_ADD, xsd_ring_wake, &ev);
	ev.data.ptr = &xsd_hv;
	epoll_ctl(xsd_ring_ep, EPOLL_CTL_ADD, hvc_fd(xsd_hv), &ev);
	xsd_domain_connect = xsd_ring_connect;
	xsd_domain_disconnect = xsd_ring_disconnect;
	pthread_t th;
	ret = pthread_create(&th, NULL, xsd_ring_main, NULL);
	return -ret;
}
