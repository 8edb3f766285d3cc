// SPDX-License-Identifier: MIT
// See recovery_load.h: the verified random 4 KiB block load that the
// recovery tests and `drvdom bench recovery` run through a guest while its
// driver domain is killed.
#include "tools/bench/recovery_load.h"
#include "frontends/nbd/nbd_proto.h"
#include "tools/nbdc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RL_CHUNK (64u << 10)

uint64_t rl_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rl_rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A block's content names its offset and the write's generation, so a
 * stale or misplaced block never matches. */
static void rl_fill(unsigned char *buf, uint64_t blk, uint64_t gen)
{
	for (size_t i = 0; i < RL_BS; i += 8) {
		uint64_t v = (blk * RL_BS + i) * 0x9E3779B97F4A7C15ull ^ (gen << 1 | 1);
		memcpy(buf + i, &v, 8);
	}
}

struct rl_slot {
	uint64_t blk, sub_ns;
	bool write;
	unsigned buf;
};

static int rl_log_add(struct rl_blk *l, uint64_t sub, uint64_t done)
{
	if (l->nlog == l->caplog) {
		size_t cap = l->caplog ? l->caplog * 2 : 65536;
		struct rl_done *n = realloc(l->log, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->log = n;
		l->caplog = cap;
	}
	l->log[l->nlog++] = (struct rl_done){sub, done};
	return 0;
}

struct rl_priv {
	struct nbdc c;
	unsigned char *bufs;
	struct rl_slot *slots;
	unsigned *freebuf, nfree;
};

static void *rl_thread(void *arg)
{
	struct rl_blk *l = arg;
	struct rl_priv *p = (struct rl_priv *)l->priv;
	uint64_t seed = 0x2545F4914F6CDD1Dull ^ l->seed, gen = 1;
	int r = 0;
	while (!atomic_load(&l->stop) || p->c.inflight) {
		while (!atomic_load(&l->stop) && p->c.inflight < l->qd) {
			uint64_t blk;
			do
				blk = rl_rnd(&seed) % l->nblocks;
			while (l->busy[blk]);
			unsigned b = p->freebuf[--p->nfree];
			unsigned char *buf = p->bufs + (size_t)b * RL_BS;
			bool w = rl_rnd(&seed) & 1;
			if (w)
				rl_fill(buf, blk, ++gen);
			uint64_t t = rl_now_ns();
			int s = nbdc_submit(&p->c, w ? NBD_CMD_WRITE : NBD_CMD_READ, 0, blk * RL_BS,
					    RL_BS, buf);
			if (s < 0) {
				r = s;
				goto out;
			}
			p->slots[s] = (struct rl_slot){blk, t, w, b};
			l->busy[blk] = 1;
		}
		if (!p->c.inflight)
			break;
		int s;
		uint32_t e;
		if ((r = nbdc_reap(&p->c, &s, &e)))
			goto out;
		uint64_t t = rl_now_ns();
		struct rl_slot *m = &p->slots[s];
		unsigned char *buf = p->bufs + (size_t)m->buf * RL_BS;
		l->busy[m->blk] = 0;
		p->freebuf[p->nfree++] = m->buf;
		if (e)
			atomic_fetch_add(&l->nbd_errors, 1);
		else if (m->write)
			memcpy(l->expect + m->blk * RL_BS, buf, RL_BS);
		else if (memcmp(buf, l->expect + m->blk * RL_BS, RL_BS))
			atomic_fetch_add(&l->bad_reads, 1);
		if ((r = rl_log_add(l, m->sub_ns, t)))
			goto out;
		atomic_fetch_add(&l->ops, 1);
	}
out:
	l->err = r;
	atomic_store(&l->running, false);
	return NULL;
}

int rl_blk_start(struct rl_blk *l, const char *sock, unsigned qd, unsigned seed)
{
	memset(l, 0, sizeof(*l));
	struct rl_priv *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	l->priv = p;
	snprintf(l->sock, sizeof(l->sock), "%s", sock);
	l->qd = qd;
	l->seed = seed;
	int r = nbdc_connect_wait(sock, qd, 10000, &p->c);
	if (r)
		return r;
	l->nblocks = p->c.size / RL_BS;
	l->expect = malloc(l->nblocks * RL_BS);
	l->busy = calloc(l->nblocks, 1);
	p->bufs = aligned_alloc(4096, (size_t)qd * RL_BS);
	p->slots = calloc(qd, sizeof(*p->slots));
	p->freebuf = calloc(qd, sizeof(*p->freebuf));
	unsigned char *chunk = malloc(RL_CHUNK);
	if (!l->expect || !l->busy || !p->bufs || !p->slots || !p->freebuf || !chunk) {
		free(chunk);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < qd; i++)
		p->freebuf[p->nfree++] = i;
	for (uint64_t b = 0; b < l->nblocks; b++)
		rl_fill(l->expect + b * RL_BS, b, 0);
	for (uint64_t off = 0; off < l->nblocks * RL_BS && !r; off += RL_CHUNK) {
		uint32_t len =
		    (uint32_t)(l->nblocks * RL_BS - off < RL_CHUNK ? l->nblocks * RL_BS - off
								   : RL_CHUNK);
		r = nbdc_pwrite(&p->c, l->expect + off, len, off);
	}
	free(chunk);
	if (!r)
		r = nbdc_flush(&p->c);
	if (r)
		return r;
	l->t0_ns = rl_now_ns();
	atomic_store(&l->running, true);
	if (pthread_create(&l->th, NULL, rl_thread, l)) {
		atomic_store(&l->running, false);
		return -EAGAIN;
	}
	l->started = true;
	return 0;
}

int rl_blk_stop(struct rl_blk *l)
{
	struct rl_priv *p = (struct rl_priv *)l->priv;
	if (!p)
		return -EINVAL;
	if (l->started) {
		atomic_store(&l->stop, true);
		pthread_join(l->th, NULL);
		l->started = false;
	}
	if (l->err)
		return l->err;
	int r = nbdc_flush(&p->c);
	unsigned char *chunk = malloc(RL_CHUNK);
	if (!chunk)
		return -ENOMEM;
	for (uint64_t off = 0; off < l->nblocks * RL_BS && !r; off += RL_CHUNK) {
		uint32_t len =
		    (uint32_t)(l->nblocks * RL_BS - off < RL_CHUNK ? l->nblocks * RL_BS - off
								   : RL_CHUNK);
		r = nbdc_pread(&p->c, chunk, len, off);
		if (!r && memcmp(chunk, l->expect + off, len))
			atomic_fetch_add(&l->bad_reads, 1);
	}
	free(chunk);
	if (r)
		return r;
	return atomic_load(&l->nbd_errors) || atomic_load(&l->bad_reads) ? -EIO : 0;
}

int rl_blk_write_expect(const struct rl_blk *l, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	size_t len = l->nblocks * RL_BS, done = 0;
	while (done < len) {
		ssize_t n = write(fd, l->expect + done, len - done);
		if (n <= 0) {
			close(fd);
			return -EIO;
		}
		done += (size_t)n;
	}
	return close(fd) ? -errno : 0;
}

void rl_blk_free(struct rl_blk *l)
{
	struct rl_priv *p = (struct rl_priv *)l->priv;
	if (l->started) {
		atomic_store(&l->stop, true);
		pthread_join(l->th, NULL);
	}
	if (p) {
		if (p->c.slots)
			nbdc_close(&p->c);
		free(p->bufs);
		free(p->slots);
		free(p->freebuf);
		free(p);
	}
	free(l->expect);
	free(l->busy);
	free(l->log);
	memset(l, 0, sizeof(*l));
}

uint64_t rl_first_after(const struct rl_done *log, size_t n, uint64_t t_ns)
{
	uint64_t best = 0;
	for (size_t i = 0; i < n; i++)
		if (log[i].sub_ns >= t_ns && (!best || log[i].done_ns < best))
			best = log[i].done_ns;
	return best ? best - t_ns : 0;
}

void rl_bins(const struct rl_done *log, size_t n, uint64_t from_ns, uint64_t bin_ns, unsigned *bins,
	     size_t nbins)
{
	memset(bins, 0, nbins * sizeof(*bins));
	for (size_t i = 0; i < n; i++) {
		if (log[i].done_ns < from_ns)
			continue;
		uint64_t k = (log[i].done_ns - from_ns) / bin_ns;
		if (k < nbins)
			bins[k]++;
	}
}
