// SPDX-License-Identifier: MIT
// CPU placement of a domain (xl.cfg's cpus =, xl vcpu-pin): the hv keeps
// the mask in the domain's record and applies it to every instance it
// starts, so a driver domain restarted after a crash, or a spare taking
// over, runs where the first instance ran (docs/hv.md, "CPU placement").
// A yielding placement (the toolstack's automatic one) lets the live
// instance run anywhere while its CPUs are saturated and brings it back
// once its own load is light.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "hv/hv_internal.h"

static bool mask_empty(const uint64_t *m)
{
	for (unsigned i = 0; i < HV_AFFINITY_WORDS; i++)
		if (m[i])
			return false;
	return true;
}

static void mask_to_set(const uint64_t *m, cpu_set_t *set)
{
	CPU_ZERO(set);
	for (unsigned c = 0; c < HV_AFFINITY_WORDS * 64 && c < CPU_SETSIZE; c++)
		if (m[c / 64] >> (c % 64) & 1)
			CPU_SET(c, set);
}

/* fn(tid, arg) for every thread of pid (from /proc/PID/task) until one
 * returns non-zero, which is returned; -errno when pid is gone. */
static int each_thread(pid_t pid, int (*fn)(pid_t tid, void *arg), void *arg)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/task", (int)pid);
	DIR *d = opendir(p);
	if (!d)
		return -errno;
	struct dirent *de;
	int r = 0;
	while (!r && (de = readdir(d)))
		if (de->d_name[0] != '.')
			r = fn((pid_t)atoi(de->d_name), arg);
	closedir(d);
	return r;
}

static int pin_one(pid_t tid, void *set)
{
	return sched_setaffinity(tid, sizeof(cpu_set_t), set) && errno != ESRCH ? -errno : 0;
}

/* Every thread of pid onto set. Threads started later inherit it from the
 * one that starts them; the second pass catches one started meanwhile. */
static int pin_threads(pid_t pid, const cpu_set_t *set)
{
	int r = each_thread(pid, pin_one, (void *)set);
	return r ? r : each_thread(pid, pin_one, (void *)set);
}

void hv_affinity_apply(const struct hv_rec *rec, pid_t pid)
{
	if (pid <= 0 || mask_empty(rec->cpumask))
		return;
	cpu_set_t set;
	mask_to_set(rec->cpumask, &set);
	int r = pin_threads(pid, &set);
	if (r)
		log_warn("domain %u (%s): cannot place pid %d on its CPUs: %s", rec->domid,
			 rec->name, (int)pid, strerror(-r));
}

/* --- a yielding placement ---------------------------------------------------- */

/* Checked every LOAD_PERIOD_NS from the instance's threads' schedstat
 * (the kernel's per-task run and run-queue wait times, a few bytes each):
 * the instance may run anywhere once its threads waited for a CPU at least
 * LOAD_WAIT_PCT of the time in LOAD_HOT_CHECKS checks in a row (it wants
 * more CPU than its CPUs give it), and goes back to them once it ran under
 * LOAD_COOL_PCT of one CPU in LOAD_COOL_CHECKS checks in a row. The hv's
 * own wake-ups cost the placed processes: sampling /proc/stat (a long read)
 * every 100 ms doubled the ping round trip, and waking every 100 ms at all
 * halved a 64-byte UDP stream on the placed CPU; every 500 ms did neither
 * (docs/hv.md "CPU placement"). */
#define LOAD_PERIOD_NS 500000000ull /* 500 ms */
#define LOAD_WAIT_PCT 20
#define LOAD_HOT_CHECKS 1
#define LOAD_COOL_PCT 10
#define LOAD_COOL_CHECKS 2

struct hv_load {
	pid_t pid;		    /* the instance sampled */
	bool spread;		    /* running anywhere now */
	unsigned hot, cool;	    /* checks in a row past the thresholds */
	uint64_t run_ns, wait_ns;   /* its threads' schedstat, summed */
	uint64_t sampled_ns, at_ns; /* the last sample, the next check */
};

int hv_rec_set_affinity(const struct hv_affinity_req *q)
{
	if (q->domid == 0 || q->domid == DOMID_SELF || (q->flags & ~HV_AFFINITY_YIELDING))
		return -EINVAL;
	struct hv_rec *rec = hv_rec_get(q->domid);
	if (!rec)
		return -ESRCH;
	if (!mask_empty(q->mask)) {
		/* The mask must name a CPU this host can run on: the same
		 * test sched_setaffinity makes, done once here so a bad mask is
		 * refused instead of failing at every restart. */
		cpu_set_t set, online;
		mask_to_set(q->mask, &set);
		if (sched_getaffinity(0, sizeof(online), &online))
			return -errno;
		CPU_AND(&set, &set, &online);
		if (CPU_COUNT(&set) == 0)
			return -EINVAL;
	}
	memcpy(rec->cpumask, q->mask, sizeof(rec->cpumask));
	rec->cpuflags = mask_empty(q->mask) ? 0 : q->flags;
	hv_affinity_free(rec);
	if (rec->cpuflags & HV_AFFINITY_YIELDING && !(rec->load = calloc(1, sizeof(*rec->load))))
		rec->cpuflags = 0;
	log_info("domain %u (%s): %s", rec->domid, rec->name,
		 mask_empty(q->mask)			? "CPU placement cleared"
		 : rec->cpuflags & HV_AFFINITY_YIELDING ? "CPU placement set (yielding)"
							: "CPU placement set");
	if (rec->dom)
		hv_affinity_apply(rec, rec->dom->pid);
	if (rec->spare)
		hv_affinity_apply(rec, rec->spare->pid);
	hv_rec_timer(); /* a yielding placement's first load check */
	return 0;
}

void hv_affinity_free(struct hv_rec *rec)
{
	free(rec->load);
	rec->load = NULL;
}

/* Adds a thread's run and run-queue wait nanoseconds (the first two
 * fields of /proc/PID/task/TID/schedstat) to sum[0] and sum[1]. */
static int add_schedstat(pid_t tid, void *arg)
{
	uint64_t *sum = arg;
	char p[64], buf[128];
	snprintf(p, sizeof(p), "/proc/%d/schedstat", (int)tid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* the thread ended */
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	unsigned long long r, w;
	if (n > 0 && (buf[n] = 0, sscanf(buf, "%llu %llu", &r, &w) == 2))
		sum[0] += r, sum[1] += w;
	return 0;
}

/* Every thread of pid onto every CPU the hv may use; true when done. */
static bool spread_threads(pid_t pid)
{
	cpu_set_t online;
	return !sched_getaffinity(0, sizeof(online), &online) && !pin_threads(pid, &online);
}

/* Run and run-queue wait nanoseconds of every thread of pid, summed. */
static int sched_ns(pid_t pid, uint64_t *run, uint64_t *wait)
{
	uint64_t sum[2] = {0, 0};
	int r = each_thread(pid, add_schedstat, sum);
	*run = sum[0];
	*wait = sum[1];
	return r;
}

uint64_t hv_affinity_tick(struct hv_rec *rec, uint64_t now)
{
	struct hv_load *l = rec->load;
	struct hv_dom *d = rec->dom;
	if (!l || !(rec->cpuflags & HV_AFFINITY_YIELDING) || !d || d->state != HV_DOM_RUNNING ||
	    d->pid <= 0)
		return 0;
	if (l->pid != d->pid) {
		/* A new instance (a restart, a spare taking over; the first
		 * one when the placement was just set) carries on where the
		 * last one was: a stream that had it spread is still there
		 * after a crash and would queue for its CPU again, while load
		 * it handled placed is best handled placed again. */
		bool spread = l->spread;
		*l = (struct hv_load){.pid = d->pid, .sampled_ns = now};
		if (spread && spread_threads(l->pid))
			l->spread = true;
		else
			hv_affinity_apply(rec, l->pid);
		sched_ns(l->pid, &l->run_ns, &l->wait_ns);
		return l->at_ns = now + LOAD_PERIOD_NS;
	}
	if (now < l->at_ns)
		return l->at_ns;
	struct hv_load was = *l;
	l->at_ns = now + LOAD_PERIOD_NS;
	l->sampled_ns = now;
	if (sched_ns(l->pid, &l->run_ns, &l->wait_ns) || l->run_ns < was.run_ns ||
	    l->wait_ns < was.wait_ns || now <= was.sampled_ns)
		return l->at_ns; /* a thread ended: its times left the sums */
	uint64_t span = now - was.sampled_ns;
	unsigned run_pct = (unsigned)((l->run_ns - was.run_ns) * 100 / span);
	unsigned wait_pct = (unsigned)((l->wait_ns - was.wait_ns) * 100 / span);
	if (!l->spread) {
		l->hot = wait_pct >= LOAD_WAIT_PCT ? l->hot + 1 : 0;
		if (l->hot >= LOAD_HOT_CHECKS) {
			if (spread_threads(l->pid)) {
				l->spread = true;
				l->cool = 0;
				log_info("domain %u (%s): waited for its CPUs %u%% of the time: "
					 "it may run anywhere",
					 rec->domid, rec->name, wait_pct);
			}
		}
	} else {
		l->cool = run_pct < LOAD_COOL_PCT ? l->cool + 1 : 0;
		if (l->cool >= LOAD_COOL_CHECKS) {
			hv_affinity_apply(rec, l->pid);
			l->spread = false;
			l->hot = 0;
			log_info("domain %u (%s): using %u%% of a CPU: back on its CPUs",
				 rec->domid, rec->name, run_pct);
		}
	}
	return l->at_ns;
}
