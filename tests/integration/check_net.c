// SPDX-License-Identifier: MIT
// Integration suite "net": the real drvdom-hv, drvdom-xenstored, the drvdom
// toolstack, drvdom-netback as the driver domain of a veth "physical NIC"
// whose other end is the run dir's wire namespace, and guests running
// netfront (drvdom-guest, or netfront_dom, a netfront-only guest kernel).
// Real traffic through real programs: ping between a guest and the wire and
// between two guests, 100 MiB over TCP each way with SHA-256 compared at
// both ends (and GSO seen in netback's counters), network-attach / -detach
// while running. Malice both ways: a frontend sending bad tx requests
// (netevil_dom: dropped, or the vif disconnected; bad multi-queue keys and
// hostile drvdom-rings combined keys refused), a guest that posts no rx
// buffers under a flood (drops, netback's memory bounded) while another
// guest keeps working, and a backend breaking the protocol (netevil_back:
// netfront resets and reconnects, the guest lives on). Isolation checks on
// /proc: the guest holds no packet socket; netback maps only the ring pages
// of a grant-copy guest and only what a persistent-grant guest dedicated to
// it. Everything happens in namespaces the toolstack creates, on
// 10.77.0.0/24.
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/tooltest.h"

static struct tt T;

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

#define SH_OK(...)                                                                                 \
	do {                                                                                       \
		int rc_ = tt_sh(&T, __VA_ARGS__);                                                  \
		ck_assert_msg(rc_ == 0, "command failed (%d): %s", rc_, T.out);                    \
	} while (0)

/* A failed check ends the test process with _exit (Check's fork mode), so
 * tooltest's atexit cleanup does not run: a guard process in its own
 * session waits for the test process to go away (its end of a pipe closes)
 * and then stops the instance and removes the run dir. */
static void guard_start(void)
{
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t g = fork();
	ck_assert_int_ge(g, 0);
	if (g == 0) {
		close(p[1]);
		setsid();
		char c;
		while (read(p[0], &c, 1) > 0)
			;
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "drvdom down >/dev/null 2>&1; rm -rf '%s'", T.run);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(0);
	}
	close(p[0]); /* p[1] stays open (close-on-exec) until this process ends */
}

static void net_up_with(const char *nic, const char *extra)
{
	tt_init(&T);
	guard_start();
	SH_OK("drvdom up");
	char cfg[512];
	snprintf(cfg, sizeof(cfg),
		 "name = \"netdom\"\n"
		 "kernel = \"drvdom-netback\"\n"
		 "driver_domain = 1\n"
		 "nic = \"%s, wire_ip=10.77.0.1/24\"\n%s",
		 nic, extra);
	SH_OK("drvdom create %s", tt_file(&T, "netdom.cfg", cfg));
}

static void net_up_nic(const char *nic)
{
	net_up_with(nic, "");
}

static void net_up(void)
{
	net_up_nic("veth:phys0");
}

/* A guest named name with one vif (mac suffix, ip 10.77.0.<host>). */
static void guest(const char *name, unsigned host, const char *kernel, const char *mode)
{
	char cfg[1024], rel[64], args[64] = "";
	if (mode)
		snprintf(args, sizeof(args), "extra_args = [ '%s' ]\n", mode);
	snprintf(cfg, sizeof(cfg),
		 "name = \"%s\"\n"
		 "kernel = \"%s/%s\"\n%s"
		 "vif = [ 'mac=00:16:3e:00:00:%02x, ip=10.77.0.%u/24, backend=netdom' ]\n",
		 name, strncmp(kernel, "drvdom-", 7) ? T.tbin : T.bin, kernel, args, host, host);
	snprintf(rel, sizeof(rel), "%s.cfg", name);
	SH_OK("drvdom create %s", tt_file(&T, rel, cfg));
}

static unsigned domid_of(const char *name)
{
	SH_OK("drvdom list | awk '$2 == \"%s\" { print $1 }'", name);
	return (unsigned)atoi(T.out);
}

/* xenstore-read from dom0; the value (trailing newline cut) or "" */
static const char *xs_get(const char *fmt, unsigned a, unsigned b)
{
	char path[256];
	snprintf(path, sizeof(path), fmt, a, b);
	int rc = tt_sh(&T, "XENSTORED_PATH=%s/xenstored/socket xenstore-read %s", T.run, path);
	if (rc)
		return "";
	T.out[strcspn(T.out, "\n")] = 0;
	return T.out;
}

/* Wait until a guest's vif 0 is Connected on both sides. */
static void wait_connected(const char *name)
{
	unsigned g = domid_of(name), nb = domid_of("netdom");
	for (int i = 0; i < 500; i++) {
		char fe[8], be[8];
		snprintf(fe, sizeof(fe), "%s",
			 xs_get("/local/domain/%u/device/vif/%u/state", g, 0));
		snprintf(be, sizeof(be), "%s",
			 xs_get("/local/domain/%u/backend/vif/%u/0/state", nb, g));
		if (!strcmp(fe, "4") && !strcmp(be, "4"))
			return;
		sleep_ms(20);
	}
	ck_abort_msg("vif of %s never connected", name);
}

/* Host pid of a domain: the hv's child whose environment says its domid. */
static int dom_pid(const char *name)
{
	int pid = tt_dom_pid(&T, (int)domid_of(name));
	ck_assert_msg(pid > 0, "no process for domain %s", name);
	return pid;
}

static long vmrss_kb(int pid)
{
	char p[64], line[256];
	snprintf(p, sizeof(p), "/proc/%d/status", pid);
	FILE *f = fopen(p, "r");
	ck_assert_ptr_nonnull(f);
	long kb = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void ping_ok(const char *from, const char *to)
{
	SH_OK("drvdom exec %s -- ping -c 3 -i 0.2 -W 2 %s", from, to);
	ck_assert_msg(strstr(T.out, " 0% packet loss"), "ping %s -> %s: %s", from, to, T.out);
}

START_TEST(test_ping_wire)
{
	net_up();
	guest("g1", 2, "drvdom-guest", NULL);
	wait_connected("g1");
	ping_ok("g1", "10.77.0.1");
	ping_ok("wire", "10.77.0.2");
	/* a 64 KiB ICMP echo: scatter-gather both ways (no GSO for ICMP) */
	SH_OK("drvdom exec g1 -- ping -c 2 -s 60000 -W 2 10.77.0.1");
	ck_assert_msg(strstr(T.out, " 0% packet loss"), "%s", T.out);
	unsigned nb = domid_of("netdom"), g = domid_of("g1");
	sleep_ms(1100); /* stats are written at most twice a second */
	const char *st = xs_get("/local/domain/%u/backend/vif/%u/0/drvdom-stats", nb, g);
	ck_assert_msg(strstr(st, "reqs=") && strstr(st, "gnt_copies=") && !strstr(st, "reqs=0 "),
		      "drvdom-stats: %s", st);
	st = xs_get("/local/domain/%u/device/vif/%u/drvdom-stats", g, 0);
	ck_assert_msg(strstr(st, "tx_pkts=") && !strstr(st, "tx_pkts=0 ") && strstr(st, "resets=0"),
		      "frontend drvdom-stats: %s", st);
	tt_fini(&T);
}
END_TEST

/* Wait up to ms until pid's main thread may run on exactly want (e.g.
 * "1", "0-1"); the list it has is left in got. */
static bool wait_cpus(int pid, const char *want, int ms, char *got, size_t len)
{
	char p[64], line[256];
	snprintf(p, sizeof(p), "/proc/%d/status", pid);
	for (int waited = 0;; waited += 50) {
		FILE *f = fopen(p, "r");
		ck_assert_ptr_nonnull(f);
		got[0] = 0;
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "Cpus_allowed_list:", 18)) {
				char *v = line + 18 + strspn(line + 18, " \t");
				v[strcspn(v, "\n")] = 0;
				snprintf(got, len, "%s", v);
			}
		fclose(f);
		if (!strcmp(got, want))
			return true;
		if (waited >= ms)
			return false;
		sleep_ms(50);
	}
}

/* Without cpus = (docs/netback.md "Placement"): a network driver domain
 * runs on one CPU, the last of those no other domain has to itself; a
 * guest with a vif runs where its backend does, and so does drvdom exec;
 * the placement yields to a stream that wants more than its CPU and comes
 * back; a second netdom takes another CPU; cpus = "all" leaves a domain and
 * the guests of that backend unplaced. drvdom list shows where each runs. */
START_TEST(test_auto_placement)
{
	cpu_set_t set;
	ck_assert_int_eq(sched_getaffinity(0, sizeof(set), &set), 0);
	int last = -1, prev = -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			prev = last, last = c;
	if (prev < 0)
		return; /* one CPU: nothing to place */
	char lc[16], pc[16], all[32];
	snprintf(lc, sizeof(lc), "%d", last);
	snprintf(pc, sizeof(pc), "%d", prev);
	net_up();
	guest("g1", 2, "drvdom-guest", NULL);
	wait_connected("g1");
	tt_assert_cpus(dom_pid("netdom"), lc);
	tt_assert_cpus(dom_pid("g1"), lc);
	SH_OK("drvdom exec g1 -- grep Cpus_allowed_list /proc/self/status");
	char want[32];
	snprintf(want, sizeof(want), ":\t%s\n", lc);
	ck_assert_msg(strstr(T.out, want), "exec runs on: %s", T.out);
	ping_ok("g1", "10.77.0.1");
	SH_OK("drvdom list | awk '$2 == \"g1\" { print $7 }'");
	ck_assert_msg(!strncmp(T.out, lc, strlen(lc)) && T.out[strlen(lc)] == '\n',
		      "list says g1 on '%s'", T.out);
	/* The placement yields: a TCP stream from g1 keeps its client, netfront
	 * and netback waiting for their one CPU, and the hv lets netdom run
	 * anywhere; once the stream is over and netdom idles, it is back. */
	SH_OK("(drvdom exec wire -- iperf3 -s -1 -p 5010 & sleep 0.3; "
	      "drvdom exec g1 -- iperf3 -c 10.77.0.1 -p 5010 -t 3) >/dev/null 2>&1 &");
	char cpus[64];
	snprintf(all, sizeof(all), "0-%d", last);
	ck_assert_msg(wait_cpus(dom_pid("netdom"), all, 3000, cpus, sizeof(cpus)),
		      "netdom still on CPUs %s under a TCP stream", cpus);
	ck_assert_msg(wait_cpus(dom_pid("netdom"), lc, 8000, cpus, sizeof(cpus)),
		      "netdom on CPUs %s after the stream, not %s", cpus, lc);
	ping_ok("g1", "10.77.0.1");
	/* a second network driver domain: the next CPU down */
	SH_OK("drvdom create %s",
	      tt_file(&T, "netdom2.cfg",
		      "name = \"netdom2\"\nkernel = \"drvdom-netback\"\ndriver_domain = 1\n"
		      "nic = \"veth:phys1, wire_ip=10.77.1.1/24\"\n"));
	tt_assert_cpus(dom_pid("netdom2"), pc);
	/* cpus = "all": unplaced, and so are the guests of such a backend */
	if (CPU_COUNT(&set) != last + 1)
		return; /* the test runs on part of the machine: "all" is more */
	SH_OK("drvdom create %s",
	      tt_file(&T, "netdom3.cfg",
		      "name = \"netdom3\"\nkernel = \"drvdom-netback\"\ndriver_domain = 1\n"
		      "nic = \"veth:phys2, wire_ip=10.77.2.1/24\"\ncpus = \"all\"\n"));
	tt_assert_cpus(dom_pid("netdom3"), all);
	SH_OK("drvdom create %s",
	      tt_file(&T, "g3.cfg",
		      "name = \"g3\"\n"
		      "vif = [ 'mac=00:16:3e:00:02:03, ip=10.77.2.3/24, backend=netdom3' ]\n"));
	tt_assert_cpus(dom_pid("g3"), all);
	SH_OK("drvdom list | awk '$2 == \"g3\" { print $7 }'");
	ck_assert_msg(!strcmp(T.out, "all\n"), "list says g3 on '%s'", T.out);
}
END_TEST

/* cpus = pins a driver domain and a guest, drvdom exec runs on the
 * guest's CPUs, and traffic flows; a bad list or one naming no usable CPU
 * fails the create and leaves no domain behind. */
START_TEST(test_cpus_placement)
{
	tt_init(&T);
	guard_start();
	SH_OK("drvdom up");
	SH_OK("drvdom create %s",
	      tt_file(&T, "netdom.cfg",
		      "name = \"netdom\"\nkernel = \"drvdom-netback\"\ndriver_domain = 1\n"
		      "nic = \"veth:phys0, wire_ip=10.77.0.1/24\"\ncpus = \"0\"\n"));
	const char *g1 =
	    tt_file(&T, "g1.cfg",
		    "name = \"g1\"\n"
		    "vif = [ 'mac=00:16:3e:00:00:02, ip=10.77.0.2/24, backend=netdom' ]\n");
	SH_OK("drvdom create %s 'cpus=\"0\"'", g1);
	wait_connected("g1");
	tt_assert_cpus(dom_pid("netdom"), "0");
	tt_assert_cpus(dom_pid("g1"), "0");
	SH_OK("drvdom exec g1 -- grep Cpus_allowed_list /proc/self/status");
	ck_assert_msg(strstr(T.out, ":\t0\n"), "exec runs on: %s", T.out);
	ping_ok("g1", "10.77.0.1");
	ck_assert_int_ne(tt_sh(&T, "drvdom create %s name=g2 'cpus=\"0-\"'", g1), 0);
	ck_assert_msg(strstr(T.out, "cpus"), "%s", T.out);
	ck_assert_int_ne(tt_sh(&T, "drvdom create %s name=g2 'cpus=\"1023\"'", g1), 0);
	ck_assert_msg(strstr(T.out, "cpus"), "%s", T.out);
	SH_OK("drvdom list");
	ck_assert_msg(!strstr(T.out, " g2 "), "%s", T.out);
	tt_fini(&T);
}
END_TEST

START_TEST(test_two_guests)
{
	net_up();
	guest("g1", 2, "drvdom-guest", NULL);
	guest("g2", 3, "netfront_dom", "--copy"); /* grant copy only */
	wait_connected("g1");
	wait_connected("g2");
	ping_ok("g1", "10.77.0.3");
	ping_ok("g2", "10.77.0.2");
	ping_ok("g2", "10.77.0.1");
	tt_fini(&T);
}
END_TEST

/* Python one-liners: a TCP sink that prints "bytes sha256", and a source of
 * N pseudo-random MiB that prints the same. */
#define PY_SINK                                                                                    \
	"import socket,hashlib,sys;s=socket.socket();"                                             \
	"s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('0.0.0.0',%d));"            \
	"s.listen(1);c,_=s.accept();h=hashlib.sha256();n=0\n"                                      \
	"while True:\n b=c.recv(1<<20)\n if not b: break\n h.update(b);n+=len(b)\n"                \
	"print(n,h.hexdigest())"
#define PY_SOURCE                                                                                  \
	"import socket,hashlib,random,time;r=random.Random(7);h=hashlib.sha256();n=0\n"            \
	"for i in range(50):\n  try:\n   c=socket.create_connection(('%s',%d));break\n"            \
	"  except OSError: time.sleep(0.1)\n"                                                      \
	"for i in range(%d):\n b=r.randbytes(1<<20);c.sendall(b);h.update(b);n+=len(b)\n"          \
	"c.close();print(n,h.hexdigest())"

static void transfer(const char *src, const char *dst, const char *dst_ip, int port, int mib)
{
	char cmd[4096], sink[1024], source[1024];
	snprintf(sink, sizeof(sink), PY_SINK, port);
	snprintf(source, sizeof(source), PY_SOURCE, dst_ip, port, mib);
	snprintf(cmd, sizeof(cmd),
		 "drvdom exec %s -- python3 -c \"$(cat <<'EOF'\n%s\nEOF\n)\" > %s/sink.out & "
		 "sleep 0.3; drvdom exec %s -- python3 -c \"$(cat <<'EOF'\n%s\nEOF\n)\" > "
		 "%s/source.out; wait; cat %s/sink.out %s/source.out",
		 dst, sink, T.run, src, source, T.run, T.run, T.run);
	SH_OK("%s", cmd);
	char a[128] = "", b[128] = "";
	ck_assert_msg(sscanf(T.out, "%127[^\n]\n%127[^\n]", a, b) == 2, "output: %s", T.out);
	char want[32];
	snprintf(want, sizeof(want), "%ld ", (long)mib << 20);
	ck_assert_msg(!strncmp(a, want, strlen(want)), "sink got %s", a);
	ck_assert_msg(!strcmp(a, b), "checksums differ: sink %s, source %s", a, b);
}

START_TEST(test_tcp_100mib)
{
	net_up();
	guest("g1", 2, "drvdom-guest", NULL);
	wait_connected("g1");
	transfer("g1", "wire", "10.77.0.1", 5001, 100); /* guest -> wire: netif tx */
	transfer("wire", "g1", "10.77.0.2", 5002, 100); /* wire -> guest: netif rx */
	/* GSO both ways: the average packet through netback is far larger than
	 * the 1500-byte MTU (TCP segments cross whole, not cut up) */
	unsigned nb = domid_of("netdom"), g = domid_of("g1");
	sleep_ms(1100);
	const char *st = xs_get("/local/domain/%u/backend/vif/%u/0/drvdom-stats", nb, g);
	unsigned long long txp = 0, txb = 0, rxp = 0, rxb = 0;
	const char *k;
	if ((k = strstr(st, "tx_pkts=")))
		txp = strtoull(k + 8, NULL, 10);
	if ((k = strstr(st, "tx_bytes=")))
		txb = strtoull(k + 9, NULL, 10);
	if ((k = strstr(st, "rx_pkts=")))
		rxp = strtoull(k + 8, NULL, 10);
	if ((k = strstr(st, "rx_bytes=")))
		rxb = strtoull(k + 9, NULL, 10);
	ck_assert_msg(txp && txb / txp > 8000, "guest tx not GSO: %s", st);
	ck_assert_msg(rxp && rxb / rxp > 8000, "guest rx not GSO: %s", st);
	tt_fini(&T);
}
END_TEST

/* Bytes of netback's mappings of domain gid's memory (its /proc maps). */
static long mapped_of(int np, unsigned gid)
{
	long mapped = 0;
	char path[64], line[512], seg[32];
	snprintf(path, sizeof(path), "/proc/%d/maps", np);
	snprintf(seg, sizeof(seg), "drvdom-seg-d%u ", gid);
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (strstr(line, seg) && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
			mapped += (long)(hi - lo);
	}
	fclose(f);
	return mapped;
}

START_TEST(test_isolation)
{
	net_up();
	guest("g1", 2, "drvdom-guest", NULL);	  /* persistent grants */
	guest("g2", 3, "netfront_dom", "--copy"); /* grant copy only */
	wait_connected("g1");
	wait_connected("g2");
	ping_ok("g1", "10.77.0.1");
	ping_ok("g2", "10.77.0.1");
	transfer("wire", "g1", "10.77.0.2", 5003, 8);
	transfer("wire", "g2", "10.77.0.3", 5006, 8);
	transfer("g2", "wire", "10.77.0.1", 5007, 8);
	int gp = dom_pid("g1"), np = dom_pid("netdom");
	/* The guest holds no packet socket: none in its namespace, and none of
	 * its fds is one of netback's. */
	SH_OK("tail -n +2 /proc/%d/net/packet | wc -l", gp);
	ck_assert_msg(atoi(T.out) == 0, "packet sockets in the guest's namespace: %s", T.out);
	SH_OK("for i in $(tail -n +2 /proc/%d/net/packet | awk '{print $NF}'); do "
	      "ls -l /proc/%d/fd | grep -c \"socket:\\[$i\\]\"; done | grep -v '^0$' | wc -l",
	      np, gp);
	ck_assert_msg(atoi(T.out) == 0, "the guest holds netback's packet socket");
	SH_OK("tail -n +2 /proc/%d/net/packet | wc -l", np);
	ck_assert_msg(atoi(T.out) >= 1, "netback holds no packet socket");
	/* Grant copy only (g2): netback maps the two ring pages (one 8 KiB
	 * segment) and no data page. Persistent grants (g1): the ring segment
	 * and the 2 MiB data segment netfront dedicated to it, mapped once
	 * read-only (tx buffers) and once writable (rx buffers), nothing more. */
	long m2 = mapped_of(np, domid_of("g2")), m1 = mapped_of(np, domid_of("g1"));
	ck_assert_msg(m2 > 0 && m2 <= 8192, "netback maps %ld bytes of the copy guest", m2);
	ck_assert_msg(m1 > 8192 && m1 <= 8192 + 2 * 512 * 4096,
		      "netback maps %ld bytes of the persistent guest", m1);
	tt_fini(&T);
}
END_TEST

/* For the mq-* modes: what netback's error key for the evil vif must say. */
static const char *evil_want_error;

static void evil(const char *mode)
{
	/* the multi-queue cases need more than the one queue a placed netback
	 * offers (a queue per CPU it may run on) */
	net_up_with("veth:phys0", strncmp(mode, "mq-", 3) ? "" : "cpus = \"all\"\n");
	guest("g1", 2, "netfront_dom", NULL);
	wait_connected("g1");
	guest("evil", 9, "netevil_dom", mode);
	unsigned e = domid_of("evil");
	const char *r = "";
	for (int i = 0; i < 500; i++) {
		r = xs_get("/local/domain/%u/data/result", e, 0);
		if (*r)
			break;
		sleep_ms(20);
	}
	ck_assert_msg(!strncmp(r, "ok", 2), "evil frontend (%s): '%s'", mode, r);
	/* netback is alive and the good guest keeps working */
	SH_OK("drvdom list | awk '$2 == \"netdom\" { print $4 }'");
	ck_assert_msg(!strncmp(T.out, "running", 7), "netdom: %s", T.out);
	ping_ok("g1", "10.77.0.1");
	transfer("g1", "wire", "10.77.0.1", 5004, 16);
	if (evil_want_error) {
		const char *err =
		    xs_get("/local/domain/%u/backend/vif/%u/0/error", domid_of("netdom"), e);
		ck_assert_msg(strstr(err, evil_want_error), "netback's error for %s: '%s'", mode,
			      err);
	}
	tt_fini(&T);
}

START_TEST(test_evil_offset)
{
	evil("offset");
}
END_TEST

START_TEST(test_evil_zero_fragment)
{
	evil("zero");
}
END_TEST

START_TEST(test_evil_too_many_slots)
{
	evil("slots");
}
END_TEST

START_TEST(test_evil_producer_jump)
{
	evil("jump");
}
END_TEST

/* Not evil: a frontend using split event channels is served. */
START_TEST(test_split_event_channels)
{
	evil("split");
}
END_TEST

/* netif multi-queue: a frontend asking for more queues than offered, for
 * none, in words, or leaving out a queue's ring ref is refused (Closing,
 * the reason in the backend's error key); netback and the other guest live
 * on. */
START_TEST(test_mq_too_many)
{
	evil_want_error = "multi-queue-num-queues";
	evil("mq-many");
}
END_TEST

START_TEST(test_mq_zero)
{
	evil_want_error = "multi-queue-num-queues";
	evil("mq-zero");
}
END_TEST

START_TEST(test_mq_junk)
{
	evil_want_error = "multi-queue-num-queues";
	evil("mq-junk");
}
END_TEST

START_TEST(test_mq_missing_ref)
{
	evil_want_error = "queue 1: bad ring refs";
	evil("mq-noref");
}
END_TEST

/* drvdom-rings, the combined key of the fast reconnect (docs/recovery.md,
 * "Failover (network)"): a frontend may publish only it (served from it);
 * a malformed one is ignored for the single keys (served if they are good,
 * refused if there are none); a well-formed one is checked as the single
 * keys are (a port past the last, more queues than offered, a ring ref
 * never granted, no rx-copy: refused, whatever the single keys beside it
 * say). netback and the other guest live on. */
START_TEST(test_rings_only)
{
	evil("rings-only");
}
END_TEST

START_TEST(test_rings_junk)
{
	evil("rings-junk");
}
END_TEST

START_TEST(test_rings_junk_only)
{
	evil_want_error = "request-rx-copy"; /* the first single key checked */
	evil("rings-junk-only");
}
END_TEST

START_TEST(test_rings_bad_port)
{
	evil_want_error = "bad event channel";
	evil("rings-port");
}
END_TEST

START_TEST(test_rings_too_many_queues)
{
	evil_want_error = "multi-queue-num-queues";
	evil("rings-queues");
}
END_TEST

START_TEST(test_rings_bad_ref)
{
	evil_want_error = "cannot map the rings";
	evil("rings-ref");
}
END_TEST

START_TEST(test_rings_no_rx_copy)
{
	evil_want_error = "request-rx-copy";
	evil("rings-copy");
}
END_TEST

/* The numbers after key= in a drvdom-stats string, comma-separated. */
static unsigned stats_list(const char *st, const char *key, unsigned long long *out, unsigned max)
{
	const char *k = strstr(st, key);
	unsigned n = 0;
	if (!k)
		return 0;
	k += strlen(key);
	while (n < max) {
		char *end;
		out[n++] = strtoull(k, &end, 10);
		if (*end != ',')
			break;
		k = end + 1;
	}
	return n;
}

/* UDP datagrams to 32 ports (fixed source port): 32 flows, spread over the
 * queues by their hash. */
static void udp_flows(const char *from, const char *to_ip)
{
	SH_OK("drvdom exec %s -- python3 -c \"import socket;s=socket.socket(socket.AF_INET,"
	      "socket.SOCK_DGRAM);s.bind(('0.0.0.0',6999));"
	      "[s.sendto(b'q'*200,('%s',7000+i)) for i in range(32)]\"",
	      from, to_ip);
}

/* netif multi-queue (docs/netback.md "Multiple queues"): netback offers
 * multi-queue-max-queues, a guest allowed 2 queues writes
 * multi-queue-num-queues and each queue's keys under queue-N (none at the
 * top level), and traffic both ways crosses intact, spread over both
 * queues, beside a single-queue guest. */
START_TEST(test_multiqueue)
{
	net_up_with("veth:phys0", "cpus = \"all\"\n"); /* a queue per CPU */
	guest("g1", 2, "netfront_dom", "--queues=2");
	guest("g2", 3, "drvdom-guest", NULL);
	wait_connected("g1");
	wait_connected("g2");
	unsigned nb = domid_of("netdom"), g = domid_of("g1"), g2 = domid_of("g2");
	const char *v = xs_get("/local/domain/%u/backend/vif/%u/0/multi-queue-max-queues", nb, g);
	ck_assert_msg(atoi(v) >= 2 && atoi(v) <= 4, "multi-queue-max-queues '%s'", v);
	v = xs_get("/local/domain/%u/device/vif/%u/multi-queue-num-queues", g, 0);
	ck_assert_msg(!strcmp(v, "2"), "multi-queue-num-queues '%s'", v);
	static const char *const keys[] = {"tx-ring-ref", "rx-ring-ref", "event-channel"};
	for (unsigned q = 0; q < 2; q++) {
		for (unsigned i = 0; i < 3; i++) {
			char fmt[128];
			snprintf(fmt, sizeof(fmt), "/local/domain/%%u/device/vif/%%u/queue-%u/%s",
				 q, keys[i]);
			v = xs_get(fmt, g, 0);
			ck_assert_msg(atoi(v) > 0, "queue-%u/%s '%s'", q, keys[i], v);
		}
	}
	/* one queue's keys never at the top level with several queues */
	SH_OK("XENSTORED_PATH=%s/xenstored/socket xenstore-ls /local/domain/%u/device/vif/0", T.run,
	      g);
	ck_assert_msg(!strstr(T.out, "\ntx-ring-ref") && strncmp(T.out, "tx-ring-ref", 11) &&
			  strstr(T.out, "queue-1"),
		      "device/vif/0: %s", T.out);
	/* the single-queue guest: top-level keys as before */
	v = xs_get("/local/domain/%u/device/vif/%u/tx-ring-ref", g2, 0);
	ck_assert_msg(atoi(v) > 0, "g2 tx-ring-ref '%s'", v);
	ping_ok("g1", "10.77.0.1");
	ping_ok("g1", "10.77.0.3");
	ping_ok("g2", "10.77.0.2");
	transfer("wire", "g1", "10.77.0.2", 5011, 32);
	transfer("g1", "wire", "10.77.0.1", 5012, 32);
	transfer("g2", "g1", "10.77.0.2", 5013, 8);
	udp_flows("wire", "10.77.0.2");
	udp_flows("g1", "10.77.0.1");
	sleep_ms(1100);
	const char *st = xs_get("/local/domain/%u/backend/vif/%u/0/drvdom-stats", nb, g);
	unsigned long long tx[4] = {0}, rx[4] = {0};
	ck_assert_msg(stats_list(st, "q_tx_pkts=", tx, 4) == 2 &&
			  stats_list(st, "q_rx_pkts=", rx, 4) == 2,
		      "no per-queue counters: %s", st);
	ck_assert_msg(tx[0] && tx[1] && rx[0] && rx[1], "a queue carried nothing: %s", st);
	tt_fini(&T);
}
END_TEST

START_TEST(test_rx_flood_no_buffers)
{
	net_up();
	guest("g1", 2, "netfront_dom", NULL);
	wait_connected("g1");
	guest("evil", 9, "netevil_dom", "norx");
	unsigned e = domid_of("evil"), nb = domid_of("netdom");
	const char *r = "";
	for (int i = 0; i < 500 && !*r; i++) {
		r = xs_get("/local/domain/%u/data/result", e, 0);
		if (!*r)
			sleep_ms(20);
	}
	ck_assert_msg(!strncmp(r, "ok", 2), "evil frontend: '%s'", r);
	int np = dom_pid("netdom");
	ping_ok("g1", "10.77.0.1");
	long before = vmrss_kb(np);
	/* 3 s of UDP toward the guest that posts no rx buffers, 1400-byte
	 * datagrams, while g1 moves 32 MiB over TCP */
	SH_OK("drvdom exec wire -- ip neigh replace 10.77.0.9 lladdr 00:16:3e:00:00:66 dev phys0");
	SH_OK("drvdom exec wire -- python3 -c \"import socket,time;"
	      "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);b=bytes(1400);t=time.time()+3\n"
	      "while time.time()<t:\n for i in range(100): s.sendto(b,('10.77.0.9',9))\" "
	      ">/dev/null 2>&1 &");
	sleep_ms(300);
	transfer("wire", "g1", "10.77.0.2", 5005, 32);
	sleep_ms(3000);
	long after = vmrss_kb(np);
	ck_assert_msg(after - before < 16 * 1024, "netback RSS grew from %ld to %ld kB", before,
		      after);
	sleep_ms(600);
	const char *st = xs_get("/local/domain/%u/backend/vif/%u/0/drvdom-stats", nb, e);
	const char *d = strstr(st, "rx_drops=");
	ck_assert_msg(d && atol(d + 9) > 0, "no rx drops on the starving vif: %s", st);
	ping_ok("g1", "10.77.0.1");
	tt_fini(&T);
}
END_TEST

START_TEST(test_hotplug)
{
	net_up();
	guest("g1", 2, "drvdom-guest", NULL);
	wait_connected("g1");
	SH_OK("drvdom network-attach g1 'mac=00:16:3e:00:00:08, ip=10.77.0.8/24, backend=netdom'");
	unsigned g = domid_of("g1"), nb = domid_of("netdom");
	const char *st = "";
	for (int i = 0; i < 250 && strcmp(st, "4"); i++) {
		st = xs_get("/local/domain/%u/device/vif/%u/state", g, 1);
		if (strcmp(st, "4"))
			sleep_ms(20);
	}
	ck_assert_msg(!strcmp(st, "4"), "vif 1 never connected (state '%s')", st);
	ping_ok("wire", "10.77.0.8");
	SH_OK("drvdom network-detach g1 1");
	/* both directories gone, and netback did not write them back */
	sleep_ms(500);
	ck_assert_str_eq(xs_get("/local/domain/%u/backend/vif/%u/1/state", nb, g), "");
	ck_assert_str_eq(xs_get("/local/domain/%u/device/vif/%u/state", g, 1), "");
	ck_assert_int_ne(tt_sh(&T,
			       "XENSTORED_PATH=%s/xenstored/socket xenstore-ls "
			       "/local/domain/%u/backend/vif/%u/1",
			       T.run, nb, g),
			 0);
	/* (eth1 itself outlives the detach for now: drvdom-hv keeps its own
	 * copy of every assigned device fd, so the TAP stays; netfront closed
	 * its fd.) */
	ping_ok("wire", "10.77.0.2");
	tt_fini(&T);
}
END_TEST

/* netfront against a backend that breaks the protocol: the guest resets the
 * connection (never crashes) and runs the handshake again when the backend
 * offers itself anew. */
static void evil_backend(const char *mode)
{
	tt_init(&T);
	guard_start();
	SH_OK("drvdom up");
	char cfg[1024];
	snprintf(cfg, sizeof(cfg),
		 "name = \"evilnet\"\nkernel = \"%s/netevil_back\"\ndriver_domain = 1\n"
		 "extra_args = [ '%s' ]\n",
		 T.tbin, mode);
	SH_OK("drvdom create %s", tt_file(&T, "evilnet.cfg", cfg));
	SH_OK("drvdom create %s",
	      tt_file(&T, "g1.cfg",
		      "name = \"g1\"\nkernel = \"drvdom-guest\"\n"
		      "vif = [ 'mac=00:16:3e:00:00:02, ip=10.77.0.2/24, backend=evilnet' ]\n"));
	unsigned e = domid_of("evilnet");
	const char *r = "";
	for (int i = 0; i < 1000 && !*r; i++) {
		r = xs_get("/local/domain/%u/data/result", e, 0);
		if (!*r)
			sleep_ms(20);
	}
	ck_assert_msg(!strncmp(r, "ok", 2), "evil backend (%s): '%s'", mode, r);
	SH_OK("drvdom list | awk '$2 == \"g1\" { print $4 }'");
	ck_assert_msg(!strncmp(T.out, "running", 7), "guest: %s", T.out);
	SH_OK("drvdom exec g1 -- ip -br link show eth0");
	ck_assert_msg(strstr(T.out, "UP"), "eth0 is not up: %s", T.out);
	sleep_ms(1100); /* the frontend counts its resets in drvdom-stats */
	const char *st = xs_get("/local/domain/%u/device/vif/%u/drvdom-stats", domid_of("g1"), 0);
	ck_assert_msg(strstr(st, "resets=1"), "frontend drvdom-stats: %s", st);
	tt_fini(&T);
}

START_TEST(test_frontend_bad_response_id)
{
	evil_backend("id");
}
END_TEST

START_TEST(test_frontend_producer_jump)
{
	evil_backend("jump");
}
END_TEST

/* nic = "tap:NAME": the NIC is a TAP fd whose frames are the wire. */
START_TEST(test_tap_nic)
{
	net_up_nic("tap:tapw");
	guest("g1", 2, "drvdom-guest", NULL);
	wait_connected("g1");
	ping_ok("g1", "10.77.0.1");
	transfer("g1", "wire", "10.77.0.1", 5008, 16);
	transfer("wire", "g1", "10.77.0.2", 5009, 16);
	tt_fini(&T);
}
END_TEST

Suite *net_suite(void);
Suite *net_suite(void)
{
	Suite *s = suite_create("net");
	TCase *tc = tcase_create("net");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_ping_wire);
	tcase_add_test(tc, test_two_guests);
	tcase_add_test(tc, test_cpus_placement);
	tcase_add_test(tc, test_auto_placement);
	tcase_add_test(tc, test_tap_nic);
	tcase_add_test(tc, test_tcp_100mib);
	tcase_add_test(tc, test_isolation);
	tcase_add_test(tc, test_evil_offset);
	tcase_add_test(tc, test_evil_zero_fragment);
	tcase_add_test(tc, test_evil_too_many_slots);
	tcase_add_test(tc, test_evil_producer_jump);
	tcase_add_test(tc, test_split_event_channels);
	tcase_add_test(tc, test_rx_flood_no_buffers);
	tcase_add_test(tc, test_hotplug);
	tcase_add_test(tc, test_frontend_bad_response_id);
	tcase_add_test(tc, test_frontend_producer_jump);
	suite_add_tcase(s, tc);
	/* netif multi-queue: a case of its own (CK_RUN_CASE=multiqueue) */
	TCase *mq = tcase_create("multiqueue");
	tcase_set_timeout(mq, 120);
	tcase_add_test(mq, test_multiqueue);
	tcase_add_test(mq, test_mq_too_many);
	tcase_add_test(mq, test_mq_zero);
	tcase_add_test(mq, test_mq_junk);
	tcase_add_test(mq, test_mq_missing_ref);
	suite_add_tcase(s, mq);
	/* drvdom-rings from hostile frontends (CK_RUN_CASE=rings) */
	TCase *rk = tcase_create("rings");
	tcase_set_timeout(rk, 120);
	tcase_add_test(rk, test_rings_only);
	tcase_add_test(rk, test_rings_junk);
	tcase_add_test(rk, test_rings_junk_only);
	tcase_add_test(rk, test_rings_bad_port);
	tcase_add_test(rk, test_rings_too_many_queues);
	tcase_add_test(rk, test_rings_bad_ref);
	tcase_add_test(rk, test_rings_no_rx_copy);
	suite_add_tcase(s, rk);
	return s;
}
