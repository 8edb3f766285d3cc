// SPDX-License-Identifier: MIT
// Internal interface between the parts of the domain-side library (hvc.c,
// evtchn.c, evloop.c, grant/*.c). Not for programs: they use hv/hvc.h,
// hv/evtchn.h, hv/evloop.h and grant/gnt.h. Prototypes are grouped by the
// file that defines them.
#ifndef DRVDOM_HV_HVC_INTERNAL_H
#define DRVDOM_HV_HVC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "hv/hvc.h"
#include "hv/evtchn.h"

/* epoll data tags of the internal epoll set behind hvc_fd(). Port wait fds
 * are tagged with HVC_TAG_PORT | bind serial << 16 | port. */
#define HVC_TAG_SOCK 0x1ull
#define HVC_TAG_WAKE 0x2ull
#define HVC_TAG_PORT (1ull << 63)

/* A queued async event waiting for hvc_dispatch(). */
struct hvc_qevt {
	struct hvc_qevt *next;
	uint32_t op; /* HV_EVT_* */
	union {
		struct hv_evt_port_bound bound;
		struct hv_evt_port_closed closed;
		struct hv_evt_device_assigned dev;
		struct hv_evt_domain_exit exit;
		struct hv_evt_domain_restarted restarted;
		struct hv_evt_domain_failed failed;
		struct hv_evt_watchdog watchdog;
	} u;
};

struct evtchn_state;

struct hvc {
	int sock;
	int wake_fd;		 /* eventfd: queue non-empty or an event to deliver */
	int ep_fd;		 /* epoll set {sock, wake_fd, port wait fds}: hvc_fd() */
	pthread_mutex_t io_lock; /* one outstanding call; all socket reads */
	uint32_t next_id;
	void *rxbuf; /* HV_MSG_MAX bytes, used under io_lock */

	pthread_mutex_t q_lock; /* queue and callbacks */
	struct hvc_qevt *q_head, **q_tail;
	hvc_domain_exit_fn exit_fn;
	void *exit_arg;
	hvc_device_assigned_fn dev_fn;
	void *dev_arg;
	hvc_domain_restarted_fn restarted_fn;
	void *restarted_arg;
	hvc_domain_failed_fn failed_fn;
	void *failed_arg;

	atomic_uint watchdog_ms; /* HV_EVT_WATCHDOG: the event loop heartbeats */

	atomic_int self_known;
	domid_t self;

	struct evtchn_state *ev;

	pthread_mutex_t gnt_lock; /* grant mapping cache (grant/gnt_map.c) */
	void *gnt_cache;
	void (*gnt_cache_free)(void *);
	/* The domain's one grant table, shared by every gnt_table_open on this
	 * connection (grant/gnt_table.c), under gnt_lock. */
	struct gnt_table *gnt_table;
	void (*gnt_table_detach)(struct gnt_table *); /* at hvc_close */
};

/* hvc.c */
void hvc_wake(struct hvc *h);

/* evtchn.c: called by hvc.c */
int evtchn_state_init(struct hvc *h);
void evtchn_state_free(struct hvc *h);
/* An EVT_PORT_BOUND arrived with fds[0] wait, fds[1] kick (taken over). */
void evtchn_on_bound(struct hvc *h, const struct hv_evt_port_bound *e, int wait_fd, int kick_fd);
/* An EVT_PORT_CLOSED arrived: drop fds, the port is unbound. */
void evtchn_on_closed(struct hvc *h, evtchn_port_t port);
/* Run the handlers of a bound/closed port (from hvc_dispatch). */
void evtchn_dispatch_state(struct hvc *h, evtchn_port_t port, enum evtchn_event ev);
/* A wait fd in the internal epoll set fired (tag from epoll data). */
void evtchn_on_wait_fd(struct hvc *h, uint64_t tag);
/* Run the handlers of pending unmasked ports. Returns how many. */
int evtchn_deliver(struct hvc *h);

#endif
