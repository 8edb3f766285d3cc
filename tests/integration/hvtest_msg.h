// SPDX-License-Identifier: MIT
// Raw hypercall messages for the hv tests: build and send datagrams from
// hv/hv_abi.h by hand (so malformed ones too), wait for a reply by id while
// queueing async events, wait for an event. Linked into the Check suite and
// into the static test domain kernels (tests/integration/dom_*.c); it does
// not use the client library, which is tested on its own.
#ifndef DRVDOM_TESTS_HVTEST_MSG_H
#define DRVDOM_TESTS_HVTEST_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "hv/hv_abi.h"

/* One received message. fds are the receiver's to close. */
struct hvt_msg {
	struct hv_hdr hdr;
	uint8_t payload[HV_MSG_MAX];
	int fds[HV_MAX_FDS];
	unsigned nfds;
};

/* Send one datagram made of hdr (len filled by the caller) and payload.
 * Returns 0 or -errno. */
int hvt_send(int fd, const struct hv_hdr *hdr, const void *payload, size_t len, const int *fds,
	     unsigned nfds);

/* Receive one datagram, waiting up to timeout_ms. Returns 0, -ETIMEDOUT,
 * -ECONNRESET on EOF, or -errno. */
int hvt_recv(int fd, struct hvt_msg *m, int timeout_ms);

/* One hypercall: send op/req/fds, wait (10 s) for the reply with the same
 * id; async events that arrive meanwhile are queued for hvt_wait_event.
 * The reply lands in *rep (may be NULL: fds are closed). Returns the reply's
 * ret, or a transport -errno (-ETIMEDOUT, -ECONNRESET). */
int hvt_call(int fd, uint32_t op, const void *req, size_t len, const int *fds, unsigned nfds,
	     struct hvt_msg *rep);

/* Wait up to timeout_ms for an async event op (queued or new). Returns 0 and
 * fills *ev (may be NULL), or -ETIMEDOUT / -errno. */
int hvt_wait_event(int fd, uint32_t op, int timeout_ms, struct hvt_msg *ev);

/* Close every fd a message carries. */
void hvt_msg_close_fds(struct hvt_msg *m);

#endif
