// SPDX-License-Identifier: MIT
// The fallback disk I/O path of drvdom-blkback: a small pool of threads
// doing positioned I/O (preadv/pwritev/fdatasync/fallocate), used when the
// host refuses io_uring (io_uring_disabled, a container's seccomp) or with
// --io-threads. The loop thread appends requests to a FIFO under a mutex;
// a worker takes the head, does the I/O, appends the request to the done
// list and writes the eventfd the loop watches; the loop's poller sees the
// done count without a system call. A flush is a barrier, like the
// io_uring's IOSQE_IO_DRAIN: it starts only when no earlier request is
// still running, and nothing behind it starts before it is done.
#include "backends/blkback/blkback.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"

#define BLKBACK_POOL_MAX 8u

struct blkback_pool {
	pthread_t th[BLKBACK_POOL_MAX];
	unsigned nth;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct blkback_req *head, *tail; /* waiting, FIFO */
	struct blkback_req *done;	 /* finished, any order */
	unsigned busy;			 /* requests being done by workers */
	bool barrier;			 /* a flush is running */
	bool stop;
	_Atomic unsigned ndone;
	int efd;
};

static int pool_do(struct blkback_req *q)
{
	int fd = q->ring->dev->disk_fd;
	off_t off = (off_t)(q->sector << BLKBACK_SECTOR_SHIFT);
	ssize_t n;
	switch (q->io_op) {
	case BLKIF_OP_READ:
		n = preadv(fd, q->iov, (int)q->nr_segs, off);
		return n < 0 ? -errno : (int)n;
	case BLKIF_OP_WRITE:
		n = pwritev(fd, q->iov, (int)q->nr_segs, off);
		return n < 0 ? -errno : (int)n;
	case BLKIF_OP_FLUSH_DISKCACHE:
		return fdatasync(fd) < 0 ? -errno : 0;
	case BLKIF_OP_DISCARD:
		return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
				 (off_t)(q->nr_sectors << BLKBACK_SECTOR_SHIFT)) < 0
			   ? -errno
			   : 0;
	}
	return -EINVAL;
}

/* The head may start: not behind a running flush, and a flush only when
 * nothing else runs. Called with the lock held. */
static bool pool_head_ready(const struct blkback_pool *p)
{
	if (!p->head || p->barrier)
		return false;
	return p->head->io_op != BLKIF_OP_FLUSH_DISKCACHE || p->busy == 0;
}

static void *pool_worker(void *arg)
{
	struct blkback_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && !pool_head_ready(p))
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop)
			break;
		struct blkback_req *q = p->head;
		p->head = q->next;
		if (!p->head)
			p->tail = NULL;
		bool flush = q->io_op == BLKIF_OP_FLUSH_DISKCACHE;
		p->busy++;
		p->barrier = flush;
		pthread_mutex_unlock(&p->lock);

		q->res = pool_do(q);

		pthread_mutex_lock(&p->lock);
		p->busy--;
		if (flush)
			p->barrier = false;
		q->next = p->done;
		p->done = q;
		atomic_fetch_add(&p->ndone, 1);
		uint64_t one = 1;
		(void)!write(p->efd, &one, sizeof(one));
		/* A flush waiting for us, or requests waiting behind one. */
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int blkback_pool_start(struct blkback *bb, unsigned nthreads)
{
	struct blkback_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->efd = bb->uring_efd;
	if (nthreads > BLKBACK_POOL_MAX)
		nthreads = BLKBACK_POOL_MAX;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024); /* the domain's memory is small */
	int r = 0;
	for (; p->nth < nthreads; p->nth++) {
		r = -pthread_create(&p->th[p->nth], &attr, pool_worker, p);
		if (r)
			break;
	}
	pthread_attr_destroy(&attr);
	if (p->nth == 0) {
		free(p);
		return r ? r : -EINVAL;
	}
	bb->pool = p;
	return 0;
}

void blkback_pool_stop(struct blkback *bb)
{
	struct blkback_pool *p = bb->pool;
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nth; i++)
		pthread_join(p->th[i], NULL);
	free(p);
	bb->pool = NULL;
}

void blkback_pool_submit(struct blkback *bb, struct blkback_req *q)
{
	struct blkback_pool *p = bb->pool;
	q->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = q;
	else
		p->head = q;
	p->tail = q;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

unsigned blkback_pool_take(struct blkback *bb, struct blkback_req **done, int *res, unsigned max)
{
	struct blkback_pool *p = bb->pool;
	if (atomic_load(&p->ndone) == 0)
		return 0;
	unsigned n = 0;
	pthread_mutex_lock(&p->lock);
	while (p->done && n < max) {
		struct blkback_req *q = p->done;
		p->done = q->next;
		done[n] = q;
		res[n++] = q->res;
	}
	atomic_fetch_sub(&p->ndone, n);
	pthread_mutex_unlock(&p->lock);
	return n;
}
