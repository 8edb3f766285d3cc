// SPDX-License-Identifier: MIT
// drvdom-xenstored: the main program. It listens on a Unix stream socket
// (every client there is domain 0, as with Xen's xenstored socket), hands
// each accepted connection to one of a few worker threads, and each worker
// runs an epoll loop that reads requests, dispatches them (xsd_conn.c) and
// writes replies. Replies and watch events queued from another worker are
// flushed by whoever queues them, under the connection's output lock; a
// worker stops reading a client whose unread replies pass a threshold, so a
// client that never reads cannot grow the daemon. See docs/xenstore.md.
#include "xenstore/xsd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"

struct xsd_worker {
	pthread_t th;
	int epfd;
};

struct xsd_sock {
	uint32_t mask; /* current epoll events, under out_lock */
};

static uint32_t xsd_sock_mask(struct xsd_conn *c)
{
	uint32_t m = EPOLLRDHUP;
	if (!c->throttled)
		m |= EPOLLIN;
	/* While throttled keep EPOLLOUT so the owner wakes to unthrottle. */
	if (c->out_head || c->throttled)
		m |= EPOLLOUT;
	return m;
}

/* out_lock held: write what the socket takes, then fix the epoll mask. */
static void xsd_sock_flush(struct xsd_conn *c)
{
	struct xsd_sock *s = c->tp_priv;
	while (c->out_head && !c->dead) {
		struct xsd_buf *b = c->out_head;
		ssize_t n =
		    send(c->fd, b->data + b->off, b->len - b->off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				c->dead = true;
				shutdown(c->fd, SHUT_RDWR);
			}
			break;
		}
		b->off += (uint32_t)n;
		c->out_bytes -= (size_t)n;
		if (b->off < b->len)
			break;
		xsd_conn_sent(c, b);
	}
	uint32_t m = xsd_sock_mask(c);
	if (m != s->mask && !c->dead) {
		struct epoll_event ev = {.events = m, .data.ptr = c};
		if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
			s->mask = m;
	}
}

static void xsd_sock_kill(struct xsd_conn *c)
{
	shutdown(c->fd, SHUT_RDWR);
}

static const struct xsd_transport xsd_sock_tp = {xsd_sock_flush, xsd_sock_kill};

static void xsd_sock_close(struct xsd_conn *c)
{
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	int fd = c->fd;
	void *priv = c->tp_priv;
	xsd_conn_free(c);
	close(fd);
	free(priv);
}

static void xsd_sock_event(struct xsd_conn *c, uint32_t events)
{
	if (events & EPOLLOUT) {
		pthread_mutex_lock(&c->out_lock);
		bool was = c->throttled;
		if (c->throttled && xsd_conn_may_resume(c))
			c->throttled = false;
		xsd_sock_flush(c);
		pthread_mutex_unlock(&c->out_lock);
		if (was && !c->throttled && xsd_conn_input(c) < 0)
			goto drop;
	}
	if (events & EPOLLIN) {
		ssize_t n = read(c->fd, c->in + c->in_len, XSD_IN_MAX - c->in_len);
		if (n == 0)
			goto drop;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			goto drop;
		if (n > 0) {
			c->in_len += (uint32_t)n;
			if (xsd_conn_input(c) < 0)
				goto drop;
		}
	} else if (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
		goto drop;
	}
	if (!c->dead)
		return;
drop:
	xsd_sock_close(c);
}

static void *xsd_worker_main(void *arg)
{
	struct xsd_worker *w = arg;
	rcu_register_thread();
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(w->epfd, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n; i++)
			xsd_sock_event(evs[i].data.ptr, evs[i].events);
	}
	return NULL;
}

static int xsd_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		die_err(ENAMETOOLONG, "socket path %s", path);
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket");
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind %s", path);
	if (chmod(path, 0600) < 0)
		die("chmod %s", path);
	if (listen(fd, 128) < 0)
		die("listen");
	return fd;
}

static void xsd_usage(FILE *f)
{
	fprintf(f, "usage: drvdom-xenstored [--socket PATH] [--run-dir DIR] [--hv-socket PATH]\n"
		   "                        [--threads N] [--foreground] [--clean-dead-domains]\n"
		   "Serves the xenstore wire protocol (xs_wire.h) on a Unix socket; default\n"
		   "socket DIR/xenstored/socket (DIR: --run-dir, $DRVDOM_RUN_DIR, /run/drvdom).\n"
		   "--clean-dead-domains: when a domain is gone for good, do what libxl does\n"
		   "on destroy (remove its home and backend directories, take back its\n"
		   "backends' devices); by default a dead domain's nodes stay, as in Xen.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"run-dir", required_argument, NULL, 'r'},
	    {"hv-socket", required_argument, NULL, 'H'},
	    {"threads", required_argument, NULL, 't'},
	    {"foreground", no_argument, NULL, 'f'},
	    {"clean-dead-domains", no_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *sock = NULL, *run_dir = NULL, *hv_sock = NULL;
	int nthreads = 2;
	bool foreground = false;
	int o;
	log_init("drvdom-xenstored");
	while ((o = getopt_long(argc, argv, "s:r:H:t:fch", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			sock = optarg;
			break;
		case 'r':
			run_dir = optarg;
			break;
		case 'H':
			hv_sock = optarg;
			break;
		case 't':
			nthreads = atoi(optarg);
			if (nthreads < 1 || nthreads > 64) {
				xsd_usage(stderr);
				return 2;
			}
			break;
		case 'f':
			foreground = true;
			break;
		case 'c':
			xsd_ring_clean_dead = true;
			break;
		case 'h':
			xsd_usage(stdout);
			return 0;
		default:
			xsd_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		xsd_usage(stderr);
		return 2;
	}
	char sockbuf[4096], hvbuf[4096];
	if (!run_dir)
		run_dir = getenv("DRVDOM_RUN_DIR");
	if (!run_dir)
		run_dir = "/run/drvdom";
	if (!sock) {
		snprintf(sockbuf, sizeof(sockbuf), "%s/xenstored", run_dir);
		mkdir(sockbuf, 0700);
		snprintf(sockbuf, sizeof(sockbuf), "%s/xenstored/socket", run_dir);
		sock = sockbuf;
		if (!hv_sock) {
			snprintf(hvbuf, sizeof(hvbuf), "%s/hv/socket", run_dir);
			if (access(hvbuf, F_OK) == 0)
				hv_sock = hvbuf;
		}
	}

	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);

	rcu_register_thread();
	xsd_store_init();
	int lfd = xsd_listen(sock);
	if (hv_sock) {
		int ret = xsd_ring_init(hv_sock);
		if (ret)
			die_err(-ret, "connecting to the hv at %s", hv_sock);
	}
	if (!foreground && daemon(1, 0) < 0)
		die("daemon");

	struct xsd_worker *ws = calloc((size_t)nthreads, sizeof(*ws));
	if (!ws)
		die("calloc");
	for (int i = 0; i < nthreads; i++) {
		ws[i].epfd = epoll_create1(EPOLL_CLOEXEC);
		if (ws[i].epfd < 0)
			die("epoll_create1");
		int ret = pthread_create(&ws[i].th, NULL, xsd_worker_main, &ws[i]);
		if (ret)
			die_err(ret, "pthread_create");
	}

	int sfd = signalfd(-1, &ss, SFD_CLOEXEC);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ep < 0)
		die("signalfd/epoll");
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	ev.data.fd = sfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	log_info("serving %s with %d worker threads%s", sock, nthreads,
		 hv_sock ? ", domains through the hv" : "");
	unsigned int next = 0;
	for (;;) {
		struct epoll_event e;
		int n = epoll_wait(ep, &e, 1, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		if (e.data.fd == sfd) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGPIPE)
				break;
			continue;
		}
		int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("accept: %s", strerror(errno));
			continue;
		}
		struct xsd_sock *s = calloc(1, sizeof(*s));
		if (!s)
			die("calloc");
		struct xsd_conn *c = xsd_conn_new(0, &xsd_sock_tp, s);
		c->fd = cfd;
		struct xsd_worker *w = &ws[next++ % (unsigned int)nthreads];
		c->epfd = w->epfd;
		s->mask = EPOLLIN | EPOLLRDHUP;
		struct epoll_event cev = {.events = s->mask, .data.ptr = c};
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, cfd, &cev) < 0)
			die("epoll_ctl add");
	}
	log_info("exiting");
	unlink(sock);
	return 0;
}
