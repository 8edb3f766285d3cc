// SPDX-License-Identifier: MIT
// drvdom-guest: the guest domain kernel. It opens its hypercall connection,
// its xenstore (over the domain's xenstore ring) and one event loop, watches
// /local/domain/<self>/device/vbd and runs a blkfront for every virtual disk
// the toolstack gives it (each exported over NBD on the socket the toolstack
// assigned), and netfront for every vif (docs/netfront.md: its TAP ethN).
// Everything happens in the one loop thread: xenstore watch events, hv
// events, event channels, ring polling, NBD clients. It runs until the hv
// ends the domain. `--loadgen SPEC` also runs an in-guest load generator on
// the first disk (guest_loadgen.c). See docs/blkfront.md.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>

#include "common/log.h"
#include "frontends/blkfront/blkfront.h"
#include "frontends/guest/guest.h"
#include "frontends/netfront/netfront.h"
#include "grant/gnt.h"
#include "hv/evloop.h"
#include "hv/hvc.h"
#include "xenstore/include/xenstore.h"

/* From the xenstore library's ring transport (xenstore/xs_transport.h):
 * share our hypercall connection instead of opening a second one on the
 * same socket. Weak, so the guest builds against a library without it. */
void xs_ring_use_hvc(struct hvc *h) __attribute__((weak));

static struct blkfront *find_vbd(struct guest *g, unsigned devid, unsigned *idx)
{
	for (unsigned i = 0; i < g->nvbds; i++)
		if (blkfront_devid(g->vbds[i]) == devid) {
			if (idx)
				*idx = i;
			return g->vbds[i];
		}
	return NULL;
}

static bool parse_devid(const char *s, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (end == s || *end || errno || v > 0xFFFFFFu)
		return false;
	*out = (unsigned)v;
	return true;
}

/* Start a blkfront for every new vbd directory; destroy those that vanished. */
static void scan_vbds(struct guest *g)
{
	unsigned n = 0;
	char **ids = xs_directory(g->env.xs, XBT_NULL, g->vbd_dir, &n);
	for (unsigned i = 0; ids && i < n; i++) {
		unsigned devid;
		if (!parse_devid(ids[i], &devid) || find_vbd(g, devid, NULL))
			continue;
		if (g->nvbds == GUEST_MAX_VBDS) {
			log_warn("vbd %u: more than %u disks: ignored", devid, GUEST_MAX_VBDS);
			continue;
		}
		struct blkfront *bf;
		int r = blkfront_create(&g->env, devid, &bf);
		if (r)
			log_warn("vbd %u: %s", devid, strerror(-r));
		else
			g->vbds[g->nvbds++] = bf;
	}
	for (unsigned i = 0; i < g->nvbds;) {
		bool present = false;
		for (unsigned j = 0; ids && j < n && !present; j++) {
			unsigned devid;
			present =
			    parse_devid(ids[j], &devid) && devid == blkfront_devid(g->vbds[i]);
		}
		if (present) {
			i++;
			continue;
		}
		log_info("vbd %u: removed", blkfront_devid(g->vbds[i]));
		if (blkfront_destroy(g->vbds[i], false) == -EBUSY) {
			if (g->nzombies < GUEST_MAX_VBDS) {
				g->zombie_ticks[g->nzombies] = 0;
				g->zombies[g->nzombies++] = g->vbds[i];
			} else {
				blkfront_destroy(g->vbds[i], true);
			}
		}
		g->vbds[i] = g->vbds[--g->nvbds];
	}
	free(ids);
}

/* Every 0.5 s: counters for drvdom top. */
static void stats_tick(void *arg, int fd, uint32_t events)
{
	struct guest *g = arg;
	uint64_t n;
	(void)events;
	(void)!read(fd, &n, sizeof(n));
	for (unsigned i = 0; i < g->nvbds; i++)
		blkfront_publish_stats(g->vbds[i]);
	/* Removed disks: free their rings once the backend let go (10 s at
	 * most, then leak what it still maps). */
	for (unsigned i = 0; i < g->nzombies;) {
		bool force = ++g->zombie_ticks[i] >= 20;
		if (blkfront_destroy(g->zombies[i], force) == 0) {
			g->zombies[i] = g->zombies[--g->nzombies];
			g->zombie_ticks[i] = g->zombie_ticks[g->nzombies];
		} else {
			i++;
		}
	}
}

/* An event of the vbd directory's watch: rescan for the directory itself
 * or a device directory appearing or going, not for the keys inside a
 * device we have (blkfront's own writes: its state, its stats every 0.5 s,
 * a reconnect's keys), which would cost a directory read each, on the loop
 * that also carries the disks' I/O. */
static bool vbd_event_needs_scan(struct guest *g, const char *path)
{
	size_t l = strlen(g->vbd_dir);
	if (strncmp(path, g->vbd_dir, l) || (path[l] && path[l] != '/'))
		return false;
	if (!path[l])
		return true;
	const char *id = path + l + 1, *slash = strchr(id, '/');
	if (!slash)
		return true; /* a device directory itself */
	char buf[16];
	size_t n = (size_t)(slash - id);
	unsigned devid;
	if (n == 0 || n >= sizeof(buf))
		return true;
	memcpy(buf, id, n);
	buf[n] = 0;
	return !parse_devid(buf, &devid) || !find_vbd(g, devid, NULL);
}

static void xs_ready(void *arg, int fd, uint32_t events)
{
	struct guest *g = arg;
	(void)fd;
	(void)events;
	char **ev;
	bool rescan = false;
	while ((ev = xs_check_watch(g->env.xs))) {
		const char *tok = ev[XS_WATCH_TOKEN];
		unsigned devid;
		if (netfront_xs_event(ev[XS_WATCH_PATH], tok)) {
			/* a vif event: netfront's (docs/netfront.md) */
		} else if (strcmp(tok, "vbd") == 0) {
			rescan = rescan || vbd_event_needs_scan(g, ev[XS_WATCH_PATH]);
		} else if (strncmp(tok, "vbd-", 4) == 0 && parse_devid(tok + 4, &devid)) {
			struct blkfront *bf = find_vbd(g, devid, NULL);
			if (bf)
				blkfront_watch_event(bf);
		}
		free(ev);
	}
	if (rescan)
		scan_vbds(g);
}

int main(int argc, char **argv)
{
	log_init("drvdom-guest");
	const char *loadgen = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--loadgen") && i + 1 < argc)
			loadgen = argv[++i];
		else if (!strncmp(argv[i], "--net-queues=", 13)) /* netif multi-queue */
			netfront_set_max_queues((unsigned)atoi(argv[i] + 13));
		else
			log_warn("ignoring argument '%s' (usage: drvdom-guest [--loadgen SPEC] "
				 "[--net-queues=N])",
				 argv[i]);
	}
	signal(SIGPIPE, SIG_IGN);
	struct guest g = {0};
	int r = hvc_open_domain(&g.env.h);
	if (r)
		die_err(-r, "opening the hypercall connection");
	if (xs_ring_use_hvc)
		xs_ring_use_hvc(g.env.h);
	r = hvc_self_domid(g.env.h, &g.env.self);
	if (r)
		die_err(-r, "domain info");
	r = evloop_create(g.env.h, &g.env.loop);
	if (r)
		die_err(-r, "event loop");
	r = gnt_table_open(g.env.h, 4096, &g.env.gt);
	if (r)
		die_err(-r, "grant table");
	g.env.xs = xs_open(0);
	if (!g.env.xs)
		die("xenstore");
	snprintf(g.vbd_dir, sizeof(g.vbd_dir), "/local/domain/%u/device/vbd", g.env.self);
	if (!xs_watch(g.env.xs, g.vbd_dir, "vbd"))
		die("watching %s", g.vbd_dir);
	r = evloop_add_fd(g.env.loop, xs_fileno(g.env.xs), EPOLLIN, xs_ready, &g);
	if (r)
		die_err(-r, "event loop: xenstore watches");
	r = netfront_watch_start(g.env.h, g.env.xs, g.env.loop, g.env.gt);
	if (r)
		log_err("netfront: %s (no network interfaces)", strerror(-r));
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = {.it_interval = {0, 500000000}, .it_value = {0, 500000000}};
	if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) ||
	    evloop_add_fd(g.env.loop, tfd, EPOLLIN, stats_tick, &g))
		log_warn("no statistics timer: drvdom top will not see this guest's disks");
	if (loadgen) {
		r = guest_loadgen_start(&g, loadgen);
		if (r)
			log_err("--loadgen %s: %s", loadgen, strerror(-r));
	}
	log_info("domain %u up, watching %s", g.env.self, g.vbd_dir);
	r = evloop_run(g.env.loop);
	log_err("event loop ended: %s", strerror(-r));
	for (unsigned i = 0; i < g.nvbds; i++)
		blkfront_destroy(g.vbds[i], true);
	for (unsigned i = 0; i < g.nzombies; i++)
		blkfront_destroy(g.zombies[i], true);
	netfront_stop();
	xs_close(g.env.xs);
	gnt_table_close(g.env.gt);
	evloop_destroy(g.env.loop);
	hvc_close(g.env.h);
	return r ? EXIT_FAILURE : EXIT_SUCCESS;
}
