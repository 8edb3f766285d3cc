// SPDX-License-Identifier: MIT
// drvdom-blkback, the block driver domain's kernel (docs/blkback.md): opens
// its hypercall connection and xenstore, watches its backend/vbd directory
// and serves every device found there (several guests, several disks) from
// one event loop: xenstore watch events, event channel kicks, io_uring
// completions, a stats timer, and one adaptive poller per ring. Also the
// deterministic crash points recovery tests use (drvdom-crash-at).
#include "backends/blkback/blkback.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "xenstore/xs_transport.h"

/* --- crash points ---------------------------------------------------------- */

int blkback_crash_parse(const char *spec, struct blkback_crash *out)
{
	static const struct {
		const char *name;
		int at;
	} kinds[] = {{"request:", CRASH_REQUEST},
		     {"mid-batch:", CRASH_MID_BATCH},
		     {"before-publish:", CRASH_BEFORE_PUBLISH},
		     {"after-io:", CRASH_AFTER_IO},
		     {"stall:", CRASH_STALL},
		     {"slow-io:", CRASH_SLOW_IO},
		     {"slow-write:", CRASH_SLOW_WRITE}};
	*out = (struct blkback_crash){.at = CRASH_NONE};
	if (!spec || !*spec)
		return 0;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t l = strlen(kinds[i].name);
		if (strncmp(spec, kinds[i].name, l))
			continue;
		char *end;
		errno = 0;
		unsigned long long n = strtoull(spec + l, &end, 10);
		if (errno || end == spec + l || n == 0)
			return -EINVAL;
		if (kinds[i].at == CRASH_SLOW_IO || kinds[i].at == CRASH_SLOW_WRITE) {
			/* slow-io:N:MS, slow-write:N:MS */
			const char *m = end;
			if (*m != ':')
				return -EINVAL;
			unsigned long long ms = strtoull(m + 1, &end, 10);
			if (errno || end == m + 1 || ms == 0 || ms > 3600000)
				return -EINVAL;
			out->ms = ms;
		}
		if (*end)
			return -EINVAL;
		out->at = kinds[i].at;
		out->n = n;
		return 0;
	}
	return -EINVAL;
}

/* Count an event of this kind; true at the Nth (once). */
bool blkback_crash_hit(struct blkback *bb, int kind)
{
	return bb->crash.at == kind && ++bb->crash.count == bb->crash.n;
}

void blkback_crash_point(struct blkback *bb, int kind)
{
	if (blkback_crash_hit(bb, kind)) {
		log_warn("drvdom-crash-at: crashing at the requested point (%d:%" PRIu64 ")", kind,
			 bb->crash.n);
		abort();
	}
}

/* drvdom-crash-at's value v (NULL: no key) applied. */
static void crash_apply(struct blkback *bb, const char *v)
{
	if (!v) {
		/* The key went: a crash point it armed is disarmed. */
		if (bb->crash_from_key) {
			memset(&bb->crash, 0, sizeof(bb->crash));
			bb->crash_from_key = false;
			log_info("drvdom-crash-at removed: crash point disarmed");
		}
		return;
	}
	struct blkback_crash c;
	if (blkback_crash_parse(v, &c))
		log_warn("drvdom-crash-at: bad value '%s' (request:N, mid-batch:N, "
			 "before-publish:N, after-io:N, stall:N, slow-io:N:MS or "
			 "slow-write:N:MS)",
			 v);
	else if (c.at != bb->crash.at || c.n != bb->crash.n || c.ms != bb->crash.ms) {
		bb->crash = c;
		bb->crash_from_key = true;
	}
}

static void crash_reload(struct blkback *bb)
{
	char p[96];
	snprintf(p, sizeof(p), "/local/domain/%u/drvdom-crash-at", bb->self);
	unsigned len;
	char *v = xs_read(bb->xs, XBT_NULL, p, &len);
	crash_apply(bb, v);
	free(v);
}

/* --- the loop's event sources ------------------------------------------------- */

void blkback_wake(struct blkback *bb)
{
	if (pthread_equal(pthread_self(), bb->loop_thread))
		return; /* the loop runs its pollers next anyway */
	uint64_t one = 1;
	(void)!write(bb->wake_fd, &one, sizeof(one));
}

void blkback_wake_deferred(struct blkback *bb)
{
	/* Always through the eventfd, even from the loop thread: deferred
	 * work runs from wake_ready, not from the pollers. */
	uint64_t one = 1;
	(void)!write(bb->wake_fd, &one, sizeof(one));
}

void blkback_run_deferred(struct blkback *bb)
{
	if (!atomic_exchange(&bb->deferred, false))
		return;
	for (struct blkback_dev *d = bb->devs; d; d = d->next) {
		if (d->fail_pending) {
			d->fail_pending = false;
			blkback_dev_fail(d, d->fail_why);
		}
		if (atomic_exchange(&d->peer_gone, false))
			blkback_dev_peer_gone(d);
	}
	if (atomic_exchange(&bb->assigned, false)) {
		char names[BLKBACK_ASSIGNED_MAX][HV_DEVNAME_MAX];
		pthread_mutex_lock(&bb->assigned_lock);
		unsigned n = bb->nassigned;
		memcpy(names, bb->assigned_names, sizeof(names));
		bb->nassigned = 0;
		pthread_mutex_unlock(&bb->assigned_lock);
		/* A scan (two round trips at least) only if an assignment
		 * may change something: a device not known yet or waiting for
		 * its disk, or one re-created. A restarted instance gets its
		 * disks again before its first scan takes them, and this ran
		 * right after its Connected, before the replay's requests. */
		bool scan = false;
		for (unsigned i = 0; i < n; i++)
			scan = blkback_dev_assigned(bb, names[i]) || scan;
		if (scan)
			blkback_scan(bb);
	}
}

static void wake_ready(void *arg, int fd, uint32_t events)
{
	(void)events;
	uint64_t v;
	(void)!read(fd, &v, sizeof(v));
	blkback_run_deferred(arg);
}

static void device_assigned(void *arg, const char *name)
{
	struct blkback *bb = arg;
	log_debug("device %s assigned", name);
	/* May run in another thread (see blkback_wake): note it for the loop. */
	pthread_mutex_lock(&bb->assigned_lock);
	if (bb->nassigned < BLKBACK_ASSIGNED_MAX)
		snprintf(bb->assigned_names[bb->nassigned++], HV_DEVNAME_MAX, "%s", name);
	pthread_mutex_unlock(&bb->assigned_lock);
	atomic_store(&bb->assigned, true);
	atomic_store(&bb->deferred, true);
	blkback_wake_deferred(bb);
}

/* A backend watch event for path: rescan unless it is a key inside a
 * device directory we know (most are our own writes). */
static bool be_event_needs_scan(struct blkback *bb, const char *path)
{
	size_t l = strlen(bb->vbd_path);
	if (strncmp(path, bb->vbd_path, l) || (path[l] && path[l] != '/'))
		return false;
	unsigned fe, devid;
	int off = 0;
	if (sscanf(path + l, "/%u/%u%n", &fe, &devid, &off) != 2)
		return true;
	if (path[l + (size_t)off] != '/')
		return true; /* the device directory itself */
	for (struct blkback_dev *d = bb->devs; d; d = d->next)
		if (d->fe_domid == fe && d->devid == devid)
			return false;
	return true;
}

static void xs_ready(void *arg, int fd, uint32_t events)
{
	struct blkback *bb = arg;
	char **ev;
	(void)fd;
	(void)events;
	while ((ev = xs_check_watch(bb->xs))) {
		const char *path = ev[XS_WATCH_PATH], *tok = ev[XS_WATCH_TOKEN];
		/* The two watches' registration events say nothing new: the
		 * key and the directory were read right after (main). */
		if (!strcmp(tok, "be")) {
			if (bb->be_skip_first)
				bb->be_skip_first = false;
			else if (be_event_needs_scan(bb, path))
				bb->rescan = true;
		} else if (!strcmp(tok, "crash")) {
			if (bb->crash_skip_first)
				bb->crash_skip_first = false;
			else
				crash_reload(bb);
		} else if (!strncmp(tok, "fe:", 3)) {
			for (struct blkback_dev *d = bb->devs; d; d = d->next) {
				if (!strcmp(d->fe_token, tok)) {
					/* Not the registration's own event: the
					 * keys were read after it, in the same
					 * round trip (a round trip less right
					 * when a failover's replay arrives). */
					if (d->fe_skip_first)
						d->fe_skip_first = false;
					else
						blkback_frontend_changed(d);
					break;
				}
			}
		}
		free(ev);
	}
	if (bb->rescan) {
		bb->rescan = false;
		blkback_scan(bb);
	}
}

static void timer_ready(void *arg, int fd, uint32_t events)
{
	struct blkback *bb = arg;
	uint64_t v;
	(void)events;
	(void)!read(fd, &v, sizeof(v));
	for (struct blkback_dev *d = bb->devs; d; d = d->next)
		blkback_stats_publish(d, false);
	/* A safety net under the watches: every few seconds look at the
	 * directories and the frontends' states as if a watch had fired (each
	 * transition function acts only on a change), so a lost or late
	 * event costs a delay, never a device. */
	if (++bb->ticks % BLKBACK_RESCAN_TICKS == 0) {
		blkback_scan(bb);
		for (struct blkback_dev *d = bb->devs; d; d = d->next)
			if (d->fe_watched)
				blkback_frontend_changed(d);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: drvdom-blkback [--crash-at request:N|mid-batch:N|"
			"before-publish:N|after-io:N|stall:N|slow-io:N:MS|slow-write:N:MS]\n"
			"       [--no-inline-io] [--io-threads]\n"
			"A driver domain kernel: started by drvdom-hv (drvdom create with\n"
			"kernel = \"drvdom-blkback\", driver_domain = 1), not by hand.\n");
}

int main(int argc, char **argv)
{
	static struct blkback bbs;
	struct blkback *bb = &bbs;
	int r;
	log_init("drvdom-blkback");
	const char *crash = getenv("DRVDOM_CRASH_AT");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--crash-at") && i + 1 < argc) {
			crash = argv[++i];
		} else if (!strncmp(argv[i], "--crash-at=", 11)) {
			crash = argv[i] + 11;
		} else if (!strcmp(argv[i], "--io-threads")) {
			bb->io_threads = true; /* the fallback thread pool, not io_uring */
		} else if (!strcmp(argv[i], "--no-inline-io")) {
			bb->no_inline_io = true; /* tests: every read/write via io_uring */
		} else {
			usage();
			return strcmp(argv[i], "--help") ? 2 : 0;
		}
	}
	if (blkback_crash_parse(crash, &bb->crash)) {
		fprintf(stderr, "drvdom-blkback: bad crash point '%s'\n", crash);
		return 2;
	}

	/* Everything that does not need to know who we are comes before the
	 * first hypercall: a standby instance (docs/recovery.md) is parked
	 * in that call until it takes over, so this is done before the crash
	 * it stands by for, not after. */
	if ((r = hvc_open_domain(&bb->h)))
		die_err(-r, "no hypercall connection (not started by drvdom-hv?)");
	bb->loop_thread = pthread_self();
	pthread_mutex_init(&bb->assigned_lock, NULL);
	bb->stash_fd = -1;
	if ((r = evloop_create(bb->h, &bb->loop)))
		die_err(-r, "evloop_create");
	/* With a watchdog set, requests unanswered too long are a hang too. */
	evloop_set_progress_check(bb->loop, blkback_progress_check, bb);
	if ((r = blkback_io_init(bb)))
		die_err(-r, "disk I/O setup");
	bb->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (bb->wake_fd < 0)
		die("eventfd");
	if ((r = evloop_add_fd(bb->loop, bb->wake_fd, EPOLLIN, wake_ready, bb)))
		die_err(-r, "evloop_add_fd");
	bb->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (bb->timer_fd < 0)
		die("timerfd_create");
	if ((r = evloop_add_fd(bb->loop, bb->timer_fd, EPOLLIN, timer_ready, bb)))
		die_err(-r, "evloop_add_fd");
	hvc_set_device_assigned_cb(bb->h, device_assigned, bb);

	if ((r = hvc_self_domid(bb->h, &bb->self)))
		die_err(-r, "DOMAIN_INFO");
	xbkey_instance_make(bb->instance); /* named when we took over */
	snprintf(bb->vbd_path, sizeof(bb->vbd_path), "/local/domain/%u/backend/vbd", bb->self);
	struct itimerspec its = {.it_interval = {0, (long)BLKBACK_STATS_NS},
				 .it_value = {0, (long)BLKBACK_STATS_NS}};
	if (timerfd_settime(bb->timer_fd, 0, &its, NULL) < 0)
		die("timerfd_settime");
	xs_ring_use_hvc(bb->h);
	bb->xs = xs_open(0);
	if (!bb->xs)
		die("xs_open");

	/* Both watches in one round trip (xs_batch): a restarted instance's
	 * first requests wait for xenstored to introduce it, then each one
	 * is a round trip of its failover (docs/recovery.md). */
	char p[96];
	snprintf(p, sizeof(p), "/local/domain/%u/drvdom-crash-at", bb->self);
	struct xs_batch_op w[3] = {{.type = XS_WATCH, .path = p, .data = "crash"},
				   {.type = XS_WATCH, .path = bb->vbd_path, .data = "be"},
				   {.type = XS_READ, .path = p}};
	if (!xs_batch(bb->xs, XBT_NULL, w, 3) || (errno = w[0].err) || (errno = w[1].err))
		die("xs_watch");
	/* The crash point as the key says now (read after the watch was
	 * set, so a later change fires it); the scan below reads the
	 * directory: both watches' first events are skipped. */
	crash_apply(bb, w[2].err ? NULL : w[2].reply);
	free(w[2].reply);
	bb->crash_skip_first = bb->be_skip_first = true;
	int xfd = xs_fileno(bb->xs);
	if (xfd < 0)
		die("xs_fileno");
	if ((r = evloop_add_fd(bb->loop, xfd, EPOLLIN, xs_ready, bb)))
		die_err(-r, "evloop_add_fd");
	log_info("domain %u serving %s", bb->self, bb->vbd_path);
	/* Directories already there (a restart) are found by the first scan,
	 * which the watch's initial event triggers. */
	bb->rescan = true;
	blkback_scan(bb);
	bb->rescan = false;

	r = evloop_run(bb->loop);
	if (r)
		log_err("event loop: %s", strerror(-r));
	while (bb->devs)
		blkback_dev_free(bb->devs);
	blkback_io_fini(bb);
	xs_close(bb->xs);
	evloop_destroy(bb->loop);
	hvc_close(bb->h);
	return r ? 1 : 0;
}
