// SPDX-License-Identifier: MIT
// See hvtest_hv.h.
#include "tests/integration/hvtest_hv.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void hvt_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static const char *hvt_build(void)
{
	const char *b = getenv("DRVDOM_BUILD");
	return b ? b : "build";
}

int hvt_hv_connect(const struct hvt_hv *h)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%.80s/run/hv/socket", h->dir) >=
	    sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int hvt_hv_start(struct hvt_hv *h, int as_uid)
{
	char prog[PATH_MAX], run[PATH_MAX], log[PATH_MAX];
	snprintf(h->dir, sizeof(h->dir), "/tmp/drvdom-hvtest-XXXXXX");
	if (!mkdtemp(h->dir))
		return -errno;
	chmod(h->dir, 0755);
	snprintf(prog, sizeof(prog), "%s/bin/drvdom-hv", hvt_build());
	snprintf(run, sizeof(run), "%s/run", h->dir);
	snprintf(log, sizeof(log), "%s/hv.log", h->dir);
	if (mkdir(run, 0700))
		return -errno;
	if (as_uid >= 0 && chown(run, (uid_t)as_uid, (gid_t)as_uid))
		return -errno;
	h->pid = fork();
	if (h->pid < 0)
		return -errno;
	if (h->pid == 0) {
		int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (lfd >= 0)
			dup2(lfd, 2);
		if (as_uid >= 0 &&
		    (setgroups(0, NULL) || setresgid((gid_t)as_uid, (gid_t)as_uid, (gid_t)as_uid) ||
		     setresuid((uid_t)as_uid, (uid_t)as_uid, (uid_t)as_uid)))
			_exit(126);
		execl(prog, prog, "--run-dir", run, "--foreground", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		int fd = hvt_hv_connect(h);
		if (fd >= 0) {
			h->fd = fd;
			return 0;
		}
		int st;
		if (waitpid(h->pid, &st, WNOHANG) == h->pid)
			return -ECHILD;
		hvt_sleep_ms(10);
	}
	return -ETIMEDOUT;
}

int hvt_hv_stop(struct hvt_hv *h)
{
	int st = -ETIMEDOUT;
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	kill(h->pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(h->pid, &st, WNOHANG) == h->pid)
			break;
		st = -ETIMEDOUT;
		hvt_sleep_ms(10);
	}
	if (st == -ETIMEDOUT) {
		kill(h->pid, SIGKILL);
		waitpid(h->pid, NULL, 0);
	}
	if (!getenv("HVTEST_KEEP")) {
		char cmd[PATH_MAX];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
		int r = system(cmd);
		(void)r;
	}
	return st;
}

int hvt_create(int fd, const char *name, const char *kernel, const char *const *args,
	       domid_t *domid, struct hv_create_rep *rep)
{
	static uint8_t p[HV_MSG_MAX];
	char kpath[PATH_MAX];
	struct hv_create_req q = {0};
	snprintf(q.name, sizeof(q.name), "%s", name);
	if (strchr(kernel, '/'))
		snprintf(kpath, sizeof(kpath), "%s", kernel);
	else
		snprintf(kpath, sizeof(kpath), "%s/tests/bin/%s", hvt_build(), kernel);
	size_t len = sizeof(q);
	q.nr_strings = 1;
	memcpy(p + len, kpath, strlen(kpath) + 1);
	len += strlen(kpath) + 1;
	for (unsigned i = 0; args && args[i]; i++) {
		memcpy(p + len, args[i], strlen(args[i]) + 1);
		len += strlen(args[i]) + 1;
		q.nr_strings++;
	}
	memcpy(p, &q, sizeof(q));
	struct hvt_msg *m = malloc(sizeof(*m));
	int r = hvt_call(fd, HV_OP_DOMCTL_CREATE, p, len, NULL, 0, m);
	struct hv_create_rep cr;
	memcpy(&cr, m->payload, sizeof(cr));
	free(m);
	if (r)
		return r;
	if (domid)
		*domid = cr.domid;
	if (rep)
		*rep = cr;
	return 0;
}

int hvt_domid_op(int fd, uint32_t op, domid_t domid)
{
	struct hv_domid_req q = {.domid = domid};
	return hvt_call(fd, op, &q, sizeof(q), NULL, 0, NULL);
}

int hvt_info(int fd, domid_t domid, struct hv_domain_info *info)
{
	struct hv_domain_info_req q = {.domid = domid};
	struct hvt_msg *m = malloc(sizeof(*m));
	int r = hvt_call(fd, HV_OP_DOMAIN_INFO, &q, sizeof(q), NULL, 0, m);
	if (!r)
		memcpy(info, m->payload, sizeof(*info));
	free(m);
	return r;
}

void hvt_log_path(const struct hvt_hv *h, const char *name, char *buf, size_t cap)
{
	if (name)
		snprintf(buf, cap, "%s/run/console/%s.log", h->dir, name);
	else
		snprintf(buf, cap, "%s/hv.log", h->dir);
}

void hvt_log_read(const struct hvt_hv *h, const char *name, char *buf, size_t cap)
{
	char path[PATH_MAX];
	hvt_log_path(h, name, path, sizeof(path));
	buf[0] = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, cap - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
}

bool hvt_log_wait(const struct hvt_hv *h, const char *name, const char *needle, int timeout_ms)
{
	static char buf[1 << 20];
	for (int waited = 0;; waited += 10) {
		hvt_log_read(h, name, buf, sizeof(buf));
		if (strstr(buf, needle))
			return true;
		if (waited >= timeout_ms)
			return false;
		hvt_sleep_ms(10);
	}
}

int hvt_wait_exit(int fd, domid_t domid, int timeout_ms, struct hv_evt_domain_exit *out)
{
	for (;;) {
		struct hvt_msg *m = malloc(sizeof(*m));
		int r = hvt_wait_event(fd, HV_EVT_DOMAIN_EXIT, timeout_ms, m);
		if (r) {
			free(m);
			return r;
		}
		struct hv_evt_domain_exit ev;
		memcpy(&ev, m->payload, sizeof(ev));
		free(m);
		if (ev.domid == domid) {
			if (out)
				*out = ev;
			return 0;
		}
	}
}
