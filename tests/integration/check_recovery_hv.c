// SPDX-License-Identifier: MIT
// Suite recovery_hv: crash recovery on the hv side (docs/recovery.md) with
// the real drvdom-hv (and drvdom-xenstored where the store matters) and the
// test driver domain tests/integration/dom_recover.c. A killed driver domain
// comes back under the same domid with its device fd again and restarts = 1,
// its peer having seen EVT_PORT_CLOSED and ended its grant; backoff grows;
// a crash loop ends failed (drvdom/state = failed in the store); the watchdog
// kills a loop that stopped heartbeating; a standby spare takes over (both
// times printed, only behaviour asserted); preserve keeps a dead record;
// destroy stops a restarting domain for good; xenstored introduces the new
// instance itself; 100 kill/restart cycles leak no hv fd.
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "grant/gnt.h"
#include "hv/evtchn.h"
#include "hv/hvc.h"
#include "tests/integration/hvtest_hv.h"
#include "xenstore/include/xenstore.h"

static struct hvt_hv H;
static struct hvc *hc;
static pid_t xsd_pid = -1;

static struct {
	int exits, restarts, fails, port_closed;
	struct hv_evt_domain_exit exit;
	struct hv_evt_domain_restarted rs;
	struct hv_evt_domain_failed fail;
	uint64_t exit_ns, rs_ns;
} E;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_exit_evt(void *arg, const struct hv_evt_domain_exit *e)
{
	(void)arg;
	E.exit = *e;
	E.exit_ns = now_ns();
	E.exits++;
}

static void on_restarted(void *arg, const struct hv_evt_domain_restarted *e)
{
	(void)arg;
	E.rs = *e;
	E.rs_ns = now_ns();
	E.restarts++;
}

static void on_failed(void *arg, const struct hv_evt_domain_failed *e)
{
	(void)arg;
	E.fail = *e;
	E.fails++;
}

static void on_port(void *arg, evtchn_port_t port, enum evtchn_event ev)
{
	(void)arg;
	(void)port;
	if (ev == EVTCHN_EV_CLOSED)
		E.port_closed++;
}

static void pump(int ms)
{
	struct pollfd p = {.fd = hvc_fd(hc), .events = POLLIN};
	poll(&p, 1, ms);
	ck_assert_int_ge(hvc_dispatch(hc), 0);
}

static bool wait_count(const int *ctr, int n, int ms)
{
	uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
	while (*ctr < n) {
		if (now_ns() > end)
			return false;
		pump(10);
	}
	return true;
}

static void start_xenstored(void)
{
	char bin[512], log[512], sock[512], hvsock[512];
	snprintf(bin, sizeof(bin), "%s/bin/drvdom-xenstored", getenv("DRVDOM_BUILD"));
	snprintf(log, sizeof(log), "%s/xenstored.log", H.dir);
	snprintf(sock, sizeof(sock), "%s/xs.sock", H.dir);
	snprintf(hvsock, sizeof(hvsock), "%s/run/hv/socket", H.dir);
	xsd_pid = fork();
	ck_assert_int_ge(xsd_pid, 0);
	if (xsd_pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		execl(bin, bin, "--socket", sock, "--hv-socket", hvsock, "--foreground",
		      (char *)NULL);
		_exit(127);
	}
	setenv("XENSTORED_PATH", sock, 1);
	for (int i = 0; i < 1000; i++) {
		if (!access(sock, F_OK)) {
			struct xs_handle *x = xs_open(0);
			if (x) {
				xs_close(x);
				return;
			}
		}
		hvt_sleep_ms(10);
	}
	ck_abort_msg("drvdom-xenstored did not come up");
}

static void setup(bool with_xs)
{
	memset(&E, 0, sizeof(E));
	ck_assert_int_eq(hvt_hv_start(&H, -1), 0);
	char path[512];
	snprintf(path, sizeof(path), "%s/run/hv/socket", H.dir);
	ck_assert_int_eq(hvc_open_dom0(path, &hc), 0);
	ck_assert_int_eq(hvc_domctl_subscribe(hc), 0);
	hvc_set_domain_exit_cb(hc, on_exit_evt, NULL);
	hvc_set_domain_restarted_cb(hc, on_restarted, NULL);
	hvc_set_domain_failed_cb(hc, on_failed, NULL);
	if (with_xs)
		start_xenstored();
}

static void teardown(void)
{
	if (xsd_pid > 0) {
		kill(xsd_pid, SIGTERM);
		waitpid(xsd_pid, NULL, 0);
		xsd_pid = -1;
	}
	hvc_close(hc);
	hc = NULL;
	hvt_hv_stop(&H);
}

static domid_t create(const char *name, const char *mode, const struct hv_policy_req *pol)
{
	char kernel[512];
	snprintf(kernel, sizeof(kernel), "%s/tests/bin/dom_recover", getenv("DRVDOM_BUILD"));
	const char *argv[] = {mode, NULL};
	struct hvc_create_args a = {
	    .kernel = kernel, .argv = argv, .name = name, .flags = HV_DOMF_DRIVER, .policy = pol};
	struct hv_create_rep rep;
	int r = hvc_domctl_create(hc, &a, &rep);
	ck_assert_msg(r == 0, "create %s: %s", name, strerror(-r));
	return rep.domid;
}

/* A socketpair end as the device; returns the test's end. */
static int give_device(domid_t d, const char *name)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(hvc_domctl_assign_device(hc, d, name, sv[0]), 0);
	close(sv[0]);
	return sv[1];
}

static int dev_read(int fd, char *buf, size_t cap, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, ms) != 1)
		return -1;
	ssize_t n = recv(fd, buf, cap - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return (int)n;
}

/* Read the instance's "hello NAME D R PORT" and check D and R. */
static unsigned expect_hello(int dev, domid_t d, unsigned restarts)
{
	char buf[256], name[64];
	unsigned did, rs, port;
	ck_assert_msg(dev_read(dev, buf, sizeof(buf), 10000) > 0, "no hello from domain %u", d);
	ck_assert_int_eq(sscanf(buf, "hello %63s %u %u %u", name, &did, &rs, &port), 4);
	ck_assert_uint_eq(did, d);
	ck_assert_uint_eq(rs, restarts);
	return port;
}

static unsigned log_count(const char *name, const char *needle)
{
	static char buf[1 << 20];
	hvt_log_read(&H, name, buf, sizeof(buf));
	unsigned n = 0;
	for (const char *p = buf; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static bool log_count_wait(const char *name, const char *needle, unsigned n, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (log_count(name, needle) >= n)
			return true;
		hvt_sleep_ms(10);
	}
	return false;
}

static unsigned hv_fd_count(void)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)H.pid);
	DIR *dir = opendir(path);
	ck_assert_ptr_nonnull(dir);
	unsigned n = 0;
	while (readdir(dir))
		n++;
	closedir(dir);
	return n;
}

/* The hv's fd count once it holds still: a restart or a spare start in
 * flight opens and closes fds for a few ms (a pidfd, a console pipe), so a
 * single reading may catch one of them. A leak does not go away. */
static unsigned hv_fd_count_settled(unsigned want)
{
	unsigned n = hv_fd_count();
	for (int i = 0; i < 60 && n != want; i++) {
		usleep(50000);
		n = hv_fd_count();
	}
	return n;
}

static unsigned hv_fd_count_stable(void)
{
	unsigned prev = hv_fd_count();
	for (int i = 0; i < 20; i++) {
		usleep(100000);
		unsigned n = hv_fd_count();
		if (n == prev)
			return n;
		prev = n;
	}
	return prev;
}

static const struct hv_policy_req restart_policy = {.on_crash = HV_ON_CRASH_RESTART};

/* Kill a driver domain: same domid, device again, restarts 1, the peer's
 * port closed and its grant endable. */
START_TEST(test_restart_same_domid)
{
	setup(false);
	domid_t d = create("rdom", "serve", &restart_policy);
	int dev = give_device(d, "vbd/1");
	unsigned port = expect_hello(dev, d, 0);
	ck_assert(hvt_log_wait(&H, "rdom", "recover: got device vbd/1", 5000));

	evtchn_port_t lport;
	ck_assert_int_eq(evtchn_bind_interdomain(hc, d, port, &lport), 0);
	ck_assert_int_eq(evtchn_set_handler(hc, lport, on_port, NULL), 0);
	struct gnt_seg *seg;
	struct gnt_table *t;
	grant_ref_t ref;
	ck_assert_int_eq(gnt_seg_alloc(hc, d, 1, &seg), 0);
	ck_assert_int_eq(gnt_table_open(hc, 1024, &t), 0);
	ck_assert_int_eq(gnt_grant_access(t, d, seg->first_frame, 0, &ref), 0);
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "map %u", ref);
	ck_assert_int_eq(send(dev, buf, (size_t)n, 0), n);
	ck_assert_int_gt(dev_read(dev, buf, sizeof(buf), 5000), 0);
	ck_assert_str_eq(buf, "mapped\n");
	ck_assert_int_eq(gnt_end_access(t, ref), -EBUSY); /* mapped: refused */

	ck_assert_int_eq(hvc_domctl_kill(hc, d), 0);
	ck_assert(wait_count(&E.exits, 1, 5000));
	ck_assert_uint_eq(E.exit.domid, d);
	ck_assert_uint_eq(E.exit.reason & HV_EXIT_REASON_MASK, HV_EXIT_KILLED);
	ck_assert(E.exit.reason & HV_EXIT_F_RESTART);
	ck_assert(wait_count(&E.port_closed, 1, 5000));
	ck_assert_int_eq(gnt_end_access(t, ref), 0); /* the mapping was revoked */
	ck_assert(wait_count(&E.restarts, 1, 5000));
	ck_assert_uint_eq(E.rs.domid, d);
	ck_assert_uint_eq(E.rs.restarts, 1);
	ck_assert_uint_eq(E.rs.flags, 0);
	ck_assert_str_eq(E.rs.name, "rdom");

	expect_hello(dev, d, 1); /* the same device, handed again */
	struct hv_domain_info info;
	ck_assert_int_eq(hvc_domain_info(hc, d, &info), 0);
	ck_assert_uint_eq(info.restarts, 1);
	ck_assert_uint_eq(info.state, HV_DOM_RUNNING);
	ck_assert_uint_eq(info.store_frame, E.rs.store_frame);
	ck_assert_uint_eq(info.store_port, E.rs.store_port);
	ck_assert(hvt_log_wait(
	    &H, NULL, "domain 1 (rdom): crashed (signal 9); restarting in 0 ms (1/5 in 60 s)",
	    2000));
	struct hv_domain_info list[8];
	uint32_t nl = 0;
	ck_assert_int_eq(hvc_domctl_list(hc, list, 8, &nl), 0);
	bool seen = false;
	for (uint32_t i = 0; i < nl; i++)
		seen |= list[i].domid == d && list[i].restarts == 1;
	ck_assert(seen);

	gnt_table_close(t);
	ck_assert_int_eq(hvc_domctl_destroy(hc, d), 0);
	close(dev);
	teardown();
}
END_TEST

/* Backoff: 0, 10, 20 ms for the 1st, 2nd, 3rd crash within the window. */
START_TEST(test_backoff)
{
	setup(false);
	domid_t d = create("bdom", "serve", &restart_policy);
	for (int i = 1; i <= 3; i++) {
		ck_assert_int_eq(hvc_domctl_kill(hc, d), 0);
		ck_assert(wait_count(&E.restarts, i, 5000));
		uint64_t gap_ms = (E.rs_ns - E.exit_ns) / 1000000u;
		printf("recovery_hv: crash %d: restarted %llu ms after the exit event\n", i,
		       (unsigned long long)gap_ms);
		if (i >= 2)
			ck_assert_uint_ge(gap_ms + 1, 10u << (i - 2)); /* +1: ms rounding */
	}
	ck_assert(hvt_log_wait(&H, NULL, "restarting in 10 ms (2/5 in 60 s)", 1000));
	ck_assert(hvt_log_wait(&H, NULL, "restarting in 20 ms (3/5 in 60 s)", 1000));
	ck_assert_int_eq(hvc_domctl_destroy(hc, d), 0);
	teardown();
}
END_TEST

/* A kernel that dies at once: restarted max_restarts times, then failed;
 * the store says so; destroy removes the record. */
START_TEST(test_crash_loop_fails)
{
	setup(true);
	struct hv_policy_req pol = {
	    .on_crash = HV_ON_CRASH_RESTART, .max_restarts = 3, .window_ms = 60000};
	domid_t d = create("loop", "exit", &pol);
	ck_assert(wait_count(&E.fails, 1, 10000));
	ck_assert_uint_eq(E.fail.domid, d);
	ck_assert_uint_eq(E.fail.restarts, 3);
	ck_assert_int_eq(E.restarts, 3);
	ck_assert_int_eq(E.exits, 4);
	ck_assert(E.exit.reason & HV_EXIT_F_FAILED);
	ck_assert_uint_eq(E.exit.reason & HV_EXIT_REASON_MASK, HV_EXIT_EXITED);
	struct hv_domain_info info;
	ck_assert_int_eq(hvc_domain_info(hc, d, &info), 0);
	ck_assert_uint_eq(info.state, HV_DOM_FAILED);
	ck_assert_uint_eq(info.restarts, 3);
	ck_assert(hvt_log_wait(&H, NULL, "failed: 4 crashes in 60 s (limit 3)", 1000));

	struct xs_handle *x = xs_open(0);
	ck_assert_ptr_nonnull(x);
	char path[64];
	snprintf(path, sizeof(path), "/local/domain/%u/drvdom/state", d);
	char *v = NULL;
	for (int i = 0; i < 500 && !v; i++) {
		unsigned len;
		v = xs_read(x, XBT_NULL, path, &len);
		if (!v)
			hvt_sleep_ms(10);
	}
	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(v, "failed");
	free(v);
	/* dom0's, readable by every domain (frontends live in guests) */
	unsigned np = 0;
	struct xs_permissions *perm = xs_get_permissions(x, XBT_NULL, path, &np);
	ck_assert_ptr_nonnull(perm);
	ck_assert_uint_eq(np, 1);
	ck_assert_uint_eq(perm[0].id, 0);
	ck_assert_uint_eq(perm[0].perms, XS_PERM_READ);
	free(perm);
	xs_close(x);

	/* The name stays taken until destroy; then it is free. */
	ck_assert_int_eq(
	    hvc_domctl_create(hc, &(struct hvc_create_args){.kernel = "/bin/true", .name = "loop"},
			      NULL),
	    -EEXIST);
	ck_assert_int_eq(hvc_domctl_destroy(hc, d), 0);
	ck_assert_int_eq(hvc_domain_info(hc, d, &info), -ESRCH);
	teardown();
}
END_TEST

/* A stuck event loop stops heartbeating and is killed as hung; a live one
 * keeps heartbeating on its own and survives. */
START_TEST(test_watchdog)
{
	setup(false);
	struct hv_policy_req pol = {.on_crash = HV_ON_CRASH_DESTROY, .watchdog_ms = 100};
	domid_t live = create("alive", "serve", &pol);
	domid_t hung = create("stuck", "hang", &pol);
	ck_assert(wait_count(&E.exits, 1, 5000));
	ck_assert_uint_eq(E.exit.domid, hung);
	ck_assert_uint_eq(E.exit.reason, HV_EXIT_HUNG);
	ck_assert(hvt_log_wait(&H, "stuck", "recover: hanging", 1000));
	ck_assert(hvt_log_wait(&H, NULL, "domain 2 (stuck): hung: no heartbeat for 1", 1000));
	hvt_sleep_ms(500); /* 5 watchdog periods more */
	pump(0);
	ck_assert_int_eq(E.exits, 1);
	struct hv_domain_info info;
	ck_assert_int_eq(hvc_domain_info(hc, live, &info), 0);
	ck_assert_uint_eq(info.state, HV_DOM_RUNNING);
	ck_assert_int_eq(hvc_domctl_destroy(hc, live), 0);
	teardown();
}
END_TEST

/* The ring-progress watchdog's hypercall: a domain whose progress check
 * reports a stall (its loop still heartbeating) is killed with exit reason
 * STALLED and its reason logged, made printable (a newline in it cannot
 * forge a log line); it is then restarted per on_crash. Without a watchdog,
 * from dom0, or with a reason that is not a string the call is refused and
 * nothing happens. */
START_TEST(test_ring_stall)
{
	setup(false);
	struct hv_policy_req pol = {.on_crash = HV_ON_CRASH_RESTART, .watchdog_ms = 100};
	struct hv_policy_req nowd = {.on_crash = HV_ON_CRASH_DESTROY};
	domid_t calm = create("calm", "stall", &nowd);
	domid_t st = create("staller", "stall", &pol);
	ck_assert(wait_count(&E.exits, 1, 5000));
	ck_assert_uint_eq(E.exit.domid, st);
	ck_assert_uint_eq(E.exit.reason & HV_EXIT_REASON_MASK, HV_EXIT_STALLED);
	ck_assert(E.exit.reason & HV_EXIT_F_RESTART);
	ck_assert(hvt_log_wait(&H, "staller", "recover: unterminated why: -22", 1000));
	ck_assert(hvt_log_wait(&H, "staller", "recover: reporting a stall", 1000));
	ck_assert(hvt_log_wait(&H, NULL,
			       "(staller): ring progress: fake ring 0: request outstanding 100 ms?"
			       "[forged] line? (watchdog 100 ms): killed",
			       1000));
	ck_assert(hvt_log_wait(&H, NULL, "(staller): crashed (ring progress stalled)", 1000));
	ck_assert(wait_count(&E.restarts, 1, 5000));
	ck_assert(hvt_log_wait(&H, "calm", "recover: stall without watchdog: -22", 1000));
	ck_assert_int_eq(hvc_watchdog_stall(hc, 1, "dom0"), -EINVAL);
	hvt_sleep_ms(500);
	pump(0);
	struct hv_domain_info info;
	ck_assert_int_eq(hvc_domain_info(hc, calm, &info), 0);
	ck_assert_uint_eq(info.state, HV_DOM_RUNNING);
	ck_assert_int_eq(hvc_domctl_destroy(hc, calm), 0);
	ck_assert_int_eq(hvc_domctl_destroy(hc, st), 0);
	teardown();
}
END_TEST

/* Kill -> the new instance's first device message, cold and with a spare. */
static double failover_ms(domid_t d, int dev, unsigned restarts, const char *name, bool standby)
{
	char needle[128];
	if (standby) {
		snprintf(needle, sizeof(needle), "(%s): standby instance parked", name);
		ck_assert(log_count_wait(NULL, needle, restarts, 5000));
	}
	uint64_t t0 = now_ns();
	ck_assert_int_eq(hvc_domctl_kill(hc, d), 0);
	expect_hello(dev, d, restarts);
	double ms = (double)(now_ns() - t0) / 1e6;
	ck_assert(wait_count(&E.restarts, E.restarts + 1, 5000));
	ck_assert_uint_eq(E.rs.flags, standby ? HV_RESTARTED_STANDBY : 0);
	return ms;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

START_TEST(test_standby_failover)
{
	setup(false);
	/* A short window: each kill is a first crash, restarted at once. */
	struct hv_policy_req cold = {.on_crash = HV_ON_CRASH_RESTART, .window_ms = 1};
	struct hv_policy_req warm = cold;
	warm.standby = 1;
	domid_t dc = create("cold", "serve", &cold);
	domid_t dw = create("warm", "serve", &warm);
	int devc = give_device(dc, "vbd/1"), devw = give_device(dw, "vbd/1");
	expect_hello(devc, dc, 0);
	expect_hello(devw, dw, 0);
	enum { K = 5 };
	double tc[K], tw[K];
	ck_assert(log_count_wait(NULL, "(warm): standby instance parked", 1, 5000));
	unsigned fds = hv_fd_count_stable();
	for (unsigned i = 0; i < K; i++) {
		tc[i] = failover_ms(dc, devc, i + 1, "cold", false);
		tw[i] = failover_ms(dw, devw, i + 1, "warm", true);
	}
	/* Each spare used was replaced by exactly one new one. */
	ck_assert(log_count_wait(NULL, "(warm): standby instance parked", K + 1, 5000));
	ck_assert_uint_eq(hv_fd_count_settled(fds), fds);
	qsort(tc, K, sizeof(double), cmp_double);
	qsort(tw, K, sizeof(double), cmp_double);
	printf("recovery_hv: kill -> first device I/O of the new instance, median of %d: "
	       "cold restart %.2f ms, standby %.2f ms\n",
	       K, tc[K / 2], tw[K / 2]);
	ck_assert(
	    hvt_log_wait(&H, NULL, "domain 2 (warm): restarted on the standby instance", 1000));
	ck_assert_int_eq(hvc_domctl_destroy(hc, dc), 0);
	ck_assert_int_eq(hvc_domctl_destroy(hc, dw), 0);
	teardown();
}
END_TEST

START_TEST(test_preserve)
{
	setup(false);
	struct hv_policy_req pol = {.on_crash = HV_ON_CRASH_PRESERVE};
	domid_t d = create("keep", "serve", &pol);
	ck_assert(hvt_log_wait(&H, "keep", "recover: up", 5000));
	ck_assert_int_eq(hvc_domctl_kill(hc, d), 0);
	ck_assert(wait_count(&E.exits, 1, 5000));
	ck_assert(E.exit.reason & HV_EXIT_F_PRESERVED);
	hvt_sleep_ms(100);
	pump(0);
	ck_assert_int_eq(E.restarts, 0);
	struct hv_domain_info info;
	ck_assert_int_eq(hvc_domain_info(hc, d, &info), 0);
	ck_assert_uint_eq(info.state, HV_DOM_DEAD);
	ck_assert_str_eq(info.name, "keep");
	ck_assert_int_eq(hvc_domctl_kill(hc, d), -ESRCH); /* no process */
	ck_assert_int_eq(hvc_domctl_destroy(hc, d), 0);
	ck_assert_int_eq(hvc_domain_info(hc, d, &info), -ESRCH);
	ck_assert_int_eq(hvc_domctl_destroy(hc, d), -ESRCH);
	teardown();
}
END_TEST

/* Destroy while the domain waits for its next restart: gone for good. */
START_TEST(test_destroy_restarting)
{
	setup(false);
	struct hv_policy_req pol = {
	    .on_crash = HV_ON_CRASH_RESTART, .max_restarts = 20, .window_ms = 60000};
	domid_t d = create("flap", "exit", &pol);
	ck_assert(wait_count(&E.exits, 6, 10000)); /* the next restart is 160 ms away */
	ck_assert_int_eq(hvc_domctl_destroy(hc, d), 0);
	int restarts = E.restarts;
	hvt_sleep_ms(1200); /* longer than any backoff */
	pump(0);
	ck_assert_int_eq(E.restarts, restarts);
	struct hv_domain_info info;
	ck_assert_int_eq(hvc_domain_info(hc, d, &info), -ESRCH);
	teardown();
}
END_TEST

/* xenstored introduces the restarted instance itself: the new instance
 * writes into its own home over its new ring (its nodes are still its). */
START_TEST(test_xenstore_reintroduce)
{
	setup(true);
	domid_t d = create("xsdom", "xs", &restart_policy);
	struct hv_domain_info info;
	ck_assert_int_eq(hvc_domain_info(hc, d, &info), 0);
	struct xs_handle *x = xs_open(0);
	ck_assert_ptr_nonnull(x);
	char home[64], node[96];
	snprintf(home, sizeof(home), "/local/domain/%u", d);
	snprintf(node, sizeof(node), "%s/data/instance", home);
	ck_assert(xs_mkdir(x, XBT_NULL, home));
	struct xs_permissions p = {d, XS_PERM_NONE};
	ck_assert(xs_set_permissions(x, XBT_NULL, home, &p, 1));
	ck_assert(xs_introduce_domain(x, d, info.store_frame, info.store_port));
	for (unsigned want = 0; want <= 2; want++) {
		char expect[8];
		snprintf(expect, sizeof(expect), "%u", want);
		char *v = NULL;
		for (int i = 0; i < 1000; i++) {
			unsigned len;
			free(v);
			v = xs_read(x, XBT_NULL, node, &len);
			if (v && !strcmp(v, expect))
				break;
			hvt_sleep_ms(10);
		}
		ck_assert_msg(v && !strcmp(v, expect), "instance %u did not write %s (got %s)",
			      want, node, v ? v : "nothing");
		free(v);
		if (want < 2) {
			ck_assert_int_eq(hvc_domctl_kill(hc, d), 0);
			ck_assert(wait_count(&E.restarts, (int)want + 1, 5000));
		}
	}
	ck_assert(xs_is_domain_introduced(x, d));
	xs_close(x);
	ck_assert_int_eq(hvc_domctl_destroy(hc, d), 0);
	teardown();
}
END_TEST

/* 100 kill/restart cycles with a device: the hv's fd count is flat. */
START_TEST(test_no_leak)
{
	setup(false);
	struct hv_policy_req pol = {
	    .on_crash = HV_ON_CRASH_RESTART, .max_restarts = 1000, .window_ms = 1};
	domid_t d = create("leak", "serve", &pol);
	int dev = give_device(d, "vbd/1");
	expect_hello(dev, d, 0);
	ck_assert_int_eq(hvc_domctl_kill(hc, d), 0);
	ck_assert(wait_count(&E.restarts, 1, 5000));
	expect_hello(dev, d, 1);
	unsigned before = hv_fd_count_stable();
	for (int i = 2; i <= 101; i++) {
		ck_assert_int_eq(hvc_domctl_kill(hc, d), 0);
		ck_assert(wait_count(&E.restarts, i, 5000));
		expect_hello(dev, d, (unsigned)i);
	}
	unsigned after = hv_fd_count_settled(before);
	printf("recovery_hv: hv fds after 1 restart %u, after 101 %u\n", before, after);
	ck_assert_uint_eq(after, before);
	ck_assert_int_eq(hvc_domctl_destroy(hc, d), 0);
	teardown();
}
END_TEST

/* A device revoked after the domain took it (a detach) is not handed to the
 * next instance; the others are. */
START_TEST(test_revoked_device_stays_away)
{
	setup(false);
	domid_t d = create("rev", "serve", &restart_policy);
	int keep = give_device(d, "vbd/1"), gone = give_device(d, "vbd/2");
	expect_hello(keep, d, 0);
	expect_hello(gone, d, 0);
	ck_assert_int_eq(hvc_domctl_revoke_device(hc, d, "vbd/2"), -ENOENT); /* taken */
	ck_assert_int_eq(hvc_domctl_kill(hc, d), 0);
	ck_assert(wait_count(&E.restarts, 1, 5000));
	expect_hello(keep, d, 1);
	char buf[128];
	ck_assert_int_lt(dev_read(gone, buf, sizeof(buf), 300), 0);
	ck_assert_int_eq(hvc_domctl_destroy(hc, d), 0);
	teardown();
}
END_TEST

START_TEST(test_policy_errors)
{
	setup(false);
	struct hv_policy_req pol = {.domid = 77, .on_crash = HV_ON_CRASH_RESTART};
	ck_assert_int_eq(hvc_domctl_set_policy(hc, &pol), -ESRCH);
	domid_t d = create("pol", "serve", NULL);
	pol.domid = d;
	pol.on_crash = 3;
	ck_assert_int_eq(hvc_domctl_set_policy(hc, &pol), -EINVAL);
	pol.on_crash = HV_ON_CRASH_DESTROY;
	pol.standby = 1; /* a spare only makes sense with restart */
	ck_assert_int_eq(hvc_domctl_set_policy(hc, &pol), -EINVAL);
	pol.standby = 0;
	pol.watchdog_ms = 5; /* too short to be honoured */
	ck_assert_int_eq(hvc_domctl_set_policy(hc, &pol), -EINVAL);
	pol.domid = 0;
	pol.watchdog_ms = 0;
	ck_assert_int_eq(hvc_domctl_set_policy(hc, &pol), -EINVAL);
	/* Set after create, it applies to the next crash. */
	pol.domid = d;
	pol.on_crash = HV_ON_CRASH_RESTART;
	ck_assert_int_eq(hvc_domctl_set_policy(hc, &pol), 0);
	ck_assert(hvt_log_wait(&H, "pol", "recover: up", 5000));
	ck_assert_int_eq(hvc_domctl_kill(hc, d), 0);
	ck_assert(wait_count(&E.restarts, 1, 5000));
	ck_assert_int_eq(hvc_domctl_destroy(hc, d), 0);
	teardown();
}
END_TEST

Suite *recovery_hv_suite(void);
Suite *recovery_hv_suite(void)
{
	Suite *s = suite_create("recovery_hv");
	TCase *tc = tcase_create("recovery");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_restart_same_domid);
	tcase_add_test(tc, test_backoff);
	tcase_add_test(tc, test_crash_loop_fails);
	tcase_add_test(tc, test_watchdog);
	tcase_add_test(tc, test_ring_stall);
	tcase_add_test(tc, test_standby_failover);
	tcase_add_test(tc, test_preserve);
	tcase_add_test(tc, test_destroy_restarting);
	tcase_add_test(tc, test_xenstore_reintroduce);
	tcase_add_test(tc, test_no_leak);
	tcase_add_test(tc, test_revoked_device_stays_away);
	tcase_add_test(tc, test_policy_errors);
	suite_add_tcase(s, tc);
	return s;
}
