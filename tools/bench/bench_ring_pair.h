// SPDX-License-Identifier: MIT
// The two-process harness of `drvdom bench ring` and its DPDK baseline: a
// client and a server process, forked, each pinned to its own core, sharing
// one memfd mapping (a ring, result slots, a start gate) and a pair of
// eventfds (the event channels: one wakes the server, one the client). The
// parent waits for both and reports wall time from the client and CPU time
// (user + system) of both from wait4().
#ifndef DRVDOM_TOOLS_BENCH_BENCH_RING_PAIR_H
#define DRVDOM_TOOLS_BENCH_BENCH_RING_PAIR_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define PAIR_SHM_RING_BYTES (64u * 4096u)

/* Shared between the two processes and the parent. */
struct pair_shm {
	_Alignas(64) _Atomic int server_ready;
	_Alignas(64) _Atomic uint64_t line;	 /* the cache-line ping-pong */
	_Alignas(64) double secs;		 /* client: measured wall time */
	uint64_t ops;				 /* client: requests answered */
	uint64_t wakeups_client, wakeups_server; /* eventfd sleeps */
	uint64_t notifies_client, notifies_server;
	int failed; /* a side saw wrong data */
	_Alignas(4096) unsigned char ring[PAIR_SHM_RING_BYTES];
};

struct pair_ctx {
	struct pair_shm *shm;
	int evt_server, evt_client; /* eventfds: wake the server / the client */
	int fd_c2s[2], fd_s2c[2];   /* pipes or socketpairs, when used */
	uint64_t n;		    /* requests to exchange */
	unsigned int msg_size;
	void *arg; /* per-case state, set up before the fork */
};

struct pair_result {
	double secs;	   /* client's wall time */
	uint64_t ops;	   /* requests answered */
	double cpu_client; /* seconds, user + system */
	double cpu_server;
	int failed;
};

/* Map the shared region (memfd, MAP_SHARED) and create the eventfds. Dies on
 * host failure. */
void pair_setup(struct pair_ctx *c);
void pair_teardown(struct pair_ctx *c);

/* Pin the caller to the benchmark's core `which` (0: client, 1: server): the
 * first two CPUs the process may use. */
void pair_pin(int which);

/* Fork the server and the client, pinned, run them, wait for both. The
 * server calls pair_server_ready() once it is set up; the client calls
 * pair_client_wait() before starting its clock. Returns 0 or -errno. */
int pair_run(struct pair_ctx *c, void (*client)(struct pair_ctx *),
	     void (*server)(struct pair_ctx *), struct pair_result *res);

void pair_server_ready(struct pair_ctx *c);
void pair_client_wait(struct pair_ctx *c);

/* Monotonic time in seconds. */
double pair_now(void);

/* Number of CPUs the pair runs on (1 means both share one). */
int pair_nr_cpus(void);

/* read()/write() the whole buffer; die on failure. */
void pair_read_full(int fd, void *buf, size_t len);
void pair_write_full(int fd, const void *buf, size_t len);

/* eventfd: signal / wait (blocking) / consume anything pending. */
void pair_evt_send(int fd);
void pair_evt_wait(int fd);
void pair_evt_drain(int fd);

#endif
