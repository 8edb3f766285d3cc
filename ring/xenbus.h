// SPDX-License-Identifier: MIT
// The XenbusState values a frontend and a backend write to their `state`
// xenstore nodes during the device handshake (Xen's xen/io/xenbus.h). The
// names are drvdom's (XENBUS_STATE_*) so Xen's header may be included too;
// the values are Xen's and are asserted. The handshake itself is described
// in PROTOCOLS.md ("XenbusState handshake").
#ifndef DRVDOM_RING_XENBUS_H
#define DRVDOM_RING_XENBUS_H

enum xenbus_st {
	XENBUS_STATE_UNKNOWN = 0,
	XENBUS_STATE_INITIALISING = 1,
	XENBUS_STATE_INIT_WAIT = 2,   /* backend published features */
	XENBUS_STATE_INITIALISED = 3, /* frontend published rings, channels */
	XENBUS_STATE_CONNECTED = 4,
	XENBUS_STATE_CLOSING = 5,
	XENBUS_STATE_CLOSED = 6,
	XENBUS_STATE_RECONFIGURING = 7,
	XENBUS_STATE_RECONFIGURED = 8,
};

#define XENBUS_STATE_MAX XENBUS_STATE_RECONFIGURED

_Static_assert(XENBUS_STATE_CONNECTED == 4 && XENBUS_STATE_RECONFIGURED == 8, "XenbusState");

/* Xen's name of a state ("Connected"), or "Invalid". Any caller. */
static inline const char *xenbus_st_name(int st)
{
	static const char *const names[] = {
	    "Unknown", "Initialising", "InitWait",	"Initialised",	"Connected",
	    "Closing", "Closed",       "Reconfiguring", "Reconfigured",
	};
	if (st < 0 || st > XENBUS_STATE_MAX)
		return "Invalid";
	return names[st];
}

#endif
