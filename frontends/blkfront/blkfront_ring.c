// SPDX-License-Identifier: MIT
// blkfront's data path: the data page pool (a segment dedicated to the
// backend; with persistent grants each page is granted once and reused),
// the queues (a blkif ring and an event channel each), the shadow (every
// blkif request from submission to response, in submission order, with the
// pool pages that hold its data) and the split of a caller's io into blkif
// requests. A shadow entry says what to do, not how it went on a ring: grant
// refs and the inline/indirect encoding are chosen when it is sent, so the
// same entry can be sent again to a new backend instance after a crash
// (bf_shadow_requeue_all, issue 6). Responses are copied out of the ring and
// checked against the shadow (id, generation, queue, operation); anything
// else is logged and dropped, and a producer index jump resets the
// connection. Runs in the loop thread only. See docs/blkfront.md.
#include "frontends/blkfront/blkfront_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "hv/evloop.h"
#include "hv/evtchn.h"
#include "ring/xenbus.h"

#define PAGE RING_PAGE_SIZE

/* --- the pool ------------------------------------------------------------- */

/* bf_poll asks the loop to spin for responses only while at most this many
 * data pages of writes are in flight (256 KiB: 32 4 KiB writes). */
#define BF_SPIN_MAX_PAGES 64u

#define POOL_WORDS (BF_POOL_PAGES / 64u)
_Static_assert(BF_POOL_PAGES % 64u == 0, "the pool bitmap is whole words");

int bf_pool_setup(struct blkfront *bf)
{
	if (bf->pool)
		return 0;
	int r = gnt_seg_alloc(bf->env.h, bf->backend_id, BF_POOL_PAGES, &bf->pool);
	if (r)
		return r;
	bf->pool_map = calloc(POOL_WORDS, sizeof(*bf->pool_map));
	bf->pool_lent = calloc(BF_POOL_PAGES, sizeof(*bf->pool_lent));
	bf->pool_refs = calloc(BF_POOL_PAGES, sizeof(*bf->pool_refs));
	if (!bf->pool_map || !bf->pool_lent || !bf->pool_refs) {
		free(bf->pool_map);
		free(bf->pool_lent);
		free(bf->pool_refs);
		bf->pool_map = NULL;
		bf->pool_lent = NULL;
		bf->pool_refs = NULL;
		gnt_seg_free(bf->env.h, bf->pool);
		bf->pool = NULL;
		return -ENOMEM;
	}
	/* The last page stays zero: every WRITE_ZEROES segment points at it. */
	memset(gnt_seg_page(bf->pool, BF_ZERO_PAGE), 0, RING_PAGE_SIZE);
	memset(bf->pool_map, 0xff, POOL_WORDS * sizeof(*bf->pool_map));
	bf->pool_map[BF_ZERO_PAGE / 64u] &= ~(1ull << (BF_ZERO_PAGE % 64u));
	bf->pool_nfree = BF_POOL_PAGES - 1;
	return 0;
}

/* End every persistent grant of the pool (the backend is gone or the new
 * one does not use them). A ref the backend still maps is kept and logged. */
void bf_grants_end_persistent(struct blkfront *bf)
{
	if (!bf->pool_refs)
		return;
	unsigned busy = 0;
	for (uint32_t i = 0; i < BF_POOL_PAGES; i++) {
		if (!bf->pool_refs[i])
			continue;
		if (gnt_end_access(bf->env.gt, bf->pool_refs[i]) == 0)
			bf->pool_refs[i] = 0;
		else
			busy++;
	}
	if (busy)
		log_warn("vbd %u: %u persistent grants still mapped by the backend", bf->devid,
			 busy);
}

int bf_pool_teardown(struct blkfront *bf, bool leak)
{
	if (!bf->pool)
		return 0;
	bf_grants_end_persistent(bf);
	int r = gnt_seg_free(bf->env.h, bf->pool);
	if (r && !leak)
		return -EBUSY; /* the backend still maps some of it: try later */
	if (r)
		log_warn("vbd %u: data segment still mapped by the backend: leaked", bf->devid);
	free(bf->pool_map);
	free(bf->pool_lent);
	free(bf->pool_refs);
	bf->pool_map = NULL;
	bf->pool_lent = NULL;
	bf->pool_refs = NULL;
	bf->pool = NULL;
	return 0;
}

/* Single pages come from the top of the pool and runs (lent buffers,
 * blkfront_buf_get) from the bottom, so that small requests do not break up
 * the long runs large buffers need. */
static int pool_get(struct blkfront *bf, uint32_t n, uint32_t *pages)
{
	if (bf->pool_nfree < n)
		return -EAGAIN;
	uint32_t got = 0;
	for (int w = (int)POOL_WORDS - 1; w >= 0 && got < n; w--) {
		while (bf->pool_map[w] && got < n) {
			unsigned b = 63u - (unsigned)__builtin_clzll(bf->pool_map[w]);
			bf->pool_map[w] &= ~(1ull << b);
			pages[got++] = (uint32_t)w * 64u + b;
		}
	}
	bf->pool_nfree -= n;
	return 0;
}

static void pool_put(struct blkfront *bf, uint32_t n, const uint32_t *pages)
{
	for (uint32_t i = 0; i < n; i++)
		bf->pool_map[pages[i] / 64u] |= 1ull << (pages[i] % 64u);
	bf->pool_nfree += n;
}

static bool pool_page_free(const struct blkfront *bf, uint32_t p)
{
	return bf->pool_map[p / 64u] >> (p % 64u) & 1u;
}

/* First fit: the first page of n consecutive free pages, taken; -1 if none. */
static int64_t pool_get_run(struct blkfront *bf, uint32_t n)
{
	uint32_t start = 0, len = 0;
	for (uint32_t p = 0; p < BF_POOL_PAGES; p++) {
		if (!pool_page_free(bf, p)) {
			len = 0;
			/* Skip a wholly used word at once. */
			if (p % 64u == 0 && bf->pool_map[p / 64u] == 0)
				p += 63;
			continue;
		}
		if (len++ == 0)
			start = p;
		if (len == n) {
			for (uint32_t i = start; i < start + n; i++)
				bf->pool_map[i / 64u] &= ~(1ull << (i % 64u));
			bf->pool_nfree -= n;
			return start;
		}
	}
	return -1;
}

void *blkfront_buf_get(struct blkfront *bf, uint32_t length)
{
	if (!bf->pool || !bf->connected || length == 0 || length > BF_MAX_IO)
		return NULL;
	uint32_t n = (length + PAGE - 1) / PAGE;
	if (bf->pool_nfree < n + BF_BUF_RESERVE)
		return NULL;
	int64_t first = pool_get_run(bf, n);
	if (first < 0)
		return NULL;
	memset(bf->pool_lent + first, 1, n);
	return gnt_seg_page(bf->pool, (uint32_t)first);
}

/* The first pool page of a lent buffer spanning length bytes at buf, or -1
 * if buf is not (wholly) one. */
static int64_t lent_first_page(const struct blkfront *bf, const void *buf, uint32_t length)
{
	if (!bf->pool || !length)
		return -1;
	const char *base = gnt_seg_page(bf->pool, 0), *p = buf;
	if (p < base || (uintptr_t)(p - base) % PAGE)
		return -1;
	uint64_t first = (uint64_t)(p - base) / PAGE, n = (length + PAGE - 1) / PAGE;
	if (first + n > BF_POOL_PAGES)
		return -1;
	for (uint64_t i = first; i < first + n; i++)
		if (!bf->pool_lent[i])
			return -1;
	return (int64_t)first;
}

void blkfront_buf_put(struct blkfront *bf, void *buf, uint32_t length)
{
	int64_t first = lent_first_page(bf, buf, length);
	if (first < 0) {
		log_warn("vbd %u: blkfront_buf_put of a buffer that was not lent", bf->devid);
		return;
	}
	uint32_t n = (length + PAGE - 1) / PAGE;
	for (uint32_t i = (uint32_t)first; i < (uint32_t)first + n; i++) {
		bf->pool_lent[i] = 0;
		bf->pool_map[i / 64u] |= 1ull << (i % 64u);
	}
	bf->pool_nfree += n;
}

/* A grant ref for pool page `page`: the persistent one (granted read-write
 * on first use), or a fresh one recorded in r->tmp_refs. */
static int page_ref(struct blkfront *bf, struct bf_req *r, uint32_t page, int readonly,
		    grant_ref_t *ref)
{
	uint32_t frame = gnt_seg_frame(bf->pool, page);
	if (bf->persistent) {
		if (!bf->pool_refs[page]) {
			/* Read-write: backends map persistent grants read-write
			 * (Linux's does), whatever the request. A backend that
			 * scribbles on the zero page only spoils its own disk. */
			int rc = gnt_grant_access(bf->env.gt, bf->backend_id, frame, 0,
						  &bf->pool_refs[page]);
			if (rc)
				return rc == -ENOSPC ? -EAGAIN : rc;
		}
		*ref = bf->pool_refs[page];
		return 0;
	}
	int rc = gnt_grant_access(bf->env.gt, bf->backend_id, frame, readonly, ref);
	if (rc)
		return rc == -ENOSPC ? -EAGAIN : rc;
	r->tmp_refs[r->ntmp_refs++] = *ref;
	return 0;
}

static void req_end_tmp_refs(struct blkfront *bf, struct bf_req *r)
{
	for (unsigned i = 0; i < r->ntmp_refs; i++) {
		int rc = gnt_end_access(bf->env.gt, r->tmp_refs[i]);
		if (rc)
			log_warn("vbd %u: grant %u still in use after its response (%d): leaked",
				 bf->devid, r->tmp_refs[i], rc);
	}
	free(r->tmp_refs);
	r->tmp_refs = NULL;
	r->ntmp_refs = 0;
}

/* --- the shadow ------------------------------------------------------------ */

static struct bf_req *shadow_alloc(struct blkfront *bf)
{
	if (!bf->shadow_nfree)
		return NULL;
	struct bf_req *r = &bf->shadow[bf->shadow_free[--bf->shadow_nfree]];
	uint32_t gen = r->gen;
	memset(r, 0, sizeof(*r));
	r->gen = gen;
	r->state = BF_REQ_QUEUED;
	bf->stats.shadow_live++;
	return r;
}

/* Append r to the shadow (submission order). */
static void shadow_append(struct blkfront *bf, struct bf_req *r)
{
	r->next = NULL;
	r->prev = bf->tail;
	if (bf->tail)
		bf->tail->next = r;
	else
		bf->head = r;
	bf->tail = r;
	if (!bf->first_queued)
		bf->first_queued = r;
}

/* Insert n after pos (used when a replay splits an entry). */
static void shadow_insert_after(struct blkfront *bf, struct bf_req *pos, struct bf_req *n)
{
	n->prev = pos;
	n->next = pos->next;
	if (pos->next)
		pos->next->prev = n;
	else
		bf->tail = n;
	pos->next = n;
}

static void shadow_remove(struct blkfront *bf, struct bf_req *r)
{
	if (bf->first_queued == r)
		bf->first_queued = r->next;
	if (r->prev)
		r->prev->next = r->next;
	else
		bf->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		bf->tail = r->prev;
	free(r->segs);
	free(r->tmp_refs);
	r->segs = NULL;
	r->tmp_refs = NULL;
	r->state = BF_REQ_FREE;
	r->gen++; /* a late or duplicate response for this id no longer matches */
	bf->shadow_free[bf->shadow_nfree++] = (uint32_t)(r - bf->shadow);
	bf->stats.shadow_live--;
}

static uint64_t req_id(const struct blkfront *bf, const struct bf_req *r)
{
	return (uint64_t)r->gen << 32 | (uint64_t)(r - bf->shadow);
}

/* --- ios --------------------------------------------------------------------- */

static void writes_remove(struct blkfront *bf, struct bf_io *io)
{
	if (!io->in_writes)
		return;
	if (io->wprev)
		io->wprev->wnext = io->wnext;
	else
		bf->writes_head = io->wnext;
	if (io->wnext)
		io->wnext->wprev = io->wprev;
	else
		bf->writes_tail = io->wprev;
	io->in_writes = false;
}

static void writes_append(struct blkfront *bf, struct bf_io *io)
{
	io->seq = ++bf->wseq;
	io->wnext = NULL;
	io->wprev = bf->writes_tail;
	if (bf->writes_tail)
		bf->writes_tail->wnext = io;
	else
		bf->writes_head = io;
	bf->writes_tail = io;
	io->in_writes = true;
}

/* Queue a flush covering every write-like io submitted so far. */
static void flush_enqueue(struct blkfront *bf, struct bf_io *io)
{
	io->seq = bf->wseq;
	io->next = NULL;
	if (bf->flush_tail)
		bf->flush_tail->next = io;
	else
		bf->flush_head = io;
	bf->flush_tail = io;
}

/* Put every flush whose writes are all complete into the shadow. */
static void flush_check(struct blkfront *bf)
{
	while (bf->flush_head && bf->shadow_nfree) {
		struct bf_io *io = bf->flush_head;
		if (bf->writes_head && bf->writes_head->seq <= io->seq)
			break;
		bf->flush_head = io->next;
		if (!bf->flush_head)
			bf->flush_tail = NULL;
		struct bf_req *r = shadow_alloc(bf);
		r->op = bf->can_flush ? BLKIF_OP_FLUSH_DISKCACHE : BLKIF_OP_WRITE_BARRIER;
		r->parent = io;
		io->pending = 1;
		shadow_append(bf, r);
	}
}

static void io_finish(struct blkfront *bf, struct bf_io *io)
{
	writes_remove(bf, io);
	bf->wr_pages -= io->wr_pages;
	io->wr_pages = 0;
	if (io->pages) {
		pool_put(bf, io->npages, io->pages);
		free(io->pages);
		io->pages = NULL;
	}
	if ((io->op == BLKFRONT_WRITE || io->op == BLKFRONT_DISCARD ||
	     io->op == BLKFRONT_WRITE_ZEROES) &&
	    (io->flags & BLKFRONT_FUA) && !io->err && !io->fua_flushing) {
		/* FUA: the data is written; now a flush covering it. */
		io->fua_flushing = true;
		flush_enqueue(bf, io);
		flush_check(bf);
		bf->want_kick = true;
		return;
	}
	if (io->err)
		bf->stats.errors++;
	else if (io->op == BLKFRONT_READ)
		bf->stats.bytes_rd += io->length;
	else if (io->op == BLKFRONT_WRITE || io->op == BLKFRONT_WRITE_ZEROES)
		bf->stats.bytes_wr += io->length;
	else if (io->op == BLKFRONT_FLUSH)
		bf->stats.flushes++;
	else
		bf->stats.discards++;
	io->done(io->arg, io->err);
	free(io);
	bf->want_kick = true;
	flush_check(bf);
}

static int status_errno(int16_t st)
{
	switch (st) {
	case BLKIF_RSP_OKAY:
		return 0;
	case BLKIF_RSP_EOPNOTSUPP:
		return -ENOTSUP;
	default:
		return -EIO;
	}
}

/* Put more of a WRITE_ZEROES io into the shadow: inline requests whose
 * segments all name the zero page, at most BF_ZERO_INFLIGHT at a time.
 * Returns whether it added any. */
static bool zeroes_issue(struct blkfront *bf, struct bf_io *io)
{
	bool added = false;
	uint64_t end = io->offset + io->length;
	while (io->zero_next < end && io->pending < BF_ZERO_INFLIGHT && bf->shadow_nfree) {
		uint64_t left = end - io->zero_next;
		unsigned nsegs = 0;
		struct bf_seg segs[BLKIF_MAX_SEGMENTS_PER_REQUEST];
		uint64_t bytes = 0;
		while (nsegs < BLKIF_MAX_SEGMENTS_PER_REQUEST && bytes < left) {
			uint64_t n = left - bytes < RING_PAGE_SIZE ? left - bytes : RING_PAGE_SIZE;
			segs[nsegs++] = (struct bf_seg){.page = BF_ZERO_PAGE,
							.first_sect = 0,
							.last_sect = (uint8_t)(n / 512u - 1)};
			bytes += n;
		}
		struct bf_seg *copy = malloc(nsegs * sizeof(*copy));
		if (!copy) {
			if (!io->err)
				io->err = -ENOMEM; /* never report a partial zeroing as done */
			break;
		}
		memcpy(copy, segs, nsegs * sizeof(*copy));
		struct bf_req *r = shadow_alloc(bf);
		r->op = BLKIF_OP_WRITE;
		r->sector = io->zero_next / 512u;
		r->segs = copy;
		r->nsegs = (uint16_t)nsegs;
		r->parent = io;
		io->pending++;
		io->zero_next += bytes;
		shadow_append(bf, r);
		added = true;
	}
	return added;
}

/* A shadow entry is answered (err 0 or -errno): copy read data out, drop
 * its grants, and complete its io when it was the last entry. */
static void req_complete(struct blkfront *bf, struct bf_req *r, int err)
{
	struct bf_io *io = r->parent;
	req_end_tmp_refs(bf, r);
	if (!err && r->op == BLKIF_OP_READ) {
		uint32_t off = r->data_off;
		for (unsigned i = 0; i < r->nsegs; i++) {
			const struct bf_seg *s = &r->segs[i];
			uint32_t n = (uint32_t)(s->last_sect - s->first_sect + 1) * 512u;
			char *src = (char *)gnt_seg_page(bf->pool, s->page) + s->first_sect * 512u;
			/* A lent buffer already holds the data where it was read. */
			if (!io->lent)
				memcpy((char *)io->data + off, src, n);
			off += n;
		}
	}
	if (err && !io->err)
		io->err = err;
	shadow_remove(bf, r);
	io->pending--;
	if (io->op == BLKFRONT_WRITE_ZEROES && !io->err && zeroes_issue(bf, io))
		return; /* more of it is on its way (bf_poll pumps) */
	if (io->pending == 0)
		io_finish(bf, io);
}

/* --- submission -------------------------------------------------------------- */

static int max_segs_now(const struct blkfront *bf)
{
	return bf->max_segs ? (int)bf->max_segs : BLKIF_MAX_SEGMENTS_PER_REQUEST;
}

int blkfront_submit(struct blkfront *bf, enum blkfront_op op, unsigned flags, uint64_t offset,
		    uint32_t length, void *data, blkfront_done_fn done, void *arg)
{
	if (!done || (offset | length) % 512u || (length == 0 && op != BLKFRONT_FLUSH))
		return -EINVAL;
	if (!bf->connected) {
		bf->want_kick = true;
		return -EAGAIN;
	}
	if (op != BLKFRONT_READ && op != BLKFRONT_FLUSH && bf->read_only)
		return -EROFS;
	if (op != BLKFRONT_FLUSH && offset + length > bf->sectors * 512u)
		return -EINVAL;
	if (op == BLKFRONT_FLUSH && !bf->can_flush && !bf->can_barrier)
		return -ENOTSUP;
	if (op == BLKFRONT_DISCARD && !bf->can_discard)
		return -ENOTSUP;
	if ((op == BLKFRONT_READ || op == BLKFRONT_WRITE) && (length > BF_MAX_IO || !data))
		return -EINVAL;
	if ((flags & BLKFRONT_FUA) && !bf->can_flush && !bf->can_barrier)
		return -ENOTSUP;

	struct bf_io *io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	bf->stats.requests++;
	*io = (struct bf_io){.op = op,
			     .flags = flags,
			     .offset = offset,
			     .length = length,
			     .data = data,
			     .done = done,
			     .arg = arg};
	if (op == BLKFRONT_FLUSH) {
		flush_enqueue(bf, io);
		flush_check(bf);
		bf_pump(bf);
		return 0;
	}
	if (op == BLKFRONT_WRITE_ZEROES) {
		if (!bf->shadow_nfree) {
			free(io);
			bf->want_kick = true;
			return -EAGAIN;
		}
		io->zero_next = offset;
		if (!zeroes_issue(bf, io)) {
			free(io);
			return -ENOMEM;
		}
		writes_append(bf, io);
		bf_pump(bf);
		return 0;
	}
	if (op == BLKFRONT_DISCARD) {
		if (!bf->shadow_nfree) {
			free(io);
			bf->want_kick = true;
			return -EAGAIN;
		}
		struct bf_req *r = shadow_alloc(bf);
		r->op = BLKIF_OP_DISCARD;
		r->sector = offset / 512u;
		r->nr_sectors = length / 512u;
		r->parent = io;
		io->pending = 1;
		writes_append(bf, io);
		shadow_append(bf, r);
		bf_pump(bf);
		return 0;
	}

	/* READ / WRITE: pages for the data, then one entry per max_segs pages,
	 * each with its indirect descriptor page when it needs one. */
	uint32_t ms = (uint32_t)max_segs_now(bf);
	uint32_t ndata = (length + PAGE - 1) / PAGE;
	uint32_t nreq = (ndata + ms - 1) / ms;
	uint32_t nind = ms > BLKIF_MAX_SEGMENTS_PER_REQUEST ? nreq : 0;
	/* Data in a buffer lent from the pool (blkfront_buf_get) goes to the
	 * backend from where it is: no pages to take, nothing to copy. */
	int64_t lent = lent_first_page(bf, data, length);
	uint32_t own = lent >= 0 ? nind : ndata + nind; /* pool pages this io takes */
	if (bf->shadow_nfree < nreq || bf->pool_nfree < own) {
		free(io);
		bf->want_kick = true;
		return -EAGAIN;
	}
	io->lent = lent >= 0;
	io->lent_first = lent >= 0 ? (uint32_t)lent : 0;
	io->npages = own;
	io->pages = own ? malloc(own * sizeof(*io->pages)) : NULL;
	struct bf_seg *segs[BF_MAX_IO / PAGE];
	unsigned nsegs_alloc = 0;
	bool oom = own && !io->pages;
	for (uint32_t k = 0; !oom && k < nreq; k++) {
		uint32_t n = ndata - k * ms < ms ? ndata - k * ms : ms;
		segs[k] = malloc(n * sizeof(struct bf_seg));
		oom = !segs[k];
		nsegs_alloc += !oom;
	}
	if (oom) {
		for (unsigned k = 0; k < nsegs_alloc; k++)
			free(segs[k]);
		free(io->pages);
		free(io);
		return -ENOMEM;
	}
	if (own)
		pool_get(bf, own, io->pages);
	const uint32_t *ind_pages = io->pages ? io->pages + (io->lent ? 0 : ndata) : NULL;
	if (op == BLKFRONT_WRITE) {
		for (uint32_t i = 0; !io->lent && i < ndata; i++) {
			uint32_t n = length - i * PAGE < PAGE ? length - i * PAGE : PAGE;
			memcpy(gnt_seg_page(bf->pool, io->pages[i]), (char *)data + i * PAGE, n);
		}
		writes_append(bf, io);
		io->wr_pages = ndata;
		bf->wr_pages += ndata;
	}
	io->pending = nreq;
	for (uint32_t k = 0; k < nreq; k++) {
		struct bf_req *r = shadow_alloc(bf);
		uint32_t first = k * ms, n = ndata - first < ms ? ndata - first : ms;
		r->op = op == BLKFRONT_READ ? BLKIF_OP_READ : BLKIF_OP_WRITE;
		r->sector = (offset + (uint64_t)first * PAGE) / 512u;
		r->data_off = first * PAGE;
		r->segs = segs[k];
		r->nsegs = (uint16_t)n;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t bytes = length - (first + i) * PAGE;
			if (bytes > PAGE)
				bytes = PAGE;
			uint32_t page = io->lent ? io->lent_first + first + i : io->pages[first + i];
			r->segs[i] = (struct bf_seg){.page = page,
						     .first_sect = 0,
						     .last_sect = (uint8_t)(bytes / 512u - 1)};
		}
		if (nind) {
			r->ind_pages[0] = ind_pages[k];
			r->nind = 1;
		}
		r->parent = io;
		shadow_append(bf, r);
	}
	bf_pump(bf);
	return 0;
}

/* --- sending ------------------------------------------------------------------ */

/* Split r so that no entry has more segments than the connected backend
 * takes in one request (a replay to a backend with fewer features). */
static int req_fit(struct blkfront *bf, struct bf_req *r)
{
	unsigned ms = (unsigned)max_segs_now(bf);
	/* Only the original entry has an indirect descriptor page; the pieces
	 * split off it carry at most the inline segments. */
	if (!r->nind && ms > BLKIF_MAX_SEGMENTS_PER_REQUEST)
		ms = BLKIF_MAX_SEGMENTS_PER_REQUEST;
	if (r->nsegs > ms)
		log_info("vbd %u: request of %u segments split for this backend (%u per request)",
			 bf->devid, r->nsegs, ms);
	while (r->nsegs > ms) {
		struct bf_req *n = shadow_alloc(bf);
		if (!n)
			return -ENOMEM;
		unsigned rest = r->nsegs - ms;
		n->segs = malloc(rest * sizeof(*n->segs));
		if (!n->segs) {
			shadow_remove(bf, n);
			return -ENOMEM;
		}
		memcpy(n->segs, r->segs + ms, rest * sizeof(*n->segs));
		n->nsegs = (uint16_t)rest;
		n->op = r->op;
		n->parent = r->parent;
		n->parent->pending++;
		n->data_off = r->data_off + ms * PAGE;
		n->sector = r->sector + (uint64_t)ms * BLKIF_SECTORS_PER_FRAME;
		r->nsegs = (uint16_t)ms;
		shadow_insert_after(bf, r, n);
		r = n;
		if (ms > BLKIF_MAX_SEGMENTS_PER_REQUEST)
			ms = BLKIF_MAX_SEGMENTS_PER_REQUEST;
	}
	return 0;
}

/* Encode r into the next slot of q (the caller checked there is one). */
static int req_send(struct blkfront *bf, struct bf_queue *q, struct bf_req *r)
{
	union blkif_req_slot s;
	memset(&s, 0, sizeof(s));
	uint64_t id = req_id(bf, r);
	uint16_t handle = (uint16_t)bf->devid;
	int rc = 0;
	r->indirect = false;
	switch (r->op) {
	case BLKIF_OP_FLUSH_DISKCACHE:
	case BLKIF_OP_WRITE_BARRIER:
		s.rw.operation = r->op;
		s.rw.handle = handle;
		s.rw.id = id;
		break;
	case BLKIF_OP_DISCARD:
		s.discard.operation = BLKIF_OP_DISCARD;
		s.discard.handle = handle;
		s.discard.id = id;
		s.discard.sector_number = r->sector;
		s.discard.nr_sectors = r->nr_sectors;
		break;
	default: {
		rc = req_fit(bf, r);
		if (rc)
			return rc;
		int ro = r->op == BLKIF_OP_WRITE; /* the backend only reads our data */
		bool ind = r->nsegs > BLKIF_MAX_SEGMENTS_PER_REQUEST;
		if (!bf->persistent) {
			r->tmp_refs = calloc(r->nsegs + 1u, sizeof(*r->tmp_refs));
			if (!r->tmp_refs)
				return -ENOMEM;
			r->ntmp_refs = 0;
		}
		struct blkif_seg *out = s.rw.seg;
		if (ind) {
			if (!r->nind) /* never: indirect pages come with the entry */
				return -EINVAL;
			out = gnt_seg_page(bf->pool, r->ind_pages[0]);
		}
		for (unsigned i = 0; i < r->nsegs; i++) {
			grant_ref_t ref;
			rc = page_ref(bf, r, r->segs[i].page, ro, &ref);
			if (rc)
				goto undo;
			out[i] = (struct blkif_seg){.gref = ref,
						    .first_sect = r->segs[i].first_sect,
						    .last_sect = r->segs[i].last_sect};
		}
		if (ind) {
			grant_ref_t ref;
			rc = page_ref(bf, r, r->ind_pages[0], 1, &ref);
			if (rc)
				goto undo;
			s.indirect.operation = BLKIF_OP_INDIRECT;
			s.indirect.indirect_op = r->op;
			s.indirect.nr_segments = r->nsegs;
			s.indirect.id = id;
			s.indirect.sector_number = r->sector;
			s.indirect.handle = handle;
			s.indirect.indirect_grefs[0] = ref;
			r->indirect = true;
		} else {
			s.rw.operation = r->op;
			s.rw.nr_segments = (uint8_t)r->nsegs;
			s.rw.handle = handle;
			s.rw.id = id;
			s.rw.sector_number = r->sector;
		}
		break;
	}
	}
	union blkif_req_slot *slot = blkif_ring_front_next_req(&q->ring);
	memcpy(slot, &s, sizeof(s));
	r->state = BF_REQ_SENT;
	r->queue = q->idx;
	q->sent++;
	q->pushed = true;
	return 0;
undo:
	req_end_tmp_refs(bf, r);
	return rc;
}

static struct bf_queue *pick_queue(struct blkfront *bf)
{
	for (unsigned i = 0; i < bf->nr_queues; i++) {
		struct bf_queue *q = &bf->queues[(bf->next_queue + i) % bf->nr_queues];
		if (!blkif_ring_front_full(&q->ring)) {
			bf->next_queue = (q->idx + 1) % bf->nr_queues;
			return q;
		}
	}
	return NULL;
}

void bf_pump(struct blkfront *bf)
{
	if (!bf->connected || bf->broken)
		return;
	struct bf_req *r = bf->first_queued;
	while (r) {
		if (r->state != BF_REQ_QUEUED) {
			r = r->next;
			continue;
		}
		struct bf_queue *q = pick_queue(bf);
		if (!q)
			break;
		int rc = req_send(bf, q, r);
		if (rc == -EAGAIN)
			break;
		struct bf_req *after = r->next; /* after a split: its first piece */
		if (rc) {
			log_warn("vbd %u: cannot send a request: %d", bf->devid, rc);
			req_complete(bf, r, rc);
		}
		r = after;
	}
	/* Everything before r is on a ring. */
	while (r && r->state != BF_REQ_QUEUED)
		r = r->next;
	bf->first_queued = r;
	for (unsigned i = 0; i < bf->nr_queues; i++) {
		struct bf_queue *q = &bf->queues[i];
		if (!q->pushed)
			continue;
		q->pushed = false;
		if (blkif_ring_front_push_requests_check_notify(&q->ring)) {
			evtchn_notify(bf->env.h, q->port);
			bf->stats.notifies++;
		}
	}
}

/* --- responses ------------------------------------------------------------ */

static void bad_response(struct blkfront *bf, const struct blkif_rsp *rsp, const char *why)
{
	bf->stats.bad_responses++;
	/* Log the first few, then every 1000th: a hostile backend must not
	 * flood the console. */
	if (bf->bad_logged < 8 || bf->stats.bad_responses % 1000 == 0)
		log_warn("vbd %u: ignoring response id %#llx op %u: %s", bf->devid,
			 (unsigned long long)rsp->id, rsp->operation, why);
	bf->bad_logged++;
}

static int queue_responses(struct blkfront *bf, struct bf_queue *q)
{
	int work = 0;
	for (;;) {
		struct blkif_rsp rsp;
		int rc = blkif_ring_front_take_response(&q->ring, &rsp);
		if (rc == -EAGAIN)
			break;
		if (rc) {
			bf_backend_broken(bf, "response producer index beyond the requests sent");
			return work + 1;
		}
		work++;
		uint32_t idx = (uint32_t)rsp.id, gen = (uint32_t)(rsp.id >> 32);
		if (idx >= BF_SHADOW_MAX) {
			bad_response(bf, &rsp, "unknown id");
			continue;
		}
		struct bf_req *r = &bf->shadow[idx];
		if (r->state != BF_REQ_SENT || r->gen != gen) {
			bad_response(bf, &rsp, "no such request outstanding (stale or duplicate)");
			continue;
		}
		if (r->queue != q->idx) {
			bad_response(bf, &rsp, "request was sent on another queue");
			continue;
		}
		q->sent--;
		bf->stats.responses++;
		uint8_t want = r->indirect ? BLKIF_OP_INDIRECT : r->op;
		int err = status_errno(rsp.status);
		if (rsp.operation != want) {
			bad_response(bf, &rsp, "operation differs from the request's");
			err = -EIO;
		}
		if (err == -ENOTSUP &&
		    (r->op == BLKIF_OP_FLUSH_DISKCACHE || r->op == BLKIF_OP_WRITE_BARRIER)) {
			log_warn("vbd %u: the backend refused a flush", bf->devid);
		}
		req_complete(bf, r, err);
	}
	return work;
}

void bf_kick(struct blkfront *bf)
{
	if (bf->want_kick && bf->kick) {
		bf->want_kick = false;
		bf->kick(bf->kick_arg);
	}
}

/* The evloop poller of a device: responses of every queue; before the loop
 * sleeps (EVLOOP_POLL_FINAL) re-arm rsp_event and look once more. */
int bf_poll(void *arg, unsigned flags)
{
	struct blkfront *bf = arg;
	int work = 0;
	if (atomic_load_explicit(&bf->backend_lost, memory_order_acquire) && bf->rings_up) {
		bf_handle_lost(bf);
		work++;
	}
	if (!bf->rings_up || bf->broken)
		return work;
	bool batch = false;
	for (unsigned i = 0; i < bf->nr_queues && !bf->broken; i++) {
		struct bf_queue *q = &bf->queues[i];
		if (!q->ring.sring)
			continue;
		if (!(flags & EVLOOP_POLL_FINAL) && !blkif_ring_front_poll_responses(&q->ring, 0))
			continue;
		if (!batch && bf->batch_begin) {
			/* The completions of this pass go out together. */
			bf->batch_begin(bf->batch_arg);
			batch = true;
		}
		int qwork = queue_responses(bf, q);
		if (flags & EVLOOP_POLL_FINAL) {
			uint32_t n = 0;
			if (blkif_ring_front_final_check_for_responses(&q->ring, &n) < 0)
				bf_backend_broken(bf, "response producer index jumped");
			else if (n)
				qwork += queue_responses(bf, q);
		}
		if (qwork && q->ring.sring) {
			/* Found work, so the loop does not sleep now: disarm the
			 * notification that a final check armed (rsp_event at or
			 * below rsp_cons is never in the backend's range), or the
			 * backend kicks us for every push while we poll anyway.
			 * The next final check re-arms before any sleep. */
			atomic_store_explicit(&q->ring.sring->rsp_event, q->ring.rsp_cons,
					      memory_order_relaxed);
		}
		work += qwork;
	}
	if (work) {
		flush_check(bf);
		bf_pump(bf);
		bf_kick(bf);
	}
	if (batch)
		bf->batch_end(bf->batch_arg);
	/* Requests on a ring: their responses are usually due within a few
	 * tens of microseconds; spin for them rather than sleep (evloop.h).
	 * Not while many write pages are in flight: large writes run in the
	 * backend host's io_uring worker threads, and spinning takes a CPU
	 * from them (2 CPUs: in-guest 1 MiB writes at QD4 0.63x -> 0.50-0.55x
	 * of the file). Reads of cached data are done in the backend's own
	 * loop (RWF_NOWAIT), so waiting for them is worth a spin. */
	if (bf->wr_pages <= BF_SPIN_MAX_PAGES)
		for (unsigned i = 0; i < bf->nr_queues; i++)
			if (bf->queues[i].sent) {
				evloop_poll_pending(bf->env.loop);
				break;
			}
	/* An NBD client that got its reply usually sends its next request
	 * within one round trip (QD1: tens of microseconds): keep looking at
	 * the socket for the wait budget after the last work rather than
	 * sleep and pay a wake-up for it (the loop yields its CPU to anything
	 * runnable meanwhile, and sleeps once the budget passed idle). */
	if (bf->nbd_active)
		evloop_poll_pending(bf->env.loop);
	return work;
}

/* Event channel handler. It may run inside a xenstore call (the library
 * dispatches hv events while it waits) or in the xenstore library's reader
 * thread, which shares our hypercall connection: then the event never
 * reaches our loop's epoll. So it only records what happened and wakes the
 * loop through wake_fd; responses are picked up by the poller, a closed port
 * by the poller and the xenbus code. */
static void port_event(void *arg, evtchn_port_t port, enum evtchn_event ev)
{
	struct blkfront *bf = arg;
	(void)port;
	if (ev == EVTCHN_EV_CLOSED)
		atomic_store_explicit(&bf->backend_lost, true, memory_order_release);
	/* In the loop thread the pollers run at the start of the next
	 * iteration anyway; only another thread has to wake the loop. */
	if (pthread_equal(pthread_self(), bf->loop_thread))
		return;
	uint64_t one = 1;
	(void)!write(bf->wake_fd, &one, sizeof(one));
}

static void wake_ready(void *arg, int fd, uint32_t events)
{
	uint64_t v;
	(void)arg;
	(void)events;
	(void)!read(fd, &v, sizeof(v));
}

int bf_wake_setup(struct blkfront *bf)
{
	bf->loop_thread = pthread_self();
	bf->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (bf->wake_fd < 0)
		return -errno;
	int r = evloop_add_fd(bf->env.loop, bf->wake_fd, EPOLLIN, wake_ready, bf);
	if (r) {
		close(bf->wake_fd);
		bf->wake_fd = -1;
	}
	return r;
}

void bf_wake_teardown(struct blkfront *bf)
{
	if (bf->wake_fd < 0)
		return;
	evloop_del_fd(bf->env.loop, bf->wake_fd);
	close(bf->wake_fd);
	bf->wake_fd = -1;
}

/* --- queues ------------------------------------------------------------------- */

int bf_queues_setup(struct blkfront *bf)
{
	unsigned npages = 1u << bf->ring_order;
	int r = 0;
	for (unsigned i = 0; i < bf->nr_queues; i++) {
		struct bf_queue *q = &bf->queues[i];
		memset(q, 0, sizeof(*q));
		q->bf = bf;
		q->idx = i;
		r = gnt_seg_alloc(bf->env.h, bf->backend_id, npages, &q->ring_seg);
		if (r)
			goto fail;
		r = blkif_ring_front_init(&q->ring, q->ring_seg->base, bf->ring_order);
		if (r)
			goto fail;
		for (unsigned p = 0; p < npages; p++) {
			r = gnt_grant_access(bf->env.gt, bf->backend_id,
					     gnt_seg_frame(q->ring_seg, p), 0, &q->ring_refs[p]);
			if (r)
				goto fail;
			q->nr_ring_refs++;
		}
		r = evtchn_alloc_unbound(bf->env.h, bf->backend_id, &q->port);
		if (r)
			goto fail;
		q->have_port = true;
		r = evloop_add_port(bf->env.loop, q->port, port_event, bf);
		if (r)
			goto fail;
	}
	return 0;
fail:
	bf_queues_teardown(bf, true);
	return r;
}

int bf_queues_teardown(struct blkfront *bf, bool leak)
{
	int ret = 0;
	for (unsigned i = 0; i < BF_MAX_QUEUES; i++) {
		struct bf_queue *q = &bf->queues[i];
		if (q->have_port) {
			evloop_del_port(bf->env.loop, q->port);
			evtchn_close(bf->env.h, q->port);
			q->have_port = false;
		}
		unsigned kept = 0;
		for (unsigned p = 0; p < q->nr_ring_refs; p++) {
			if (!q->ring_refs[p])
				continue; /* ended by an earlier try */
			if (gnt_end_access(bf->env.gt, q->ring_refs[p]) == 0)
				q->ring_refs[p] = 0;
			else
				kept++;
		}
		q->ring.sring = NULL;
		q->sent = 0;
		q->pushed = false;
		if (kept && !leak) {
			ret = -EBUSY; /* the backend still maps it: try later */
			continue;
		}
		q->nr_ring_refs = 0;
		if (q->ring_seg) {
			/* A backend that still maps the ring keeps it: leak it rather
			 * than reuse memory it can see. */
			if (kept || gnt_seg_free(bf->env.h, q->ring_seg))
				log_warn("vbd %u: ring %u still mapped by the backend: leaked",
					 bf->devid, i);
			q->ring_seg = NULL;
		}
	}
	return ret;
}

/* Every entry on a ring goes back to QUEUED (its grants ended), so that the
 * next bf_pump sends the whole shadow again, in order. */
void bf_shadow_requeue_all(struct blkfront *bf)
{
	for (struct bf_req *r = bf->head; r; r = r->next) {
		if (r->state == BF_REQ_SENT) {
			req_end_tmp_refs(bf, r);
			r->state = BF_REQ_QUEUED;
			bf->stats.replayed++;
		}
	}
	bf->first_queued = bf->head;
	for (unsigned i = 0; i < BF_MAX_QUEUES; i++)
		bf->queues[i].sent = 0;
}

/* Complete every outstanding io with err (device closing for good). */
void bf_fail_all(struct blkfront *bf, int err)
{
	while (bf->head) {
		struct bf_req *r = bf->head;
		r->state = BF_REQ_SENT; /* so that completion treats it alike */
		req_complete(bf, r, err);
	}
	while (bf->flush_head) {
		struct bf_io *io = bf->flush_head;
		bf->flush_head = io->next;
		io->done(io->arg, err);
		free(io);
	}
	bf->flush_tail = NULL;
}
