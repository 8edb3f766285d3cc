// SPDX-License-Identifier: MIT
// The client library's byte transport: the daemon's Unix socket (xs.c) or,
// inside a drvdom domain, the xenstore_domain_interface ring (xs_ring.c).
// Internal to xenstore/.
//
// One thread at a time reads (xs.c's receive role: a caller waiting for its
// reply, or the reader thread): read, write, prepare and wait are called by
// that thread only. The reader thread sleeps in reader_wait without the
// role; park takes the transport out of that sleep's set while a caller
// holds the role, so the caller's reply wakes the caller alone
// (docs/xenstore.md, "Who reads").
#ifndef DRVDOM_XENSTORE_XS_TRANSPORT_H
#define DRVDOM_XENSTORE_XS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>

struct xs_transport {
	int fd;
	void *priv;
	/* What a handle leaves unread on a connection that outlives it (the
	 * ring) for the next handle to take over (xs.c's receive state), or
	 * NULL (a socket dies with its handle). */
	void **carry;
	/* Nonblocking: up to len bytes that are there, count in *done; 0 if
	 * some were read, -EAGAIN if none, else -errno (-ECONNRESET at end or
	 * after shutdown). */
	int (*read)(struct xs_transport *tp, void *buf, size_t len, size_t *done);
	/* As many of len bytes as fit without waiting for the peer to read
	 * requests (the socket: all of them), count in *done; 0 or -errno. */
	int (*write)(struct xs_transport *tp, const void *buf, size_t len, size_t *done);
	/* The role holder, before it reads: clear the notification it is about
	 * to act on (a later one then wakes the next wait). NULL when the
	 * transport's readiness is its own (the socket). */
	void (*prepare)(struct xs_transport *tp);
	/* The role holder: block until read may find bytes (or, with room,
	 * write may find room), the transport was shut down, or max_ms (< 0:
	 * no bound; a transport may return earlier, the caller looks again). */
	void (*wait)(struct xs_transport *tp, bool room, int max_ms);
	/* The reader thread, without the role: block until the transport may
	 * have bytes (unless parked), it was shut down, or a fallback timeout. */
	void (*reader_wait)(struct xs_transport *tp);
	/* Under xs.c's lock: take the transport out of reader_wait's set (on)
	 * or put it back (off; a reader_wait then returns if bytes wait). A
	 * parked reader_wait sleeps on: it never wakes for a caller's reply. */
	void (*park)(struct xs_transport *tp, bool on);
	/* Make every wait return and every later read fail (xs_close). */
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
