// SPDX-License-Identifier: MIT
// Integration suite `blkback`: the real drvdom-hv and drvdom-xenstored (as
// children of the test, dying with it), a blkdom driver domain created with
// `drvdom create` running drvdom-blkback, and guests whose kernel is the
// test frontend tests/integration/blkback_evilfront.c, which does the blkif
// handshake itself and reports through its xenstore directory. Proves the
// backend alone, before blkfront: every feature on the good path, several
// guests and disks at once, every malformed request refused while another
// guest carries on, the crash points, and devices going away.
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xenstore/include/xenstore.h"
#include "xstest.h"

static char run[128];
static pid_t hv_pid = -1, xsd_pid = -1;
static struct xs_handle *xs;

static const char *build_dir(void)
{
	const char *b = getenv("DRVDOM_BUILD");
	return b ? b : "build";
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* A daemon child that gets SIGTERM when the test process dies (a timeout,
 * a failed assertion), so nothing outlives the test. */
static pid_t spawn(const char *prog, const char *logname, const char *const *args)
{
	return xst_spawn(run, prog, logname, args);
}

static void env_down(void)
{
	if (xs)
		xs_close(xs);
	xs = NULL;
	if (xsd_pid > 0) {
		kill(xsd_pid, SIGTERM);
		waitpid(xsd_pid, NULL, 0);
	}
	if (hv_pid > 0) {
		kill(hv_pid, SIGTERM);
		waitpid(hv_pid, NULL, 0);
	}
	xsd_pid = hv_pid = -1;
	if (run[0] && !getenv("DRVDOM_KEEP")) {
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", run);
		(void)!system(cmd);
	}
}

/* Print a file (a domain's console) to stderr, for a failure's context. */
static void dump(const char *rel)
{
	char p[256], line[512];
	snprintf(p, sizeof(p), "%s/%s", run, rel);
	FILE *f = fopen(p, "r");
	if (!f)
		return;
	fprintf(stderr, "---- %s\n", p);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
}

/* Fail with every daemon stopped and the logs shown. */
#define T_ASSERT(cond, ...)                                                                        \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			dump("hv.log");                                                            \
			dump("xenstored.log");                                                     \
			dump("console/blkdom.log");                                                \
			dump("console/evil.log");                                                  \
			dump("console/g1.log");                                                    \
			dump("console/g2.log");                                                    \
			dump("console/other.log");                                                 \
			env_down();                                                                \
			ck_abort_msg(__VA_ARGS__);                                                 \
		}                                                                                  \
	} while (0)

/* The hv binds its socket before it listens: the file alone does not say
 * a connection would be taken (xenstored dies if refused). */
static bool sock_accepts(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0); /* the hv's type */
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void env_up(void)
{
	snprintf(run, sizeof(run), "/tmp/drvdom-blkback-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(run));
	setenv("DRVDOM_RUN_DIR", run, 1);
	char hvsock[192], xssock[192], d[192];
	snprintf(hvsock, sizeof(hvsock), "%s/hv/socket", run);
	snprintf(xssock, sizeof(xssock), "%s/xenstored/socket", run);
	snprintf(d, sizeof(d), "%s/xenstored", run);
	mkdir(d, 0700);
	const char *hvargs[] = {"--run-dir", run, "--foreground", NULL};
	hv_pid = spawn("drvdom-hv", "hv.log", hvargs);
	for (int i = 0; i < 500 && !sock_accepts(hvsock); i++)
		sleep_ms(10);
	T_ASSERT(sock_accepts(hvsock), "drvdom-hv did not come up");
	const char *xsargs[] = {"--socket", xssock, "--hv-socket", hvsock, "--foreground", NULL};
	xsd_pid = spawn("drvdom-xenstored", "xenstored.log", xsargs);
	setenv("XENSTORED_PATH", xssock, 1);
	for (int i = 0; i < 500 && !(xs = xs_open(0)); i++)
		sleep_ms(10);
	T_ASSERT(xs != NULL, "drvdom-xenstored did not come up");
}

static void write_file(const char *rel, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void write_file(const char *rel, const char *fmt, ...)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", run, rel);
	FILE *f = fopen(p, "w");
	T_ASSERT(f != NULL, "open %s", p);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

static void make_disk(const char *rel, unsigned mib)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", run, rel);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	T_ASSERT(fd >= 0 && ftruncate(fd, (off_t)mib << 20) == 0, "disk %s", p);
	close(fd);
}

/* drvdom CLI with a time limit; its exit status. */
static int drvdom(const char *args)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "timeout 30 %s/bin/drvdom %s >>%s/drvdom.out 2>&1", build_dir(),
		 args, run);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void create_blkdom(const char *extra)
{
	write_file("blkdom.cfg",
		   "name = \"blkdom\"\ndriver_domain = 1\nkernel = \"drvdom-blkback\"\n%s\n",
		   extra ? extra : "");
	char a[256];
	snprintf(a, sizeof(a), "create %s/blkdom.cfg", run);
	T_ASSERT(drvdom(a) == 0, "drvdom create blkdom");
}

/* A guest running the test frontend in mode with the given disk specs. */
static void create_guest(const char *name, const char *mode, const char *disks)
{
	char cfg[64], a[256];
	snprintf(cfg, sizeof(cfg), "%s.cfg", name);
	write_file(cfg,
		   "name = \"%s\"\nkernel = \"%s/tests/bin/blkback_evilfront\"\n"
		   "extra_args = [ '%s' ]\nmemory = 64\ndisk = [ %s ]\n",
		   name, build_dir(), mode, disks);
	snprintf(a, sizeof(a), "create %s/%s", run, cfg);
	T_ASSERT(drvdom(a) == 0, "drvdom create %s", name);
}

/* Guest g1 running domain kernel mode MODE on a fresh 8 MiB g1.img
 * served by blkdom. */
static void guest_g1(const char *mode)
{
	make_disk("g1.img", 8);
	char disks[512];
	snprintf(disks, sizeof(disks), "'target=%s/g1.img, vdev=xvda, access=rw, backend=blkdom'",
		 run);
	create_guest("g1", mode, disks);
}

static int domid_of(const char *name)
{
	unsigned n = 0;
	char **doms = xs_directory(xs, XBT_NULL, "/local/domain", &n);
	int id = -1;
	for (unsigned i = 0; doms && i < n && id < 0; i++) {
		char p[128];
		snprintf(p, sizeof(p), "/local/domain/%s/name", doms[i]);
		unsigned len;
		char *v = xs_read(xs, XBT_NULL, p, &len);
		if (v && !strcmp(v, name))
			id = atoi(doms[i]);
		free(v);
	}
	free(doms);
	return id;
}

/* The value of /local/domain/<name's id>/rel, malloc'ed, or NULL. */
static char *dom_read(const char *name, const char *rel)
{
	int id = domid_of(name);
	if (id < 0)
		return NULL;
	char p[192];
	snprintf(p, sizeof(p), "/local/domain/%d/%s", id, rel);
	unsigned len;
	return xs_read(xs, XBT_NULL, p, &len);
}

/* Wait for a guest's data/result; malloc'ed, or NULL after ms. */
static char *wait_result(const char *name, unsigned ms)
{
	for (unsigned t = 0; t < ms; t += 50) {
		char *v = dom_read(name, "data/result");
		if (v)
			return v;
		sleep_ms(50);
	}
	return NULL;
}

static void assert_result_ok(const char *name, unsigned ms)
{
	char *v = wait_result(name, ms);
	char msg[400];
	snprintf(msg, sizeof(msg), "%s: %s", name, v ? v : "no result");
	bool ok = v && !strcmp(v, "ok");
	free(v);
	T_ASSERT(ok, "%s", msg);
}

static bool domain_running(const char *name)
{
	char cmd[512], line[512];
	snprintf(cmd, sizeof(cmd), "timeout 10 %s/bin/drvdom list 2>/dev/null", build_dir());
	FILE *p = popen(cmd, "r");
	bool found = false;
	while (p && fgets(line, sizeof(line), p)) {
		char id[16], n[80], role[16], state[16];
		if (sscanf(line, "%15s %79s %15s %15s", id, n, role, state) == 4 &&
		    !strcmp(n, name) && !strcmp(state, "running"))
			found = true;
	}
	if (p)
		pclose(p);
	return found;
}

/* The pattern the test frontend writes at sector 64 of each read-write
 * disk (its fill() with seed = devid), checked in the file itself. */
static bool disk_has_pattern(const char *rel, unsigned devid)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", run, rel);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return false;
	static uint8_t buf[11 * 4096];
	bool ok = pread(fd, buf, sizeof(buf), 64 * 512) == (ssize_t)sizeof(buf);
	close(fd);
	uint64_t seed = devid;
	for (unsigned i = 0; ok && i < 11; i++)
		for (unsigned j = 0; ok && j < 4096; j++)
			ok = buf[i * 4096 + j] ==
			     (uint8_t)((seed * 131 + i * 4096 + j) * 2654435761u >> 13);
	return ok;
}

/* Whether blkdom's process has the disk file open (the hv keeps a copy of
 * assigned fds for restarts, so the file's lock says nothing about blkdom). */
static bool blkdom_holds(const char *rel)
{
	char p[256], line[512], want[256];
	int pid = -1;
	snprintf(p, sizeof(p), "%s/hv.log", run);
	FILE *f = fopen(p, "r");
	while (f && fgets(line, sizeof(line), f)) {
		const char *m = strstr(line, "(blkdom): created, pid ");
		if (m)
			pid = atoi(m + strlen("(blkdom): created, pid "));
	}
	if (f)
		fclose(f);
	if (pid <= 0)
		return false;
	snprintf(want, sizeof(want), "%s/%s", run, rel);
	for (int fd = 0; fd < 1024; fd++) {
		char link[64], target[512];
		snprintf(link, sizeof(link), "/proc/%d/fd/%d", pid, fd);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (!strcmp(target, want))
			return true;
	}
	return false;
}

static bool wait_node(const char *path, const char *want, unsigned ms)
{
	for (unsigned t = 0; t < ms; t += 20) {
		unsigned len;
		char *v = xs_read(xs, XBT_NULL, path, &len);
		bool ok = v && !strcmp(v, want);
		free(v);
		if (ok)
			return true;
		sleep_ms(20);
	}
	return false;
}

/* Two guests at once on one blkdom: one negotiating every feature (order-2
 * rings, 2 queues, persistent grants, indirect, discard, flush), one the
 * legacy single page ring; data lands in the files. */
START_TEST(test_good_two_guests)
{
	env_up();
	/* Every read and write through the io_uring here; the other tests use
	 * the inline RWF_NOWAIT path as well. */
	create_blkdom("extra_args = [ '--no-inline-io' ]");
	make_disk("g1.img", 8);
	make_disk("g2.img", 8);
	char disks[512];
	snprintf(disks, sizeof(disks), "'target=%s/g1.img, vdev=xvda, access=rw, backend=blkdom'",
		 run);
	create_guest("g1", "good", disks);
	snprintf(disks, sizeof(disks), "'target=%s/g2.img, vdev=xvdb, access=rw, backend=blkdom'",
		 run);
	create_guest("g2", "simple", disks);
	assert_result_ok("g1", 30000);
	assert_result_ok("g2", 30000);
	T_ASSERT(disk_has_pattern("g1.img", 51712), "g1's writes are in g1.img");
	T_ASSERT(disk_has_pattern("g2.img", 51728), "g2's writes are in g2.img");

	/* drvdom-stats is there for drvdom top. */
	int g1 = domid_of("g1");
	char rel[128];
	snprintf(rel, sizeof(rel), "backend/vbd/%d/51712/drvdom-stats", g1);
	char *stats = dom_read("blkdom", rel);
	T_ASSERT(stats && strstr(stats, "reqs=") && strstr(stats, "queues=2") &&
		     strstr(stats, " inline_io=0"),
		 "drvdom-stats: %s", stats ? stats : "(none)");
	free(stats);

	/* Destroying a guest removes its backend directory: blkdom lets go of
	 * the device and keeps serving. */
	T_ASSERT(drvdom("destroy g1") == 0, "destroy g1");
	snprintf(rel, sizeof(rel), "backend/vbd/%d", g1);
	char *gone = dom_read("blkdom", rel);
	T_ASSERT(gone == NULL, "g1's backend directory removed");
	T_ASSERT(domain_running("blkdom"), "blkdom still running after g1 went away");
	env_down();
}
END_TEST

/* The body both inline-write tests share: a blkdom (with `extra`, if any)
 * and a guest running the "budget" workload on an 8 MiB disk; the guest's
 * inline counts in *small and *big (-1: not reported). Returns whether this
 * filesystem does non-blocking buffered writes (then blkback writes inline
 * with RWF_NOWAIT and the budget does not apply). */
static bool inline_budget_run(const char *extra, long *small, long *big)
{
	env_up();
	create_blkdom(extra);
	make_disk("b.img", 8);
	char p[256];
	snprintf(p, sizeof(p), "%s/b.img", run);
	int fd = open(p, O_RDWR);
	static char zero[4096];
	struct iovec iov = {zero, sizeof(zero)};
	bool nowait = fd >= 0 && pwritev2(fd, &iov, 1, (8 << 20) - 4096, RWF_NOWAIT) == 4096;
	if (fd >= 0)
		close(fd);
	char disks[256];
	snprintf(disks, sizeof(disks), "'target=%s/b.img, vdev=xvda, access=rw, backend=blkdom'",
		 run);
	create_guest("b", "budget", disks);
	assert_result_ok("b", 60000);
	char *sm = dom_read("b", "data/inline_small"), *bg = dom_read("b", "data/inline_big");
	*small = sm ? atol(sm) : -1;
	*big = bg ? atol(bg) : -1;
	free(sm);
	free(bg);
	return nowait;
}

/* Blocking inline writes (ext4 refuses RWF_NOWAIT writes) stay within the
 * per-round budget (BLKBACK_INLINE_ROUND_MAX, 256 KiB): of 32 writes of
 * 4 KiB taken in one round all are done inline, of 32 of 44 KiB at most 5,
 * the rest through the io_uring; every one reads back. */
START_TEST(test_inline_write_budget)
{
	long small, big;
	bool nowait = inline_budget_run(NULL, &small, &big);
	char p[256];
	/* A write slower than 2 ms (preemption on a loaded host) sends the
	 * device's writes to the io_uring for a while: fewer inline then. */
	snprintf(p, sizeof(p), "%s/console/blkdom.log", run);
	FILE *f = fopen(p, "r");
	char line[512];
	bool backed_off = false;
	while (f && fgets(line, sizeof(line), f))
		backed_off = backed_off || strstr(line, "in the loop: writes to the io_uring");
	if (f)
		fclose(f);
	fprintf(stderr, "inline writes: %ld/32 of 4 KiB, %ld/32 of 44 KiB%s%s\n", small, big,
		nowait ? " (RWF_NOWAIT writes)" : "", backed_off ? " (backed off)" : "");
	if (!nowait) {
		T_ASSERT(big >= 0 && big <= 5, "44 KiB writes inline within the budget: %ld", big);
		T_ASSERT(backed_off || (small == 32 && big >= 1),
			 "writes inline while within the budget: %ld small, %ld big", small, big);
	} else {
		T_ASSERT(small >= 0 && big >= 0, "inline counts reported");
	}
	env_down();
}
END_TEST

/* One blocking inline write made 50 ms slow (crash point slow-write:2:50,
 * as if throttled for dirty pages) sends the device's writes to the
 * io_uring for 0.1 s: of the 32 writes of 4 KiB in that round only the two
 * before it were inline; a second later the 44 KiB writes are inline again
 * (within the budget); the console says it once. */
START_TEST(test_inline_write_backoff)
{
	long small, big;
	bool nowait =
	    inline_budget_run("extra_args = [ '--crash-at', 'slow-write:2:50' ]", &small, &big);
	char p[256];
	snprintf(p, sizeof(p), "%s/console/blkdom.log", run);
	FILE *f = fopen(p, "r");
	char line[512];
	unsigned slow = 0, told = 0;
	while (f && fgets(line, sizeof(line), f)) {
		slow +=
		    strstr(line, "drvdom-crash-at: slow-write: inline write 2 takes 50") != NULL;
		told += strstr(line, "in the loop: writes to the io_uring") != NULL;
	}
	if (f)
		fclose(f);
	fprintf(stderr, "back-off: %ld/32 of 4 KiB inline, %ld/32 of 44 KiB%s\n", small, big,
		nowait ? " (RWF_NOWAIT writes: not tested here)" : "");
	if (!nowait) {
		T_ASSERT(slow == 1 && told == 1,
			 "the console tells the slow write (%u) and the "
			 "back-off (%u) once",
			 slow, told);
		/* (A write slowed by preemption before it: one fewer.) */
		T_ASSERT(small >= 1 && small <= 2, "inline writes stop after the slow one: %ld",
			 small);
		T_ASSERT(big >= 1 && big <= 5, "inline writes again after the back-off: %ld", big);
	}
	env_down();
}
END_TEST

/* A restarted blkdom finds backend directories a previous instance left,
 * in any state and with stale keys: it treats them as new (stale keys
 * removed, features published, InitWait) once its disk is assigned. The
 * leftovers are written before blkdom (domain 1 in a fresh run) exists. */
START_TEST(test_leftover_backend_dir)
{
	env_up();
	static const char *const kv[][2] = {
	    {"frontend", "/local/domain/2/device/vbd/51712"},
	    {"frontend-id", "2"},
	    {"state", "4"},
	    {"mode", "w"},
	    {"drvdom-device", "vbd/2/51712"},
	    {"sectors", "999"},
	    {"error", "stale"},
	    {"drvdom-stats", "reqs=42"},
	};
	const char *be = "/local/domain/1/backend/vbd/2/51712";
	struct xs_permissions perms[2] = {{.id = 1, .perms = XS_PERM_NONE},
					  {.id = 2, .perms = XS_PERM_READ}};
	const char *dirs[] = {"/local/domain/1/backend", "/local/domain/1/backend/vbd",
			      "/local/domain/1/backend/vbd/2", be};
	for (size_t i = 0; i < 4; i++)
		T_ASSERT(xs_mkdir(xs, XBT_NULL, dirs[i]) &&
			     xs_set_permissions(xs, XBT_NULL, dirs[i], perms, 2),
			 "mkdir %s", dirs[i]);
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
		char p[192];
		snprintf(p, sizeof(p), "%s/%s", be, kv[i][0]);
		T_ASSERT(xs_write(xs, XBT_NULL, p, kv[i][1], strlen(kv[i][1])) &&
			     xs_set_permissions(xs, XBT_NULL, p, perms, 2),
			 "write %s", p);
	}
	create_blkdom(NULL);
	T_ASSERT(domid_of("blkdom") == 1, "blkdom is domain 1");
	guest_g1("simple");
	T_ASSERT(domid_of("g1") == 2, "the guest is domain 2");
	assert_result_ok("g1", 30000);
	unsigned len;
	char p[192];
	snprintf(p, sizeof(p), "%s/error", be);
	char *err = xs_read(xs, XBT_NULL, p, &len);
	T_ASSERT(err == NULL, "stale error key removed (%s)", err ? err : "");
	snprintf(p, sizeof(p), "%s/sectors", be);
	char *sec = xs_read(xs, XBT_NULL, p, &len);
	bool ok = sec && !strcmp(sec, "16384");
	free(sec);
	T_ASSERT(ok, "sectors rewritten");
	env_down();
}
END_TEST

/* Detach as a toolstack does it (online = 0, the frontend closes): blkback
 * goes Closed only after closing its disk fd (the toolstack then revokes
 * the hv's copy, which frees the disk's lock). */
START_TEST(test_offline_releases_disk)
{
	env_up();
	create_blkdom(NULL);
	guest_g1("simple");
	assert_result_ok("g1", 30000);
	T_ASSERT(blkdom_holds("g1.img"), "blkdom holds the attached disk");
	int b = domid_of("blkdom"), g = domid_of("g1");
	char be[128], fe[128], p[192];
	snprintf(be, sizeof(be), "/local/domain/%d/backend/vbd/%d/51712", b, g);
	snprintf(fe, sizeof(fe), "/local/domain/%d/device/vbd/51712", g);
	snprintf(p, sizeof(p), "%s/online", be);
	T_ASSERT(xs_write(xs, XBT_NULL, p, "0", 1), "online = 0");
	snprintf(p, sizeof(p), "%s/state", fe);
	T_ASSERT(xs_write(xs, XBT_NULL, p, "5", 1), "frontend Closing");
	snprintf(p, sizeof(p), "%s/state", be);
	T_ASSERT(wait_node(p, "5", 10000), "backend Closing");
	snprintf(p, sizeof(p), "%s/state", fe);
	T_ASSERT(xs_write(xs, XBT_NULL, p, "6", 1), "frontend Closed");
	snprintf(p, sizeof(p), "%s/state", be);
	T_ASSERT(wait_node(p, "6", 10000), "backend Closed");
	T_ASSERT(!blkdom_holds("g1.img"), "blkdom released the disk when it said Closed");
	T_ASSERT(domain_running("blkdom"), "blkdom still running");
	env_down();
}
END_TEST

/* Handshakes blkback must refuse, each followed by a reconnect of the same
 * device, which then serves I/O: among them drvdom-rings (docs/recovery.md,
 * "Fast reconnect") well-formed but naming a ref or port that is not ours
 * (refused as the single keys would be) and malformed ones (a ref short,
 * a port too many, order or port out of range, a stray word, an overflow:
 * void, so the missing single keys are what is refused); the last connect
 * has a malformed drvdom-rings naming a ref and port not ours beside good
 * single keys, which blkback must use. */
START_TEST(test_bad_handshakes)
{
	env_up();
	create_blkdom(NULL);
	guest_g1("badhs");
	assert_result_ok("g1", 60000);
	T_ASSERT(disk_has_pattern("g1.img", 51712), "g1's writes are in g1.img");
	T_ASSERT(domain_running("blkdom"), "blkdom still running");
	env_down();
}
END_TEST

/* A frontend that publishes its rings in drvdom-rings alone (order-2
 * rings, 2 queues: eight refs in one list, two ports; no ring-ref,
 * event-channel, ring-page-order or queue keys): blkback connects from it
 * and serves I/O on both queues; its drvdom-connect, drvdom-features and
 * drvdom-instance are as they always were. */
START_TEST(test_rings_key_only)
{
	env_up();
	create_blkdom(NULL);
	guest_g1("rings");
	assert_result_ok("g1", 30000);
	T_ASSERT(disk_has_pattern("g1.img", 51712), "g1's writes are in g1.img");
	char *v = dom_read("g1", "device/vbd/51712/drvdom-rings");
	T_ASSERT(v && !strncmp(v, "order=2 queues=2 refs=", 22), "drvdom-rings: %s",
		 v ? v : "(none)");
	free(v);
	v = dom_read("g1", "device/vbd/51712/queue-0/ring-ref0");
	T_ASSERT(!v, "no single ring keys published");
	free(v);

	/* blkback's combined keys, to the letter (docs/recovery.md, "Fast
	 * reconnect"): a frontend or a restarted instance of another build
	 * reads them. */
	char rel[128], want[256];
	int g1 = domid_of("g1");
	snprintf(rel, sizeof(rel), "backend/vbd/%d/51712/feature-discard", g1);
	v = dom_read("blkdom", rel);
	T_ASSERT(v && (!strcmp(v, "0") || !strcmp(v, "1")), "feature-discard: %s",
		 v ? v : "(none)");
	int discard = atoi(v);
	free(v);
	snprintf(rel, sizeof(rel), "backend/vbd/%d/51712/drvdom-connect", g1);
	v = dom_read("blkdom", rel);
	snprintf(want, sizeof(want),
		 "sectors=16384 sector-size=512 info=0 feature-persistent=1 "
		 "feature-max-indirect-segments=256 feature-flush-cache=1 feature-barrier=0 "
		 "feature-discard=%d",
		 discard);
	T_ASSERT(v && !strcmp(v, want), "drvdom-connect: %s", v ? v : "(none)");
	free(v);
	snprintf(rel, sizeof(rel), "backend/vbd/%d/51712/drvdom-features", g1);
	v = dom_read("blkdom", rel);
	snprintf(want, sizeof(want),
		 "flush=1 discard=%d persistent=1 indirect=256 order=4 queues=4", discard);
	T_ASSERT(v && !strcmp(v, want), "drvdom-features: %s", v ? v : "(none)");
	free(v);
	snprintf(rel, sizeof(rel), "backend/vbd/%d/51712/drvdom-instance", g1);
	v = dom_read("blkdom", rel);
	T_ASSERT(v && v[0] && strspn(v, "0123456789abcdef") == strlen(v) && strlen(v) < 24,
		 "drvdom-instance: %s", v ? v : "(none)");
	free(v);
	env_down();
}
END_TEST

/* The fallback I/O path (a thread pool, for hosts that refuse io_uring)
 * with every feature of the good path. */
START_TEST(test_good_io_threads)
{
	env_up();
	create_blkdom("extra_args = [ '--no-inline-io', '--io-threads' ]");
	make_disk("g1.img", 8);
	char disks[512];
	snprintf(disks, sizeof(disks), "'target=%s/g1.img, vdev=xvda, access=rw, backend=blkdom'",
		 run);
	create_guest("g1", "good", disks);
	assert_result_ok("g1", 30000);
	T_ASSERT(disk_has_pattern("g1.img", 51712), "g1's writes are in g1.img");
	env_down();
}
END_TEST

/* The malicious frontend against one disk read-write and one read-only,
 * while another guest keeps doing verified I/O on the same blkdom. */
START_TEST(test_evil_frontend)
{
	env_up();
	create_blkdom(NULL);
	make_disk("other.img", 8);
	make_disk("evil.img", 8);
	make_disk("ro.img", 4);
	char disks[768];
	snprintf(disks, sizeof(disks),
		 "'target=%s/other.img, vdev=xvda, access=rw, backend=blkdom'", run);
	create_guest("other", "loop", disks);
	assert_result_ok("other", 30000);
	snprintf(disks, sizeof(disks),
		 "'target=%s/evil.img, vdev=xvda, access=rw, backend=blkdom', "
		 "'target=%s/ro.img, vdev=xvdb, access=ro, backend=blkdom'",
		 run, run);
	create_guest("evil", "evil", disks);
	assert_result_ok("evil", 60000);

	/* blkdom survived and the other guest's verified loop carries on. */
	T_ASSERT(domain_running("blkdom"), "blkdom still running");
	char *a = dom_read("other", "data/iter");
	sleep_ms(500);
	char *b = dom_read("other", "data/iter");
	long ia = a ? atol(a) : -1, ib = b ? atol(b) : -1;
	free(a);
	free(b);
	T_ASSERT(ia > 0 && ib > ia, "other guest's I/O carries on (%ld then %ld)", ia, ib);
	char *r = dom_read("other", "data/result");
	bool ok = r && !strcmp(r, "ok");
	free(r);
	T_ASSERT(ok, "other guest saw no error");
	int oid = domid_of("other");
	char rel[128];
	snprintf(rel, sizeof(rel), "backend/vbd/%d/51712/drvdom-stats", oid);
	char *stats = NULL;
	bool inl = false;
	for (int t = 0; t < 40 && !inl; t++) { /* rewritten every 0.5 s */
		free(stats);
		sleep_ms(100);
		stats = dom_read("blkdom", rel);
		inl = stats && strstr(stats, " inline_io=") && !strstr(stats, " inline_io=0");
	}
	T_ASSERT(inl, "cached reads and writes done inline: %s: %s", rel, stats ? stats : "(none)");
	free(stats);

	/* A guest crash (SIGKILL) does not disturb blkdom or the other guest,
	 * and blkdom lets go of the dead guest's still connected disk. */
	int eid = domid_of("evil");
	T_ASSERT(drvdom("kill evil") == 0, "drvdom kill evil");
	char ro_state[128];
	snprintf(ro_state, sizeof(ro_state), "/local/domain/%d/backend/vbd/%d/51728/state",
		 domid_of("blkdom"), eid);
	/* Closed, or gone: xenstored (started by drvdom up with
	 * --clean-dead-domains) removes the backend directories of a domain
	 * that died for good. */
	bool closed = false;
	for (unsigned t = 0; t < 10000 && !closed; t += 20) {
		unsigned len;
		char *v = xs_read(xs, XBT_NULL, ro_state, &len);
		closed = !v || !strcmp(v, "6");
		free(v);
		if (!closed)
			sleep_ms(20);
	}
	T_ASSERT(closed, "the dead guest's disk went Closed");
	sleep_ms(300);
	a = dom_read("other", "data/iter");
	sleep_ms(500);
	b = dom_read("other", "data/iter");
	ia = a ? atol(a) : -1, ib = b ? atol(b) : -1;
	free(a);
	free(b);
	T_ASSERT(ia > 0 && ib > ia, "other guest's I/O carries on after evil died (%ld then %ld)",
		 ia, ib);
	T_ASSERT(domain_running("blkdom"), "blkdom still running after evil died");
	env_down();
}
END_TEST

/* Whether the hv's log mentions s. */
static bool hv_log_has(const char *s)
{
	char p[256], line[512];
	snprintf(p, sizeof(p), "%s/hv.log", run);
	FILE *f = fopen(p, "r");
	bool hit = false;
	while (f && fgets(line, sizeof(line), f))
		hit = hit || strstr(line, s) != NULL;
	if (f)
		fclose(f);
	return hit;
}

/* The ring-progress watchdog trusts only blkdom's private bookkeeping: a
 * frontend playing with the shared indices (requests published without a
 * notification, scribbled event indices, req_prod flipped back and forth
 * until the ring breaks) never gets blkdom killed, with a watchdog of 1 s
 * that would catch any of it if blkdom counted the shared indices (short,
 * but not so short that a busy host delays a heartbeat past it). */
START_TEST(test_scribbler_not_stalled)
{
	env_up();
	create_blkdom("on_crash = \"restart\"\nwatchdog_ms = 1000");
	make_disk("evil.img", 8);
	char disks[512];
	snprintf(disks, sizeof(disks), "'target=%s/evil.img, vdev=xvda, access=rw, backend=blkdom'",
		 run);
	create_guest("evil", "scribble", disks);
	assert_result_ok("evil", 60000);
	sleep_ms(3000); /* three watchdog periods more */
	T_ASSERT(domain_running("blkdom"), "blkdom still running");
	T_ASSERT(!hv_log_has("ring progress") && !hv_log_has("(blkdom): crashed") &&
		     !hv_log_has("no heartbeat"),
		 "blkdom was never killed or restarted");
	T_ASSERT(hv_log_has("(blkdom): policy on_crash=restart max_restarts=5 window=60000 ms "
			    "watchdog=1000 ms"),
		 "blkdom ran with the watchdog on");
	env_down();
}
END_TEST

/* The ring-progress watchdog and the disk: an I/O that takes long but less
 * than the bound (slow-io holds one completion back 600 ms, watchdog 2000
 * ms) does not trip it, and all I/O completes; one that does not complete
 * within the bound while the disk completes nothing else (held 6 s,
 * watchdog 1000 ms) gets blkdom killed and restarted, the hv saying the
 * disk was idle. Every read and write goes through the io_uring
 * (--no-inline-io), as with a disk that is not in the page cache. */
START_TEST(test_slow_io_vs_watchdog)
{
	env_up();
	create_blkdom("on_crash = \"restart\"\nwatchdog_ms = 2000\n"
		      "extra_args = [ '--no-inline-io', '--crash-at', 'slow-io:1:600' ]");
	guest_g1("simple");
	assert_result_ok("g1", 60000);
	char p[256], line[512];
	snprintf(p, sizeof(p), "%s/console/blkdom.log", run);
	FILE *f = fopen(p, "r");
	bool held = false;
	while (f && fgets(line, sizeof(line), f))
		held = held || strstr(line, "slow-io: completion 1 held back 600 ms") != NULL;
	if (f)
		fclose(f);
	T_ASSERT(held, "blkdom held its first completion back");
	sleep_ms(1000);
	T_ASSERT(!hv_log_has("ring progress") && !hv_log_has("(blkdom): crashed"),
		 "a 600 ms I/O under a 2000 ms watchdog is not a stall");
	T_ASSERT(domain_running("blkdom"), "blkdom still running");
	env_down();

	env_up();
	create_blkdom("on_crash = \"restart\"\nwatchdog_ms = 1000\n"
		      "extra_args = [ '--no-inline-io', '--crash-at', 'slow-io:1:6000' ]");
	guest_g1("simple");
	bool killed = false;
	for (int t = 0; t < 300 && !killed; t++) {
		killed = hv_log_has("(blkdom): restarted");
		if (!killed)
			sleep_ms(50);
	}
	T_ASSERT(killed, "blkdom restarted for an I/O that does not complete");
	T_ASSERT(hv_log_has("(blkdom): ring progress: vbd/") && hv_log_has(" ms, disk idle ") &&
		     hv_log_has("(blkdom): crashed (ring progress stalled)"),
		 "the hv says why");
	T_ASSERT(!hv_log_has("no heartbeat"), "not a missed heartbeat");
	env_down();
}
END_TEST

/* drvdom-crash-at: blkdom aborts at each kind of point, set on its command
 * line or (the last case) through its xenstore key while it runs. */
START_TEST(test_crash_points)
{
	static const struct {
		const char *spec;
		bool via_xenstore;
	} cases[] = {{"request:3", false},
		     {"mid-batch:1", false},
		     {"after-io:2", false},
		     {"before-publish:2", false},
		     {"request:2", true}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		env_up();
		char extra[128] = "";
		if (!cases[i].via_xenstore)
			snprintf(extra, sizeof(extra), "extra_args = [ '--crash-at', '%s' ]",
				 cases[i].spec);
		create_blkdom(extra);
		if (cases[i].via_xenstore) {
			char p[96];
			snprintf(p, sizeof(p), "/local/domain/%d/drvdom-crash-at",
				 domid_of("blkdom"));
			T_ASSERT(xs_write(xs, XBT_NULL, p, cases[i].spec, strlen(cases[i].spec)),
				 "write %s", p);
		}
		make_disk("g1.img", 8);
		char disks[512];
		snprintf(disks, sizeof(disks),
			 "'target=%s/g1.img, vdev=xvda, access=rw, backend=blkdom'", run);
		create_guest("g1", "simple", disks);
		bool died = false;
		for (int t = 0; t < 200 && !died; t++) {
			died = !domain_running("blkdom");
			if (!died)
				sleep_ms(50);
		}
		T_ASSERT(died, "blkdom did not crash at %s", cases[i].spec);
		char p[256], line[512];
		snprintf(p, sizeof(p), "%s/console/blkdom.log", run);
		FILE *f = fopen(p, "r");
		bool said = false;
		while (f && fgets(line, sizeof(line), f))
			said = said || strstr(line, "drvdom-crash-at: crashing") != NULL;
		if (f)
			fclose(f);
		T_ASSERT(said, "blkdom's console names the crash point %s", cases[i].spec);
		env_down();
	}
}
END_TEST

Suite *blkback_suite(void);
Suite *blkback_suite(void)
{
	Suite *s = suite_create("blkback");
	TCase *tc = tcase_create("blkback");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_good_two_guests);
	tcase_add_test(tc, test_good_io_threads);
	tcase_add_test(tc, test_inline_write_budget);
	tcase_add_test(tc, test_inline_write_backoff);
	tcase_add_test(tc, test_leftover_backend_dir);
	tcase_add_test(tc, test_bad_handshakes);
	tcase_add_test(tc, test_rings_key_only);
	tcase_add_test(tc, test_offline_releases_disk);
	tcase_add_test(tc, test_evil_frontend);
	tcase_add_test(tc, test_scribbler_not_stalled);
	tcase_add_test(tc, test_slow_io_vs_watchdog);
	tcase_add_test(tc, test_crash_points);
	suite_add_tcase(s, tc);
	return s;
}
