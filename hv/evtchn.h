// SPDX-License-Identifier: MIT
// Event channels, domain side (docs/hv.md "Event channels"). Ports are the
// hv's; each bound direction is an eventfd the hv made, so a send is one
// write() to the kick fd with no hv round trip. Pending and mask state is
// the library's, in Xen's 2-level layout (pending and mask bitmaps of
// 64 x 64 bits plus a selector word): an event sets the port's pending bit;
// if the port is not masked its handler runs from the event loop
// (hvc_dispatch / evloop), which clears the bit first; unmasking a pending
// port delivers it. Handlers also hear EVTCHN_EV_BOUND (a peer bound to a
// port of ours) and EVTCHN_EV_CLOSED (the peer closed or died: the port is
// unbound again and sends go nowhere, as in Xen).
#ifndef DRVDOM_HV_EVTCHN_H
#define DRVDOM_HV_EVTCHN_H

#include <stdatomic.h>
#include <stdint.h>

#include "hv/hv_abi.h"

struct hvc;

enum evtchn_event {
	EVTCHN_EV_NOTIFY = 0, /* the peer sent an event */
	EVTCHN_EV_BOUND = 1,  /* a peer bound to this (unbound) port */
	EVTCHN_EV_CLOSED = 2, /* the peer closed its end or died */
};

/* A port handler. Runs in the thread that calls hvc_dispatch() (the event
 * loop), with no library lock held: it may make hypercalls. */
typedef void (*evtchn_handler_fn)(void *arg, evtchn_port_t port, enum evtchn_event ev);

/* Allocate a port that domain `remote` may bind to. Any domain; one round
 * trip. Returns 0 and *port, or -errno (-ENOSPC: no free port, -ESRCH). */
int evtchn_alloc_unbound(struct hvc *h, domid_t remote, evtchn_port_t *port);

/* dom0 only: allocate an unbound port in domain `dom` for `remote` (as the
 * toolstack does for xenstore). Returns 0 and the port of `dom`. */
int evtchn_alloc_unbound_for(struct hvc *h, domid_t dom, domid_t remote, evtchn_port_t *port);

/* Bind to port rport of domain remote, which must be unbound and allocated
 * for us. The new local port is pending (Xen does that), so its handler
 * runs once after it is set. One round trip. Returns 0 and *lport, or
 * -errno (-EINVAL: rport not unbound for us, -ESRCH: no such domain,
 * -ENOSPC). A binder racing the other side retries on -EINVAL/-ESRCH. */
int evtchn_bind_interdomain(struct hvc *h, domid_t remote, evtchn_port_t rport,
			    evtchn_port_t *lport);

/* Notify the peer of a bound port: one write() to the kick eventfd. Any
 * thread; never blocks. An unknown port is silently ignored (as in Xen). A
 * port allocated with alloc_unbound and not yet known to be bound keeps the
 * notify and delivers it when EVT_PORT_BOUND arrives: the peer may already
 * have bound at the hv with that event still in flight, and a lost
 * wake-up would stall both sides (at worst the event is spurious, which
 * Xen protocols tolerate). Returns 0, or -EINVAL for a port out of range. */
int evtchn_notify(struct hvc *h, evtchn_port_t port);

/* Close a port: the peer's end returns to unbound and its owner hears
 * EVTCHN_EV_CLOSED. The handler is dropped. One round trip. Returns 0 or
 * -errno (-EINVAL: not a port of ours). */
int evtchn_close(struct hvc *h, evtchn_port_t port);

/* Ask the hv about a port (dom = DOMID_SELF, or any domain for dom0). One
 * round trip. out gets the hv's struct. Returns 0 or -errno. */
int evtchn_status(struct hvc *h, domid_t dom, evtchn_port_t port, struct hv_evtchn_status_rep *out);

/* Install (fn != NULL) or remove the handler of a port. Any thread. If the
 * port is already pending and unmasked, the handler runs at the next
 * dispatch. Returns 0 or -EINVAL (port out of range). */
int evtchn_set_handler(struct hvc *h, evtchn_port_t port, evtchn_handler_fn fn, void *arg);

/* The eventfd that becomes readable when the peer notifies (for callers
 * running their own epoll; the fd stays the library's and dies when the
 * port closes). Prefer hvc_fd() + hvc_dispatch(), which read it for you.
 * Returns the fd, or -ENOTCONN if the port is not bound, -EINVAL. */
int evtchn_wait_fd(struct hvc *h, evtchn_port_t port);

/* Make a port private (on != 0) to a thread that waits on its wait fd
 * itself (evtchn_wait_fd_dup), or give it back to the event loop (on ==
 * 0). A private port's wait fd is kept out of hvc_fd()'s set, now and for
 * any later binding, so hvc_dispatch() never reads its events (no other
 * consumer can swallow the waiter's wake-up) and its handler never runs. A
 * private port not yet known to be bound keeps notifies until its
 * EVT_PORT_BOUND is read, as an alloc_unbound port does (the xenstore port
 * is allocated by dom0 for us). Cleared by evtchn_close. Any thread; does
 * not block beyond a mutex. Returns 0 or -EINVAL. */
int evtchn_set_private(struct hvc *h, evtchn_port_t port, int on);

/* A duplicate of a bound port's wait fd, owned by the caller (close it):
 * unlike evtchn_wait_fd's, it stays valid if the port closes meanwhile
 * (it then never fires again). Reading it consumes the port's events.
 * Any thread. Returns the fd, or -ENOTCONN (not bound), -EINVAL, -errno
 * of fcntl(F_DUPFD_CLOEXEC). */
int evtchn_wait_fd_dup(struct hvc *h, evtchn_port_t port);

/* Mask / unmask a port (Xen's evtchn_mask bitmap). While masked, events
 * only set the pending bit; unmasking a pending port delivers it at the next
 * dispatch. Any thread, lock-free. Return 0 or -EINVAL. */
int evtchn_mask(struct hvc *h, evtchn_port_t port);
int evtchn_unmask(struct hvc *h, evtchn_port_t port);
/* Clear a port's pending bit; *was (if non-NULL) says whether it was set. */
int evtchn_clear_pending(struct hvc *h, evtchn_port_t port, int *was);
/* 1 if pending, 0 if not, -EINVAL. */
int evtchn_is_pending(struct hvc *h, evtchn_port_t port);

/* --- the 2-level bitmap itself (pure, lock-free; unit tested) ----------- */

#define EVTCHN_WORDS (HV_EVTCHN_PORTS / 64)
_Static_assert(EVTCHN_WORDS == 64, "2-level ABI: 64 words of 64 bits");

/* Xen's shared_info evtchn_pending/evtchn_mask plus the vcpu's
 * evtchn_pending_sel: bit i of sel says word i may hold a deliverable
 * (pending and unmasked) port. Zero-initialise (all unmasked). */
struct evtchn_bitmap {
	_Atomic uint64_t pending[EVTCHN_WORDS];
	_Atomic uint64_t mask[EVTCHN_WORDS];
	_Atomic uint64_t sel;
};

/* Mark a port pending. Returns 1 if an upcall is due (it was not pending,
 * is unmasked and its selector bit was newly set), else 0. */
int evtchn_bm_set_pending(struct evtchn_bitmap *bm, evtchn_port_t port);
/* Clear pending; returns whether it was set. */
int evtchn_bm_clear_pending(struct evtchn_bitmap *bm, evtchn_port_t port);
void evtchn_bm_mask(struct evtchn_bitmap *bm, evtchn_port_t port);
/* Unmask; returns 1 if an upcall is due (the port was pending and the
 * selector bit newly set), else 0. */
int evtchn_bm_unmask(struct evtchn_bitmap *bm, evtchn_port_t port);
/* Take every pending unmasked port (clearing its pending bit) and call
 * fn(arg, port) for each, like Xen's upcall handler. Returns the count. */
int evtchn_bm_consume(struct evtchn_bitmap *bm, void (*fn)(void *arg, evtchn_port_t port),
		      void *arg);

#endif
