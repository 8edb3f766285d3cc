// SPDX-License-Identifier: MIT
// The client library's byte transport: the daemon's Unix socket (xs.c) or,
// inside a drvdom domain, the xenstore_domain_interface ring (xs_ring.c).
// Internal to xenstore/.
#ifndef DRVDOM_XENSTORE_XS_TRANSPORT_H
#define DRVDOM_XENSTORE_XS_TRANSPORT_H

#include <stddef.h>

struct xs_transport {
	int fd;
	void *priv;
	/* What a handle leaves unread on a connection that outlives it (the
	 * ring) for the next handle to take over (xs.c's receive state), or
	 * NULL (a socket dies with its handle). */
	void **carry;
	/* Blocking: all len bytes, or -errno (-ECONNRESET at end); *done says
	 * how many bytes were stored either way. */
	int (*read)(struct xs_transport *tp, void *buf, size_t len, size_t *done);
	int (*write)(struct xs_transport *tp, const void *buf, size_t len);
	/* Make a blocked read return (xs_close with a reader thread). */
	void (*shutdown)(struct xs_transport *tp);
	void (*close)(struct xs_transport *tp);
};

/* Open the domain's ring (page and port from the hv's DOMAIN_INFO); 0 or
 * -errno. Defined only when the ring transport is linked in. */
int xs_ring_open(struct xs_transport *tp);

struct hvc;
/* Inside a domain whose program already opened its hypercall connection:
 * make xs_open() use h instead of opening its own. Call before xs_open.
 * The library never dispatches h: the program's event loop keeps every
 * callback and may run concurrently with xenstore calls; only the store
 * port is the library's (made private while a handle is open). */
void xs_ring_use_hvc(struct hvc *h);

#endif
