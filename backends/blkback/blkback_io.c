// SPDX-License-Identifier: MIT
// Disk I/O for drvdom-blkback. A read or write is first tried inline with
// preadv2/pwritev2(RWF_NOWAIT), which completes only if it needs no disk
// wait (page cache hit; a buffered write where the filesystem can do it
// without waiting) and otherwise fails with EAGAIN at once: a cached read
// costs one system call and no thread hop. ext4 cannot do buffered writes
// that way (EOPNOTSUPP, learnt from the device's first write): there, small
// writes are plain blocking pwritev in the loop, within a byte budget per
// ring round and unless a recent one was slow (io_write_blocking).
// Everything else goes to one io_uring for the whole process:
// readv/writev straight into the mapped grant pages, fsync(DATASYNC)
// drained behind every earlier request for a flush,
// fallocate(PUNCH_HOLE|KEEP_SIZE) for a discard, submitted once per batch.
// Completions are reaped from the shared CQ without a system call by a
// poller of the event loop (COOP_TASKRUN + TASKRUN_FLAG tell the reaper
// when the kernel has completion work pending), and an eventfd registered
// with the io_uring wakes the loop when it sleeps. The loop thread never
// waits for the disk except while tearing a ring down
// (blkback_io_drain_ring). Where the host refuses io_uring, or with
// --io-threads, a small thread pool does the same (blkback_pool.c).
#include "backends/blkback/blkback.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define BLKBACK_SQ_ENTRIES 256u
#define BLKBACK_CQ_ENTRIES 4096u

/* Completed requests in one reap, before their rings are pushed. */
#define BLKBACK_REAP_MAX 64u

static void io_ready(void *arg, int fd, uint32_t events)
{
	struct blkback *bb = arg;
	uint64_t v;
	(void)events;
	(void)!read(fd, &v, sizeof(v));
	blkback_io_reap(bb);
}

static int io_poll(void *arg, unsigned flags)
{
	(void)flags;
	/* No evloop_poll_pending for I/O in flight: on ext4 the io_uring's
	 * writes run in io-wq worker threads, and a loop spinning for their
	 * completions takes a CPU from them (2 CPUs: 1 MiB writes at QD4 were
	 * ~25% slower with it). */
	return blkback_io_reap(arg) > 0;
}

static int io_uring_start(struct blkback *bb)
{
	struct io_uring_params p = {.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN |
					     IORING_SETUP_TASKRUN_FLAG,
				    .cq_entries = BLKBACK_CQ_ENTRIES};
	int r = io_uring_queue_init_params(BLKBACK_SQ_ENTRIES, &bb->uring, &p);
	if (r == -EINVAL) { /* a kernel before 5.19 */
		p = (struct io_uring_params){.flags = IORING_SETUP_CQSIZE,
					     .cq_entries = BLKBACK_CQ_ENTRIES};
		r = io_uring_queue_init_params(BLKBACK_SQ_ENTRIES, &bb->uring, &p);
	}
	if (r < 0)
		return r;
	r = io_uring_register_eventfd(&bb->uring, bb->uring_efd);
	if (r < 0) {
		io_uring_queue_exit(&bb->uring);
		return r;
	}
	bb->uring_up = true;
	return 0;
}

int blkback_io_init(struct blkback *bb)
{
	bb->uring_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (bb->uring_efd < 0)
		return -errno;
	int r = bb->io_threads ? -ENOSYS : io_uring_start(bb);
	if (r) {
		if (!bb->io_threads)
			log_warn("io_uring unavailable (%s): disk I/O on %u threads instead",
				 strerror(-r), BLKBACK_IO_THREADS);
		r = blkback_pool_start(bb, BLKBACK_IO_THREADS);
		if (r)
			goto fail_efd;
	}
	r = evloop_add_fd(bb->loop, bb->uring_efd, EPOLLIN, io_ready, bb);
	if (r < 0)
		goto fail_io;
	r = evloop_add_poller(bb->loop, io_poll, bb);
	if (r < 0)
		goto fail_fd;
	return 0;
fail_fd:
	evloop_del_fd(bb->loop, bb->uring_efd);
fail_io:
	if (bb->uring_up)
		io_uring_queue_exit(&bb->uring);
	bb->uring_up = false;
	blkback_pool_stop(bb);
fail_efd:
	close(bb->uring_efd);
	return r;
}

void blkback_io_fini(struct blkback *bb)
{
	evloop_del_poller(bb->loop, io_poll, bb);
	evloop_del_fd(bb->loop, bb->uring_efd);
	if (bb->uring_up)
		io_uring_queue_exit(&bb->uring);
	bb->uring_up = false;
	blkback_pool_stop(bb);
	close(bb->uring_efd);
}

/* Expected result of a request's I/O: bytes for reads and writes, 0 else. */
static int64_t io_expected(const struct blkback_req *q)
{
	if (q->io_op == BLKIF_OP_READ || q->io_op == BLKIF_OP_WRITE)
		return (int64_t)(q->nr_sectors << BLKBACK_SECTOR_SHIFT);
	return 0;
}

static uint64_t io_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void blkback_io_round_begin(struct blkback *bb)
{
	bb->inline_budget = BLKBACK_INLINE_ROUND_MAX;
}

/* A write done here, blocking, on a disk without RWF_NOWAIT writes (ext4):
 * the io_uring would hand it to an io-wq worker thread, a wake-up and a
 * context switch (~50 us with the worker on the other CPU) for what is 1-4
 * us of copying a 4 KiB page into page cache. Only small writes, within
 * the round's budget, and not while the device is backing off; the rest
 * still overlap on the io_uring. -EAGAIN: submit it. */
static int io_write_blocking(struct blkback *bb, struct blkback_req *q, off_t off)
{
	struct blkback_dev *d = q->ring->dev;
	uint64_t len = q->nr_sectors << BLKBACK_SECTOR_SHIFT;
	if (len > BLKBACK_INLINE_WRITE_MAX || len > bb->inline_budget)
		return -EAGAIN;
	uint64_t t0 = io_now_ns();
	if (d->inline_off_until_ns) {
		if (t0 < d->inline_off_until_ns)
			return -EAGAIN;
		d->inline_off_until_ns = 0;
	}
	if (blkback_crash_hit(bb, CRASH_SLOW_WRITE)) {
		/* As if this write had been throttled for dirty pages. */
		log_warn("drvdom-crash-at: slow-write: inline write %" PRIu64 " takes %" PRIu64
			 " ms longer",
			 bb->crash.n, bb->crash.ms);
		struct timespec ts = {(time_t)(bb->crash.ms / 1000),
				      (long)(bb->crash.ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	ssize_t w = pwritev(d->disk_fd, q->iov, (int)q->nr_segs, off);
	uint64_t took = io_now_ns() - t0;
	if (took > BLKBACK_INLINE_SLOW_NS) {
		/* Throttled (balance_dirty_pages) or waiting for the journal or
		 * a lock: such waits come in spells, and the loop must not sit
		 * in them while other rings wait. The io_uring's workers take
		 * the device's writes for a while (or preemption made a fast
		 * write look slow: then this costs a little speed for 0.1 s). */
		d->inline_off_until_ns = t0 + took + BLKBACK_INLINE_BACKOFF_NS;
		if (!d->inline_slow_told) {
			d->inline_slow_told = true;
			log_warn("%s: a %" PRIu64 " KiB write took %" PRIu64
				 " ms in the loop: writes to the io_uring for %llu ms "
				 "(and after each such write; told once)",
				 d->name, len >> 10, took / 1000000u,
				 BLKBACK_INLINE_BACKOFF_NS / 1000000ull);
		}
	}
	if (w != (ssize_t)len)
		return -EAGAIN; /* the io_uring tries again and reports */
	bb->inline_budget -= (uint32_t)len;
	q->ring->st.inline_io++;
	return 0;
}

int blkback_io_try_inline(struct blkback *bb, struct blkback_req *q)
{
	if (bb->no_inline_io || (q->io_op != BLKIF_OP_READ && q->io_op != BLKIF_OP_WRITE))
		return -EAGAIN;
	int fd = q->ring->dev->disk_fd;
	off_t off = (off_t)(q->sector << BLKBACK_SECTOR_SHIFT);
	if (q->io_op == BLKIF_OP_WRITE && q->ring->dev->no_nowait_write)
		return io_write_blocking(bb, q, off);
	ssize_t n = q->io_op == BLKIF_OP_READ
			? preadv2(fd, q->iov, (int)q->nr_segs, off, RWF_NOWAIT)
			: pwritev2(fd, q->iov, (int)q->nr_segs, off, RWF_NOWAIT);
	/* Short, EAGAIN, or no RWF_NOWAIT here: the io_uring does it all
	 * (again: a read or write of the same bytes may be repeated). */
	if (n != io_expected(q)) {
		/* ext4 cannot do buffered writes without waiting: stop asking. */
		if (n < 0 && errno == EOPNOTSUPP && q->io_op == BLKIF_OP_WRITE)
			q->ring->dev->no_nowait_write = true;
		return -EAGAIN;
	}
	q->ring->st.inline_io++;
	return 0;
}

int blkback_io_submit(struct blkback *bb, struct blkback_req *q)
{
	if (bb->pool) {
		if (q->io_op > BLKIF_OP_DISCARD)
			return -EINVAL;
		struct blkback_stats *st = &q->ring->st;
		if (++st->inflight > st->inflight_max)
			st->inflight_max = st->inflight;
		q->in_disk = true;
		blkback_pool_submit(bb, q);
		return 0;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(&bb->uring);
	if (!sqe) {
		blkback_io_flush(bb);
		sqe = io_uring_get_sqe(&bb->uring);
		if (!sqe)
			return -EBUSY;
	}
	int fd = q->ring->dev->disk_fd;
	off_t off = (off_t)(q->sector << BLKBACK_SECTOR_SHIFT);
	switch (q->io_op) {
	case BLKIF_OP_READ:
		io_uring_prep_readv(sqe, fd, q->iov, q->nr_segs, (uint64_t)off);
		break;
	case BLKIF_OP_WRITE:
		io_uring_prep_writev(sqe, fd, q->iov, q->nr_segs, (uint64_t)off);
		break;
	case BLKIF_OP_FLUSH_DISKCACHE:
		/* Drain: every request submitted before the flush completes first,
		 * so the flush covers every write acknowledged before it. */
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		sqe->flags |= IOSQE_IO_DRAIN;
		break;
	case BLKIF_OP_DISCARD:
		io_uring_prep_fallocate(sqe, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
					(off_t)(q->nr_sectors << BLKBACK_SECTOR_SHIFT));
		break;
	default:
		return -EINVAL;
	}
	io_uring_sqe_set_data(sqe, q);
	bb->uring_pending++;
	struct blkback_stats *st = &q->ring->st;
	if (++st->inflight > st->inflight_max)
		st->inflight_max = st->inflight;
	q->in_disk = true;
	return 0;
}

void blkback_io_flush(struct blkback *bb)
{
	if (!bb->uring_pending || !bb->uring_up)
		return;
	int r = io_uring_submit(&bb->uring);
	if (r < 0 && r != -EAGAIN && r != -EBUSY && r != -EINTR)
		die_err(-r, "io_uring_submit");
	bb->uring_pending = 0;
}

static void unmap_done(struct blkback *bb, struct blkback_req *const *done, unsigned n)
{
	static gnt_handle_t *hs;
	static size_t cap;
	size_t nh = 0;
	for (unsigned i = 0; i < n; i++)
		nh += done[i]->nr_maps;
	if (nh == 0)
		return;
	if (nh > cap) {
		gnt_handle_t *p = realloc(hs, nh * sizeof(*hs));
		if (!p)
			return; /* each request unmaps its own in blkback_req_complete */
		hs = p;
		cap = nh;
	}
	nh = 0;
	for (unsigned i = 0; i < n; i++) {
		memcpy(hs + nh, done[i]->handles, done[i]->nr_maps * sizeof(*hs));
		nh += done[i]->nr_maps;
	}
	int r = gnt_unmap_batch(bb->h, hs, (unsigned)nh, NULL);
	if (r)
		log_warn("unmap of %zu grants: %d", nh, r);
	for (unsigned i = 0; i < n; i++)
		done[i]->nr_maps = 0;
}

void blkback_io_finish(struct blkback *bb, struct blkback_req *const *done, const int *res,
		       unsigned n)
{
	/* The grants of every completed request are unmapped in one batch
	 * before any response goes out: once it sees its response, the
	 * frontend may end access to those pages. */
	unmap_done(bb, done, n);
	for (unsigned i = 0; i < n; i++) {
		int r = res[i];
		if (r >= 0 && r != io_expected(done[i]))
			r = -EIO; /* short transfer */
		blkback_req_complete(done[i], r);
	}
}

/* --- crash point slow-io:N:MS ---------------------------------------------------- */

/* Take the Nth disk completion out of done[] and hold it back, as if the
 * disk had taken MS longer: it stays in flight (and the disk's completion
 * count does not move) until io_release_held. Returns the new count. */
static unsigned io_hold(struct blkback *bb, struct blkback_req **done, int *res, unsigned n)
{
	if (bb->crash.at != CRASH_SLOW_IO || bb->held)
		return n;
	for (unsigned i = 0; i < n; i++) {
		if (!blkback_crash_hit(bb, CRASH_SLOW_IO))
			continue;
		bb->held = done[i];
		bb->held_res = res[i];
		bb->held_until_ns = io_now_ns() + bb->crash.ms * 1000000u;
		log_warn("drvdom-crash-at: slow-io: completion %" PRIu64 " held back %" PRIu64
			 " ms",
			 bb->crash.n, bb->crash.ms);
		memmove(done + i, done + i + 1, (n - i - 1) * sizeof(*done));
		memmove(res + i, res + i + 1, (n - i - 1) * sizeof(*res));
		return n - 1;
	}
	return n;
}

/* Deliver the held completion once its time has come (or at once: the
 * ring is being drained). Returns 1 if it did. */
static int io_release_held(struct blkback *bb, bool now)
{
	if (!bb->held || (!now && io_now_ns() < bb->held_until_ns))
		return 0;
	struct blkback_req *q = bb->held;
	int res = bb->held_res;
	bb->held = NULL;
	q->ring->st.inflight--;
	q->ring->dev->disk_done++;
	blkback_io_finish(bb, &q, &res, 1);
	return 1;
}

int blkback_io_reap(struct blkback *bb)
{
	struct io_uring_cqe *cqes[BLKBACK_REAP_MAX];
	int total = 0;
	if (bb->held)
		total += io_release_held(bb, false);
	if (bb->pool) {
		struct blkback_req *done[BLKBACK_REAP_MAX];
		int res[BLKBACK_REAP_MAX];
		unsigned n;
		while ((n = blkback_pool_take(bb, done, res, BLKBACK_REAP_MAX)) > 0) {
			n = io_hold(bb, done, res, n);
			for (unsigned i = 0; i < n; i++) {
				done[i]->ring->st.inflight--;
				done[i]->ring->dev->disk_done++; /* the watchdog's */
			}
			blkback_io_finish(bb, done, res, n);
			total += (int)n;
		}
		blkback_push_responses(bb);
		return total;
	}
	for (;;) {
		unsigned n = io_uring_peek_batch_cqe(&bb->uring, cqes, BLKBACK_REAP_MAX);
		if (n == 0)
			break;
		struct blkback_req *done[BLKBACK_REAP_MAX];
		int res[BLKBACK_REAP_MAX];
		for (unsigned i = 0; i < n; i++) {
			done[i] = io_uring_cqe_get_data(cqes[i]);
			res[i] = cqes[i]->res;
		}
		io_uring_cq_advance(&bb->uring, n);
		n = io_hold(bb, done, res, n);
		for (unsigned i = 0; i < n; i++) {
			done[i]->ring->st.inflight--;
			done[i]->ring->dev->disk_done++; /* the watchdog's */
		}
		blkback_io_finish(bb, done, res, n);
		total += (int)n;
	}
	blkback_push_responses(bb);
	return total;
}

void blkback_io_drain_ring(struct blkback *bb, struct blkback_ring *r)
{
	blkback_io_flush(bb);
	if (bb->held && bb->held->ring == r)
		io_release_held(bb, true); /* no CQE will ever come for it */
	while (r->st.inflight > 0 && bb->pool) {
		struct pollfd pfd = {bb->uring_efd, POLLIN, 0};
		(void)poll(&pfd, 1, 100);
		uint64_t v;
		(void)!read(bb->uring_efd, &v, sizeof(v));
		blkback_io_reap(bb);
		if (bb->held && bb->held->ring == r)
			io_release_held(bb, true);
	}
	while (r->st.inflight > 0) {
		struct io_uring_cqe *cqe;
		int e = io_uring_wait_cqe(&bb->uring, &cqe);
		if (e < 0 && e != -EINTR && e != -EAGAIN)
			die_err(-e, "io_uring_wait_cqe");
		blkback_io_reap(bb);
		if (bb->held && bb->held->ring == r)
			io_release_held(bb, true);
	}
}
