// SPDX-License-Identifier: MIT
// Logging and the one place unrecoverable host failures go. Every drvdom
// program calls log_init() with its name once; messages go to stderr as
// "name[pid]: level: text". die() reports file, function, line and errno and
// exits; it is for host failures only, never for bad input from a domain.
#ifndef DRVDOM_COMMON_LOG_H
#define DRVDOM_COMMON_LOG_H

#include <stdnoreturn.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Set the program name and the level (default INFO; DRVDOM_LOG=debug|info|
 * warn|err overrides; DRVDOM_LOG_TIME=1 starts each line with the
 * CLOCK_MONOTONIC time, seconds.microseconds, for reading a failover's
 * timeline across the hv's, xenstored's and the domains' logs). Call once
 * at start, from any thread. */
void log_init(const char *progname);

/* printf-style; thread-safe; never blocks on anything but stderr. */
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

noreturn void die_at(const char *file, const char *func, int line, int err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* die("what failed") — uses the current errno. */
#define die(...) die_at(__FILE__, __func__, __LINE__, errno, __VA_ARGS__)
/* die_err(-ret, "what failed") — for functions returning -errno. */
#define die_err(err, ...) die_at(__FILE__, __func__, __LINE__, (err), __VA_ARGS__)

#endif
