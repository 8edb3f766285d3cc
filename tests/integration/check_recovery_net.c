// SPDX-License-Identifier: MIT
// Integration suite "recovery_net" (issue 6, network side): the real drvdom
// CLI, drvdom-netback as netdom (on_crash = "restart") with a veth NIC into
// the run dir's wire namespace, guests running netfront. 200 MiB over TCP
// from a guest to the wire while netdom is killed 5 times: the transfer
// completes and the SHA-256 at both ends match, and each new instance
// kept the NIC's rx ring, and every reconnection took the fast path
// (docs/recovery.md, "Failover (network)"): netfront kept its rings, ports
// and keys, each new instance connected from them (drvdom-rings), and no
// instance ever took keys netfront had not reset yet; the same with a warm
// spare (standby = 1) taking over three times, and with two queues. A
// guest killed: netdom
// drops its vif (backend directory gone or closed, no mapping of the
// guest's memory left), keeps serving another guest, and the guest
// re-created with the same config connects again. A hostile drvdom-rings
// met by a warm spare's fast path is refused as at a first connection, and
// the guest is served again after a full handshake. Addresses are on
// 10.77.0.0/24 inside namespaces the toolstack creates.
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/recovery_common.h"
#include "tests/integration/tooltest.h"

static struct tt T;

#define SH_OK(...)                                                                                 \
	do {                                                                                       \
		int rc_ = tt_sh(&T, __VA_ARGS__);                                                  \
		ck_assert_msg(rc_ == 0, "command failed (%d): %s", rc_, T.out);                    \
	} while (0)

/* A TCP sink printing "bytes sha256", and a source sending MiB chunks of
 * seeded random data (a short pause every 4 MiB so the transfer lasts long
 * enough for the kills), printing the same. */
#define PY_SINK                                                                                    \
	"import socket,hashlib;s=socket.socket();"                                                 \
	"s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('0.0.0.0',%d));"            \
	"s.listen(1);c,_=s.accept();h=hashlib.sha256();n=0\n"                                      \
	"while True:\n b=c.recv(1<<20)\n if not b: break\n h.update(b);n+=len(b)\n"                \
	"print(n,h.hexdigest())"
#define PY_SOURCE                                                                                  \
	"import socket,hashlib,random,time;r=random.Random(7);h=hashlib.sha256();n=0\n"            \
	"for i in range(50):\n  try:\n   c=socket.create_connection(('%s',%d));break\n"            \
	"  except OSError: time.sleep(0.1)\n"                                                      \
	"for i in range(%d):\n b=r.randbytes(1<<20);c.sendall(b);h.update(b);n+=len(b)\n"          \
	" if i%%4==3: time.sleep(0.1)\n"                                                           \
	"c.close();print(n,h.hexdigest())"

static void netdom_with(const char *extra)
{
	char cfg[512];
	snprintf(cfg, sizeof(cfg),
		 "name = \"netdom\"\nkernel = \"drvdom-netback\"\ndriver_domain = 1\n"
		 "nic = \"veth:phys0, wire_ip=10.77.0.1/24\"\n"
		 "on_crash = \"restart\"\ncrash_limit = \"1000/60\"\n%s",
		 extra);
	SH_OK("drvdom create %s", tt_file(&T, "netdom.cfg", cfg));
}

static void netdom(void)
{
	netdom_with("");
}

static void guest(const char *name, unsigned host)
{
	char cfg[512], rel[64];
	snprintf(cfg, sizeof(cfg),
		 "name = \"%s\"\nkernel = \"drvdom-guest\"\n"
		 "vif = [ 'mac=00:16:3e:00:00:%02x, ip=10.77.0.%u/24, backend=netdom' ]\n",
		 name, host, host);
	snprintf(rel, sizeof(rel), "%s.cfg", name);
	SH_OK("drvdom create %s", tt_file(&T, rel, cfg));
}

static void wait_ping(const char *from, const char *to)
{
	for (int i = 0; i < 60; i++) {
		if (!tt_sh(&T, "drvdom exec %s -- ping -c 1 -W 1 %s", from, to))
			return;
		rc_sleep_ms(100);
	}
	ck_abort_msg("%s never reached %s: %s", from, to, T.out);
}

/* Every failover of g1's vif took the fast reconnect: netfront kept its
 * rings for each new instance, which connected from its drvdom-rings (as
 * the first did), netfront never fell back to the full handshake, and no
 * instance connected to keys of a connection to its predecessor (netback
 * refuses them now, so no "frontend closed its event channel"). */
static void fast_path_taken(int kills)
{
	SH_OK("grep -c 'kept rings taken by backend instance' %s/console/g1.log || true", T.run);
	ck_assert_msg(atoi(T.out) == kills, "kept rings taken %s times, %d kills", T.out, kills);
	SH_OK("grep -c 'resetting the connection' %s/console/g1.log || true", T.run);
	ck_assert_msg(atoi(T.out) == 0, "full handshakes: %s", T.out);
	SH_OK("grep -c 'connected (.*from drvdom-rings)' %s/console/netdom.log || true", T.run);
	ck_assert_msg(atoi(T.out) == kills + 1, "connections from drvdom-rings: %s", T.out);
	SH_OK("grep -c 'frontend closed its event channel' %s/console/netdom.log || true", T.run);
	ck_assert_msg(atoi(T.out) == 0, "instances that took unreset keys: %s", T.out);
}

/* MIB MiB over TCP from g1 to the wire while netdom is killed KILLS times,
 * GAP_MS apart once each restart is running: the transfer completes, both
 * ends' SHA-256 match, and every restarted instance kept the NIC's rx ring
 * (docs/netback.md "A kept rx ring") rather than making a new one. */
static void tcp_under_kills(unsigned mib, int kills, int gap_ms)
{
	wait_ping("g1", "10.77.0.1");
	char cmd[4096], sink[1024], source[1024], want[32];
	snprintf(sink, sizeof(sink), PY_SINK, 5301);
	snprintf(source, sizeof(source), PY_SOURCE, "10.77.0.1", 5301, (int)mib);
	snprintf(cmd, sizeof(cmd),
		 "drvdom exec wire -- python3 -c \"$(cat <<'EOF'\n%s\nEOF\n)\" > %s/sink.out & "
		 "sleep 0.3; drvdom exec g1 -- python3 -c \"$(cat <<'EOF'\n%s\nEOF\n)\" > "
		 "%s/source.out; wait",
		 sink, T.run, source, T.run);
	pid_t p = fork();
	ck_assert_int_ge(p, 0);
	if (p == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	rc_sleep_ms(800);
	int st = 0;
	for (int k = 1; k <= kills; k++) {
		SH_OK("drvdom kill netdom");
		ck_assert_msg(rc_wait_running(&T, "netdom", k, 10000) == 0,
			      "netdom not restarted after kill %d", k);
		rc_sleep_ms(gap_ms);
	}
	/* every kill hit the transfer */
	ck_assert_msg(waitpid(p, &st, WNOHANG) == 0, "the transfer ended before the last kill");
	ck_assert_int_eq(waitpid(p, &st, 0), p);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "transfer failed: %d", st);
	SH_OK("cat %s/sink.out %s/source.out", T.run, T.run);
	char a[128] = "", b[128] = "";
	ck_assert_msg(sscanf(T.out, "%127[^\n]\n%127[^\n]", a, b) == 2, "output: %s", T.out);
	snprintf(want, sizeof(want), "%llu ", (unsigned long long)mib << 20);
	ck_assert_msg(!strncmp(a, want, strlen(want)), "sink got %s", a);
	ck_assert_msg(!strcmp(a, b), "checksums differ: sink %s, source %s", a, b);
	ck_assert_int_eq(rc_restarts(&T, "netdom"), kills);
	SH_OK("grep -c \"previous instance's rx ring kept\" %s/console/netdom.log", T.run);
	ck_assert_msg(atoi(T.out) == kills, "kept rings: %s", T.out);
	fast_path_taken(kills);
}

START_TEST(test_tcp_200mib_kills)
{
	rc_up(&T);
	netdom();
	guest("g1", 2);
	tcp_under_kills(200, 5, 250);
	tt_fini(&T);
}
END_TEST

/* A warm spare takes over (standby = 1) three times, 800 ms apart (the
 * next spare is started 250 ms after a failover): each takes the kept
 * ring too, and the TCP stream carries on with matching checksums. */
START_TEST(test_standby_kept_ring)
{
	rc_up(&T);
	netdom_with("standby = 1\n");
	guest("g1", 2);
	rc_sleep_ms(500); /* the spare parks */
	tcp_under_kills(160, 3, 800);
	SH_OK("grep -c 'restarted on the standby instance' %s/hv.log", T.run);
	ck_assert_msg(atoi(T.out) == 3, "standby takeovers: %s", T.out);
	tt_fini(&T);
}
END_TEST

/* Crash loop: every netdom instance aborts on the first frame a guest
 * sends (the kept tx ring hands the same frame to the next one), so the
 * hv gives up after crash_limit and says so in xenstore; netfront then
 * drops the vif's carrier and the guest's programs get "Network is
 * unreachable" at once, not a silent hang. */
START_TEST(test_crash_loop)
{
	rc_up(&T);
	char cfg[512];
	snprintf(cfg, sizeof(cfg),
		 "name = \"netdom\"\nkernel = \"drvdom-netback\"\ndriver_domain = 1\n"
		 "nic = \"veth:phys0, wire_ip=10.77.0.1/24\"\n"
		 "on_crash = \"restart\"\ncrash_limit = \"3/60\"\n"
		 "extra_args = [ '--crash-at', 'tx:1' ]\n");
	SH_OK("drvdom create %s", tt_file(&T, "netdom.cfg", cfg));
	guest("g1", 2);
	char key[96];
	snprintf(key, sizeof(key), "/local/domain/%d/drvdom/state", rc_domid(&T, "netdom"));
	/* The guest's own traffic (IPv6 DAD, ARP for the ping) crashes it. */
	int w;
	for (w = 0; w < 15000 && strcmp(rc_xs_read(&T, key), "failed"); w += 100) {
		(void)tt_sh(&T, "drvdom exec g1 -- ping -c 1 -W 1 10.77.0.1");
		rc_sleep_ms(100);
	}
	ck_assert_msg(w < 15000, "netdom never marked failed: '%s'", rc_xs_read(&T, key));
	SH_OK("grep -c 'drvdom-crash-at: tx:1' %s/console/netdom.log", T.run);
	/* netfront saw it: the carrier goes, and a send fails at once. */
	for (w = 0; w < 5000; w += 50) {
		SH_OK("drvdom exec g1 -- ip link show eth0");
		if (strstr(T.out, "NO-CARRIER"))
			break;
		rc_sleep_ms(50);
	}
	ck_assert_msg(w < 5000, "g1's eth0 keeps its carrier: %s", T.out);
	int rc = tt_sh(&T, "drvdom exec g1 -- ping -c 1 -W 5 10.77.0.1 2>&1");
	ck_assert_msg(rc != 0 && strstr(T.out, "unreachable"), "ping with netdom failed: rc %d: %s",
		      rc, T.out);
	SH_OK("grep -c 'failed for good: carrier off' %s/console/g1.log", T.run);
	tt_fini(&T);
}
END_TEST

START_TEST(test_guest_crash)
{
	rc_up(&T);
	netdom();
	guest("g1", 2);
	guest("g2", 3);
	wait_ping("g1", "10.77.0.1");
	wait_ping("g2", "10.77.0.1");
	int nd = rc_domid(&T, "netdom"), g1 = rc_domid(&T, "g1");
	int np = rc_dom_pid(&T, "netdom");
	ck_assert_int_gt(np, 0);
	ck_assert_msg(rc_mapped_of(np, g1) > 0, "netdom maps nothing of g1");
	char be[128];
	snprintf(be, sizeof(be), "/local/domain/%d/backend/vif/%d", nd, g1);
	SH_OK("drvdom kill g1");
	int w;
	for (w = 0; w < 10000; w += 20) {
		const char *v = rc_xs_read(&T, be);
		SH_OK("XENSTORED_PATH=%s/xenstored/socket xenstore-ls %s 2>/dev/null | "
		      "grep -c 'state = \"[1-4]\"' || true",
		      T.run, be);
		if ((!*v || atoi(T.out) == 0) && rc_mapped_of(np, g1) == 0)
			break;
		rc_sleep_ms(20);
	}
	ck_assert_msg(w < 10000, "netdom still holds g1: mapped %ld", rc_mapped_of(np, g1));
	ck_assert_int_eq(rc_dom_pid(&T, "netdom"), np);
	SH_OK("drvdom exec g2 -- ping -c 3 -i 0.2 -W 2 10.77.0.1");
	SH_OK("drvdom create %s/g1.cfg", T.run);
	wait_ping("g1", "10.77.0.1");
	SH_OK("drvdom exec g1 -- ping -c 2 -i 0.2 -W 2 10.77.0.3");
	tt_fini(&T);
}
END_TEST

/* The fast reconnect keeps every check on hostile input. g2's drvdom-rings
 * turns hostile while its netback instance lives (dom0 writes it for it:
 * an event channel past the last port; nothing reads it then). netdom is
 * killed: netfront keeps its rings for the next instance ("!D",
 * Initialised), and the warm spare that takes over (most likely at once,
 * without InitWait, docs/recovery.md "Failover (network)"; else after its
 * InitWait) refuses the key with the error key, as at a first connection,
 * and lives on: g2 goes back to the full handshake (its keys written
 * anew) and is served again; g1 took the fast path. */
START_TEST(test_standby_hostile_rings)
{
	rc_up(&T);
	netdom_with("standby = 1\n");
	guest("g1", 2);
	guest("g2", 3);
	wait_ping("g1", "10.77.0.1");
	wait_ping("g2", "10.77.0.1");
	rc_sleep_ms(500); /* the spare parks */
	int g2 = rc_domid(&T, "g2");
	char key[128], hostile[600];
	snprintf(key, sizeof(key), "/local/domain/%d/device/vif/0/drvdom-rings", g2);
	const char *good = rc_xs_read(&T, key), *ev = strstr(good, "event-channel=");
	ck_assert_msg(ev, "drvdom-rings: '%s'", good);
	const char *rest = ev + strlen("event-channel=");
	rest += strspn(rest, "0123456789");
	snprintf(hostile, sizeof(hostile), "%.*sevent-channel=4103%s", (int)(ev - good), good,
		 rest);
	ck_assert_int_eq(rc_xs_write(&T, key, hostile), 0);
	SH_OK("drvdom kill netdom");
	ck_assert_msg(rc_wait_running(&T, "netdom", 1, 10000) == 0, "netdom not restarted");
	wait_ping("g2", "10.77.0.1");
	wait_ping("g1", "10.77.0.1");
	SH_OK("grep -c 'vif %d/0: cannot connect: bad event channel' %s/console/netdom.log || true",
	      g2, T.run);
	ck_assert_msg(atoi(T.out) == 1, "refusals of g2's hostile drvdom-rings: %s", T.out);
	ck_assert_int_eq(rc_restarts(&T, "netdom"), 1);
	ck_assert_msg(strcmp(rc_xs_read(&T, key), hostile), "g2's drvdom-rings not written anew");
	SH_OK("grep -c 'kept rings taken by backend instance' %s/console/g1.log || true", T.run);
	ck_assert_msg(atoi(T.out) == 1, "g1's fast reconnects: %s", T.out);
	SH_OK("grep 'probing.*vif/0' %s/console/netdom.log | tail -2", T.run);
	fprintf(stderr, "hostile drvdom-rings, the new instance's probes:\n%s", T.out);
	tt_fini(&T);
}
END_TEST

/* netif multi-queue across failovers: a guest on 2 queues sends 100 MiB to
 * the wire while netdom is killed 3 times; every restarted netback offers
 * the queues again, the guest reconnects with both (the fast reconnect:
 * both queues' kept rings, from drvdom-rings), and the bytes arrive
 * intact. */
START_TEST(test_tcp_kills_multiqueue)
{
	rc_up(&T);
	netdom_with("cpus = \"all\"\n"); /* a queue per CPU, not the placement's one */
	SH_OK("drvdom create %s",
	      tt_file(&T, "g1.cfg",
		      "name = \"g1\"\nkernel = \"drvdom-guest\"\n"
		      "extra_args = [ '--net-queues=2' ]\n"
		      "vif = [ 'mac=00:16:3e:00:00:02, ip=10.77.0.2/24, backend=netdom' ]\n"));
	wait_ping("g1", "10.77.0.1");
	char key[128];
	snprintf(key, sizeof(key), "/local/domain/%d/device/vif/0/multi-queue-num-queues",
		 rc_domid(&T, "g1"));
	ck_assert_msg(atoi(rc_xs_read(&T, key)) == 2, "queues: '%s'", rc_xs_read(&T, key));
	tcp_under_kills(100, 3, 250);
	/* the last instance serves both queues again, and every instance did */
	ck_assert_msg(atoi(rc_xs_read(&T, key)) == 2, "queues after: '%s'", rc_xs_read(&T, key));
	SH_OK("grep -c '2 queue(s)' %s/console/netdom.log", T.run);
	ck_assert_msg(atoi(T.out) >= 4, "connections with 2 queues: %s", T.out);
	tt_fini(&T);
}
END_TEST

Suite *recovery_net_suite(void);
Suite *recovery_net_suite(void)
{
	Suite *s = suite_create("recovery_net");
	TCase *tc = tcase_create("recovery_net");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_tcp_200mib_kills);
	tcase_add_test(tc, test_standby_kept_ring);
	tcase_add_test(tc, test_guest_crash);
	tcase_add_test(tc, test_crash_loop);
	tcase_add_test(tc, test_standby_hostile_rings);
	suite_add_tcase(s, tc);
	TCase *mq = tcase_create("multiqueue"); /* CK_RUN_CASE=multiqueue */
	tcase_set_timeout(mq, 120);
	tcase_add_test(mq, test_tcp_kills_multiqueue);
	suite_add_tcase(s, mq);
	return s;
}
