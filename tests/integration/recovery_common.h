// SPDX-License-Identifier: MIT
// Helpers shared by the recovery_blk and recovery_net suites (issue 6): a
// guard that tears the instance down when a test process dies, reading
// `drvdom list` (domid, state, restarts), xenstore through the
// xenstore-utils CLI, a domain's host pid and its mappings of another
// domain's memory.
#ifndef DRVDOM_TESTS_RECOVERY_COMMON_H
#define DRVDOM_TESTS_RECOVERY_COMMON_H

#include "tests/integration/tooltest.h"

void rc_sleep_ms(int ms);
/* tt_init, a guard process, `drvdom up`. */
void rc_up(struct tt *t);
/* A field of NAME's row in `drvdom list`: col 0 = ID, 3 = State, 5 =
 * Restarts; "" if no such domain (in a static buffer). */
const char *rc_field(struct tt *t, const char *name, int col);
int rc_domid(struct tt *t, const char *name);
int rc_restarts(struct tt *t, const char *name);
/* Wait until NAME is running with at least `restarts` restarts. 0 or -1. */
int rc_wait_running(struct tt *t, const char *name, int restarts, int timeout_ms);
/* xenstore-read; the value or "" (static buffer). */
const char *rc_xs_read(struct tt *t, const char *path);
int rc_xs_write(struct tt *t, const char *path, const char *val);
/* Host pid of a domain (the hv's child with DRVDOM_DOMID=id), or 0. */
int rc_dom_pid(struct tt *t, const char *name);
/* Bytes pid maps of domain gid's memory segments (/proc/pid/maps). */
long rc_mapped_of(int pid, int gid);

#endif
