// SPDX-License-Identifier: MIT
// The per-domain event loop (see hv/evloop.h). Registered fds carry a
// heap record in epoll's data.ptr; a record removed while a batch of epoll
// events is being dispatched is only marked dead and freed after the batch,
// so a callback may remove any fd, including one still in the batch.
#include "hv/evloop.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "hv/hvc.h"

struct evloop_fd {
	struct evloop_fd *next; /* all records, or the dead list */
	int fd;
	bool dead;
	bool internal; /* the hvc or stop fd */
	evloop_fd_fn cb;
	void *arg;
};

struct evloop_poller {
	evloop_poll_fn fn;
	void *arg;
};

struct evloop {
	struct hvc *h;
	int ep;
	int stop_fd;
	atomic_bool stop;
	int err; /* sticky hv connection error */
	struct evloop_fd *fds, *dead;
	struct evloop_poller *pollers;
	unsigned npollers, cap_pollers;
	uint64_t spin_ns;
	uint64_t wait_spin_ns;
	bool pending; /* a poller of the last pass awaits a peer */
	uint64_t last_work_ns;
	uint64_t last_fdcheck_ns;
	uint64_t last_hb_ns; /* last HEARTBEAT sent (watchdog) */
	evloop_progress_fn progress; /* ring-progress watchdog */
	void *progress_arg;
	bool stall_told; /* the hv was told of a stall: it kills us */
	bool one_cpu;	      /* the thread may run on one CPU only: never spin */
	uint64_t aff_check_ns; /* when one_cpu was last looked up */
	struct evloop_stats st;
};

/* While pollers keep finding work, or the loop spins, still look at fds
 * (non-blocking) this often. */
#define EVLOOP_FDCHECK_NS 200000u
#define EVLOOP_SPIN_FDCHECK_NS 5000u
/* A sched_yield that took this long let another task run. */
#define EVLOOP_YIELD_RAN_NS 1500u
/* How often the loop looks up its CPU affinity again (a toolstack may pin
 * a running domain: drvdom create with cpus =, or taskset). */
#define EVLOOP_AFFINITY_NS 1000000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("pause" ::: "memory");
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

static void hvc_ready(void *arg, int fd, uint32_t events)
{
	struct evloop *l = arg;
	(void)fd;
	(void)events;
	int r = hvc_dispatch(l->h);
	if (r < 0)
		l->err = r;
}

static void stop_ready(void *arg, int fd, uint32_t events)
{
	(void)arg;
	(void)events;
	uint64_t v;
	(void)!read(fd, &v, sizeof(v));
}

static int add_fd(struct evloop *l, int fd, uint32_t events, evloop_fd_fn cb, void *arg,
		  bool internal)
{
	for (struct evloop_fd *r = l->fds; r; r = r->next)
		if (r->fd == fd)
			return -EEXIST;
	struct evloop_fd *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = fd;
	r->cb = cb;
	r->arg = arg;
	r->internal = internal;
	struct epoll_event ee = {.events = events, .data.ptr = r};
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ee) < 0) {
		int err = -errno;
		free(r);
		return err;
	}
	r->next = l->fds;
	l->fds = r;
	return 0;
}

int evloop_create(struct hvc *h, struct evloop **out)
{
	int ret;
	struct evloop *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->h = h;
	l->spin_ns = EVLOOP_SPIN_NS_DEFAULT;
	l->wait_spin_ns = EVLOOP_WAIT_SPIN_NS_DEFAULT;
	l->stop_fd = -1;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0) {
		ret = -errno;
		goto fail;
	}
	l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->stop_fd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = add_fd(l, l->stop_fd, EPOLLIN, stop_ready, l, true);
	if (ret < 0)
		goto fail;
	if (h) {
		ret = add_fd(l, hvc_fd(h), EPOLLIN, hvc_ready, l, true);
		if (ret < 0)
			goto fail;
	}
	*out = l;
	return 0;
fail:
	evloop_destroy(l);
	return ret;
}

void evloop_destroy(struct evloop *l)
{
	if (!l)
		return;
	for (struct evloop_fd *r = l->fds, *n; r; r = n) {
		n = r->next;
		free(r);
	}
	for (struct evloop_fd *r = l->dead, *n; r; r = n) {
		n = r->next;
		free(r);
	}
	if (l->stop_fd >= 0)
		close(l->stop_fd);
	if (l->ep >= 0)
		close(l->ep);
	free(l->pollers);
	free(l);
}

int evloop_add_port(struct evloop *l, evtchn_port_t port, evtchn_handler_fn cb, void *arg)
{
	if (!l->h)
		return -ENOTCONN;
	return evtchn_set_handler(l->h, port, cb, arg);
}

int evloop_del_port(struct evloop *l, evtchn_port_t port)
{
	return evloop_add_port(l, port, NULL, NULL);
}

int evloop_add_fd(struct evloop *l, int fd, uint32_t events, evloop_fd_fn cb, void *arg)
{
	if (fd < 0 || !cb)
		return -EINVAL;
	return add_fd(l, fd, events, cb, arg, false);
}

static struct evloop_fd *find_fd(struct evloop *l, int fd, struct evloop_fd ***pp)
{
	struct evloop_fd **p = &l->fds;
	while (*p && ((*p)->fd != fd || (*p)->internal))
		p = &(*p)->next;
	if (pp)
		*pp = p;
	return *p;
}

int evloop_mod_fd(struct evloop *l, int fd, uint32_t events)
{
	struct evloop_fd *r = find_fd(l, fd, NULL);
	if (!r)
		return -ENOENT;
	struct epoll_event ee = {.events = events, .data.ptr = r};
	return epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ee) < 0 ? -errno : 0;
}

int evloop_del_fd(struct evloop *l, int fd)
{
	struct evloop_fd **p;
	struct evloop_fd *r = find_fd(l, fd, &p);
	if (!r)
		return -ENOENT;
	(void)epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
	*p = r->next;
	r->dead = true;
	r->next = l->dead;
	l->dead = r;
	return 0;
}

int evloop_add_poller(struct evloop *l, evloop_poll_fn fn, void *arg)
{
	if (!fn)
		return -EINVAL;
	if (l->npollers == l->cap_pollers) {
		unsigned cap = l->cap_pollers ? 2 * l->cap_pollers : 4;
		struct evloop_poller *p = realloc(l->pollers, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->pollers = p;
		l->cap_pollers = cap;
	}
	l->pollers[l->npollers++] = (struct evloop_poller){fn, arg};
	/* A new poller probably has work soon: start by spinning. */
	l->last_work_ns = now_ns();
	return 0;
}

int evloop_del_poller(struct evloop *l, evloop_poll_fn fn, void *arg)
{
	for (unsigned i = 0; i < l->npollers; i++) {
		if (l->pollers[i].fn == fn && l->pollers[i].arg == arg) {
			memmove(&l->pollers[i], &l->pollers[i + 1],
				(l->npollers - i - 1) * sizeof(*l->pollers));
			l->npollers--;
			return 0;
		}
	}
	return -ENOENT;
}

void evloop_set_spin_ns(struct evloop *l, uint64_t ns)
{
	l->spin_ns = ns;
}

void evloop_poll_pending(struct evloop *l)
{
	l->pending = true;
}

void evloop_set_wait_spin_ns(struct evloop *l, uint64_t ns)
{
	l->wait_spin_ns = ns;
}

/* Spinning pays only while the peer it waits for runs on another CPU. A
 * thread allowed on one CPU only was placed there with its peers (the
 * cpus = key puts a guest and its driver domain on the same CPU, so that a
 * hand-off is a same-core wake-up of a few microseconds): its spin would
 * only keep the peer it waits for off that CPU. */
static void affinity_check(struct evloop *l, uint64_t now)
{
	if (now - l->aff_check_ns < EVLOOP_AFFINITY_NS && l->aff_check_ns)
		return;
	l->aff_check_ns = now;
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		l->one_cpu = CPU_COUNT(&set) == 1;
}

/* How long after the last work the loop keeps spinning. */
static uint64_t spin_budget(const struct evloop *l)
{
	if (l->one_cpu)
		return 0;
	if (l->pending && l->spin_ns && l->wait_spin_ns > l->spin_ns)
		return l->wait_spin_ns;
	return l->spin_ns;
}

void evloop_stop(struct evloop *l)
{
	atomic_store(&l->stop, true);
	uint64_t one = 1;
	(void)!write(l->stop_fd, &one, sizeof(one));
}

void evloop_get_stats(const struct evloop *l, struct evloop_stats *out)
{
	*out = l->st;
}

static int run_pollers(struct evloop *l, unsigned flags)
{
	int work = 0;
	l->pending = false;
	/* By index: a poller may add or remove pollers. */
	for (unsigned i = 0; i < l->npollers; i++)
		if (l->pollers[i].fn(l->pollers[i].arg, flags))
			work++;
	if (work)
		l->st.poll_work += (uint64_t)work;
	return work;
}

static int wait_fds(struct evloop *l, int timeout_ms)
{
	struct epoll_event evs[64];
	if (timeout_ms != 0)
		l->st.sleeps++;
	int n = epoll_wait(l->ep, evs, 64, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n > 0 && timeout_ms != 0)
		l->st.wakeups++;
	int handled = 0;
	for (int i = 0; i < n; i++) {
		struct evloop_fd *r = evs[i].data.ptr;
		if (r->dead)
			continue;
		r->cb(r->arg, r->fd, evs[i].events);
		if (!r->internal || r->cb == hvc_ready)
			handled++;
	}
	for (struct evloop_fd *r = l->dead, *nx; r; r = nx) {
		nx = r->next;
		free(r);
	}
	l->dead = NULL;
	return handled;
}

void evloop_set_progress_check(struct evloop *l, evloop_progress_fn fn, void *arg)
{
	l->progress = fn;
	l->progress_arg = arg;
}

/* The ring-progress watchdog: ask the progress check, and tell the hv of a
 * stall once (it kills us; if it refuses, the watchdog is off: ask again
 * at later ticks). */
static void progress_check(struct evloop *l, uint64_t now, uint32_t wd)
{
	if (!l->progress || l->stall_told)
		return;
	char why[HV_STALL_WHY_MAX];
	why[0] = 0;
	uint64_t age = l->progress(l->progress_arg, now, (uint64_t)wd * 1000000u, why, sizeof(why));
	if (!age)
		return;
	uint64_t ms = age / 1000000u;
	if (hvc_watchdog_stall(l->h, ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms, why) == 0)
		l->stall_told = true;
}

/* The hv's watchdog (docs/recovery.md): while it is set, heartbeat every
 * quarter period from the loop itself, so a loop stuck in a callback stops
 * heartbeating and gets killed; and never sleep past the next one. At each
 * heartbeat the progress check looks for work stuck with a live loop. */
static void heartbeat(struct evloop *l, uint64_t now, int *timeout_ms)
{
	uint32_t wd = l->h ? hvc_watchdog_ms(l->h) : 0;
	if (!wd)
		return;
	uint64_t period = (uint64_t)wd * 1000000u / 4;
	if (now - l->last_hb_ns >= period) {
		(void)hvc_heartbeat(l->h); /* a lost hv shows on its fd */
		l->last_hb_ns = now;
		progress_check(l, now, wd);
	}
	uint64_t left = l->last_hb_ns + period - now;
	int ms = (int)((left + 999999u) / 1000000u);
	if (*timeout_ms < 0 || *timeout_ms > ms)
		*timeout_ms = ms;
}

int evloop_run_once(struct evloop *l, int timeout_ms)
{
	if (l->err)
		return l->err;
	int total = 0, r;
	uint64_t now = now_ns();
	heartbeat(l, now, &timeout_ms);
	affinity_check(l, now);
	int w = run_pollers(l, 0);
	if (w) {
		total += w;
		l->last_work_ns = now;
		if (now - l->last_fdcheck_ns >= EVLOOP_FDCHECK_NS) {
			l->last_fdcheck_ns = now;
			r = wait_fds(l, 0);
			if (r < 0)
				return r;
			total += r;
		}
		return l->err ? l->err : total;
	}
	/* Spin: pollers only while work was recent (longer while a poller
	 * awaits a peer); fds are looked at without blocking now and then, so
	 * a socket's input does not wait for the spin to end. */
	if (l->npollers && now - l->last_work_ns < spin_budget(l)) {
		uint64_t start = now;
		for (unsigned i = 1;; i++) {
			cpu_relax();
			w = run_pollers(l, 0);
			if (w) {
				l->last_work_ns = now_ns();
				l->st.spin_ns += l->last_work_ns - start;
				return total + w;
			}
			if (atomic_load_explicit(&l->stop, memory_order_relaxed))
				return total;
			if ((i & 15) == 0) {
				/* Give the CPU to whatever else is runnable on it:
				 * often the very peer we wait for, woken on this
				 * core, which our spinning would otherwise keep
				 * off it for the rest of our time slice. With
				 * nothing else runnable this returns at once. */
				uint64_t before = now_ns();
				sched_yield();
				now = now_ns();
				bool others_ran = now - before >= EVLOOP_YIELD_RAN_NS;
				if (now - l->last_work_ns >= spin_budget(l))
					break;
				/* Another task ran: it may have written to one
				 * of our fds (a client's next request). */
				if (others_ran ||
				    now - l->last_fdcheck_ns >= EVLOOP_SPIN_FDCHECK_NS) {
					l->last_fdcheck_ns = now;
					r = wait_fds(l, 0);
					if (r < 0)
						return r;
					if (r) {
						l->last_work_ns = now;
						l->st.spin_ns += now - start;
						return l->err ? l->err : total + r;
					}
				}
			}
		}
		l->st.spin_ns += now - start;
	}
	/* Final check before sleeping: pollers re-arm and look again. */
	if (l->npollers) {
		w = run_pollers(l, EVLOOP_POLL_FINAL);
		if (w) {
			l->last_work_ns = now_ns();
			return total + w;
		}
	}
	if (atomic_load_explicit(&l->stop, memory_order_relaxed))
		return total;
	r = wait_fds(l, timeout_ms);
	if (r < 0)
		return r;
	total += r;
	now = now_ns();
	l->last_fdcheck_ns = now;
	if (r)
		l->last_work_ns = now; /* a wake-up usually brings more work */
	return l->err ? l->err : total;
}

int evloop_run(struct evloop *l)
{
	while (!atomic_load(&l->stop)) {
		int r = evloop_run_once(l, -1);
		if (r < 0)
			return r;
	}
	atomic_store(&l->stop, false);
	return 0;
}
