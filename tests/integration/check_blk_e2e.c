// SPDX-License-Identifier: MIT
// The block path end to end with the real processes: `drvdom up`, a block
// driver domain (drvdom-blkback) that alone holds the disk images, a guest
// (drvdom-guest, blkfront) with two disks, and real clients on the guest's
// NBD sockets: qemu-io writing patterns at random offsets and sizes and
// reading them back, qemu-img compare against an expected image built in
// parallel, flush reaching the file (checked once the driver domain is
// destroyed), a read-only disk refusing writes, isolation checked from /proc
// (the guest holds no fd of the image; every shared mapping of blkdom is a
// hv segment, and the guest's among them are only those the guest dedicated
// to blkdom), and `drvdom down` leaving no process behind. Then blkfront
// against a misbehaving backend (blkfront_evilback.c): held requests and a
// backend restart, responses with bad ids, a producer index jump — the
// client sees only latency, the data is right, the guest lives.
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IMG_SIZE (64u << 20)

struct fixture {
	char dir[64];	 /* run dir (DRVDOM_RUN_DIR) */
	char imgdir[64]; /* disk images and configs, outside the run dir */
	char img[3][128];
	char uri[2][256];
	char drvdom[PATH_MAX];
	bool up;
	int watchdog_fd; /* write end: the watchdog cleans up when it closes */
};

static struct fixture fx;

/* Run argv under timeout(1); its stdout goes to out (if not NULL). Returns
 * the exit status. */
static int run(char *const argv[], char *out, size_t outsz)
{
	int pfd[2], status;
	size_t have = 0;
	ck_assert_int_eq(pipe(pfd), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int argc = 0, n = 4;
		while (argv[argc])
			argc++;
		char **args = calloc((size_t)argc + 5, sizeof(char *));
		if (!args)
			_exit(127);
		args[0] = "timeout";
		args[1] = "-k";
		args[2] = "5";
		args[3] = "60";
		for (int i = 0; i < argc; i++)
			args[n++] = argv[i];
		args[n] = NULL;
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execvp("timeout", args);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		char tmp[4096];
		ssize_t n = read(pfd[0], tmp, sizeof(tmp));
		if (n <= 0)
			break;
		if (out && have + 1 < outsz) {
			size_t k = (size_t)n < outsz - 1 - have ? (size_t)n : outsz - 1 - have;
			memcpy(out + have, tmp, k);
			have += k;
		}
	}
	if (out)
		out[have] = 0;
	close(pfd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int drvdom(const char *a1, const char *a2)
{
	char *argv[] = {fx.drvdom, (char *)a1, (char *)a2, NULL};
	return run(argv, NULL, 0);
}

/* qemu-io on uri with -c commands (flags such as "-r" first if given);
 * returns the exit status, output in out (1 MiB, caller frees). */
static int qemu_io_rc(const char *uri, const char *flag, char **cmds, int ncmds, char **out)
{
	char **argv = calloc((size_t)(2 * ncmds + 6), sizeof(char *));
	int n = 0;
	argv[n++] = "qemu-io";
	if (flag)
		argv[n++] = (char *)flag;
	argv[n++] = "-f";
	argv[n++] = "raw";
	argv[n++] = (char *)uri;
	for (int i = 0; i < ncmds; i++) {
		argv[n++] = "-c";
		argv[n++] = cmds[i];
	}
	argv[n] = NULL;
	*out = malloc(1 << 20);
	int rc = run(argv, *out, 1 << 20);
	free(argv);
	return rc;
}

/* qemu-io that must succeed with every pattern verified. */
static void qemu_io(const char *uri, char **cmds, int ncmds)
{
	char *out;
	int rc = qemu_io_rc(uri, NULL, cmds, ncmds, &out);
	const char *bad = strstr(out, "Pattern verification failed");
	if (!bad)
		bad = strstr(out, "failed:");
	if (!bad)
		bad = strlen(out) > 1500 ? out + strlen(out) - 1500 : out;
	ck_assert_msg(rc == 0, "qemu-io exited %d:\n%.1500s", rc, bad);
	ck_assert_msg(!strstr(out, "Pattern verification failed"), "qemu-io: %.1500s", bad);
	ck_assert_msg(!strstr(out, "failed:"), "qemu-io: %.1500s", bad);
	free(out);
}

static void qemu_io1(const char *uri, const char *cmd)
{
	char *c = strdup(cmd);
	qemu_io(uri, &c, 1);
	free(c);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void write_file(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static void make_img(const char *path)
{
	int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, IMG_SIZE), 0);
	close(fd);
}

/* The tail of a console log, for failure messages. */
static void console_tail(const char *dom, char *buf, size_t len)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/console/%s.log", fx.dir, dom);
	buf[0] = 0;
	FILE *f = fopen(p, "r");
	if (!f)
		return;
	static char all[1 << 16];
	size_t n = fread(all, 1, sizeof(all) - 1, f);
	fclose(f);
	all[n] = 0;
	const char *from = n > len - 1 ? all + n - (len - 1) : all;
	memcpy(buf, from, strlen(from) + 1);
}

/* Wait until the export answers a read (the guest connected its disk).
 * Until then the toolstack's listening socket accepts but nobody talks, so
 * each try is bounded. */
static void wait_export(const char *uri)
{
	for (int i = 0; i < 30; i++) {
		char *argv[] = {"timeout", "2",		"qemu-io", "-r",	 "-f",
				"raw",	   (char *)uri, "-c",	   "read 0 512", NULL};
		char out[4096];
		if (run(argv, out, sizeof(out)) == 0 && strstr(out, "read 512/512"))
			return;
		usleep(100000);
	}
	char g[1500], b[1500];
	console_tail("guest1", g, sizeof(g));
	console_tail("blkdom", b, sizeof(b));
	ck_abort_msg("%s never served a read.\nguest1:\n%s\nblkdom:\n%s", uri, g, b);
}

/* Create the guest `name` with the given disk specs (xl syntax). */
static void create_guest(const char *name, const char *disks)
{
	char cfg[PATH_MAX], text[2048];
	snprintf(cfg, sizeof(cfg), "%s/%s.cfg", fx.imgdir, name);
	snprintf(text, sizeof(text), "name = \"%s\"\ndisk = [ %s ]\n", name, disks);
	write_text(cfg, text);
	ck_assert_int_eq(drvdom("create", cfg), 0);
}

/* A test that times out is killed before its teardown runs: a watchdog
 * process (in its own session, so a kill of the test's group spares it)
 * waits for the test process to go away and then runs `drvdom down` and
 * removes the directories, unless teardown told it all is clean. */
static void arm_watchdog(void)
{
	int pfd[2];
	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	pid_t w = fork();
	ck_assert_int_ge(w, 0);
	if (w == 0) {
		close(pfd[1]);
		setsid();
		char c = 0, last = 0;
		while (read(pfd[0], &c, 1) == 1)
			last = c;
		if (last == 'x')
			_exit(0);
		char cmd[PATH_MAX * 2];
		snprintf(cmd, sizeof(cmd), "'%s' down >/dev/null 2>&1; rm -rf '%s' '%s'", fx.drvdom,
			 fx.dir, fx.imgdir);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(pfd[0]);
	fx.watchdog_fd = pfd[1];
}

static void setup(void)
{
	const char *build = getenv("DRVDOM_BUILD");
	ck_assert_msg(build, "DRVDOM_BUILD is not set");
	snprintf(fx.drvdom, sizeof(fx.drvdom), "%s/bin/drvdom", build);
	strcpy(fx.dir, "/tmp/drvdom-blke2e-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fx.dir));
	strcpy(fx.imgdir, "/tmp/drvdom-blke2e-img-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fx.imgdir));
	setenv("DRVDOM_RUN_DIR", fx.dir, 1);
	arm_watchdog();
	for (int i = 0; i < 3; i++) {
		snprintf(fx.img[i], sizeof(fx.img[i]), "%s/disk%d.img", fx.imgdir, i);
		make_img(fx.img[i]);
	}
	ck_assert_int_eq(drvdom("up", NULL), 0);
	fx.up = true;
	char cfg[PATH_MAX];
	snprintf(cfg, sizeof(cfg), "%s/blkdom.cfg", fx.imgdir);
	write_text(cfg, "name = \"blkdom\"\ndriver_domain = 1\nkernel = \"drvdom-blkback\"\n");
	ck_assert_int_eq(drvdom("create", cfg), 0);
	char disks[1024];
	snprintf(disks, sizeof(disks),
		 "'target=%s, vdev=xvda, access=rw, backend=blkdom', "
		 "'target=%s, vdev=xvdb, access=rw, backend=blkdom'",
		 fx.img[0], fx.img[1]);
	create_guest("guest1", disks);
	for (int i = 0; i < 2; i++) {
		snprintf(fx.uri[i], sizeof(fx.uri[i]), "nbd+unix:///?socket=%s/guest1/xvd%c.nbd",
			 fx.dir, 'a' + i);
		wait_export(fx.uri[i]);
	}
}

/* The guest against blkfront_evilback in MODE (misbehaving after K
 * requests) instead of drvdom-blkback, one disk. */
static void setup_evil(const char *mode, const char *extra)
{
	const char *build = getenv("DRVDOM_BUILD");
	ck_assert_msg(build, "DRVDOM_BUILD is not set");
	snprintf(fx.drvdom, sizeof(fx.drvdom), "%s/bin/drvdom", build);
	strcpy(fx.dir, "/tmp/drvdom-blke2e-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fx.dir));
	strcpy(fx.imgdir, "/tmp/drvdom-blke2e-img-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fx.imgdir));
	setenv("DRVDOM_RUN_DIR", fx.dir, 1);
	arm_watchdog();
	snprintf(fx.img[0], sizeof(fx.img[0]), "%s/disk0.img", fx.imgdir);
	make_img(fx.img[0]);
	ck_assert_int_eq(drvdom("up", NULL), 0);
	fx.up = true;
	char cfg[PATH_MAX], text[PATH_MAX + 256];
	snprintf(cfg, sizeof(cfg), "%s/blkdom.cfg", fx.imgdir);
	snprintf(
	    text, sizeof(text),
	    "name = \"blkdom\"\ndriver_domain = 1\nkernel = \"%s/tests/bin/blkfront_evilback\"\n"
	    "extra_args = [ \"%s\", \"40\", \"%s\" ]\n",
	    build, mode, extra);
	write_text(cfg, text);
	ck_assert_int_eq(drvdom("create", cfg), 0);
	char disks[512];
	snprintf(disks, sizeof(disks), "'target=%s, vdev=xvda, access=rw, backend=blkdom'",
		 fx.img[0]);
	create_guest("guest1", disks);
	snprintf(fx.uri[0], sizeof(fx.uri[0]), "nbd+unix:///?socket=%s/guest1/xvda.nbd", fx.dir);
	wait_export(fx.uri[0]);
}

static void setup_evil_restart(void)
{
	setup_evil("restart", "");
}

static void setup_evil_fewer(void)
{
	setup_evil("restart", "fewer");
}

static void setup_evil_connect_only(void)
{
	setup_evil("restart", "connect-only");
}

static void setup_evil_connect_junk(void)
{
	setup_evil("restart", "connect-junk");
}

static void setup_evil_badrsp(void)
{
	setup_evil("badrsp", "");
}

static void setup_evil_jump(void)
{
	setup_evil("jump", "");
}

static void teardown(void)
{
	if (fx.up)
		drvdom("down", NULL);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", fx.dir, fx.imgdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fx.dir);
	if (write(fx.watchdog_fd, "x", 1) != 1)
		fprintf(stderr, "watchdog: %s\n", strerror(errno));
	close(fx.watchdog_fd);
}

/* --- finding the domains' processes ------------------------------------ */

static pid_t read_pidfile(const char *name)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", fx.dir, name);
	FILE *f = fopen(p, "r");
	if (!f)
		return -1;
	long v = -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return (pid_t)v;
}

static pid_t parent_of(pid_t pid)
{
	char p[64], buf[512];
	snprintf(p, sizeof(p), "/proc/%d/stat", pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *e = strrchr(buf, ')');
	int ppid = -1;
	if (!e || sscanf(e + 2, "%*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

/* The process running build/bin/<prog> below the hv (a domain). */
static pid_t domain_pid(const char *prog)
{
	pid_t hv = read_pidfile("hv.pid");
	ck_assert_int_gt(hv, 0);
	DIR *d = opendir("/proc");
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	pid_t found = -1;
	while ((de = readdir(d)) && found < 0) {
		pid_t pid = (pid_t)atoi(de->d_name);
		if (pid <= 0)
			continue;
		char p[64], exe[PATH_MAX];
		snprintf(p, sizeof(p), "/proc/%d/exe", pid);
		ssize_t n = readlink(p, exe, sizeof(exe) - 1);
		if (n <= 0)
			continue;
		exe[n] = 0;
		const char *base = strrchr(exe, '/');
		if (!base || strcmp(base + 1, prog) != 0)
			continue;
		/* The hv's direct child, or a child of that (pid namespace init). */
		pid_t pp = parent_of(pid);
		if (pp == hv || parent_of(pp) == hv)
			found = pid;
	}
	closedir(d);
	ck_assert_msg(found > 0, "no %s process below the hv", prog);
	return found;
}

/* Does pid hold an fd to path? */
static bool holds_file(pid_t pid, const char *path)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/fd", pid);
	DIR *d = opendir(p);
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	bool found = false;
	while ((de = readdir(d))) {
		char l[320], target[PATH_MAX];
		if (de->d_name[0] == '.')
			continue;
		snprintf(l, sizeof(l), "/proc/%d/fd/%s", pid, de->d_name);
		ssize_t n = readlink(l, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (strcmp(target, path) == 0)
			found = true;
	}
	closedir(d);
	return found;
}

/* Shared mappings of a process: name (as in maps) and memfd inode. */
struct smap {
	char name[128];
	unsigned long inode;
	unsigned long size; /* of the mapping */
};

static int shared_maps(pid_t pid, struct smap *out, int cap)
{
	char p[64], line[512];
	snprintf(p, sizeof(p), "/proc/%d/maps", pid);
	FILE *f = fopen(p, "r");
	ck_assert_ptr_nonnull(f);
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, ino;
		char perms[8], name[256] = "";
		if (sscanf(line, "%lx-%lx %7s %*s %*s %lu %255[^\n]", &lo, &hi, perms, &ino, name) <
		    4)
			continue;
		if (perms[3] != 's')
			continue;
		char *nm = name;
		while (*nm == ' ')
			nm++;
		ck_assert_int_lt(n, cap);
		snprintf(out[n].name, sizeof(out[n].name), "%s", nm);
		out[n].inode = ino;
		out[n].size = hi - lo;
		n++;
	}
	fclose(f);
	return n;
}

static bool has_inode(const struct smap *m, int n, unsigned long ino)
{
	for (int i = 0; i < n; i++)
		if (m[i].inode == ino)
			return true;
	return false;
}

static char *xs_read_cmd(const char *path);
static bool dom_logged(const char *dom, const char *what);

/* The domain id of a domain name, from xenstore; -1 if none. */
static int domid_of(const char *name)
{
	for (int d = 1; d < 32; d++) {
		char p[64];
		snprintf(p, sizeof(p), "/local/domain/%d/name", d);
		char *n = xs_read_cmd(p);
		bool match = n && !strcmp(n, name);
		free(n);
		if (match)
			return d;
	}
	return -1;
}

/* --- tests -------------------------------------------------------------- */

/* Random writes (each read back at once) on both disks, 32 pipelined aio
 * writes, then the whole of each disk compared with the image we expect. */
START_TEST(test_patterns_and_compare)
{
	const char *env = getenv("DRVDOM_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) | 1;
	fprintf(stderr, "blk_e2e patterns: seed %llu (DRVDOM_TEST_SEED to repeat)\n",
		(unsigned long long)seed);
	for (int disk = 0; disk < 2; disk++) {
		uint8_t *expect = calloc(1, IMG_SIZE);
		char *cmds[200];
		int n = 0;
		for (int i = 0; i < 40; i++) {
			uint64_t len = 1 + rnd(&seed) % (3u << 20);
			uint64_t off = rnd(&seed) % (IMG_SIZE - len);
			unsigned pat = 1 + (unsigned)(rnd(&seed) % 255);
			if (i % 2 == 0) { /* half sector-aligned, half not */
				off &= ~511ull;
				len = (len + 511) & ~511ull;
			}
			memset(expect + off, (int)pat, len);
			ck_assert_int_gt(asprintf(&cmds[n++], "write -P 0x%02x %llu %llu", pat,
						  (unsigned long long)off, (unsigned long long)len),
					 0);
			ck_assert_int_gt(asprintf(&cmds[n++], "read -P 0x%02x %llu %llu", pat,
						  (unsigned long long)off, (unsigned long long)len),
					 0);
		}
		/* Write-zeroes (NBD WRITE_ZEROES: blkif writes of the shared zero
		 * page), one of them with FUA. */
		for (int i = 0; i < 4; i++) {
			uint64_t len = 512 * (1 + rnd(&seed) % 8192);
			uint64_t off = (rnd(&seed) % (IMG_SIZE - len)) & ~511ull;
			memset(expect + off, 0, len);
			ck_assert_int_gt(asprintf(&cmds[n++], "write -z%s %llu %llu",
						  i == 0 ? " -f" : "", (unsigned long long)off,
						  (unsigned long long)len),
					 0);
			ck_assert_int_gt(asprintf(&cmds[n++], "read -P 0 %llu %llu",
						  (unsigned long long)off, (unsigned long long)len),
					 0);
		}
		/* Pipelined: 32 aio writes to disjoint slots, then reads. */
		uint64_t lens[32];
		for (int i = 0; i < 32; i++) {
			uint64_t slot = (uint64_t)i * (2u << 20),
				 len = lens[i] = 1 + rnd(&seed) % (1u << 20);
			unsigned pat = 1 + (unsigned)(rnd(&seed) % 255);
			memset(expect + slot, (int)pat, len);
			ck_assert_int_gt(asprintf(&cmds[n++], "aio_write -P 0x%02x %llu %llu", pat,
						  (unsigned long long)slot,
						  (unsigned long long)len),
					 0);
		}
		ck_assert_int_gt(asprintf(&cmds[n++], "aio_flush"), 0);
		for (int i = 0; i < 32; i++) {
			uint64_t slot = (uint64_t)i * (2u << 20);
			ck_assert_int_gt(asprintf(&cmds[n++], "aio_read -P 0x%02x %llu %llu",
						  expect[slot], (unsigned long long)slot,
						  (unsigned long long)lens[i]),
					 0);
		}
		ck_assert_int_gt(asprintf(&cmds[n++], "aio_flush"), 0);
		qemu_io(fx.uri[disk], cmds, n);
		for (int i = 0; i < n; i++)
			free(cmds[i]);

		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/expect%d.img", fx.imgdir, disk);
		char *cmp[] = {"qemu-img", "compare", "-f",	    "raw", "-F",
			       "raw",	   path,      fx.uri[disk], NULL};
		write_file(path, expect, IMG_SIZE);
		ck_assert_msg(run(cmp, NULL, 0) == 0, "disk %d differs from the expected image",
			      disk);
		/* The comparison can fail: one changed byte is reported. */
		expect[IMG_SIZE / 2 + 12345] ^= 0xff;
		write_file(path, expect, IMG_SIZE);
		ck_assert_int_eq(run(cmp, NULL, 0), 1);
		free(expect);
	}
}
END_TEST

/* Two clients at once on the two disks (and multi-conn on one). */
START_TEST(test_concurrent_clients)
{
	pid_t kids[3];
	for (int k = 0; k < 3; k++) {
		kids[k] = fork();
		ck_assert_int_ge(kids[k], 0);
		if (kids[k] == 0) {
			int disk = k == 2 ? 0 : k;
			char *cmds[64];
			int n = 0;
			for (int i = 0; i < 16; i++) {
				uint64_t off = (uint64_t)(k * 16 + i) << 20;
				ck_assert_int_gt(
				    asprintf(&cmds[n++], "write -P 0x%02x %llu 1048576",
					     0x40 + k * 16 + i, (unsigned long long)off),
				    0);
			}
			for (int i = 0; i < 16; i++) {
				uint64_t off = (uint64_t)(k * 16 + i) << 20;
				ck_assert_int_gt(asprintf(&cmds[n++], "read -P 0x%02x %llu 1048576",
							  0x40 + k * 16 + i,
							  (unsigned long long)off),
						 0);
			}
			qemu_io(fx.uri[disk], cmds, n);
			_exit(0);
		}
	}
	for (int k = 0; k < 3; k++) {
		int st;
		ck_assert_int_eq(waitpid(kids[k], &st, 0), kids[k]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client %d failed", k);
	}
	/* The guest publishes its counters for drvdom top (every 0.5 s). */
	int g = domid_of("guest1");
	ck_assert_int_gt(g, 0);
	char p[128];
	snprintf(p, sizeof(p), "/local/domain/%d/device/vbd/51712/drvdom-stats", g);
	unsigned long long wr = 0, rd = 0;
	/* Wait for both: a snapshot taken between the clients' writes and
	 * their reads shows every write and only some reads. */
	for (int i = 0; i < 40 && (wr < (32ull << 20) || rd < (32ull << 20)); i++) {
		usleep(100000);
		char *v = xs_read_cmd(p);
		const char *w = v ? strstr(v, "bytes_wr=") : NULL,
			   *r = v ? strstr(v, "bytes_rd=") : NULL;
		if (w && r) {
			sscanf(w, "bytes_wr=%llu", &wr);
			sscanf(r, "bytes_rd=%llu", &rd);
		}
		free(v);
	}
	/* Clients 0 and 2 wrote and read 16 MiB each on xvda. */
	ck_assert_uint_ge(wr, 32ull << 20);
	ck_assert_uint_ge(rd, 32ull << 20);
}
END_TEST

/* A flushed write and a FUA write are in the image file once blkdom is
 * destroyed (the guest's shadow no longer matters then). */
START_TEST(test_flush_reaches_file)
{
	qemu_io1(fx.uri[0], "write -P 0x5a 1048576 65536");
	qemu_io1(fx.uri[0], "flush");
	qemu_io1(fx.uri[0], "write -f -P 0xa5 2097152 4096"); /* FUA */
	qemu_io1(fx.uri[1], "write -P 0x3c 4096 512");
	qemu_io1(fx.uri[1], "flush");
	ck_assert_int_eq(drvdom("destroy", "blkdom"), 0);
	uint8_t buf[65536];
	int fd = open(fx.img[0], O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, 65536, 1048576), 65536);
	for (int i = 0; i < 65536; i++)
		ck_assert_uint_eq(buf[i], 0x5a);
	ck_assert_int_eq(pread(fd, buf, 4096, 2097152), 4096);
	for (int i = 0; i < 4096; i++)
		ck_assert_uint_eq(buf[i], 0xa5);
	ck_assert_int_eq(pread(fd, buf, 512, 0), 512); /* untouched */
	for (int i = 0; i < 512; i++)
		ck_assert_uint_eq(buf[i], 0);
	close(fd);
	fd = open(fx.img[1], O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, 512, 4096), 512);
	for (int i = 0; i < 512; i++)
		ck_assert_uint_eq(buf[i], 0x3c);
	close(fd);
}
END_TEST

/* A disk attached read-only: reads work, every kind of write is refused and
 * the file stays as it was. */
START_TEST(test_read_only_disk)
{
	uint8_t pat[8192];
	memset(pat, 0x77, sizeof(pat));
	int fd = open(fx.img[2], O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, pat, sizeof(pat), 0), (ssize_t)sizeof(pat));
	close(fd);
	char disks[512], uri[256];
	snprintf(disks, sizeof(disks), "'target=%s, vdev=xvda, access=ro, backend=blkdom'",
		 fx.img[2]);
	create_guest("guest2", disks);
	snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s/guest2/xvda.nbd", fx.dir);
	wait_export(uri);

	char *out, *c = "read -P 0x77 0 8192";
	int rc = qemu_io_rc(uri, "-r", &c, 1, &out);
	ck_assert_msg(rc == 0 && !strstr(out, "failed"), "read-only read: %s", out);
	free(out);
	/* Opened read-write, qemu either refuses the read-only export or its
	 * writes fail: either way nothing may reach the file. */
	char *w[] = {"write -P 0x11 0 4096", "discard 0 4096"};
	rc = qemu_io_rc(uri, NULL, w, 2, &out);
	ck_assert_msg(rc != 0 || strstr(out, "failed") || strstr(out, "read-only") ||
			  strstr(out, "Read-only") || strstr(out, "denied"),
		      "a write to a read-only disk looked successful: rc %d: %s", rc, out);
	ck_assert_msg(!strstr(out, "wrote 4096/4096"), "write succeeded: %s", out);
	free(out);
	c = "read -P 0x77 0 8192";
	rc = qemu_io_rc(uri, "-r", &c, 1, &out);
	ck_assert_msg(rc == 0 && !strstr(out, "failed"), "data changed: %s", out);
	free(out);
	fd = open(fx.img[2], O_RDONLY);
	ck_assert_int_eq(pread(fd, pat, sizeof(pat), 0), (ssize_t)sizeof(pat));
	close(fd);
	for (size_t i = 0; i < sizeof(pat); i++)
		ck_assert_uint_eq(pat[i], 0x77);
}
END_TEST

/* The guest never holds an image's fd, and blkdom maps nothing shared but
 * hv segments: its own, and of the guest's only those the guest dedicated
 * to it (not the guest's xenstore page, which xenstored maps). */
START_TEST(test_isolation_from_proc)
{
	qemu_io1(fx.uri[0], "write -P 0x42 0 1048576"); /* rings and pool in use */
	pid_t guest = domain_pid("drvdom-guest");
	pid_t blk = domain_pid("drvdom-blkback");
	pid_t xsd = read_pidfile("xenstored.pid");
	ck_assert_int_gt(xsd, 0);
	for (int i = 0; i < 2; i++) {
		ck_assert_msg(!holds_file(guest, fx.img[i]), "the guest holds %s", fx.img[i]);
		/* The check can fail: blkdom does hold the disk. */
		ck_assert_msg(holds_file(blk, fx.img[i]), "blkdom does not hold %s", fx.img[i]);
	}

	static struct smap bm[4096], gm[4096], xm[4096];
	int nb = shared_maps(blk, bm, 4096), ng = shared_maps(guest, gm, 4096),
	    nx = shared_maps(xsd, xm, 4096);
	/* Domain ids, from the segment names the hv gives: drvdom-seg-d<owner>. */
	char gname[64], bname[64];
	int gseg = -1, bseg = -1;
	for (int i = 0; i < ng && gseg < 0; i++)
		if (sscanf(gm[i].name, "/memfd:drvdom-seg-d%d", &gseg) != 1)
			gseg = -1;
	for (int i = 0; i < nb && bseg < 0; i++) {
		int d;
		if (sscanf(bm[i].name, "/memfd:drvdom-seg-d%d", &d) == 1 && d != gseg)
			bseg = d;
	}
	ck_assert_msg(gseg > 0, "the guest maps no segment of its own");
	snprintf(gname, sizeof(gname), "/memfd:drvdom-seg-d%d", gseg);
	snprintf(bname, sizeof(bname), "/memfd:drvdom-seg-d%d", bseg);
	int guest_segs_in_blk = 0;
	for (int i = 0; i < nb; i++) {
		const char *nm = bm[i].name;
		if (strncmp(nm, gname, strlen(gname)) == 0 &&
		    (nm[strlen(gname)] == ' ' || nm[strlen(gname)] == 0)) {
			/* A segment of the guest: one the guest maps too (so it is
			 * the guest's), and not its xenstore page (xenstored's). */
			ck_assert_msg(has_inode(gm, ng, bm[i].inode),
				      "blkdom maps a guest segment the guest does not: %s", nm);
			ck_assert_msg(!has_inode(xm, nx, bm[i].inode),
				      "blkdom maps the guest's xenstore page");
			guest_segs_in_blk++;
			continue;
		}
		if (bseg > 0 && strncmp(nm, bname, strlen(bname)) == 0)
			continue; /* its own segments (its xenstore page) */
		if (strncmp(nm, "/memfd:drvdom-gnttab", 20) == 0)
			continue; /* its own grant table */
		if (strncmp(nm, "anon_inode:[io_uring]", 21) == 0 || strcmp(nm, "[io_uring]") == 0)
			continue; /* its io_uring rings */
		ck_abort_msg("blkdom has an unexpected shared mapping: '%s'", nm);
	}
	/* The check can fail: blkdom does map the guest's rings and pool. */
	ck_assert_int_gt(guest_segs_in_blk, 0);
	int gnttabs = 0;
	for (int i = 0; i < nb; i++)
		gnttabs += strncmp(bm[i].name, "/memfd:drvdom-gnttab", 20) == 0;
	ck_assert_int_le(gnttabs, 1);
}
END_TEST

/* `drvdom down` ends every process it started: hv, xenstored, domains. */
START_TEST(test_down_leaves_nothing)
{
	pid_t pids[4] = {read_pidfile("hv.pid"), read_pidfile("xenstored.pid"),
			 domain_pid("drvdom-guest"), domain_pid("drvdom-blkback")};
	ck_assert_int_eq(drvdom("down", NULL), 0);
	fx.up = false;
	for (int i = 0; i < 4; i++) {
		ck_assert_int_gt(pids[i], 0);
		bool gone = false;
		for (int t = 0; t < 100 && !gone; t++) {
			char p[64], st = 0, buf[512];
			snprintf(p, sizeof(p), "/proc/%d/stat", pids[i]);
			FILE *f = fopen(p, "r");
			if (!f) {
				gone = true;
				break;
			}
			size_t n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
			buf[n] = 0;
			char *e = strrchr(buf, ')');
			if (e)
				st = e[2];
			gone = st == 'Z' || st == 'X';
			if (!gone)
				usleep(50000);
		}
		ck_assert_msg(gone, "process %d survived drvdom down", pids[i]);
	}
}
END_TEST

/* xenstore-read PATH through the run dir's xenstored; NULL if missing. */
static char *xs_read_cmd(const char *path)
{
	char sock[PATH_MAX], out[4096];
	snprintf(sock, sizeof(sock), "%s/xenstored/socket", fx.dir);
	setenv("XENSTORED_PATH", sock, 1);
	char *argv[] = {"xenstore-read", (char *)path, NULL};
	if (run(argv, out, sizeof(out)) != 0)
		return NULL;
	out[strcspn(out, "\n")] = 0;
	return strdup(out);
}

/* block-detach while a client is connected: the client gets an error, not
 * a hang; the guest and its other disk carry on; block-attach brings the
 * disk back and it serves again. */
START_TEST(test_detach_attach)
{
	pid_t guest = domain_pid("drvdom-guest");
	pid_t kid = fork();
	ck_assert_int_ge(kid, 0);
	if (kid == 0) {
		char *cmds[] = {"write -P 0x21 0 65536", "sleep 1500", "read -P 0x21 0 65536"};
		char *out;
		int rc = qemu_io_rc(fx.uri[1], NULL, cmds, 3, &out);
		/* The read after the detach must fail (or the connection drop). */
		_exit(rc != 0 || strstr(out, "failed") ? 0 : 1);
	}
	usleep(700000);
	char *argv[] = {fx.drvdom, "block-detach", "guest1", "xvdb", NULL};
	ck_assert_int_eq(run(argv, NULL, 0), 0);
	int st;
	ck_assert_int_eq(waitpid(kid, &st, 0), kid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "a client of a detached disk did not see an error");
	ck_assert_int_eq(domain_pid("drvdom-guest"), guest);
	qemu_io1(fx.uri[0], "write -P 0x22 0 65536");
	qemu_io1(fx.uri[0], "read -P 0x22 0 65536");
	/* Attach another image as xvdb. (The same image cannot come back while
	 * blkdom runs: the hv keeps the assigned fd, and its lock, for a
	 * restart; reported to the toolstack and hv owners.) */
	uint8_t pat[65536];
	memset(pat, 0x24, sizeof(pat));
	write_file(fx.img[2], pat, sizeof(pat));
	ck_assert_int_eq(truncate(fx.img[2], IMG_SIZE), 0);
	char spec[512];
	snprintf(spec, sizeof(spec), "target=%s, vdev=xvdb, access=rw, backend=blkdom", fx.img[2]);
	char *att[] = {fx.drvdom, "block-attach", "guest1", spec, NULL};
	ck_assert_int_eq(run(att, NULL, 0), 0);
	wait_export(fx.uri[1]);
	qemu_io1(fx.uri[1], "read -P 0x24 0 65536"); /* the new image's data */
	qemu_io1(fx.uri[1], "write -P 0x23 4096 4096");
	qemu_io1(fx.uri[1], "read -P 0x23 4096 4096");
	ck_assert_int_eq(domain_pid("drvdom-guest"), guest);
}
END_TEST

/* blkdom killed mid-workload: the guest lives, keeps what was unanswered
 * in its shadow, and its client waits (latency, not an error) for a
 * backend to come back. (The hv does not restart driver domains yet; the
 * replay itself is tested with blkfront_evilback.) */
START_TEST(test_backend_killed)
{
	pid_t guest = domain_pid("drvdom-guest");
	pid_t kid = fork();
	ck_assert_int_ge(kid, 0);
	if (kid == 0) {
		char *cmds[64];
		int n = 0;
		for (int i = 0; i < 30; i++) {
			if (asprintf(&cmds[n++], "write -P 0x%02x %d 1048576", 0x30 + i % 16,
				     (i % 32) << 20) < 0)
				_exit(2);
			cmds[n++] = "sleep 100"; /* ms: 3 s in all */
		}
		char *out;
		int rc = qemu_io_rc(fx.uri[0], NULL, cmds, n, &out);
		_exit(rc == 0 && !strstr(out, "failed") ? 0 : 1);
	}
	usleep(500000);
	ck_assert_int_eq(drvdom("kill", "blkdom"), 0);
	sleep(4);
	/* The client is neither done nor failed: it waits. */
	int st;
	ck_assert_msg(waitpid(kid, &st, WNOHANG) == 0,
		      "the client ended (status %d) although its disk's backend is gone",
		      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	ck_assert_int_eq(domain_pid("drvdom-guest"), guest);
	ck_assert_msg(dom_logged("guest1", "backend gone"), "the guest did not notice");
	kill(kid, SIGKILL);
	waitpid(kid, &st, 0);
	/* The other disk's client is held too, not failed; the guest still
	 * accepts NBD connections. */
	ck_assert_int_eq(domain_pid("drvdom-guest"), guest);
}
END_TEST

/* drvdom-guest --loadgen drives blkfront with no NBD hop and reports its
 * results in its xenstore data directory. */
START_TEST(test_loadgen)
{
	char disks[512], text[1024], cfg[PATH_MAX];
	snprintf(disks, sizeof(disks), "'target=%s, vdev=xvda, access=rw, backend=blkdom'",
		 fx.img[2]);
	snprintf(cfg, sizeof(cfg), "%s/lg.cfg", fx.imgdir);
	snprintf(text, sizeof(text),
		 "name = \"lg\"\ndisk = [ %s ]\nextra_args = [ \"--loadgen\", "
		 "\"randwrite:4096:8:0.3;randread:4096:16:0.3;seqwrite:1048576:4:0.3\" ]\n",
		 disks);
	write_text(cfg, text);
	ck_assert_int_eq(drvdom("create", cfg), 0);
	int domid = domid_of("lg");
	ck_assert_int_gt(domid, 0);
	char p[128], *done = NULL;
	snprintf(p, sizeof(p), "/local/domain/%d/data/loadgen/done", domid);
	for (int i = 0; i < 200 && !done; i++) {
		done = xs_read_cmd(p);
		if (!done)
			usleep(50000);
	}
	ck_assert_msg(done && !strcmp(done, "ok"), "loadgen: %s", done ? done : "no result");
	free(done);
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "/local/domain/%d/data/loadgen/%d", domid, i);
		char *r = xs_read_cmd(p);
		ck_assert_ptr_nonnull(r);
		unsigned long long ops = 0;
		const char *o = strstr(r, "ops=");
		ck_assert_msg(o && sscanf(o, "ops=%llu", &ops) == 1 && ops > 0, "loadgen %d: %s", i,
			      r);
		free(r);
	}
}
END_TEST

/* Does a domain's console log hold `what`? */
static bool dom_logged(const char *dom, const char *what)
{
	char p[PATH_MAX], line[1024];
	snprintf(p, sizeof(p), "%s/console/%s.log", fx.dir, dom);
	FILE *f = fopen(p, "r");
	if (!f)
		return false;
	bool found = false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

/* Writes and reads across the backend's misbehaviour: the client sees every
 * request answered right (only latency), the disk equals the expected image,
 * and the guest says what it did about it. */
static void evil_workload(const char *const *expect_logged, int nlogged)
{
	uint64_t seed = 12345;
	uint8_t *expect = calloc(1, IMG_SIZE);
	char *cmds[128];
	int n = 0;
	for (int i = 0; i < 24; i++) {
		uint64_t len = 512 * (1 + rnd(&seed) % 1024);
		uint64_t off = (rnd(&seed) % (IMG_SIZE - len)) & ~511ull;
		unsigned pat = 1 + (unsigned)(rnd(&seed) % 255);
		memset(expect + off, (int)pat, len);
		ck_assert_int_gt(asprintf(&cmds[n++], "write -P 0x%02x %llu %llu", pat,
					  (unsigned long long)off, (unsigned long long)len),
				 0);
		ck_assert_int_gt(asprintf(&cmds[n++], "read -P 0x%02x %llu %llu", pat,
					  (unsigned long long)off, (unsigned long long)len),
				 0);
	}
	for (int i = 0; i < 4; i++) {
		uint64_t len = 512 * (1 + rnd(&seed) % 2048);
		uint64_t off = (rnd(&seed) % (IMG_SIZE - len)) & ~511ull;
		memset(expect + off, 0, len);
		ck_assert_int_gt(asprintf(&cmds[n++], "write -z %llu %llu", (unsigned long long)off,
					  (unsigned long long)len),
				 0);
	}
	ck_assert_int_gt(asprintf(&cmds[n++], "flush"), 0);
	qemu_io(fx.uri[0], cmds, n);
	for (int i = 0; i < n; i++)
		free(cmds[i]);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/expect.img", fx.imgdir);
	char *cmp[] = {"qemu-img", "compare", "-f", "raw", "-F", "raw", path, fx.uri[0], NULL};
	write_file(path, expect, IMG_SIZE);
	ck_assert_msg(run(cmp, NULL, 0) == 0, "the disk differs from the expected image");
	free(expect);
	for (int i = 0; i < nlogged; i++)
		ck_assert_msg(dom_logged("guest1", expect_logged[i]), "the guest never logged '%s'",
			      expect_logged[i]);
	ck_assert_int_gt(domain_pid("drvdom-guest"), 0);
}

/* The backend holds requests and acts like a restarted instance (closes its
 * event channel, Initialising, InitWait): blkfront renegotiates and replays
 * the shadow in order. */
START_TEST(test_evil_restart_replay)
{
	const char *logged[] = {"requests kept for replay", "replaying"};
	evil_workload(logged, 2);
}
END_TEST

/* The first instance took persistent grants and indirect requests; the
 * restarted one takes neither: the replayed requests are re-encoded inline
 * with per-request grants, the large ones split. */
START_TEST(test_evil_restart_fewer_features)
{
	const char *logged[] = {"requests kept for replay", "replaying",
				"64 segments per request, persistent grants, indirect",
				"11 segments per request, flush", "split for this backend"};
	evil_workload(logged, 5);
	ck_assert_msg(dom_logged("blkdom", "acting restarted"), "blkdom never restarted");
	ck_assert_msg(!dom_logged("blkdom", "(0 indirect)"),
		      "no indirect request reached the first instance");
}
END_TEST

/* drvdom-connect, the combined key of the fast reconnect (docs/recovery.md,
 * "Fast reconnect"): from a backend that publishes only it (no sectors
 * key), blkfront connects from it, in any order and past a name it does
 * not know, both times; a malformed one (a name twice, a stray word) that
 * says 16 sectors is refused for the true single keys, both times. */
START_TEST(test_evil_connect_key)
{
	const char *logged[] = {"requests kept for replay", "replaying"};
	evil_workload(logged, 2);
	ck_assert_msg(dom_logged("blkdom", "acting restarted"), "blkdom never restarted");
	ck_assert_msg(!dom_logged("guest1", "without valid 'sectors'"),
		      "blkfront did not take drvdom-connect");
}
END_TEST

/* Responses with unknown, stale, duplicate and out-of-range ids are ignored
 * (logged); what they stood for is replayed after the backend restarts. */
START_TEST(test_evil_bad_responses)
{
	const char *logged[] = {"ignoring response", "unknown id", "stale or duplicate",
				"replaying"};
	evil_workload(logged, 4);
}
END_TEST

/* A response producer index far past the requests sent resets the
 * connection (Closing), not the guest; the new handshake replays. */
START_TEST(test_evil_index_jump)
{
	const char *logged[] = {"broke the ring protocol", "replaying"};
	evil_workload(logged, 2);
}
END_TEST

Suite *blk_e2e_suite(void);
int hdr_blkfront_compiled(void); /* tests/unit/hdr_blkfront.c */

Suite *blk_e2e_suite(void)
{
	(void)hdr_blkfront_compiled;
	Suite *s = suite_create("blk_e2e");
	TCase *t = tcase_create("guest");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 180);
	tcase_add_test(t, test_patterns_and_compare);
	tcase_add_test(t, test_concurrent_clients);
	tcase_add_test(t, test_flush_reaches_file);
	tcase_add_test(t, test_read_only_disk);
	tcase_add_test(t, test_isolation_from_proc);
	tcase_add_test(t, test_loadgen);
	tcase_add_test(t, test_detach_attach);
	tcase_add_test(t, test_backend_killed);
	tcase_add_test(t, test_down_leaves_nothing);
	suite_add_tcase(s, t);

	struct {
		const char *name;
		void (*setup)(void);
		const TTest *test;
	} evil[] = {
	    {"evil-restart", setup_evil_restart, test_evil_restart_replay},
	    {"evil-fewer", setup_evil_fewer, test_evil_restart_fewer_features},
	    {"evil-badrsp", setup_evil_badrsp, test_evil_bad_responses},
	    {"evil-connect-only", setup_evil_connect_only, test_evil_connect_key},
	    {"evil-connect-junk", setup_evil_connect_junk, test_evil_connect_key},
	    {"evil-jump", setup_evil_jump, test_evil_index_jump},
	};
	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		TCase *e = tcase_create(evil[i].name);
		tcase_add_checked_fixture(e, evil[i].setup, teardown);
		tcase_set_timeout(e, 120);
		tcase_add_test(e, evil[i].test);
		suite_add_tcase(s, e);
	}
	return s;
}
