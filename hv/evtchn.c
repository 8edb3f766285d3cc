// SPDX-License-Identifier: MIT
// Event channels, domain side (see hv/evtchn.h): the port table with the
// eventfds the hv handed out, Xen's 2-level pending/mask bitmaps, and the
// glue the hypercall client calls when EVT_PORT_BOUND / EVT_PORT_CLOSED
// arrive. Every bound port's wait fd sits in the hvc's internal epoll set
// (hvc_fd()), tagged with a per-binding serial so a stale readiness report
// for a closed binding is recognised and ignored. Fds are only closed under
// the table lock, after being removed from that epoll set.
#include "hv/hvc_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/log.h"

enum { PS_FREE = 0, PS_UNBOUND = 1, PS_BOUND = 2 };

struct evtchn_port_st {
	uint8_t st;
	uint8_t deferred; /* notified while unbound: kick when bound */
	uint8_t priv;	  /* evtchn_set_private: not in hvc_fd()'s set */
	domid_t remote;
	evtchn_port_t rport;
	int wait_fd, kick_fd;
	uint32_t serial;
	evtchn_handler_fn fn;
	void *arg;
};

struct evtchn_state {
	pthread_mutex_t lock;
	/* Held across a call that allocates or frees a port number at the hv
	 * and the update of our table that follows (never with lock held
	 * across the call): else a close's reset of port N can land after
	 * another thread's bind was given the same N, the hv freeing it in
	 * between, and wipe the new binding (its peer then never hears us). */
	pthread_mutex_t alloc_lock;
	uint32_t serial;
	struct evtchn_bitmap bm;
	struct evtchn_port_st p[HV_EVTCHN_PORTS];
};

/* --- the 2-level bitmap (Xen's evtchn_2l_*) ----------------------------- */

#define EV_WORD(port) ((port) / 64u)
#define EV_BIT(port) (1ull << ((port) % 64u))

int evtchn_bm_set_pending(struct evtchn_bitmap *bm, evtchn_port_t port)
{
	unsigned w = EV_WORD(port);
	uint64_t b = EV_BIT(port);
	/* All seq_cst: the mask test here and the pending test in unmask must
	 * not both miss (one of the two delivers). */
	if (atomic_fetch_or(&bm->pending[w], b) & b)
		return 0;
	if (atomic_load(&bm->mask[w]) & b)
		return 0;
	return !(atomic_fetch_or(&bm->sel, 1ull << w) & (1ull << w));
}

int evtchn_bm_clear_pending(struct evtchn_bitmap *bm, evtchn_port_t port)
{
	uint64_t b = EV_BIT(port);
	return !!(atomic_fetch_and(&bm->pending[EV_WORD(port)], ~b) & b);
}

void evtchn_bm_mask(struct evtchn_bitmap *bm, evtchn_port_t port)
{
	atomic_fetch_or(&bm->mask[EV_WORD(port)], EV_BIT(port));
}

int evtchn_bm_unmask(struct evtchn_bitmap *bm, evtchn_port_t port)
{
	unsigned w = EV_WORD(port);
	uint64_t b = EV_BIT(port);
	if (!(atomic_fetch_and(&bm->mask[w], ~b) & b))
		return 0; /* was not masked */
	if (!(atomic_load(&bm->pending[w]) & b))
		return 0;
	return !(atomic_fetch_or(&bm->sel, 1ull << w) & (1ull << w));
}

int evtchn_bm_consume(struct evtchn_bitmap *bm, void (*fn)(void *arg, evtchn_port_t port),
		      void *arg)
{
	int n = 0;
	uint64_t sel = atomic_exchange(&bm->sel, 0);
	while (sel) {
		unsigned w = (unsigned)__builtin_ctzll(sel);
		sel &= sel - 1;
		uint64_t bits = atomic_load(&bm->pending[w]) & ~atomic_load(&bm->mask[w]);
		while (bits) {
			unsigned i = (unsigned)__builtin_ctzll(bits);
			bits &= bits - 1;
			uint64_t b = 1ull << i;
			if (atomic_fetch_and(&bm->pending[w], ~b) & b) {
				n++;
				fn(arg, (evtchn_port_t)(w * 64u + i));
			}
		}
	}
	return n;
}

/* --- port table ------------------------------------------------------------- */

int evtchn_state_init(struct hvc *h)
{
	struct evtchn_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->alloc_lock, NULL);
	for (unsigned i = 0; i < HV_EVTCHN_PORTS; i++)
		s->p[i].wait_fd = s->p[i].kick_fd = -1;
	h->ev = s;
	return 0;
}

/* Lock held. Remove a binding's fds. */
static void port_drop_fds(struct hvc *h, struct evtchn_port_st *p)
{
	if (p->wait_fd >= 0) {
		(void)epoll_ctl(h->ep_fd, EPOLL_CTL_DEL, p->wait_fd, NULL);
		close(p->wait_fd);
	}
	if (p->kick_fd >= 0)
		close(p->kick_fd);
	p->wait_fd = p->kick_fd = -1;
}

void evtchn_state_free(struct hvc *h)
{
	struct evtchn_state *s = h->ev;
	if (!s)
		return;
	for (unsigned i = 0; i < HV_EVTCHN_PORTS; i++)
		port_drop_fds(h, &s->p[i]);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->alloc_lock);
	free(s);
	h->ev = NULL;
}

/* Lock held. Put a bound port's wait fd in hvc_fd()'s set. */
static void port_watch(struct hvc *h, struct evtchn_port_st *p, evtchn_port_t port)
{
	struct epoll_event ee = {.events = EPOLLIN,
				 .data.u64 = HVC_TAG_PORT | (uint64_t)p->serial << 16 | port};
	if (epoll_ctl(h->ep_fd, EPOLL_CTL_ADD, p->wait_fd, &ee) < 0)
		log_warn("evtchn: port %u: epoll_ctl: %s", port, strerror(errno));
}

/* Lock held. Install a binding (takes the fds). */
static void port_set_bound(struct hvc *h, evtchn_port_t port, domid_t remote, evtchn_port_t rport,
			   int wait_fd, int kick_fd)
{
	struct evtchn_state *s = h->ev;
	struct evtchn_port_st *p = &s->p[port];
	port_drop_fds(h, p);
	p->st = PS_BOUND;
	p->remote = remote;
	p->rport = rport;
	p->serial = ++s->serial;
	/* The peer's writes never block on an eventfd short of 2^64 - 2, so a
	 * nonblocking file is harmless to it; we must never block in read. */
	int fl = fcntl(wait_fd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		(void)fcntl(wait_fd, F_SETFL, fl | O_NONBLOCK);
	fl = fcntl(kick_fd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		(void)fcntl(kick_fd, F_SETFL, fl | O_NONBLOCK);
	p->wait_fd = wait_fd;
	p->kick_fd = kick_fd;
	if (!p->priv)
		port_watch(h, p, port);
	/* A notify made while we still thought the port unbound may have
	 * followed the peer's bind at the hv (its EVT_PORT_BOUND was still in
	 * the socket): deliver it now. At worst it is spurious, which every
	 * Xen protocol tolerates; dropping it could lose a wake-up. */
	if (p->deferred) {
		static const uint64_t one = 1;
		(void)!write(kick_fd, &one, sizeof(one));
		p->deferred = 0;
	}
}

void evtchn_on_bound(struct hvc *h, const struct hv_evt_port_bound *e, int wait_fd, int kick_fd)
{
	struct evtchn_state *s = h->ev;
	if (e->port == 0 || e->port >= HV_EVTCHN_PORTS) {
		log_warn("evtchn: EVT_PORT_BOUND for port %u out of range", e->port);
		close(wait_fd);
		close(kick_fd);
		return;
	}
	pthread_mutex_lock(&s->lock);
	port_set_bound(h, e->port, e->remote_dom, e->remote_port, wait_fd, kick_fd);
	pthread_mutex_unlock(&s->lock);
}

void evtchn_on_closed(struct hvc *h, evtchn_port_t port)
{
	struct evtchn_state *s = h->ev;
	if (port >= HV_EVTCHN_PORTS)
		return;
	pthread_mutex_lock(&s->lock);
	struct evtchn_port_st *p = &s->p[port];
	port_drop_fds(h, p);
	p->st = PS_UNBOUND;
	p->deferred = 0;
	pthread_mutex_unlock(&s->lock);
}

void evtchn_dispatch_state(struct hvc *h, evtchn_port_t port, enum evtchn_event ev)
{
	struct evtchn_state *s = h->ev;
	if (port >= HV_EVTCHN_PORTS)
		return;
	pthread_mutex_lock(&s->lock);
	evtchn_handler_fn fn = s->p[port].fn;
	void *arg = s->p[port].arg;
	pthread_mutex_unlock(&s->lock);
	if (fn)
		fn(arg, port, ev);
}

void evtchn_on_wait_fd(struct hvc *h, uint64_t tag)
{
	struct evtchn_state *s = h->ev;
	evtchn_port_t port = (evtchn_port_t)(tag & 0xFFFFu);
	uint32_t serial = (uint32_t)(tag >> 16);
	if (port >= HV_EVTCHN_PORTS)
		return;
	uint64_t v = 0;
	ssize_t n = -1;
	pthread_mutex_lock(&s->lock);
	struct evtchn_port_st *p = &s->p[port];
	/* A report for a port made private meanwhile is its owner's. */
	if (p->st == PS_BOUND && p->serial == serial && p->wait_fd >= 0 && !p->priv)
		n = read(p->wait_fd, &v, sizeof(v));
	pthread_mutex_unlock(&s->lock);
	if (n == (ssize_t)sizeof(v) && v)
		evtchn_bm_set_pending(&s->bm, port);
}

struct deliver_ctx {
	struct hvc *h;
};

static void deliver_one(void *arg, evtchn_port_t port)
{
	struct hvc *h = ((struct deliver_ctx *)arg)->h;
	struct evtchn_state *s = h->ev;
	pthread_mutex_lock(&s->lock);
	evtchn_handler_fn fn = s->p[port].fn;
	void *farg = s->p[port].arg;
	pthread_mutex_unlock(&s->lock);
	if (fn) {
		fn(farg, port, EVTCHN_EV_NOTIFY);
		return;
	}
	/* No handler yet: keep it pending; evtchn_set_handler delivers it. */
	atomic_fetch_or(&s->bm.pending[EV_WORD(port)], EV_BIT(port));
}

int evtchn_deliver(struct hvc *h)
{
	struct evtchn_state *s = h->ev;
	if (!atomic_load_explicit(&s->bm.sel, memory_order_relaxed))
		return 0;
	struct deliver_ctx c = {h};
	return evtchn_bm_consume(&s->bm, deliver_one, &c);
}

/* --- public ------------------------------------------------------------------- */

static int evtchn_alloc_unbound_in(struct hvc *h, domid_t dom, domid_t remote, evtchn_port_t *port)
{
	struct hv_evtchn_alloc_unbound_req req = {.dom = dom, .remote_dom = remote};
	struct hv_evtchn_port_rep rep;
	struct hvc_msg m = {.op = HV_OP_EVTCHN_ALLOC_UNBOUND,
			    .req = &req,
			    .req_len = sizeof(req),
			    .rep = &rep,
			    .rep_cap = sizeof(rep)};
	int ret = hvc_call_exact(h, &m);
	if (ret < 0)
		return ret;
	if (rep.port >= HV_EVTCHN_PORTS)
		return -EPROTO;
	*port = rep.port;
	return 0;
}

int evtchn_alloc_unbound(struct hvc *h, domid_t remote, evtchn_port_t *port)
{
	evtchn_port_t p;
	struct evtchn_state *s = h->ev;
	pthread_mutex_lock(&s->alloc_lock);
	int ret = evtchn_alloc_unbound_in(h, DOMID_SELF, remote, &p);
	if (ret < 0) {
		pthread_mutex_unlock(&s->alloc_lock);
		return ret;
	}
	pthread_mutex_lock(&s->lock);
	if (s->p[p].st != PS_BOUND) {
		s->p[p].st = PS_UNBOUND;
		s->p[p].remote = remote;
	}
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&s->alloc_lock);
	*port = p;
	return 0;
}

int evtchn_alloc_unbound_for(struct hvc *h, domid_t dom, domid_t remote, evtchn_port_t *port)
{
	return evtchn_alloc_unbound_in(h, dom, remote, port);
}

int evtchn_bind_interdomain(struct hvc *h, domid_t remote, evtchn_port_t rport,
			    evtchn_port_t *lport)
{
	struct hv_evtchn_bind_interdomain_req req = {.remote_dom = remote, .remote_port = rport};
	struct hv_evtchn_port_rep rep;
	int fds[2] = {-1, -1};
	struct hvc_msg m = {.op = HV_OP_EVTCHN_BIND_INTERDOMAIN,
			    .req = &req,
			    .req_len = sizeof(req),
			    .rep = &rep,
			    .rep_cap = sizeof(rep),
			    .rfds = fds,
			    .rfds_cap = 2};
	struct evtchn_state *s = h->ev;
	pthread_mutex_lock(&s->alloc_lock);
	int ret = hvc_call_exact(h, &m);
	if (ret < 0) {
		pthread_mutex_unlock(&s->alloc_lock);
		return ret;
	}
	if (rep.port >= HV_EVTCHN_PORTS) {
		pthread_mutex_unlock(&s->alloc_lock);
		close(fds[0]);
		close(fds[1]);
		return -EPROTO;
	}
	pthread_mutex_lock(&s->lock);
	port_set_bound(h, rep.port, remote, rport, fds[0], fds[1]);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&s->alloc_lock);
	/* Xen marks the binder's new port pending. */
	if (evtchn_bm_set_pending(&s->bm, rep.port))
		hvc_wake(h);
	*lport = rep.port;
	return 0;
}

int evtchn_notify(struct hvc *h, evtchn_port_t port)
{
	struct evtchn_state *s = h->ev;
	if (port >= HV_EVTCHN_PORTS)
		return -EINVAL;
	static const uint64_t one = 1;
	pthread_mutex_lock(&s->lock);
	/* Under the lock so the fd cannot be closed and reused meanwhile. A
	 * nonblocking eventfd write fails only when the counter is saturated,
	 * and then the peer has an event pending anyway. */
	if (s->p[port].st == PS_BOUND && s->p[port].kick_fd >= 0)
		(void)!write(s->p[port].kick_fd, &one, sizeof(one));
	else if (s->p[port].st == PS_UNBOUND)
		s->p[port].deferred = 1; /* see port_set_bound */
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int evtchn_close(struct hvc *h, evtchn_port_t port)
{
	struct evtchn_state *s = h->ev;
	if (port >= HV_EVTCHN_PORTS)
		return -EINVAL;
	struct hv_evtchn_close_req req = {.port = port};
	struct hvc_msg m = {.op = HV_OP_EVTCHN_CLOSE, .req = &req, .req_len = sizeof(req)};
	pthread_mutex_lock(&s->alloc_lock); /* our reset before N can be reused */
	int ret = hvc_call_exact(h, &m);
	if (ret < 0 && ret != -EINVAL && ret != -ENOENT) {
		pthread_mutex_unlock(&s->alloc_lock);
		return ret;
	}
	pthread_mutex_lock(&s->lock);
	struct evtchn_port_st *p = &s->p[port];
	port_drop_fds(h, p);
	p->st = PS_FREE;
	p->deferred = 0;
	p->priv = 0;
	p->fn = NULL;
	p->arg = NULL;
	pthread_mutex_unlock(&s->lock);
	/* A closed port starts afresh: not pending, not masked. */
	atomic_fetch_and(&s->bm.mask[EV_WORD(port)], ~EV_BIT(port));
	evtchn_bm_clear_pending(&s->bm, port);
	pthread_mutex_unlock(&s->alloc_lock);
	return ret;
}

int evtchn_status(struct hvc *h, domid_t dom, evtchn_port_t port, struct hv_evtchn_status_rep *out)
{
	struct hv_evtchn_status_req req = {.dom = dom, .port = port};
	struct hvc_msg m = {.op = HV_OP_EVTCHN_STATUS,
			    .req = &req,
			    .req_len = sizeof(req),
			    .rep = out,
			    .rep_cap = sizeof(*out)};
	return hvc_call_exact(h, &m);
}

int evtchn_set_handler(struct hvc *h, evtchn_port_t port, evtchn_handler_fn fn, void *arg)
{
	struct evtchn_state *s = h->ev;
	if (port >= HV_EVTCHN_PORTS)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->p[port].fn = fn;
	s->p[port].arg = arg;
	pthread_mutex_unlock(&s->lock);
	if (fn) {
		unsigned w = EV_WORD(port);
		uint64_t b = EV_BIT(port);
		if ((atomic_load(&s->bm.pending[w]) & b) && !(atomic_load(&s->bm.mask[w]) & b)) {
			atomic_fetch_or(&s->bm.sel, 1ull << w);
			hvc_wake(h);
		}
	}
	return 0;
}

int evtchn_wait_fd(struct hvc *h, evtchn_port_t port)
{
	struct evtchn_state *s = h->ev;
	if (port >= HV_EVTCHN_PORTS)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	int fd = s->p[port].st == PS_BOUND ? s->p[port].wait_fd : -ENOTCONN;
	pthread_mutex_unlock(&s->lock);
	return fd;
}

int evtchn_set_private(struct hvc *h, evtchn_port_t port, int on)
{
	struct evtchn_state *s = h->ev;
	if (port == 0 || port >= HV_EVTCHN_PORTS)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	struct evtchn_port_st *p = &s->p[port];
	if (on && !p->priv && p->wait_fd >= 0)
		(void)epoll_ctl(h->ep_fd, EPOLL_CTL_DEL, p->wait_fd, NULL);
	else if (!on && p->priv && p->wait_fd >= 0)
		port_watch(h, p, port);
	p->priv = !!on;
	if (on && p->st == PS_FREE)
		p->st = PS_UNBOUND; /* keep notifies until the binding is read */
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int evtchn_wait_fd_dup(struct hvc *h, evtchn_port_t port)
{
	struct evtchn_state *s = h->ev;
	if (port >= HV_EVTCHN_PORTS)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	int fd = -ENOTCONN;
	/* Under the lock: the fd cannot be closed and reused meanwhile. */
	if (s->p[port].st == PS_BOUND && s->p[port].wait_fd >= 0) {
		fd = fcntl(s->p[port].wait_fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			fd = -errno;
	}
	pthread_mutex_unlock(&s->lock);
	return fd;
}

int evtchn_mask(struct hvc *h, evtchn_port_t port)
{
	if (port >= HV_EVTCHN_PORTS)
		return -EINVAL;
	evtchn_bm_mask(&h->ev->bm, port);
	return 0;
}

int evtchn_unmask(struct hvc *h, evtchn_port_t port)
{
	if (port >= HV_EVTCHN_PORTS)
		return -EINVAL;
	if (evtchn_bm_unmask(&h->ev->bm, port))
		hvc_wake(h);
	return 0;
}

int evtchn_clear_pending(struct hvc *h, evtchn_port_t port, int *was)
{
	if (port >= HV_EVTCHN_PORTS)
		return -EINVAL;
	int w = evtchn_bm_clear_pending(&h->ev->bm, port);
	if (was)
		*was = w;
	return 0;
}

int evtchn_is_pending(struct hvc *h, evtchn_port_t port)
{
	if (port >= HV_EVTCHN_PORTS)
		return -EINVAL;
	return !!(atomic_load(&h->ev->bm.pending[EV_WORD(port)]) & EV_BIT(port));
}
