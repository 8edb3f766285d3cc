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

/* Every thread of pid onto set. Threads started later inherit it from the
 * one that starts them; the second pass catches one started meanwhile. */
static int pin_threads(pid_t pid, const cpu_set_t *set)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/task", (int)pid);
	for (int pass = 0; pass < 2; pass++) {
		DIR *d = opendir(p);
		if (!d)
			return -errno;
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			if (sched_setaffinity((pid_t)atoi(de->d_name), sizeof(*set), set) &&
			    errno != ESRCH) {
				int e = -errno;
				closedir(d);
				return e;
			}
		}
		closedir(d);
	}
	return 0;
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

/* Checked every LOAD_PERIOD_NS: the live instance may run anywhere once its
 * CPUs were at least LOAD_HOT_PCT busy (any process, steal included) in
 * LOAD_HOT_CHECKS checks in a row, and goes back to them once it used under
 * LOAD_COOL_PCT of one CPU itself in LOAD_COOL_CHECKS in a row. */
#define LOAD_PERIOD_NS 100000000ull /* 100 ms */
#define LOAD_HOT_PCT 90
#define LOAD_HOT_CHECKS 2
#define LOAD_COOL_PCT 10
#define LOAD_COOL_CHECKS 3

struct hv_load {
	pid_t pid;		    /* the instance sampled (a new one starts placed) */
	bool spread;		    /* running anywhere now */
	unsigned hot, cool;	    /* checks in a row past the thresholds */
	uint64_t busy, all;	    /* the placement's CPUs: /proc/stat ticks */
	uint64_t own;		    /* the instance's utime + stime ticks */
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
		 mask_empty(q->mask)			  ? "CPU placement cleared"
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

/* Busy and all ticks of the CPUs in mask, from /proc/stat. */
static int cpu_ticks(const uint64_t *mask, uint64_t *busy, uint64_t *all)
{
	FILE *f = fopen("/proc/stat", "re");
	if (!f)
		return -errno;
	char line[512];
	*busy = *all = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned c;
		unsigned long long v[8] = {0};
		if (sscanf(line, "cpu%u %llu %llu %llu %llu %llu %llu %llu %llu", &c, &v[0], &v[1],
			   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 5 ||
		    c >= HV_AFFINITY_WORDS * 64 || !(mask[c / 64] >> (c % 64) & 1))
			continue;
		/* user nice system idle iowait irq softirq steal */
		uint64_t b = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
		*busy += b;
		*all += b + v[3] + v[4];
	}
	fclose(f);
	return 0;
}

/* utime + stime of every thread of pid, in ticks. */
static int own_ticks(pid_t pid, uint64_t *out)
{
	char p[64], buf[1024];
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return -errno;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *e = strrchr(buf, ')'); /* the name may hold anything */
	unsigned long long ut, st;
	/* after ") ": state, then fields 4..13, then utime (14) and stime (15) */
	if (!e || sscanf(e + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
			 &st) != 2)
		return -EIO;
	*out = ut + st;
	return 0;
}

static int sample(struct hv_rec *rec, struct hv_load *l, uint64_t now)
{
	int r = cpu_ticks(rec->cpumask, &l->busy, &l->all);
	if (!r)
		r = own_ticks(l->pid, &l->own);
	l->sampled_ns = now;
	return r;
}

uint64_t hv_affinity_tick(struct hv_rec *rec, uint64_t now)
{
	struct hv_load *l = rec->load;
	struct hv_dom *d = rec->dom;
	if (!l || !(rec->cpuflags & HV_AFFINITY_YIELDING) || !d || d->state != HV_DOM_RUNNING ||
	    d->pid <= 0)
		return 0;
	if (l->pid != d->pid) { /* a new instance: hv_dom_spawn placed it */
		*l = (struct hv_load){.pid = d->pid};
		sample(rec, l, now);
		return l->at_ns = now + LOAD_PERIOD_NS;
	}
	if (now < l->at_ns)
		return l->at_ns;
	struct hv_load was = *l;
	l->at_ns = now + LOAD_PERIOD_NS;
	if (sample(rec, l, now) || l->all <= was.all || now <= was.sampled_ns)
		return l->at_ns;
	unsigned busy_pct = (unsigned)((l->busy - was.busy) * 100 / (l->all - was.all));
	uint64_t ticks_per_s = (uint64_t)sysconf(_SC_CLK_TCK);
	unsigned own_pct =
	    (unsigned)((l->own - was.own) * 100 * 1000000000ull / ticks_per_s / (now - was.sampled_ns));
	if (!l->spread) {
		l->hot = busy_pct >= LOAD_HOT_PCT ? l->hot + 1 : 0;
		if (l->hot >= LOAD_HOT_CHECKS) {
			cpu_set_t online;
			if (!sched_getaffinity(0, sizeof(online), &online) &&
			    !pin_threads(l->pid, &online)) {
				l->spread = true;
				l->cool = 0;
				log_info("domain %u (%s): its CPUs %u%% busy: it may run anywhere",
					 rec->domid, rec->name, busy_pct);
			}
		}
	} else {
		l->cool = own_pct < LOAD_COOL_PCT ? l->cool + 1 : 0;
		if (l->cool >= LOAD_COOL_CHECKS) {
			hv_affinity_apply(rec, l->pid);
			l->spread = false;
			l->hot = 0;
			log_info("domain %u (%s): using %u%% of a CPU: back on its CPUs",
				 rec->domid, rec->name, own_pct);
		}
	}
	return l->at_ns;
}
