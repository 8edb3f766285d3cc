// SPDX-License-Identifier: MIT
// drvdom bench net (drvdom-bench-net): the network path measured against a
// direct veth pair in the same run (docs/bench-net.md). It brings up its own
// drvdom instance in a temporary run dir (hv, xenstored, a netback driver
// domain whose NIC is a veth into the wire namespace, one guest with a vif)
// and, beside it, two network namespaces joined by a plain veth pair (the
// baseline "veth": the limit, no isolation). In each it runs iperf3 TCP with
// 1 and 4 streams both directions, iperf3 UDP 64-byte datagrams (packets
// per second received) and ping round trips, then prints a table of ratios
// (> 1: drvdom better) with the issue's targets as pass/miss, and writes
// --json FILE. Root only (veth pairs, namespaces). Not a test: it asserts
// nothing and exits 0 once it measured.
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/bench/benchjson.h"

static char bindir[PATH_MAX], run[64], out[1 << 20], created[512];
static int secs = 5;
static pid_t ns_a, ns_b; /* holders of the baseline's two namespaces */

/* Run a shell command, output (stdout+stderr) in out; exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 8, fmt, ap);
	va_end(ap);
	strcat(cmd, " 2>&1");
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static pid_t ns_holder(void)
{
	pid_t p = fork();
	if (p == 0) {
		execlp("unshare", "unshare", "-n", "sleep", "100000", (char *)NULL);
		_exit(127);
	}
	return p;
}

static void cleanup(void)
{
	if (run[0]) {
		sh("drvdom down; rm -rf '%s'", run);
		run[0] = 0;
	}
	if (ns_a > 0)
		kill(ns_a, SIGKILL), waitpid(ns_a, NULL, 0), ns_a = 0;
	if (ns_b > 0)
		kill(ns_b, SIGKILL), waitpid(ns_b, NULL, 0), ns_b = 0;
}

static void fail(const char *what)
{
	fprintf(stderr, "drvdom-bench-net: %s\n%s\n", what, out);
	cleanup();
	exit(1);
}

/* How to run a command on each side of a setup. */
struct side {
	char client[256], server[128]; /* command prefixes */
	char server_ip[32];
};

static int net_queues; /* --net-queues N: the guest's netif queues at most */

/* Write the two domain configs (cpus: the cpus = key of both, or NULL) and
 * create the domains; wait until the guest reaches the wire. */
static void create_domains(const char *kernel, const char *cpus)
{
	FILE *f;
	char p[PATH_MAX], key[64] = "", args[64] = "";
	if (cpus)
		snprintf(key, sizeof(key), "cpus = \"%s\"\n", cpus);
	if (net_queues) /* netif multi-queue (drvdom-guest's --net-queues=N) */
		snprintf(args, sizeof(args), "extra_args = [ '--net-queues=%d' ]\n", net_queues);
	snprintf(p, sizeof(p), "%s/netdom.cfg", run);
	if (!(f = fopen(p, "w")))
		fail("cannot write netdom.cfg");
	fprintf(f,
		"name = \"netdom\"\nkernel = \"drvdom-netback\"\ndriver_domain = 1\n"
		"nic = \"veth:phys0, wire_ip=10.77.0.1/24\"\n%s",
		key);
	fclose(f);
	snprintf(p, sizeof(p), "%s/guest.cfg", run);
	if (!(f = fopen(p, "w")))
		fail("cannot write guest.cfg");
	fprintf(f,
		"name = \"guest\"\nkernel = \"%s\"\n"
		"vif = [ 'mac=00:16:3e:00:00:02, ip=10.77.0.2/24, backend=netdom' ]\n%s%s",
		kernel, key, args);
	fclose(f);
	if (sh("drvdom create %s/netdom.cfg && drvdom create %s/guest.cfg", run, run))
		fail("cannot create the domains");
	snprintf(created, sizeof(created), "%.500s", out); /* says where they went */
	for (char *nl; (nl = strchr(created, '\n'));)
		nl[1] ? (void)(*nl = ';') : (void)(*nl = 0);
	for (int i = 0; i < 100; i++) {
		if (!sh("drvdom exec guest -- ping -c 1 -W 1 10.77.0.1"))
			break;
		if (i == 99)
			fail("the guest never reached the wire");
	}
}

static int setup_drvdom(struct side *s, const char *kernel)
{
	snprintf(run, sizeof(run), "/tmp/drvdom-bench-net-XXXXXX");
	if (!mkdtemp(run))
		return -errno;
	setenv("DRVDOM_RUN_DIR", run, 1);
	if (sh("drvdom up"))
		fail("cannot start drvdom");
	create_domains(kernel, NULL);
	snprintf(s->client, sizeof(s->client), "drvdom exec guest --");
	snprintf(s->server, sizeof(s->server), "drvdom exec wire --");
	snprintf(s->server_ip, sizeof(s->server_ip), "10.77.0.1");
	return 0;
}

/* The same domains again, both with cpus = (drvdom exec then runs the
 * client there too). The wire's end of the old NIC goes away with netdom,
 * a moment after destroy returns. */
static void replace_domains(const char *kernel, const char *cpus)
{
	sh("drvdom destroy guest; drvdom destroy netdom");
	for (int i = 0; i < 50 && !sh("drvdom exec wire -- ip link show phys0"); i++)
		usleep(100000);
	create_domains(kernel, cpus);
}

static int setup_veth(struct side *s)
{
	ns_a = ns_holder();
	ns_b = ns_holder();
	for (int i = 0; i < 100; i++) {
		if (!sh("[ $(readlink /proc/%d/ns/net) != $(readlink /proc/self/ns/net) ] && "
			"[ $(readlink /proc/%d/ns/net) != $(readlink /proc/self/ns/net) ]",
			(int)ns_a, (int)ns_b))
			break;
		usleep(10000);
	}
	if (sh("ip link add bvA netns %d type veth peer name bvB netns %d && "
	       "nsenter -t %d -n sh -c 'ip addr add 10.78.0.2/24 dev bvA && ip link set bvA up "
	       "&& ip link set lo up' && "
	       "nsenter -t %d -n sh -c 'ip addr add 10.78.0.1/24 dev bvB && ip link set bvB up "
	       "&& ip link set lo up'",
	       (int)ns_a, (int)ns_b, (int)ns_a, (int)ns_b))
		fail("cannot set up the baseline veth pair");
	snprintf(s->client, sizeof(s->client), "nsenter -t %d -n", (int)ns_a);
	snprintf(s->server, sizeof(s->server), "nsenter -t %d -n", (int)ns_b);
	snprintf(s->server_ip, sizeof(s->server_ip), "10.78.0.1");
	for (int i = 0; i < 100 && sh("%s ping -c 1 -W 1 %s", s->client, s->server_ip); i++)
		;
	return 0;
}

/* A number after "key": at or after from in out; NAN if absent. */
static double json_num(const char *from, const char *key)
{
	char k[64];
	snprintf(k, sizeof(k), "\"%s\":", key);
	const char *p = from ? strstr(from, k) : NULL;
	return p ? strtod(p + strlen(k), NULL) : -1;
}

/* One iperf3 run; TCP: Gbit/s received; UDP: packets/s received. */
static double iperf(const struct side *s, const char *args, bool udp)
{
	static int port = 5300;
	port++;
	if (sh("%s iperf3 -s -1 -p %d >/dev/null 2>&1 & sleep 0.3; "
	       "%s iperf3 -c %s -p %d -t %d -J %s; wait",
	       s->server, port, s->client, s->server_ip, port, secs, args))
		fail("iperf3 failed");
	const char *end = strstr(out, "\"end\":");
	if (!udp)
		return json_num(end ? strstr(end, "\"sum_received\":") : NULL, "bits_per_second") /
		       1e9;
	/* received datagrams: bytes the receiver counted / 64 (iperf3's packet
	 * and loss counters disagree when datagrams arrive out of order) */
	const char *sr = end ? strstr(end, "\"sum_received\":") : NULL;
	double bytes = json_num(sr, "bytes"), t = json_num(sr, "seconds");
	return t > 0 && bytes >= 0 ? bytes / 64.0 / t : -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Ping round trips in microseconds: median (robust to a loaded host) and
 * mean, from every reply's time= (interval 2 ms: each ping finds the path
 * asleep, the worst case for wake-ups). */
static void ping_us(const struct side *s, double *p50, double *avg)
{
	if (sh("%s ping -c %d -i 0.002 %s", s->client, secs * 100, s->server_ip))
		fail("ping failed");
	static double t[100000];
	size_t n = 0;
	double sum = 0;
	for (const char *p = out; (p = strstr(p, "time=")) && n < 100000; p += 5) {
		t[n] = strtod(p + 5, NULL) * 1000.0;
		sum += t[n++];
	}
	if (!n) {
		*p50 = *avg = -1;
		return;
	}
	qsort(t, n, sizeof(t[0]), cmp_double);
	*p50 = t[n / 2];
	*avg = sum / (double)n;
}

static const struct {
	const char *name, *args;
	bool udp;
	double target;
} tests[] = {
    {"tcp 1 stream guest->wire", "", false, 0.5},
    {"tcp 1 stream wire->guest", "-R", false, 0.5},
    {"tcp 4 streams guest->wire", "-P 4", false, 0},
    {"tcp 4 streams wire->guest", "-P 4 -R", false, 0},
    {"udp 64 B guest->wire", "-u -b 0 -l 64", true, 0},
    {"udp 64 B wire->guest", "-u -b 0 -l 64 -R", true, 0},
};

/* Every case on drvdom (d) and veth (v), rows named NAME plus suffix
 * (targets only on the default configuration's rows, suffix ""). TCP
 * first: it also makes netback map every buffer page of a new guest once
 * (persistent grants), which the first pass over the rings would
 * otherwise pay for in the pings. */
static void measure(struct bench_report *rep, const struct side *d, const struct side *v,
		    const char *suffix)
{
	char name[128];
	bool dflt = !suffix[0];
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		double a = iperf(d, tests[i].args, tests[i].udp);
		double b = iperf(v, tests[i].args, tests[i].udp);
		snprintf(name, sizeof(name), "%s%s", tests[i].name, suffix);
		printf("  %-36s drvdom %10.3f  veth %10.3f %s\n", name, a, b,
		       tests[i].udp ? "pkt/s" : "Gbit/s");
		fflush(stdout);
		bench_report_add(rep, name, tests[i].udp ? "pkt/s" : "Gbit/s", a, "veth", b,
				 BENCH_HIGHER_BETTER, dflt ? tests[i].target : 0);
	}
	double a50, aavg, b50, bavg, mn, avg;
	/* Two seconds with nothing sent first: the pings measure an idle path,
	 * and an automatic placement that yielded to the streams above is
	 * back on its CPU (docs/hv.md "CPU placement": after 1-1.5 s idle). */
	sleep(2);
	ping_us(d, &a50, &aavg);
	ping_us(v, &b50, &bavg);
	snprintf(name, sizeof(name), "ping rtt p50 guest->wire%s", suffix);
	bench_report_add(rep, name, "us", a50, "veth", b50, BENCH_LOWER_BETTER, dflt ? 0.1 : 0);
	snprintf(name, sizeof(name), "ping rtt mean guest->wire%s", suffix);
	bench_report_add(rep, name, "us", aavg, "veth", bavg, BENCH_LOWER_BETTER, dflt ? 0.1 : 0);
	printf("  %-36s drvdom p50 %.1f mean %.1f  veth p50 %.1f mean %.1f us\n", "ping", a50, aavg,
	       b50, bavg);
	sh("%s ping -q -c 1000 -i 0 %s", d->client, d->server_ip);
	const char *p = strstr(out, "rtt min/avg/max/mdev = ");
	if (p && sscanf(p, "rtt min/avg/max/mdev = %lf/%lf", &mn, &avg) == 2) {
		snprintf(name, sizeof(name), "ping rtt back-to-back (-i 0)%s", suffix);
		bench_report_add(rep, name, "us", avg * 1000, NULL, 0, BENCH_LOWER_BETTER, 0);
	}
	int nb = 0, g = 0;
	if (!sh("drvdom list | awk '$2 == \"netdom\" { n = $1 } $2 == \"guest\" { g = $1 } "
		"END { print n, g }'"))
		sscanf(out, "%d %d", &nb, &g);
	sh("XENSTORED_PATH=%s/xenstored/socket xenstore-read "
	   "/local/domain/%d/backend/vif/%d/0/drvdom-stats",
	   run, nb, g);
	printf("  netback vif counters: %s", out);
	sh("XENSTORED_PATH=%s/xenstored/socket xenstore-read "
	   "/local/domain/%d/data/drvdom-nic-stats",
	   run, nb);
	printf("  netback NIC counters: %s", out);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"json", required_argument, NULL, 'j'},
					     {"time", required_argument, NULL, 't'},
					     {"guest-kernel", required_argument, NULL, 'g'},
					     {"cpus", required_argument, NULL, 'c'},
					     {"net-queues", required_argument, NULL, 'q'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *json = NULL, *kernel = NULL, *cpus = NULL;
	if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
		cpus = "all"; /* the second configuration: unplaced */
	int c;
	while ((c = getopt_long(argc, argv, "j:t:g:c:q:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cpus = strcmp(optarg, "none") ? optarg : NULL;
			break;
		case 'j':
			json = optarg;
			break;
		case 't':
			secs = atoi(optarg) > 0 ? atoi(optarg) : 5;
			break;
		case 'g':
			kernel = optarg;
			break;
		case 'q':
			net_queues = atoi(optarg);
			break;
		default:
			printf(
			    "usage: drvdom-bench-net [--time SECONDS] [--json FILE] "
			    "[--guest-kernel PATH] [--cpus LIST|all|none] [--net-queues N]\n"
			    "TCP (1 and 4 streams, both ways), UDP 64-byte packet rate and ping\n"
			    "round trips from a guest through netback to the wire, beside a "
			    "direct\n"
			    "veth pair, first with the default configuration (the toolstack's\n"
			    "automatic placement), then with cpus = LIST on netdom and the guest\n"
			    "(--cpus, default all: unplaced; none: skip; a list places the veth\n"
			    "side's client there too). --net-queues N: the guest (drvdom-guest)\n"
			    "may use N netif queues (netback offers one per CPU it may run on).\n"
			    "Root only.\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (geteuid() != 0) {
		fprintf(stderr, "drvdom-bench-net: needs root (veth pairs, namespaces)\n");
		return 1;
	}
	ssize_t n = readlink("/proc/self/exe", bindir, sizeof(bindir) - 1);
	if (n <= 0)
		return 1;
	bindir[n] = 0;
	*strrchr(bindir, '/') = 0;
	char path[PATH_MAX + 4096], kpath[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s:%s", bindir, getenv("PATH") ? getenv("PATH") : "");
	setenv("PATH", path, 1);
	if (!kernel) {
		snprintf(kpath, sizeof(kpath), "%s/drvdom-guest", bindir);
		if (access(kpath, X_OK))
			snprintf(kpath, sizeof(kpath), "%s/../tests/bin/netfront_dom", bindir);
		kernel = kpath;
	}
	if (sh("command -v iperf3 ping nsenter unshare ip"))
		fail("needs iperf3, ping, nsenter, unshare and ip (scripts/install-deps.sh)");

	struct side d, v;
	setup_drvdom(&d, kernel);
	setup_veth(&v);
	struct bench_report rep;
	bench_report_init(&rep, "net");
	printf("drvdom bench net: %d s per run, guest kernel %s\n", secs, kernel);
	printf("default configuration: %s\n", created);
	measure(&rep, &d, &v, "");
	if (cpus) {
		/* The same domains with cpus = LIST (all: the scheduler places
		 * them); a list places the veth side's client there too (drvdom
		 * exec runs on the guest's CPUs). Servers stay unplaced. */
		char suffix[96];
		struct side vp = v;
		if (strlen(cpus) > 64)
			fail("--cpus: list too long");
		replace_domains(kernel, cpus);
		if (strcmp(cpus, "all"))
			snprintf(vp.client, sizeof(vp.client), "taskset -c %.64s %.128s", cpus,
				 v.client);
		snprintf(suffix, sizeof(suffix), ", cpus=%s", cpus);
		printf("netdom and guest with cpus = \"%s\":\n", cpus);
		measure(&rep, &d, &vp, suffix);
	}
	cleanup();
	bench_report_print(&rep, stdout);
	int r = 0;
	if (json && (r = bench_report_write_json(&rep, json)))
		fprintf(stderr, "drvdom-bench-net: %s: %s\n", json, strerror(-r));
	bench_report_free(&rep);
	return r ? 1 : 0;
}
