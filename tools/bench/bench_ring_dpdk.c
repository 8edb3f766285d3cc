// SPDX-License-Identifier: MIT
// drvdom-bench-ring-dpdk: the rte_ring baseline of `drvdom bench ring`, a
// separate program because DPDK is optional (built only when pkg-config
// finds libdpdk). Two processes on two cores exchange requests and responses
// through a pair of single-producer single-consumer rte_rings in the same
// memfd mapping, both sides polling (DPDK's model), with the capacity and
// batch of drvdom's ring. No EAL: the rings are initialised in place with
// rte_ring_init. Prints one line per case for drvdom-bench-ring to parse:
//   tput SIZE REQ_PER_S CPU_S_PER_M     rtt 112 NS
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "common/log.h"
#include "ring/ring.h"
#include "tools/bench/bench_ring_pair.h"

#define MAX_MSG 112
#define MAX_BURST 64

struct dp_arg {
	unsigned int count; /* ring capacity, as drvdom's ring slots */
	unsigned int batch;
};

static struct rte_ring *req_ring(struct pair_ctx *c)
{
	return (struct rte_ring *)c->shm->ring;
}

static struct rte_ring *rsp_ring(struct pair_ctx *c)
{
	return (struct rte_ring *)(c->shm->ring + PAIR_SHM_RING_BYTES / 2);
}

static void dp_prepare(struct pair_ctx *c)
{
	const struct dp_arg *a = c->arg;
	ssize_t sz = rte_ring_get_memsize_elem(c->msg_size, a->count);
	if (sz < 0 || (size_t)sz > PAIR_SHM_RING_BYTES / 2)
		die_err(EINVAL, "rte_ring size %u x %u", a->count, c->msg_size);
	unsigned int fl = RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ;
	if (rte_ring_init(req_ring(c), "req", a->count, fl) != 0 ||
	    rte_ring_init(rsp_ring(c), "rsp", a->count, fl) != 0)
		die_err(EINVAL, "rte_ring_init");
}

static void dp_server(struct pair_ctx *c)
{
	unsigned char buf[MAX_BURST * MAX_MSG];
	unsigned int S = c->msg_size;
	uint64_t done = 0;
	pair_server_ready(c);
	while (done < c->n) {
		unsigned int k = rte_ring_dequeue_burst_elem(req_ring(c), buf, S, MAX_BURST, NULL);
		if (!k) {
			rte_pause();
			continue;
		}
		unsigned int put = 0;
		while (put < k)
			put += rte_ring_enqueue_burst_elem(rsp_ring(c), buf + (size_t)put * S, S,
							   k - put, NULL);
		done += k;
	}
}

static void dp_client_tput(struct pair_ctx *c)
{
	const struct dp_arg *a = c->arg;
	unsigned char out[MAX_BURST * MAX_MSG], in[MAX_BURST * MAX_MSG];
	unsigned int S = c->msg_size;
	unsigned int batch = a->batch < MAX_BURST ? a->batch : MAX_BURST;
	memset(out, 0x5a, sizeof(out));
	uint64_t sent = 0, got = 0;
	pair_client_wait(c);
	double t0 = pair_now();
	while (got < c->n) {
		unsigned int k = c->n - sent < batch ? (unsigned int)(c->n - sent) : batch;
		for (unsigned int i = 0; i < k; i++) {
			uint64_t id = sent + i;
			memcpy(out + (size_t)i * S, &id, sizeof(id));
		}
		sent += rte_ring_enqueue_burst_elem(req_ring(c), out, S, k, NULL);
		unsigned int r = rte_ring_dequeue_burst_elem(rsp_ring(c), in, S, MAX_BURST, NULL);
		for (unsigned int i = 0; i < r; i++) {
			uint64_t id;
			memcpy(&id, in + (size_t)i * S, sizeof(id));
			if (id != got++) {
				c->shm->failed = 1;
				return;
			}
		}
		if (!r && !k)
			rte_pause();
	}
	c->shm->secs = pair_now() - t0;
	c->shm->ops = got;
}

static void dp_client_rtt(struct pair_ctx *c)
{
	unsigned char m[MAX_MSG];
	unsigned int S = c->msg_size;
	memset(m, 0x5a, sizeof(m));
	pair_client_wait(c);
	double t0 = pair_now();
	for (uint64_t i = 0; i < c->n; i++) {
		memcpy(m, &i, sizeof(i));
		while (rte_ring_enqueue_elem(req_ring(c), m, S) != 0)
			rte_pause();
		while (rte_ring_dequeue_elem(rsp_ring(c), m, S) != 0)
			rte_pause();
		uint64_t id;
		memcpy(&id, m, sizeof(id));
		if (id != i) {
			c->shm->failed = 1;
			return;
		}
	}
	c->shm->secs = pair_now() - t0;
	c->shm->ops = c->n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Calibrate to secs, then the median rate of reps runs; *cpu_m: CPU s/M. */
static double measure(struct pair_ctx *c, void (*client)(struct pair_ctx *), double secs, int reps,
		      double *cpu_m)
{
	struct pair_result r;
	uint64_t n = 20000;
	for (int i = 0; i < 4; i++) {
		c->n = n;
		dp_prepare(c);
		if (pair_run(c, client, dp_server, &r) != 0 || r.ops != n)
			die_err(EPROTO, "rte_ring run failed");
		if (r.secs >= secs / 3)
			break;
		double f = secs / (r.secs > 1e-6 ? r.secs : 1e-6);
		n = (uint64_t)((double)n * (f > 100 ? 100 : f)) + 1;
	}
	double rates[16], cpus[16];
	if (reps > 16)
		reps = 16;
	for (int i = 0; i < reps; i++) {
		c->n = n;
		dp_prepare(c);
		if (pair_run(c, client, dp_server, &r) != 0 || r.ops != n)
			die_err(EPROTO, "rte_ring run failed");
		rates[i] = (double)r.ops / r.secs;
		cpus[i] = (r.cpu_client + r.cpu_server) * 1e6 / (double)r.ops;
	}
	double sorted[16];
	memcpy(sorted, rates, sizeof(double) * (size_t)reps);
	qsort(sorted, (size_t)reps, sizeof(double), cmp_double);
	for (int i = 0; i < reps; i++)
		if (rates[i] == sorted[reps / 2])
			*cpu_m = cpus[i];
	return sorted[reps / 2];
}

int main(int argc, char **argv)
{
	log_init("drvdom-bench-ring-dpdk");
	double secs = 1.0;
	int reps = 3;
	unsigned int order = 0, batch = 8;
	static const struct option lopts[] = {
	    {"secs", required_argument, NULL, 's'},
	    {"reps", required_argument, NULL, 'r'},
	    {"order", required_argument, NULL, 'o'},
	    {"batch", required_argument, NULL, 'b'},
	    {NULL, 0, NULL, 0},
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "s:r:o:b:", lopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			secs = atof(optarg);
			break;
		case 'r':
			reps = atoi(optarg);
			break;
		case 'o':
			order = (unsigned int)atoi(optarg);
			break;
		case 'b':
			batch = (unsigned int)atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: drvdom-bench-ring-dpdk [--secs S] [--reps N] "
					"[--order 0-4] [--batch N]\n");
			return 1;
		}
	}
	if (order > RING_MAX_ORDER || reps < 1 || secs <= 0 || batch < 1)
		return 1;
	struct pair_ctx c;
	pair_setup(&c);
	static const unsigned int sizes[] = {8, 64, 112};
	for (int i = 0; i < 3; i++) {
		struct dp_arg a = {ring_nr_slots(ring_bytes(order), sizes[i]), batch};
		c.arg = &a;
		c.msg_size = sizes[i];
		double cpu = 0;
		double rate = measure(&c, dp_client_tput, secs, reps, &cpu);
		printf("tput %u %.6g %.6g\n", sizes[i], rate, cpu);
		fflush(stdout);
	}
	struct dp_arg a = {ring_nr_slots(ring_bytes(order), 112), 1};
	c.arg = &a;
	c.msg_size = 112;
	double cpu = 0;
	double rate = measure(&c, dp_client_rtt, secs, reps, &cpu);
	printf("rtt 112 %.6g\n", 1e9 / rate);
	pair_teardown(&c);
	return 0;
}
