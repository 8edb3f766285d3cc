// SPDX-License-Identifier: MIT
// Integration suite "twodom": the real drvdom-hv with two real domains
// (twodom_producer, twodom_consumer: static kernels from build/tests/bin),
// driven as domain 0 through the domain-side library. The two exchange
// data over a Xen-layout ring in a granted segment with an event channel
// and verify it; the results come back through their console logs
// (RUN/console/NAME.log). Cases: 1 GiB with the consumer mapping the data
// pages; 256 MiB with the consumer using grant copy; the consumer (the
// mapper) SIGKILLed mid-stream: the producer sees its port closed (back to
// unbound) and ends every grant; the producer SIGKILLed mid-stream: the
// consumer sees its port closed. Domids are deterministic in a fresh hv
// (1, 2, ...), which is how each domain learns its peer's id from argv.
#include "hv/hvc.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct tdom {
	domid_t domid;
	int exited;
	uint16_t reason;
	int32_t status;
};

static struct {
	char dir[256];
	char run[512];
	pid_t hv_pid;
	struct hvc *h;
	struct tdom prod, cons;
} T;

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static const char *build_dir(void)
{
	const char *b = getenv("DRVDOM_BUILD");
	return b ? b : "build";
}

static void on_exit_evt(void *arg, const struct hv_evt_domain_exit *e)
{
	(void)arg;
	struct tdom *d = e->domid == T.prod.domid   ? &T.prod
			 : e->domid == T.cons.domid ? &T.cons
						    : NULL;
	if (!d)
		return;
	d->exited = 1;
	d->reason = e->reason;
	d->status = e->status;
}

static void hv_start(void)
{
	char prog[PATH_MAX], log[PATH_MAX], sock[PATH_MAX];
	snprintf(T.dir, sizeof(T.dir), "/tmp/drvdom-twodom-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(T.dir));
	chmod(T.dir, 0755);
	snprintf(T.run, sizeof(T.run), "%s/run", T.dir);
	ck_assert_int_eq(mkdir(T.run, 0700), 0);
	snprintf(prog, sizeof(prog), "%s/bin/drvdom-hv", build_dir());
	snprintf(log, sizeof(log), "%s/hv.log", T.dir);
	snprintf(sock, sizeof(sock), "%s/hv/socket", T.run);
	T.hv_pid = fork();
	ck_assert_int_ge(T.hv_pid, 0);
	if (T.hv_pid == 0) {
		int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (lfd >= 0) {
			dup2(lfd, 1);
			dup2(lfd, 2);
		}
		execl(prog, prog, "--run-dir", T.run, "--foreground", (char *)NULL);
		_exit(127);
	}
	int r = -ENOENT;
	for (int i = 0; i < 500; i++) {
		r = hvc_open_dom0(sock, &T.h);
		if (r == 0)
			break;
		int st;
		ck_assert_msg(waitpid(T.hv_pid, &st, WNOHANG) != T.hv_pid,
			      "drvdom-hv exited (status %#x), see %s", st, log);
		sleep_ms(10);
	}
	ck_assert_msg(r == 0, "cannot connect to %s: %s", sock, strerror(-r));
	hvc_set_domain_exit_cb(T.h, on_exit_evt, NULL);
	ck_assert_int_eq(hvc_domctl_subscribe(T.h), 0);
}

static void hv_stop(void)
{
	hvc_close(T.h);
	T.h = NULL;
	kill(T.hv_pid, SIGTERM);
	int st;
	for (int i = 0; i < 500; i++) {
		if (waitpid(T.hv_pid, &st, WNOHANG) == T.hv_pid)
			goto gone;
		sleep_ms(10);
	}
	kill(T.hv_pid, SIGKILL);
	waitpid(T.hv_pid, &st, 0);
gone:
	if (!getenv("TWODOM_KEEP")) {
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.dir);
		(void)!system(cmd);
	}
}

static domid_t create(const char *name, const char *kernel, const char *const *argv)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/tests/bin/%s", build_dir(), kernel);
	struct hvc_create_args a = {.kernel = path, .argv = argv, .name = name};
	struct hv_create_rep rep;
	int r = hvc_domctl_create(T.h, &a, &rep);
	ck_assert_msg(r == 0, "create %s: %s", name, strerror(-r));
	return rep.domid;
}

/* Start producer (domid 1) and consumer (domid 2) in a fresh hv. */
static void start_pair(const char *mode, const char *prod_mib, const char *cons_mib)
{
	memset(&T.prod, 0, sizeof(T.prod));
	memset(&T.cons, 0, sizeof(T.cons));
	const char *pargv[] = {"2", prod_mib, NULL};
	T.prod.domid = create("producer", "twodom_producer", pargv);
	ck_assert_msg(T.prod.domid == 1, "first domid of a fresh hv is %u, not 1", T.prod.domid);
	char peer[16];
	snprintf(peer, sizeof(peer), "%u", T.prod.domid);
	const char *cargv[] = {peer, mode, cons_mib, NULL};
	T.cons.domid = create("consumer", "twodom_consumer", cargv);
	ck_assert_msg(T.cons.domid == 2, "second domid is %u, not 2", T.cons.domid);
}

/* Dispatch hv events until cond() or the deadline (seconds). */
static int wait_for(int (*cond)(void), int secs)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!cond()) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= secs)
			return 0;
		struct pollfd p = {.fd = hvc_fd(T.h), .events = POLLIN};
		poll(&p, 1, 100);
		ck_assert_int_ge(hvc_dispatch(T.h), 0);
	}
	return 1;
}

static int both_exited(void)
{
	return T.prod.exited && T.cons.exited;
}

static int prod_exited(void)
{
	return T.prod.exited;
}

static int cons_exited(void)
{
	return T.cons.exited;
}

/* The whole console log of a domain (static buffer). */
static const char *console(const char *name)
{
	static char buf[2][65536];
	static int which;
	char *b = buf[which ^= 1];
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/console/%s.log", T.run, name);
	b[0] = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return b;
	ssize_t n = read(fd, b, sizeof(buf[0]) - 1);
	close(fd);
	b[n > 0 ? n : 0] = 0;
	return b;
}

/* The value of key=... on the line starting with prefix, or NULL. */
static const char *field(const char *log, const char *prefix, const char *key, char *out,
			 size_t cap)
{
	const char *line = strstr(log, prefix);
	if (!line)
		return NULL;
	const char *eol = strchr(line, '\n');
	char k[64];
	snprintf(k, sizeof(k), " %s=", key);
	const char *p = strstr(line, k);
	if (!p || (eol && p > eol))
		return NULL;
	p += strlen(k);
	size_t n = strcspn(p, " \n");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = 0;
	return out;
}

static void exchange(const char *mode, const char *mib)
{
	hv_start();
	start_pair(mode, mib, mib);
	int ok = wait_for(both_exited, 240);
	const char *plog = console("producer"), *clog = console("consumer");
	ck_assert_msg(ok, "domains did not finish.\nproducer:\n%s\nconsumer:\n%s", plog, clog);
	ck_assert_msg(T.prod.reason == HV_EXIT_EXITED && T.prod.status == 0,
		      "producer exit reason %u status %d:\n%s", T.prod.reason, T.prod.status, plog);
	ck_assert_msg(T.cons.reason == HV_EXIT_EXITED && T.cons.status == 0,
		      "consumer exit reason %u status %d:\n%s", T.cons.reason, T.cons.status, clog);
	char pb[64], cb[64], ps[64], cs[64], ce[64], pe[64];
	ck_assert_msg(field(plog, "PRODUCER done", "bytes", pb, sizeof(pb)), "producer:\n%s", plog);
	ck_assert_msg(field(clog, "CONSUMER done", "bytes", cb, sizeof(cb)), "consumer:\n%s", clog);
	unsigned long long want = strtoull(mib, NULL, 10) << 20;
	ck_assert_uint_eq(strtoull(pb, NULL, 10), want);
	ck_assert_uint_eq(strtoull(cb, NULL, 10), want);
	ck_assert_ptr_nonnull(field(clog, "CONSUMER done", "errors", ce, sizeof(ce)));
	ck_assert_str_eq(ce, "0");
	ck_assert_ptr_nonnull(field(plog, "PRODUCER done", "sum", ps, sizeof(ps)));
	ck_assert_ptr_nonnull(field(clog, "CONSUMER done", "sum", cs, sizeof(cs)));
	ck_assert_str_eq(ps, cs);
	/* While the consumer mapped the ring, ending its grant was refused and
	 * the hv's status bits showed: ring read-write (permit|reading|
	 * writing); data read-only (permit|readonly), plus reading when
	 * mapped rather than copied. */
	char v[64];
	ck_assert_str_eq(field(plog, "PRODUCER done", "ring-end-access", v, sizeof(v)), "-16");
	ck_assert_str_eq(field(plog, "PRODUCER done", "flags", v, sizeof(v)),
			 strcmp(mode, "map") ? "0x5/0x19" : "0xd/0x19");
	/* After the consumer unmapped and left, every grant could be ended. */
	ck_assert_msg(field(plog, "PRODUCER grants-ended", "x", pe, sizeof(pe)) ||
			  strstr(plog, "PRODUCER grants-ended=129/129"),
		      "producer:\n%s", plog);
	ck_assert_ptr_null(strstr(plog, "FAIL"));
	ck_assert_ptr_null(strstr(clog, "FAIL"));
	fprintf(stderr, "twodom %s: %s", mode, strstr(clog, "CONSUMER done"));
	hv_stop();
}

START_TEST(exchange_1gib_mapped)
{
	exchange("map", "1024");
}
END_TEST

START_TEST(exchange_256mib_grant_copy)
{
	exchange("copy", "256");
}
END_TEST

/* On a stall, TWODOM_HANG=1 keeps everything alive for a debugger. */
static void stall_diag(void)
{
	struct hv_domain_info di[8];
	uint32_t n = 0;
	if (hvc_domctl_list(T.h, di, 8, &n) == 0)
		for (uint32_t i = 0; i < n; i++)
			fprintf(stderr, "twodom stall: dom %u %s pid %d state %u\n", di[i].domid,
				di[i].name, di[i].pid, di[i].state);
	if (getenv("TWODOM_HANG"))
		sleep(600);
}

static int cons_progress(void)
{
	return strstr(console("consumer"), "CONSUMER progress") != NULL || T.cons.exited ||
	       T.prod.exited;
}

static int prod_progress(void)
{
	return cons_progress();
}

START_TEST(kill_mapper_midstream)
{
	hv_start();
	start_pair("map", "endless", "endless");
	if (!wait_for(cons_progress, 60))
		stall_diag();
	ck_assert_msg(!T.cons.exited && !T.prod.exited && cons_progress(),
		      "no progress.\nproducer:\n%s\nconsumer:\n%s", console("producer"),
		      console("consumer"));
	ck_assert_int_eq(hvc_domctl_kill(T.h, T.cons.domid), 0);
	ck_assert(wait_for(cons_exited, 30));
	ck_assert_uint_eq(T.cons.reason, HV_EXIT_KILLED);
	ck_assert_int_eq(T.cons.status, SIGKILL);
	int ok = wait_for(prod_exited, 30);
	const char *plog = console("producer");
	ck_assert_msg(ok && T.prod.reason == HV_EXIT_EXITED && T.prod.status == 0,
		      "producer did not finish cleanly:\n%s", plog);
	ck_assert_msg(strstr(plog, "PRODUCER peer-closed") != NULL, "producer:\n%s", plog);
	char v[64];
	ck_assert_str_eq(field(plog, "PRODUCER peer-closed", "status", v, sizeof(v)), "unbound");
	ck_assert_str_eq(field(plog, "PRODUCER peer-closed", "ended", v, sizeof(v)), "129/129");
	ck_assert_str_eq(field(plog, "PRODUCER peer-closed", "seg-free", v, sizeof(v)), "0");
	fprintf(stderr, "twodom kill mapper: %s", strstr(plog, "PRODUCER peer-closed"));
	hv_stop();
}
END_TEST

START_TEST(kill_granter_midstream)
{
	hv_start();
	start_pair("map", "endless", "endless");
	if (!wait_for(prod_progress, 60))
		stall_diag();
	ck_assert_msg(!T.cons.exited && !T.prod.exited && prod_progress(),
		      "no progress.\nproducer:\n%s\nconsumer:\n%s", console("producer"),
		      console("consumer"));
	ck_assert_int_eq(hvc_domctl_kill(T.h, T.prod.domid), 0);
	ck_assert(wait_for(prod_exited, 30));
	ck_assert_uint_eq(T.prod.reason, HV_EXIT_KILLED);
	int ok = wait_for(cons_exited, 30);
	const char *clog = console("consumer");
	ck_assert_msg(ok && T.cons.reason == HV_EXIT_EXITED && T.cons.status == 0,
		      "consumer did not finish cleanly:\n%s", clog);
	char v[64];
	ck_assert_msg(field(clog, "CONSUMER peer-closed", "status", v, sizeof(v)), "consumer:\n%s",
		      clog);
	ck_assert_str_eq(v, "unbound");
	fprintf(stderr, "twodom kill granter: %s", strstr(clog, "CONSUMER peer-closed"));
	hv_stop();
}
END_TEST

Suite *twodom_suite(void);
Suite *twodom_suite(void)
{
	Suite *s = suite_create("twodom");
	TCase *tc = tcase_create("exchange");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, exchange_1gib_mapped);
	tcase_add_test(tc, exchange_256mib_grant_copy);
	suite_add_tcase(s, tc);
	tc = tcase_create("kill");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, kill_mapper_midstream);
	tcase_add_test(tc, kill_granter_midstream);
	suite_add_tcase(s, tc);
	return s;
}
