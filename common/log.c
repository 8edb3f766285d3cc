// SPDX-License-Identifier: MIT
// See log.h.
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "drvdom";
static enum log_level log_max = LOG_LVL_INFO;
static int log_time;

void log_init(const char *progname)
{
	const char *slash = strrchr(progname, '/');
	log_prog = slash ? slash + 1 : progname;
	const char *t = getenv("DRVDOM_LOG_TIME");
	log_time = t && !strcmp(t, "1");
	const char *lvl = getenv("DRVDOM_LOG");
	if (!lvl)
		return;
	if (!strcmp(lvl, "debug"))
		log_max = LOG_LVL_DEBUG;
	else if (!strcmp(lvl, "info"))
		log_max = LOG_LVL_INFO;
	else if (!strcmp(lvl, "warn"))
		log_max = LOG_LVL_WARN;
	else if (!strcmp(lvl, "err"))
		log_max = LOG_LVL_ERR;
}

static void log_vemit(const char *level, const char *fmt, va_list ap, const char *suffix)
{
	char buf[1024];
	int n;
	if (log_time) {
		/* CLOCK_MONOTONIC is one clock for the host and every domain
		 * (no time namespace): lines of several logs line up. */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		n = snprintf(buf, sizeof(buf), "%lld.%06ld %s[%d]: %s: ", (long long)ts.tv_sec,
			     ts.tv_nsec / 1000, log_prog, (int)getpid(), level);
	} else {
		n = snprintf(buf, sizeof(buf), "%s[%d]: %s: ", log_prog, (int)getpid(), level);
	}
	if (n < 0)
		return;
	if ((size_t)n < sizeof(buf))
		n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	if (suffix) {
		int m = snprintf(buf + n, sizeof(buf) - (size_t)n, "%s", suffix);
		if (m > 0)
			n = (size_t)(n + m) >= sizeof(buf) ? (int)sizeof(buf) - 1 : n + m;
	}
	if ((size_t)n < sizeof(buf) - 1)
		buf[n++] = '\n';
	else
		buf[sizeof(buf) - 1] = '\n', n = sizeof(buf);
	/* One write so lines from several processes do not interleave. */
	ssize_t r = write(STDERR_FILENO, buf, (size_t)n);
	(void)r;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *names[] = {"error", "warning", "info", "debug"};
	if (lvl > log_max)
		return;
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	log_vemit(names[lvl], fmt, ap, NULL);
	va_end(ap);
	errno = saved;
}

noreturn void die_at(const char *file, const char *func, int line, int err, const char *fmt, ...)
{
	char suffix[256];
	snprintf(suffix, sizeof(suffix), " (%s:%d %s: %s)", file, line, func,
		 err ? strerror(err) : "no errno");
	va_list ap;
	va_start(ap, fmt);
	log_vemit("fatal", fmt, ap, suffix);
	va_end(ap);
	exit(EXIT_FAILURE);
}
