// SPDX-License-Identifier: MIT
// CPU placement of a domain (xl.cfg's cpus =, xl vcpu-pin): the hv keeps
// the mask in the domain's record and applies it to every instance it
// starts, so a driver domain restarted after a crash, or a spare taking
// over, runs where the first instance ran (docs/hv.md, "CPU placement").
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int hv_rec_set_affinity(const struct hv_affinity_req *q)
{
	if (q->domid == 0 || q->domid == DOMID_SELF)
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
	log_info("domain %u (%s): %s", rec->domid, rec->name,
		 mask_empty(q->mask) ? "CPU placement cleared" : "CPU placement set");
	if (rec->dom)
		hv_affinity_apply(rec, rec->dom->pid);
	if (rec->spare)
		hv_affinity_apply(rec, rec->spare->pid);
	return 0;
}
