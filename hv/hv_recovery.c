// SPDX-License-Identifier: MIT
// Crash recovery in the hv (docs/recovery.md): each domain's record, which
// outlives its instances (kernel, argv, a dup of every device ever assigned,
// the DOMCTL_SET_POLICY policy and the crash history); what follows an
// instance's death (destroy, preserve, restart with exponential backoff, or
// failed after too many crashes in the window); the heartbeat watchdog; and
// the standby spare, a second instance started and parked (its hypercall
// socket unread) that a restart activates instead of spawning. One timerfd
// serves every deadline (restart due, watchdog expiry, spare to start); it
// is armed for the earliest and re-armed when it fires, so heartbeats (which
// only move deadlines later) cost no system call.
#include "common/log.h"
#include "hv/hv_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define HV_BACKOFF_FIRST_MS 10u
#define HV_BACKOFF_MAX_MS 1000u
/* After a restart, before the next spare is spawned: the spawn (namespaces,
 * exec, the kernel's own start-up: 3-80 ms of CPU on a loaded 2-core host,
 * the hv blocked for part of it) must not compete with the failover it
 * follows, which takes the new instance and its frontends a few ms, tens
 * under load (docs/recovery.md, "Fast reconnect"). */
#define HV_SPARE_DELAY_MS 250u
/* A spare starts up this much nicer than the hv and gets the hv's nice value
 * back (what a cold-started instance inherits) when it takes over, so its
 * start-up yields to everything running (only with CAP_SYS_NICE, i.e. as
 * root: without it the hv could not give the priority back). */
#define HV_SPARE_NICE 10

/* The hv's own nice value, which every domain inherits. */
static int hv_nice(void)
{
	errno = 0;
	int n = getpriority(PRIO_PROCESS, 0);
	return errno ? 0 : n;
}
#define HV_CRASH_HIST_MAX 1024u

#define NS_PER_MS 1000000ull

struct hv_rec *hv_rec_get(domid_t domid)
{
	return domid < DOMID_FIRST_FREE ? hv.recs[domid] : NULL;
}

int hv_rec_new(domid_t domid, const char *name, uint32_t flags, uint64_t memory, int kfd,
	       const char **strs, struct hv_rec **out)
{
	struct hv_rec *rec = calloc(1, sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	unsigned n = 0;
	while (strs[n])
		n++;
	rec->argv = calloc(n + 1, sizeof(char *));
	if (!rec->argv) {
		free(rec);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++)
		if (!(rec->argv[i] = strdup(strs[i]))) {
			for (unsigned j = 0; j < i; j++)
				free(rec->argv[j]);
			free(rec->argv);
			free(rec);
			return -ENOMEM;
		}
	rec->domid = domid;
	rec->state = HV_DOM_RUNNING;
	snprintf(rec->name, sizeof(rec->name), "%s", name);
	rec->flags = flags;
	rec->memory = memory;
	rec->kfd = kfd;
	rec->policy.domid = domid;
	rec->policy.on_crash = HV_ON_CRASH_DESTROY;
	rec->policy.max_restarts = HV_POLICY_DEFAULT_MAX_RESTARTS;
	rec->policy.window_ms = HV_POLICY_DEFAULT_WINDOW_MS;
	rec->start_ns = hv_now_ns();
	rec->next = hv.rec_list;
	hv.rec_list = rec;
	hv.recs[domid] = rec;
	*out = rec;
	return 0;
}

void hv_spare_kill(struct hv_spare *sp)
{
	syscall(SYS_pidfd_send_signal, sp->pidfd, SIGKILL, NULL, 0);
	siginfo_t si;
	while (waitid((idtype_t)P_PIDFD, (id_t)sp->pidfd, &si, WEXITED) && errno == EINTR)
		;
	epoll_ctl(hv.epfd, EPOLL_CTL_DEL, sp->pidfd, NULL);
	close(sp->pidfd);
	close(sp->sock);
	close(sp->con_fd);
	free(sp);
}

static void hv_rec_drop_spare(struct hv_rec *rec)
{
	if (rec->spare) {
		hv_spare_kill(rec->spare);
		rec->spare = NULL;
	}
	rec->spare_at_ns = 0;
}

void hv_rec_free(struct hv_rec *rec)
{
	for (struct hv_rec **pp = &hv.rec_list; *pp; pp = &(*pp)->next)
		if (*pp == rec) {
			*pp = rec->next;
			break;
		}
	if (hv.recs[rec->domid] == rec)
		hv.recs[rec->domid] = NULL;
	hv_rec_drop_spare(rec);
	hv_affinity_free(rec);
	while (rec->devs) {
		struct hv_device *dv = rec->devs;
		rec->devs = dv->next;
		close(dv->fd);
		free(dv);
	}
	for (char **a = rec->argv; a && *a; a++)
		free(*a);
	free(rec->argv);
	free(rec->crash_ns);
	if (rec->kfd >= 0)
		close(rec->kfd);
	free(rec);
}

void hv_rec_device_assigned(struct hv_rec *rec, const char *name, int fd)
{
	hv_rec_device_revoked(rec, name); /* a newer assignment replaces it */
	struct hv_device *dv = calloc(1, sizeof(*dv));
	int keep = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (!dv || keep < 0) {
		log_warn("domain %u (%s): device %s: no copy kept for restarts: %s", rec->domid,
			 rec->name, name, keep < 0 ? strerror(errno) : "out of memory");
		free(dv);
		if (keep >= 0)
			close(keep);
		return;
	}
	snprintf(dv->name, sizeof(dv->name), "%s", name);
	dv->fd = keep;
	dv->next = rec->devs;
	rec->devs = dv;
}

void hv_rec_device_revoked(struct hv_rec *rec, const char *name)
{
	for (struct hv_device **pp = &rec->devs; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->name, name)) {
			struct hv_device *dv = *pp;
			*pp = dv->next;
			close(dv->fd);
			free(dv);
			return;
		}
}

/* --- the timer --------------------------------------------------------------- */

static void hv_timer_arm(uint64_t at_ns)
{
	if (at_ns == hv.timer_at_ns)
		return;
	struct itimerspec its = {0};
	if (at_ns) {
		its.it_value.tv_sec = (time_t)(at_ns / 1000000000ull);
		its.it_value.tv_nsec = (long)(at_ns % 1000000000ull);
	}
	if (timerfd_settime(hv.timer_fd, TFD_TIMER_ABSTIME, &its, NULL))
		die("timerfd_settime");
	hv.timer_at_ns = at_ns;
}

void hv_rec_init(void)
{
	hv.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (hv.timer_fd < 0)
		die("timerfd_create");
	hv.timer_ev = (struct hv_ev){HV_EV_TIMER, NULL};
	hv_epoll_add(hv.timer_fd, &hv.timer_ev);
}

void hv_rec_fini(void)
{
	while (hv.rec_list)
		hv_rec_free(hv.rec_list);
	close(hv.timer_fd);
}

/* --- policy ------------------------------------------------------------------ */

int hv_rec_set_policy(const struct hv_policy_req *p)
{
	struct hv_rec *rec = hv_rec_get(p->domid);
	if (p->domid == 0 || p->domid == DOMID_SELF)
		return -EINVAL;
	if (!rec)
		return -ESRCH;
	if (p->on_crash > HV_ON_CRASH_PRESERVE || p->standby > 1 ||
	    (p->standby && p->on_crash != HV_ON_CRASH_RESTART) || p->max_restarts > 1000 ||
	    (p->watchdog_ms && p->watchdog_ms < 10))
		return -EINVAL;
	struct hv_policy_req np = *p;
	if (!np.max_restarts)
		np.max_restarts = HV_POLICY_DEFAULT_MAX_RESTARTS;
	if (!np.window_ms)
		np.window_ms = HV_POLICY_DEFAULT_WINDOW_MS;
	uint32_t cap = np.max_restarts + 1;
	if (cap != rec->crash_cap) {
		uint64_t *h = calloc(cap, sizeof(*h));
		if (!h)
			return -ENOMEM;
		/* Keep the most recent crashes that fit. */
		uint32_t keep = rec->ncrash < cap ? rec->ncrash : cap;
		if (keep)
			memcpy(h, rec->crash_ns + (rec->ncrash - keep), keep * sizeof(*h));
		free(rec->crash_ns);
		rec->crash_ns = h;
		rec->crash_cap = cap;
		rec->ncrash = keep;
	}
	bool wd_changed = np.watchdog_ms != rec->policy.watchdog_ms;
	rec->policy = np;
	log_info("domain %u (%s): policy on_crash=%s max_restarts=%u window=%u ms watchdog=%u ms "
		 "standby=%u",
		 rec->domid, rec->name,
		 np.on_crash == HV_ON_CRASH_RESTART    ? "restart"
		 : np.on_crash == HV_ON_CRASH_PRESERVE ? "preserve"
						       : "destroy",
		 np.max_restarts, np.window_ms, np.watchdog_ms, np.standby);
	if (rec->dom && wd_changed) {
		struct hv_evt_watchdog w = {np.watchdog_ms};
		rec->dom->heartbeat_ns = hv_now_ns();
		hv_send(rec->dom->conn, HV_EVT_WATCHDOG, 0, 0, &w, sizeof(w), NULL, 0);
	}
	if (!np.standby)
		hv_rec_drop_spare(rec);
	else if (!rec->spare && !rec->spare_at_ns)
		rec->spare_at_ns = hv_now_ns();
	hv_rec_timer();
	return 0;
}

/* --- exit, restart, failure ------------------------------------------------ */

static void hv_crash_text(uint16_t reason, int32_t status, char *buf, size_t cap)
{
	switch (reason) {
	case HV_EXIT_EXITED:
		snprintf(buf, cap, "exit status %d", (int)status);
		break;
	case HV_EXIT_SECCOMP:
		snprintf(buf, cap, "forbidden system call");
		break;
	case HV_EXIT_MALFORMED:
		snprintf(buf, cap, "malformed hypercall");
		break;
	case HV_EXIT_HUNG:
		snprintf(buf, cap, "hung");
		break;
	case HV_EXIT_STALLED:
		snprintf(buf, cap, "ring progress stalled");
		break;
	default:
		snprintf(buf, cap, "signal %d", (int)status);
		break;
	}
}

/* Record a crash at now; returns how many lie within the window. */
static uint32_t hv_rec_count_crash(struct hv_rec *rec, uint64_t now)
{
	uint64_t win = (uint64_t)rec->policy.window_ms * NS_PER_MS;
	uint32_t k = 0;
	for (uint32_t i = 0; i < rec->ncrash; i++)
		if (now - rec->crash_ns[i] < win)
			rec->crash_ns[k++] = rec->crash_ns[i];
	rec->ncrash = k;
	if (rec->ncrash == rec->crash_cap) {
		memmove(rec->crash_ns, rec->crash_ns + 1, (rec->crash_cap - 1) * sizeof(uint64_t));
		rec->ncrash--;
	}
	rec->crash_ns[rec->ncrash++] = now;
	return rec->ncrash;
}

/* A crash under on_crash = restart (an instance died, or a restart could not
 * start one): schedule the next restart or mark the domain failed. Returns
 * HV_EXIT_F_RESTART or HV_EXIT_F_FAILED. */
static uint16_t hv_rec_crashed(struct hv_rec *rec, const char *what)
{
	uint64_t now = hv_now_ns();
	uint32_t n = hv_rec_count_crash(rec, now);
	uint32_t max = rec->policy.max_restarts;
	double win_s = rec->policy.window_ms / 1000.0;
	if (n > max) {
		log_warn("domain %u (%s): crashed (%s); failed: %u crashes in %g s (limit %u)",
			 rec->domid, rec->name, what, n, win_s, max);
		rec->state = HV_DOM_FAILED;
		rec->restart_at_ns = 0;
		return HV_EXIT_F_FAILED;
	}
	uint32_t delay = 0;
	if (n >= 2) {
		delay = HV_BACKOFF_MAX_MS;
		if (n - 2 < 7)
			delay = HV_BACKOFF_FIRST_MS << (n - 2);
		if (delay > HV_BACKOFF_MAX_MS)
			delay = HV_BACKOFF_MAX_MS;
	}
	log_warn("domain %u (%s): crashed (%s); restarting in %u ms (%u/%u in %g s)%s", rec->domid,
		 rec->name, what, delay, n, max, win_s,
		 rec->spare ? " on the standby instance" : "");
	rec->state = HV_DOM_RESTARTING;
	rec->crash_at_ns = now;
	rec->restart_at_ns = now + (uint64_t)delay * NS_PER_MS;
	return HV_EXIT_F_RESTART;
}

uint16_t hv_rec_on_exit(struct hv_dom *d, uint16_t reason, int32_t status)
{
	struct hv_rec *rec = d->rec;
	char what[64];
	if (reason == HV_EXIT_DESTROYED || (reason == HV_EXIT_EXITED && status == 0) ||
	    rec->policy.on_crash == HV_ON_CRASH_DESTROY)
		return 0;
	hv_crash_text(reason, status, what, sizeof(what));
	if (rec->policy.on_crash == HV_ON_CRASH_PRESERVE) {
		log_warn("domain %u (%s): crashed (%s); preserved (dead) until destroyed",
			 rec->domid, rec->name, what);
		rec->state = HV_DOM_DEAD;
		return HV_EXIT_F_PRESERVED;
	}
	return hv_rec_crashed(rec, what);
}

static void hv_rec_send_failed(struct hv_rec *rec)
{
	struct hv_evt_domain_failed ev = {.domid = rec->domid, .restarts = rec->restarts};
	memcpy(ev.name, rec->name, sizeof(ev.name));
	for (struct hv_conn *c = hv.conns; c; c = c->next)
		if (c->subscribed)
			hv_send(c, HV_EVT_DOMAIN_FAILED, 0, 0, &ev, sizeof(ev), NULL, 0);
}

void hv_rec_after_exit(struct hv_rec *rec, uint16_t flags)
{
	if (!flags) {
		hv_rec_free(rec);
		return;
	}
	if (flags & (HV_EXIT_F_FAILED | HV_EXIT_F_PRESERVED))
		hv_rec_drop_spare(rec);
	if (flags & HV_EXIT_F_FAILED)
		hv_rec_send_failed(rec);
	hv_rec_timer(); /* a restart due now happens at once */
}

/* The restart is due: start the next instance (on the spare if parked). */
static void hv_rec_restart(struct hv_rec *rec)
{
	struct hv_spare *sp = rec->spare;
	rec->spare = NULL;
	if (sp)
		epoll_ctl(hv.epfd, EPOLL_CTL_DEL, sp->pidfd, NULL);
	rec->restart_at_ns = 0;
	rec->restarts++;
	/* Its priority back before it runs as the domain (HV_SPARE_NICE). */
	if (sp && geteuid() == 0 && setpriority(PRIO_PROCESS, (id_t)sp->pid, hv_nice()))
		log_warn("domain %u (%s): standby instance nice %d: %s", rec->domid, rec->name,
			 hv_nice(), strerror(errno));
	int r = hv_dom_start(rec, sp);
	if (r) {
		char what[80];
		snprintf(what, sizeof(what), "restart failed: %s", strerror(-r));
		if (hv_rec_crashed(rec, what) == HV_EXIT_F_FAILED)
			hv_rec_send_failed(rec);
		return;
	}
	struct hv_dom *d = rec->dom;
	rec->state = HV_DOM_RUNNING;
	uint64_t now = hv_now_ns();
	log_info("domain %u (%s): restarted%s, pid %d, %.2f ms after the crash (restart %u)",
		 d->domid, d->name, sp ? " on the standby instance" : "", (int)d->pid,
		 (double)(now - rec->crash_at_ns) / 1e6, rec->restarts);
	struct hv_evt_domain_restarted ev = {.domid = d->domid,
					     .flags = sp ? HV_RESTARTED_STANDBY : 0,
					     .store_port = d->store_port,
					     .store_frame = d->store_frame,
					     .restarts = rec->restarts};
	memcpy(ev.name, d->name, sizeof(ev.name));
	for (struct hv_conn *c = hv.conns; c; c = c->next)
		if (c->subscribed)
			hv_send(c, HV_EVT_DOMAIN_RESTARTED, 0, 0, &ev, sizeof(ev), NULL, 0);
	if (rec->policy.standby && !rec->spare)
		rec->spare_at_ns = now + HV_SPARE_DELAY_MS * NS_PER_MS;
}

static void hv_rec_start_spare(struct hv_rec *rec)
{
	rec->spare_at_ns = 0;
	struct hv_spare *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return;
	int r = hv_dom_spawn(rec, &sp->sock, &sp->con_fd, &sp->pid, &sp->pidfd);
	if (r) {
		log_warn("domain %u (%s): standby instance not started: %s", rec->domid, rec->name,
			 strerror(-r));
		free(sp);
		return;
	}
	sp->rec = rec;
	int nice = hv_nice() + HV_SPARE_NICE > 19 ? 19 : hv_nice() + HV_SPARE_NICE;
	if (geteuid() == 0 && setpriority(PRIO_PROCESS, (id_t)sp->pid, nice))
		log_debug("domain %u (%s): standby instance nice %d: %s", rec->domid, rec->name,
			  nice, strerror(errno));
	sp->ev = (struct hv_ev){HV_EV_SPARE, sp};
	hv_epoll_add(sp->pidfd, &sp->ev);
	rec->spare = sp;
	log_info("domain %u (%s): standby instance parked, pid %d", rec->domid, rec->name,
		 (int)sp->pid);
}

void hv_rec_spare_exited(struct hv_spare *sp)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid((idtype_t)P_PIDFD, (id_t)sp->pidfd, &si, WEXITED | WNOHANG))
		die("waitid on a standby instance");
	if (si.si_pid == 0)
		return;
	struct hv_rec *rec = sp->rec;
	log_warn("domain %u (%s): standby instance died while parked (%s %d); none until the "
		 "next restart",
		 rec->domid, rec->name, si.si_code == CLD_EXITED ? "exit status" : "signal",
		 si.si_status);
	epoll_ctl(hv.epfd, EPOLL_CTL_DEL, sp->pidfd, NULL);
	close(sp->pidfd);
	close(sp->sock);
	close(sp->con_fd);
	free(sp);
	rec->spare = NULL;
}

int hv_rec_destroy(domid_t domid)
{
	struct hv_rec *rec = hv_rec_get(domid);
	if (!rec || rec->dom)
		return -ESRCH;
	log_info("domain %u (%s): destroyed (was %s)", rec->domid, rec->name,
		 rec->state == HV_DOM_FAILED ? "failed"
		 : rec->state == HV_DOM_DEAD ? "dead"
					     : "restarting");
	struct hv_evt_domain_exit ev = {.domid = domid, .reason = HV_EXIT_DESTROYED};
	memcpy(ev.name, rec->name, sizeof(ev.name));
	hv_rec_free(rec);
	for (struct hv_conn *c = hv.conns; c; c = c->next)
		if (c->subscribed)
			hv_send(c, HV_EVT_DOMAIN_EXIT, 0, 0, &ev, sizeof(ev), NULL, 0);
	return 0;
}

void hv_rec_fill_info(const struct hv_rec *rec, bool for_dom0, struct hv_domain_info *out)
{
	(void)for_dom0;
	memset(out, 0, sizeof(*out));
	out->domid = rec->domid;
	out->state = rec->state;
	out->flags = rec->flags;
	out->restarts = rec->restarts;
	out->memory = rec->memory;
	out->start_ns = rec->start_ns;
	memcpy(out->name, rec->name, sizeof(out->name));
}

/* --- watchdog and the deadlines ---------------------------------------------- */

void hv_rec_heartbeat(struct hv_dom *d)
{
	d->heartbeat_ns = hv_now_ns();
}

/* The ring-progress watchdog (docs/recovery.md): the domain's own event
 * loop found work it took from a ring unanswered for longer than the
 * watchdog period, by its private bookkeeping (a frontend cannot write it,
 * so it cannot get its backend killed). Its word is enough: a domain can
 * always kill itself. The reason is the domain's text, so it is checked to
 * be a string and made printable before it reaches the log. */
int hv_rec_watchdog_stall(struct hv_dom *d, const struct hv_watchdog_stall_req *q)
{
	struct hv_rec *rec = d->rec;
	if (d->domid == 0 || !rec || !rec->policy.watchdog_ms)
		return -EINVAL;
	size_t n = strnlen(q->why, sizeof(q->why));
	if (n == sizeof(q->why))
		return -EINVAL;
	char why[HV_STALL_WHY_MAX];
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)q->why[i];
		why[i] = ch < 0x20 || ch > 0x7e ? '?' : (char)ch;
	}
	why[n] = 0;
	if (d->exit_reason || d->state == HV_DOM_DYING)
		return 0; /* already on its way out */
	if (!n)
		snprintf(why, sizeof(why), "work outstanding %u ms", q->stalled_ms);
	log_warn("domain %u (%s): ring progress: %s (watchdog %u ms): killed", d->domid, d->name,
		 why, rec->policy.watchdog_ms);
	d->exit_reason = HV_EXIT_STALLED;
	hv_dom_signal(d, SIGKILL);
	return 0;
}

static void hv_min(uint64_t *next, uint64_t t)
{
	if (!*next || t < *next)
		*next = t;
}

void hv_rec_timer(void)
{
	uint64_t v;
	(void)!read(hv.timer_fd, &v, sizeof(v));
	uint64_t now = hv_now_ns(), next = 0;
	for (struct hv_rec *rec = hv.rec_list, *nx; rec; rec = nx) {
		nx = rec->next;
		struct hv_dom *d = rec->dom;
		uint32_t wd = rec->policy.watchdog_ms;
		if (d && wd && d->state == HV_DOM_RUNNING && !d->exit_reason) {
			uint64_t due = d->heartbeat_ns + (uint64_t)wd * NS_PER_MS;
			if (due <= now) {
				log_warn("domain %u (%s): hung: no heartbeat for %llu ms: killed",
					 d->domid, d->name,
					 (unsigned long long)((now - d->heartbeat_ns) / NS_PER_MS));
				d->exit_reason = HV_EXIT_HUNG;
				hv_dom_signal(d, SIGKILL);
			} else {
				hv_min(&next, due);
			}
		}
		if (!d && rec->state == HV_DOM_RESTARTING && rec->restart_at_ns) {
			if (rec->restart_at_ns <= now) {
				hv_rec_restart(rec);
				now = hv_now_ns();
				if (rec->restart_at_ns)
					hv_min(&next, rec->restart_at_ns);
			} else {
				hv_min(&next, rec->restart_at_ns);
			}
		}
		uint64_t at = hv_affinity_tick(rec, now);
		if (at)
			hv_min(&next, at);
		if (rec->spare_at_ns && rec->dom && rec->state == HV_DOM_RUNNING) {
			if (rec->spare_at_ns <= now) {
				hv_rec_start_spare(rec);
				now = hv_now_ns();
			} else {
				hv_min(&next, rec->spare_at_ns);
			}
		}
	}
	hv_timer_arm(next);
}
