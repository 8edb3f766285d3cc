// SPDX-License-Identifier: MIT
// A verified block load for crash-recovery tests and `drvdom bench
// recovery`: one thread drives a guest's NBD export (tools/nbdc.c) with
// random 4 KiB reads and writes at a queue depth, never two requests on the
// same block at once, keeping the expected image in memory (a write counts
// once acknowledged) and checking every read against it. Every completion
// is logged (submit and completion times) so the caller can work out, after
// the fact, the time from a kill to the first I/O submitted after it and the
// throughput in 10 ms bins.
#ifndef DRVDOM_TOOLS_BENCH_RECOVERY_LOAD_H
#define DRVDOM_TOOLS_BENCH_RECOVERY_LOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RL_BS 4096u

struct rl_done {
	uint64_t sub_ns, done_ns; /* CLOCK_MONOTONIC */
};

struct rl_blk {
	char sock[256];
	unsigned qd;
	uint64_t nblocks;
	unsigned char *expect; /* nblocks * RL_BS */
	unsigned char *busy;   /* per block: a request in flight */
	pthread_t th;
	atomic_bool stop, running;
	/* Results (read after rl_blk_stop, or racily while running). */
	atomic_uint_fast64_t ops, nbd_errors, bad_reads;
	int err; /* first transport error, -errno */
	struct rl_done *log;
	size_t nlog, caplog;
	uint64_t t0_ns;
	unsigned seed;
	bool started;
	void *priv; /* the connection and buffers */
};

uint64_t rl_now_ns(void);

/* Connect (waiting up to 10 s for the export), fill the whole disk with a
 * known pattern (so the expected image is exact), then run the load in a
 * thread. 0 or -errno. */
int rl_blk_start(struct rl_blk *l, const char *sock, unsigned qd, unsigned seed);
/* Stop the thread (after its in-flight requests complete), flush, read the
 * whole disk back against the expected image. Returns 0, or -EIO if any
 * NBD error or wrong data was seen, or the transport error. */
int rl_blk_stop(struct rl_blk *l);
/* Write the expected image to path (for `qemu-img compare`). 0 or -errno. */
int rl_blk_write_expect(const struct rl_blk *l, const char *path);
void rl_blk_free(struct rl_blk *l);

/* Time from t_ns to the first completion, in log, of a request submitted
 * at or after t_ns; 0 if none. */
uint64_t rl_first_after(const struct rl_done *log, size_t n, uint64_t t_ns);
/* Completions per bin of bin_ns in [from_ns, from_ns + nbins * bin_ns). */
void rl_bins(const struct rl_done *log, size_t n, uint64_t from_ns, uint64_t bin_ns, unsigned *bins,
	     size_t nbins);

#endif
