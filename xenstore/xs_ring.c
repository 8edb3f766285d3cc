// SPDX-License-Identifier: MIT
// The client library's transport inside a drvdom domain: the domain's own
// xenstore page (start info: DOMAIN_INFO gives the port, STORE_SEG the page)
// used as Xen's xenstore_domain_interface. Requests are copied into req[]
// and published with a release store of req_prod; replies are read from
// rsp[] after an acquire load of rsp_prod; indices are free-running and a
// distance above XENSTORE_RING_SIZE means a broken peer (-EPROTO). The port
// is bound by xenstored when dom0 introduces the domain; until then writes
// simply wait in the ring. Inside a domain the program's event loop owns the
// shared hypercall connection: this transport takes nothing from it. It
// makes the store port private (evtchn_set_private) and sleeps on its own
// duplicate of the port's wait fd with Xen's final check (drain, look at the
// indices again, then sleep), and before the binding is known it only reads
// the hv socket's events (hvc_read_events), whose callbacks stay queued for
// the loop. It never calls hvc_dispatch() on a shared connection. One thread
// at a time reads, writes and drains the port (xs.c's receive role); the
// reader thread sleeps without the role on an epoll set that holds its own
// duplicate of the port's wait fd unless a caller parked it, so a caller's
// reply wakes the caller alone (docs/xenstore.md, "Who reads"). The hv functions are
// weak references, so programs that never run in a domain link
// libxenstore.a without libdrvdom.a.
#include <errno.h>

#include "xenstore/xs_transport.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xen/io/xs_wire.h>

#include "hv/evtchn.h"
#include "hv/hvc.h"

#pragma weak hvc_open_domain
#pragma weak hvc_close
#pragma weak hvc_call_exact
#pragma weak hvc_domain_info
#pragma weak hvc_dispatch
#pragma weak hvc_read_events
#pragma weak hvc_fd
#pragma weak evtchn_notify
#pragma weak evtchn_set_private
#pragma weak evtchn_wait_fd_dup

struct xs_ring {
	struct hvc *h;
	bool own_hvc;
	struct xenstore_domain_interface *intf;
	evtchn_port_t port;
	int shut_fd; /* eventfd: xs_close wakes every wait */
	_Atomic bool shut;
	/* The reader thread's sleep (reader_wait): an epoll set of shut_fd
	 * and, once the port is bound and unless parked, rep_fd (our own
	 * duplicate of the port's wait fd). wait_lock orders park against
	 * reader_wait's upkeep of rep_fd. */
	int rep;
	pthread_mutex_t wait_lock;
	int rep_fd;
	bool parked, rep_stale;
};

/* Fallback timeouts: before the port is bound the binding arrives on the
 * hv socket, which we also sleep on (the program's loop may read it first,
 * hence a look every 10 ms anyway; a restarted driver domain's first
 * requests wait here, docs/recovery.md); once bound every wake-up arrives
 * on the port, and the
 * 1 s bound only matters if xenstored loses a notify or the port is bound
 * anew (a re-introduced domain). */
#define XS_RING_UNBOUND_MS 10
#define XS_RING_BOUND_MS 1000

static struct hvc *xs_ring_shared_hvc;
/* The domain has one ring for all its handles, one after another: what one
 * leaves unread (xs.c) passes to the next. */
static void *xs_ring_carry;

void xs_ring_use_hvc(struct hvc *h)
{
	xs_ring_shared_hvc = h;
}

static uint32_t xs_load(const XENSTORE_RING_IDX *p)
{
	/* Pairs with xenstored's release store of the index. */
	return atomic_load_explicit((_Atomic uint32_t *)p, memory_order_acquire);
}

static void xs_store(XENSTORE_RING_IDX *p, uint32_t v)
{
	/* Publishes the bytes copied before it to xenstored's acquire load. */
	atomic_store_explicit((_Atomic uint32_t *)p, v, memory_order_release);
}

/* May the role holder go on? A distance other than "empty" / "full" (a
 * corrupt index) also lets it go: read or write then sees -EPROTO. */
static bool xs_ring_can_go(struct xs_ring *r, bool room)
{
	struct xenstore_domain_interface *in = r->intf;
	if (atomic_load(&r->shut))
		return true;
	if (xs_load(&in->rsp_prod) != xs_load(&in->rsp_cons))
		return true;
	return room && xs_load(&in->req_prod) - xs_load(&in->req_cons) != XENSTORE_RING_SIZE;
}

/* The port's wait fd (a duplicate, ours to close), or -1 while unbound. */
static int xs_ring_wait_fd(struct xs_ring *r)
{
	int fd = evtchn_wait_fd_dup(r->h, r->port);
	return fd < 0 ? -1 : fd;
}

/* The role holder, before it looks at the ring: Xen's final check. Drain
 * the port's event counter first, so a notify xenstored sends after moving
 * an index either is seen by the look that follows or fires the port
 * again. The port is private to this library (evtchn_set_private): no other
 * consumer (the program's event loop) drains it in between. Before the port
 * is bound, learn of the binding from the hv socket without taking
 * anything from the program's loop (its callbacks run there); our own
 * connection we may dispatch ourselves. */
static void xs_ring_prepare_fd(struct xs_ring *r, int *wfd)
{
	*wfd = xs_ring_wait_fd(r);
	if (*wfd < 0) {
		if (r->own_hvc)
			(void)hvc_dispatch(r->h);
		else
			(void)hvc_read_events(r->h);
		*wfd = xs_ring_wait_fd(r);
		if (*wfd < 0)
			return;
	}
	uint64_t v;
	(void)!read(*wfd, &v, sizeof(v)); /* nonblocking: the fd is the hv's */
}

static void xs_ring_prepare(struct xs_transport *tp)
{
	int wfd;
	xs_ring_prepare_fd(tp->priv, &wfd);
	if (wfd >= 0)
		close(wfd);
}

static void xs_ring_wait(struct xs_transport *tp, bool room, int max_ms)
{
	struct xs_ring *r = tp->priv;
	int wfd;
	xs_ring_prepare_fd(r, &wfd);
	if (!xs_ring_can_go(r, room)) {
		int ms = wfd < 0 ? XS_RING_UNBOUND_MS : XS_RING_BOUND_MS;
		if (max_ms >= 0 && max_ms < ms)
			ms = max_ms;
		/* Unbound: hvc_read_events drained the socket, so new input
		 * (the binding, most likely) wakes us at once. */
		struct pollfd p[2] = {{r->shut_fd, POLLIN, 0},
				      {wfd >= 0 ? wfd : hvc_fd(r->h), POLLIN, 0}};
		(void)poll(p, 2, ms);
	}
	if (wfd >= 0)
		close(wfd);
}

/* wait_lock held. */
static void xs_ring_rep_ctl(struct xs_ring *r, int op)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = r->rep_fd};
	(void)epoll_ctl(r->rep, op, r->rep_fd, &ev);
}

static void xs_ring_reader_wait(struct xs_transport *tp)
{
	struct xs_ring *r = tp->priv;
	pthread_mutex_lock(&r->wait_lock);
	/* The port became bound, or bound anew (the 1 s fallback fired: our
	 * duplicate may name the old binding's fd): take the current one. */
	if (r->rep_fd < 0 || r->rep_stale) {
		int fd = xs_ring_wait_fd(r);
		if (fd >= 0) {
			if (r->rep_fd >= 0) {
				if (!r->parked)
					xs_ring_rep_ctl(r, EPOLL_CTL_DEL);
				close(r->rep_fd);
			}
			r->rep_fd = fd;
			if (!r->parked)
				xs_ring_rep_ctl(r, EPOLL_CTL_ADD);
		}
		r->rep_stale = false;
	}
	int ms = r->rep_fd < 0 ? XS_RING_UNBOUND_MS : XS_RING_BOUND_MS;
	pthread_mutex_unlock(&r->wait_lock);
	struct epoll_event ev;
	int n = epoll_wait(r->rep, &ev, 1, ms);
	if (n == 0) {
		pthread_mutex_lock(&r->wait_lock);
		r->rep_stale = true;
		pthread_mutex_unlock(&r->wait_lock);
	}
}

static void xs_ring_park(struct xs_transport *tp, bool on)
{
	struct xs_ring *r = tp->priv;
	pthread_mutex_lock(&r->wait_lock);
	if (r->parked != on && r->rep_fd >= 0)
		xs_ring_rep_ctl(r, on ? EPOLL_CTL_DEL : EPOLL_CTL_ADD);
	r->parked = on;
	pthread_mutex_unlock(&r->wait_lock);
}

static int xs_ring_read(struct xs_transport *tp, void *buf, size_t len, size_t *done)
{
	struct xs_ring *r = tp->priv;
	struct xenstore_domain_interface *in = r->intf;
	char *p = buf;
	*done = 0;
	while (len) {
		if (atomic_load(&r->shut))
			return -ECONNRESET;
		uint32_t cons = in->rsp_cons, prod = xs_load(&in->rsp_prod);
		if (prod - cons > XENSTORE_RING_SIZE)
			return -EPROTO;
		if (prod == cons)
			break;
		uint32_t n = prod - cons, chunk = XENSTORE_RING_SIZE - MASK_XENSTORE_IDX(cons);
		if (n > chunk)
			n = chunk;
		if (n > len)
			n = (uint32_t)len;
		memcpy(p, in->rsp + MASK_XENSTORE_IDX(cons), n);
		/* The copy is done before xenstored may reuse the space. */
		xs_store(&in->rsp_cons, cons + n);
		evtchn_notify(r->h, r->port); /* signal after every update */
		p += n;
		len -= n;
		*done += n;
	}
	return *done ? 0 : -EAGAIN;
}

static int xs_ring_write(struct xs_transport *tp, const void *buf, size_t len, size_t *done)
{
	struct xs_ring *r = tp->priv;
	struct xenstore_domain_interface *in = r->intf;
	const char *p = buf;
	*done = 0;
	while (len) {
		if (atomic_load(&r->shut))
			return -ECONNRESET;
		uint32_t prod = in->req_prod, cons = xs_load(&in->req_cons);
		if (prod - cons > XENSTORE_RING_SIZE)
			return -EPROTO;
		uint32_t space = XENSTORE_RING_SIZE - (prod - cons);
		if (!space)
			break;
		uint32_t n = space, chunk = XENSTORE_RING_SIZE - MASK_XENSTORE_IDX(prod);
		if (n > chunk)
			n = chunk;
		if (n > len)
			n = (uint32_t)len;
		memcpy(in->req + MASK_XENSTORE_IDX(prod), p, n);
		xs_store(&in->req_prod, prod + n);
		evtchn_notify(r->h, r->port); /* signal after every update */
		p += n;
		len -= n;
		*done += n;
	}
	return 0;
}

static void xs_ring_shutdown(struct xs_transport *tp)
{
	struct xs_ring *r = tp->priv;
	uint64_t one = 1;
	atomic_store(&r->shut, true);
	(void)!write(r->shut_fd, &one, sizeof(one));
}

static void xs_ring_close(struct xs_transport *tp)
{
	struct xs_ring *r = tp->priv;
	munmap(r->intf, 4096);
	close(r->shut_fd);
	close(r->rep);
	if (r->rep_fd >= 0)
		close(r->rep_fd);
	if (r->own_hvc)
		hvc_close(r->h);
	else
		(void)evtchn_set_private(r->h, r->port, 0); /* the loop's again */
	pthread_mutex_destroy(&r->wait_lock);
	free(r);
}

int xs_ring_open(struct xs_transport *tp)
{
	if (!hvc_open_domain || !hvc_call_exact || !evtchn_notify)
		return -ENOSYS; /* not linked with libdrvdom: no domain transport */
	struct xs_ring *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	int ret = 0, fd = -1;
	r->h = xs_ring_shared_hvc;
	if (!r->h) {
		ret = hvc_open_domain(&r->h);
		if (ret)
			goto fail;
		r->own_hvc = true;
	}
	struct hv_domain_info info;
	ret = hvc_domain_info(r->h, DOMID_SELF, &info);
	if (ret)
		goto fail;
	r->port = info.store_port;
	struct hv_seg_alloc_rep seg;
	struct hvc_msg m = {
	    .op = HV_OP_STORE_SEG, .rep = &seg, .rep_cap = sizeof(seg), .rfds = &fd, .rfds_cap = 1};
	ret = hvc_call_exact(r->h, &m);
	if (ret)
		goto fail;
	void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (page == MAP_FAILED) {
		ret = -errno;
		goto fail;
	}
	r->intf = page;
	r->shut_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->shut_fd < 0) {
		ret = -errno;
		munmap(page, 4096);
		goto fail;
	}
	r->rep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = r->shut_fd};
	if (r->rep < 0 || epoll_ctl(r->rep, EPOLL_CTL_ADD, r->shut_fd, &ev) < 0) {
		ret = -errno;
		if (r->rep >= 0)
			close(r->rep);
		close(r->shut_fd);
		munmap(page, 4096);
		goto fail;
	}
	r->rep_fd = -1;
	pthread_mutex_init(&r->wait_lock, NULL);
	/* Only we consume the store port's events: see xs_ring_poll. */
	(void)evtchn_set_private(r->h, r->port, 1);
	tp->fd = -1;
	tp->priv = r;
	tp->carry = &xs_ring_carry;
	tp->read = xs_ring_read;
	tp->write = xs_ring_write;
	tp->prepare = xs_ring_prepare;
	tp->wait = xs_ring_wait;
	tp->reader_wait = xs_ring_reader_wait;
	tp->park = xs_ring_park;
	tp->shutdown = xs_ring_shutdown;
	tp->close = xs_ring_close;
	return 0;
fail:
	if (r->own_hvc)
		hvc_close(r->h);
	free(r);
	return ret;
}
