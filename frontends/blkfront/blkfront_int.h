// SPDX-License-Identifier: MIT
// blkfront's internal header: the device, its queues (one blkif ring and
// event channel each), the data page pool (one segment dedicated to the
// backend, pages granted once when persistent grants are negotiated), the
// shadow (every request from submission to response, in submission order)
// and the parent ios the shadow entries belong to. Prototypes are grouped by
// the file that defines them. See docs/blkfront.md.
#ifndef DRVDOM_FRONTENDS_BLKFRONT_BLKFRONT_INT_H
#define DRVDOM_FRONTENDS_BLKFRONT_BLKFRONT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/xbkey.h"
#include "frontends/blkfront/blkfront.h"
#include "grant/gnt.h"
#include "ring/blkif.h"

/* Our limits (the backend may offer more; we take the smaller). */
#define BF_MAX_QUEUES 4u
#define BF_MAX_RING_ORDER 2u		  /* 4 pages: 128 slots per queue */
#define BF_MAX_INDIRECT_SEGS 256u	  /* 1 MiB per blkif request */
#define BF_POOL_PAGES 2048u		  /* 8 MiB of data pages per device */
#define BF_BUF_RESERVE 64u		  /* pool pages blkfront_buf_get leaves free */
#define BF_SHADOW_MAX 2048u		  /* shadow entries per device */
#define BF_MAX_IO (2u << 20)		  /* largest io (NBD max_payload) */
#define BF_ZERO_PAGE (BF_POOL_PAGES - 1u) /* pool page kept zero, granted read-only */
#define BF_ZERO_INFLIGHT 8u		  /* WRITE_ZEROES requests in flight per io */

struct bf_io;

enum bf_req_state {
	BF_REQ_FREE = 0,
	BF_REQ_QUEUED, /* in the shadow, not (or no longer) on a ring */
	BF_REQ_SENT,   /* on ring `queue`, waiting for its response */
};

/* One data segment of a shadow entry: a pool page and the sectors used. */
struct bf_seg {
	uint32_t page;
	uint8_t first_sect, last_sect;
};

/* A shadow entry: one blkif request as the guest meant it, independent of
 * the ring it went on and of the grant refs used (those are chosen when it
 * is put on a ring, so it can be put on another ring of another backend
 * instance, issue 6). The id on the wire is (gen << 32) | index. */
struct bf_req {
	struct bf_req *prev, *next; /* shadow order: submission order */
	uint32_t gen;
	enum bf_req_state state;
	unsigned queue;
	uint8_t op; /* BLKIF_OP_READ/WRITE/FLUSH_DISKCACHE/DISCARD */
	bool indirect;
	uint16_t nsegs;
	uint64_t sector;
	uint64_t nr_sectors; /* DISCARD */
	struct bf_seg *segs; /* nsegs (malloc'ed) */
	uint32_t data_off;   /* byte offset of segs[0] in the parent's data */
	/* While SENT: refs granted for this request only (non-persistent), the
	 * indirect descriptor pages. */
	grant_ref_t *tmp_refs;
	unsigned ntmp_refs;
	uint32_t ind_pages[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
	unsigned nind;
	struct bf_io *parent;
};

/* What a caller submitted; split into shadow entries. */
struct bf_io {
	enum blkfront_op op;
	unsigned flags;
	uint64_t offset;
	uint32_t length;
	void *data;
	blkfront_done_fn done;
	void *arg;
	unsigned pending; /* shadow entries not answered yet */
	int err;
	bool in_writes;	   /* on the in-flight write list */
	bool fua_flushing; /* FUA write: its data is written, the flush runs */
	uint64_t seq;	   /* writes: order of submission; flushes: last seq covered */
	uint32_t *pages;   /* pool pages (data, then indirect descriptors), npages */
	uint32_t npages;
	bool lent;	   /* data is a lent pool buffer: pages holds only the
			    * indirect descriptors, data page i is lent_first + i */
	uint32_t lent_first;
	uint32_t wr_pages; /* data pages counted in blkfront.wr_pages */
	uint64_t zero_next;	     /* WRITE_ZEROES: next byte to issue */
	struct bf_io *wprev, *wnext; /* in-flight writes, by seq */
	struct bf_io *next;	     /* flush FIFO */
};

struct bf_queue {
	struct blkfront *bf;
	unsigned idx;
	struct gnt_seg *ring_seg;
	grant_ref_t ring_refs[1u << BF_MAX_RING_ORDER];
	unsigned nr_ring_refs;
	struct blkif_ring_front ring;
	evtchn_port_t port;
	bool have_port;
	bool pushed;   /* requests written, not yet pushed */
	uint32_t sent; /* on the ring, not answered */
};

struct blkfront {
	struct blkfront_env env;
	unsigned devid;
	char fe_path[128], be_path[256], token[32], vdev[32];
	domid_t backend_id;
	int state;	/* ours (XenbusState) */
	int be_state;	/* the backend's, as last read */
	bool in_xenbus; /* inside a handshake step (xenstore calls in flight) */
	bool rings_up;	/* queues allocated and published */
	bool connected; /* the data path may run */
	bool ever_connected;
	_Atomic bool backend_lost; /* a port of ours was closed by the backend */
	bool broken;		   /* the backend broke the protocol: reset */
	bool closing;		   /* being detached: waiting for the backend to close */
	bool detached;		   /* closed for good (device removed) */
	bool failed;		   /* the backend domain failed for good: EIO */
	bool unhooked;		   /* watches and poller removed (blkfront_destroy) */
	/* Fast reconnect (docs/recovery.md): the rings of a backend instance
	 * that died (dead_instance), reset in place and kept for the next one;
	 * be_instance: the backend's drvdom-instance our rings are for,
	 * echoed as drvdom-backend-instance ("" if none, or while kept). */
	bool kept;
	char be_instance[XBKEY_INSTANCE_LEN], dead_instance[XBKEY_INSTANCE_LEN];
	/* One handshake round's look at the backend, read in one round trip
	 * (xs_batch; NULL: no such key): its drvdom-instance and
	 * drvdom-connect. Valid while pf_valid (within a round). */
	bool pf_valid;
	char *pf_instance, *pf_connect;

	/* Negotiated. */
	unsigned nr_queues, ring_order, max_indirect, max_segs;
	bool persistent, can_flush, can_barrier, can_discard, read_only;
	uint64_t sectors;
	uint32_t sector_size;
	struct bf_queue queues[BF_MAX_QUEUES];
	unsigned next_queue;

	/* Data page pool: one segment dedicated to the backend. */
	struct gnt_seg *pool;
	uint64_t *pool_map; /* bit set: page free */
	uint32_t pool_nfree;
	uint8_t *pool_lent;  /* 1: page of a buffer lent out (blkfront_buf_get) */
	uint32_t wr_pages;   /* data pages of writes on a ring (spin or not) */
	grant_ref_t *pool_refs; /* persistent refs (0: not granted) */
	domid_t pool_refs_dom;

	/* The shadow. */
	struct bf_req shadow[BF_SHADOW_MAX];
	uint32_t shadow_free[BF_SHADOW_MAX];
	uint32_t shadow_nfree;
	struct bf_req *head, *tail; /* submission order */
	struct bf_req *first_queued;

	/* Flush ordering: every write-like io gets a sequence number and sits
	 * on the in-flight list until it completes; a flush covers every seq
	 * up to the last one issued before it and goes on a ring only when the
	 * oldest write in flight is younger than that (docs/blkfront.md). */
	uint64_t wseq;
	struct bf_io *writes_head, *writes_tail;
	struct bf_io *flush_head, *flush_tail;

	bool want_kick;
	void (*kick)(void *arg);
	void *kick_arg;
	void (*batch_begin)(void *arg); /* around a pass of completions */
	void (*batch_end)(void *arg);
	void *batch_arg;
	void (*connected_cb)(void *arg, struct blkfront *bf);
	void *connected_arg;

	/* Written by the port handler, which may run in another thread (the
	 * xenstore library's reader dispatches hv events too, and then our
	 * loop's epoll never sees the port): wakes the loop so the poller
	 * runs. */
	int wake_fd;
	pthread_t loop_thread;

	/* The NBD export (blkfront_nbd.c). */
	int nbd_fd;
	struct nbd_server *nbd;
	bool nbd_active; /* the server has a client in transmission */

	struct blkfront_stats stats;
	uint64_t bad_logged;
	char stats_last[512];
};

/* blkfront_ring.c: queues, pool, shadow, the data path. */
int bf_pool_setup(struct blkfront *bf);
/* Give the pool / the rings back; with leak == false, -EBUSY (kept, call
 * again later) while the backend still maps them, else leak what it maps. */
int bf_pool_teardown(struct blkfront *bf, bool leak);
int bf_queues_setup(struct blkfront *bf);
int bf_queues_teardown(struct blkfront *bf, bool leak);
void bf_shadow_requeue_all(struct blkfront *bf);
void bf_pump(struct blkfront *bf);
int bf_poll(void *arg, unsigned flags);
void bf_fail_all(struct blkfront *bf, int err);
void bf_kick(struct blkfront *bf);
void bf_grants_end_persistent(struct blkfront *bf);
void bf_handle_lost(struct blkfront *bf);
int bf_wake_setup(struct blkfront *bf);
void bf_wake_teardown(struct blkfront *bf);

/* blkfront_xenbus.c: the XenbusState machine. */
void bf_backend_broken(struct blkfront *bf, const char *why);

/* blkfront_nbd.c */
int bf_nbd_start(struct blkfront *bf);
void bf_nbd_stop(struct blkfront *bf);

#endif
