// SPDX-License-Identifier: MIT
// One hypercall, from datagram to reply: read a message and its fds from a
// connection, check it with hv_call_check (a malformed one kills the sender,
// or closes a dom0 connection), refuse dom0-only ops to others with -EPERM,
// then run the op and answer. Arguments are checked here or in the file that
// owns the object; a bad one gets Xen's errno (docs/hv.md, "Hypercalls").
#include "common/log.h"
#include "hv/hv_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static uint8_t hv_rxbuf[HV_MSG_MAX + 1];

void hv_conn_close(struct hv_conn *c)
{
	hv_conn_release(c);
	for (struct hv_conn **pp = &hv.conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	epoll_ctl(hv.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	log_debug("domain 0: connection %u closed", c->serial);
	free(c);
}

void hv_conns_reap(void)
{
	struct hv_conn *c = hv.conns;
	while (c) {
		struct hv_conn *next = c->next;
		if (c->dead)
			hv_conn_close(c);
		c = next;
	}
}

void hv_conn_malformed(struct hv_conn *c, const char *opname, const char *why)
{
	if (c->dead)
		return;
	c->dead = true;
	epoll_ctl(hv.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	struct hv_dom *d = c->dom;
	if (d->domid == 0) {
		/* Closed from the main loop (hv_conns_reap): we may be deep in
		 * another operation that walks the connection list. */
		log_warn("domain 0 (connection %u): malformed hypercall %s: %s: connection closed",
			 c->serial, opname, why);
		return;
	}
	log_warn("domain %u (%s): malformed hypercall %s: %s: killed", d->domid, d->name, opname,
		 why);
	if (!d->exit_reason)
		d->exit_reason = HV_EXIT_MALFORMED;
	hv_dom_signal(d, SIGKILL);
}

static void hv_close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static domid_t hv_self(struct hv_conn *c, domid_t id)
{
	return id == DOMID_SELF ? c->dom->domid : id;
}

/* A domctl target: an existing domain other than dom0. */
static int hv_domctl_target(domid_t id, struct hv_dom **out)
{
	if (id == 0 || id == DOMID_SELF)
		return -EINVAL;
	struct hv_dom *d = hv_dom_get(id);
	if (!d)
		return -ESRCH;
	*out = d;
	return 0;
}

static void hv_op(struct hv_conn *c, const struct hv_hdr *h, const uint8_t *p, int *fds,
		  unsigned nfds)
{
	struct hv_dom *d = c->dom;
	bool dom0 = d->domid == 0;
	int r = 0;
	union {
		struct hv_domain_info info;
		struct hv_seg_alloc_rep seg;
		struct hv_gnttab_setup_rep gnttab;
		struct hv_evtchn_port_rep port;
		struct hv_evtchn_status_rep status;
		struct hv_create_rep create;
		uint8_t raw[HV_MSG_MAX];
	} rep;
	size_t rlen = 0;
	int rfds[HV_MAX_FDS];
	unsigned nrfds = 0;
	bool close_rfds = false;

	switch (h->op) {
	case HV_OP_DOMAIN_INFO: {
		struct hv_domain_info_req q;
		memcpy(&q, p, sizeof(q));
		domid_t id = hv_self(c, q.domid);
		struct hv_dom *t = hv_dom_get(id);
		struct hv_rec *rec = id ? hv_rec_get(id) : NULL;
		if (id != d->domid && !dom0)
			r = -EPERM;
		else if (t)
			hv_dom_fill_info(t, dom0, &rep.info);
		else if (rec)
			hv_rec_fill_info(rec, dom0, &rep.info);
		else
			r = -ESRCH;
		if (!r)
			rlen = sizeof(rep.info);
		break;
	}
	case HV_OP_SEG_ALLOC: {
		struct hv_seg_alloc_req q;
		memcpy(&q, p, sizeof(q));
		domid_t peer = hv_self(c, q.peer);
		struct hv_seg *s;
		if (peer == d->domid)
			r = -EINVAL;
		else if (!hv_dom_get(peer))
			r = -ESRCH;
		else if (!(r = hv_seg_alloc(d, c, peer, q.npages, &s))) {
			rep.seg = (struct hv_seg_alloc_rep){s->id, s->first_frame, s->npages, 0};
			rlen = sizeof(rep.seg);
			rfds[nrfds++] = s->fd;
		}
		break;
	}
	case HV_OP_SEG_FREE: {
		struct hv_seg_free_req q;
		memcpy(&q, p, sizeof(q));
		r = hv_seg_free(d, c, q.seg_id);
		break;
	}
	case HV_OP_GNTTAB_SETUP:
		rep.gnttab.nr_entries = d->gnt_nr;
		rlen = sizeof(rep.gnttab);
		rfds[nrfds++] = d->gnt_fd;
		break;
	case HV_OP_GNT_MAP: {
		uint32_t n;
		struct hv_gnt_map_op ops[HV_BATCH_MAX];
		memcpy(&n, p, 4);
		memcpy(ops, p + 4, n * sizeof(ops[0]));
		struct hv_gnt_map_res res[HV_BATCH_MAX];
		hv_gnt_map(c, ops, n, res, rfds, &nrfds);
		memcpy(rep.raw, &n, 4);
		memcpy(rep.raw + 4, res, n * sizeof(res[0]));
		rlen = 4 + n * sizeof(res[0]);
		break;
	}
	case HV_OP_GNT_UNMAP: {
		uint32_t n, hd;
		memcpy(&n, p, 4);
		memcpy(rep.raw, &n, 4);
		for (uint32_t i = 0; i < n; i++) {
			memcpy(&hd, p + 4 + 4 * i, 4);
			int16_t st = hv_gnt_unmap_one(d, c, hd);
			memcpy(rep.raw + 4 + 2 * i, &st, 2);
		}
		rlen = 4 + 2 * n;
		break;
	}
	case HV_OP_GNT_COPY: {
		uint32_t n;
		memcpy(&n, p, 4);
		memcpy(rep.raw, p, h->len);
		struct hv_gnt_copy ops[HV_COPY_BATCH_MAX];
		memcpy(ops, p + 8, n * sizeof(ops[0]));
		hv_gnt_copy(c, ops, n);
		memcpy(rep.raw + 8, ops, n * sizeof(ops[0]));
		rlen = h->len;
		break;
	}
	case HV_OP_EVTCHN_ALLOC_UNBOUND: {
		struct hv_evtchn_alloc_unbound_req q;
		memcpy(&q, p, sizeof(q));
		domid_t id = hv_self(c, q.dom), remote = hv_self(c, q.remote_dom);
		struct hv_dom *t = hv_dom_get(id);
		if (id != d->domid && !dom0)
			r = -EPERM;
		else if (!t || t->state == HV_DOM_DYING || !hv_dom_get(remote))
			r = -ESRCH;
		else if (!(r = hv_evtchn_alloc_unbound(t, t == d ? c : t->conn, remote,
						       &rep.port.port)))
			rlen = sizeof(rep.port);
		break;
	}
	case HV_OP_EVTCHN_BIND_INTERDOMAIN: {
		struct hv_evtchn_bind_interdomain_req q;
		memcpy(&q, p, sizeof(q));
		int efd[2];
		r = hv_evtchn_bind(c, hv_self(c, q.remote_dom), q.remote_port, &rep.port.port, efd);
		if (!r) {
			rlen = sizeof(rep.port);
			rfds[nrfds++] = efd[0];
			rfds[nrfds++] = efd[1];
			close_rfds = true;
		}
		break;
	}
	case HV_OP_EVTCHN_CLOSE: {
		struct hv_evtchn_close_req q;
		memcpy(&q, p, sizeof(q));
		r = hv_evtchn_close(d, c, q.port);
		break;
	}
	case HV_OP_EVTCHN_STATUS: {
		struct hv_evtchn_status_req q;
		memcpy(&q, p, sizeof(q));
		domid_t id = hv_self(c, q.dom);
		struct hv_dom *t = hv_dom_get(id);
		if (id != d->domid && !dom0)
			r = -EPERM;
		else if (!t)
			r = -ESRCH;
		else if (!(r = hv_evtchn_status(t, q.port, &rep.status)))
			rlen = sizeof(rep.status);
		break;
	}
	case HV_OP_DEVICE_GET: {
		struct hv_device_req q;
		memcpy(&q, p, sizeof(q));
		int fd;
		if (hv_call_devname_check(q.name, sizeof(q.name)))
			r = -EINVAL;
		else if (!(r = hv_device_get(d, q.name, &fd))) {
			rfds[nrfds++] = fd;
			close_rfds = true;
		}
		break;
	}
	case HV_OP_HEARTBEAT:
		hv_rec_heartbeat(d);
		break;
	case HV_OP_WATCHDOG_STALL: {
		struct hv_watchdog_stall_req q;
		memcpy(&q, p, sizeof(q));
		r = hv_rec_watchdog_stall(d, &q);
		break;
	}
	case HV_OP_STORE_SEG: {
		struct hv_seg *s = NULL;
		for (s = d->segs; s && s->first_frame != d->store_frame; s = s->next)
			;
		if (dom0 || !d->store_frame || !s) {
			r = -ENOENT;
			break;
		}
		rep.seg = (struct hv_seg_alloc_rep){s->id, s->first_frame, s->npages, 0};
		rlen = sizeof(rep.seg);
		rfds[nrfds++] = s->fd;
		break;
	}
	case HV_OP_DOMCTL_CREATE: {
		struct hv_create_req q;
		const char *strs[256 + 1];
		memcpy(&q, p, sizeof(q));
		hv_call_create_strings(p, h->len, strs, 256); /* checked already */
		strs[q.nr_strings] = NULL;
		struct hv_policy_req pol, *polp = NULL;
		if (q.flags & HV_CREATE_F_POLICY) {
			memcpy(&pol, p + sizeof(q), sizeof(pol));
			polp = &pol;
		}
		if (!(r = hv_domctl_create(c, &q, polp, strs, &rep.create)))
			rlen = sizeof(rep.create);
		break;
	}
	case HV_OP_DOMCTL_DESTROY:
	case HV_OP_DOMCTL_KILL:
	case HV_OP_DOMCTL_PAUSE:
	case HV_OP_DOMCTL_UNPAUSE: {
		struct hv_domid_req q;
		struct hv_dom *t;
		memcpy(&q, p, sizeof(q));
		if ((r = hv_domctl_target(q.domid, &t))) {
			/* A domain between instances (restarting, preserved
			 * dead, failed) has only its record: destroy drops it. */
			if (r == -ESRCH && h->op == HV_OP_DOMCTL_DESTROY)
				r = hv_rec_destroy(q.domid);
			break;
		}
		if (h->op == HV_OP_DOMCTL_PAUSE || h->op == HV_OP_DOMCTL_UNPAUSE) {
			bool pause = h->op == HV_OP_DOMCTL_PAUSE;
			if (t->state == HV_DOM_DYING)
				r = -EINVAL;
			else if (!(r = hv_dom_signal(t, pause ? SIGSTOP : SIGCONT)))
				t->state = pause ? HV_DOM_PAUSED : HV_DOM_RUNNING;
			if (!r && !pause)
				hv_rec_heartbeat(t); /* the watchdog slept with it */
			break;
		}
		if (h->op == HV_OP_DOMCTL_KILL) {
			r = hv_dom_signal(t, SIGKILL);
			break;
		}
		/* DESTROY answers once the domain is gone (hv_dom_reap). */
		struct hv_waiter *w = calloc(1, sizeof(*w));
		if (!w) {
			r = -ENOMEM;
			break;
		}
		if (!t->exit_reason)
			t->exit_reason = HV_EXIT_DESTROYED;
		if ((r = hv_dom_signal(t, SIGKILL))) {
			free(w);
			break;
		}
		*w = (struct hv_waiter){t->waiters, c, h->op, h->id};
		t->waiters = w;
		return;
	}
	case HV_OP_DOMCTL_ASSIGN_DEVICE: {
		struct hv_assign_device_req q;
		struct hv_dom *t;
		memcpy(&q, p, sizeof(q));
		if (hv_call_devname_check(q.name, sizeof(q.name)))
			r = -EINVAL;
		else if (!(r = hv_domctl_target(q.domid, &t)) &&
			 !(r = hv_device_assign(t, q.name, fds[0]))) {
			if (t->rec)
				hv_rec_device_assigned(t->rec, q.name, fds[0]);
			fds[0] = -1; /* the domain's now */
		}
		break;
	}
	case HV_OP_DOMCTL_REVOKE_DEVICE: {
		struct hv_assign_device_req q;
		struct hv_dom *t;
		int fd;
		memcpy(&q, p, sizeof(q));
		if (hv_call_devname_check(q.name, sizeof(q.name)))
			r = -EINVAL;
		else if (!(r = hv_domctl_target(q.domid, &t))) {
			/* Always forget the copy kept for restarts: a device
			 * detached while taken must not come back with the
			 * next instance. */
			if (t->rec)
				hv_rec_device_revoked(t->rec, q.name);
			if (!(r = hv_device_get(t, q.name, &fd)))
				close(fd);
		} else if (r == -ESRCH && hv_rec_get(q.domid)) {
			hv_rec_device_revoked(hv_rec_get(q.domid), q.name);
			r = -ENOENT; /* between instances: nothing untaken */
		}
		break;
	}
	case HV_OP_DOMCTL_LIST: {
		uint32_t n = 0;
		for (unsigned i = 0; i < DOMID_FIRST_FREE; i++) {
			struct hv_domain_info info;
			if (hv.doms[i])
				hv_dom_fill_info(hv.doms[i], true, &info);
			else if (hv.recs[i])
				hv_rec_fill_info(hv.recs[i], true, &info);
			else
				continue;
			if (4 + (n + 1) * sizeof(info) > HV_MSG_MAX - sizeof(struct hv_hdr))
				break; /* dead records past the live ones: truncated */
			memcpy(rep.raw + 4 + n * sizeof(info), &info, sizeof(info));
			n++;
		}
		memcpy(rep.raw, &n, 4);
		rlen = 4 + n * sizeof(struct hv_domain_info);
		break;
	}
	case HV_OP_DOMCTL_SUBSCRIBE:
		c->subscribed = true;
		break;
	case HV_OP_DOMCTL_SET_POLICY: {
		struct hv_policy_req q;
		memcpy(&q, p, sizeof(q));
		r = hv_rec_set_policy(&q);
		break;
	}
	case HV_OP_DOMCTL_SET_AFFINITY: {
		struct hv_affinity_req q;
		memcpy(&q, p, sizeof(q));
		r = hv_rec_set_affinity(&q);
		break;
	}
	}
	hv_close_fds(fds, nfds);
	hv_send(c, h->op, h->id, r, r ? NULL : rep.raw, r ? 0 : rlen, r ? NULL : rfds,
		r ? 0 : nrfds);
	if (close_rfds)
		hv_close_fds(rfds, nrfds);
}

void hv_conn_readable(struct hv_conn *c)
{
	int fds[HV_MAX_FDS + 1];
	unsigned nfds = 0;
	union {
		char buf[CMSG_SPACE(sizeof(int) * (HV_MAX_FDS + 1))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {hv_rxbuf, sizeof(hv_rxbuf)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cm.buf,
			    .msg_controllen = sizeof(cm.buf)};
	ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		n = 0; /* ECONNRESET and the like: as EOF */
		/* A failed recvmsg leaves msg_controllen as we set it: the
		 * buffer holds an earlier message's fds (stack leftovers), and
		 * "closing" them closed live fds of other domains (a dying
		 * domain's ECONNRESET closed a guest's segment). */
		mh.msg_controllen = 0;
	}
	for (struct cmsghdr *ch = CMSG_FIRSTHDR(&mh); ch; ch = CMSG_NXTHDR(&mh, ch)) {
		if (ch->cmsg_level != SOL_SOCKET || ch->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned k = (unsigned)((ch->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (unsigned i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(ch) + i * sizeof(int), sizeof(int));
			if (nfds < HV_MAX_FDS + 1)
				fds[nfds++] = fd;
			else
				close(fd);
		}
	}
	if (n == 0) {
		hv_close_fds(fds, nfds);
		if (c->dom->domid == 0) {
			hv_conn_close(c);
		} else {
			/* The domain closed its socket: it lives on, deaf. */
			epoll_ctl(hv.epfd, EPOLL_CTL_DEL, c->fd, NULL);
			c->dead = true;
		}
		return;
	}
	const struct hv_op_desc *desc;
	const char *why;
	bool trunc = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || nfds > HV_MAX_FDS;
	if (hv_call_check(hv_rxbuf, (size_t)n, nfds, trunc, &desc, &why)) {
		hv_close_fds(fds, nfds);
		char opname[32];
		if (desc)
			snprintf(opname, sizeof(opname), "%s", desc->name);
		else if ((size_t)n >= sizeof(struct hv_hdr))
			snprintf(opname, sizeof(opname), "op %u", ((struct hv_hdr *)hv_rxbuf)->op);
		else
			snprintf(opname, sizeof(opname), "(no header)");
		hv_conn_malformed(c, opname, why);
		return;
	}
	struct hv_hdr h;
	memcpy(&h, hv_rxbuf, sizeof(h));
	if (desc->dom0_only && c->dom->domid != 0) {
		hv_close_fds(fds, nfds);
		hv_send(c, h.op, h.id, -EPERM, NULL, 0, NULL, 0);
		return;
	}
	hv_op(c, &h, hv_rxbuf + sizeof(h), fds, nfds);
}
