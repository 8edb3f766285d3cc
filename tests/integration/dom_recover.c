// SPDX-License-Identifier: MIT
// Test domain kernel (static) for the recovery_hv suite: a minimal driver
// domain. It asks DOMAIN_INFO first (a parked standby instance blocks there
// until the hv activates it), prints "recover: up domid D restarts R" on its
// console, allocates an unbound port for dom0, then runs the library's event
// loop (which heartbeats while the hv has set a watchdog). For every device
// it is assigned it takes the fd, prints "recover: got device NAME" and
// writes "hello NAME D R PORT\n" into it; a line "map REF" read back from
// the device maps dom0's grant REF and answers "mapped\n" (or "maperr N").
// argv[1] is the mode:
//   serve  the above
//   exit   exit(1) at once, before any hypercall (a crash loop)
//   hang   the above, then a callback that never returns 300 ms later: the
//          loop stops heartbeating
//   xs     the above, and first write data/instance = R into its own home
//          over its xenstore ring (works only once xenstored introduced it)
//   stall  the above with a progress check (the ring-progress watchdog's
//          hook) that reports a stall 300 ms after start, with a reason
//          holding a newline and a control byte; first it calls
//          WATCHDOG_STALL itself and prints the answer: with a reason that
//          is not NUL-terminated if it has a watchdog, else a valid one
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "grant/gnt.h"
#include "hv/evloop.h"
#include "hv/evtchn.h"
#include "hv/hvc.h"
#include "xenstore/include/xenstore.h"
#include "xenstore/xs_transport.h"

static struct hvc *h;
static struct evloop *loop;
static struct hv_domain_info self;
static evtchn_port_t port;

static void dev_readable(void *arg, int fd, uint32_t events)
{
	(void)arg;
	(void)events;
	char buf[128];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0) {
		evloop_del_fd(loop, fd);
		return;
	}
	buf[n] = 0;
	unsigned ref;
	if (sscanf(buf, "map %u", &ref) == 1) {
		void *addr;
		gnt_handle_t hd;
		int r = gnt_map(h, 0, ref, 0, &addr, &hd);
		char out[32];
		int len = r ? snprintf(out, sizeof(out), "maperr %d\n", r)
			    : snprintf(out, sizeof(out), "mapped\n");
		(void)!write(fd, out, (size_t)len);
	}
}

static void on_device(void *arg, const char *name)
{
	(void)arg;
	int fd;
	int r = hvc_device_get(h, name, &fd);
	if (r) {
		printf("recover: device %s: %s\n", name, strerror(-r));
		fflush(stdout);
		return;
	}
	printf("recover: got device %s\n", name);
	fflush(stdout);
	char msg[128];
	int n = snprintf(msg, sizeof(msg), "hello %s %u %u %u\n", name, self.domid, self.restarts,
			 port);
	(void)!write(fd, msg, (size_t)n);
	evloop_add_fd(loop, fd, EPOLLIN, dev_readable, NULL);
}

static void hang_now(void *arg, int fd, uint32_t events)
{
	(void)arg;
	(void)fd;
	(void)events;
	printf("recover: hanging\n");
	fflush(stdout);
	for (;;) {
		struct timespec ts = {1, 0};
		nanosleep(&ts, NULL);
	}
}

static uint64_t stall_after_ns;

static uint64_t fake_stall(void *arg, uint64_t now, uint64_t bound, char *why, size_t cap)
{
	(void)arg;
	if (!stall_after_ns)
		stall_after_ns = now + 300000000u;
	if (now < stall_after_ns)
		return 0;
	snprintf(why, cap, "fake ring 0: request outstanding %llu ms\n[forged] line\x01",
		 (unsigned long long)(bound / 1000000u));
	printf("recover: reporting a stall\n");
	fflush(stdout);
	return bound;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "serve";
	if (!strcmp(mode, "exit"))
		return 1;
	if (hvc_open_domain(&h) || hvc_domain_info(h, DOMID_SELF, &self)) {
		printf("recover: no hv\n");
		return 2;
	}
	printf("recover: up domid %u restarts %u\n", self.domid, self.restarts);
	fflush(stdout);
	if (evloop_create(h, &loop) || evtchn_alloc_unbound(h, 0, &port)) {
		printf("recover: setup failed\n");
		return 2;
	}
	if (!strcmp(mode, "xs")) {
		xs_ring_use_hvc(h);
		struct xs_handle *xs = xs_open(0);
		char v[16];
		snprintf(v, sizeof(v), "%u", self.restarts);
		if (!xs || !xs_write(xs, XBT_NULL, "data/instance", v, (unsigned)strlen(v)))
			printf("recover: xenstore write failed: %s\n", strerror(errno));
		else
			printf("recover: wrote data/instance = %s\n", v);
		fflush(stdout);
	}
	hvc_set_device_assigned_cb(h, on_device, NULL);
	if (!strcmp(mode, "stall")) {
		if (hvc_watchdog_ms(h)) {
			/* A reason that is not a string is refused, not logged. */
			struct hv_watchdog_stall_req q;
			memset(&q, 'A', sizeof(q));
			struct hvc_msg m = {
			    .op = HV_OP_WATCHDOG_STALL, .req = &q, .req_len = sizeof(q)};
			printf("recover: unterminated why: %d\n", hvc_call_exact(h, &m));
			fflush(stdout);
		} else {
			printf("recover: stall without watchdog: %d\n",
			       hvc_watchdog_stall(h, 1, "no watchdog"));
			fflush(stdout);
		}
		evloop_set_progress_check(loop, fake_stall, NULL);
	}
	if (!strcmp(mode, "hang")) {
		int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		struct itimerspec its = {.it_value = {0, 300000000}};
		timerfd_settime(tfd, 0, &its, NULL);
		evloop_add_fd(loop, tfd, EPOLLIN, hang_now, NULL);
	}
	int r = evloop_run(loop);
	printf("recover: loop ended: %d\n", r);
	return 3;
}
