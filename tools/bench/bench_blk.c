// SPDX-License-Identifier: MIT
// `drvdom bench blk`: block throughput and IOPS through NBD → blkfront →
// ring → blkback → a file, beside, in the same run and on the same file in
// page cache: the file itself (the limit: pread/pwrite at QD1, io_uring at
// higher depths), and qemu-nbd and nbdkit serving it (what a user would run
// otherwise), driven by the same NBD client (tools/nbdc.c). Each case runs
// for a fixed time; cases are interleaved across servers so drift on this
// shared machine hits all of them alike.
#include "frontends/nbd/nbd_proto.h"
#include "tools/bench/benchjson.h"
#include "tools/nbdc.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_QD 32
#define BIG (1u << 20)

static double case_secs = 2.0;
static uint64_t file_size = 256ull << 20;
static char dir[64], img[128], bindir[PATH_MAX];
static const char *only; /* --only: run the cases whose name contains this */
static bool no_loadgen;	 /* --no-loadgen */

struct wl {
	const char *name;
	bool write, random;
	uint32_t bs;
	unsigned qd;
};

static const struct wl workloads[] = {
    {"4k randread qd1", false, true, 4096, 1}, {"4k randread qd32", false, true, 4096, 32},
    {"4k randwrite qd1", true, true, 4096, 1}, {"4k randwrite qd32", true, true, 4096, 32},
    {"1m seqread qd4", false, false, BIG, 4},  {"1m seqwrite qd4", true, false, BIG, 4},
};
#define NWL (sizeof(workloads) / sizeof(workloads[0]))

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t next_off(const struct wl *w, uint64_t *seq, uint64_t *seed)
{
	uint64_t nblocks = file_size / w->bs;
	if (w->random)
		return (rnd(seed) % nblocks) * w->bs;
	uint64_t off = (*seq % nblocks) * w->bs;
	(*seq)++;
	return off;
}

static unsigned char *bufs[MAX_QD];

/* One workload over NBD; returns operations per second, or -1. */
static double run_nbd(const char *sock, const struct wl *w)
{
	struct nbdc c;
	if (nbdc_connect_wait(sock, w->qd, 10000, &c))
		return -1;
	uint64_t seq = 0, seed = 88172645463325252ull, ops = 0;
	uint16_t cmd = w->write ? NBD_CMD_WRITE : NBD_CMD_READ;
	double t0 = now_s(), end = t0 + case_secs;
	int err = 0;
	while (!err) {
		while (c.inflight < w->qd && !err) {
			int s = nbdc_submit(&c, cmd, 0, next_off(w, &seq, &seed), w->bs,
					    bufs[c.inflight]);
			if (s < 0)
				err = s;
		}
		int s;
		uint32_t e;
		if (!err && (err = nbdc_reap(&c, &s, &e)) == 0 && e)
			err = -EIO;
		ops++;
		if ((ops & 63) == 0 && now_s() > end)
			break;
	}
	while (!err && c.inflight) {
		int s;
		uint32_t e;
		err = nbdc_reap(&c, &s, &e);
	}
	double t = now_s() - t0;
	nbdc_close(&c);
	return err ? -1 : ops / t;
}

/* The same workload on the file itself: pread/pwrite at QD1, io_uring
 * (buffered) at deeper queues. */
static double run_direct(const struct wl *w)
{
	int fd = open(img, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	uint64_t seq = 0, seed = 88172645463325252ull, ops = 0;
	double t0 = now_s(), end = t0 + case_secs;
	if (w->qd == 1) {
		for (;;) {
			uint64_t off = next_off(w, &seq, &seed);
			ssize_t n = w->write ? pwrite(fd, bufs[0], w->bs, (off_t)off)
					     : pread(fd, bufs[0], w->bs, (off_t)off);
			if (n != (ssize_t)w->bs) {
				close(fd);
				return -1;
			}
			ops++;
			if ((ops & 63) == 0 && now_s() > end)
				break;
		}
	} else {
		struct io_uring ring;
		if (io_uring_queue_init(MAX_QD, &ring, 0)) {
			close(fd);
			return -1;
		}
		unsigned inflight = 0;
		bool stop = false;
		while (!stop || inflight) {
			while (!stop && inflight < w->qd) {
				struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
				uint64_t off = next_off(w, &seq, &seed);
				if (w->write)
					io_uring_prep_write(sqe, fd, bufs[inflight], w->bs, off);
				else
					io_uring_prep_read(sqe, fd, bufs[inflight], w->bs, off);
				inflight++;
			}
			io_uring_submit(&ring);
			struct io_uring_cqe *cqe;
			if (io_uring_wait_cqe(&ring, &cqe))
				break;
			if (cqe->res != (int)w->bs)
				stop = true, ops = 0;
			io_uring_cqe_seen(&ring, cqe);
			inflight--;
			ops++;
			if ((ops & 63) == 0 && now_s() > end)
				stop = true;
		}
		io_uring_queue_exit(&ring);
	}
	double t = now_s() - t0;
	close(fd);
	return ops ? ops / t : -1;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static pid_t spawn(char *const argv[])
{
	pid_t p = fork();
	if (p == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 1);
		dup2(null, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	return p;
}

/* The in-guest load generator (drvdom-guest --loadgen, docs/blkfront.md)
 * drives blkfront directly, no NBD hop. It runs these, in order. */
static const struct wl lg_workloads[] = {
    {"4k randread qd32", false, true, 4096, 32},
    {"4k randwrite qd32", true, true, 4096, 32},
    {"1m seqread qd4", false, false, BIG, 4},
    {"1m seqwrite qd4", true, false, BIG, 4},
};
#define NLG (sizeof(lg_workloads) / sizeof(lg_workloads[0]))

static int sh_out(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sh_out(char *out, size_t len, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	size_t n = fread(out, 1, len - 1, p);
	out[n] = 0;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Replace guest1 with a guest running the load generator on the same disk;
 * ops/s of each lg_workloads entry into ops (-1 where it did not run). */
static void run_loadgen(double *ops)
{
	char spec[512] = "", cfg[PATH_MAX + 512], out[4096];
	for (size_t i = 0; i < NLG; i++) {
		const struct wl *w = &lg_workloads[i];
		char one[64];
		snprintf(one, sizeof(one), "%s%s:%u:%u:%g", i ? ";" : "",
			 w->write ? (w->random ? "randwrite" : "seqwrite")
				  : (w->random ? "randread" : "seqread"),
			 w->bs, w->qd, case_secs);
		strcat(spec, one);
		ops[i] = -1;
	}
	snprintf(cfg, sizeof(cfg), "%s/lg.cfg", dir);
	FILE *f = fopen(cfg, "w");
	fprintf(f,
		"name = \"lg\"\ndisk = [ 'target=%s, vdev=xvda, backend=blkdom' ]\n"
		"extra_args = [ \"--loadgen\", \"%s\" ]\n",
		img, spec);
	fclose(f);
	if (sh("%s/drvdom destroy guest1 >/dev/null && %s/drvdom create %s >/dev/null", bindir,
	       bindir, cfg)) {
		fprintf(stderr, "bench blk: could not start the load generator guest\n");
		return;
	}
	if (sh_out(out, sizeof(out), "%s/drvdom list | awk '$2 == \"lg\" {print $1}'", bindir) ||
	    !out[0])
		return;
	int domid = atoi(out);
	char xs[PATH_MAX + 64];
	snprintf(xs, sizeof(xs), "XENSTORED_PATH=%s/xenstored/socket", dir);
	fprintf(stderr, "bench blk: in-guest load generator (no NBD hop) ...");
	double deadline = now_s() + NLG * case_secs + 30;
	while (now_s() < deadline) {
		if (!sh_out(out, sizeof(out),
			    "%s xenstore-read /local/domain/%d/data/loadgen/done "
			    "2>/dev/null",
			    xs, domid))
			break;
		usleep(100000);
	}
	fprintf(stderr, " %s", out);
	for (size_t i = 0; i < NLG; i++) {
		if (sh_out(out, sizeof(out), "%s xenstore-read /local/domain/%d/data/loadgen/%zu",
			   xs, domid, i))
			continue;
		const char *o = strstr(out, "ops=");
		const char *s = strstr(out, "secs=");
		if (o && s && atof(s + 5) > 0)
			ops[i] = atof(o + 4) / atof(s + 5);
	}
}

#define MAX_ROUNDS 32

struct server {
	const char *name; /* baseline name */
	char sock[160];
	pid_t pid;
	bool up;
	double ops[NWL];		/* the median over the rounds */
	double round_ops[MAX_ROUNDS][NWL]; /* -1 where it did not run */
};

/* Bring up a drvdom instance (hv, xenstored, blkdom, guest1 on img) from
 * the binaries in bin, with its run directory rundir, its disk the file
 * disk (a disk is attached to one instance at a time); its NBD export's
 * socket into sock. 0 when it is up. */
static int drvdom_up(const char *bin, const char *rundir, const char *disk, char *sock,
		     size_t len)
{
	char cfg[PATH_MAX + 256];
	snprintf(cfg, sizeof(cfg), "%s/blkdom.cfg", rundir);
	FILE *f = fopen(cfg, "w");
	if (!f)
		return -1;
	fprintf(f, "name = \"blkdom\"\ndriver_domain = 1\nkernel = \"drvdom-blkback\"\n");
	fclose(f);
	snprintf(cfg, sizeof(cfg), "%s/guest1.cfg", rundir);
	f = fopen(cfg, "w");
	if (!f)
		return -1;
	fprintf(f, "name = \"guest1\"\ndisk = [ 'target=%s, vdev=xvda, backend=blkdom' ]\n", disk);
	fclose(f);
	snprintf(sock, len, "%s/guest1/xvda.nbd", rundir);
	return sh("export DRVDOM_RUN_DIR=%s; %s/drvdom up >/dev/null && "
		  "%s/drvdom create %s/blkdom.cfg >/dev/null && "
		  "%s/drvdom create %s/guest1.cfg >/dev/null",
		  rundir, bin, bin, rundir, bin, rundir);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median of the rounds where the case ran, or -1. */
static double median_ops(const struct server *s, size_t w, unsigned rounds)
{
	double v[MAX_ROUNDS];
	unsigned n = 0;
	for (unsigned r = 0; r < rounds; r++)
		if (s->round_ops[r][w] > 0)
			v[n++] = s->round_ops[r][w];
	if (n == 0)
		return -1;
	qsort(v, n, sizeof(v[0]), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"json", required_argument, NULL, 'j'},
					     {"quick", no_argument, NULL, 'q'},
					     {"only", required_argument, NULL, 'o'},
					     {"no-loadgen", no_argument, NULL, 'n'},
					     {"ab", required_argument, NULL, 'a'},
					     {"rounds", required_argument, NULL, 'r'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *json = NULL, *ab = NULL;
	unsigned rounds = 1;
	int o;
	while ((o = getopt_long(argc, argv, "j:qo:na:r:h", opts, NULL)) != -1) {
		if (o == 'j')
			json = optarg;
		else if (o == 'a')
			ab = optarg;
		else if (o == 'r' && atoi(optarg) >= 1 && atoi(optarg) <= MAX_ROUNDS)
			rounds = (unsigned)atoi(optarg);
		else if (o == 'o')
			only = optarg;
		else if (o == 'n')
			no_loadgen = true;
		else if (o == 'q')
			case_secs = 0.5, file_size = 64ull << 20;
		else {
			printf("usage: drvdom-bench-blk [--quick] [--json FILE] [--only TEXT] "
			       "[--no-loadgen] [--rounds N] [--ab BINDIR]\n"
			       "  --quick        0.5 s per case on a 64 MiB file (else 2 s, 256 MiB)\n"
			       "  --json FILE    also write the results as JSON\n"
			       "  --only TEXT    only the NBD cases whose name contains TEXT\n"
			       "                 (e.g. \"qd1\", \"1m seqwrite\")\n"
			       "  --no-loadgen   skip the in-guest load generator\n"
			       "  --rounds N     run the NBD cases N times (<= 32), servers\n"
			       "                 interleaved; the table shows the medians\n"
			       "  --ab BINDIR    also a second drvdom instance from the binaries\n"
			       "                 in BINDIR (\"drvdom-b\", e.g. main's build), for\n"
			       "                 A/B comparisons in the same minutes\n");
			return o == 'h' ? 0 : 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	ssize_t n = readlink("/proc/self/exe", bindir, sizeof(bindir) - 1);
	if (n <= 0)
		return 1;
	bindir[n] = 0;
	*strrchr(bindir, '/') = 0;
	for (int i = 0; i < MAX_QD; i++) {
		bufs[i] = aligned_alloc(4096, BIG);
		memset(bufs[i], 0x5a + i, BIG);
	}
	strcpy(dir, "/tmp/drvdom-bench-blk-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	/* A file full of data, read once so it sits in page cache. */
	int fd = open(img, O_CREAT | O_RDWR, 0600);
	for (uint64_t off = 0; off < file_size; off += BIG)
		if (pwrite(fd, bufs[off / BIG % MAX_QD], BIG, (off_t)off) != BIG)
			return 1;
	fsync(fd);
	close(fd);

	enum { NSRV = 5 };
	struct server srv[NSRV] = {{.name = "drvdom"},
				   {.name = "direct"},
				   {.name = "qemu-nbd"},
				   {.name = "nbdkit"},
				   {.name = "drvdom-b"}};
	fprintf(stderr, "bench blk: starting drvdom (blkdom + guest) on a %llu MiB file\n",
		(unsigned long long)(file_size >> 20));
	setenv("DRVDOM_RUN_DIR", dir, 1);
	/* With --ab each instance has its own copy of the disk (a disk is
	 * attached to one instance at a time; and the two start alike: a
	 * fresh copy, in page cache, written only by its own instance). */
	char bdir[sizeof(dir) + 8], aimg[sizeof(dir) + 16], bimg[sizeof(bdir) + 16];
	snprintf(bdir, sizeof(bdir), "%s/b", dir);
	snprintf(aimg, sizeof(aimg), "%s/a.img", dir);
	snprintf(bimg, sizeof(bimg), "%s/disk.img", bdir);
	if (ab && (mkdir(bdir, 0700) ||
		   sh("cp %s %s && cp %s %s && cat %s %s >/dev/null", img, aimg, img, bimg, aimg,
		      bimg))) {
		fprintf(stderr, "bench blk: cannot copy the disk for --ab\n");
		return 1;
	}
	srv[0].up = !drvdom_up(bindir, dir, ab ? aimg : img, srv[0].sock, sizeof(srv[0].sock));
	if (ab) {
		srv[4].up = !drvdom_up(ab, bdir, bimg, srv[4].sock, sizeof(srv[4].sock));
		if (!srv[4].up)
			fprintf(stderr, "bench blk: drvdom from %s did not come up; see %s/*.log\n",
				ab, bdir);
	}
	srv[1].up = true;
	snprintf(srv[2].sock, sizeof(srv[2].sock), "%s/qemu.nbd", dir);
	char *qargv[] = {"qemu-nbd", "-k", srv[2].sock,		"-f", "raw", "-e",
			 "8",	     "-t", "--cache=writeback", img,  NULL};
	srv[2].pid = spawn(qargv);
	snprintf(srv[3].sock, sizeof(srv[3].sock), "%s/nbdkit.nbd", dir);
	char *kargv[] = {"nbdkit", "-f", "-U", srv[3].sock, "file", img, NULL};
	srv[3].pid = spawn(kargv);
	for (int s = 2; s < 4; s++) {
		struct nbdc c;
		srv[s].up = !nbdc_connect_wait(srv[s].sock, 1, 5000, &c);
		if (srv[s].up)
			nbdc_close(&c);
		else
			fprintf(stderr,
				"bench blk: %s not available (scripts/install-deps.sh "
				"bench installs it)\n",
				srv[s].name);
	}
	if (!srv[0].up)
		fprintf(stderr, "bench blk: drvdom did not come up; see %s/*.log\n", dir);

	/* Each round runs every case on every server, cases interleaved;
	 * with --ab the two drvdom instances swap places every round, so
	 * neither always runs right after the other. */
	for (unsigned rd = 0; rd < rounds; rd++) {
		for (size_t w = 0; w < NWL; w++) {
			static const int order[2][NSRV] = {{0, 4, 1, 2, 3}, {4, 0, 1, 2, 3}};
			for (int i = 0; i < NSRV; i++) {
				int s = order[rd % 2][i];
				srv[s].round_ops[rd][w] = -1;
				if (!srv[s].up || (only && !strstr(workloads[w].name, only)))
					continue;
				fprintf(stderr, "bench blk: %-18s %-8s ...", workloads[w].name,
					srv[s].name);
				srv[s].round_ops[rd][w] = s == 1 ? run_direct(&workloads[w])
								 : run_nbd(srv[s].sock, &workloads[w]);
				fprintf(stderr, " %.0f ops/s\n", srv[s].round_ops[rd][w]);
			}
			if (rounds == 1 || srv[3].round_ops[rd][w] <= 0)
				continue;
			fprintf(stderr, "bench blk: round %u %s vs nbdkit:", rd + 1,
				workloads[w].name);
			for (int s = 0; s < NSRV; s += 2)
				if (srv[s].round_ops[rd][w] > 0)
					fprintf(stderr, " %s %.2fx", srv[s].name,
						srv[s].round_ops[rd][w] / srv[3].round_ops[rd][w]);
			fprintf(stderr, "\n");
		}
	}
	for (int s = 0; s < NSRV; s++)
		for (size_t w = 0; w < NWL; w++)
			srv[s].ops[w] = median_ops(&srv[s], w, rounds);

	double lg_ops[NLG], lg_direct[NLG];
	if (srv[0].up && !no_loadgen) {
		run_loadgen(lg_ops);
		for (size_t i = 0; i < NLG; i++) {
			fprintf(stderr, "bench blk: %-18s direct (io_uring) ...",
				lg_workloads[i].name);
			lg_direct[i] = run_direct(&lg_workloads[i]);
			fprintf(stderr, " %.0f ops/s\n", lg_direct[i]);
		}
	}

	struct bench_report rep;
	bench_report_init(&rep, "blk");
	for (size_t w = 0; w < NWL; w++) {
		const struct wl *wl = &workloads[w];
		bool big = wl->bs >= BIG;
		double scale = big ? wl->bs / 1e6 : 1e-3;
		const char *unit = big ? "MB/s" : "kIOPS";
		double v = srv[0].ops[w] * scale;
		char name[80];
		snprintf(name, sizeof(name), "nbd %s", wl->name);
		for (int s = 2; s < 4; s++)
			if (srv[0].ops[w] > 0 && srv[s].ops[w] > 0)
				bench_report_add(&rep, name, unit, v, srv[s].name,
						 srv[s].ops[w] * scale, BENCH_HIGHER_BETTER, 1.0);
		if (srv[0].ops[w] > 0 && srv[1].ops[w] > 0)
			bench_report_add(&rep, name, unit, v, "direct", srv[1].ops[w] * scale,
					 BENCH_HIGHER_BETTER, 0);
		snprintf(name, sizeof(name), "nbd %s (drvdom-b)", wl->name);
		for (int s = 2; s < 4; s++)
			if (srv[4].ops[w] > 0 && srv[s].ops[w] > 0)
				bench_report_add(&rep, name, unit, srv[4].ops[w] * scale,
						 srv[s].name, srv[s].ops[w] * scale,
						 BENCH_HIGHER_BETTER, 1.0);
	}
	/* Targets: randread QD32 >= 0.5x the file, sequential >= 0.6x. */
	for (size_t i = 0; srv[0].up && !no_loadgen && i < NLG; i++) {
		const struct wl *wl = &lg_workloads[i];
		bool big = wl->bs >= BIG;
		double scale = big ? wl->bs / 1e6 : 1e-3;
		char name[80];
		snprintf(name, sizeof(name), "in-guest blkfront %s", wl->name);
		double target = big ? 0.6 : (!wl->write ? 0.5 : 0);
		if (lg_ops[i] > 0 && lg_direct[i] > 0)
			bench_report_add(&rep, name, big ? "MB/s" : "kIOPS", lg_ops[i] * scale,
					 "direct", lg_direct[i] * scale, BENCH_HIGHER_BETTER,
					 target);
	}
	bench_report_print(&rep, stdout);
	if (json && bench_report_write_json(&rep, json))
		fprintf(stderr, "bench blk: cannot write %s\n", json);
	bench_report_free(&rep);

	for (int s = 2; s < 4; s++)
		if (srv[s].pid > 0) {
			kill(srv[s].pid, SIGTERM);
			waitpid(srv[s].pid, NULL, 0);
		}
	if (ab)
		sh("DRVDOM_RUN_DIR=%s %s/drvdom down >/dev/null", bdir, ab);
	sh("%s/drvdom down >/dev/null; rm -rf %s", bindir, dir);
	return srv[0].up ? 0 : 1;
}
