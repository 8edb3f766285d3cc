// SPDX-License-Identifier: MIT
// Helpers for tests that drive the real `drvdom` CLI: a temporary run dir
// (DRVDOM_RUN_DIR), commands run through the shell with their output
// captured, and checks that nothing of the instance is left running.
#ifndef DRVDOM_TESTS_TOOLTEST_H
#define DRVDOM_TESTS_TOOLTEST_H

#include <stdbool.h>
#include <stddef.h>

struct tt {
	char run[128];	   /* the run dir */
	char bin[512];	   /* $DRVDOM_BUILD/bin */
	char tbin[512];	   /* $DRVDOM_BUILD/tests/bin */
	char out[1 << 16]; /* output of the last command, stdout and stderr */
};

/* Make a run dir, export DRVDOM_RUN_DIR and put the build's bin dir first
 * in PATH. */
void tt_init(struct tt *t);
/* `drvdom down` if up, then remove the run dir. */
void tt_fini(struct tt *t);
/* Run a shell command (printf-style); returns its exit status (or -1),
 * output in t->out. */
int tt_sh(struct tt *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write a file under the run dir (path relative to it); returns its path in a
 * static buffer. */
const char *tt_file(struct tt *t, const char *rel, const char *text);
/* Host pid of domain id of this instance (a child of its hv), 0 if none. */
int tt_dom_pid(struct tt *t, int id);
/* Every thread of process pid may run on exactly the CPUs in want (as
 * /proc's Cpus_allowed_list prints them, e.g. "0" or "0-1"). */
void tt_assert_cpus(int pid, const char *want);
/* Number of processes whose command line mentions the run dir. */
int tt_procs_using(const struct tt *t);

#endif
