// SPDX-License-Identifier: MIT
// `drvdom bench xenstore` (drvdom-bench-xenstore): throughput and latency of
// drvdom-xenstored through the libxenstore-compatible client library. It
// starts a private daemon on a socket in a temp dir (or uses --socket), then
// measures reads, writes and watch-event deliveries per second with 1, 2
// and 8 clients (one connection and thread each), and the latency (p50, p99,
// max) of a read while a writer commits transactions, beside the same read
// on an idle store, and the same read on a handle with a watch (its reader
// thread running, as in every domain) with the wake-ups each read costs:
// voluntary context switches of this process's threads and of the
// daemon's, per read. Prints a table; --json FILE writes the records;
// --quick shortens every phase. Not a test: it asserts nothing.
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/bench/benchjson.h"
#include "xenstore/include/xenstore.h"

static double phase_secs = 2.0;
static atomic_bool stop_flag;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct xs_handle *open_or_die(void)
{
	struct xs_handle *h = xs_open(0);
	if (!h) {
		fprintf(stderr, "drvdom-bench-xenstore: xs_open: %s\n", strerror(errno));
		exit(1);
	}
	return h;
}

enum op { OP_READ, OP_WRITE };

struct worker {
	pthread_t th;
	int id;
	enum op op;
	uint64_t ops;
	uint64_t errors;
};

static void *rw_worker(void *arg)
{
	struct worker *w = arg;
	struct xs_handle *h = open_or_die();
	char path[64];
	snprintf(path, sizeof(path), "/bench/rw/c%d", w->id);
	xs_write(h, XBT_NULL, path, "0123456789abcdef", 16);
	while (!atomic_load(&stop_flag)) {
		unsigned int len;
		if (w->op == OP_READ) {
			void *v = xs_read(h, XBT_NULL, path, &len);
			w->errors += v == NULL;
			free(v);
		} else {
			w->errors += !xs_write(h, XBT_NULL, path, "0123456789abcdef", 16);
		}
		w->ops++;
	}
	xs_close(h);
	return NULL;
}

static double run_rw(enum op op, int n)
{
	struct worker ws[8];
	atomic_store(&stop_flag, false);
	for (int i = 0; i < n; i++) {
		ws[i] = (struct worker){.id = i, .op = op};
		pthread_create(&ws[i].th, NULL, rw_worker, &ws[i]);
	}
	usleep(50000); /* let them connect */
	uint64_t start_ops = 0;
	for (int i = 0; i < n; i++)
		start_ops +=
		    atomic_load_explicit((_Atomic uint64_t *)&ws[i].ops, memory_order_relaxed);
	double t0 = now();
	usleep((useconds_t)(phase_secs * 1e6));
	uint64_t end_ops = 0;
	for (int i = 0; i < n; i++)
		end_ops +=
		    atomic_load_explicit((_Atomic uint64_t *)&ws[i].ops, memory_order_relaxed);
	double t1 = now();
	atomic_store(&stop_flag, true);
	for (int i = 0; i < n; i++)
		pthread_join(ws[i].th, NULL);
	return (double)(end_ops - start_ops) / (t1 - t0);
}

struct watcher {
	pthread_t th;
	_Atomic uint64_t events;
	_Atomic bool ready;
	double last;
};

static void *watch_worker(void *arg)
{
	struct watcher *w = arg;
	struct xs_handle *h = open_or_die();
	xs_watch(h, "/bench/ev", "tok");
	unsigned int num;
	free(xs_read_watch(h, &num)); /* the registration event */
	atomic_store(&w->ready, true);
	while (!atomic_load(&stop_flag)) {
		char **e = xs_read_watch(h, &num);
		if (!e)
			break;
		free(e);
		atomic_fetch_add(&w->events, 1);
		w->last = now();
	}
	xs_close(h);
	return NULL;
}

/* Events delivered per second to n watchers while one client writes. */
static double run_watch(int n)
{
	struct watcher ws[8];
	struct xs_handle *wr = open_or_die();
	xs_write(wr, XBT_NULL, "/bench/ev", "", 0);
	atomic_store(&stop_flag, false);
	for (int i = 0; i < n; i++) {
		atomic_init(&ws[i].events, 0);
		atomic_init(&ws[i].ready, false);
		ws[i].last = 0;
		pthread_create(&ws[i].th, NULL, watch_worker, &ws[i]);
	}
	for (int i = 0; i < n; i++)
		while (!atomic_load(&ws[i].ready))
			usleep(1000);
	double t0 = now();
	uint64_t writes = 0;
	while (now() - t0 < phase_secs) {
		xs_write(wr, XBT_NULL, "/bench/ev/x", "1", 1);
		writes++;
	}
	/* Wait for the tail of the deliveries. */
	uint64_t want = writes * (uint64_t)n, got = 0;
	double deadline = now() + 5;
	while (now() < deadline) {
		got = 0;
		for (int i = 0; i < n; i++)
			got += atomic_load(&ws[i].events);
		if (got >= want)
			break;
		usleep(1000);
	}
	double last = t0;
	for (int i = 0; i < n; i++)
		if (ws[i].last > last)
			last = ws[i].last;
	atomic_store(&stop_flag, true);
	xs_write(wr, XBT_NULL, "/bench/ev/x", "1", 1); /* wake the watchers */
	for (int i = 0; i < n; i++)
		pthread_join(ws[i].th, NULL);
	xs_close(wr);
	if (got < want)
		fprintf(stderr, "drvdom-bench-xenstore: %llu of %llu events arrived\n",
			(unsigned long long)got, (unsigned long long)want);
	return (double)got / (last - t0);
}

static void *tx_writer(void *arg)
{
	(void)arg;
	struct xs_handle *h = open_or_die();
	char path[64];
	while (!atomic_load(&stop_flag)) {
		xs_transaction_t t = xs_transaction_start(h);
		for (int i = 0; i < 10; i++) {
			unsigned int len;
			snprintf(path, sizeof(path), "/bench/tx/k%d", i);
			free(xs_read(h, t, path, &len));
			xs_write(h, t, path, "value-value-value", 17);
		}
		xs_transaction_end(h, t, false);
	}
	xs_close(h);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static pid_t daemon_pid = -1;

/* Voluntary context switches (the times a thread went to sleep, so the
 * wake-ups it needed) of every thread of process pid (0: this one). */
static long vcsw(pid_t pid)
{
	if (pid == 0) {
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		return ru.ru_nvcsw;
	}
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	long sum = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[sizeof(dir) + 256 + 16], line[128];
		snprintf(path, sizeof(path), "%s/%s/status", dir, e->d_name);
		FILE *f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0)
				sum += atol(line + 24);
		if (f)
			fclose(f);
	}
	closedir(d);
	return sum;
}

/* Read latency (µs) percentiles, with or without a transaction writer; with
 * watched, on a handle that has a watch (its reader thread runs), and the
 * wake-ups per read of our threads (*wk_self) and the daemon's (*wk_xsd). */
static void run_latency(bool with_writer, bool watched, double *p50, double *p99, double *max,
			double *wk_self, double *wk_xsd)
{
	struct xs_handle *h = open_or_die();
	xs_write(h, XBT_NULL, "/bench/tx/k0", "x", 1);
	if (watched) {
		unsigned int num;
		xs_watch(h, "/bench/lat-w", "tok");
		free(xs_read_watch(h, &num)); /* the registration event */
	}
	pthread_t th;
	atomic_store(&stop_flag, false);
	if (with_writer)
		pthread_create(&th, NULL, tx_writer, NULL);
	usleep(50000);
	size_t cap = 1 << 20, n = 0;
	double *lat = malloc(cap * sizeof(*lat));
	if (!lat)
		exit(1);
	long s0 = vcsw(0), x0 = daemon_pid > 0 ? vcsw(daemon_pid) : -1;
	double t0 = now();
	while (now() - t0 < phase_secs && n < cap) {
		unsigned int len;
		double a = now();
		free(xs_read(h, XBT_NULL, "/bench/tx/k0", &len));
		lat[n++] = (now() - a) * 1e6;
	}
	long s1 = vcsw(0), x1 = daemon_pid > 0 ? vcsw(daemon_pid) : -1;
	if (wk_self)
		*wk_self = (double)(s1 - s0) / (double)n;
	if (wk_xsd)
		*wk_xsd = x0 >= 0 && x1 >= 0 ? (double)(x1 - x0) / (double)n : NAN;
	atomic_store(&stop_flag, true);
	if (with_writer)
		pthread_join(th, NULL);
	qsort(lat, n, sizeof(*lat), cmp_double);
	*p50 = lat[n / 2];
	*p99 = lat[(size_t)((double)n * 0.99)];
	*max = lat[n - 1];
	free(lat);
	xs_close(h);
}

static pid_t start_daemon(char *sock, size_t sz, char *dir, size_t dsz)
{
	char self[PATH_MAX], bin[PATH_MAX + 32];
	ssize_t l = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (l < 0)
		return -1;
	self[l] = 0;
	*strrchr(self, '/') = 0;
	snprintf(bin, sizeof(bin), "%s/drvdom-xenstored", self);
	snprintf(dir, dsz, "/tmp/drvdom-bench-xs-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(sock, sz, "%s/sock", dir);
	pid_t pid = fork();
	if (pid == 0) {
		execl(bin, bin, "--socket", sock, "--foreground", (char *)NULL);
		_exit(127);
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	for (int i = 0; i < 500; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			return pid;
		}
		close(fd);
		usleep(10000);
	}
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"json", required_argument, NULL, 'j'},
					     {"quick", no_argument, NULL, 'q'},
					     {"socket", required_argument, NULL, 's'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *json = NULL, *sock_arg = NULL;
	int o;
	while ((o = getopt_long(argc, argv, "j:qs:h", opts, NULL)) != -1) {
		switch (o) {
		case 'j':
			json = optarg;
			break;
		case 'q':
			phase_secs = 0.3;
			break;
		case 's':
			sock_arg = optarg;
			break;
		default:
			printf("usage: drvdom-bench-xenstore [--quick] [--json FILE] "
			       "[--socket PATH]\n");
			return o == 'h' ? 0 : 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	char sock[256], dir[64];
	pid_t pid = -1;
	if (sock_arg) {
		snprintf(sock, sizeof(sock), "%s", sock_arg);
	} else if ((pid = start_daemon(sock, sizeof(sock), dir, sizeof(dir))) < 0) {
		fprintf(stderr, "drvdom-bench-xenstore: cannot start drvdom-xenstored\n");
		return 1;
	}
	daemon_pid = pid;
	setenv("XENSTORED_PATH", sock, 1);

	struct bench_report r;
	bench_report_init(&r, "xenstore");
	static const int clients[] = {1, 2, 8};
	char name[80];
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "read, %d client%s", clients[i],
			 clients[i] > 1 ? "s" : "");
		bench_report_add(&r, name, "ops/s", run_rw(OP_READ, clients[i]), NULL, 0,
				 BENCH_HIGHER_BETTER, 0);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "write, %d client%s", clients[i],
			 clients[i] > 1 ? "s" : "");
		bench_report_add(&r, name, "ops/s", run_rw(OP_WRITE, clients[i]), NULL, 0,
				 BENCH_HIGHER_BETTER, 0);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "watch events, %d watcher%s", clients[i],
			 clients[i] > 1 ? "s" : "");
		bench_report_add(&r, name, "events/s", run_watch(clients[i]), NULL, 0,
				 BENCH_HIGHER_BETTER, 0);
	}
	double i50, i99, imax, b50, b99, bmax;
	double w50, w99, wmax, wks, wkx, iks, ikx;
	run_latency(false, false, &i50, &i99, &imax, &iks, &ikx);
	run_latency(true, false, &b50, &b99, &bmax, NULL, NULL);
	run_latency(false, true, &w50, &w99, &wmax, &wks, &wkx);
	bench_report_add(&r, "read latency p50, tx writer busy", "us", b50, "idle store", i50,
			 BENCH_LOWER_BETTER, 0);
	bench_report_add(&r, "read latency p99, tx writer busy", "us", b99, "idle store", i99,
			 BENCH_LOWER_BETTER, 0);
	bench_report_add(&r, "read latency max, tx writer busy", "us", bmax, "idle store", imax,
			 BENCH_LOWER_BETTER, 0);
	bench_report_add(&r, "read latency p50, handle with a watch", "us", w50, "no watch", i50,
			 BENCH_LOWER_BETTER, 0);
	bench_report_add(&r, "read latency p99, handle with a watch", "us", w99, "no watch", i99,
			 BENCH_LOWER_BETTER, 0);
	bench_report_add(&r, "client wake-ups per read, handle with a watch", "", wks, "no watch",
			 iks, BENCH_LOWER_BETTER, 0);
	bench_report_add(&r, "xenstored wake-ups per read, handle with a watch", "", wkx,
			 "no watch", ikx, BENCH_LOWER_BETTER, 0);
	bench_report_print(&r, stdout);
	int ret = 0;
	if (json && bench_report_write_json(&r, json) < 0) {
		fprintf(stderr, "drvdom-bench-xenstore: writing %s failed\n", json);
		ret = 1;
	}
	bench_report_free(&r);
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			ret = ret ? ret : 0;
	}
	return ret;
}
