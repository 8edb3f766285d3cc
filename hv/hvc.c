// SPDX-License-Identifier: MIT
// The hypercall client (see hv/hvc.h): framing of hv_hdr + payload + fds
// over SOCK_SEQPACKET, reply validation, the async event queue that
// hvc_dispatch() drains, and the typed wrappers for domain and dom0 ops.
// The hv is trusted, but every reply is checked anyway (size, id, op, fds)
// so a buggy hv yields -EPROTO instead of memory corruption.
#include "hv/hvc_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"

#define HVC_PAYLOAD_MAX (HV_MSG_MAX - sizeof(struct hv_hdr))

static void close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* --- open / close -------------------------------------------------------- */

int hvc_open_fd(int fd, struct hvc **out)
{
	int ret;
	struct hvc *h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	h->sock = fd;
	h->wake_fd = -1;
	h->ep_fd = -1;
	h->next_id = 1;
	h->q_tail = &h->q_head;
	pthread_mutex_init(&h->io_lock, NULL);
	pthread_mutex_init(&h->q_lock, NULL);
	pthread_mutex_init(&h->gnt_lock, NULL);

	h->rxbuf = malloc(HVC_PAYLOAD_MAX);
	if (!h->rxbuf) {
		ret = -ENOMEM;
		goto fail;
	}
	h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->wake_fd < 0) {
		ret = -errno;
		goto fail;
	}
	h->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	if (h->ep_fd < 0) {
		ret = -errno;
		goto fail;
	}
	struct epoll_event ee = {.events = EPOLLIN, .data.u64 = HVC_TAG_SOCK};
	if (epoll_ctl(h->ep_fd, EPOLL_CTL_ADD, h->sock, &ee) < 0) {
		ret = -errno;
		goto fail;
	}
	ee.data.u64 = HVC_TAG_WAKE;
	if (epoll_ctl(h->ep_fd, EPOLL_CTL_ADD, h->wake_fd, &ee) < 0) {
		ret = -errno;
		goto fail;
	}
	ret = evtchn_state_init(h);
	if (ret < 0)
		goto fail;
	*out = h;
	return 0;
fail:
	if (h->ep_fd >= 0)
		close(h->ep_fd);
	if (h->wake_fd >= 0)
		close(h->wake_fd);
	close(h->sock);
	pthread_mutex_destroy(&h->gnt_lock);
	pthread_mutex_destroy(&h->q_lock);
	pthread_mutex_destroy(&h->io_lock);
	free(h->rxbuf);
	free(h);
	return ret;
}

int hvc_open_domain(struct hvc **out)
{
	int fd = 3;
	const char *env = getenv("DRVDOM_HV_FD");
	if (env && *env) {
		char *end;
		long v = strtol(env, &end, 10);
		if (*end || v < 0 || v > INT32_MAX)
			return -EINVAL;
		fd = (int)v;
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	int type;
	socklen_t len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno;
	if (type != SOCK_SEQPACKET)
		return -EPROTOTYPE;
	int fl = fcntl(fd, F_GETFD);
	if (fl >= 0)
		(void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	return hvc_open_fd(fd, out);
}

int hvc_open_dom0(const char *socket_path, struct hvc **out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!socket_path || strlen(socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, socket_path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return hvc_open_fd(fd, out);
}

void hvc_close(struct hvc *h)
{
	if (!h)
		return;
	if (h->gnt_cache && h->gnt_cache_free)
		h->gnt_cache_free(h->gnt_cache);
	if (h->gnt_table && h->gnt_table_detach)
		h->gnt_table_detach(h->gnt_table); /* still open: stands alone */
	evtchn_state_free(h);
	struct hvc_qevt *e = h->q_head;
	while (e) {
		struct hvc_qevt *n = e->next;
		free(e);
		e = n;
	}
	close(h->ep_fd);
	close(h->wake_fd);
	close(h->sock);
	pthread_mutex_destroy(&h->gnt_lock);
	pthread_mutex_destroy(&h->q_lock);
	pthread_mutex_destroy(&h->io_lock);
	free(h->rxbuf);
	free(h);
}

int hvc_fd(const struct hvc *h)
{
	return h->ep_fd;
}

void hvc_wake(struct hvc *h)
{
	uint64_t one = 1;
	/* EAGAIN only if the counter is saturated: it is readable anyway. */
	(void)!write(h->wake_fd, &one, sizeof(one));
}

/* --- framing --------------------------------------------------------------- */

static int hvc_send(struct hvc *h, uint32_t op, uint32_t id, const void *req, size_t len,
		    const int *fds, unsigned nfds)
{
	struct hv_hdr hdr = {.op = op, .id = id, .len = (uint32_t)len, .ret = 0};
	struct iovec iov[2] = {{.iov_base = &hdr, .iov_len = sizeof(hdr)},
			       {.iov_base = (void *)req, .iov_len = len}};
	union {
		char buf[CMSG_SPACE(sizeof(int) * HV_MAX_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
	if (nfds) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	for (;;) {
		ssize_t n = sendmsg(h->sock, &mh, MSG_NOSIGNAL);
		if (n >= 0)
			return (size_t)n == sizeof(hdr) + len ? 0 : -EPROTO;
		if (errno == EINTR)
			continue;
		return -errno;
	}
}

/* One received datagram: header, payload in buf, fds. */
struct hvc_rx {
	struct hv_hdr hdr;
	size_t len;
	int fds[HV_MAX_FDS];
	unsigned nfds;
};

/* Receive one datagram into buf (HVC_PAYLOAD_MAX bytes). Validates the
 * framing: header present, hdr.len equal to what came, nothing truncated.
 * Returns 0, -EAGAIN (nonblocking and nothing there), -ECONNRESET (peer
 * closed), -EPROTO (bad framing: fds closed). */
static int hvc_recv(struct hvc *h, void *buf, struct hvc_rx *rx, bool block)
{
	struct iovec iov[2] = {{.iov_base = &rx->hdr, .iov_len = sizeof(rx->hdr)},
			       {.iov_base = buf, .iov_len = HVC_PAYLOAD_MAX}};
	union {
		char buf[CMSG_SPACE(sizeof(int) * HV_MAX_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct msghdr mh = {.msg_iov = iov,
			    .msg_iovlen = 2,
			    .msg_control = cbuf.buf,
			    .msg_controllen = sizeof(cbuf.buf)};
	ssize_t n;
	for (;;) {
		n = recvmsg(h->sock, &mh, MSG_CMSG_CLOEXEC | (block ? 0 : MSG_DONTWAIT));
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
	rx->nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int tmp[HV_MAX_FDS];
		if (k > HV_MAX_FDS)
			k = HV_MAX_FDS;
		memcpy(tmp, CMSG_DATA(c), k * sizeof(int));
		for (size_t i = 0; i < k; i++) {
			if (rx->nfds < HV_MAX_FDS)
				rx->fds[rx->nfds++] = tmp[i];
			else
				close(tmp[i]);
		}
	}
	if (n == 0)
		return -ECONNRESET;
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n < sizeof(struct hv_hdr) ||
	    rx->hdr.len != (size_t)n - sizeof(struct hv_hdr)) {
		log_warn("hvc: malformed message from the hv (%zd bytes, op %u, len %u)", n,
			 rx->hdr.op, rx->hdr.len);
		close_fds(rx->fds, rx->nfds);
		rx->nfds = 0;
		return -EPROTO;
	}
	rx->len = rx->hdr.len;
	return 0;
}

static void hvc_enqueue(struct hvc *h, struct hvc_qevt *q)
{
	pthread_mutex_lock(&h->q_lock);
	q->next = NULL;
	*h->q_tail = q;
	h->q_tail = &q->next;
	pthread_mutex_unlock(&h->q_lock);
	hvc_wake(h);
}

/* An async event was read (io_lock held): apply its effect on library
 * state now, queue it for hvc_dispatch(). Bad events are dropped with a
 * warning (their fds closed). */
static void hvc_async(struct hvc *h, const void *payload, struct hvc_rx *rx)
{
	size_t want = 0;
	unsigned want_fds = 0;
	switch (rx->hdr.op) {
	case HV_EVT_PORT_BOUND:
		want = sizeof(struct hv_evt_port_bound);
		want_fds = 2;
		break;
	case HV_EVT_PORT_CLOSED:
		want = sizeof(struct hv_evt_port_closed);
		break;
	case HV_EVT_DEVICE_ASSIGNED:
		want = sizeof(struct hv_evt_device_assigned);
		break;
	case HV_EVT_DOMAIN_EXIT:
		want = sizeof(struct hv_evt_domain_exit);
		break;
	case HV_EVT_DOMAIN_RESTARTED:
		want = sizeof(struct hv_evt_domain_restarted);
		break;
	case HV_EVT_DOMAIN_FAILED:
		want = sizeof(struct hv_evt_domain_failed);
		break;
	case HV_EVT_WATCHDOG:
		want = sizeof(struct hv_evt_watchdog);
		break;
	default:
		log_warn("hvc: unknown async event %#x from the hv: ignored", rx->hdr.op);
		close_fds(rx->fds, rx->nfds);
		return;
	}
	if (rx->len != want || rx->nfds != want_fds) {
		log_warn("hvc: async event %#x with %zu bytes and %u fds: ignored", rx->hdr.op,
			 rx->len, rx->nfds);
		close_fds(rx->fds, rx->nfds);
		return;
	}
	struct hvc_qevt *q = calloc(1, sizeof(*q));
	if (!q) {
		log_err("hvc: out of memory: async event %#x lost", rx->hdr.op);
		close_fds(rx->fds, rx->nfds);
		return;
	}
	q->op = rx->hdr.op;
	memcpy(&q->u, payload, want);
	if (q->op == HV_EVT_PORT_BOUND)
		evtchn_on_bound(h, &q->u.bound, rx->fds[0], rx->fds[1]);
	else if (q->op == HV_EVT_PORT_CLOSED)
		evtchn_on_closed(h, q->u.closed.port);
	else if (q->op == HV_EVT_WATCHDOG)
		/* Read by the event loop's thread: it heartbeats from now on. */
		atomic_store_explicit(&h->watchdog_ms, q->u.watchdog.watchdog_ms,
				      memory_order_relaxed);
	hvc_enqueue(h, q);
}

int hvc_call(struct hvc *h, struct hvc_msg *m)
{
	m->rep_len = 0;
	m->nrfds = 0;
	if (m->req_len > HVC_PAYLOAD_MAX)
		return -EMSGSIZE;
	if (m->nfds > HV_MAX_FDS || (m->req_len && !m->req))
		return -EINVAL;
	struct hvc_rx rx;
	int ret;

	pthread_mutex_lock(&h->io_lock);
	void *buf = h->rxbuf;
	uint32_t id = h->next_id++;
	if (h->next_id == 0)
		h->next_id = 1;
	ret = hvc_send(h, m->op, id, m->req, m->req_len, m->fds, m->nfds);
	if (ret < 0)
		goto out;
	for (;;) {
		ret = hvc_recv(h, buf, &rx, true);
		if (ret < 0)
			goto out;
		if (rx.hdr.id == 0) {
			hvc_async(h, buf, &rx);
			continue;
		}
		if (rx.hdr.id != id || rx.hdr.op != m->op) {
			log_warn("hvc: reply op %u id %u does not match call op %u id %u",
				 rx.hdr.op, rx.hdr.id, m->op, id);
			close_fds(rx.fds, rx.nfds);
			ret = -EPROTO;
			goto out;
		}
		break;
	}
	if (rx.hdr.ret > 0 || rx.hdr.ret < -4095) {
		close_fds(rx.fds, rx.nfds);
		ret = -EPROTO;
		goto out;
	}
	if (rx.hdr.ret < 0) {
		close_fds(rx.fds, rx.nfds);
		ret = rx.hdr.ret;
		goto out;
	}
	if (rx.len > m->rep_cap || rx.nfds > m->rfds_cap) {
		log_warn("hvc: reply to op %u too large (%zu bytes, %u fds)", m->op, rx.len,
			 rx.nfds);
		close_fds(rx.fds, rx.nfds);
		ret = -EPROTO;
		goto out;
	}
	if (rx.len)
		memcpy(m->rep, buf, rx.len);
	m->rep_len = rx.len;
	if (rx.nfds)
		memcpy(m->rfds, rx.fds, rx.nfds * sizeof(int));
	m->nrfds = rx.nfds;
	ret = 0;
out:
	pthread_mutex_unlock(&h->io_lock);
	return ret;
}

int hvc_call_exact(struct hvc *h, struct hvc_msg *m)
{
	int ret = hvc_call(h, m);
	if (ret < 0)
		return ret;
	if (m->rep_len != m->rep_cap || m->nrfds != m->rfds_cap) {
		log_warn("hvc: reply to op %u has %zu bytes and %u fds, expected %zu and %u", m->op,
			 m->rep_len, m->nrfds, m->rep_cap, m->rfds_cap);
		close_fds(m->rfds, m->nrfds);
		m->nrfds = 0;
		return -EPROTO;
	}
	return 0;
}

/* --- async events ---------------------------------------------------------- */

static int hvc_read_socket(struct hvc *h)
{
	int ret = 0;
	struct hvc_rx rx;
	pthread_mutex_lock(&h->io_lock);
	void *buf = h->rxbuf;
	for (;;) {
		int r = hvc_recv(h, buf, &rx, false);
		if (r == -EAGAIN)
			break;
		if (r < 0) {
			ret = r;
			break;
		}
		if (rx.hdr.id != 0) {
			/* A reply nobody waits for: only a broken hv sends one. */
			log_warn("hvc: unexpected reply op %u id %u", rx.hdr.op, rx.hdr.id);
			close_fds(rx.fds, rx.nfds);
			ret = -EPROTO;
			break;
		}
		hvc_async(h, buf, &rx);
	}
	pthread_mutex_unlock(&h->io_lock);
	return ret;
}

int hvc_read_events(struct hvc *h)
{
	return hvc_read_socket(h);
}

int hvc_dispatch(struct hvc *h)
{
	int ret = 0, count = 0;
	struct epoll_event evs[32];
	int n = epoll_wait(h->ep_fd, evs, 32, 0);
	for (int i = 0; i < n; i++) {
		uint64_t tag = evs[i].data.u64;
		if (tag == HVC_TAG_SOCK) {
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				int r = hvc_read_socket(h);
				if (r < 0)
					ret = r;
			}
		} else if (tag == HVC_TAG_WAKE) {
			uint64_t v;
			(void)!read(h->wake_fd, &v, sizeof(v));
		} else if (tag & HVC_TAG_PORT) {
			evtchn_on_wait_fd(h, tag);
		}
	}
	for (;;) {
		pthread_mutex_lock(&h->q_lock);
		struct hvc_qevt *q = h->q_head;
		if (q) {
			h->q_head = q->next;
			if (!h->q_head)
				h->q_tail = &h->q_head;
		}
		hvc_domain_exit_fn exit_fn = h->exit_fn;
		void *exit_arg = h->exit_arg;
		hvc_device_assigned_fn dev_fn = h->dev_fn;
		void *dev_arg = h->dev_arg;
		hvc_domain_restarted_fn restarted_fn = h->restarted_fn;
		void *restarted_arg = h->restarted_arg;
		hvc_domain_failed_fn failed_fn = h->failed_fn;
		void *failed_arg = h->failed_arg;
		pthread_mutex_unlock(&h->q_lock);
		if (!q)
			break;
		count++;
		switch (q->op) {
		case HV_EVT_PORT_BOUND:
			evtchn_dispatch_state(h, q->u.bound.port, EVTCHN_EV_BOUND);
			break;
		case HV_EVT_PORT_CLOSED:
			evtchn_dispatch_state(h, q->u.closed.port, EVTCHN_EV_CLOSED);
			break;
		case HV_EVT_DEVICE_ASSIGNED:
			q->u.dev.name[HV_DEVNAME_MAX - 1] = 0;
			if (dev_fn)
				dev_fn(dev_arg, q->u.dev.name);
			break;
		case HV_EVT_DOMAIN_EXIT:
			q->u.exit.name[HV_NAME_MAX - 1] = 0;
			if (exit_fn)
				exit_fn(exit_arg, &q->u.exit);
			break;
		case HV_EVT_DOMAIN_RESTARTED:
			q->u.restarted.name[HV_NAME_MAX - 1] = 0;
			if (restarted_fn)
				restarted_fn(restarted_arg, &q->u.restarted);
			break;
		case HV_EVT_DOMAIN_FAILED:
			q->u.failed.name[HV_NAME_MAX - 1] = 0;
			if (failed_fn)
				failed_fn(failed_arg, &q->u.failed);
			break;
		}
		free(q);
	}
	count += evtchn_deliver(h);
	return ret < 0 ? ret : count;
}

void hvc_set_domain_exit_cb(struct hvc *h, hvc_domain_exit_fn fn, void *arg)
{
	pthread_mutex_lock(&h->q_lock);
	h->exit_fn = fn;
	h->exit_arg = arg;
	pthread_mutex_unlock(&h->q_lock);
}

void hvc_set_device_assigned_cb(struct hvc *h, hvc_device_assigned_fn fn, void *arg)
{
	pthread_mutex_lock(&h->q_lock);
	h->dev_fn = fn;
	h->dev_arg = arg;
	pthread_mutex_unlock(&h->q_lock);
}

/* --- typed wrappers ---------------------------------------------------------- */

int hvc_domain_info(struct hvc *h, domid_t domid, struct hv_domain_info *out)
{
	struct hv_domain_info_req req = {.domid = domid};
	struct hvc_msg m = {.op = HV_OP_DOMAIN_INFO,
			    .req = &req,
			    .req_len = sizeof(req),
			    .rep = out,
			    .rep_cap = sizeof(*out)};
	int ret = hvc_call_exact(h, &m);
	if (ret == 0)
		out->name[HV_NAME_MAX - 1] = 0;
	return ret;
}

int hvc_self_domid(struct hvc *h, domid_t *out)
{
	if (atomic_load_explicit(&h->self_known, memory_order_acquire)) {
		*out = h->self;
		return 0;
	}
	struct hv_domain_info info;
	int ret = hvc_domain_info(h, DOMID_SELF, &info);
	if (ret < 0)
		return ret;
	h->self = info.domid;
	/* release: pairs with the acquire load above. */
	atomic_store_explicit(&h->self_known, 1, memory_order_release);
	*out = info.domid;
	return 0;
}

int hvc_device_get(struct hvc *h, const char *name, int *fd_out)
{
	struct hv_device_req req;
	memset(&req, 0, sizeof(req));
	if (!name || strlen(name) >= sizeof(req.name))
		return -ENAMETOOLONG;
	strcpy(req.name, name);
	int fd = -1;
	struct hvc_msg m = {.op = HV_OP_DEVICE_GET,
			    .req = &req,
			    .req_len = sizeof(req),
			    .rfds = &fd,
			    .rfds_cap = 1};
	int ret = hvc_call_exact(h, &m);
	if (ret == 0)
		*fd_out = fd;
	return ret;
}

int hvc_heartbeat(struct hvc *h)
{
	struct hvc_msg m = {.op = HV_OP_HEARTBEAT};
	return hvc_call_exact(h, &m);
}

int hvc_watchdog_stall(struct hvc *h, uint32_t stalled_ms, const char *why)
{
	struct hv_watchdog_stall_req q = {.stalled_ms = stalled_ms};
	/* Truncated to the field, always NUL-terminated. */
	snprintf(q.why, sizeof(q.why), "%s", why ? why : "");
	struct hvc_msg m = {.op = HV_OP_WATCHDOG_STALL, .req = &q, .req_len = sizeof(q)};
	return hvc_call_exact(h, &m);
}

int hvc_domctl_create(struct hvc *h, const struct hvc_create_args *a, struct hv_create_rep *out)
{
	if (!a || !a->kernel || !a->name)
		return -EINVAL;
	if (a->kernel[0] != '/')
		return -EINVAL;
	size_t nlen = strlen(a->name);
	if (nlen == 0 || nlen >= HV_NAME_MAX)
		return -ENAMETOOLONG;
	size_t pol = a->policy ? sizeof(struct hv_policy_req) : 0;
	size_t total = sizeof(struct hv_create_req) + pol + strlen(a->kernel) + 1;
	uint32_t nstr = 1;
	for (const char *const *p = a->argv; p && *p; p++, nstr++)
		total += strlen(*p) + 1;
	if (total > HVC_PAYLOAD_MAX)
		return -E2BIG;
	char *req = calloc(1, total);
	if (!req)
		return -ENOMEM;
	struct hv_create_req *cr = (struct hv_create_req *)req;
	cr->flags = a->flags | (a->policy ? HV_CREATE_F_POLICY : 0);
	cr->nr_strings = nstr;
	cr->memory = a->memory;
	memcpy(cr->name, a->name, nlen);
	if (a->policy)
		memcpy(req + sizeof(*cr), a->policy, pol);
	char *s = req + sizeof(*cr) + pol;
	size_t k = strlen(a->kernel) + 1;
	memcpy(s, a->kernel, k);
	s += k;
	for (const char *const *p = a->argv; p && *p; p++) {
		k = strlen(*p) + 1;
		memcpy(s, *p, k);
		s += k;
	}
	struct hv_create_rep rep;
	struct hvc_msg m = {.op = HV_OP_DOMCTL_CREATE,
			    .req = req,
			    .req_len = total,
			    .rep = &rep,
			    .rep_cap = sizeof(rep)};
	int ret = hvc_call_exact(h, &m);
	free(req);
	if (ret == 0 && out)
		*out = rep;
	return ret;
}

static int hvc_domid_op(struct hvc *h, uint32_t op, domid_t domid)
{
	struct hv_domid_req req = {.domid = domid};
	struct hvc_msg m = {.op = op, .req = &req, .req_len = sizeof(req)};
	return hvc_call_exact(h, &m);
}

int hvc_domctl_destroy(struct hvc *h, domid_t domid)
{
	return hvc_domid_op(h, HV_OP_DOMCTL_DESTROY, domid);
}

int hvc_domctl_kill(struct hvc *h, domid_t domid)
{
	return hvc_domid_op(h, HV_OP_DOMCTL_KILL, domid);
}

int hvc_domctl_pause(struct hvc *h, domid_t domid)
{
	return hvc_domid_op(h, HV_OP_DOMCTL_PAUSE, domid);
}

int hvc_domctl_unpause(struct hvc *h, domid_t domid)
{
	return hvc_domid_op(h, HV_OP_DOMCTL_UNPAUSE, domid);
}

int hvc_domctl_assign_device(struct hvc *h, domid_t domid, const char *name, int fd)
{
	struct hv_assign_device_req req;
	memset(&req, 0, sizeof(req));
	req.domid = domid;
	if (!name || strlen(name) >= sizeof(req.name))
		return -ENAMETOOLONG;
	if (fd < 0)
		return -EBADF;
	strcpy(req.name, name);
	struct hvc_msg m = {.op = HV_OP_DOMCTL_ASSIGN_DEVICE,
			    .req = &req,
			    .req_len = sizeof(req),
			    .fds = &fd,
			    .nfds = 1};
	return hvc_call_exact(h, &m);
}

int hvc_domctl_revoke_device(struct hvc *h, domid_t domid, const char *name)
{
	struct hv_assign_device_req req;
	memset(&req, 0, sizeof(req));
	req.domid = domid;
	if (!name || strlen(name) >= sizeof(req.name))
		return -ENAMETOOLONG;
	strcpy(req.name, name);
	struct hvc_msg m = {.op = HV_OP_DOMCTL_REVOKE_DEVICE, .req = &req, .req_len = sizeof(req)};
	return hvc_call_exact(h, &m);
}

int hvc_domctl_list(struct hvc *h, struct hv_domain_info *buf, uint32_t cap, uint32_t *n)
{
	size_t max = (HVC_PAYLOAD_MAX - sizeof(uint32_t)) / sizeof(struct hv_domain_info);
	char *rep = malloc(HVC_PAYLOAD_MAX);
	if (!rep)
		return -ENOMEM;
	struct hvc_msg m = {.op = HV_OP_DOMCTL_LIST, .rep = rep, .rep_cap = HVC_PAYLOAD_MAX};
	int ret = hvc_call(h, &m);
	if (ret < 0)
		goto out;
	uint32_t count;
	if (m.nrfds != 0 || m.rep_len < sizeof(count)) {
		close_fds(m.rfds, m.nrfds);
		ret = -EPROTO;
		goto out;
	}
	memcpy(&count, rep, sizeof(count));
	if (count > max || m.rep_len != sizeof(count) + count * sizeof(struct hv_domain_info)) {
		ret = -EPROTO;
		goto out;
	}
	if (count > cap)
		count = cap;
	for (uint32_t i = 0; i < count; i++) {
		memcpy(&buf[i], rep + sizeof(count) + i * sizeof(struct hv_domain_info),
		       sizeof(struct hv_domain_info));
		buf[i].name[HV_NAME_MAX - 1] = 0;
	}
	*n = count;
out:
	free(rep);
	return ret;
}

int hvc_domctl_subscribe(struct hvc *h)
{
	struct hvc_msg m = {.op = HV_OP_DOMCTL_SUBSCRIBE};
	return hvc_call_exact(h, &m);
}

int hvc_domctl_set_policy(struct hvc *h, const struct hv_policy_req *p)
{
	if (!p)
		return -EINVAL;
	struct hvc_msg m = {.op = HV_OP_DOMCTL_SET_POLICY, .req = p, .req_len = sizeof(*p)};
	return hvc_call_exact(h, &m);
}

int hvc_domctl_set_affinity(struct hvc *h, const struct hv_affinity_req *q)
{
	if (!q)
		return -EINVAL;
	struct hvc_msg m = {.op = HV_OP_DOMCTL_SET_AFFINITY, .req = q, .req_len = sizeof(*q)};
	return hvc_call_exact(h, &m);
}

uint32_t hvc_watchdog_ms(const struct hvc *h)
{
	return atomic_load_explicit(&((struct hvc *)h)->watchdog_ms, memory_order_relaxed);
}

void hvc_set_domain_restarted_cb(struct hvc *h, hvc_domain_restarted_fn fn, void *arg)
{
	pthread_mutex_lock(&h->q_lock);
	h->restarted_fn = fn;
	h->restarted_arg = arg;
	pthread_mutex_unlock(&h->q_lock);
}

void hvc_set_domain_failed_cb(struct hvc *h, hvc_domain_failed_fn fn, void *arg)
{
	pthread_mutex_lock(&h->q_lock);
	h->failed_fn = fn;
	h->failed_arg = arg;
	pthread_mutex_unlock(&h->q_lock);
}
