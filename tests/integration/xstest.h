// SPDX-License-Identifier: MIT
// The xenstore suites' environment (xs_stress, xenstore_daemon's domain
// cases): the real drvdom-hv and drvdom-xenstored (--hv-socket) from
// $DRVDOM_BUILD/bin in a fresh temp dir, their logs in it, dom0's hypercall
// connection open and XENSTORED_PATH set for the client library.
#ifndef DRVDOM_TESTS_XSTEST_H
#define DRVDOM_TESTS_XSTEST_H

#include <sys/types.h>

struct hvc;

struct xst_env {
	char dir[64]; /* the run dir: hv/socket, xs.sock, hv.log, xenstored.log */
	char hvsock[96];
	char xssock[96];
	pid_t hv_pid, xsd_pid;
	struct hvc *hv; /* dom0's */
};

/* Start $DRVDOM_BUILD/bin/PROG with args (NULL-terminated, 14 at most), its
 * stdout and stderr to DIR/LOGNAME; it gets SIGTERM if the test dies. */
pid_t xst_spawn(const char *dir, const char *prog, const char *logname, const char *const *args);
/* Bring both up (ck_assert on failure); tmpl is a mkdtemp template. */
void xst_up(struct xst_env *e, const char *tmpl);
/* Stop the daemon then the hv, close dom0's connection, remove the dir. */
void xst_down(struct xst_env *e);

#endif
