// SPDX-License-Identifier: MIT
// drvdom-blkback's internal header: the driver domain that serves blkif
// devices (docs/blkback.md, docs/devices.md). One process, one event loop
// thread: a `struct blkback` holds the hv connection, the xenstore handle,
// the io_uring and the list of devices; a `struct blkback_dev` is one
// backend directory /local/domain/<self>/backend/vbd/<fe>/<devid> with its
// disk fd and XenbusState; a `struct blkback_ring` is one queue of it (ring
// pages, event channel, persistent grants, counters); a `struct
// blkback_req` is one request between the ring and the disk. Prototypes are
// grouped by the file that defines them.
#ifndef DRVDOM_BACKENDS_BLKBACK_H
#define DRVDOM_BACKENDS_BLKBACK_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/xbkey.h"
#include "grant/gnt.h"
#include "grant/gnt_pcache.h"
#include "hv/evloop.h"
#include "hv/hvc.h"
#include "ring/blkif.h"
#include "ring/xenbus.h"
#include "xenstore/include/xenstore.h"

/* What the backend offers (docs/blkback.md "Features"). */
#define BLKBACK_MAX_RING_ORDER 4u /* max-ring-page-order */
#define BLKBACK_MAX_QUEUES 4u	  /* multi-queue-max-queues */
#define BLKBACK_MAX_INDIRECT 256u /* feature-max-indirect-segments */
#define BLKBACK_INDIRECT_PAGES                                                                     \
	((BLKBACK_MAX_INDIRECT + BLKIF_SEGS_PER_INDIRECT_FRAME - 1) / BLKIF_SEGS_PER_INDIRECT_FRAME)
/* Persistent grants kept mapped per ring (Linux blkback's max_pgrants is
 * 1056; ours covers the whole pool of our blkfront, 2048 pages + rings). */
#define BLKBACK_PGRANTS_MAX 2112u
/* Requests taken from one ring before their grants are mapped in one batch. */
#define BLKBACK_BATCH 32u
/* Writes up to this size are done inline (pwritev, blocking) when the disk
 * cannot do RWF_NOWAIT writes; see blkback_io_try_inline. */
#define BLKBACK_INLINE_WRITE_MAX (128u << 10)
/* Bytes of such blocking inline writes per ring per round: the rest of the
 * round's writes go to the io_uring, so the loop is away from its rings for
 * at most ~0.3 ms of copying into page cache (measured: 1-4 us per 4 KiB,
 * 12-150 us per 128 KiB; docs/blkback.md). 64 writes of 4 KiB fit. */
#define BLKBACK_INLINE_ROUND_MAX (256u << 10)
/* A blocking inline write that took longer than this (the writer was
 * throttled for dirty pages, or waited for the journal) sends the device's
 * writes to the io_uring for BLKBACK_INLINE_BACKOFF_NS. */
#define BLKBACK_INLINE_SLOW_NS 2000000ull
#define BLKBACK_INLINE_BACKOFF_NS 100000000ull
/* Stats ticks between two looks at the xenstore without a watch event. */
#define BLKBACK_RESCAN_TICKS 6u
/* Device assignments remembered between two runs of the loop. */
#define BLKBACK_ASSIGNED_MAX 16u
/* Threads of the fallback I/O pool (blkback_pool.c). */
#define BLKBACK_IO_THREADS 4u
/* Rings whose responses wait for one push per round. */
#define BLKBACK_DIRTY_MAX 64u
/* Sectors are 512 bytes on the wire; the disk's own are published apart. */
#define BLKBACK_SECTOR_SHIFT 9
/* drvdom-stats is rewritten at most this often (ns). */
#define BLKBACK_STATS_NS 500000000ull

struct blkback;
struct blkback_dev;

/* Per-ring counters, published as drvdom-stats (docs/blkback.md). */
struct blkback_stats {
	uint64_t requests; /* answered */
	uint64_t rd, wr, flush, discard, errors;
	uint64_t bytes_rd, bytes_wr;
	uint64_t notify_sent, notify_suppressed;
	uint64_t grant_maps, pgrant_hits;
	uint64_t inline_io; /* done in the loop (RWF_NOWAIT, or blocking small writes) */
	uint32_t inflight, inflight_max;
};

struct blkback_ring {
	struct blkback_dev *dev;
	unsigned idx;		     /* queue number */
	struct blkif_ring_back back; /* private indices; sring = the mapped pages */
	void *pages[1u << BLKBACK_MAX_RING_ORDER];
	gnt_handle_t handles[1u << BLKBACK_MAX_RING_ORDER];
	unsigned nr_pages, order;
	evtchn_port_t port;
	bool port_bound, polling;
	bool broken;		   /* the frontend misbehaved: no more requests */
	bool rsp_dirty;		   /* responses written, not yet pushed */
	_Atomic bool kicked;	   /* the event channel fired (any thread) */
	struct gnt_pcache *pcache; /* NULL without feature-persistent */
	struct blkback_stats st;
	/* Requests taken and not yet answered, oldest first: what the
	 * ring-progress watchdog looks at (blkback_progress_check). */
	struct blkback_req *un_head, *un_tail;
};

struct blkback_dev {
	struct blkback_dev *next;
	struct blkback *bb;
	char path[128];	   /* backend directory */
	char fe_path[128]; /* frontend directory */
	char fe_token[160];
	char name[HV_DEVNAME_MAX]; /* drvdom-device, e.g. vbd/5/51712 */
	domid_t fe_domid;
	unsigned devid;
	int state; /* our XenbusState */
	int disk_fd;
	bool readonly, can_discard, fe_watched, seen;
	/* The frontend's state watch was set in the batch that then read its
	 * keys: the event its registration fires says nothing new. */
	bool fe_skip_first;
	bool no_nowait_write; /* pwritev2(RWF_NOWAIT) said EOPNOTSUPP */
	bool inline_slow_told;	       /* the first back-off was logged */
	uint64_t inline_off_until_ns; /* blocking inline writes off until (back-off) */
	uint64_t sectors;     /* 512-byte sectors */
	uint32_t phys_sector_size;
	bool persistent;
	bool fail_pending;
	_Atomic bool peer_gone; /* a ring's event channel was closed by the frontend */
	char fail_why[96];
	unsigned nr_rings;
	struct blkback_ring *rings;
	uint64_t stats_ns;
	char stats_last[512];
	uint64_t disk_done;		   /* completions from the disk (io_uring or pool) */
	uint64_t wd_done_seen, wd_done_ns; /* progress check: last change seen, when */
	bool wd_busy;			   /* progress check: the disk had I/O last time */
};

/* A request between the ring and the disk. Segments point into mapped
 * grants (persistent or mapped for this request only: handles[]). */
struct blkback_req {
	struct blkback_ring *ring;
	uint64_t id;
	uint8_t op;    /* BLKIF_OP_* as the frontend sent it (echoed) */
	uint8_t io_op; /* BLKIF_OP_READ/WRITE/FLUSH_DISKCACHE/DISCARD */
	int16_t status;
	uint64_t sector, nr_sectors;
	unsigned nr_segs, nr_maps;
	struct blkif_seg *segs; /* copies (inline or from indirect pages) */
	struct blkif_seg inline_segs[BLKIF_MAX_SEGMENTS_PER_REQUEST];
	struct iovec *iov;
	gnt_handle_t *handles;	  /* per-request mappings to undo */
	unsigned first_op;	  /* index of its first op in the batch */
	struct blkback_req *next; /* the thread pool's lists */
	int res;		  /* the thread pool's result */
	/* The ring's unanswered list (take order); when it was taken (one
	 * clock read per batch); whether the disk has it (io_uring or pool). */
	struct blkback_req *un_prev, *un_next;
	uint64_t taken_ns;
	bool in_disk;
};

/* drvdom-crash-at kinds (docs/blkback.md "Crash points"). */
enum {
	CRASH_NONE,
	CRASH_REQUEST,
	CRASH_MID_BATCH,
	CRASH_BEFORE_PUBLISH,
	CRASH_AFTER_IO,
	CRASH_STALL,   /* not a crash: the Nth request taken is never answered */
	CRASH_SLOW_IO, /* not a crash: the Nth disk completion is held back ms */
	CRASH_SLOW_WRITE, /* not a crash: the Nth blocking inline write takes ms longer */
};

struct blkback_crash {
	int at; /* CRASH_* */
	uint64_t n;
	uint64_t ms;	/* CRASH_SLOW_IO, CRASH_SLOW_WRITE: how long */
	uint64_t count; /* events of that kind so far */
};

struct blkback {
	struct hvc *h;
	struct evloop *loop;
	struct xs_handle *xs;
	domid_t self;
	char vbd_path[96];
	struct blkback_dev *devs;
	struct io_uring uring;
	bool uring_up;
	bool io_threads;	   /* --io-threads: the pool, not io_uring */
	struct blkback_pool *pool; /* the fallback I/O threads, or NULL */
	int uring_efd;
	unsigned uring_pending; /* SQEs prepared, not yet submitted */
	int wake_fd;		/* port handlers in other threads wake the loop */
	int timer_fd;		/* stats */
	unsigned ticks;		/* of timer_fd */
	pthread_t loop_thread;
	struct blkback_crash crash;
	bool crash_from_key; /* armed by the drvdom-crash-at key (else argv/env) */
	struct blkback_ring *dirty[BLKBACK_DIRTY_MAX]; /* rings with unpushed responses */
	unsigned ndirty;
	bool rescan;
	/* The crash and be watches' registration events (already handled). */
	bool crash_skip_first, be_skip_first;
	bool no_inline_io;	       /* --no-inline-io */
	uint32_t inline_budget;	       /* bytes of blocking inline writes left this ring round */
	_Atomic bool deferred;	       /* a device failed, a device was assigned */
	_Atomic bool assigned;	       /* the hv assigned a device: scan again */
	pthread_mutex_t assigned_lock; /* names of devices assigned since */
	char assigned_names[BLKBACK_ASSIGNED_MAX][HV_DEVNAME_MAX];
	unsigned nassigned;
	/* Crash point slow-io: one disk completion held back, as if the disk
	 * had taken that long (blkback_io.c). */
	struct blkback_req *held;
	int held_res;
	uint64_t held_until_ns;
	int stash_fd; /* a disk fd taken for a device being re-created */
	char stash_name[HV_DEVNAME_MAX];
	/* This instance's name in the reconnect handshake (docs/recovery.md,
	 * "Fast reconnect"): published as drvdom-instance with InitWait; a
	 * frontend that echoes another one has not reset its rings for us. */
	char instance[XBKEY_INSTANCE_LEN];
};

/* blkback_main.c */
void blkback_crash_point(struct blkback *bb, int kind);
bool blkback_crash_hit(struct blkback *bb, int kind);
void blkback_wake(struct blkback *bb);
void blkback_wake_deferred(struct blkback *bb);
int blkback_crash_parse(const char *spec, struct blkback_crash *out);

/* blkback_xenbus.c: one function per XenbusState transition. */
void blkback_scan(struct blkback *bb);
void blkback_frontend_changed(struct blkback_dev *d);
void blkback_dev_fail(struct blkback_dev *d, const char *why);
void blkback_dev_fail_later(struct blkback_dev *d, const char *why);
void blkback_dev_peer_gone(struct blkback_dev *d);
/* The hv assigned name: true if a scan may find something to do. */
bool blkback_dev_assigned(struct blkback *bb, const char *name);
void blkback_run_deferred(struct blkback *bb);
void blkback_dev_free(struct blkback_dev *d);
void blkback_stats_publish(struct blkback_dev *d, bool force);

/* blkback_ring.c */
/* Attach r to its 2^order ring pages, mapped by the caller (ops, the
 * result of gnt_map_batch: map_ret, and each op's status and handle; every
 * okay handle becomes r's to unmap), bind remote_port. 0 or -errno (r is
 * disconnected again). */
int blkback_ring_connect(struct blkback_ring *r, const struct gnt_map_op *ops, int map_ret,
			 unsigned order, evtchn_port_t remote_port);
void blkback_ring_disconnect(struct blkback_ring *r);
int blkback_ring_poll(void *arg, unsigned flags);
void blkback_req_complete(struct blkback_req *q, int res);
void blkback_push_responses(struct blkback *bb);
uint64_t blkback_progress_check(void *arg, uint64_t now_ns, uint64_t bound_ns, char *why,
				size_t cap);

/* blkback_io.c */
int blkback_io_init(struct blkback *bb);
void blkback_io_fini(struct blkback *bb);
/* A ring's round of requests begins: resets the inline write budget. */
void blkback_io_round_begin(struct blkback *bb);
/* Try a read/write inline without waiting (0: done, -EAGAIN: submit it). */
int blkback_io_try_inline(struct blkback *bb, struct blkback_req *q);
int blkback_io_submit(struct blkback *bb, struct blkback_req *q);
void blkback_io_finish(struct blkback *bb, struct blkback_req *const *done, const int *res,
		       unsigned n);
void blkback_io_flush(struct blkback *bb);
int blkback_io_reap(struct blkback *bb);
void blkback_io_drain_ring(struct blkback *bb, struct blkback_ring *r);

/* blkback_pool.c */
struct blkback_pool;
int blkback_pool_start(struct blkback *bb, unsigned nthreads);
void blkback_pool_stop(struct blkback *bb);
void blkback_pool_submit(struct blkback *bb, struct blkback_req *q);
unsigned blkback_pool_take(struct blkback *bb, struct blkback_req **done, int *res, unsigned max);

#endif
