// SPDX-License-Identifier: MIT
// `drvdom up` / `drvdom down`: start and stop the two dom0 daemons of a run
// dir, drvdom-hv and drvdom-xenstored. Both are idempotent. `down` asks the
// hv to stop (SIGTERM), which kills every domain it runs; nothing of the
// instance is left but its logs.
#include "tools/tool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct daemon_desc {
	const char *name;   /* program in the bin dir */
	const char *pidrel; /* pidfile, relative to the run dir */
	const char *sockrel;
	int socktype;
};

static const struct daemon_desc hv_desc = {"drvdom-hv", "hv.pid", "hv/socket", SOCK_SEQPACKET};
static const struct daemon_desc xs_desc = {"drvdom-xenstored", "xenstored.pid", "xenstored/socket",
					   SOCK_STREAM};

static bool socket_answers(const char *rel, int type)
{
	char path[PATH_MAX];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (tool_path(path, sizeof(path), rel) || strlen(path) >= sizeof(sa.sun_path))
		return false;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

bool tool_hv_running(void)
{
	return socket_answers(hv_desc.sockrel, hv_desc.socktype);
}

static pid_t read_pidfile(const char *rel)
{
	char path[PATH_MAX], buf[32];
	if (tool_path(path, sizeof(path), rel))
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	long pid = strtol(buf, NULL, 10);
	return pid > 1 ? (pid_t)pid : -1;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Start one daemon detached, logging to RUN/NAME.log; wait until its socket
 * answers. */
static int daemon_start(const struct daemon_desc *d, char *const extra[])
{
	if (socket_answers(d->sockrel, d->socktype))
		return 0;
	char prog[PATH_MAX], logpath[PATH_MAX], pidpath[PATH_MAX], lrel[64];
	snprintf(prog, sizeof(prog), "%s/%s", tool_bin_dir(), d->name);
	snprintf(lrel, sizeof(lrel), "%s.log", d->name + strlen("drvdom-"));
	if (tool_path(logpath, sizeof(logpath), lrel) ||
	    tool_path(pidpath, sizeof(pidpath), d->pidrel))
		return -ENAMETOOLONG;
	if (access(prog, X_OK)) {
		fprintf(stderr, "drvdom: %s: %s\n", prog, strerror(errno));
		return -ENOENT;
	}
	char *argv[16];
	int argc = 0;
	argv[argc++] = prog;
	for (int i = 0; extra[i] && argc < 15; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;

	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		setsid();
		int null = open("/dev/null", O_RDONLY);
		int log = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (null >= 0)
			dup2(null, 0);
		if (log >= 0) {
			dup2(log, 1);
			dup2(log, 2);
		}
		execv(prog, argv);
		_exit(127);
	}
	FILE *pf = fopen(pidpath, "we");
	if (pf) {
		fprintf(pf, "%d\n", (int)pid);
		fclose(pf);
	}
	for (int waited = 0; waited < 10000; waited += 10) {
		if (socket_answers(d->sockrel, d->socktype))
			return 0;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "drvdom: %s exited at start; see %s\n", d->name, logpath);
			unlink(pidpath);
			return -ECHILD;
		}
		sleep_ms(10);
	}
	fprintf(stderr, "drvdom: %s did not come up in 10 s; see %s\n", d->name, logpath);
	return -ETIMEDOUT;
}

static int daemon_stop(const struct daemon_desc *d)
{
	char pidpath[PATH_MAX], sockpath[PATH_MAX];
	tool_path(pidpath, sizeof(pidpath), d->pidrel);
	tool_path(sockpath, sizeof(sockpath), d->sockrel);
	pid_t pid = read_pidfile(d->pidrel);
	if (pid > 0) {
		int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (pfd >= 0) {
			syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0);
			struct pollfd p = {.fd = pfd, .events = POLLIN};
			if (poll(&p, 1, 10000) <= 0) {
				fprintf(stderr, "drvdom: %s did not stop in 10 s: killing it\n",
					d->name);
				syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
				poll(&p, 1, 5000);
			}
			close(pfd);
		}
		/* Reap it if it was our child (drvdom up and down in one process). */
		waitpid(pid, NULL, WNOHANG);
	}
	unlink(pidpath);
	unlink(sockpath);
	return 0;
}

int tool_cmd_up(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char dir[PATH_MAX], hvsock[PATH_MAX], xssock[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", tool_run_dir());
	if (mkdir(dir, 0700) && errno != EEXIST) {
		fprintf(stderr, "drvdom: cannot create run dir %s: %s\n", dir, strerror(errno));
		return 1;
	}
	tool_path(xssock, sizeof(xssock), "xenstored");
	mkdir(xssock, 0700);
	tool_path(hvsock, sizeof(hvsock), hv_desc.sockrel);
	tool_path(xssock, sizeof(xssock), xs_desc.sockrel);

	char *hv_args[] = {"--run-dir", dir, "--foreground", NULL};
	int r = daemon_start(&hv_desc, hv_args);
	if (r)
		return 1;
	/* The toolstack has no daemon of its own: xenstored, the hv's dom0
	 * subscriber, cleans up after domains that die for good. */
	char *xs_args[] = {"--socket", xssock,	       "--hv-socket",
			   hvsock,     "--foreground", "--clean-dead-domains",
			   NULL};
	r = daemon_start(&xs_desc, xs_args);
	if (r) {
		daemon_stop(&hv_desc);
		return 1;
	}
	printf("drvdom is up: run dir %s (hv pid %d, xenstored pid %d)\n", dir,
	       (int)read_pidfile(hv_desc.pidrel), (int)read_pidfile(xs_desc.pidrel));
	return 0;
}

int tool_cmd_down(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	daemon_stop(&xs_desc);
	daemon_stop(&hv_desc);
	tool_wire_stop();
	/* Guests' directories: only their NBD sockets are in them. */
	DIR *d = opendir(tool_run_dir());
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char p[PATH_MAX];
		if (de->d_type != DT_DIR || de->d_name[0] == '.' || !strcmp(de->d_name, "hv") ||
		    !strcmp(de->d_name, "xenstored") || !strcmp(de->d_name, "console"))
			continue;
		if (!tool_path(p, sizeof(p), de->d_name))
			tool_rm_guest_dir(p);
	}
	if (d)
		closedir(d);
	printf("drvdom is down: run dir %s\n", tool_run_dir());
	return 0;
}
