// SPDX-License-Identifier: MIT
// Where a drvdom instance keeps its sockets, logs and per-guest files, and
// where drvdom's own programs are.
#include "tools/tool.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char run_dir[PATH_MAX];

void tool_run_dir_reset(void)
{
	run_dir[0] = 0;
}

const char *tool_run_dir(void)
{
	char *dir = run_dir;
	if (dir[0])
		return dir;
	const char *env = getenv("DRVDOM_RUN_DIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (env && *env)
		snprintf(dir, sizeof(run_dir), "%s", env);
	else if (geteuid() == 0)
		snprintf(dir, sizeof(run_dir), "/run/drvdom");
	else if (xdg && *xdg)
		snprintf(dir, sizeof(run_dir), "%s/drvdom", xdg);
	else
		snprintf(dir, sizeof(run_dir), "/tmp/drvdom-%u", (unsigned)geteuid());
	return dir;
}

const char *tool_bin_dir(void)
{
	static char dir[PATH_MAX];
	if (dir[0])
		return dir;
	ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	if (n <= 0) {
		snprintf(dir, sizeof(dir), "/usr/local/bin");
		return dir;
	}
	dir[n] = 0;
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	return dir;
}

int tool_path(char *buf, size_t len, const char *rel)
{
	int n = snprintf(buf, len, "%s/%s", tool_run_dir(), rel);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
