// SPDX-License-Identifier: MIT
// End-to-end tests of drvdom-xenstored: each case starts the real daemon
// from $DRVDOM_BUILD/bin on a socket in a fresh temp dir, then talks to it
// with Debian's xenstore-utils (via XENSTORED_PATH), with our client
// library, with a program written for Xen's libxenstore API compiled
// against our header, and with raw malformed xs_wire messages. Every bad
// input must get Xen's error or a dropped connection while the daemon keeps
// serving other clients. The "client" case puts our library in front of a
// scripted peer instead, which answers out of turn.
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv/hvc.h"
#include "tests/integration/xstest.h"
#include "xenstore/include/xenstore.h"

static char tmpdir[64], sockpath[128];
static pid_t daemon_pid = -1;

static int raw_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, sockpath);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	struct timeval tv = {15, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static void start_daemon(void)
{
	const char *build = getenv("DRVDOM_BUILD");
	ck_assert_msg(build != NULL, "DRVDOM_BUILD not set");
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/drvdom-xs-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(sockpath, sizeof(sockpath), "%s/sock", tmpdir);
	char bin[4096], log[128];
	snprintf(bin, sizeof(bin), "%s/bin/drvdom-xenstored", build);
	snprintf(log, sizeof(log), "%s/log", tmpdir);
	daemon_pid = fork();
	ck_assert_int_ge(daemon_pid, 0);
	if (daemon_pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		execl(bin, bin, "--socket", sockpath, "--foreground", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		int fd = raw_connect();
		if (fd >= 0) {
			close(fd);
			setenv("XENSTORED_PATH", sockpath, 1);
			return;
		}
		usleep(10000);
	}
	ck_abort_msg("drvdom-xenstored did not come up on %s", sockpath);
}

static void stop_daemon(void)
{
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGTERM);
		waitpid(daemon_pid, NULL, 0);
		daemon_pid = -1;
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0) {
		/* Leftovers in /tmp are harmless. */
	}
}

static bool daemon_alive(void)
{
	return waitpid(daemon_pid, NULL, WNOHANG) == 0;
}

/* Run a shell command (with a timeout), capture stdout; exit status. */
static int sh(const char *cmd, char *out, size_t sz)
{
	char full[8192];
	snprintf(full, sizeof(full), "timeout 30 %s", cmd);
	FILE *f = popen(full, "r");
	ck_assert_ptr_nonnull(f);
	size_t n = out ? fread(out, 1, sz - 1, f) : 0;
	if (out)
		out[n] = 0;
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* --- raw wire helpers -------------------------------------------------------- */

static void raw_send(int fd, uint32_t type, uint32_t tx, const void *body, uint32_t len)
{
	char buf[sizeof(struct xsd_sockmsg) + 8192];
	struct xsd_sockmsg h = {type, 9, tx, len};
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), body, len);
	ck_assert_int_eq(send(fd, buf, sizeof(h) + len, MSG_NOSIGNAL), (ssize_t)(sizeof(h) + len));
}

static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n <= 0)
			return n == 0 ? 0 : -errno;
		p += n;
		len -= (size_t)n;
	}
	return 1;
}

/* 1 with a message, 0 at EOF, -errno (e.g. -EAGAIN on timeout). */
static int raw_recv(int fd, struct xsd_sockmsg *h, char *body)
{
	int r = read_full(fd, h, sizeof(*h));
	if (r <= 0)
		return r;
	ck_assert_uint_le(h->len, XENSTORE_PAYLOAD_MAX);
	r = read_full(fd, body, h->len);
	body[h->len] = 0;
	return r;
}

static void expect_err(int fd, uint32_t type, uint32_t tx, const void *body, uint32_t len,
		       const char *err)
{
	struct xsd_sockmsg h;
	char b[XENSTORE_PAYLOAD_MAX + 1];
	raw_send(fd, type, tx, body, len);
	ck_assert_int_eq(raw_recv(fd, &h, b), 1);
	ck_assert_uint_eq(h.type, XS_ERROR);
	ck_assert_str_eq(b, err);
}

/* Another client still gets served. */
static void assert_serving(void)
{
	ck_assert(daemon_alive());
	struct xs_handle *h = xs_open(0);
	ck_assert_ptr_nonnull(h);
	ck_assert(xs_write(h, XBT_NULL, "/alive", "yes", 3));
	unsigned int len;
	char *v = xs_read(h, XBT_NULL, "/alive", &len);
	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(v, "yes");
	free(v);
	xs_close(h);
}

/* --- xenstore-utils ------------------------------------------------------------ */

START_TEST(utils_write_read_ls_list_exists_rm)
{
	char out[4096];
	ck_assert_int_eq(sh("xenstore-write /tool/a 1 /tool/b two", out, sizeof(out)), 0);
	ck_assert_int_eq(sh("xenstore-read /tool/a /tool/b", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "1\ntwo\n");
	ck_assert_int_eq(sh("xenstore-ls /tool", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "a = \"1\"\nb = \"two\"\n");
	ck_assert_int_eq(sh("xenstore-ls", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "tool = \"\"\n a = \"1\"\n b = \"two\"\n");
	ck_assert_int_eq(sh("xenstore-list /tool", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "a\nb\n");
	ck_assert_int_eq(sh("xenstore-exists /tool/a", out, sizeof(out)), 0);
	ck_assert_int_ne(sh("xenstore-exists /tool/zz", out, sizeof(out)), 0);
	ck_assert_int_ne(sh("xenstore-read /tool/zz 2>/dev/null", out, sizeof(out)), 0);
	ck_assert_int_eq(sh("xenstore-rm /tool/a", out, sizeof(out)), 0);
	ck_assert_int_ne(sh("xenstore-exists /tool/a", out, sizeof(out)), 0);
	ck_assert_int_eq(sh("xenstore-list /tool", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "b\n");
	ck_assert_int_ne(sh("xenstore-write /bad//path x 2>/dev/null", out, sizeof(out)), 0);
}
END_TEST

/* A directory larger than one payload: Xen's libxenstore (inside the
 * utils) falls back to XS_DIRECTORY_PART, which must page correctly. */
START_TEST(utils_list_large_directory)
{
	char out[16384];
	ck_assert_int_eq(
	    sh("sh -c 'for i in $(seq 1 300); do echo /big/entry-with-a-long-name-$i x;"
	       " done | xargs xenstore-write'",
	       out, sizeof(out)),
	    0);
	ck_assert_int_eq(sh("sh -c 'xenstore-list /big | wc -l'", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "300\n");
	ck_assert_int_eq(
	    sh("sh -c 'xenstore-list /big | sort -t- -k6 -n | tail -1'", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "entry-with-a-long-name-300\n");
}
END_TEST

START_TEST(utils_chmod_and_ls_p)
{
	char out[4096];
	ck_assert_int_eq(sh("xenstore-write /vm/k v", out, sizeof(out)), 0);
	ck_assert_int_eq(sh("xenstore-chmod /vm/k r3 w4", out, sizeof(out)), 0);
	ck_assert_int_eq(sh("xenstore-ls -p /vm", out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "k = \"v\""));
	ck_assert_ptr_nonnull(strstr(out, "(r3,w4)"));
	struct xs_handle *h = xs_open(0);
	unsigned int n;
	struct xs_permissions *p = xs_get_permissions(h, XBT_NULL, "/vm/k", &n);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(p[0].id, 3);
	ck_assert_uint_eq(p[0].perms, XS_PERM_READ);
	ck_assert_uint_eq(p[1].id, 4);
	ck_assert_uint_eq(p[1].perms, XS_PERM_WRITE);
	free(p);
	xs_close(h);
	ck_assert_int_ne(sh("xenstore-chmod /vm/k q3 2>/dev/null", out, sizeof(out)), 0);
}
END_TEST

START_TEST(utils_watch_sees_changes)
{
	char out[4096];
	FILE *w = popen("timeout 30 xenstore-watch -n 3 /wt", "r");
	ck_assert_ptr_nonnull(w);
	char line[256];
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), w)); /* the registration event */
	ck_assert_str_eq(line, "/wt\n");
	ck_assert_int_eq(sh("xenstore-write /wt/x 1", out, sizeof(out)), 0);
	ck_assert_int_eq(sh("xenstore-write /other 1", out, sizeof(out)), 0);
	ck_assert_int_eq(sh("xenstore-write /wt/y 2", out, sizeof(out)), 0);
	size_t n = fread(out, 1, sizeof(out) - 1, w);
	out[n] = 0;
	ck_assert_int_eq(pclose(w), 0);
	ck_assert_str_eq(out, "/wt/x\n/wt/y\n");
}
END_TEST

/* --- our client library -------------------------------------------------------- */

static char **wait_watch(struct xs_handle *h, int ms)
{
	struct pollfd p = {xs_fileno(h), POLLIN, 0};
	if (poll(&p, 1, ms) != 1)
		return NULL;
	return xs_check_watch(h);
}

START_TEST(library_basic_operations)
{
	struct xs_handle *h = xs_open(0);
	ck_assert_ptr_nonnull(h);
	ck_assert(xs_write(h, XBT_NULL, "/lib/a", "1", 1));
	ck_assert(xs_mkdir(h, XBT_NULL, "/lib/dir"));
	unsigned int n, len;
	char **d = xs_directory(h, XBT_NULL, "/lib", &n);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(d[0], "a");
	ck_assert_str_eq(d[1], "dir");
	free(d);
	char *v = xs_read(h, XBT_NULL, "/lib/dir", &len);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(len, 0);
	free(v);
	ck_assert_ptr_null(xs_read(h, XBT_NULL, "/lib/none", &len));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert(!xs_write(h, XBT_NULL, "/lib//x", "1", 1));
	ck_assert_int_eq(errno, EINVAL);
	struct xs_permissions p[2] = {{5, XS_PERM_NONE}, {6, XS_PERM_READ}};
	ck_assert(xs_set_permissions(h, XBT_NULL, "/lib/a", p, 2));
	ck_assert(xs_rm(h, XBT_NULL, "/lib/dir"));
	d = xs_directory(h, XBT_NULL, "/lib", &n);
	ck_assert_uint_eq(n, 1);
	free(d);
	/* A directory too big for one reply comes back through DIRECTORY_PART. */
	char path[64];
	for (int i = 0; i < 300; i++) {
		snprintf(path, sizeof(path), "/lib/big/entry-with-a-long-name-%03d", i);
		ck_assert(xs_write(h, XBT_NULL, path, "", 0));
	}
	d = xs_directory(h, XBT_NULL, "/lib/big", &n);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(n, 300);
	ck_assert_str_eq(d[299], "entry-with-a-long-name-299");
	free(d);
	char *dp = xs_get_domain_path(h, 7);
	ck_assert_str_eq(dp, "/local/domain/7");
	free(dp);
	char *q = xs_control_command(h, "quota", NULL, 0);
	ck_assert_ptr_nonnull(strstr(q, "nodes: 1000"));
	free(q);
	xs_close(h);
}
END_TEST

/* The batch helpers: ops filled from dir/key, read back as strict
 * unsigned decimals (a peer's keys are hostile: no sign, space, base
 * prefix or overflow), replies freed. */
START_TEST(library_batch_helpers)
{
	struct xs_handle *h = xs_open(0);
	ck_assert_ptr_nonnull(h);
	static const char *const vals[] = {"0", "42", "18446744073709551615", "-1", "+1",
					   " 1", "1 ", "18446744073709551616", "0x10", ""};
	enum { NV = sizeof(vals) / sizeof(vals[0]) };
	char paths[NV + 1][64], keys[NV + 1][8];
	struct xs_batch_op ops[NV + 1];
	for (unsigned i = 0; i < NV; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%u", i);
		xs_batch_write(&ops[i], paths[i], sizeof(paths[i]), "/bh", keys[i], vals[i]);
	}
	ck_assert(xs_batch(h, XBT_NULL, ops, NV));
	for (unsigned i = 0; i < NV; i++) {
		ck_assert_int_eq(ops[i].err, 0);
		xs_batch_read(&ops[i], paths[i], sizeof(paths[i]), "/bh", keys[i]);
	}
	xs_batch_read(&ops[NV], paths[NV], sizeof(paths[NV]), "/bh", "none");
	ck_assert(xs_batch(h, XBT_NULL, ops, NV + 1));
	static const uint64_t want[] = {0, 42, UINT64_MAX};
	for (unsigned i = 0; i < NV; i++) {
		ck_assert_str_eq(ops[i].reply, vals[i]);
		uint64_t v;
		int r = xs_batch_uint(&ops[i], 7, &v);
		if (i < 3) {
			ck_assert_int_eq(r, 0);
			ck_assert_uint_eq(v, want[i]);
		} else {
			ck_assert_msg(r == -EINVAL && v == 7, "'%s' read as %d/%llu", vals[i], r,
				      (unsigned long long)v);
		}
	}
	uint64_t v;
	ck_assert_int_eq(xs_batch_uint(&ops[NV], 9, &v), -ENOENT);
	ck_assert_uint_eq(v, 9);
	xs_batch_free(ops, NV + 1);
	for (unsigned i = 0; i <= NV; i++)
		ck_assert_ptr_null(ops[i].reply);
	xs_close(h);
}
END_TEST

START_TEST(library_batch_pipelines_in_order)
{
	struct xs_handle *h = xs_open(0), *o = xs_open(0);
	ck_assert_ptr_nonnull(h);
	ck_assert(xs_write(h, XBT_NULL, "/batch/old", "x", 1));
	/* Reads, a failing read, a directory, writes and a watch at once:
	 * each op gets its own reply, in order. */
	struct xs_batch_op ops[] = {
	    {.type = XS_READ, .path = "/batch/old"},
	    {.type = XS_READ, .path = "/batch/none"},
	    {.type = XS_WRITE, .path = "/batch/a", .data = "1", .len = 1},
	    {.type = XS_WRITE, .path = "/batch//bad", .data = "1", .len = 1},
	    {.type = XS_WATCH, .path = "/batch/a", .data = "tok"},
	    {.type = XS_DIRECTORY, .path = "/batch"},
	    {.type = XS_RM, .path = "/batch/old"},
	};
	unsigned n = sizeof(ops) / sizeof(ops[0]);
	ck_assert(xs_batch(h, XBT_NULL, ops, n));
	ck_assert_int_eq(ops[0].err, 0);
	ck_assert_str_eq(ops[0].reply, "x");
	ck_assert_uint_eq(ops[0].reply_len, 1);
	ck_assert_int_eq(ops[1].err, ENOENT);
	ck_assert_ptr_null(ops[1].reply);
	ck_assert_int_eq(ops[2].err, 0);
	ck_assert_int_eq(ops[3].err, EINVAL);
	ck_assert_int_eq(ops[4].err, 0);
	ck_assert_int_eq(ops[5].err, 0);
	/* "a" was written before the directory was read, "old" removed after. */
	ck_assert_uint_eq(ops[5].reply_len, 6);
	ck_assert(!memcmp(ops[5].reply, "a\0old\0", 6) || !memcmp(ops[5].reply, "old\0a\0", 6));
	ck_assert_int_eq(ops[6].err, 0);
	for (unsigned i = 0; i < n; i++)
		free(ops[i].reply);
	unsigned len, num;
	ck_assert_ptr_null(xs_read(o, XBT_NULL, "/batch/old", &len));
	char **ev = xs_read_watch(h, &num); /* the watch's first event */
	ck_assert_ptr_nonnull(ev);
	ck_assert_str_eq(ev[XS_WATCH_TOKEN], "tok");
	free(ev);
	/* A transaction's writes and its end in two batches: nothing shows
	 * before the commit. Plain calls go on after a batch. */
	xs_transaction_t t = xs_transaction_start(h);
	ck_assert_uint_ne(t, XBT_NULL);
	struct xs_batch_op w[] = {{.type = XS_WRITE, .path = "/batch/t1", .data = "a", .len = 1},
				  {.type = XS_WRITE, .path = "/batch/t2", .data = "b", .len = 1}};
	ck_assert(xs_batch(h, t, w, 2));
	ck_assert_int_eq(w[0].err, 0);
	ck_assert_int_eq(w[1].err, 0);
	ck_assert_ptr_null(xs_read(o, XBT_NULL, "/batch/t1", &len));
	struct xs_batch_op e = {.type = XS_TRANSACTION_END, .path = "T"};
	ck_assert(xs_batch(h, t, &e, 1));
	ck_assert_int_eq(e.err, 0);
	char *v = xs_read(o, XBT_NULL, "/batch/t2", &len);
	ck_assert_str_eq(v, "b");
	free(v);
	v = xs_read(h, XBT_NULL, "/batch/t1", &len);
	ck_assert_str_eq(v, "a");
	free(v);
	/* Too many ops: nothing sent. */
	struct xs_batch_op many[XS_BATCH_MAX + 1];
	for (unsigned i = 0; i <= XS_BATCH_MAX; i++)
		many[i] = (struct xs_batch_op){.type = XS_READ, .path = "/batch/t1"};
	ck_assert(!xs_batch(h, XBT_NULL, many, XS_BATCH_MAX + 1));
	ck_assert_int_eq(errno, E2BIG);
	ck_assert(xs_batch(h, XBT_NULL, many, XS_BATCH_MAX));
	for (unsigned i = 0; i < XS_BATCH_MAX; i++) {
		ck_assert_int_eq(many[i].err, 0);
		ck_assert_str_eq(many[i].reply, "a");
		free(many[i].reply);
	}
	xs_close(o);
	xs_close(h);
}
END_TEST

/* A caller reads its own reply (docs/xenstore.md, "Who reads"): watch events
 * that arrive between a request and its reply are queued by the caller, in
 * order and none lost, while another handle floods the watched directory;
 * and after a call the reader thread has the transport again, so an event
 * that follows the last call still makes xs_fileno() readable. */
#define CR_EVENTS 2000

static atomic_bool cr_flood_done;

static void *cr_flood(void *arg)
{
	(void)arg;
	struct xs_handle *w = xs_open(0);
	char path[64];
	for (int i = 0; w && i < CR_EVENTS; i++) {
		snprintf(path, sizeof(path), "/cr/ev/%04d", i);
		if (!xs_write(w, XBT_NULL, path, "v", 1))
			break;
	}
	xs_close(w);
	atomic_store(&cr_flood_done, true);
	return NULL;
}

START_TEST(library_caller_reads_watch_events_in_order)
{
	struct xs_handle *h = xs_open(0), *o = xs_open(0);
	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_nonnull(o);
	ck_assert(xs_write(o, XBT_NULL, "/cr/ref", "ref-value", 9));
	ck_assert(xs_watch(h, "/cr/ev", "tok")); /* starts the reader thread */
	char **e = wait_watch(h, 5000);		 /* the registration event */
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e[XS_WATCH_PATH], "/cr/ev");
	free(e);
	atomic_store(&cr_flood_done, false);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, cr_flood, NULL), 0);
	/* Round trips on h while the events pour in: each reply is read by
	 * this thread, with whatever events came before it. */
	unsigned reads = 0;
	while (!atomic_load(&cr_flood_done) || reads < 100) {
		unsigned int len;
		char *v = xs_read(h, XBT_NULL, "/cr/ref", &len);
		ck_assert_msg(v != NULL, "xs_read: %s", strerror(errno));
		ck_assert_str_eq(v, "ref-value");
		free(v);
		reads++;
	}
	pthread_join(t, NULL);
	char want[64];
	for (int i = 0; i < CR_EVENTS; i++) {
		e = wait_watch(h, 5000);
		snprintf(want, sizeof(want), "/cr/ev/%04d", i);
		ck_assert_msg(e != NULL, "event %s lost (%u reads)", want, reads);
		ck_assert_str_eq(e[XS_WATCH_PATH], want);
		ck_assert_str_eq(e[XS_WATCH_TOKEN], "tok");
		free(e);
	}
	ck_assert_ptr_null(xs_check_watch(h));
	ck_assert_int_eq(errno, EAGAIN);
	/* After each call the reader sleeps on the transport again. */
	for (int i = 0; i < 20; i++) {
		unsigned int len;
		free(xs_read(h, XBT_NULL, "/cr/ref", &len));
		snprintf(want, sizeof(want), "/cr/ev/after-%d", i);
		ck_assert(xs_write(o, XBT_NULL, want, "", 0));
		e = wait_watch(h, 5000);
		ck_assert_msg(e != NULL, "event %s not seen after a call", want);
		ck_assert_str_eq(e[XS_WATCH_PATH], want);
		free(e);
	}
	xs_close(h);
	xs_close(o);
}
END_TEST

START_TEST(library_transactions_conflict)
{
	struct xs_handle *a = xs_open(0), *b = xs_open(0);
	ck_assert(xs_write(a, XBT_NULL, "/tx/k", "0", 1));
	xs_transaction_t t = xs_transaction_start(a);
	ck_assert_uint_ne(t, XBT_NULL);
	unsigned int len;
	free(xs_read(a, t, "/tx/k", &len));
	ck_assert(xs_write(a, t, "/tx/k", "1", 1));
	ck_assert(xs_write(b, XBT_NULL, "/tx/k", "2", 1));
	ck_assert(!xs_transaction_end(a, t, false));
	ck_assert_int_eq(errno, EAGAIN);
	char *v = xs_read(b, XBT_NULL, "/tx/k", &len);
	ck_assert_str_eq(v, "2");
	free(v);
	/* Retry succeeds. */
	t = xs_transaction_start(a);
	free(xs_read(a, t, "/tx/k", &len));
	ck_assert(xs_write(a, t, "/tx/k", "3", 1));
	ck_assert(xs_transaction_end(a, t, false));
	v = xs_read(b, XBT_NULL, "/tx/k", &len);
	ck_assert_str_eq(v, "3");
	free(v);
	ck_assert(!xs_transaction_end(a, 999, false));
	ck_assert_int_eq(errno, ENOENT);
	xs_close(a);
	xs_close(b);
}
END_TEST

START_TEST(library_watches_and_domains)
{
	struct xs_handle *h = xs_open(0), *w = xs_open(0);
	ck_assert(xs_watch(w, "/lw", "tok"));
	char **e = wait_watch(w, 5000);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e[XS_WATCH_PATH], "/lw");
	ck_assert_str_eq(e[XS_WATCH_TOKEN], "tok");
	free(e);
	ck_assert_ptr_null(xs_check_watch(w));
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert(xs_write(h, XBT_NULL, "/lw/a", "1", 1));
	unsigned int num;
	e = xs_read_watch(w, &num);
	ck_assert_uint_eq(num, 2);
	ck_assert_str_eq(e[XS_WATCH_PATH], "/lw/a");
	free(e);
	ck_assert(xs_unwatch(w, "/lw", "tok"));
	ck_assert(!xs_unwatch(w, "/lw", "tok"));
	ck_assert_int_eq(errno, ENOENT);

	ck_assert(xs_watch(w, "@introduceDomain", "in"));
	ck_assert(xs_watch(w, "@releaseDomain", "out"));
	for (int i = 0; i < 2; i++)
		free(wait_watch(w, 5000));
	ck_assert(!xs_is_domain_introduced(h, 9));
	ck_assert(xs_introduce_domain(h, 9, 1234, 3));
	e = wait_watch(w, 5000);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e[XS_WATCH_PATH], "@introduceDomain");
	free(e);
	ck_assert(xs_is_domain_introduced(h, 9));
	ck_assert(xs_resume_domain(h, 9));
	ck_assert(xs_release_domain(h, 9));
	e = wait_watch(w, 5000);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e[XS_WATCH_PATH], "@releaseDomain");
	ck_assert_str_eq(e[XS_WATCH_TOKEN], "out");
	free(e);
	ck_assert(!xs_is_domain_introduced(h, 9));
	ck_assert(!xs_release_domain(h, 9));
	ck_assert_int_eq(errno, ENOENT);
	xs_close(h);
	xs_close(w);
}
END_TEST

/* A program written for Xen's libxenstore, built unchanged against ours. */
static const char compat_src[] =
    "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
    "#include <poll.h>\n#include <xenstore.h>\n"
    "int main(void)\n{\n"
    "\tstruct xs_handle *h = xs_open(0);\n"
    "\tif (!h) { perror(\"xs_open\"); return 1; }\n"
    "\txs_transaction_t t;\n"
    "\tdo {\n"
    "\t\tt = xs_transaction_start(h);\n"
    "\t\txs_write(h, t, \"/compat/x\", \"42\", 2);\n"
    "\t} while (!xs_transaction_end(h, t, false));\n"
    "\tunsigned int len, n;\n"
    "\tchar *v = xs_read(h, XBT_NULL, \"/compat/x\", &len);\n"
    "\tchar **d = xs_directory(h, XBT_NULL, \"/compat\", &n);\n"
    "\txs_watch(h, \"/compat\", \"t\");\n"
    "\tstruct pollfd p = { xs_fileno(h), POLLIN, 0 };\n"
    "\tpoll(&p, 1, 2000);\n"
    "\tchar **e = xs_check_watch(h);\n"
    "\tprintf(\"%s %u %s %s\\n\", v, n, d[0], e ? e[XS_WATCH_PATH] : \"none\");\n"
    "\tfree(v); free(d); free(e);\n"
    "\txs_close(h);\n\treturn 0;\n}\n";

START_TEST(xen_api_program_builds_and_runs)
{
	const char *build = getenv("DRVDOM_BUILD");
	char src[128], cmd[8192], out[256];
	snprintf(src, sizeof(src), "%s/compat.c", tmpdir);
	FILE *f = fopen(src, "w");
	ck_assert_ptr_nonnull(f);
	fputs(compat_src, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "cc -std=c11 -Wall -Werror -I%s/../xenstore/include %s -o %s/compat "
		 "%s/lib/libxenstore.a -lpthread 2>&1",
		 build, src, tmpdir, build);
	if (sh(cmd, out, sizeof(out)) != 0) {
		/* A SANITIZE=1 build's library needs the sanitizer runtimes. */
		snprintf(cmd, sizeof(cmd),
			 "cc -std=c11 -Wall -Werror -fsanitize=address,undefined "
			 "-I%s/../xenstore/include %s -o %s/compat %s/lib/libxenstore.a "
			 "-lpthread 2>&1",
			 build, src, tmpdir, build);
		ck_assert_msg(sh(cmd, out, sizeof(out)) == 0, "compile failed: %s", out);
	}
	snprintf(cmd, sizeof(cmd), "%s/compat", tmpdir);
	ck_assert_int_eq(sh(cmd, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "42 1 x /compat\n");
}
END_TEST

/* --- bad input -------------------------------------------------------------------- */

START_TEST(oversized_message_drops_connection)
{
	int fd = raw_connect();
	struct xsd_sockmsg h = {XS_READ, 1, 0, XENSTORE_PAYLOAD_MAX + 1};
	ck_assert_int_eq(send(fd, &h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
	char b[XENSTORE_PAYLOAD_MAX + 1];
	ck_assert_int_eq(raw_recv(fd, &h, b), 0); /* EOF: dropped */
	close(fd);
	assert_serving();
}
END_TEST

START_TEST(malformed_requests_get_errors)
{
	int fd = raw_connect();
	expect_err(fd, 77, 0, "/a", 3, "ENOSYS");
	expect_err(fd, XS_TYPE_COUNT, 0, "/a", 3, "ENOSYS");
	expect_err(fd, XS_READ, 0, "/a", 2, "EINVAL");	     /* no NUL */
	expect_err(fd, XS_WATCH, 0, "/a\0tok", 6, "EINVAL"); /* token lacks NUL */
	expect_err(fd, XS_READ, 0, "/a//b", 6, "EINVAL");    /* // */
	expect_err(fd, XS_WRITE, 0, "/a/\0x", 5, "EINVAL");  /* trailing / */
	expect_err(fd, XS_READ, 4711, "/", 2, "ENOENT");     /* bogus tx */
	expect_err(fd, XS_TRANSACTION_END, 4711, "T", 2, "ENOENT");
	char longp[XENSTORE_ABS_PATH_MAX + 8];
	memset(longp, 'a', sizeof(longp));
	longp[0] = '/';
	longp[XENSTORE_ABS_PATH_MAX + 1] = 0;
	expect_err(fd, XS_READ, 0, longp, XENSTORE_ABS_PATH_MAX + 2, "EINVAL");
	char rel[XENSTORE_REL_PATH_MAX + 8];
	memset(rel, 'r', sizeof(rel));
	rel[XENSTORE_REL_PATH_MAX + 1] = 0;
	expect_err(fd, XS_READ, 0, rel, XENSTORE_REL_PATH_MAX + 2, "EINVAL");
	/* The same connection still works. */
	struct xsd_sockmsg h;
	char b[XENSTORE_PAYLOAD_MAX + 1];
	raw_send(fd, XS_GET_DOMAIN_PATH, 0, "3", 2);
	ck_assert_int_eq(raw_recv(fd, &h, b), 1);
	ck_assert_uint_eq(h.type, XS_GET_DOMAIN_PATH);
	ck_assert_uint_eq(h.req_id, 9);
	ck_assert_str_eq(b, "/local/domain/3");
	close(fd);
	assert_serving();
}
END_TEST

START_TEST(watch_token_too_large_for_event)
{
	int fd = raw_connect();
	char body[XENSTORE_PAYLOAD_MAX];
	memcpy(body, "/big\0", 5);
	memset(body + 5, 't', XENSTORE_PAYLOAD_MAX - 6);
	body[XENSTORE_PAYLOAD_MAX - 1] = 0; /* the event for /big fills 4096 */
	raw_send(fd, XS_WATCH, 0, body, XENSTORE_PAYLOAD_MAX);
	struct xsd_sockmsg h;
	char b[XENSTORE_PAYLOAD_MAX + 1];
	ck_assert_int_eq(raw_recv(fd, &h, b), 1);
	ck_assert_str_eq(b, "OK");
	ck_assert_int_eq(raw_recv(fd, &h, b), 1);
	ck_assert_uint_eq(h.type, XS_WATCH_EVENT);
	ck_assert_uint_eq(h.len, XENSTORE_PAYLOAD_MAX);
	struct xs_handle *x = xs_open(0);
	ck_assert(xs_write(x, XBT_NULL, "/big/child", "1", 1)); /* event too large */
	ck_assert(xs_write(x, XBT_NULL, "/big", "1", 1));	/* fits */
	xs_close(x);
	ck_assert_int_eq(raw_recv(fd, &h, b), 1);
	ck_assert_uint_eq(h.type, XS_WATCH_EVENT);
	ck_assert_str_eq(b, "/big");
	close(fd);
	assert_serving();
}
END_TEST

/* The daemon's resident memory, or 0 for a sanitizer build (whose
 * quarantine makes RSS meaningless). */
static long daemon_rss_kb(void)
{
	char maps[64], cmd[128];
	snprintf(maps, sizeof(maps), "/proc/%d/maps", daemon_pid);
	snprintf(cmd, sizeof(cmd), "grep -q libasan %s", maps);
	if (system(cmd) == 0)
		return 0;
	char p[64], line[256];
	snprintf(p, sizeof(p), "/proc/%d/status", daemon_pid);
	FILE *f = fopen(p, "r");
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

START_TEST(client_that_never_reads_10000_requests)
{
	int fd = raw_connect();
	fcntl(fd, F_SETFL, O_NONBLOCK);
	char msg[sizeof(struct xsd_sockmsg) + 8];
	struct xsd_sockmsg h = {XS_GET_DOMAIN_PATH, 1, 0, 5};
	memcpy(msg, &h, sizeof(h));
	memcpy(msg + sizeof(h), "1234", 5);
	const size_t mlen = sizeof(h) + 5;
	/* Pipeline 10,000 requests without reading: the daemon stops reading us
	 * once our unread replies pile up, so our sends block (EAGAIN). */
	int sent = 0;
	time_t deadline = time(NULL) + 2;
	while (sent < 10000 && time(NULL) < deadline) {
		ssize_t n = send(fd, msg, mlen, MSG_NOSIGNAL);
		if (n == (ssize_t)mlen)
			sent++;
		else if (n < 0 && errno == EAGAIN)
			usleep(1000);
		else
			ck_abort_msg("send: %s", strerror(errno));
	}
	ck_assert_int_gt(sent, 1000);
	ck_assert_int_lt(sent, 10000); /* throttled */
	assert_serving();
	ck_assert_int_lt(daemon_rss_kb(), 64 * 1024);
	/* Now read: the daemon resumes and answers all 10,000, in order. */
	const size_t rlen = sizeof(h) + sizeof("/local/domain/1234");
	size_t got = 0;
	char buf[65536];
	deadline = time(NULL) + 20;
	while (got < 10000 * rlen && time(NULL) < deadline) {
		struct pollfd p = {fd, POLLIN | (sent < 10000 ? POLLOUT : 0), 0};
		poll(&p, 1, 100);
		if (sent < 10000 && send(fd, msg, mlen, MSG_NOSIGNAL) == (ssize_t)mlen)
			sent++;
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n > 0)
			got += (size_t)n;
	}
	ck_assert_int_eq(sent, 10000);
	ck_assert_uint_eq(got, 10000 * rlen);
	close(fd);
	assert_serving();
}
END_TEST

/* A watcher that never reads while 2000 big nodes change under it: the
 * daemon drops it before all its events arrive and keeps serving. */
static void flood_a_silent_watcher(void)
{
	int fd = raw_connect();
	raw_send(fd, XS_WATCH, 0, "/fl\0t", 6);
	struct xs_handle *x = xs_open(0);
	char path[3100];
	memset(path, 'p', sizeof(path));
	memcpy(path, "/fl/", 4);
	path[3000] = 0;
	size_t generated = 0;
	for (int i = 0; i < 2000; i++) {
		path[5] = (char)('a' + i % 26);
		path[6] = (char)('a' + (i / 26) % 26);
		path[7] = (char)('a' + (i / 676) % 26);
		ck_assert(xs_write(x, XBT_NULL, path, "v", 1));
		generated += 3000 + 20;
	}
	xs_close(x);
	/* Drain what it got: the connection ends before all events arrive. */
	char buf[65536];
	size_t got = 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		got += (size_t)n;
	ck_assert_int_eq(n, 0);
	ck_assert_uint_lt(got, generated);
	close(fd);
	assert_serving();
}

/* XS_CONTROL "memory": the daemon first waits for its deferred (RCU) frees,
 * so what it reports is what is live, with no reclamation still under way.
 * Heap bytes are 0 under a sanitizer (its allocator keeps no mallinfo). */
struct daemon_mem {
	unsigned long nodes, queued, heap;
};

static struct daemon_mem daemon_memory(void)
{
	struct daemon_mem m;
	struct xs_handle *x = xs_open(0);
	ck_assert_ptr_nonnull(x);
	char *r = xs_control_command(x, "memory", NULL, 0);
	ck_assert_msg(r != NULL, "control memory: %s", strerror(errno));
	ck_assert_msg(sscanf(r, "nodes: %lu\nqueued bytes: %lu\nheap bytes: %lu", &m.nodes,
			     &m.queued, &m.heap) == 3,
		      "%s", r);
	free(r);
	xs_close(x);
	return m;
}

START_TEST(watcher_that_never_reads_is_dropped)
{
	/* Each flood writes ~6 MB of nodes (the same 2000 paths each time)
	 * and queues more events than the 4 MiB cap; the dropped watcher's
	 * queue is freed when it is dropped, before it sees its end. */
	struct daemon_mem m0 = daemon_memory();
	flood_a_silent_watcher();
	struct daemon_mem m1 = daemon_memory();
	ck_assert_uint_ge(m1.nodes, m0.nodes + 2000 + 1); /* /fl and its children */
	ck_assert_uint_eq(m1.queued, 0);
	/* The next floods replace those nodes: nothing more is live after
	 * them (a leaked node version or queue grows the heap by a flood's
	 * worth, ~6 MB, each time; 512 KiB of slack for the hash table and
	 * the allocator's own bookkeeping). */
	flood_a_silent_watcher();
	struct daemon_mem m2 = daemon_memory();
	flood_a_silent_watcher();
	flood_a_silent_watcher();
	struct daemon_mem m4 = daemon_memory();
	ck_assert_uint_eq(m4.nodes, m1.nodes);
	ck_assert_uint_eq(m4.queued, 0);
	ck_assert_msg(m4.heap < m2.heap + 512 * 1024, "daemon heap grew from %lu to %lu bytes",
		      m2.heap, m4.heap);
}
END_TEST

START_TEST(watch_flooding_hits_the_limit)
{
	struct xs_handle *h = xs_open(0);
	char tok[32];
	int i;
	for (i = 0; i < 20000; i++) {
		snprintf(tok, sizeof(tok), "%d", i);
		if (!xs_watch(h, "/flood", tok))
			break;
	}
	ck_assert_int_eq(errno, E2BIG);
	ck_assert_int_eq(i, 8192);
	xs_close(h);
	assert_serving();
}
END_TEST

/* --- the library against a scripted peer ---------------------------------------- */

/* A peer that answers each request with replies to other requests first (a
 * late reply, an error, one nobody asked for): the library must take only
 * the reply echoing its request's req_id (docs/xenstore.md). Its socket
 * replaces the daemon's (XENSTORED_PATH); it runs in a thread and reports
 * what went wrong in peer_err. */
static int peer_lfd = -1;
static char peer_err[128];

static void peer_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/drvdom-xs-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(sockpath, sizeof(sockpath), "%s/peer", tmpdir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, sockpath);
	peer_lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(peer_lfd, 0);
	ck_assert_int_eq(bind(peer_lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(peer_lfd, 1), 0);
	setenv("XENSTORED_PATH", sockpath, 1);
}

static void peer_teardown(void)
{
	close(peer_lfd);
	unlink(sockpath);
	rmdir(tmpdir);
}

static bool peer_send(int fd, uint32_t type, uint32_t req_id, const char *body, uint32_t len)
{
	char buf[sizeof(struct xsd_sockmsg) + 256];
	struct xsd_sockmsg h = {type, req_id, 0, len};
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), body, len);
	return send(fd, buf, sizeof(h) + len, MSG_NOSIGNAL) == (ssize_t)(sizeof(h) + len);
}

/* The next request, which must be of type want. */
static bool peer_expect(int fd, uint32_t want, struct xsd_sockmsg *h)
{
	char b[XENSTORE_PAYLOAD_MAX + 1];
	if (read_full(fd, h, sizeof(*h)) != 1 || h->len > XENSTORE_PAYLOAD_MAX ||
	    read_full(fd, b, h->len) != 1 || h->type != want) {
		snprintf(peer_err, sizeof(peer_err), "expected request type %u, got %u", want,
			 h->type);
		return false;
	}
	return true;
}

static void *peer_main(void *arg)
{
	(void)arg;
	struct xsd_sockmsg h;
	int fd = accept(peer_lfd, NULL, NULL);
	if (fd < 0) {
		snprintf(peer_err, sizeof(peer_err), "accept: %s", strerror(errno));
		return NULL;
	}
	/* 1: a read answered after a late reply and an error of other requests. */
	if (!peer_expect(fd, XS_READ, &h) ||
	    !peer_send(fd, XS_READ, h.req_id + 1000, "stale-late", 10) ||
	    !peer_send(fd, XS_ERROR, h.req_id - 1, "EACCES", 7) ||
	    !peer_send(fd, XS_READ, h.req_id, "fresh", 5))
		goto out;
	/* 2: a watch (the reader thread takes over), then a reply nobody asked
	 * for, then the watch's event. */
	if (!peer_expect(fd, XS_WATCH, &h) || !peer_send(fd, XS_WATCH, h.req_id, "OK", 3) ||
	    !peer_send(fd, XS_READ, 0xdead0000u, "stale-idle", 10) ||
	    !peer_send(fd, XS_WATCH_EVENT, 0, "/w\0tok", 7))
		goto out;
	/* 3: a read through the reader thread, its reply after a stale one. */
	if (!peer_expect(fd, XS_READ, &h) ||
	    !peer_send(fd, XS_READ, h.req_id ^ 1, "stale-late", 10) ||
	    !peer_send(fd, XS_READ, h.req_id, "fresh2", 6))
		goto out;
	strcpy(peer_err, "ok");
out:
	if (!peer_err[0])
		snprintf(peer_err, sizeof(peer_err), "send: %s", strerror(errno));
	/* Until the client closes. */
	char c;
	while (read(fd, &c, 1) > 0)
		;
	close(fd);
	return NULL;
}

START_TEST(library_takes_only_the_reply_to_its_request)
{
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, peer_main, NULL), 0);
	struct xs_handle *x = xs_open(0);
	ck_assert_ptr_nonnull(x);
	unsigned int len;
	char *v = xs_read(x, XBT_NULL, "/a", &len);
	ck_assert_msg(v != NULL, "xs_read: %s", strerror(errno));
	ck_assert_str_eq(v, "fresh");
	free(v);
	ck_assert(xs_watch(x, "/w", "tok"));
	/* The event came after the unasked-for reply: it has been read. */
	unsigned int n;
	char **e = xs_read_watch(x, &n);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e[XS_WATCH_TOKEN], "tok");
	free(e);
	v = xs_read(x, XBT_NULL, "/b", &len);
	ck_assert_msg(v != NULL, "xs_read: %s", strerror(errno));
	ck_assert_str_eq(v, "fresh2");
	free(v);
	xs_close(x);
	pthread_join(t, NULL);
	ck_assert_str_eq(peer_err, "ok");
}
END_TEST

/* --- domains over rings, with the real drvdom-hv ------------------------------ */

static struct xst_env X;
static struct hvc *hv;

static void start_hv_and_daemon(void)
{
	xst_up(&X, "/tmp/drvdom-xsd-XXXXXX");
	/* The shared helpers (raw_connect, assert_serving, log_has) look here. */
	snprintf(tmpdir, sizeof(tmpdir), "%s", X.dir);
	snprintf(sockpath, sizeof(sockpath), "%s", X.xssock);
	daemon_pid = X.xsd_pid;
	hv = X.hv;
}

static void stop_hv_and_daemon(void)
{
	xst_down(&X);
	daemon_pid = -1;
	hv = NULL;
}

static domid_t create_dom(const char *name, const char *mode, struct hv_create_rep *rep)
{
	char kernel[4096];
	snprintf(kernel, sizeof(kernel), "%s/tests/bin/xs_dom", getenv("DRVDOM_BUILD"));
	const char *argv[] = {mode, NULL};
	struct hvc_create_args a = {.kernel = kernel, .argv = argv, .name = name};
	int ret = hvc_domctl_create(hv, &a, rep);
	ck_assert_msg(ret == 0, "DOMCTL_CREATE: %s", strerror(-ret));
	return rep->domid;
}

/* Dom0 prepares the domain's home and introduces it. */
static void introduce(struct xs_handle *x, domid_t d, const struct hv_create_rep *rep)
{
	char home[64];
	snprintf(home, sizeof(home), "/local/domain/%u", d);
	ck_assert(xs_mkdir(x, XBT_NULL, home));
	struct xs_permissions p = {d, XS_PERM_NONE};
	ck_assert(xs_set_permissions(x, XBT_NULL, home, &p, 1));
	ck_assert(xs_introduce_domain(x, d, rep->store_frame, rep->store_port));
}

/* A domain of xs_dom in mode, introduced: dom0's handle to watch it. */
static struct xs_handle *start_dom(const char *name, const char *mode, domid_t *d)
{
	struct hv_create_rep rep;
	*d = create_dom(name, mode, &rep);
	struct xs_handle *x = xs_open(0);
	ck_assert_ptr_nonnull(x);
	introduce(x, *d, &rep);
	return x;
}

static char *wait_node(struct xs_handle *x, const char *path, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		unsigned int len;
		char *v = xs_read(x, XBT_NULL, path, &len);
		if (v)
			return v;
		usleep(10000);
	}
	return NULL;
}

/* The domain's result node /local/domain/D/data/KEY, waited for up to
 * ms: it must come. */
static char *dom_data(struct xs_handle *x, domid_t d, const char *key, int ms)
{
	char path[96];
	snprintf(path, sizeof(path), "/local/domain/%u/data/%s", d, key);
	char *v = wait_node(x, path, ms);
	ck_assert_msg(v != NULL, "the domain never wrote %s", path);
	return v;
}

static bool log_has(const char *logname, const char *needle)
{
	char path[160], buf[65536];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, logname);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return strstr(buf, needle) != NULL;
}

START_TEST(domain_talks_over_its_ring)
{
	struct hv_create_rep rep;
	domid_t d = create_dom("xsdom", "basic", &rep);
	struct xs_handle *x = xs_open(0), *w = xs_open(0);
	ck_assert(xs_watch(w, "@releaseDomain", "rel"));
	free(wait_watch(w, 5000));
	/* A wrong frame is refused: the domain's identity is dom0's word. */
	ck_assert(!xs_introduce_domain(x, d, rep.store_frame + 1, rep.store_port));
	ck_assert_int_eq(errno, EINVAL);
	introduce(x, d, &rep);
	char path[96];
	char *v = dom_data(x, d, "done", 20000);
	ck_assert_str_eq(v, "ok:world");
	free(v);
	snprintf(path, sizeof(path), "/local/domain/%u/data/denied", d);
	v = wait_node(x, path, 1000);
	ck_assert_str_eq(v, "EACCES");
	free(v);
	/* What it wrote is its own. */
	snprintf(path, sizeof(path), "/local/domain/%u/data/hello", d);
	unsigned int n;
	struct xs_permissions *p = xs_get_permissions(x, XBT_NULL, path, &n);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p[0].id, d);
	free(p);
	/* Its death releases it: @releaseDomain fires, its nodes stay. */
	ck_assert_int_eq(hvc_domctl_kill(hv, d), 0);
	char **e = wait_watch(w, 5000);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e[XS_WATCH_PATH], "@releaseDomain");
	free(e);
	ck_assert(!xs_is_domain_introduced(x, d));
	v = wait_node(x, path, 10);
	ck_assert_str_eq(v, "world");
	free(v);
	xs_close(x);
	xs_close(w);
	assert_serving();
}
END_TEST

/* Inside a domain, with its reader thread running, a caller reads its own
 * reply over the ring: a read costs the domain at most one wake-up (the
 * caller's; the parked reader sleeps on), not two (the reader, which then
 * woke the caller), docs/xenstore.md "Who reads". A count of sleeps, not a
 * time: a loaded host can only lower it. And after the calls the reader is
 * back on the ring: an event that follows reaches the domain. */
START_TEST(domain_caller_reads_its_reply)
{
	domid_t d;
	struct xs_handle *x = start_dom("xswdom", "watched", &d);
	char path[96];
	char *v = dom_data(x, d, "wakes", 20000);
	long wakes = -1, reads = 0;
	ck_assert_int_eq(sscanf(v, "%ld %ld", &wakes, &reads), 2);
	free(v);
	ck_assert_int_gt(reads, 0);
	ck_assert_msg(wakes * 2 < reads * 3, "%ld wake-ups for %ld reads", wakes, reads);
	snprintf(path, sizeof(path), "/local/domain/%u/data/ev/after", d);
	ck_assert(xs_write(x, XBT_NULL, path, "", 0));
	snprintf(path, sizeof(path), "/local/domain/%u/data/event", d);
	v = wait_node(x, path, 10000);
	ck_assert_msg(v != NULL, "the event after the reads never reached the domain");
	ck_assert_str_eq(v, "data/ev/after");
	free(v);
	ck_assert_int_eq(hvc_domctl_kill(hv, d), 0);
	xs_close(x);
}
END_TEST

START_TEST(domain_flooding_watches_hits_its_quota)
{
	domid_t d;
	struct xs_handle *x = start_dom("xsflood", "flood", &d);
	char *v = dom_data(x, d, "watches", 20000);
	ck_assert_str_eq(v, "128 E2BIG");
	free(v);
	xs_close(x);
	assert_serving();
}
END_TEST

START_TEST(corrupted_ring_drops_only_that_domain)
{
	struct hv_create_rep rep1, rep2;
	domid_t bad = create_dom("xsbad", "corrupt", &rep1);
	domid_t good = create_dom("xsgood", "basic", &rep2);
	struct xs_handle *x = xs_open(0);
	introduce(x, bad, &rep1);
	introduce(x, good, &rep2);
	char path[96];
	snprintf(path, sizeof(path), "/local/domain/%u/data/hello", bad);
	char *v = wait_node(x, path, 20000);
	ck_assert_ptr_nonnull(v);
	free(v);
	bool dropped = false;
	for (int i = 0; i < 2000 && !dropped; i++) {
		dropped = log_has("xenstored.log", "corrupted request ring");
		usleep(10000);
	}
	ck_assert(dropped);
	snprintf(path, sizeof(path), "/local/domain/%u/data/done", good);
	v = wait_node(x, path, 20000);
	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(v, "ok:world");
	free(v);
	xs_close(x);
	assert_serving();
}
END_TEST

Suite *xenstore_daemon_suite(void);
Suite *xenstore_daemon_suite(void)
{
	Suite *s = suite_create("xenstore_daemon");
	TCase *tc = tcase_create("daemon");
	tcase_add_checked_fixture(tc, start_daemon, stop_daemon);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, utils_write_read_ls_list_exists_rm);
	tcase_add_test(tc, utils_list_large_directory);
	tcase_add_test(tc, utils_chmod_and_ls_p);
	tcase_add_test(tc, utils_watch_sees_changes);
	tcase_add_test(tc, library_basic_operations);
	tcase_add_test(tc, library_batch_helpers);
	tcase_add_test(tc, library_batch_pipelines_in_order);
	tcase_add_test(tc, library_caller_reads_watch_events_in_order);
	tcase_add_test(tc, library_transactions_conflict);
	tcase_add_test(tc, library_watches_and_domains);
	tcase_add_test(tc, xen_api_program_builds_and_runs);
	tcase_add_test(tc, oversized_message_drops_connection);
	tcase_add_test(tc, malformed_requests_get_errors);
	tcase_add_test(tc, watch_token_too_large_for_event);
	tcase_add_test(tc, client_that_never_reads_10000_requests);
	tcase_add_test(tc, watcher_that_never_reads_is_dropped);
	tcase_add_test(tc, watch_flooding_hits_the_limit);
	suite_add_tcase(s, tc);
	TCase *td = tcase_create("domains");
	tcase_add_checked_fixture(td, start_hv_and_daemon, stop_hv_and_daemon);
	tcase_set_timeout(td, 120);
	tcase_add_test(td, domain_talks_over_its_ring);
	tcase_add_test(td, domain_caller_reads_its_reply);
	tcase_add_test(td, corrupted_ring_drops_only_that_domain);
	tcase_add_test(td, domain_flooding_watches_hits_its_quota);
	suite_add_tcase(s, td);
	TCase *tp = tcase_create("client");
	tcase_add_checked_fixture(tp, peer_setup, peer_teardown);
	tcase_set_timeout(tp, 30);
	tcase_add_test(tp, library_takes_only_the_reply_to_its_request);
	suite_add_tcase(s, tp);
	return s;
}
