// SPDX-License-Identifier: MIT
// Test domain kernel (static, started by drvdom-hv in the xs_stress suite)
// that hammers the libxenstore-compatible library over its xenstore ring
// while its main thread runs an evloop of its own, as blkback does: the
// loop owns a loopback event channel (a port bound to another port of the
// same domain) that a timer kicks every millisecond, so the loop dispatches
// the shared hypercall connection all the time. Meanwhile a worker thread
//   1. runs CYCLES xs_open / xs_read / xs_watch / xs_read_watch / xs_close
//      cycles (one handle at a time: the domain has one ring),
//   2. opens one handle, registers a watch (which starts the reader
//      thread), and runs READS xs_read calls from each of two threads on it,
//      checking every value,
// then publishes data/result = "ok <loop port events> <slowest xs_read, ms>"
// (or "fail: why") while the loop keeps running. Any lost wake-up shows up as a hang, which the
// suite's timeout catches; a stolen port event as a loop that saw none.
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "hv/evloop.h"
#include "hv/evtchn.h"
#include "hv/hvc.h"
#include "xenstore/include/xenstore.h"
#include "xenstore/xs_transport.h"

#define CYCLES 200
#define READS 300

static struct hvc *h;
static struct evloop *loop;
static evtchn_port_t loop_a, loop_b; /* a: the loop's handler, b: kicked */
static atomic_uint loop_events;
static char result[128] = "fail: no result";
static _Atomic long max_us; /* the slowest xs_read */

static long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* xs_read, timed. */
static char *timed_read(struct xs_handle *x, const char *path, unsigned int *len)
{
	long t = now_us();
	char *v = xs_read(x, XBT_NULL, path, len);
	t = now_us() - t;
	long m = atomic_load(&max_us);
	while (t > m && !atomic_compare_exchange_weak(&max_us, &m, t))
		;
	return v;
}

static void on_loop_port(void *arg, evtchn_port_t port, enum evtchn_event ev)
{
	(void)arg;
	(void)port;
	if (ev == EVTCHN_EV_NOTIFY)
		atomic_fetch_add(&loop_events, 1);
}

static void on_timer(void *arg, int fd, uint32_t events)
{
	(void)arg;
	(void)events;
	uint64_t v;
	(void)!read(fd, &v, sizeof(v));
	evtchn_notify(h, loop_b);
}

static int cycles(void)
{
	for (int i = 0; i < CYCLES; i++) {
		struct xs_handle *x = xs_open(0);
		if (!x) {
			snprintf(result, sizeof(result), "fail: cycle %d: xs_open: %s", i,
				 strerror(errno));
			return -1;
		}
		unsigned int len;
		char *v = timed_read(x, "data/k", &len);
		bool ok = v && len == 2 && !strcmp(v, "v0");
		free(v);
		if (!ok) {
			snprintf(result, sizeof(result), "fail: cycle %d: xs_read: %s", i,
				 strerror(errno));
			xs_close(x);
			return -1;
		}
		char tok[32];
		snprintf(tok, sizeof(tok), "c%d", i);
		if (!xs_watch(x, "data/k", tok)) {
			snprintf(result, sizeof(result), "fail: cycle %d: xs_watch: %s", i,
				 strerror(errno));
			xs_close(x);
			return -1;
		}
		/* The registration's own event; earlier handles' tokens must not
		 * show up here. */
		unsigned int n;
		char **e = xs_read_watch(x, &n);
		ok = e && !strcmp(e[XS_WATCH_TOKEN], tok);
		if (!ok)
			snprintf(result, sizeof(result), "fail: cycle %d: watch event %s", i,
				 e ? e[XS_WATCH_TOKEN] : strerror(errno));
		free(e);
		xs_close(x);
		if (!ok)
			return -1;
	}
	return 0;
}

struct reader_arg {
	struct xs_handle *x;
	int which;
	int bad;
};

static void *reads(void *p)
{
	struct reader_arg *a = p;
	char path[32], want[32];
	for (int i = 0; i < READS; i++) {
		int k = (i + a->which) % 4;
		snprintf(path, sizeof(path), "data/r%d", k);
		snprintf(want, sizeof(want), "value-%d", k);
		unsigned int len;
		char *v = timed_read(a->x, path, &len);
		if (!v || strcmp(v, want))
			a->bad++;
		free(v);
	}
	return NULL;
}

static int concurrent(void)
{
	struct xs_handle *x = xs_open(0);
	if (!x) {
		snprintf(result, sizeof(result), "fail: xs_open: %s", strerror(errno));
		return -1;
	}
	int ret = -1;
	if (!xs_watch(x, "data/w", "w")) {
		snprintf(result, sizeof(result), "fail: xs_watch: %s", strerror(errno));
		goto out;
	}
	struct reader_arg ra[2] = {{x, 0, 0}, {x, 1, 0}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, reads, &ra[i]))
			goto out;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	if (ra[0].bad || ra[1].bad) {
		snprintf(result, sizeof(result), "fail: %d + %d bad reads", ra[0].bad, ra[1].bad);
		goto out;
	}
	ret = 0;
out:
	xs_close(x);
	return ret;
}

static void *worker(void *arg)
{
	(void)arg;
	if (cycles() == 0 && concurrent() == 0) {
		if (atomic_load(&loop_events) == 0)
			snprintf(result, sizeof(result), "fail: the loop saw no port event");
		else
			snprintf(result, sizeof(result), "ok %u %ld", atomic_load(&loop_events),
				 atomic_load(&max_us) / 1000);
	}
	/* Published from here, with the loop still running. */
	struct xs_handle *x = xs_open(0);
	if (!x || !xs_write(x, XBT_NULL, "data/result", result, (unsigned int)strlen(result)))
		printf("xs_stress_dom: cannot publish the result\n");
	xs_close(x);
	printf("xs_stress_dom: %s\n", result);
	fflush(stdout);
	return NULL;
}

static void sleep_forever(void)
{
	for (;;) {
		struct timespec ts = {1, 0};
		nanosleep(&ts, NULL);
	}
}

int main(void)
{
	domid_t self;
	if (hvc_open_domain(&h) || hvc_self_domid(h, &self) || evloop_create(h, &loop)) {
		printf("xs_stress_dom: no hypercall socket\n");
		return 1;
	}
	xs_ring_use_hvc(h);
	int r = evtchn_alloc_unbound(h, self, &loop_a);
	if (!r)
		r = evtchn_bind_interdomain(h, self, loop_a, &loop_b);
	if (!r)
		r = evloop_add_port(loop, loop_a, on_loop_port, NULL);
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = {.it_interval = {0, 1000000}, .it_value = {0, 1000000}};
	if (r || tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) ||
	    evloop_add_fd(loop, tfd, EPOLLIN, on_timer, NULL)) {
		printf("xs_stress_dom: loop setup: %s\n", strerror(r ? -r : errno));
		return 1;
	}
	pthread_t w;
	if (pthread_create(&w, NULL, worker, NULL))
		return 1;
	r = evloop_run(loop); /* until dom0 kills the domain */
	printf("xs_stress_dom: evloop: %s\n", strerror(-r));
	fflush(stdout);
	sleep_forever();
}
