// SPDX-License-Identifier: MIT
// `drvdom demo`: the whole system on an embedded default. A temporary run
// dir, a generated disk image, a block driver domain that alone holds it
// and a guest that reaches it only through blkfront; a workload through the
// guest's NBD export with a progress line; midway through it blkdom
// (on_crash = "restart", standby = 1) is killed and the workload carries on:
// the time from the kill to the first I/O completed after it, no error, the
// data verified, one restart in the list; what ran where; the throughput;
// then pings from the guest through netdom (on_crash = "restart") to the
// wire while netdom is killed; then everything torn down.
#include "frontends/nbd/nbd_proto.h"
#include "hv/hvc.h"
#include "tools/nbdc.h"
#include "tools/tool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEMO_DISK_MB 64
#define DEMO_IO_KB 64
#define DEMO_QD 16

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The kill midway through the workload (issue 6). */
static struct {
	bool armed, done;
	double t_kill, first_ms;
} demo_kill;

/* SIGKILL a domain through the hv, saying so; 0 or -errno. */
static int kill_domain(const char *name)
{
	struct hvc *h;
	struct hv_domain_info di;
	int r = tool_connect_hv(&h);
	if (r)
		return r;
	if (!(r = tool_find_domain(h, name, &di))) {
		printf("\n  killing %s (pid %d) …\n", name, (int)di.pid);
		fflush(stdout);
		demo_kill.t_kill = now_s();
		r = hvc_domctl_kill(h, di.domid);
	}
	hvc_close(h);
	return r;
}

static void kill_blkdom(void)
{
	demo_kill.armed = false;
	if (kill_domain("blkdom") == 0)
		demo_kill.done = true;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[PATH_MAX * 3];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The network part: ping from guest1 through netdom to the wire, kill
 * netdom in the middle of a ping run, and show the pings carry on. */
static void net_part(const char *dir)
{
	const char *bin = tool_bin_dir();
	int ok = -1;
	for (int i = 0; i < 50 && ok; i++)
		ok = sh("%s/drvdom exec guest1 -- ping -c 1 -W 1 10.77.0.1 >/dev/null 2>&1", bin);
	if (ok) {
		printf("  (guest1's eth0 did not reach the wire; skipping the network part)\n");
		return;
	}
	printf("\n  guest1 → netfront → ring → netdom → veth → wire (10.77.0.1): 60 pings, "
	       "50 ms apart, netdom killed after 1 s\n");
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		char cmd[PATH_MAX * 2];
		snprintf(cmd, sizeof(cmd),
			 "%s/drvdom exec guest1 -- ping -c 60 -i 0.05 -W 1 10.77.0.1 > %s/ping.out "
			 "2>&1",
			 bin, dir);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	struct timespec one = {1, 0};
	nanosleep(&one, NULL);
	kill_domain("netdom");
	int st;
	waitpid(p, &st, 0);
	char path[PATH_MAX], line[256];
	snprintf(path, sizeof(path), "%s/ping.out", dir);
	FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "packets transmitted") || strstr(line, "rtt "))
			printf("  %s", line);
	if (f)
		fclose(f);
	printf("  netdom restarted; guest1's eth0 kept its MAC and address; a few pings "
	       "in flight at the kill may be lost, TCP would resend them\n\n");
	fflush(stdout);
	char *argv[] = {"list", NULL};
	tool_cmd_list(1, argv);
	fflush(stdout);
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

static int run_create(const char *cfg)
{
	char *argv[] = {"create", (char *)cfg, NULL};
	return tool_cmd_create(2, argv);
}

/* Fill buf with a pattern that names its offset and the pass, so a read
 * that returns the wrong block or stale data is caught. */
static void fill(unsigned char *buf, size_t len, uint64_t off, unsigned pass)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = (off + i) * 0x9E3779B97F4A7C15ull ^ pass;
		memcpy(buf + i, &v, 8);
	}
}

/* Random writes then verified reads over the whole disk, QD requests in
 * flight. Returns 0 or -errno; *mbps gets the throughput. */
static int workload(struct nbdc *c, const char *label, unsigned pass, double *mbps)
{
	const uint32_t io = DEMO_IO_KB << 10;
	const unsigned nblocks = (unsigned)(c->size / io);
	static unsigned char bufs[DEMO_QD][DEMO_IO_KB << 10], expect[DEMO_IO_KB << 10];
	uint64_t offs[DEMO_QD];
	double subs[DEMO_QD];
	unsigned *order = malloc(nblocks * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (unsigned i = 0; i < nblocks; i++)
		order[i] = i;
	srand(pass * 7919 + 1);
	for (unsigned i = nblocks - 1; i > 0; i--) {
		unsigned j = (unsigned)rand() % (i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	double t0 = now_s(), last = 0;
	uint64_t bytes = 0;
	int r = 0;
	for (int phase = 0; phase < 2 && !r; phase++) {
		unsigned next = 0, done = 0;
		uint16_t cmd = phase == 0 ? NBD_CMD_WRITE : NBD_CMD_READ;
		while (done < nblocks && !r) {
			while (next < nblocks && c->inflight < DEMO_QD) {
				uint64_t off = (uint64_t)order[next] * io;
				int s = -1;
				for (int k = 0; k < DEMO_QD; k++)
					if (!c->slots[k].busy) {
						s = k;
						break;
					}
				if (phase == 0)
					fill(bufs[s], io, off, pass);
				int got = nbdc_submit(c, cmd, 0, off, io, bufs[s]);
				if (got < 0) {
					r = got;
					break;
				}
				offs[got] = off;
				subs[got] = now_s();
				next++;
			}
			int s;
			uint32_t err;
			if (!r && (r = nbdc_reap(c, &s, &err)) == 0) {
				if (err) {
					fprintf(stderr,
						"\ndemo: the guest's disk answered error %u\n",
						err);
					r = -EIO;
					break;
				}
				if (demo_kill.done && !demo_kill.first_ms &&
				    subs[s] >= demo_kill.t_kill) {
					demo_kill.first_ms = (now_s() - demo_kill.t_kill) * 1e3;
					printf("\n  first I/O completed %.1f ms after the kill; "
					       "the workload carries on\n",
					       demo_kill.first_ms);
				}
				if (phase == 1) {
					fill(expect, io, offs[s], pass);
					if (memcmp(expect, bufs[s], io)) {
						fprintf(
						    stderr,
						    "\ndemo: data at offset %llu does not match\n",
						    (unsigned long long)offs[s]);
						r = -EIO;
						break;
					}
				}
				done++;
				bytes += io;
				if (demo_kill.armed && phase == 0 && done == nblocks / 2)
					kill_blkdom();
			}
			double t = now_s();
			if (t - last > 0.1 || done == nblocks) {
				last = t;
				printf("\r  %s: %-6s %5.1f%%  %7.1f MB/s", label,
				       phase ? "verify" : "write",
				       100.0 * (phase * nblocks + done) / (2.0 * nblocks),
				       bytes / 1e6 / (t - t0));
				fflush(stdout);
			}
		}
		if (!r && phase == 0)
			r = nbdc_flush(c);
	}
	printf("\n");
	*mbps = bytes / 1e6 / (now_s() - t0);
	free(order);
	return r;
}

/* One line per open fd of a process that is a file, or a count of the
 * rest: what a domain holds is what it can reach. */
static void show_fds(const char *name, pid_t pid)
{
	char dpath[64], p[320], target[PATH_MAX];
	snprintf(dpath, sizeof(dpath), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dpath);
	if (!d)
		return;
	unsigned sockets = 0, anon = 0, memfds = 0;
	struct dirent *de;
	printf("  %-7s pid %-7d holds:", name, (int)pid);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dpath, de->d_name);
		ssize_t n = readlink(p, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (!strncmp(target, "socket:", 7))
			sockets++;
		else if (!strncmp(target, "/memfd:", 7))
			memfds++;
		else if (!strncmp(target, "anon_inode:", 11) || !strncmp(target, "pipe:", 5))
			anon++;
		else
			printf(" %s", target);
	}
	closedir(d);
	/* Granted memory is mapped, not held as fds: count the mappings. */
	snprintf(p, sizeof(p), "/proc/%d/maps", (int)pid);
	FILE *m = fopen(p, "re");
	char line[512], last[256] = "";
	while (m && fgets(line, sizeof(line), m)) {
		char *seg = strstr(line, "/memfd:");
		if (seg && strncmp(seg, last, sizeof(last) - 1)) {
			snprintf(last, sizeof(last), "%s", seg);
			memfds++;
		}
	}
	if (m)
		fclose(m);
	printf(" + %u sockets, %u mapped shared segments, %u event/pipe fds\n", sockets, memfds,
	       anon);
}

static void show_where(bool net)
{
	printf("\nWhat runs where:\n");
	char *argv[] = {"list", NULL};
	tool_cmd_list(1, argv);
	fflush(stdout);
	static const char *const names[] = {"blkdom", "netdom", "guest1"};
	for (int i = 0; i < 3; i++) {
		pid_t pid;
		if ((net || strcmp(names[i], "netdom")) && !tool_domain_netns_pid(names[i], &pid))
			show_fds(names[i], pid);
	}
	printf("  (each domain: own user, mount, pid, ipc and network namespaces, an empty "
	       "root, seccomp)\n");
}

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	char p[PATH_MAX];
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		struct stat st;
		if (!lstat(p, &st) && S_ISDIR(st.st_mode))
			rm_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

int tool_cmd_demo(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char dir[] = "/tmp/drvdom-demo-XXXXXX";
	if (!mkdtemp(dir)) {
		perror("drvdom demo: mkdtemp");
		return 1;
	}
	setenv("DRVDOM_RUN_DIR", dir, 1);
	tool_run_dir_reset();
	printf("drvdom demo: run dir %s\n", dir);

	char img[PATH_MAX], blkcfg[PATH_MAX], gcfg[PATH_MAX], netcfg[PATH_MAX],
	    text[PATH_MAX + 512], sock[PATH_MAX];
	snprintf(netcfg, sizeof(netcfg), "%s/netdom.cfg", dir);
	snprintf(img, sizeof(img), "%s/guest1-xvda.img", dir);
	snprintf(blkcfg, sizeof(blkcfg), "%s/blkdom.cfg", dir);
	snprintf(gcfg, sizeof(gcfg), "%s/guest1.cfg", dir);
	snprintf(sock, sizeof(sock), "%s/guest1/xvda.nbd", dir);
	int rc = 1;
	int fd = open(img, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)DEMO_DISK_MB << 20)) {
		perror("drvdom demo: disk image");
		goto out;
	}
	close(fd);
	write_file(blkcfg, "# the block driver domain: it alone holds the disk\n"
			   "name = \"blkdom\"\n"
			   "driver_domain = 1\n"
			   "kernel = \"drvdom-blkback\"\n"
			   "# killed midway: restarted, a warm spare standing by\n"
			   "on_crash = \"restart\"\n"
			   "standby = 1\n");
	write_file(netcfg, "# the network driver domain: a veth into the wire namespace\n"
			   "name = \"netdom\"\n"
			   "driver_domain = 1\n"
			   "kernel = \"drvdom-netback\"\n"
			   "nic = \"veth:phys0, wire_ip=10.77.0.1/24\"\n"
			   "on_crash = \"restart\"\n");

	printf("\n[1/4] starting drvdom-hv and drvdom-xenstored\n");
	char *upv[] = {"up", NULL};
	if (tool_cmd_up(1, upv))
		goto down;
	printf("\n[2/4] creating the driver domain and the guest\n");
	if (run_create(blkcfg))
		goto down;
	bool net = false;
	if (geteuid() != 0)
		printf("  (network devices need root: the demo goes on without a network)\n");
	else if (!(net = run_create(netcfg) == 0))
		printf("  (netdom did not start: the demo goes on without a network)\n");
	snprintf(text, sizeof(text),
		 "# a guest whose disk is served by blkdom%s\n"
		 "name = \"guest1\"\n"
		 "disk = [ 'target=%s, vdev=xvda, access=rw, backend=blkdom' ]\n%s",
		 net ? ", its network by netdom" : "", img,
		 net ? "vif = [ 'mac=00:16:3e:00:00:02, ip=10.77.0.2/24, backend=netdom' ]\n" : "");
	write_file(gcfg, text);
	if (run_create(gcfg))
		goto down;

	printf("\n[3/4] workload through the guest's disk (NBD at %s)\n", sock);
	struct nbdc c;
	int r = nbdc_connect_wait(sock, DEMO_QD, 10000, &c);
	if (r) {
		fprintf(stderr, "drvdom demo: the guest's disk did not come up: %s\n",
			strerror(-r));
		goto down;
	}
	printf("  guest1's xvda: %llu MiB, %d KiB random writes then verified reads, "
	       "queue depth %d\n",
	       (unsigned long long)(c.size >> 20), DEMO_IO_KB, DEMO_QD);
	double mbps = 0;
	demo_kill.armed = true;
	r = workload(&c, "guest1/xvda", 1, &mbps);
	nbdc_close(&c);
	if (r) {
		fprintf(stderr, "drvdom demo: workload failed: %s\n", strerror(-r));
		goto down;
	}
	show_where(net);
	printf("\n  guest1 → blkfront → ring → blkdom → %s: %.1f MB/s, data verified\n", img, mbps);
	if (demo_kill.done)
		printf("  blkdom was killed midway: first I/O %.1f ms after the kill, no I/O "
		       "error, every block verified (Restarts above)\n",
		       demo_kill.first_ms);
	if (net)
		net_part(dir);
	rc = 0;
down:
	printf("\n[4/4] tearing down\n");
	char *downv[] = {"down", NULL};
	tool_cmd_down(1, downv);
out:
	rm_tree(dir);
	printf("drvdom demo: %s\n", rc ? "FAILED" : "done");
	return rc;
}
