// SPDX-License-Identifier: MIT
// netfront, the guest side of netif (docs/netfront.md): for every
// /local/domain/<self>/device/vif/N it takes the TAP fd the toolstack
// assigned (the drvdom-tap key), runs the XenbusState handshake with the
// backend, and moves frames between the TAP (virtio_net_hdr offloads) and
// the netif rings (scatter-gather, GSO extra info), so the guest's eth N
// carries ordinary traffic. Everything runs in the caller's event loop
// thread. It survives its backend going away: the TAP stays up, and
// netfront reconnects when the backend offers itself again (InitWait).
#ifndef DRVDOM_FRONTENDS_NETFRONT_H
#define DRVDOM_FRONTENDS_NETFRONT_H

#include <stdbool.h>

struct hvc;
struct xs_handle;
struct evloop;
struct gnt_table;

/* Start serving this domain's vifs: watch device/vif (the watch tokens all
 * start with "netfront:") and set up each vif found, now and later. Call
 * once, from the event loop thread, after xs_open. gt is the domain's grant
 * table if the program already opened it (one per domain), or NULL for
 * netfront to open it. h, xs, l and gt must outlive netfront. Does not
 * block beyond xenstore round trips. Returns 0 or -errno. */
int netfront_watch_start(struct hvc *h, struct xs_handle *xs, struct evloop *l,
			 struct gnt_table *gt);

/* Hand netfront a xenstore watch event read from xs (xs_check_watch): the
 * program owning the xs handle calls this for every event. Returns true if
 * the token was netfront's (event handled), false otherwise. Event loop
 * thread only. */
bool netfront_xs_event(const char *path, const char *token);

/* Whether to tell backends that offer it (drvdom-persistent-grants) that
 * our buffer grants stay fixed for the connection, so they may keep them
 * mapped instead of asking the hv to copy each packet (docs/netfront.md).
 * Default on; call before netfront_watch_start. */
void netfront_set_persistent(bool on);

/* Queues to use at most per vif (netif multi-queue, docs/netfront.md): a
 * vif uses min(n, the backend's multi-queue-max-queues) queues, each flow
 * sent on one of them by its hash. Default 1 (the top-level keys of a
 * single queue, as before multi-queue); at most 4. Call before
 * netfront_watch_start (or before a vif's next handshake). */
void netfront_set_max_queues(unsigned n);

/* Disconnect every vif (state Closed) and free netfront's state. Event loop
 * thread only. */
void netfront_stop(void);

#endif
