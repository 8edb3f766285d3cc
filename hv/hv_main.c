// SPDX-License-Identifier: MIT
// drvdom-hv's entry point and event loop: parses the command line, sets up
// the run directory (RUN/hv/socket for domain 0, RUN/hv.pid, RUN/console/),
// then serves one epoll loop over the control socket, every hypercall
// socket, every domain's pidfd and console pipe, and a signalfd. SIGTERM or
// SIGINT kill every domain and exit cleanly. The loop takes one event at a
// time, so a handler may free any object without invalidating another
// pending event (docs/hv.md, "Threading").
#include "common/log.h"
#include "hv/hv_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct hv hv;

uint64_t hv_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void hv_epoll_add(int fd, struct hv_ev *ev)
{
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = ev};
	if (epoll_ctl(hv.epfd, EPOLL_CTL_ADD, fd, &e))
		die("epoll_ctl add fd %d", fd);
}

int hv_send(struct hv_conn *c, uint32_t op, uint32_t id, int32_t ret, const void *p, size_t len,
	    const int *fds, unsigned nfds)
{
	struct hv_hdr hdr = {.op = op, .id = id, .len = (uint32_t)len, .ret = ret};
	struct iovec iov[2] = {{.iov_base = &hdr, .iov_len = sizeof(hdr)},
			       {.iov_base = (void *)p, .iov_len = len}};
	union {
		char buf[CMSG_SPACE(sizeof(int) * HV_MAX_FDS)];
		struct cmsghdr align;
	} cm;
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
	if (c->dead || c->fd < 0)
		return -EPIPE;
	if (nfds) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);
		ch->cmsg_level = SOL_SOCKET;
		ch->cmsg_type = SCM_RIGHTS;
		ch->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(ch), fds, sizeof(int) * nfds);
	}
	ssize_t n;
	do
		n = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return 0;
	int err = errno;
	if (err == EAGAIN || err == ENOBUFS || err == ETOOMANYREFS)
		hv_conn_malformed(c, "(reply)", "does not read its hypercall socket");
	return -err;
}

static void hv_accept(void)
{
	int fd = accept4(hv.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("accept on the control socket: %s", strerror(errno));
		return;
	}
	int sz = HV_SNDBUF;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	struct hv_conn *c = calloc(1, sizeof(*c));
	if (!c)
		die("calloc");
	c->fd = fd;
	c->dom = hv.doms[0];
	c->serial = ++hv.conn_serial;
	c->ev = (struct hv_ev){HV_EV_CONN, c};
	c->next = hv.conns;
	hv.conns = c;
	hv_epoll_add(fd, &c->ev);
	log_debug("domain 0: connection %u opened", c->serial);
}

static int hv_mkdir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

static void hv_setup_run_dir(void)
{
	char path[PATH_MAX];
	if (hv_mkdir(hv.run_dir, 0700))
		die("mkdir %s", hv.run_dir);
	snprintf(path, sizeof(path), "%s/hv", hv.run_dir);
	if (hv_mkdir(path, 0700))
		die("mkdir %s", path);
	snprintf(path, sizeof(path), "%s/console", hv.run_dir);
	if (hv_mkdir(path, 0700))
		die("mkdir %s", path);

	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/hv/socket", hv.run_dir) >=
	    sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		die("control socket path under %s", hv.run_dir);
	}
	hv.listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (hv.listen_fd < 0)
		die("socket");
	/* Refuse to steal the socket of a live hv; remove a stale one. */
	int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (probe >= 0 && !connect(probe, (struct sockaddr *)&sa, sizeof(sa))) {
		log_err("another drvdom-hv serves %s", sa.sun_path);
		exit(EXIT_FAILURE);
	}
	if (probe >= 0)
		close(probe);
	unlink(sa.sun_path);
	mode_t old = umask(0077);
	if (bind(hv.listen_fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("bind %s", sa.sun_path);
	umask(old);
	if (chmod(sa.sun_path, 0600))
		die("chmod %s", sa.sun_path);
	if (listen(hv.listen_fd, 64))
		die("listen");

	snprintf(path, sizeof(path), "%s/hv.pid", hv.run_dir);
	FILE *f = fopen(path, "we");
	if (!f)
		die("open %s", path);
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

static void hv_cleanup_run_dir(void)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/hv/socket", hv.run_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/hv.pid", hv.run_dir);
	unlink(path);
}

static void hv_signal(void)
{
	struct signalfd_siginfo si;
	while (read(hv.sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			log_info("signal %d: shutting down", (int)si.ssi_signo);
			hv.stopping = true;
		}
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: drvdom-hv --run-dir DIR [--foreground]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	log_init(argv[0]);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--run-dir") && i + 1 < argc)
			hv.run_dir = argv[++i];
		else if (!strcmp(argv[i], "--foreground"))
			hv.foreground = true;
		else
			usage();
	}
	if (!hv.run_dir)
		usage();
	/* A domain's tables (768 KiB of grant pins, its port table) come
	 * fresh from mmap, already zero and faulted in only where used. Left
	 * to itself glibc raises its mmap threshold when the first such
	 * block is freed, and every later domain's calloc then clears a
	 * recycled heap block: ~0.3 ms of the hv's time in each restart
	 * (docs/bench-recovery.md). */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);

	/* Fds in flight count against our RLIMIT_NOFILE: use all we may. */
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		die("sigprocmask");
	hv.sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (hv.sig_fd < 0)
		die("signalfd");
	hv.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (hv.epfd < 0)
		die("epoll_create1");

	int r = hv_sandbox_init();
	if (r)
		die_err(-r, "seccomp filter");
	r = hv_dom0_init();
	if (r)
		die_err(-r, "domain 0");
	hv_setup_run_dir();

	hv.listen_ev = (struct hv_ev){HV_EV_LISTEN, NULL};
	hv.sig_ev = (struct hv_ev){HV_EV_SIGNAL, NULL};
	hv_epoll_add(hv.listen_fd, &hv.listen_ev);
	hv_epoll_add(hv.sig_fd, &hv.sig_ev);
	hv_rec_init();
	log_info("serving on %s/hv/socket", hv.run_dir);

	while (!hv.stopping) {
		struct epoll_event e;
		int n = epoll_wait(hv.epfd, &e, 1, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		if (n == 0)
			continue;
		struct hv_ev *ev = e.data.ptr;
		switch (ev->kind) {
		case HV_EV_LISTEN:
			hv_accept();
			break;
		case HV_EV_SIGNAL:
			hv_signal();
			break;
		case HV_EV_CONN:
			hv_conn_readable(ev->obj);
			break;
		case HV_EV_PIDFD:
			hv_dom_exited(ev->obj);
			break;
		case HV_EV_CONSOLE:
			hv_dom_console(ev->obj);
			break;
		case HV_EV_TIMER:
			hv_rec_timer();
			break;
		case HV_EV_SPARE:
			hv_rec_spare_exited(ev->obj);
			break;
		}
		hv_conns_reap();
	}
	hv_dom_kill_all();
	hv_rec_fini();
	while (hv.conns)
		hv_conn_close(hv.conns);
	hv_cleanup_run_dir();
	log_info("stopped");
	return 0;
}
