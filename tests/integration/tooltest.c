// SPDX-License-Identifier: MIT
// See tooltest.h.
#include "tests/integration/tooltest.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct tt *tt_live;

/* A failed check ends the test process with exit(): tear down from there
 * too, so no daemon or domain outlives a failing test. */
static void tt_atexit(void)
{
	if (tt_live)
		tt_fini(tt_live);
}

void tt_init(struct tt *t)
{
	memset(t, 0, sizeof(*t));
	const char *b = getenv("DRVDOM_BUILD");
	ck_assert_msg(b != NULL, "DRVDOM_BUILD is not set");
	snprintf(t->bin, sizeof(t->bin), "%s/bin", b);
	snprintf(t->tbin, sizeof(t->tbin), "%s/tests/bin", b);
	strcpy(t->run, "/tmp/drvdom-tt-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t->run));
	setenv("DRVDOM_RUN_DIR", t->run, 1);
	char path[4096];
	snprintf(path, sizeof(path), "%s:%s", t->bin, getenv("PATH") ? getenv("PATH") : "");
	setenv("PATH", path, 1);
	if (!tt_live)
		atexit(tt_atexit);
	tt_live = t;
}

void tt_fini(struct tt *t)
{
	if (!t->run[0])
		return;
	tt_sh(t, "drvdom down; rm -rf '%s'", t->run);
	t->run[0] = 0;
	if (tt_live == t)
		tt_live = NULL;
}

int tt_sh(struct tt *t, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 8, fmt, ap);
	va_end(ap);
	strcat(cmd, " 2>&1");
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	size_t n = fread(t->out, 1, sizeof(t->out) - 1, p);
	t->out[n] = 0;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *tt_file(struct tt *t, const char *rel, const char *text)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", t->run, rel);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return path;
}

int tt_procs_using(const struct tt *t)
{
	DIR *d = opendir("/proc");
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char p[300], buf[4096];
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(p, sizeof(p), "/proc/%s/cmdline", de->d_name);
		int fd = open(p, O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		for (ssize_t i = 0; i < len; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[len] = 0;
		if (strstr(buf, t->run))
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

/* The hv's child whose environment says DRVDOM_DOMID=id (not a zombie). */
int tt_dom_pid(struct tt *t, int id)
{
	char p[600], want[32];
	snprintf(p, sizeof(p), "%s/hv.pid", t->run);
	FILE *f = fopen(p, "r");
	if (!f || id < 0) {
		if (f)
			fclose(f);
		return 0;
	}
	int hv = 0;
	if (fscanf(f, "%d", &hv) != 1)
		hv = -1;
	fclose(f);
	snprintf(want, sizeof(want), "DRVDOM_DOMID=%d", id);
	DIR *d = opendir("/proc");
	struct dirent *de;
	int found = 0;
	while (d && (de = readdir(d)) && !found) {
		int pid = atoi(de->d_name), ppid = 0;
		if (pid <= 0)
			continue;
		snprintf(p, sizeof(p), "/proc/%d/stat", pid);
		if (!(f = fopen(p, "r")))
			continue;
		char comm[64], st;
		if (fscanf(f, "%*d (%63[^)]) %c %d", comm, &st, &ppid) != 3)
			ppid = 0;
		fclose(f);
		if (ppid != hv || st == 'Z')
			continue;
		snprintf(p, sizeof(p), "/proc/%d/environ", pid);
		if (!(f = fopen(p, "r")))
			continue;
		char env[4096];
		size_t n = fread(env, 1, sizeof(env) - 1, f);
		env[n] = 0;
		fclose(f);
		for (size_t i = 0; i < n; i += strlen(env + i) + 1)
			if (!strcmp(env + i, want))
				found = pid;
	}
	if (d)
		closedir(d);
	return found;
}

/* Every thread of process pid may run on exactly the CPUs in want. */
void tt_assert_cpus(int pid, const char *want)
{
	char p[64], line[256];
	snprintf(p, sizeof(p), "/proc/%d/task", pid);
	DIR *d = opendir(p);
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char sp[320];
		snprintf(sp, sizeof(sp), "/proc/%d/task/%s/status", pid, de->d_name);
		FILE *f = fopen(sp, "r");
		if (!f)
			continue; /* the thread ended */
		while (fgets(line, sizeof(line), f)) {
			if (!strncmp(line, "Cpus_allowed_list:", 18)) {
				char *v = line + 18;
				v += strspn(v, " \t");
				v[strcspn(v, "\n")] = 0;
				ck_assert_msg(!strcmp(v, want), "pid %d thread %s on CPUs %s, not %s",
					      pid, de->d_name, v, want);
				n++;
			}
		}
		fclose(f);
	}
	closedir(d);
	ck_assert_int_gt(n, 0);
}
