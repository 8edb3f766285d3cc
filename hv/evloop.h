// SPDX-License-Identifier: MIT
// The per-domain event loop: epoll over the hypercall connection (async
// events and event channel ports, see hvc_fd()), any other fds, and
// *pollers* for adaptive polling. A cross-core eventfd wake-up costs tens of
// microseconds while a cache line crosses in tens of nanoseconds (issue 2),
// so when a poller found work recently the loop spins, calling the pollers
// and making no system calls, for up to a budget (default 20 us) before it
// sleeps in epoll_wait; before sleeping it calls every poller once more with
// EVLOOP_POLL_FINAL so a ring consumer can re-arm its notifications and
// look again (Xen's RING_FINAL_CHECK_FOR_*). Idle, it sleeps: ~0 CPU. One
// thread runs a loop; only evloop_stop() may be called from another.
#ifndef DRVDOM_HV_EVLOOP_H
#define DRVDOM_HV_EVLOOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h> /* EPOLLIN etc. for evloop_add_fd */

#include "hv/evtchn.h"
#include "hv/hv_abi.h"

struct hvc;
struct evloop;

/* An fd became ready: events are EPOLL* bits. */
typedef void (*evloop_fd_fn)(void *arg, int fd, uint32_t events);

/* A poller looks for work without blocking and without system calls if it
 * can (e.g. a ring's producer index). flags: 0 while spinning, or
 * EVLOOP_POLL_FINAL just before the loop sleeps (re-arm notifications, then
 * look again). Returns nonzero if it found (and did) work. */
typedef int (*evloop_poll_fn)(void *arg, unsigned flags);
#define EVLOOP_POLL_FINAL 1u

/* Default spin budget after the last work found, in nanoseconds. */
#define EVLOOP_SPIN_NS_DEFAULT 20000u
/* Default longer budget while a poller awaits a peer (evloop_poll_pending). */
#define EVLOOP_WAIT_SPIN_NS_DEFAULT 150000u

/* Create a loop. h (may be NULL for a loop with no hv, e.g. tests) is
 * registered automatically: async hv events and port handlers run from the
 * loop. Does not block. Returns 0 or -errno. */
int evloop_create(struct hvc *h, struct evloop **out);

/* Free the loop (not the hvc, nor the fds registered). Not from inside a
 * callback. NULL is a no-op. */
void evloop_destroy(struct evloop *l);

/* Run cb for events of a port (EVTCHN_EV_NOTIFY / _BOUND / _CLOSED); see
 * evtchn_set_handler. cb == NULL removes. Returns 0 or -errno (-EINVAL, or
 * -ENOTCONN if the loop has no hvc). */
int evloop_add_port(struct evloop *l, evtchn_port_t port, evtchn_handler_fn cb, void *arg);
int evloop_del_port(struct evloop *l, evtchn_port_t port);

/* Watch fd for events (EPOLLIN/EPOLLOUT/...; level-triggered). The fd stays
 * the caller's; remove it with evloop_del_fd before closing it. Callable
 * from callbacks of the same loop. Returns 0 or -errno (-EEXIST). */
int evloop_add_fd(struct evloop *l, int fd, uint32_t events, evloop_fd_fn cb, void *arg);
int evloop_mod_fd(struct evloop *l, int fd, uint32_t events);
int evloop_del_fd(struct evloop *l, int fd);

/* Add / remove a poller (matched by fn and arg). Callable from callbacks.
 * Returns 0 or -errno (-ENOMEM, -ENOENT). */
int evloop_add_poller(struct evloop *l, evloop_poll_fn fn, void *arg);
int evloop_del_poller(struct evloop *l, evloop_poll_fn fn, void *arg);

/* Set the spin budget (0 = never spin: always final-check and sleep). */
void evloop_set_spin_ns(struct evloop *l, uint64_t ns);

/* From a poller: it is waiting for an answer from a peer that is working on
 * something it sent (requests on a ring, I/O in flight). During this pass
 * the loop then spins up to the wait budget after the last work found (not
 * the shorter spin budget), so an answer that takes longer than the spin
 * budget but less than two sleeping wake-ups is not paid for with them.
 * Bounded: with no work for the wait budget the loop sleeps anyway. */
void evloop_poll_pending(struct evloop *l);

/* Set the wait budget (default EVLOOP_WAIT_SPIN_NS_DEFAULT; 0 = like the
 * spin budget). */
void evloop_set_wait_spin_ns(struct evloop *l, uint64_t ns);

/* A progress check (the ring-progress watchdog, docs/recovery.md): looks
 * at the caller's private bookkeeping only (never at memory a peer can
 * write, so a peer cannot make it report) for work taken from a peer and
 * not yet answered. Returns 0 if nothing has been outstanding for bound_ns
 * or longer, else the age in ns of the oldest such work, described in why
 * (cap bytes, e.g. "vbd/5/51712 ring 0: request outstanding 2013 ms"). */
typedef uint64_t (*evloop_progress_fn)(void *arg, uint64_t now_ns, uint64_t bound_ns, char *why,
				       size_t cap);

/* Set the loop's progress check (fn == NULL removes it). While the hv has
 * set a watchdog (hvc_watchdog_ms), the loop calls it at every heartbeat
 * (every quarter period) with bound = the watchdog period; when it reports
 * a stall the loop tells the hv (hvc_watchdog_stall, once), which kills and
 * restarts the domain per its on_crash. The loop wakes at least every
 * quarter period and runs every poller, so work a peer published without a
 * notification is taken within that time and is not a stall. */
void evloop_set_progress_check(struct evloop *l, evloop_progress_fn fn, void *arg);

/* One iteration: pollers; spin within the budget if work was found
 * recently; else final check and wait up to timeout_ms (-1: forever) for
 * fds and ports. Blocks at most timeout_ms, and while the hv has set a
 * watchdog (hvc_watchdog_ms) at most until the next HEARTBEAT, which the
 * loop sends itself every quarter of the period. Returns the number of things
 * handled (0 on timeout), or -errno: the hv connection is gone
 * (-ECONNRESET) or broke the protocol (-EPROTO). */
int evloop_run_once(struct evloop *l, int timeout_ms);

/* Run until evloop_stop() or an error. Blocks. Returns 0 after a stop or
 * the error of evloop_run_once. */
int evloop_run(struct evloop *l);

/* Make evloop_run return after the current iteration. Any thread, any
 * callback; async-signal-safe. */
void evloop_stop(struct evloop *l);

/* Counters, for tests and drvdom top. */
struct evloop_stats {
	uint64_t sleeps;    /* epoll_wait calls that could block */
	uint64_t wakeups;   /* ... that returned events */
	uint64_t poll_work; /* poller calls that found work */
	uint64_t spin_ns;   /* time spent spinning without work */
};
void evloop_get_stats(const struct evloop *l, struct evloop_stats *out);

#endif
