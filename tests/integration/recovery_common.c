// SPDX-License-Identifier: MIT
// See recovery_common.h.
#include "tests/integration/recovery_common.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void rc_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* A failed check ends the test process with _exit (fork mode), so
 * tooltest's atexit cleanup does not run: a guard in its own session waits
 * for the test process to go away and stops the instance. */
static void rc_guard(struct tt *t)
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
		char cmd[1024];
		/* DRVDOM_TEST_KEEP=DIR: keep the logs of a failed test there */
		const char *keep = getenv("DRVDOM_TEST_KEEP");
		snprintf(cmd, sizeof(cmd),
			 "if [ -n '%s' ] && [ -d '%s' ]; then mkdir -p '%s' && "
			 "cp -r '%s'/*.log '%s'/console '%s' 2>/dev/null; fi; "
			 "drvdom down >/dev/null 2>&1; rm -rf '%s'",
			 keep ? keep : "", t->run, keep ? keep : "", t->run, t->run,
			 keep ? keep : "", t->run);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(0);
	}
	close(p[0]);
}

void rc_up(struct tt *t)
{
	tt_init(t);
	rc_guard(t);
	int rc = tt_sh(t, "drvdom up");
	ck_assert_msg(rc == 0, "drvdom up: %s", t->out);
}

const char *rc_field(struct tt *t, const char *name, int col)
{
	static char v[64];
	v[0] = 0;
	if (tt_sh(t, "drvdom list | awk '$2 == \"%s\" { print $%d }'", name, col + 1))
		return v;
	snprintf(v, sizeof(v), "%.*s", (int)sizeof(v) - 1, t->out);
	v[strcspn(v, "\n")] = 0;
	return v;
}

int rc_domid(struct tt *t, const char *name)
{
	const char *v = rc_field(t, name, 0);
	return *v ? atoi(v) : -1;
}

int rc_restarts(struct tt *t, const char *name)
{
	const char *v = rc_field(t, name, 5);
	return *v ? atoi(v) : -1;
}

int rc_wait_running(struct tt *t, const char *name, int restarts, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if (tt_sh(t, "drvdom list | awk '$2 == \"%s\" { print $4, $6 }'", name) == 0) {
			char st[32] = "";
			int r = -1;
			if (sscanf(t->out, "%31s %d", st, &r) == 2 && !strcmp(st, "running") &&
			    r >= restarts)
				return 0;
		}
		rc_sleep_ms(20);
	}
	return -1;
}

const char *rc_xs_read(struct tt *t, const char *path)
{
	static char v[4096];
	v[0] = 0;
	if (tt_sh(t, "XENSTORED_PATH=%s/xenstored/socket xenstore-read %s", t->run, path))
		return v;
	snprintf(v, sizeof(v), "%.*s", (int)sizeof(v) - 1, t->out);
	v[strcspn(v, "\n")] = 0;
	return v;
}

int rc_xs_write(struct tt *t, const char *path, const char *val)
{
	return tt_sh(t, "XENSTORED_PATH=%s/xenstored/socket xenstore-write %s '%s'", t->run, path,
		     val);
}

int rc_dom_pid(struct tt *t, const char *name)
{
	return tt_dom_pid(t, rc_domid(t, name));
}

long rc_mapped_of(int pid, int gid)
{
	long mapped = 0;
	char path[64], line[512], seg[32];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	snprintf(seg, sizeof(seg), "drvdom-seg-d%d ", gid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (strstr(line, seg) && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
			mapped += (long)(hi - lo);
	}
	fclose(f);
	return mapped;
}
