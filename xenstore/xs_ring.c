// SPDX-License-Identifier: MIT
// The client library's transport inside a drvdom domain: the domain's own
// xenstore page (start info: DOMAIN_INFO gives the port, STORE_SEG the page)
// used as Xen's xenstore_domain_interface. Requests are copied into req[]
// and published with a release store of req_prod; replies are read from
// rsp[] after an acquire load of rsp_prod; indices are free-running and a
// distance above XENSTORE_RING_SIZE means a broken peer (-EPROTO). The port
// is bound by xenstored when dom0 introduces the domain; until then writes
// simply wait in the ring. Waiting polls the port's eventfd and the hv
// socket (whose async events tell the library the port got bound) with a
// 10 ms fallback. The hv functions are weak references, so programs that
// never run in a domain link libxenstore.a without libdrvdom.a.
#include <errno.h>

#include "xenstore/xs_transport.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
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
#pragma weak hvc_fd
#pragma weak evtchn_notify
#pragma weak evtchn_wait_fd

struct xs_ring {
	struct hvc *h;
	bool own_hvc;
	struct xenstore_domain_interface *intf;
	evtchn_port_t port;
	int shut_fd; /* eventfd: xs_close wakes a blocked reader */
	_Atomic bool shut;
	pthread_mutex_t wait_lock; /* one thread dispatches at a time */
};

static struct hvc *xs_ring_shared_hvc;

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

static void xs_ring_wait(struct xs_ring *r)
{
	pthread_mutex_lock(&r->wait_lock);
	int wfd = evtchn_wait_fd(r->h, r->port);
	struct pollfd p[3] = {{hvc_fd(r->h), POLLIN, 0}, {r->shut_fd, POLLIN, 0}, {wfd, POLLIN, 0}};
	pthread_mutex_unlock(&r->wait_lock);
	poll(p, wfd >= 0 ? 3 : 2, 10);
	pthread_mutex_lock(&r->wait_lock);
	hvc_dispatch(r->h);
	if (wfd >= 0 && evtchn_wait_fd(r->h, r->port) == wfd) {
		struct pollfd q = {wfd, POLLIN, 0};
		uint64_t v;
		if (poll(&q, 1, 0) == 1)
			(void)!read(wfd, &v, sizeof(v));
	}
	pthread_mutex_unlock(&r->wait_lock);
}

static int xs_ring_read(struct xs_transport *tp, void *buf, size_t len)
{
	struct xs_ring *r = tp->priv;
	struct xenstore_domain_interface *in = r->intf;
	char *p = buf;
	while (len) {
		if (atomic_load(&r->shut))
			return -ECONNRESET;
		uint32_t cons = in->rsp_cons, prod = xs_load(&in->rsp_prod);
		if (prod - cons > XENSTORE_RING_SIZE)
			return -EPROTO;
		if (prod == cons) {
			xs_ring_wait(r);
			continue;
		}
		uint32_t n = prod - cons, chunk = XENSTORE_RING_SIZE - MASK_XENSTORE_IDX(cons);
		if (n > chunk)
			n = chunk;
		if (n > len)
			n = (uint32_t)len;
		memcpy(p, in->rsp + MASK_XENSTORE_IDX(cons), n);
		xs_store(&in->rsp_cons, cons + n);
		evtchn_notify(r->h, r->port);
		p += n;
		len -= n;
	}
	return 0;
}

static int xs_ring_write(struct xs_transport *tp, const void *buf, size_t len)
{
	struct xs_ring *r = tp->priv;
	struct xenstore_domain_interface *in = r->intf;
	const char *p = buf;
	while (len) {
		if (atomic_load(&r->shut))
			return -ECONNRESET;
		uint32_t prod = in->req_prod, cons = xs_load(&in->req_cons);
		if (prod - cons > XENSTORE_RING_SIZE)
			return -EPROTO;
		uint32_t space = XENSTORE_RING_SIZE - (prod - cons);
		if (!space) {
			xs_ring_wait(r);
			continue;
		}
		uint32_t n = space, chunk = XENSTORE_RING_SIZE - MASK_XENSTORE_IDX(prod);
		if (n > chunk)
			n = chunk;
		if (n > len)
			n = (uint32_t)len;
		memcpy(in->req + MASK_XENSTORE_IDX(prod), p, n);
		xs_store(&in->req_prod, prod + n);
		evtchn_notify(r->h, r->port);
		p += n;
		len -= n;
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
	if (r->own_hvc)
		hvc_close(r->h);
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
	pthread_mutex_init(&r->wait_lock, NULL);
	tp->fd = -1;
	tp->priv = r;
	tp->read = xs_ring_read;
	tp->write = xs_ring_write;
	tp->shutdown = xs_ring_shutdown;
	tp->close = xs_ring_close;
	return 0;
fail:
	if (r->own_hvc)
		hvc_close(r->h);
	free(r);
	return ret;
}
