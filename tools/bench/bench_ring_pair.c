// SPDX-License-Identifier: MIT
// The two-process harness of the ring benchmarks (see bench_ring_pair.h).
#include "tools/bench/bench_ring_pair.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static int cpus[2] = {-1, -1};

static void find_cpus(void)
{
	if (cpus[0] >= 0)
		return;
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		die("sched_getaffinity");
	int k = 0;
	for (int i = 0; i < CPU_SETSIZE && k < 2; i++)
		if (CPU_ISSET(i, &set))
			cpus[k++] = i;
	if (k == 1)
		cpus[1] = cpus[0];
}

int pair_nr_cpus(void)
{
	find_cpus();
	return cpus[0] == cpus[1] ? 1 : 2;
}

void pair_pin(int which)
{
	find_cpus();
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpus[which ? 1 : 0], &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		die("sched_setaffinity");
}

void pair_setup(struct pair_ctx *c)
{
	memset(c, 0, sizeof(*c));
	int fd = memfd_create("drvdom-bench-ring", MFD_CLOEXEC);
	if (fd < 0)
		die("memfd_create");
	if (ftruncate(fd, sizeof(struct pair_shm)) != 0)
		die("ftruncate");
	void *p = mmap(NULL, sizeof(struct pair_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	close(fd);
	c->shm = p;
	c->evt_server = eventfd(0, EFD_CLOEXEC);
	c->evt_client = eventfd(0, EFD_CLOEXEC);
	if (c->evt_server < 0 || c->evt_client < 0)
		die("eventfd");
	c->fd_c2s[0] = c->fd_c2s[1] = c->fd_s2c[0] = c->fd_s2c[1] = -1;
}

void pair_teardown(struct pair_ctx *c)
{
	munmap(c->shm, sizeof(struct pair_shm));
	close(c->evt_server);
	close(c->evt_client);
}

double pair_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void pair_server_ready(struct pair_ctx *c)
{
	atomic_store_explicit(&c->shm->server_ready, 1, memory_order_release);
}

void pair_client_wait(struct pair_ctx *c)
{
	while (!atomic_load_explicit(&c->shm->server_ready, memory_order_acquire))
		sched_yield();
}

static double tv_secs(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static pid_t spawn(struct pair_ctx *c, int which, void (*fn)(struct pair_ctx *))
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		pair_pin(which);
		fn(c);
		fflush(NULL);
		_exit(0);
	}
	return pid;
}

static double reap(pid_t pid, int *failed)
{
	int st;
	struct rusage ru;
	while (wait4(pid, &st, 0, &ru) < 0)
		if (errno != EINTR)
			die("wait4");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		*failed = 1;
	return tv_secs(&ru.ru_utime) + tv_secs(&ru.ru_stime);
}

int pair_run(struct pair_ctx *c, void (*client)(struct pair_ctx *),
	     void (*server)(struct pair_ctx *), struct pair_result *res)
{
	struct pair_shm *s = c->shm;
	atomic_store(&s->server_ready, 0);
	atomic_store(&s->line, 0);
	s->secs = 0;
	s->ops = 0;
	s->wakeups_client = s->wakeups_server = 0;
	s->notifies_client = s->notifies_server = 0;
	s->failed = 0;
	/* Notifications a previous case left unread would wake a sleeper early. */
	pair_evt_drain(c->evt_server);
	pair_evt_drain(c->evt_client);
	fflush(NULL);
	pid_t ps = spawn(c, 1, server);
	pid_t pc = spawn(c, 0, client);
	memset(res, 0, sizeof(*res));
	res->cpu_client = reap(pc, &res->failed);
	res->cpu_server = reap(ps, &res->failed);
	res->secs = s->secs;
	res->ops = s->ops;
	if (s->failed)
		res->failed = 1;
	return res->failed ? -EPROTO : 0;
}

void pair_read_full(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;
	while (len) {
		ssize_t r = read(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("read");
		p += r;
		len -= (size_t)r;
	}
}

void pair_write_full(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	while (len) {
		ssize_t r = write(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("write");
		p += r;
		len -= (size_t)r;
	}
}

void pair_evt_send(int fd)
{
	uint64_t one = 1;
	pair_write_full(fd, &one, sizeof(one));
}

void pair_evt_drain(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t v;
	while (poll(&p, 1, 0) == 1)
		pair_read_full(fd, &v, sizeof(v));
}

void pair_evt_wait(int fd)
{
	uint64_t v;
	pair_read_full(fd, &v, sizeof(v));
}
