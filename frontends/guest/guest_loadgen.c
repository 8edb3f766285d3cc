// SPDX-License-Identifier: MIT
// The in-guest load generator (`drvdom-guest --loadgen SPEC`, e.g. from a
// guest config's extra_args): drives blkfront directly, with no NBD hop, so
// `drvdom bench blk` can measure the split driver itself against the file
// read with io_uring. SPEC is workloads separated by ';', each
// KIND:BS:QD:SECS[:copy] with KIND randread|randwrite|seqread|seqwrite,
// e.g. "randread:4096:32:2;seqwrite:1048576:4:2"; ":copy" uses the
// generator's own buffers (blkfront copies them) instead of lent ones. They run one after the other on
// the guest's first disk once it is connected; each keeps QD ios in flight
// for SECS seconds. An evloop poller refills the queue (completion callbacks
// only count), so nothing runs inside blkfront's own callbacks. Data
// buffers are lent by blkfront (blkfront_buf_get), as the NBD server's are,
// where the pool has room. Results:
// log lines, and /local/domain/<self>/data/loadgen/<i> =
// "kind=… bs=… qd=… ops=… secs=… iops=… mbps=… lat_us=…", then
// data/loadgen/done = "ok" (or "error: …").
#include "frontends/guest/guest.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "hv/evloop.h"
#include "xenstore/include/xenstore.h"

#define LG_MAX_WL 16
#define LG_MAX_QD 256

struct lg_wl {
	char kind[16];
	bool write, random;
	uint32_t bs;
	unsigned qd;
	double secs;
	bool copy; /* ":copy": the generator's own buffers, which blkfront copies */
};

struct lg_slot {
	struct loadgen *lg;
	void *buf;
	bool lent; /* buf is lent by blkfront (blkfront_buf_get) */
	uint64_t t0;
	bool busy;
};

struct loadgen {
	struct guest *g;
	struct blkfront *bf;
	struct lg_wl wl[LG_MAX_WL];
	unsigned nwl, cur;
	bool running, done;
	uint64_t size, seq_off, rnd;
	uint64_t start_ns, end_ns;
	uint64_t ops, lat_ns;
	unsigned inflight;
	int err;
	struct lg_slot slots[LG_MAX_QD];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int parse(struct loadgen *lg, const char *spec)
{
	char *copy = strdup(spec), *save = NULL;
	if (!copy)
		return -ENOMEM;
	int r = 0;
	for (char *w = strtok_r(copy, ";", &save); w && !r; w = strtok_r(NULL, ";", &save)) {
		struct lg_wl *x = &lg->wl[lg->nwl];
		char kind[16], opt[8] = "";
		unsigned bs, qd;
		double secs;
		int nf = sscanf(w, "%15[a-z]:%u:%u:%lf:%7[a-z]", kind, &bs, &qd, &secs, opt);
		if (lg->nwl == LG_MAX_WL || nf < 4 || (nf == 5 && strcmp(opt, "copy")) || bs == 0 ||
		    bs % 512 || bs > (2u << 20) || qd == 0 || qd > LG_MAX_QD || secs <= 0) {
			r = -EINVAL;
			break;
		}
		x->write = !strcmp(kind, "randwrite") || !strcmp(kind, "seqwrite");
		x->random = !strcmp(kind, "randread") || !strcmp(kind, "randwrite");
		if (!x->write && !x->random && strcmp(kind, "seqread")) {
			r = -EINVAL;
			break;
		}
		snprintf(x->kind, sizeof(x->kind), "%s", kind);
		x->copy = nf == 5;
		x->bs = bs;
		x->qd = qd;
		x->secs = secs;
		lg->nwl++;
	}
	free(copy);
	return r ? r : (lg->nwl ? 0 : -EINVAL);
}

static void lg_write_key(struct loadgen *lg, const char *key, const char *val)
{
	char p[128];
	snprintf(p, sizeof(p), "/local/domain/%u/data/loadgen/%s", lg->g->env.self, key);
	if (!xs_write(lg->g->env.xs, XBT_NULL, p, val, (unsigned)strlen(val)))
		log_warn("loadgen: writing %s: %s", p, strerror(errno));
}

static void io_done(void *arg, int err)
{
	struct lg_slot *s = arg;
	struct loadgen *lg = s->lg;
	s->busy = false;
	lg->inflight--;
	if (err && !lg->err)
		lg->err = err;
	uint64_t t = now_ns();
	if (t <= lg->end_ns) {
		lg->ops++;
		lg->lat_ns += t - s->t0;
	}
}

static void wl_finish(struct loadgen *lg)
{
	const struct lg_wl *w = &lg->wl[lg->cur];
	double secs = (double)(lg->end_ns - lg->start_ns) / 1e9;
	char key[16], val[256];
	snprintf(val, sizeof(val),
		 "kind=%s%s bs=%u qd=%u ops=%llu secs=%.3f iops=%.0f mbps=%.1f lat_us=%.1f", w->kind,
		 w->copy ? ":copy" : "", w->bs, w->qd, (unsigned long long)lg->ops, secs, lg->ops / secs,
		 lg->ops * (double)w->bs / secs / 1e6,
		 lg->ops ? lg->lat_ns / 1e3 / (double)lg->ops : 0.0);
	log_info("loadgen %u: %s", lg->cur, val);
	snprintf(key, sizeof(key), "%u", lg->cur);
	lg_write_key(lg, key, val);
	for (unsigned i = 0; i < w->qd; i++) {
		if (lg->slots[i].lent)
			blkfront_buf_put(lg->bf, lg->slots[i].buf, w->bs);
		else
			free(lg->slots[i].buf);
		lg->slots[i].buf = NULL;
	}
	lg->running = false;
	lg->cur++;
}

static int wl_start(struct loadgen *lg)
{
	const struct lg_wl *w = &lg->wl[lg->cur];
	for (unsigned i = 0; i < w->qd; i++) {
		lg->slots[i] = (struct lg_slot){.lg = lg};
		/* Buffers blkfront lends from the pages it shares with the
		 * backend, as the NBD server uses them: the data is read into
		 * and written from them without a copy in the guest. */
		lg->slots[i].buf = w->copy ? NULL : blkfront_buf_get(lg->bf, w->bs);
		lg->slots[i].lent = lg->slots[i].buf != NULL;
		if (!lg->slots[i].buf)
			lg->slots[i].buf = aligned_alloc(4096, (w->bs + 4095) & ~4095u);
		if (!lg->slots[i].buf)
			return -ENOMEM;
		memset(lg->slots[i].buf, 0x5a + (int)i, w->bs);
	}
	lg->ops = lg->lat_ns = 0;
	lg->seq_off = 0;
	lg->start_ns = now_ns();
	lg->end_ns = lg->start_ns + (uint64_t)(w->secs * 1e9);
	lg->running = true;
	return 0;
}

static void lg_finish_all(struct loadgen *lg, const char *result)
{
	lg->done = true;
	lg_write_key(lg, "done", result);
	log_info("loadgen: %s", result);
}

/* The loop's poller: start, refill, finish. */
static int lg_poll(void *arg, unsigned flags)
{
	struct loadgen *lg = arg;
	(void)flags;
	if (lg->done)
		return 0;
	if (!lg->bf) {
		struct blkfront_info info;
		for (unsigned i = 0; i < lg->g->nvbds && !lg->bf; i++)
			if (blkfront_get_info(lg->g->vbds[i], &info) == 0) {
				lg->bf = lg->g->vbds[i];
				lg->size = info.size;
			}
		if (!lg->bf)
			return 0;
		log_info("loadgen: %u workload%s on vbd %u (%llu bytes)", lg->nwl,
			 lg->nwl > 1 ? "s" : "", blkfront_devid(lg->bf),
			 (unsigned long long)lg->size);
	}
	if (lg->err) {
		if (lg->inflight)
			return 0;
		char res[64];
		snprintf(res, sizeof(res), "error: %s", strerror(-lg->err));
		lg_finish_all(lg, res);
		return 1;
	}
	if (!lg->running) {
		if (lg->cur == lg->nwl) {
			lg_finish_all(lg, "ok");
			return 1;
		}
		const struct lg_wl *w = &lg->wl[lg->cur];
		int r = w->bs <= lg->size ? wl_start(lg) : -EINVAL;
		if (r) {
			lg->err = r;
			return 1;
		}
	}
	const struct lg_wl *w = &lg->wl[lg->cur];
	uint64_t t = now_ns();
	if (t >= lg->end_ns) {
		if (lg->inflight)
			return 0; /* the completions wake the loop */
		wl_finish(lg);
		return 1;
	}
	int work = 0;
	uint64_t nblk = lg->size / w->bs;
	for (unsigned i = 0; i < w->qd; i++) {
		struct lg_slot *s = &lg->slots[i];
		if (s->busy)
			continue;
		uint64_t off;
		if (w->random) {
			off = rnd(&lg->rnd) % nblk * w->bs;
		} else {
			off = lg->seq_off;
			lg->seq_off = (lg->seq_off + w->bs) % (nblk * w->bs);
		}
		s->t0 = t;
		int r = blkfront_submit(lg->bf, w->write ? BLKFRONT_WRITE : BLKFRONT_READ, 0, off,
					w->bs, s->buf, io_done, s);
		if (r == -EAGAIN)
			break;
		if (r) {
			lg->err = r;
			break;
		}
		s->busy = true;
		lg->inflight++;
		work = 1;
	}
	return work;
}

int guest_loadgen_start(struct guest *g, const char *spec)
{
	struct loadgen *lg = calloc(1, sizeof(*lg));
	if (!lg)
		return -ENOMEM;
	lg->g = g;
	lg->rnd = 0x9E3779B97F4A7C15ull;
	int r = parse(lg, spec);
	if (!r)
		r = evloop_add_poller(g->env.loop, lg_poll, lg);
	if (r) {
		free(lg);
		return r;
	}
	g->lg = lg;
	return 0;
}
