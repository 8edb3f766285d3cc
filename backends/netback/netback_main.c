// SPDX-License-Identifier: MIT
// drvdom-netback, the network driver domain's kernel (docs/netback.md):
// opens its hypercall connection and xenstore, takes the physical NIC named
// by /local/domain/<self>/drvdom/nic (docs/devices.md), watches its
// backend/vif directory and serves every vif found there from one event
// loop: xenstore watch events, event channel kicks, the NIC's fd, a stats
// timer, and adaptive pollers (one per vif, one for the NIC's rx ring).
#include "backends/netback/netback.h"

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

uint64_t netback_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

/* The next name of an XS_DIRECTORY reply (NUL-separated names, len
 * bytes), or NULL. */
static const char *dir_next(const char *names, unsigned len, const char *prev)
{
	const char *p = prev ? prev + strlen(prev) + 1 : names;
	return names && p < names + len ? p : NULL;
}

/* The vifs under backend/vif, from its listing (fes, len bytes; NULL: none
 * there): probe the new ones, free the gone ones. The frontends'
 * directories are listed in one round trip per XS_BATCH_MAX (xs_batch). */
static void scan_listing(struct netback *nb, const char *fes, unsigned len)
{
	bool seen[NETBACK_MAX_VIFS + 1] = {false};
	const char *name = dir_next(fes, len, NULL);
	while (name) {
		struct xs_batch_op ops[XS_BATCH_MAX];
		char paths[XS_BATCH_MAX][160];
		unsigned ids[XS_BATCH_MAX], n = 0;
		for (; name && n < XS_BATCH_MAX; name = dir_next(fes, len, name)) {
			if (!parse_uint(name, 0x7fef, &ids[n]))
				continue;
			snprintf(paths[n], sizeof(paths[n]), "%s/%u", nb->vif_path, ids[n]);
			ops[n] = (struct xs_batch_op){.type = XS_DIRECTORY, .path = paths[n]};
			n++;
		}
		if (n && !xs_batch(nb->xs, XBT_NULL, ops, n))
			n = 0; /* the connection failed: as if none were there */
		for (unsigned i = 0; i < n; i++) {
			const char *hs = ops[i].err ? NULL : ops[i].reply;
			for (const char *hn = dir_next(hs, ops[i].reply_len, NULL); hn;
			     hn = dir_next(hs, ops[i].reply_len, hn)) {
				unsigned h;
				if (!parse_uint(hn, 0xffff, &h))
					continue;
				netback_vif_probe(nb, (domid_t)ids[i], h);
				for (unsigned j = 1; j <= NETBACK_MAX_VIFS; j++) {
					struct netback_vif *v = nb->vifs[j];
					if (v && v->fe_domid == ids[i] && v->handle == h)
						seen[j] = true;
				}
			}
			free(ops[i].reply);
		}
	}
	for (unsigned j = 1; j <= NETBACK_MAX_VIFS; j++)
		if (nb->vifs[j] && !seen[j])
			netback_vif_free(nb->vifs[j]);
}

void netback_scan(struct netback *nb)
{
	struct xs_batch_op op = {.type = XS_DIRECTORY, .path = nb->vif_path};
	bool ok = xs_batch(nb->xs, XBT_NULL, &op, 1) && !op.err;
	scan_listing(nb, ok ? op.reply : NULL, ok ? op.reply_len : 0);
	free(op.reply);
}

/* The NIC named by drvdom/nic (the loop thread; nic_try_open has claimed
 * nb->nic). */
static void nic_open_by_key(struct netback *nb)
{
	unsigned len;
	char *name = xs_read(nb->xs, XBT_NULL, nb->nic_key, &len);
	if (!name) {
		/* not assigned yet: the toolstack writes the key after it
		 * assigned the device */
		if (!nb->nic_watched && xs_watch(nb->xs, nb->nic_key, "nic"))
			nb->nic_watched = true;
		return;
	}
	int fd, r = hvc_device_get(nb->h, name, &fd);
	if (r) {
		if (r != -ENOENT)
			log_warn("NIC %s: %s", name, strerror(-r));
		free(name);
		return;
	}
	if ((r = netback_nic_open(nb, fd, nb->tpacket_v3))) {
		log_err("NIC %s: cannot set it up: %s", name, strerror(-r));
		close(fd);
	} else {
		log_info("NIC %s taken", name);
	}
	free(name);
}

/* On the loop thread (at start, on the key's watch, and after the worker
 * gave up on a device): the NIC by its key, unless it is open or the
 * worker is taking it. Whoever sets nic_stage away from NIC_NONE (under
 * nic_lock) owns nb->nic until it sets it back; nic_open is written only
 * by an owner. */
static void nic_try_open(struct netback *nb)
{
	pthread_mutex_lock(&nb->nic_lock);
	bool busy = nb->nic_stage != NIC_NONE || nb->nic_open;
	if (!busy)
		nb->nic_stage = NIC_PREPARING;
	pthread_mutex_unlock(&nb->nic_lock);
	if (busy)
		return;
	nic_open_by_key(nb);
	pthread_mutex_lock(&nb->nic_lock);
	nb->nic_stage = NIC_NONE;
	pthread_mutex_unlock(&nb->nic_lock);
}

/* The NIC worker: takes the device device_assigned posted and prepares it
 * (netback_nic_prepare: the ring mapped, nothing of the loop's touched),
 * then wakes the loop to attach it. Only "nic/..." devices (the
 * toolstack's names for NICs, docs/devices.md); a failure leaves the NIC
 * to nic_try_open, which reads drvdom/nic as before. */
static void *nic_worker(void *arg)
{
	struct netback *nb = arg;
	pthread_mutex_lock(&nb->nic_lock);
	for (;;) {
		while (!nb->nic_want[0])
			pthread_cond_wait(&nb->nic_cond, &nb->nic_lock);
		char name[HV_DEVNAME_MAX];
		memcpy(name, nb->nic_want, sizeof(name));
		nb->nic_want[0] = 0;
		if (nb->nic_stage != NIC_NONE || nb->nic_open)
			continue;
		nb->nic_stage = NIC_PREPARING;
		pthread_mutex_unlock(&nb->nic_lock);
		int fd, r = hvc_device_get(nb->h, name, &fd);
		if (!r && (r = netback_nic_prepare(nb, fd, nb->tpacket_v3)))
			close(fd);
		if (r)
			log_warn("NIC %s: %s (the NIC key decides)", name, strerror(-r));
		pthread_mutex_lock(&nb->nic_lock);
		nb->nic_stage = r ? NIC_NONE : NIC_PREPARED;
		memcpy(nb->nic_name, name, sizeof(name));
		if (r)
			atomic_store(&nb->nic_pending, true);
		netback_wake(nb);
	}
	return NULL;
}

/* Loop thread: a NIC the worker prepared goes into the loop. */
static void nic_attach_prepared(struct netback *nb)
{
	pthread_mutex_lock(&nb->nic_lock);
	bool ready = nb->nic_stage == NIC_PREPARED;
	pthread_mutex_unlock(&nb->nic_lock);
	if (!ready)
		return;
	int r = netback_nic_attach(nb);
	pthread_mutex_lock(&nb->nic_lock);
	nb->nic_stage = NIC_NONE;
	pthread_mutex_unlock(&nb->nic_lock);
	if (r) {
		log_err("NIC %s: cannot serve it: %s", nb->nic_name, strerror(-r));
		close(nb->nic.fd);
	} else {
		log_info("NIC %s taken", nb->nic_name);
	}
}

static void xs_ready(void *arg, int fd, uint32_t events)
{
	struct netback *nb = arg;
	char **ev;
	(void)fd;
	(void)events;
	while ((ev = xs_check_watch(nb->xs))) {
		const char *path = ev[XS_WATCH_PATH], *tok = ev[XS_WATCH_TOKEN];
		if (!strcmp(tok, "be") && !nb->be_primed && !strcmp(path, nb->vif_path)) {
			/* the event of the watch's registration: main scans
			 * after registering it */
			nb->be_primed = true;
		} else if (!strcmp(tok, "be")) {
			size_t l = strlen(nb->vif_path);
			unsigned fe, h;
			int off = 0;
			/* keys inside a known vif's directory are mostly our own writes */
			if (sscanf(path + l, "/%u/%u%n", &fe, &h, &off) == 2 &&
			    path[l + off] == '/') {
				bool known = false;
				for (unsigned j = 1; j <= NETBACK_MAX_VIFS; j++)
					if (nb->vifs[j] && nb->vifs[j]->fe_domid == fe &&
					    nb->vifs[j]->handle == h)
						known = true;
				if (!known)
					nb->rescan = true;
			} else {
				nb->rescan = true;
			}
		} else if (!strcmp(tok, "nic")) {
			nic_try_open(nb);
		} else if (!strncmp(tok, "fe:", 3)) {
			for (unsigned j = 1; j <= NETBACK_MAX_VIFS; j++) {
				struct netback_vif *v = nb->vifs[j];
				if (v && !strcmp(v->fe_token, tok)) {
					/* the event of the watch's registration:
					 * the probe looked at the frontend after
					 * registering it */
					if (v->fe_primed)
						netback_vif_frontend_changed(v);
					v->fe_primed = true;
					break;
				}
			}
		}
		free(ev);
	}
	if (nb->rescan) {
		nb->rescan = false;
		netback_scan(nb);
	}
}

bool netback_on_loop(const struct netback *nb)
{
	return pthread_equal(pthread_self(), nb->loop_thread);
}

void netback_wake(struct netback *nb)
{
	uint64_t one = 1;
	(void)!write(nb->wake_fd, &one, sizeof(one));
}

static void wake_ready(void *arg, int fd, uint32_t events)
{
	struct netback *nb = arg;
	uint64_t v;
	(void)events;
	(void)!read(fd, &v, sizeof(v));
	nic_attach_prepared(nb);
	if (atomic_exchange(&nb->nic_pending, false))
		nic_try_open(nb);
	for (unsigned j = 1; j <= NETBACK_MAX_VIFS; j++)
		if (nb->vifs[j])
			netback_vif_run_kicks(nb->vifs[j]);
}

/* Runs from hvc_dispatch, possibly in the xenstore reader's thread: a
 * NIC goes to the worker, anything else to the loop (which reads the
 * NIC key). A restarted instance gets its devices before its DOMAIN_INFO
 * reply, so the worker starts on the NIC as soon as we are the domain. */
static void device_assigned(void *arg, const char *name)
{
	struct netback *nb = arg;
	if (nb->nic_thread_up && !strncmp(name, "nic/", 4)) {
		pthread_mutex_lock(&nb->nic_lock);
		snprintf(nb->nic_want, sizeof(nb->nic_want), "%s", name);
		pthread_cond_signal(&nb->nic_cond);
		pthread_mutex_unlock(&nb->nic_lock);
		return;
	}
	atomic_store(&nb->nic_pending, true);
	netback_wake(nb);
}

static void timer_ready(void *arg, int fd, uint32_t events)
{
	struct netback *nb = arg;
	uint64_t v;
	(void)events;
	(void)!read(fd, &v, sizeof(v));
	for (unsigned j = 1; j <= NETBACK_MAX_VIFS; j++)
		if (nb->vifs[j] && nb->vifs[j]->connected)
			netback_vif_stats_publish(nb->vifs[j], false);
	/* The NIC's own counters, to see how many frames each system call
	 * moves (docs/netback.md "Packet I/O"): data/drvdom-nic-stats. */
	const struct netback_nic *n = &nb->nic;
	char b[320], p[96];
	if (!nb->nic_open)
		return;
	snprintf(b, sizeof(b),
		 "rx_pkts=%" PRIu64 " rx_bytes=%" PRIu64 " rx_wakeups=%" PRIu64 " rx_trunc=%" PRIu64
		 " tx_pkts=%" PRIu64 " tx_bytes=%" PRIu64 " tx_calls=%" PRIu64 " tx_drops=%" PRIu64,
		 n->rx_pkts, n->rx_bytes, n->rx_wakeups, n->rx_trunc, n->tx_pkts, n->tx_bytes,
		 n->tx_calls, n->tx_drops);
	if (!strcmp(b, nb->nic_last_stats))
		return;
	snprintf(nb->nic_last_stats, sizeof(nb->nic_last_stats), "%s", b);
	snprintf(p, sizeof(p), "/local/domain/%u/data/drvdom-nic-stats", nb->self);
	(void)xs_write(nb->xs, XBT_NULL, p, b, (unsigned)strlen(b));
}

/* Fault in the heap one vif takes (its structure, rx queue and persistent
 * grant table, all below glibc's mmap threshold), then give it back to
 * malloc, which keeps it for the vif probed after we take over. */
static void netback_prewarm_heap(void)
{
	size_t sz[] = {sizeof(struct netback_vif), NETBACK_RXQ_LEN * sizeof(struct netback_rxq_ent),
		       NETBACK_PGNT_SLOTS * sizeof(struct netback_pgnt)};
	void *p[3];
	for (unsigned i = 0; i < 3; i++)
		if ((p[i] = malloc(sz[i])))
			memset(p[i], 0, sz[i]);
	for (unsigned i = 0; i < 3; i++)
		free(p[i]);
}

int main(int argc, char **argv)
{
	static struct netback nbs;
	struct netback *nb = &nbs;
	int r;
	log_init("drvdom-netback");
	/* --crash-at tx:N: a deterministic crash point for the recovery tests
	 * (docs/recovery.md, "Fault injection"): abort when this instance
	 * takes its Nth tx packet from a guest. */
	for (int i = 1; i < argc; i++) {
		char *end = NULL;
		if (!strcmp(argv[i], "--tpacket-v3")) {
			nb->tpacket_v3 = true;
		} else if (!strcmp(argv[i], "--crash-at") && i + 1 < argc &&
			   !strncmp(argv[i + 1], "tx:", 3) &&
			   (nb->crash_at_tx = strtoull(argv[i + 1] + 3, &end, 10)) > 0 && !*end) {
			i++;
		} else {
			fprintf(stderr,
				"usage: drvdom-netback [--tpacket-v3] [--crash-at tx:N]\n"
				"A driver domain kernel: started by drvdom-hv (drvdom create with\n"
				"kernel = \"drvdom-netback\", driver_domain = 1, nic = ...).\n");
			return strcmp(argv[i], "--help") ? 2 : 0;
		}
	}
	for (unsigned i = 0; i < NETBACK_FDB_SIZE; i++)
		nb->fdb[i].port = 0xffff;
	nb->ops = calloc(HV_COPY_BATCH_MAX, sizeof(*nb->ops));
	nb->scratch = malloc(NETBACK_MAX_FRAME);
	if (!nb->ops || !nb->scratch)
		die("calloc");
	/* Everything that does not need to know who we are comes before the
	 * first hypercall: a standby instance (docs/recovery.md) is parked in
	 * that call until it takes over, so this is done before the crash it
	 * stands by for, not after. The heap a vif's structures will take is
	 * faulted in here too (glibc keeps it once freed): a vif probed after
	 * a failover then costs no page faults. */
	if ((r = hvc_open_domain(&nb->h)))
		die_err(-r, "no hypercall connection (not started by drvdom-hv?)");
	nb->loop_thread = pthread_self();
	if ((r = evloop_create(nb->h, &nb->loop)))
		die_err(-r, "evloop_create");
	evloop_set_spin_ns(nb->loop, NETBACK_SPIN_NS);
	nb->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (nb->wake_fd < 0)
		die("eventfd");
	if ((r = evloop_add_fd(nb->loop, nb->wake_fd, EPOLLIN, wake_ready, nb)))
		die_err(-r, "evloop_add_fd");
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0)
		die("timerfd_create");
	if ((r = evloop_add_fd(nb->loop, tfd, EPOLLIN, timer_ready, nb)))
		die_err(-r, "evloop_add_fd");
	pthread_mutex_init(&nb->nic_lock, NULL);
	pthread_cond_init(&nb->nic_cond, NULL);
	nb->nic_thread_up = pthread_create(&nb->nic_thread, NULL, nic_worker, nb) == 0;
	hvc_set_device_assigned_cb(nb->h, device_assigned, nb);
	netback_prewarm_heap();

	if ((r = hvc_self_domid(nb->h, &nb->self)))
		die_err(-r, "DOMAIN_INFO");
	xbkey_instance_make(nb->instance); /* named when we took over */
	/* The hv hands a restarted instance its devices before its
	 * DOMAIN_INFO reply: dispatch them now, so the NIC worker starts on
	 * the NIC while we open xenstore and reconnect the vifs. */
	(void)hvc_dispatch(nb->h);
	snprintf(nb->vif_path, sizeof(nb->vif_path), "/local/domain/%u/backend/vif", nb->self);
	snprintf(nb->nic_key, sizeof(nb->nic_key), "/local/domain/%u/drvdom/nic", nb->self);
	xs_ring_use_hvc(nb->h);
	nb->xs = xs_open(0);
	if (!nb->xs)
		die("xs_open");
	/* The stats timer starts now we are the domain. */
	struct itimerspec its = {.it_interval = {0, (long)NETBACK_STATS_NS},
				 .it_value = {0, (long)NETBACK_STATS_NS}};
	if (timerfd_settime(tfd, 0, &its, NULL) < 0)
		die("timerfd_settime");
	/* The watch on our backend directory and its listing in one round
	 * trip (xs_batch): the watch first, so nothing added after the
	 * listing goes unseen. */
	struct xs_batch_op w[2] = {{.type = XS_WATCH, .path = nb->vif_path, .data = "be"},
				   {.type = XS_DIRECTORY, .path = nb->vif_path}};
	if (!xs_batch(nb->xs, XBT_NULL, w, 2))
		die("xs_batch");
	if (w[0].err)
		die_err(w[0].err, "xs_watch");
	int xfd = xs_fileno(nb->xs);
	if (xfd < 0)
		die("xs_fileno");
	if ((r = evloop_add_fd(nb->loop, xfd, EPOLLIN, xs_ready, nb)))
		die_err(-r, "evloop_add_fd");
	log_info("domain %u serving %s", nb->self, nb->vif_path);
	/* The vifs first: a frontend that waits for us with kept rings
	 * (docs/recovery.md, "Failover (network)") reconnects while we take
	 * the NIC (mapping its kept rx ring takes ~0.6 ms). The NIC key is
	 * watched only while the NIC is not ours: the toolstack writes it
	 * after assigning the device, and an instance restarted by the hv has
	 * it assigned already. */
	scan_listing(nb, w[1].err ? NULL : w[1].reply, w[1].err ? 0 : w[1].reply_len);
	free(w[1].reply);
	nic_attach_prepared(nb);
	nic_try_open(nb);

	r = evloop_run(nb->loop);
	if (r)
		log_err("event loop: %s", strerror(-r));
	for (unsigned j = 1; j <= NETBACK_MAX_VIFS; j++)
		if (nb->vifs[j])
			netback_vif_free(nb->vifs[j]);
	netback_nic_close(nb);
	xs_close(nb->xs);
	evloop_destroy(nb->loop);
	hvc_close(nb->h);
	return r ? 1 : 0;
}
