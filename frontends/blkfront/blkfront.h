// SPDX-License-Identifier: MIT
// blkfront: the guest side of a virtual block device (Xen's blkif). One
// `struct blkfront` per vbd runs the frontend XenbusState machine against its
// backend (docs/devices.md), negotiates the blkif features the backend
// offers (multi-page rings, multi-queue, persistent grants, indirect
// segments, flush, discard), keeps a shadow copy of every request until its
// response, and offers an asynchronous block I/O interface. drvdom-guest
// plugs that interface into the NBD server (blkfront_nbd.c) so each disk is
// an NBD export. Everything runs in the thread of the guest's event loop.
// Design, shadow and replay: docs/blkfront.md.
#ifndef DRVDOM_FRONTENDS_BLKFRONT_BLKFRONT_H
#define DRVDOM_FRONTENDS_BLKFRONT_BLKFRONT_H

#include <stdbool.h>
#include <stdint.h>

#include "hv/hv_abi.h"

struct hvc;
struct evloop;
struct gnt_table;
struct xs_handle;
struct blkfront;

/* What every blkfront of a guest shares: the guest's hypercall connection,
 * event loop, grant table and xenstore handle (whose watch events the guest
 * routes to blkfront_watch_event). */
struct blkfront_env {
	struct hvc *h;
	struct evloop *loop;
	struct gnt_table *gt;
	struct xs_handle *xs;
	domid_t self;
};

/* Create the frontend of /local/domain/<self>/device/vbd/<devid>: read the
 * frontend directory, take the NBD listening socket assigned as the
 * `drvdom-nbd` key names, watch the backend's state (token "vbd-<devid>")
 * and run the handshake as the backend moves. Loop thread; blocks on
 * xenstore round trips only. Returns 0 or -errno. */
int blkfront_create(const struct blkfront_env *env, unsigned devid, struct blkfront **out);

/* A watch event with this device's token fired: look at the backend's (and
 * our own) state and make the transition it calls for. Loop thread. */
void blkfront_watch_event(struct blkfront *bf);

/* Close the device: stop serving, complete every outstanding request with
 * -ESHUTDOWN, write state Closed (if our directory still exists), end
 * grants and free rings and pool. -EBUSY while the backend still maps them
 * (bf stays allocated, its watches and poller gone): call again later, with
 * force to give up and leak what the backend maps. 0 when bf is freed.
 * Loop thread. */
int blkfront_destroy(struct blkfront *bf, bool force);

unsigned blkfront_devid(const struct blkfront *bf);
/* Our current XenbusState. */
int blkfront_state(const struct blkfront *bf);

/* --- asynchronous block I/O ------------------------------------------------ */

enum blkfront_op {
	BLKFRONT_READ,
	BLKFRONT_WRITE,
	BLKFRONT_FLUSH,	       /* every write completed before it is durable */
	BLKFRONT_DISCARD,      /* backend feature-discard */
	BLKFRONT_WRITE_ZEROES, /* writes of one shared read-only zero page */
};
#define BLKFRONT_FUA (1u << 0) /* WRITE: durable before completion */

/* Called once per submitted io, from the loop thread: err is 0 or -errno. */
typedef void (*blkfront_done_fn)(void *arg, int err);

/* Submit one io: offset and length in bytes, multiples of 512; data is
 * length bytes (READ fills it) and must stay valid until done runs.
 * Returns 0 (done runs later — or before this call returns, with an error,
 * only if a request could not be encoded at all), -EAGAIN (no room or the
 * backend is not connected: call again after the kick callback), -EROFS
 * (read-only disk), -ENOTSUP (feature not offered), -EINVAL, -ENOMEM. Loop
 * thread; never blocks. */
int blkfront_submit(struct blkfront *bf, enum blkfront_op op, unsigned flags, uint64_t offset,
		    uint32_t length, void *data, blkfront_done_fn done, void *arg);

/* A data buffer of length bytes (<= max_io) lent from the device's pool of
 * pages shared with the backend: an io whose data is such a buffer goes to
 * the backend from where it is (a write's data is not copied, a read's data
 * lands in it), so a caller that fills or drains the buffer itself (the NBD
 * server: socket <-> buffer) saves a copy. The backend can see and write
 * the buffer for as long as it is lent: put only data in it that the
 * backend may see, and treat what it holds as the backend's word.
 * Page-aligned. NULL when the pool has no room (use your own memory then:
 * blkfront_submit copies it) or the device is not connected. Give it back
 * with blkfront_buf_put once no io uses it. Loop thread; never blocks. */
void *blkfront_buf_get(struct blkfront *bf, uint32_t length);
void blkfront_buf_put(struct blkfront *bf, void *buf, uint32_t length);

/* Geometry and features as negotiated (valid once Connected). */
struct blkfront_info {
	uint64_t size;	      /* bytes */
	uint32_t sector_size; /* logical */
	bool read_only, can_flush, can_discard, persistent;
	unsigned nr_queues, ring_order, max_segs; /* max_segs: per blkif request */
	uint32_t max_io;			  /* largest io blkfront_submit takes */
};
/* 0, or -ENOTCONN before the first connection. */
int blkfront_get_info(const struct blkfront *bf, struct blkfront_info *out);

/* Run fn(arg) whenever blkfront has room again after a -EAGAIN, and once
 * when it (re)connects. */
void blkfront_set_kick(struct blkfront *bf, void (*fn)(void *arg), void *arg);
/* Run fn(arg, bf) when the device connects the first time (geometry known). */
void blkfront_set_connected_cb(struct blkfront *bf, void (*fn)(void *arg, struct blkfront *bf),
			       void *arg);

/* Counters. */
struct blkfront_stats {
	uint64_t requests, responses, bad_responses, replayed, notifies, reconnects;
	uint64_t bytes_rd, bytes_wr, flushes, discards, errors;
	uint32_t shadow_live;
};
void blkfront_get_stats(const struct blkfront *bf, struct blkfront_stats *out);

/* Write the counters (and the NBD server's) as one line to the frontend's
 * `drvdom-stats` key, for drvdom top, if they changed since the last call.
 * Loop thread; one xenstore round trip when they changed. */
void blkfront_publish_stats(struct blkfront *bf);

#endif
