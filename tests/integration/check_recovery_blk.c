// SPDX-License-Identifier: MIT
// Integration suite "recovery_blk" (issue 6, block side): the real drvdom
// CLI, drvdom-hv, drvdom-xenstored, drvdom-blkback as blkdom with
// on_crash = "restart", guests running blkfront, and a verified random
// 4 KiB read/write load through the guest's NBD export
// (tools/bench/recovery_load.c). blkdom is killed 20 times at random
// moments, then made to abort once at each deterministic crash point
// (request, mid-batch, after-io, before-publish, set through its
// drvdom-crash-at xenstore key): the client never sees an error, every read
// matches what was acknowledged, and `qemu-img compare` of the disk against
// the expected image passes. A guest killed: blkdom drops its devices and
// mappings, keeps serving the other guest, and the guest re-created
// attaches again. A warm spare takes over with the rings kept (fast
// reconnect). A crash loop: blkdom aborting at its first request every
// time is marked failed after crash_limit, and the NBD client gets EIO, not
// a hang. The ring-progress watchdog: a request blkdom takes and never
// answers (stall:N) under the load, or under qemu-io, gets it killed and
// restarted with the reason logged, and the client never sees an error.
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "frontends/nbd/nbd_proto.h"
#include "tests/integration/recovery_common.h"
#include "tests/integration/tooltest.h"
#include "tools/bench/recovery_load.h"
#include "tools/nbdc.h"

static struct tt T;

#define SH_OK(...)                                                                                 \
	do {                                                                                       \
		int rc_ = tt_sh(&T, __VA_ARGS__);                                                  \
		ck_assert_msg(rc_ == 0, "command failed (%d): %s", rc_, T.out);                    \
	} while (0)

static void blkdom(const char *extra)
{
	char cfg[1024];
	snprintf(cfg, sizeof(cfg),
		 "name = \"blkdom\"\ndriver_domain = 1\nkernel = \"drvdom-blkback\"\n"
		 "on_crash = \"restart\"\n%s\n",
		 extra);
	SH_OK("drvdom create %s", tt_file(&T, "blkdom.cfg", cfg));
}

static void guest_on_crash(const char *name, int mib, const char *on_crash)
{
	char cfg[1024], rel[64];
	SH_OK("truncate -s %dM %s/%s.img", mib, T.run, name);
	snprintf(cfg, sizeof(cfg),
		 "name = \"%s\"\non_crash = \"%s\"\n"
		 "disk = [ 'target=%s/%s.img, vdev=xvda, access=rw, backend=blkdom' ]\n",
		 name, on_crash, T.run, name);
	snprintf(rel, sizeof(rel), "%s.cfg", name);
	SH_OK("drvdom create %s", tt_file(&T, rel, cfg));
}

static void guest(const char *name, int mib)
{
	guest_on_crash(name, mib, "destroy");
}

static const char *sock_of(const char *name)
{
	static char p[256];
	snprintf(p, sizeof(p), "%s/%s/xvda.nbd", T.run, name);
	return p;
}

/* Wait until the load has completed more than `ops` operations. */
static void wait_progress(struct rl_blk *l, uint64_t ops, int timeout_ms, const char *what)
{
	for (int w = 0; w <= timeout_ms; w += 10) {
		if (atomic_load(&l->ops) > ops + 8)
			return;
		ck_assert_msg(atomic_load(&l->running), "the load stopped (%s): %s", what,
			      strerror(-l->err));
		rc_sleep_ms(10);
	}
	ck_abort_msg("no I/O completed within %d ms after %s", timeout_ms, what);
}

/* The end of every load: no error, every block reads back as acknowledged,
 * and qemu-img agrees on the disk file. */
static void finish_load(struct rl_blk *l, const char *name)
{
	int r = rl_blk_stop(l);
	ck_assert_msg(r == 0, "load: %s (nbd errors %lu, bad reads %lu)", strerror(-r),
		      (unsigned long)atomic_load(&l->nbd_errors),
		      (unsigned long)atomic_load(&l->bad_reads));
	char p[256];
	snprintf(p, sizeof(p), "%s/%s.expect", T.run, name);
	ck_assert_int_eq(rl_blk_write_expect(l, p), 0);
	SH_OK("qemu-img compare -f raw -F raw %s %s/%s.img", p, T.run, name);
	rl_blk_free(l);
}

START_TEST(test_random_kills)
{
	rc_up(&T);
	blkdom("crash_limit = \"1000/60\"");
	guest("g1", 16);
	struct rl_blk l;
	ck_assert_int_eq(rl_blk_start(&l, sock_of("g1"), 8, 1), 0);
	srand(4242);
	for (int k = 1; k <= 20; k++) {
		rc_sleep_ms(20 + rand() % 200);
		uint64_t before = atomic_load(&l.ops);
		SH_OK("drvdom kill blkdom");
		ck_assert_msg(rc_wait_running(&T, "blkdom", k, 10000) == 0,
			      "blkdom not restarted after kill %d: %s", k, T.out);
		wait_progress(&l, before, 10000, "a kill");
	}
	finish_load(&l, "g1");
	ck_assert_int_eq(rc_restarts(&T, "blkdom"), 20);
	tt_fini(&T);
}
END_TEST

/* Fast reconnect (docs/recovery.md): a warm spare takes over; blkfront
 * keeps its rings (drvdom-rings, which names every ring ref and port, is
 * the same before and after) and claims them for the new instance (its
 * drvdom-backend-instance names the new drvdom-instance, not the old one),
 * and the load carries on with no error and every block as acknowledged. */
START_TEST(test_fast_reconnect)
{
	rc_up(&T);
	blkdom("crash_limit = \"1000/60\"\nstandby = 1");
	guest("g1", 16);
	int bd = rc_domid(&T, "blkdom"), g = rc_domid(&T, "g1");
	char fe[128], be[128], p[256], rings[512], old[64];
	snprintf(fe, sizeof(fe), "/local/domain/%d/device/vbd/51712", g);
	snprintf(be, sizeof(be), "/local/domain/%d/backend/vbd/%d/51712", bd, g);
	struct rl_blk l;
	ck_assert_int_eq(rl_blk_start(&l, sock_of("g1"), 8, 7), 0);
	rc_sleep_ms(500); /* the spare parks */
	snprintf(p, sizeof(p), "%s/drvdom-rings", fe);
	snprintf(rings, sizeof(rings), "%s", rc_xs_read(&T, p));
	ck_assert_msg(!strncmp(rings, "order=", 6), "drvdom-rings: '%s'", rings);
	snprintf(p, sizeof(p), "%s/drvdom-instance", be);
	snprintf(old, sizeof(old), "%s", rc_xs_read(&T, p));
	ck_assert_msg(old[0], "no drvdom-instance in %s", be);
	snprintf(p, sizeof(p), "%s/drvdom-backend-instance", fe);
	ck_assert_str_eq(rc_xs_read(&T, p), old);

	uint64_t before = atomic_load(&l.ops);
	SH_OK("drvdom kill blkdom");
	ck_assert_msg(rc_wait_running(&T, "blkdom", 1, 10000) == 0, "blkdom not restarted: %s",
		      T.out);
	wait_progress(&l, before, 10000, "the failover");
	SH_OK("grep -q 'restarted on the standby instance' %s/hv.log", T.run);
	SH_OK("grep -q 'rings kept' %s/console/g1.log", T.run);
	snprintf(p, sizeof(p), "%s/drvdom-instance", be);
	char now[64];
	snprintf(now, sizeof(now), "%s", rc_xs_read(&T, p));
	ck_assert_msg(now[0] && strcmp(now, old), "instance %s after %s", now, old);
	snprintf(p, sizeof(p), "%s/drvdom-backend-instance", fe);
	ck_assert_str_eq(rc_xs_read(&T, p), now);
	snprintf(p, sizeof(p), "%s/drvdom-rings", fe);
	ck_assert_str_eq(rc_xs_read(&T, p), rings);
	finish_load(&l, "g1");
	tt_fini(&T);
}
END_TEST

START_TEST(test_crash_points)
{
	static const char *const specs[] = {"request:300", "mid-batch:20", "after-io:300",
					    "before-publish:300"};
	rc_up(&T);
	blkdom("crash_limit = \"1000/60\"");
	guest("g1", 16);
	int bd = rc_domid(&T, "blkdom");
	char key[96];
	snprintf(key, sizeof(key), "/local/domain/%d/drvdom-crash-at", bd);
	struct rl_blk l;
	ck_assert_int_eq(rl_blk_start(&l, sock_of("g1"), 8, 2), 0);
	int restarts = 0;
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		ck_assert_int_eq(rc_xs_write(&T, key, specs[i]), 0);
		/* It aborts by itself; the instance restarted reads the key
		 * again, so disarm it once the restart is seen (a second
		 * crash before that is harmless). */
		for (int w = 0; rc_restarts(&T, "blkdom") <= restarts; w += 20) {
			ck_assert_msg(w < 15000, "blkdom did not crash at %s", specs[i]);
			ck_assert_msg(atomic_load(&l.running), "load stopped: %s",
				      strerror(-l.err));
			rc_sleep_ms(20);
		}
		ck_assert_int_eq(rc_xs_write(&T, key, "request:999999999"), 0);
		restarts = rc_restarts(&T, "blkdom");
		ck_assert_msg(rc_wait_running(&T, "blkdom", restarts, 10000) == 0,
			      "blkdom not back after %s", specs[i]);
		restarts = rc_restarts(&T, "blkdom");
		wait_progress(&l, atomic_load(&l.ops), 10000, specs[i]);
	}
	SH_OK("grep -c 'drvdom-crash-at: crashing' %s/console/blkdom.log", T.run);
	ck_assert_msg(atoi(T.out) >= 4, "crash points seen: %s", T.out);
	finish_load(&l, "g1");
	tt_fini(&T);
}
END_TEST

/* The ring-progress watchdog (docs/recovery.md): with watchdog_ms set,
 * blkdom is told to take one request under the verified load and never
 * answer it (crash point stall:N) while its loop runs and heartbeats on.
 * Its progress check finds the request outstanding past the bound and asks
 * the hv to kill it; the hv logs the ring-progress reason (not a missed
 * heartbeat) and restarts it; blkfront replays the lost request and the
 * client sees no error, every block reads back as acknowledged. */
START_TEST(test_ring_stall)
{
	rc_up(&T);
	blkdom("crash_limit = \"1000/60\"\nwatchdog_ms = 2000");
	guest("g1", 16);
	int bd = rc_domid(&T, "blkdom");
	char key[96];
	snprintf(key, sizeof(key), "/local/domain/%d/drvdom-crash-at", bd);
	struct rl_blk l;
	ck_assert_int_eq(rl_blk_start(&l, sock_of("g1"), 8, 6), 0);
	rc_sleep_ms(200);
	ck_assert_int_eq(rc_xs_write(&T, key, "stall:200"), 0);
	/* Once the request is lost, disarm the key so the next instance does
	 * not lose one too (the lost one stays lost: the key only arms). */
	int w;
	for (w = 0; w < 15000; w += 20) {
		if (tt_sh(&T, "grep -q 'drvdom-crash-at: stall' %s/console/blkdom.log", T.run) == 0)
			break;
		ck_assert_msg(atomic_load(&l.running), "load stopped: %s", strerror(-l.err));
		rc_sleep_ms(20);
	}
	ck_assert_msg(w < 15000, "blkdom never reached its stall point");
	SH_OK("XENSTORED_PATH=%s/xenstored/socket xenstore-rm %s", T.run, key);
	ck_assert_msg(rc_wait_running(&T, "blkdom", 1, 20000) == 0,
		      "blkdom not killed and restarted for the lost request: %s", T.out);
	/* The hv names the reason, distinct from a missed heartbeat, and the
	 * request was outstanding at least the bound when it was reported. */
	SH_OK("grep 'ring progress: vbd/' %s/hv.log", T.run);
	const char *hit = strstr(T.out, "request outstanding ");
	ck_assert_msg(hit, "no request age in the hv log: %s", T.out);
	long ms = atol(hit + strlen("request outstanding "));
	ck_assert_msg(ms >= 2000, "reported after %ld ms, below the 2000 ms bound: %s", ms, T.out);
	ck_assert_msg(strstr(T.out, " ring ") && strstr(T.out, "(watchdog 2000 ms): killed"),
		      "hv log line: %s", T.out);
	ck_assert_int_ne(tt_sh(&T, "grep -q 'no heartbeat' %s/hv.log", T.run), 0);
	wait_progress(&l, atomic_load(&l.ops), 10000, "the ring-progress restart");
	finish_load(&l, "g1");
	ck_assert_int_ge(rc_restarts(&T, "blkdom"), 1);
	tt_fini(&T);
}
END_TEST

/* The same with qemu-io as the client: 64 pattern writes, one of them lost
 * by blkdom (stall:40) until the watchdog has it restarted and blkfront
 * replays it; qemu-io reports no error and reads every pattern back. */
START_TEST(test_ring_stall_qemu_io)
{
	rc_up(&T);
	blkdom("crash_limit = \"1000/60\"\nwatchdog_ms = 2000");
	guest("g1", 16);
	struct nbdc c;
	int r = nbdc_connect_wait(sock_of("g1"), 1, 10000, &c);
	ck_assert_msg(r == 0, "connect: %s", strerror(-r));
	nbdc_close(&c);
	char key[96];
	snprintf(key, sizeof(key), "/local/domain/%d/drvdom-crash-at", rc_domid(&T, "blkdom"));
	ck_assert_int_eq(rc_xs_write(&T, key, "stall:40"), 0);
	static char cmds[8192];
	size_t n = 0;
	for (int i = 0; i < 64; i++)
		n += (size_t)snprintf(cmds + n, sizeof(cmds) - n, " -c 'write -P 0x5a %dk 64k'",
				      i * 64);
	snprintf(cmds + n, sizeof(cmds) - n, " -c flush -c 'read -P 0x5a 0 4M'");
	/* The key is removed once the request is lost, so the next instance
	 * does not lose one too. */
	SH_OK("(for i in $(seq 1500); do grep -q 'drvdom-crash-at: stall' "
	      "%s/console/blkdom.log && break; sleep 0.01; done; "
	      "XENSTORED_PATH=%s/xenstored/socket xenstore-rm %s) & "
	      "qemu-io -f raw 'nbd+unix:///?socket=%s'%s 2>&1; rc=$?; wait; exit $rc",
	      T.run, T.run, key, sock_of("g1"), cmds);
	ck_assert_msg(!strstr(T.out, "failed") && !strstr(T.out, "rror"), "qemu-io: %s", T.out);
	ck_assert_msg(strstr(T.out, "read 4194304/4194304 bytes"), "qemu-io: %s", T.out);
	SH_OK("grep -c 'ring progress: vbd/' %s/hv.log", T.run);
	ck_assert_int_ge(rc_restarts(&T, "blkdom"), 1);
	SH_OK("grep -c 'drvdom-crash-at: stall' %s/console/blkdom.log", T.run);
	tt_fini(&T);
}
END_TEST

START_TEST(test_guest_crash)
{
	rc_up(&T);
	blkdom("crash_limit = \"1000/60\"");
	/* preserve: a crashed guest stays, dead, until `drvdom destroy`, the
	 * toolstack's cleanup (test_guest_crash_destroy: the default). */
	guest_on_crash("g1", 8, "preserve");
	guest("g2", 8);
	struct rl_blk l1, l2;
	ck_assert_int_eq(rl_blk_start(&l1, sock_of("g1"), 8, 3), 0);
	ck_assert_int_eq(rl_blk_start(&l2, sock_of("g2"), 8, 4), 0);
	rc_sleep_ms(200);
	int bd = rc_domid(&T, "blkdom"), g1 = rc_domid(&T, "g1");
	int bp = rc_dom_pid(&T, "blkdom");
	ck_assert_int_gt(bp, 0);
	char be[128];
	snprintf(be, sizeof(be), "/local/domain/%d/backend/vbd/%d", bd, g1);
	ck_assert_msg(rc_mapped_of(bp, g1) > 0, "blkdom maps nothing of g1 while it works");
	SH_OK("drvdom kill g1");
	/* g1's load fails (its NBD server is gone); g2's carries on. */
	rl_blk_free(&l1);
	int w;
	for (w = 0; w < 10000; w += 20) {
		const char *st = rc_xs_read(&T, be);
		SH_OK("XENSTORED_PATH=%s/xenstored/socket xenstore-ls %s 2>/dev/null | "
		      "grep -c 'state = \"[1-4]\"' || true",
		      T.run, be);
		if ((!*st || atoi(T.out) == 0) && rc_mapped_of(bp, g1) == 0)
			break;
		rc_sleep_ms(20);
	}
	ck_assert_msg(w < 10000, "blkdom still holds g1: mapped %ld, %s", rc_mapped_of(bp, g1),
		      T.out);
	ck_assert_int_eq(rc_dom_pid(&T, "blkdom"), bp); /* the same instance */
	uint64_t before = atomic_load(&l2.ops);
	wait_progress(&l2, before, 5000, "g1's crash");
	/* g1 re-created with the same config attaches again. */
	SH_OK("drvdom destroy g1");
	for (w = 0; w < 5000 && *rc_xs_read(&T, be); w += 20)
		rc_sleep_ms(20);
	ck_assert_msg(w < 5000, "g1's backend directory stays after destroy");
	SH_OK("drvdom create %s/g1.cfg", T.run);
	ck_assert_int_eq(rl_blk_start(&l1, sock_of("g1"), 4, 5), 0);
	rc_sleep_ms(300);
	finish_load(&l1, "g1");
	finish_load(&l2, "g2");
	tt_fini(&T);
}
END_TEST

/* How many devices the backend directory be lists (0: it is gone). */
static int be_devices(const char *be)
{
	SH_OK("XENSTORED_PATH=%s/xenstored/socket xenstore-ls %s 2>/dev/null | "
	      "grep -c 'frontend-id = ' || true",
	      T.run, be);
	return atoi(T.out);
}

/* The default on_crash = "destroy": the crashed guest goes at once, its
 * backend directory and the disk's lock with it, and the same config
 * creates it again and it attaches. */
START_TEST(test_guest_crash_destroy)
{
	rc_up(&T);
	blkdom("crash_limit = \"1000/60\"");
	guest("g1", 8);
	struct rl_blk l1;
	ck_assert_int_eq(rl_blk_start(&l1, sock_of("g1"), 8, 6), 0);
	rc_sleep_ms(200);
	int bd = rc_domid(&T, "blkdom"), g1 = rc_domid(&T, "g1");
	int bp = rc_dom_pid(&T, "blkdom");
	char be[128];
	snprintf(be, sizeof(be), "/local/domain/%d/backend/vbd/%d", bd, g1);
	ck_assert_int_gt(be_devices(be), 0);
	SH_OK("drvdom kill g1");
	rl_blk_free(&l1);
	int w;
	for (w = 0; w < 10000 && (be_devices(be) > 0 || rc_mapped_of(bp, g1) > 0); w += 20)
		rc_sleep_ms(20);
	ck_assert_msg(w < 10000, "g1's backend directory or mappings stay after its crash");
	ck_assert_int_eq(rc_dom_pid(&T, "blkdom"), bp); /* the same instance */
	SH_OK("drvdom create %s/g1.cfg", T.run);
	ck_assert_int_eq(rl_blk_start(&l1, sock_of("g1"), 4, 7), 0);
	rc_sleep_ms(300);
	finish_load(&l1, "g1");
	tt_fini(&T);
}
END_TEST

START_TEST(test_crash_loop)
{
	rc_up(&T);
	blkdom("crash_limit = \"3/60\"\nextra_args = [ '--crash-at', 'request:1' ]");
	guest("g1", 8);
	struct nbdc c;
	int r = nbdc_connect_wait(sock_of("g1"), 1, 10000, &c);
	ck_assert_msg(r == 0, "connect: %s", strerror(-r));
	struct timeval tv = {8, 0};
	setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	static unsigned char buf[4096];
	r = nbdc_pread(&c, buf, sizeof(buf), 0);
	/* The hv gives up after crash_limit and says so where frontends look. */
	const char *st = rc_field(&T, "blkdom", 3);
	ck_assert_msg(!strcmp(st, "failed"), "blkdom state '%s', want failed", st);
	char key[96];
	snprintf(key, sizeof(key), "/local/domain/%d/drvdom/state", rc_domid(&T, "blkdom"));
	ck_assert_str_eq(rc_xs_read(&T, key), "failed");
	/* The client gets a clean EIO (blkfront watches drvdom/state =
	 * failed and fails what its shadow held, and everything after). */
	ck_assert_msg(r == -EIO, "read with blkdom failed: %d (%s), want EIO", r, strerror(-r));
	r = nbdc_pread(&c, buf, sizeof(buf), 4096);
	ck_assert_msg(r == -EIO, "second read: %d (%s)", r, strerror(-r));
	nbdc_close(&c);
	tt_fini(&T);
}
END_TEST

Suite *recovery_blk_suite(void);
Suite *recovery_blk_suite(void)
{
	Suite *s = suite_create("recovery_blk");
	TCase *tc = tcase_create("recovery_blk");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_random_kills);
	tcase_add_test(tc, test_fast_reconnect);
	tcase_add_test(tc, test_crash_points);
	tcase_add_test(tc, test_ring_stall);
	tcase_add_test(tc, test_ring_stall_qemu_io);
	tcase_add_test(tc, test_guest_crash);
	tcase_add_test(tc, test_guest_crash_destroy);
	tcase_add_test(tc, test_crash_loop);
	suite_add_tcase(s, tc);
	return s;
}
