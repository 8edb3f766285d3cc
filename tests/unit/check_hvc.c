// SPDX-License-Identifier: MIT
// Unit tests for the hypercall client's framing and reply validation
// (hv/hvc.h) and the library layers above it, against a fake peer on a
// socketpair (a thread that plays a scripted hv). This proves framing only:
// ids echoed, sizes and fds checked, async events applied at once and their
// callbacks run by hvc_dispatch, a map cache that maps a segment once,
// copy batches split at HV_COPY_BATCH_MAX, event channel notify/deliver,
// mask/unmask re-delivery. Behaviour against the real hv is the twodom
// integration suite's job.
#include "hv/hvc.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "grant/gnt.h"
#include "hv/evloop.h"
#include "hv/evtchn.h"

/* --- the fake peer ---------------------------------------------------------- */

struct req {
	struct hv_hdr hdr;
	char payload[HV_MSG_MAX];
	size_t len;
	int fds[HV_MAX_FDS];
	unsigned nfds;
};

static int peer_recv(int fd, struct req *r)
{
	struct iovec iov[2] = {{&r->hdr, sizeof(r->hdr)}, {r->payload, sizeof(r->payload)}};
	union {
		char b[CMSG_SPACE(sizeof(int) * HV_MAX_FDS)];
		struct cmsghdr a;
	} cb;
	struct msghdr mh = {
	    .msg_iov = iov, .msg_iovlen = 2, .msg_control = cb.b, .msg_controllen = sizeof(cb.b)};
	ssize_t n = recvmsg(fd, &mh, 0);
	if (n <= 0)
		return -1;
	r->len = (size_t)n - sizeof(r->hdr);
	r->nfds = 0;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_type == SCM_RIGHTS) {
		r->nfds = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		memcpy(r->fds, CMSG_DATA(c), r->nfds * sizeof(int));
	}
	return 0;
}

/* Send header + payload; hdr_len overrides the header's len if >= 0. */
static void peer_send(int fd, uint32_t op, uint32_t id, int32_t ret, const void *p, size_t len,
		      const int *fds, unsigned nfds, long hdr_len)
{
	struct hv_hdr h = {.op = op,
			   .id = id,
			   .len = hdr_len >= 0 ? (uint32_t)hdr_len : (uint32_t)len,
			   .ret = ret};
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)p, len}};
	union {
		char b[CMSG_SPACE(sizeof(int) * HV_MAX_FDS)];
		struct cmsghdr a;
	} cb;
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
	if (nfds) {
		memset(&cb, 0, sizeof(cb));
		mh.msg_control = cb.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	ck_assert_int_ge(sendmsg(fd, &mh, MSG_NOSIGNAL), 0);
}

struct fake {
	int fd;
	void (*script)(struct fake *f);
	pthread_t th;
	int calls;
	int aux[8];
};

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	f->script(f);
	return NULL;
}

static struct hvc *start(struct fake *f, void (*script)(struct fake *))
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	struct hvc *h;
	ck_assert_int_eq(hvc_open_fd(sv[0], &h), 0);
	f->fd = sv[1];
	f->script = script;
	pthread_create(&f->th, NULL, fake_main, f);
	return h;
}

static void finish(struct fake *f, struct hvc *h)
{
	hvc_close(h);
	pthread_join(f->th, NULL);
	close(f->fd);
}

static int nfds_open(void)
{
	int n = 0;
	for (int fd = 0; fd < 256; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

/* --- framing ----------------------------------------------------------------- */

static void s_info(struct fake *f)
{
	struct req r;
	while (peer_recv(f->fd, &r) == 0) {
		f->calls++;
		ck_assert_uint_eq(r.hdr.op, HV_OP_DOMAIN_INFO);
		ck_assert_uint_eq(r.hdr.len, sizeof(struct hv_domain_info_req));
		ck_assert_int_eq(r.hdr.ret, 0);
		ck_assert_uint_ne(r.hdr.id, 0);
		struct hv_domain_info_req q;
		memcpy(&q, r.payload, sizeof(q));
		if (q.domid == 99) {
			peer_send(f->fd, r.hdr.op, r.hdr.id, -ESRCH, NULL, 0, NULL, 0, -1);
			continue;
		}
		struct hv_domain_info di = {.domid = 7, .state = HV_DOM_RUNNING};
		memset(di.name, 'x', sizeof(di.name)); /* unterminated: must be cut */
		peer_send(f->fd, r.hdr.op, r.hdr.id, 0, &di, sizeof(di), NULL, 0, -1);
	}
}

START_TEST(call_roundtrip_and_errno)
{
	struct fake f = {0};
	struct hvc *h = start(&f, s_info);
	struct hv_domain_info di;
	ck_assert_int_eq(hvc_domain_info(h, DOMID_SELF, &di), 0);
	ck_assert_uint_eq(di.domid, 7);
	ck_assert_uint_eq(di.name[HV_NAME_MAX - 1], 0);
	ck_assert_int_eq(hvc_domain_info(h, 99, &di), -ESRCH);
	domid_t self;
	ck_assert_int_eq(hvc_self_domid(h, &self), 0);
	ck_assert_int_eq(hvc_self_domid(h, &self), 0); /* cached */
	ck_assert_uint_eq(self, 7);
	finish(&f, h);
	ck_assert_int_eq(f.calls, 3);
}
END_TEST

/* Each reply is broken in one way, in order. */
static void s_bad(struct fake *f)
{
	struct req r;
	struct hv_domain_info di = {.domid = 1};
	int efd = f->aux[0];
	for (int i = 0; peer_recv(f->fd, &r) == 0; i++) {
		switch (i) {
		case 0: /* wrong id */
			peer_send(f->fd, r.hdr.op, r.hdr.id + 1, 0, &di, sizeof(di), NULL, 0, -1);
			break;
		case 1: /* len disagrees with the datagram */
			peer_send(f->fd, r.hdr.op, r.hdr.id, 0, &di, sizeof(di), NULL, 0, 8);
			break;
		case 2: /* payload too small for the op */
			peer_send(f->fd, r.hdr.op, r.hdr.id, 0, &di, 10, NULL, 0, -1);
			break;
		case 3: /* too large */
			peer_send(f->fd, r.hdr.op, r.hdr.id, 0, r.payload, 2000, NULL, 0, -1);
			break;
		case 4: /* unexpected fd */
			peer_send(f->fd, r.hdr.op, r.hdr.id, 0, &di, sizeof(di), &efd, 1, -1);
			break;
		case 5: /* positive ret */
			peer_send(f->fd, r.hdr.op, r.hdr.id, 5, &di, sizeof(di), NULL, 0, -1);
			break;
		case 6: /* wrong op */
			peer_send(f->fd, HV_OP_HEARTBEAT, r.hdr.id, 0, NULL, 0, NULL, 0, -1);
			break;
		case 7: /* shorter than a header */
			ck_assert_int_eq(send(f->fd, "abc", 3, 0), 3);
			break;
		default: /* fine again */
			peer_send(f->fd, r.hdr.op, r.hdr.id, 0, &di, sizeof(di), NULL, 0, -1);
		}
	}
	close(efd);
}

START_TEST(bad_replies_are_eproto)
{
	struct fake f = {0};
	f.aux[0] = eventfd(0, EFD_CLOEXEC); /* the fake's stray fd */
	struct hvc *h = start(&f, s_bad);
	int before = nfds_open();
	struct hv_domain_info di;
	for (int i = 0; i < 8; i++)
		ck_assert_msg(hvc_domain_info(h, DOMID_SELF, &di) == -EPROTO, "case %d", i);
	ck_assert_int_eq(hvc_domain_info(h, DOMID_SELF, &di), 0);
	ck_assert_int_eq(nfds_open(), before); /* the fd we got was closed */
	finish(&f, h);
}
END_TEST

static void s_hangup(struct fake *f)
{
	struct req r;
	ck_assert_int_eq(peer_recv(f->fd, &r), 0);
	shutdown(f->fd, SHUT_RDWR);
}

START_TEST(hv_gone_is_econnreset)
{
	struct fake f = {0};
	struct hvc *h = start(&f, s_hangup);
	ck_assert_int_eq(hvc_heartbeat(h), -ECONNRESET);
	int r = hvc_heartbeat(h);
	ck_assert(r == -EPIPE || r == -ECONNRESET);
	ck_assert_int_eq(hvc_dispatch(h), -ECONNRESET);
	finish(&f, h);
}
END_TEST

START_TEST(request_limits)
{
	struct fake f = {0};
	struct hvc *h = start(&f, s_hangup);
	static char big[HV_MSG_MAX];
	struct hvc_msg m = {.op = HV_OP_HEARTBEAT, .req = big, .req_len = sizeof(big)};
	ck_assert_int_eq(hvc_call(h, &m), -EMSGSIZE);
	struct hvc_create_args a = {.kernel = "relative", .name = "x"};
	ck_assert_int_eq(hvc_domctl_create(h, &a, NULL), -EINVAL);
	a.kernel = "/k";
	a.name = "";
	ck_assert_int_eq(hvc_domctl_create(h, &a, NULL), -ENAMETOOLONG);
	char longname[HV_NAME_MAX + 1];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[HV_NAME_MAX] = 0;
	a.name = longname;
	ck_assert_int_eq(hvc_domctl_create(h, &a, NULL), -ENAMETOOLONG);
	int fd;
	ck_assert_int_eq(hvc_device_get(h, "0123456789012345678901234567890123", &fd),
			 -ENAMETOOLONG);
	ck_assert_int_eq(hvc_domctl_assign_device(h, 1, "d", -1), -EBADF);
	/* the socket is still usable: the first real call hangs up */
	ck_assert_int_eq(hvc_heartbeat(h), -ECONNRESET);
	finish(&f, h);
}
END_TEST

START_TEST(open_domain_checks_the_fd)
{
	struct hvc *h;
	setenv("DRVDOM_HV_FD", "3x", 1);
	ck_assert_int_eq(hvc_open_domain(&h), -EINVAL);
	setenv("DRVDOM_HV_FD", "-1", 1);
	ck_assert_int_eq(hvc_open_domain(&h), -EINVAL);
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	char num[16];
	snprintf(num, sizeof(num), "%d", p[0]);
	setenv("DRVDOM_HV_FD", num, 1);
	ck_assert_int_eq(hvc_open_domain(&h), -ENOTSOCK);
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	snprintf(num, sizeof(num), "%d", sv[0]);
	setenv("DRVDOM_HV_FD", num, 1);
	ck_assert_int_eq(hvc_open_domain(&h), -EPROTOTYPE);
	int sq[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq), 0);
	snprintf(num, sizeof(num), "%d", sq[0]);
	setenv("DRVDOM_HV_FD", num, 1);
	ck_assert_int_eq(hvc_open_domain(&h), 0);
	ck_assert_int_eq(hvc_fd(h) >= 0, 1);
	hvc_close(h); /* closes sq[0] */
	ck_assert_int_eq(fcntl(sq[0], F_GETFD), -1);
	setenv("DRVDOM_HV_FD", "1000", 1);
	ck_assert_int_eq(hvc_open_domain(&h), -EBADF);
	ck_assert_int_eq(hvc_open_dom0("/nonexistent/hv/socket", &h), -ENOENT);
}
END_TEST

/* --- create: strings layout --------------------------------------------------- */

static void s_create(struct fake *f)
{
	struct req r;
	ck_assert_int_eq(peer_recv(f->fd, &r), 0);
	ck_assert_uint_eq(r.hdr.op, HV_OP_DOMCTL_CREATE);
	struct hv_create_req q;
	memcpy(&q, r.payload, sizeof(q));
	ck_assert_uint_eq(q.nr_strings, 3);
	ck_assert_uint_eq(q.memory, 1 << 20);
	ck_assert_uint_eq(q.flags, HV_DOMF_DRIVER);
	ck_assert_str_eq(q.name, "dom-a");
	const char *s = r.payload + sizeof(q);
	ck_assert_str_eq(s, "/bin/k");
	s += strlen(s) + 1;
	ck_assert_str_eq(s, "one");
	s += strlen(s) + 1;
	ck_assert_str_eq(s, "");
	s += 1;
	ck_assert_ptr_eq(s, r.payload + r.len);
	struct hv_create_rep rep = {.domid = 4, .store_port = 1, .store_frame = 9};
	peer_send(f->fd, r.hdr.op, r.hdr.id, 0, &rep, sizeof(rep), NULL, 0, -1);
}

START_TEST(create_marshals_strings)
{
	struct fake f = {0};
	struct hvc *h = start(&f, s_create);
	const char *argv[] = {"one", "", NULL};
	struct hvc_create_args a = {.kernel = "/bin/k",
				    .argv = argv,
				    .name = "dom-a",
				    .memory = 1 << 20,
				    .flags = HV_DOMF_DRIVER};
	struct hv_create_rep rep;
	ck_assert_int_eq(hvc_domctl_create(h, &a, &rep), 0);
	ck_assert_uint_eq(rep.domid, 4);
	finish(&f, h);
}
END_TEST

/* --- async events ------------------------------------------------------------------ */

static int exits;
static domid_t exit_dom[4];
static void on_exit_evt(void *arg, const struct hv_evt_domain_exit *e)
{
	(void)arg;
	if (exits < 4)
		exit_dom[exits] = e->domid;
	exits++;
}

static void s_async_then_reply(struct fake *f)
{
	struct req r;
	ck_assert_int_eq(peer_recv(f->fd, &r), 0);
	struct hv_evt_domain_exit e = {.domid = 5, .reason = HV_EXIT_KILLED, .status = 9};
	strcpy(e.name, "victim");
	peer_send(f->fd, HV_EVT_DOMAIN_EXIT, 0, 0, &e, sizeof(e), NULL, 0, -1);
	/* a malformed event is dropped, not fatal */
	peer_send(f->fd, HV_EVT_DOMAIN_EXIT, 0, 0, &e, 4, NULL, 0, -1);
	peer_send(f->fd, 0x1FF, 0, 0, NULL, 0, NULL, 0, -1);
	peer_send(f->fd, r.hdr.op, r.hdr.id, 0, NULL, 0, NULL, 0, -1);
	/* and one while nobody calls */
	e.domid = 6;
	peer_send(f->fd, HV_EVT_DOMAIN_EXIT, 0, 0, &e, sizeof(e), NULL, 0, -1);
	ck_assert_int_ne(peer_recv(f->fd, &r), 0);
}

START_TEST(async_events_queued_for_dispatch)
{
	struct fake f = {0};
	struct hvc *h = start(&f, s_async_then_reply);
	exits = 0;
	hvc_set_domain_exit_cb(h, on_exit_evt, NULL);
	ck_assert_int_eq(hvc_domctl_subscribe(h), 0);
	ck_assert_int_eq(exits, 0); /* not run inside the call */
	struct pollfd p = {.fd = hvc_fd(h), .events = POLLIN};
	ck_assert_int_eq(poll(&p, 1, 1000), 1);
	ck_assert_int_ge(hvc_dispatch(h), 1);
	ck_assert_int_ge(exits, 1);
	ck_assert_uint_eq(exit_dom[0], 5);
	while (exits < 2) {
		ck_assert_int_eq(poll(&p, 1, 1000), 1);
		ck_assert_int_ge(hvc_dispatch(h), 0);
	}
	ck_assert_int_eq(exits, 2); /* the malformed ones were dropped */
	ck_assert_uint_eq(exit_dom[1], 6);
	finish(&f, h);
}
END_TEST

/* Crash-recovery events (docs/recovery.md): RESTARTED and FAILED reach
 * their callbacks, WATCHDOG sets hvc_watchdog_ms at once; wrong sizes are
 * dropped. */
static int restarted, failed;
static struct hv_evt_domain_restarted last_rs;
static void on_restarted_evt(void *arg, const struct hv_evt_domain_restarted *e)
{
	(void)arg;
	last_rs = *e;
	restarted++;
}
static void on_failed_evt(void *arg, const struct hv_evt_domain_failed *e)
{
	(void)arg;
	ck_assert_uint_eq(e->restarts, 5);
	failed++;
}

static void s_recovery_events(struct fake *f)
{
	struct req r;
	ck_assert_int_eq(peer_recv(f->fd, &r), 0);
	struct hv_evt_domain_restarted rs = {
	    .domid = 3, .store_port = 1, .store_frame = 1, .restarts = 2};
	strcpy(rs.name, "blkdom");
	struct hv_evt_domain_failed fl = {.domid = 3, .restarts = 5};
	struct hv_evt_watchdog wd = {250};
	peer_send(f->fd, HV_EVT_DOMAIN_RESTARTED, 0, 0, &rs, 8, NULL, 0, -1); /* short */
	peer_send(f->fd, HV_EVT_WATCHDOG, 0, 0, &wd, sizeof(wd), NULL, 0, -1);
	peer_send(f->fd, HV_EVT_DOMAIN_RESTARTED, 0, 0, &rs, sizeof(rs), NULL, 0, -1);
	peer_send(f->fd, HV_EVT_DOMAIN_FAILED, 0, 0, &fl, sizeof(fl), NULL, 0, -1);
	peer_send(f->fd, r.hdr.op, r.hdr.id, 0, NULL, 0, NULL, 0, -1);
	ck_assert_int_ne(peer_recv(f->fd, &r), 0);
}

START_TEST(recovery_events)
{
	struct fake f = {0};
	struct hvc *h = start(&f, s_recovery_events);
	restarted = failed = 0;
	hvc_set_domain_restarted_cb(h, on_restarted_evt, NULL);
	hvc_set_domain_failed_cb(h, on_failed_evt, NULL);
	ck_assert_uint_eq(hvc_watchdog_ms(h), 0);
	ck_assert_int_eq(hvc_domctl_subscribe(h), 0);
	ck_assert_uint_eq(hvc_watchdog_ms(h), 250); /* applied when read */
	ck_assert_int_eq(restarted, 0);		    /* callbacks wait for dispatch */
	ck_assert_int_ge(hvc_dispatch(h), 3);
	ck_assert_int_eq(restarted, 1);
	ck_assert_int_eq(failed, 1);
	ck_assert_uint_eq(last_rs.restarts, 2);
	ck_assert_str_eq(last_rs.name, "blkdom");
	finish(&f, h);
}
END_TEST

/* The ring-progress watchdog's hook: with a watchdog set the loop asks
 * its progress check at each heartbeat, with the period as the bound, and
 * tells the hv of a reported stall once (HV_OP_WATCHDOG_STALL carrying the
 * check's reason), then asks no more and heartbeats on. aux[0]:
 * heartbeats, aux[1]: stalls. */
static struct hv_watchdog_stall_req last_stall;
static void s_watchdog(struct fake *f)
{
	struct hv_evt_watchdog wd = {40};
	peer_send(f->fd, HV_EVT_WATCHDOG, 0, 0, &wd, sizeof(wd), NULL, 0, -1);
	struct req r;
	while (peer_recv(f->fd, &r) == 0) {
		if (r.hdr.op == HV_OP_HEARTBEAT)
			f->aux[0]++;
		if (r.hdr.op == HV_OP_WATCHDOG_STALL && r.len == sizeof(last_stall)) {
			memcpy(&last_stall, r.payload, sizeof(last_stall));
			f->aux[1]++;
		}
		peer_send(f->fd, r.hdr.op, r.hdr.id, 0, NULL, 0, NULL, 0, -1);
	}
}

static int progress_calls;
static uint64_t progress_bound;
static uint64_t progress_fn(void *arg, uint64_t now, uint64_t bound, char *why, size_t cap)
{
	(void)now;
	ck_assert_ptr_eq(arg, &progress_calls);
	progress_bound = bound;
	if (++progress_calls < 3)
		return 0;
	snprintf(why, cap, "vbd/1/51712 ring 2: request outstanding %d ms", progress_calls);
	return bound + 1000000u;
}

START_TEST(evloop_progress_check)
{
	struct fake f = {0};
	struct hvc *h = start(&f, s_watchdog);
	struct evloop *l;
	ck_assert_int_eq(evloop_create(h, &l), 0);
	progress_calls = 0;
	evloop_set_progress_check(l, progress_fn, &progress_calls);
	for (int i = 0; i < 500 && progress_calls < 3; i++)
		ck_assert_int_ge(evloop_run_once(l, 100), 0);
	ck_assert_int_eq(progress_calls, 3);
	ck_assert_uint_eq(progress_bound, 40000000u); /* the watchdog period */
	/* Told: the hv kills us; no more checks, heartbeats go on. */
	for (int i = 0; i < 40; i++)
		ck_assert_int_ge(evloop_run_once(l, 100), 0);
	ck_assert_int_eq(progress_calls, 3);
	evloop_destroy(l);
	finish(&f, h); /* the fake has read everything sent */
	ck_assert_int_eq(f.aux[1], 1);
	ck_assert_int_gt(f.aux[0], 3);
	ck_assert_uint_eq(last_stall.stalled_ms, 41);
	ck_assert_str_eq(last_stall.why, "vbd/1/51712 ring 2: request outstanding 3 ms");
}
END_TEST

/* --- event channels ------------------------------------------------------------------ */

static int notifies, boundev, closedev;
static void on_port(void *arg, evtchn_port_t port, enum evtchn_event ev)
{
	(void)arg;
	(void)port;
	if (ev == EVTCHN_EV_NOTIFY)
		notifies++;
	else if (ev == EVTCHN_EV_BOUND)
		boundev++;
	else
		closedev++;
}

/* Answer a BIND_INTERDOMAIN with port 3 and fresh wait/kick eventfds, the
 * wait one already signalled (Xen marks a new binding pending); aux[0..1]:
 * the peer's view (kick into our wait, wait for our kick). */
static void peer_bind(struct fake *f)
{
	struct req r;
	ck_assert_int_eq(peer_recv(f->fd, &r), 0);
	ck_assert_uint_eq(r.hdr.op, HV_OP_EVTCHN_BIND_INTERDOMAIN);
	int a = eventfd(1, EFD_NONBLOCK), b = eventfd(0, EFD_NONBLOCK);
	struct hv_evtchn_port_rep pr = {.port = 3};
	int fds[2] = {a, b};
	f->aux[0] = a;
	f->aux[1] = b;
	peer_send(f->fd, r.hdr.op, r.hdr.id, 0, &pr, sizeof(pr), fds, 2, -1);
}

/* Bind (peer_bind), then for an alloc_unbound: reply,
 * then EVT_PORT_BOUND, later EVT_PORT_CLOSED. aux[0..1]: the peer's view
 * of binding 1 (kick into our wait, wait for our kick). */
static void s_evtchn(struct fake *f)
{
	struct req r;
	peer_bind(f);
	ck_assert_int_eq(peer_recv(f->fd, &r), 0);
	ck_assert_uint_eq(r.hdr.op, HV_OP_EVTCHN_ALLOC_UNBOUND);
	struct hv_evtchn_port_rep pr = {.port = 4};
	peer_send(f->fd, r.hdr.op, r.hdr.id, 0, &pr, sizeof(pr), NULL, 0, -1);
	int c = eventfd(0, EFD_NONBLOCK), d = eventfd(0, EFD_NONBLOCK);
	struct hv_evt_port_bound eb = {.port = 4, .remote_dom = 2, .remote_port = 8};
	int fds2[2] = {c, d};
	f->aux[2] = c;
	f->aux[3] = d;
	peer_send(f->fd, HV_EVT_PORT_BOUND, 0, 0, &eb, sizeof(eb), fds2, 2, -1);
	/* wait for the test to say "close it" (a heartbeat) */
	ck_assert_int_eq(peer_recv(f->fd, &r), 0);
	struct hv_evt_port_closed ec = {.port = 4};
	peer_send(f->fd, HV_EVT_PORT_CLOSED, 0, 0, &ec, sizeof(ec), NULL, 0, -1);
	peer_send(f->fd, r.hdr.op, r.hdr.id, 0, NULL, 0, NULL, 0, -1);
	while (peer_recv(f->fd, &r) == 0)
		peer_send(f->fd, r.hdr.op, r.hdr.id, 0, NULL, 0, NULL, 0, -1);
}

static void dispatch_until(struct hvc *h, int *counter, int want)
{
	for (int i = 0; i < 100 && *counter < want; i++) {
		struct pollfd p = {.fd = hvc_fd(h), .events = POLLIN};
		poll(&p, 1, 20);
		ck_assert_int_ge(hvc_dispatch(h), 0);
	}
	ck_assert_int_eq(*counter, want);
}

/* The same through an evloop. */
static void run_until(struct evloop *l, int *counter, int want)
{
	for (int i = 0; i < 10 && *counter < want; i++)
		ck_assert_int_ge(evloop_run_once(l, 100), 0);
	ck_assert_int_eq(*counter, want);
}

START_TEST(evtchn_bind_notify_mask_close)
{
	struct fake f = {0};
	struct hvc *h = start(&f, s_evtchn);
	notifies = boundev = closedev = 0;
	evtchn_port_t lp, up;
	ck_assert_int_eq(evtchn_bind_interdomain(h, 2, 8, &lp), 0);
	ck_assert_uint_eq(lp, 3);
	ck_assert_int_ge(evtchn_wait_fd(h, lp), 0);
	ck_assert_int_eq(evtchn_is_pending(h, lp), 1); /* Xen: bind marks pending */
	ck_assert_int_eq(evtchn_set_handler(h, lp, on_port, NULL), 0);
	dispatch_until(h, &notifies, 1);
	ck_assert_int_eq(evtchn_is_pending(h, lp), 0);
	/* notify = one write to the kick fd */
	ck_assert_int_eq(evtchn_notify(h, lp), 0);
	uint64_t v = 0;
	ck_assert_int_eq(read(f.aux[1], &v, 8), 8);
	ck_assert_uint_eq(v, 1);
	/* the peer kicks us */
	v = 1;
	ck_assert_int_eq(write(f.aux[0], &v, 8), 8);
	dispatch_until(h, &notifies, 2);
	/* masked: pending only; unmask re-delivers */
	ck_assert_int_eq(evtchn_mask(h, lp), 0);
	ck_assert_int_eq(write(f.aux[0], &v, 8), 8);
	for (int i = 0; i < 5; i++) {
		struct pollfd p = {.fd = hvc_fd(h), .events = POLLIN};
		poll(&p, 1, 10);
		hvc_dispatch(h);
	}
	ck_assert_int_eq(notifies, 2);
	ck_assert_int_eq(evtchn_is_pending(h, lp), 1);
	ck_assert_int_eq(evtchn_unmask(h, lp), 0);
	dispatch_until(h, &notifies, 3);
	/* alloc_unbound; the peer binds: BOUND event, fds stored */
	ck_assert_int_eq(evtchn_alloc_unbound(h, 2, &up), 0);
	ck_assert_uint_eq(up, 4);
	ck_assert_int_eq(evtchn_set_handler(h, up, on_port, NULL), 0);
	/* The peer already bound, but its EVT_PORT_BOUND is unread: the notify
	 * is kept and delivered with the binding, not lost. */
	ck_assert_int_eq(evtchn_notify(h, up), 0);
	dispatch_until(h, &boundev, 1);
	ck_assert_int_ge(evtchn_wait_fd(h, up), 0);
	v = 0;
	ck_assert_int_eq(read(f.aux[3], &v, 8), 8);
	ck_assert_uint_eq(v, 1);
	ck_assert_int_eq(evtchn_notify(h, up), 0);
	ck_assert_int_eq(read(f.aux[3], &v, 8), 8);
	/* the peer closes: CLOSED event, fds dropped, notify is a no-op */
	ck_assert_int_eq(hvc_heartbeat(h), 0);
	ck_assert_int_eq(evtchn_wait_fd(h, up), -ENOTCONN); /* applied at once */
	dispatch_until(h, &closedev, 1);
	ck_assert_int_eq(evtchn_notify(h, up), 0);
	ck_assert_int_eq(read(f.aux[3], &v, 8), -1);
	ck_assert_int_eq(evtchn_notify(h, HV_EVTCHN_PORTS), -EINVAL);
	ck_assert_int_eq(evtchn_notify(h, 77), 0); /* unknown: silently nothing */
	ck_assert_int_eq(evtchn_close(h, lp), 0);
	ck_assert_int_eq(evtchn_wait_fd(h, lp), -ENOTCONN);
	finish(&f, h);
	for (int i = 0; i < 4; i++)
		close(f.aux[i]);
}
END_TEST

static void s_bind_only(struct fake *f)
{
	struct req r;
	peer_bind(f);
	while (peer_recv(f->fd, &r) == 0)
		peer_send(f->fd, r.hdr.op, r.hdr.id, 0, NULL, 0, NULL, 0, -1);
}

/* The same through an evloop: the hvc fd is registered for us. */
START_TEST(evloop_runs_port_handlers)
{
	struct fake f = {0};
	struct hvc *h = start(&f, s_bind_only);
	struct evloop *l;
	ck_assert_int_eq(evloop_create(h, &l), 0);
	notifies = 0;
	evtchn_port_t lp;
	ck_assert_int_eq(evtchn_bind_interdomain(h, 2, 8, &lp), 0);
	ck_assert_int_eq(evloop_add_port(l, lp, on_port, NULL), 0);
	run_until(l, &notifies, 1);
	uint64_t v = 1;
	ck_assert_int_eq(write(f.aux[0], &v, 8), 8);
	run_until(l, &notifies, 2);
	evloop_destroy(l);
	finish(&f, h);
	for (int i = 0; i < 2; i++)
		close(f.aux[i]);
}
END_TEST

/* --- grants: map cache and copy batching -------------------------------------------- */

/* Map replies: two grants in one 4-page segment (one fd, shared), then the
 * same segment again with a duplicate fd, then unmaps. aux[0]: the memfd. */
static void s_map(struct fake *f)
{
	struct req r;
	int mfd = f->aux[0];
	ck_assert_int_eq(ftruncate(mfd, 4 * HV_PAGE_SIZE), 0);
	char *p = mmap(NULL, 4 * HV_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	strcpy(p + 2 * HV_PAGE_SIZE, "page two");
	strcpy(p + 3 * HV_PAGE_SIZE, "page three");
	munmap(p, 4 * HV_PAGE_SIZE);
	uint32_t next_handle = 10;
	while (peer_recv(f->fd, &r) == 0) {
		f->calls++;
		uint32_t n;
		memcpy(&n, r.payload, 4);
		if (r.hdr.op == HV_OP_GNT_MAP) {
			ck_assert_uint_eq(r.len, 4 + n * sizeof(struct hv_gnt_map_op));
			char rep[4 + HV_BATCH_MAX * sizeof(struct hv_gnt_map_res)];
			memcpy(rep, &n, 4);
			for (uint32_t i = 0; i < n; i++) {
				struct hv_gnt_map_op op;
				memcpy(&op, r.payload + 4 + i * sizeof(op), sizeof(op));
				struct hv_gnt_map_res res = {.fd_index = 0,
							     .handle = next_handle++,
							     .seg_id = 1,
							     .seg_gen = 1,
							     .seg_npages = 4,
							     .offset = op.ref * HV_PAGE_SIZE};
				if (op.ref == 9) { /* not granted */
					res = (struct hv_gnt_map_res){.status = GNTST_bad_gntref,
								      .fd_index = 0xFFFF};
				}
				memcpy(rep + 4 + i * sizeof(res), &res, sizeof(res));
			}
			/* the same fd each time: the kernel makes the duplicates */
			peer_send(f->fd, r.hdr.op, r.hdr.id, 0, rep,
				  4 + n * sizeof(struct hv_gnt_map_res), &mfd, 1, -1);
		} else if (r.hdr.op == HV_OP_GNT_UNMAP) {
			char rep[4 + HV_BATCH_MAX * 2] = {0};
			memcpy(rep, &n, 4);
			peer_send(f->fd, r.hdr.op, r.hdr.id, 0, rep, 4 + n * 2, NULL, 0, -1);
		} else {
			ck_abort_msg("unexpected op %u", r.hdr.op);
		}
	}
	close(mfd);
}

START_TEST(map_cache_one_mapping_per_segment)
{
	struct fake f = {0};
	f.aux[0] = memfd_create("seg", MFD_CLOEXEC);
	struct hvc *h = start(&f, s_map);
	int before = nfds_open();
	struct gnt_map_op ops[3] = {
	    {.domid = 2, .ref = 2}, {.domid = 2, .ref = 3}, {.domid = 2, .ref = 9}};
	ck_assert_int_eq(gnt_map_batch(h, ops, 3), -EIO);
	ck_assert_int_eq(ops[0].status, GNTST_okay);
	ck_assert_int_eq(ops[1].status, GNTST_okay);
	ck_assert_int_eq(ops[2].status, GNTST_bad_gntref);
	ck_assert_str_eq(ops[0].addr, "page two");
	ck_assert_str_eq(ops[1].addr, "page three");
	ck_assert_int_eq((char *)ops[1].addr - (char *)ops[0].addr, HV_PAGE_SIZE);
	void *addr;
	gnt_handle_t hd;
	ck_assert_int_eq(gnt_map(h, 2, 3, 0, &addr, &hd), 0);
	ck_assert_ptr_eq(addr, ops[1].addr); /* same mapping reused */
	ck_assert_int_eq(gnt_map(h, 2, 9, 0, &addr, &hd), -EINVAL);
	ck_assert_int_eq(nfds_open(), before); /* every received fd closed */
	ck_assert_int_eq(gnt_unmap(h, ops[0].handle), 0);
	ck_assert_int_eq(gnt_unmap(h, 12345), -EINVAL);
	gnt_handle_t hs[2] = {ops[1].handle, hd};
	int16_t st[2];
	ck_assert_int_eq(gnt_unmap_batch(h, hs, 2, st), 0);
	finish(&f, h);
}
END_TEST

static void s_copy(struct fake *f)
{
	struct req r;
	while (peer_recv(f->fd, &r) == 0) {
		f->aux[f->calls++] = (int)((r.len - 8) / sizeof(struct hv_gnt_copy));
		uint32_t n;
		memcpy(&n, r.payload, 4);
		ck_assert_uint_le(n, HV_COPY_BATCH_MAX);
		ck_assert_uint_eq(r.len, 8 + n * sizeof(struct hv_gnt_copy));
		for (uint32_t i = 0; i < n; i++) {
			struct hv_gnt_copy c;
			memcpy(&c, r.payload + 8 + i * sizeof(c), sizeof(c));
			c.status = c.len > HV_PAGE_SIZE ? GNTST_bad_copy_arg : GNTST_okay;
			memcpy(r.payload + 8 + i * sizeof(c), &c, sizeof(c));
		}
		peer_send(f->fd, r.hdr.op, r.hdr.id, 0, r.payload, r.len, NULL, 0, -1);
	}
}

START_TEST(copy_splits_batches)
{
	struct fake f = {0};
	struct hvc *h = start(&f, s_copy);
	static struct hv_gnt_copy ops[300];
	for (int i = 0; i < 300; i++) {
		ops[i].len = 100;
		ops[i].status = 77;
	}
	ck_assert_int_eq(gnt_copy(h, ops, 300), 0);
	ck_assert_int_eq(f.calls, 2);
	ck_assert_int_eq(f.aux[0], (int)HV_COPY_BATCH_MAX);
	ck_assert_int_eq(f.aux[1], 300 - (int)HV_COPY_BATCH_MAX);
	for (int i = 0; i < 300; i++)
		ck_assert_int_eq(ops[i].status, GNTST_okay);
	ops[299].len = HV_PAGE_SIZE + 1;
	ck_assert_int_eq(gnt_copy(h, ops, 300), -EIO);
	ck_assert_int_eq(ops[299].status, GNTST_bad_copy_arg);
	finish(&f, h);
}
END_TEST

/* GNTTAB_SETUP: a 64-entry table; counts the calls. */
static void s_gnttab(struct fake *f)
{
	struct req r;
	while (peer_recv(f->fd, &r) == 0) {
		ck_assert_uint_eq(r.hdr.op, HV_OP_GNTTAB_SETUP);
		f->calls++;
		int mfd = memfd_create("gnttab", MFD_CLOEXEC);
		ck_assert_int_eq(ftruncate(mfd, HV_PAGE_SIZE), 0);
		struct hv_gnttab_setup_rep rep = {.nr_entries = 64};
		peer_send(f->fd, r.hdr.op, r.hdr.id, 0, &rep, sizeof(rep), &mfd, 1, -1);
		close(mfd);
	}
}

START_TEST(grant_table_shared_per_domain)
{
	struct fake f = {0};
	struct hvc *h = start(&f, s_gnttab);
	struct gnt_table *a, *b;
	ck_assert_int_eq(gnt_table_open(h, 16, &a), 0);
	ck_assert_uint_eq(gnt_table_size(a), 64); /* the hv's size, not ours */
	ck_assert_int_eq(gnt_table_open(h, 4096, &b), 0);
	ck_assert_ptr_eq(a, b); /* one table, one allocator */
	grant_ref_t r1, r2;
	ck_assert_int_eq(gnt_grant_access(a, 3, 100, 0, &r1), 0);
	ck_assert_int_eq(gnt_grant_access(b, 3, 101, 0, &r2), 0);
	ck_assert_uint_eq(r1, 8);
	ck_assert_uint_eq(r2, 9);
	gnt_table_close(a);
	ck_assert_int_eq(gnt_end_access(b, r1), 0); /* b still works */
	gnt_table_close(b);
	ck_assert_int_eq(gnt_table_open(h, 64, &a), 0); /* set up again */
	hvc_close(h);					/* with the table open: it stands alone */
	ck_assert_int_eq(gnt_grant_access(a, 3, 102, 0, &r1), 0);
	gnt_table_close(a);
	pthread_join(f.th, NULL);
	close(f.fd);
	ck_assert_int_eq(f.calls, 2);
}
END_TEST

Suite *hvc_suite(void);
Suite *hvc_suite(void)
{
	Suite *s = suite_create("hvc");
	TCase *tc = tcase_create("framing");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, call_roundtrip_and_errno);
	tcase_add_test(tc, bad_replies_are_eproto);
	tcase_add_test(tc, hv_gone_is_econnreset);
	tcase_add_test(tc, request_limits);
	tcase_add_test(tc, open_domain_checks_the_fd);
	tcase_add_test(tc, create_marshals_strings);
	tcase_add_test(tc, async_events_queued_for_dispatch);
	suite_add_tcase(s, tc);
	tc = tcase_create("layers");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, evtchn_bind_notify_mask_close);
	tcase_add_test(tc, evloop_runs_port_handlers);
	tcase_add_test(tc, evloop_progress_check);
	tcase_add_test(tc, map_cache_one_mapping_per_segment);
	tcase_add_test(tc, copy_splits_batches);
	tcase_add_test(tc, grant_table_shared_per_domain);
	tcase_add_test(tc, recovery_events);
	suite_add_tcase(s, tc);
	return s;
}
