// SPDX-License-Identifier: MIT
// The blkif ring of drvdom-blkback: attach to the frontend's ring pages and
// event channel, take requests (each copied out of the ring before it is
// looked at), check them, map their grants in one batch per group of
// requests (persistent grants come from the ring's cache), hand them to the
// disk (blkback_io.c) and push the responses with Xen's notification rule.
// Everything here runs in the event loop thread; the port handler, which
// may run in another thread, only sets a flag. Anything wrong in a request
// gets an error response; a producer index that runs past the ring is an
// attack and stops the ring (the device goes to Closing). Protocol: Xen's
// io/blkif.h; checks: docs/blkback.md "Requests".
#include "backends/blkback/blkback.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

/* --- responses ------------------------------------------------------------ */

/* PRODUCER of responses: push every response written so far and notify
 * the frontend if its rsp_event asks for it. */
static void ring_push(struct blkback_ring *r)
{
	struct blkback *bb = r->dev->bb;
	r->rsp_dirty = false;
	if (r->broken || !r->back.sring)
		return;
	if (blkif_ring_back_push_responses_check_notify(&r->back)) {
		evtchn_notify(bb->h, r->port);
		r->st.notify_sent++;
	} else {
		r->st.notify_suppressed++;
	}
}

void blkback_push_responses(struct blkback *bb)
{
	for (unsigned i = 0; i < bb->ndirty; i++)
		if (bb->dirty[i]->rsp_dirty)
			ring_push(bb->dirty[i]);
	bb->ndirty = 0;
}

/* PRODUCER of responses: write one in its slot; it is published with the
 * others of the same round by blkback_push_responses (one index store and
 * at most one notification per ring and round). */
static void ring_respond(struct blkback_ring *r, uint64_t id, uint8_t op, int16_t status)
{
	struct blkback *bb = r->dev->bb;
	r->st.requests++; /* answered */
	if (status != BLKIF_RSP_OKAY)
		r->st.errors++;
	if (r->broken || !r->back.sring)
		return;
	struct blkif_rsp *rsp = blkif_ring_back_next_rsp(&r->back);
	if (!rsp)
		return; /* cannot happen: one response per consumed request */
	rsp->id = id;
	rsp->operation = op;
	rsp->status = status;
	blkback_crash_point(bb, CRASH_BEFORE_PUBLISH);
	if (r->rsp_dirty)
		return;
	if (bb->ndirty == BLKBACK_DIRTY_MAX) {
		ring_push(r);
		return;
	}
	r->rsp_dirty = true;
	bb->dirty[bb->ndirty++] = r;
}

/* --- the unanswered list (ring-progress watchdog) ----------------------------- */

/* Every request from the moment it is taken off the ring until it is
 * answered (or dropped) sits on its ring's list, in take order, so the
 * oldest is the head: two pointer stores in, two out, no clock read of its
 * own (the batch's). */
static void unans_add(struct blkback_ring *r, struct blkback_req *q, uint64_t now)
{
	q->taken_ns = now;
	q->un_next = NULL;
	q->un_prev = r->un_tail;
	if (r->un_tail)
		r->un_tail->un_next = q;
	else
		r->un_head = q;
	r->un_tail = q;
}

static void unans_del(struct blkback_req *q)
{
	struct blkback_ring *r = q->ring;
	if (!q->taken_ns)
		return; /* never added */
	if (q->un_prev)
		q->un_prev->un_next = q->un_next;
	else
		r->un_head = q->un_next;
	if (q->un_next)
		q->un_next->un_prev = q->un_prev;
	else
		r->un_tail = q->un_prev;
	q->un_prev = q->un_next = NULL;
	q->taken_ns = 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no system call */
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void req_free(struct blkback_req *q)
{
	unans_del(q);
	if (q->segs != q->inline_segs)
		free(q->segs);
	free(q->iov);
	free(q->handles);
	free(q);
}

/* Unmap the grants mapped for this request only (persistent ones stay). */
static void req_unmap(struct blkback_req *q)
{
	if (!q->nr_maps)
		return;
	int r = gnt_unmap_batch(q->ring->dev->bb->h, q->handles, q->nr_maps, NULL);
	if (r)
		log_warn("%s: unmap of %u grants: %d", q->ring->dev->name, q->nr_maps, r);
	q->nr_maps = 0;
}

void blkback_req_complete(struct blkback_req *q, int res)
{
	struct blkback_ring *r = q->ring;
	blkback_crash_point(r->dev->bb, CRASH_AFTER_IO);
	req_unmap(q);
	int16_t st = BLKIF_RSP_OKAY;
	if (res < 0) {
		st = (res == -EOPNOTSUPP && q->io_op == BLKIF_OP_DISCARD) ? BLKIF_RSP_EOPNOTSUPP
									  : BLKIF_RSP_ERROR;
		log_warn("%s: queue %u: request %llu (op %u) failed: %s", r->dev->name, r->idx,
			 (unsigned long long)q->id, q->op, strerror(-res));
	} else if (q->io_op == BLKIF_OP_READ) {
		r->st.bytes_rd += q->nr_sectors << BLKBACK_SECTOR_SHIFT;
	} else if (q->io_op == BLKIF_OP_WRITE) {
		r->st.bytes_wr += q->nr_sectors << BLKBACK_SECTOR_SHIFT;
	}
	ring_respond(r, q->id, q->op, st);
	req_free(q);
}

/* --- checking a request ------------------------------------------------------ */

/* Copy the segment descriptors of an indirect request out of its indirect
 * pages (mapped from the persistent cache or for this moment only). Returns
 * 0 or -errno (a grant that cannot be mapped). */
static int req_fetch_indirect(struct blkback_ring *r, struct blkback_req *q,
			      const struct blkif_req_indirect *in)
{
	struct blkback *bb = r->dev->bb;
	unsigned npages =
	    (q->nr_segs + BLKIF_SEGS_PER_INDIRECT_FRAME - 1) / BLKIF_SEGS_PER_INDIRECT_FRAME;
	struct gnt_map_op ops[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
	const void *page[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
	unsigned nops = 0;
	for (unsigned i = 0; i < npages; i++) {
		page[i] = r->pcache ? gnt_pcache_lookup(r->pcache, in->indirect_grefs[i]) : NULL;
		if (page[i]) {
			r->st.pgrant_hits++;
			continue;
		}
		ops[nops++] = (struct gnt_map_op){.domid = r->dev->fe_domid,
						  .ref = in->indirect_grefs[i],
						  .flags = r->pcache ? 0 : GNTMAP_readonly};
	}
	int ret = 0;
	if (nops) {
		r->st.grant_maps += nops;
		ret = gnt_map_batch(bb->h, ops, nops);
	}
	q->segs = malloc(q->nr_segs * sizeof(*q->segs));
	if (!q->segs) {
		q->segs = q->inline_segs;
		ret = -ENOMEM;
	}
	gnt_handle_t drop[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
	unsigned ndrop = 0;
	for (unsigned i = 0, k = 0; i < npages; i++) {
		if (page[i])
			continue;
		struct gnt_map_op *o = &ops[k++];
		if (o->status != GNTST_okay) {
			ret = ret ? ret : -EACCES;
			continue;
		}
		if (r->pcache && gnt_pcache_insert(r->pcache, o->ref, o->addr, o->handle) == 0)
			page[i] = o->addr;
		else {
			page[i] = o->addr;
			drop[ndrop++] = o->handle;
		}
	}
	if (ret == 0) {
		for (unsigned i = 0; i < npages; i++) {
			unsigned n = q->nr_segs - i * BLKIF_SEGS_PER_INDIRECT_FRAME;
			if (n > BLKIF_SEGS_PER_INDIRECT_FRAME)
				n = BLKIF_SEGS_PER_INDIRECT_FRAME;
			/* One read of the frontend's page; only the copy is checked. */
			const volatile struct blkif_seg *src = page[i];
			for (unsigned j = 0; j < n; j++)
				q->segs[i * BLKIF_SEGS_PER_INDIRECT_FRAME + j] = src[j];
		}
	}
	if (ndrop)
		gnt_unmap_batch(bb->h, drop, ndrop, NULL);
	return ret;
}

/* Check a copied request against the device; fill q (op, sectors, segs).
 * Returns a BLKIF_RSP_* status: OKAY if it may go to the disk. */
static int16_t req_check(struct blkback_ring *r, struct blkback_req *q,
			 const union blkif_req_slot *s)
{
	struct blkback_dev *d = r->dev;
	q->op = s->operation;
	switch (s->operation) {
	case BLKIF_OP_READ:
	case BLKIF_OP_WRITE:
		q->id = s->rw.id;
		q->io_op = s->operation;
		q->sector = s->rw.sector_number;
		q->nr_segs = s->rw.nr_segments;
		if (q->nr_segs == 0 || q->nr_segs > BLKIF_MAX_SEGMENTS_PER_REQUEST)
			return BLKIF_RSP_ERROR;
		memcpy(q->inline_segs, s->rw.seg, q->nr_segs * sizeof(q->inline_segs[0]));
		q->segs = q->inline_segs;
		break;
	case BLKIF_OP_INDIRECT:
		q->id = s->indirect.id;
		q->sector = s->indirect.sector_number;
		q->io_op = s->indirect.indirect_op;
		q->nr_segs = s->indirect.nr_segments;
		if (q->io_op != BLKIF_OP_READ && q->io_op != BLKIF_OP_WRITE)
			return BLKIF_RSP_ERROR;
		if (q->nr_segs == 0 || q->nr_segs > BLKBACK_MAX_INDIRECT)
			return BLKIF_RSP_ERROR;
		if (q->io_op == BLKIF_OP_WRITE && d->readonly)
			return BLKIF_RSP_ERROR;
		if (req_fetch_indirect(r, q, &s->indirect))
			return BLKIF_RSP_ERROR;
		break;
	case BLKIF_OP_FLUSH_DISKCACHE:
		q->id = s->rw.id;
		q->io_op = s->operation;
		r->st.flush++;
		return d->readonly ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY;
	case BLKIF_OP_DISCARD:
		q->id = s->discard.id;
		q->io_op = s->operation;
		q->sector = s->discard.sector_number;
		q->nr_sectors = s->discard.nr_sectors;
		r->st.discard++;
		if (!d->can_discard)
			return d->readonly ? BLKIF_RSP_ERROR : BLKIF_RSP_EOPNOTSUPP;
		if (q->nr_sectors == 0 || q->sector > d->sectors ||
		    q->nr_sectors > d->sectors - q->sector)
			return BLKIF_RSP_ERROR;
		return BLKIF_RSP_OKAY;
	default:
		/* The id of an unknown request sits where every kind has it. */
		q->id = s->rw.id;
		return BLKIF_RSP_EOPNOTSUPP;
	}
	if (q->io_op == BLKIF_OP_WRITE && d->readonly)
		return BLKIF_RSP_ERROR;
	uint64_t n = 0;
	for (unsigned i = 0; i < q->nr_segs; i++) {
		const struct blkif_seg *g = &q->segs[i];
		if (g->first_sect > g->last_sect || g->last_sect >= BLKIF_SECTORS_PER_FRAME)
			return BLKIF_RSP_ERROR;
		n += (uint64_t)(g->last_sect - g->first_sect + 1);
	}
	q->nr_sectors = n;
	if (q->sector > d->sectors || n > d->sectors - q->sector)
		return BLKIF_RSP_ERROR;
	if (q->io_op == BLKIF_OP_READ)
		r->st.rd++;
	else
		r->st.wr++;
	return BLKIF_RSP_OKAY;
}

/* --- the batch: take, check, map, submit ------------------------------------- */

struct map_batch {
	struct gnt_map_op *ops;
	unsigned n, cap;
};

static int batch_reserve(struct map_batch *b, unsigned more)
{
	if (b->n + more <= b->cap)
		return 0;
	unsigned cap = b->cap ? b->cap : 64;
	while (cap < b->n + more)
		cap *= 2;
	struct gnt_map_op *o = realloc(b->ops, cap * sizeof(*o));
	if (!o)
		return -ENOMEM;
	b->ops = o;
	b->cap = cap;
	return 0;
}

/* Set up iovecs: persistent hits now, the rest as map ops in the batch.
 * Returns 0 or -ENOMEM. */
static int req_plan_maps(struct blkback_ring *r, struct blkback_req *q, struct map_batch *b)
{
	if (q->io_op != BLKIF_OP_READ && q->io_op != BLKIF_OP_WRITE)
		return 0;
	q->iov = calloc(q->nr_segs, sizeof(*q->iov));
	q->handles = calloc(q->nr_segs, sizeof(*q->handles));
	if (!q->iov || !q->handles || batch_reserve(b, q->nr_segs))
		return -ENOMEM;
	q->first_op = b->n;
	for (unsigned i = 0; i < q->nr_segs; i++) {
		const struct blkif_seg *g = &q->segs[i];
		q->iov[i].iov_len = (size_t)(g->last_sect - g->first_sect + 1)
				    << BLKBACK_SECTOR_SHIFT;
		void *page = r->pcache ? gnt_pcache_lookup(r->pcache, g->gref) : NULL;
		if (page) {
			r->st.pgrant_hits++;
			q->iov[i].iov_base = (char *)page + (g->first_sect << BLKBACK_SECTOR_SHIFT);
			continue;
		}
		/* A write only reads the frontend's page. Persistent grants are
		 * mapped writable once, for every later use. */
		uint16_t fl = (q->io_op == BLKIF_OP_WRITE && !r->pcache) ? GNTMAP_readonly : 0;
		b->ops[b->n++] = (struct gnt_map_op){
		    .domid = r->dev->fe_domid, .ref = g->gref, .flags = fl, .handle = i};
	}
	return 0;
}

/* After the batch map: give each planned segment its page. The op's
 * handle field carried the segment index until the map replaced it, so
 * walk the request's segments in the same order as the plan. Returns the
 * request's status. */
static int16_t req_take_maps(struct blkback_ring *r, struct blkback_req *q, struct map_batch *b,
			     bool map_failed_all)
{
	if (q->io_op != BLKIF_OP_READ && q->io_op != BLKIF_OP_WRITE)
		return BLKIF_RSP_OKAY;
	bool bad = map_failed_all;
	unsigned k = q->first_op;
	for (unsigned i = 0; i < q->nr_segs; i++) {
		if (q->iov[i].iov_base)
			continue;
		struct gnt_map_op *o = &b->ops[k++];
		if (o->status != GNTST_okay) {
			bad = true;
			continue;
		}
		const struct blkif_seg *g = &q->segs[i];
		q->iov[i].iov_base = (char *)o->addr + (g->first_sect << BLKBACK_SECTOR_SHIFT);
		if (r->pcache && gnt_pcache_insert(r->pcache, o->ref, o->addr, o->handle) == 0)
			continue;
		q->handles[q->nr_maps++] = o->handle;
	}
	return bad ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY;
}

static void ring_broken(struct blkback_ring *r, const char *why)
{
	if (r->broken)
		return;
	r->broken = true;
	log_warn("%s: queue %u: %s: ring stopped, device to Closing", r->dev->name, r->idx, why);
	/* Not from inside the poller: the loop tears the device down next. */
	blkback_dev_fail_later(r->dev, why);
}

/* Take up to BLKBACK_BATCH requests and send them to the disk. Returns the
 * number taken. */
static unsigned ring_process(struct blkback_ring *r)
{
	struct blkback *bb = r->dev->bb;
	struct blkback_req *reqs[BLKBACK_BATCH];
	static struct map_batch b;
	unsigned nq = 0, taken = 0;
	uint64_t now = 0;
	b.n = 0;
	while (nq < BLKBACK_BATCH && !r->broken) {
		union blkif_req_slot s;
		int rc = blkif_ring_back_take_request(&r->back, &s);
		if (rc == -EAGAIN)
			break;
		if (rc < 0) {
			ring_broken(r, "producer index past the ring size");
			break;
		}
		taken++;
		blkback_crash_point(bb, CRASH_REQUEST);
		struct blkback_req *q = calloc(1, sizeof(*q));
		if (!q) {
			ring_respond(r, s.rw.id, s.operation, BLKIF_RSP_ERROR);
			continue;
		}
		q->ring = r;
		if (!now)
			now = mono_ns();
		unans_add(r, q, now);
		if (blkback_crash_hit(bb, CRASH_STALL)) {
			/* A lost request: taken, never answered, while the loop
			 * and its heartbeat carry on (the watchdog's test). */
			log_warn("drvdom-crash-at: stall: request %" PRIu64
				 " taken and never answered",
				 bb->crash.n);
			continue;
		}
		unsigned mark = b.n;
		int16_t st = req_check(r, q, &s);
		if (st == BLKIF_RSP_OKAY && req_plan_maps(r, q, &b))
			st = BLKIF_RSP_ERROR;
		if (st != BLKIF_RSP_OKAY) {
			b.n = mark; /* ops of a failed plan are never mapped */
			ring_respond(r, q->id, q->op, st);
			req_free(q);
			continue;
		}
		reqs[nq++] = q;
	}
	bool failed_all = false;
	if (b.n) {
		r->st.grant_maps += b.n;
		int mr = gnt_map_batch(bb->h, b.ops, b.n);
		failed_all = mr < 0 && mr != -EIO;
		if (failed_all)
			log_warn("%s: grant map: %s", r->dev->name, strerror(-mr));
	}
	unsigned submitted = 0, ninline = 0;
	blkback_io_round_begin(bb);
	struct blkback_req *done[BLKBACK_BATCH];
	int res[BLKBACK_BATCH];
	for (unsigned i = 0; i < nq; i++) {
		struct blkback_req *q = reqs[i];
		int16_t st = req_take_maps(r, q, &b, failed_all);
		if (st == BLKIF_RSP_OKAY && !r->broken) {
			if (submitted == 1 && nq > 1)
				blkback_crash_point(bb, CRASH_MID_BATCH);
			if (blkback_io_try_inline(bb, q) == 0) {
				done[ninline] = q;
				res[ninline++] = (int)(q->nr_sectors << BLKBACK_SECTOR_SHIFT);
				submitted++;
				continue;
			}
			if (blkback_io_submit(bb, q) == 0) {
				submitted++;
				continue;
			}
			st = BLKIF_RSP_ERROR;
		}
		req_unmap(q);
		ring_respond(r, q->id, q->op, st);
		req_free(q);
	}
	blkback_io_flush(bb);
	if (ninline)
		blkback_io_finish(bb, done, res, ninline);
	blkback_push_responses(bb);
	return taken;
}

int blkback_ring_poll(void *arg, unsigned flags)
{
	struct blkback_ring *r = arg;
	if (r->broken || !r->back.sring)
		return 0;
	/* The frontend's next request usually follows within one round trip
	 * of its client (QD1: tens of microseconds): after work, keep looking
	 * for it for the longer wait budget rather than sleep and pay a
	 * wake-up of this CPU for it (evloop.h; the loop yields its CPU to
	 * anything runnable while it spins, and sleeps once the budget has
	 * passed without work). */
	evloop_poll_pending(r->dev->bb->loop);
	atomic_store_explicit(&r->kicked, false, memory_order_relaxed);
	uint32_t n;
	int rc = (flags & EVLOOP_POLL_FINAL)
		     ? blkif_ring_back_final_check_for_requests(&r->back, &n)
		     : blkif_ring_back_unconsumed_requests(&r->back, &n);
	if (rc < 0) {
		ring_broken(r, "producer index past the ring size");
		return 1;
	}
	if (n == 0)
		return 0;
	int work = ring_process(r) > 0;
	if (work && !r->broken && r->back.sring) {
		/* Found work, so the loop does not sleep now: disarm the
		 * notification a final check armed (req_event at or below
		 * req_cons is never in the frontend's range), or the frontend
		 * kicks us for every push while we poll anyway (measured: one
		 * eventfd write per ~1.6 requests at QD32 over 4 queues). The
		 * next final check re-arms before any sleep. */
		atomic_store_explicit(&r->back.sring->req_event, r->back.req_cons,
				      memory_order_relaxed);
	}
	return work;
}

/* --- connect / disconnect ------------------------------------------------------ */

static void ring_port_event(void *arg, evtchn_port_t port, enum evtchn_event ev)
{
	struct blkback_ring *r = arg;
	(void)port;
	/* Only flag and wake; the poller does the work. */
	if (ev == EVTCHN_EV_CLOSED) {
		/* The frontend closed its end or died: the loop closes the
		 * device (blkback_run_deferred, which only wake_ready runs: so
		 * through the eventfd even in the loop's own thread, where this
		 * handler always runs now that xenstore calls no longer
		 * dispatch). */
		atomic_store(&r->dev->peer_gone, true);
		atomic_store(&r->dev->bb->deferred, true);
		blkback_wake_deferred(r->dev->bb);
	}
	atomic_store_explicit(&r->kicked, true, memory_order_relaxed);
	blkback_wake(r->dev->bb);
}

int blkback_ring_connect(struct blkback_ring *r, const struct gnt_map_op *ops, int map_ret,
			 unsigned order, evtchn_port_t remote_port)
{
	struct blkback_dev *d = r->dev;
	struct blkback *bb = d->bb;
	unsigned n = 1u << order;
	int ret = 0;
	for (unsigned i = 0; i < n; i++) {
		if (ops[i].status == GNTST_okay) {
			r->handles[r->nr_pages] = ops[i].handle;
			r->pages[r->nr_pages++] = ops[i].addr;
		} else {
			ret = map_ret ? map_ret : -EIO;
		}
	}
	if (ret) {
		log_warn("%s: queue %u: ring grants not mapped: %d", d->name, r->idx, ret);
		goto fail;
	}
	/* The ring must be virtually contiguous: consecutive frames of one
	 * segment (docs/devices.md), which the library maps as one range. */
	for (unsigned i = 1; i < n; i++) {
		if ((char *)r->pages[i] != (char *)r->pages[0] + i * RING_PAGE_SIZE) {
			log_warn("%s: queue %u: ring pages are not consecutive frames", d->name,
				 r->idx);
			ret = -EINVAL;
			goto fail;
		}
	}
	r->order = order;
	ret = blkif_ring_back_attach(&r->back, r->pages[0], order);
	if (ret)
		goto fail;
	/* A frontend might have pushed garbage before we attach: the first
	 * poll checks the indices like any other. */
	ret = evtchn_bind_interdomain(bb->h, d->fe_domid, remote_port, &r->port);
	if (ret) {
		log_warn("%s: queue %u: bind to port %u of domain %u: %d", d->name, r->idx,
			 remote_port, d->fe_domid, ret);
		goto fail;
	}
	r->port_bound = true;
	ret = evloop_add_port(bb->loop, r->port, ring_port_event, r);
	if (ret)
		goto fail;
	if (d->persistent) {
		ret = gnt_pcache_create(bb->h, d->fe_domid, BLKBACK_PGRANTS_MAX, &r->pcache);
		if (ret)
			goto fail;
	}
	ret = evloop_add_poller(bb->loop, blkback_ring_poll, r);
	if (ret)
		goto fail;
	r->polling = true;
	return 0;
fail:
	blkback_ring_disconnect(r);
	return ret ? ret : -EINVAL;
}

/* --- the ring-progress watchdog ------------------------------------------------ */

/* The evloop progress check (docs/recovery.md "Ring-progress watchdog").
 * Only private state is read: the unanswered lists and the disk completion
 * counters, never the shared ring. A request is stalled when it has been
 * unanswered for bound_ns and either the backend still holds it (taken but
 * never sent to the disk, or lost: nothing of ours legitimately holds one
 * for more than a loop iteration) or the disk has it and the disk completed
 * nothing for that device in bound_ns (an I/O that never completes). A
 * request that is merely slow while the disk keeps completing others is not
 * stalled, so a frontend flooding its rings cannot trip it; a broken ring
 * (closed for bad input) is never looked at. Runs in the loop thread. */
uint64_t blkback_progress_check(void *arg, uint64_t now, uint64_t bound, char *why, size_t cap)
{
	struct blkback *bb = arg;
	uint64_t worst = 0;
	for (struct blkback_dev *d = bb->devs; d; d = d->next) {
		bool disk_busy = false;
		for (unsigned i = 0; i < d->nr_rings; i++)
			disk_busy = disk_busy || d->rings[i].st.inflight > 0;
		/* The disk's progress clock, restarted at the first check that
		 * sees the disk busy and at each that sees a completion: it
		 * may only underestimate how long the disk did nothing (a
		 * stall is then reported up to a quarter period late, never
		 * below the bound). */
		if (!disk_busy || !d->wd_busy || d->disk_done != d->wd_done_seen) {
			d->wd_done_seen = d->disk_done;
			d->wd_done_ns = now;
		}
		d->wd_busy = disk_busy;
		uint64_t disk_idle = now - d->wd_done_ns;
		for (unsigned i = 0; i < d->nr_rings; i++) {
			struct blkback_ring *r = &d->rings[i];
			if (r->broken || !r->back.sring)
				continue;
			/* Oldest first: stop at the first younger than bound. */
			for (struct blkback_req *q = r->un_head; q; q = q->un_next) {
				uint64_t age = now - q->taken_ns;
				if (age < bound)
					break;
				if (q->in_disk && disk_idle < bound)
					continue;
				if (age > worst) {
					worst = age;
					if (q->in_disk)
						snprintf(why, cap,
							 "%s ring %u: request outstanding %" PRIu64
							 " ms, disk idle %" PRIu64 " ms",
							 d->name, r->idx, age / 1000000u,
							 disk_idle / 1000000u);
					else
						snprintf(why, cap,
							 "%s ring %u: request outstanding %" PRIu64
							 " ms",
							 d->name, r->idx, age / 1000000u);
				}
				break;
			}
		}
	}
	return worst;
}

void blkback_ring_disconnect(struct blkback_ring *r)
{
	struct blkback *bb = r->dev->bb;
	if (r->polling) {
		evloop_del_poller(bb->loop, blkback_ring_poll, r);
		r->polling = false;
	}
	/* In-flight I/O writes into mapped grants: wait for it before
	 * unmapping (its responses still go out unless the ring is broken). */
	blkback_io_drain_ring(bb, r);
	blkback_push_responses(bb);
	if (r->port_bound) {
		evloop_del_port(bb->loop, r->port);
		evtchn_close(bb->h, r->port);
		r->port_bound = false;
	}
	gnt_pcache_destroy(r->pcache);
	r->pcache = NULL;
	if (r->nr_pages) {
		int e = gnt_unmap_batch(bb->h, r->handles, r->nr_pages, NULL);
		if (e)
			log_warn("%s: queue %u: ring unmap: %d", r->dev->name, r->idx, e);
	}
	r->nr_pages = 0;
	memset(&r->back, 0, sizeof(r->back));
	/* Left after the drain: requests lost on purpose (crash point stall). */
	while (r->un_head)
		req_free(r->un_head);
}
