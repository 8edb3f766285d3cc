// SPDX-License-Identifier: MIT
// The hv suite's harness: start the real drvdom-hv from $DRVDOM_BUILD/bin in
// a fresh run directory (its stderr in RUN/hv.log), connect as domain 0,
// create test domains from $DRVDOM_BUILD/tests/bin, wait for text in a log,
// and stop it. Test-only; raw messages come from hvtest_msg.h.
#ifndef DRVDOM_TESTS_HVTEST_HV_H
#define DRVDOM_TESTS_HVTEST_HV_H

#include <stdbool.h>
#include <sys/types.h>

#include "tests/integration/hvtest_msg.h"

struct hvt_hv {
	char dir[256];
	pid_t pid;
	int fd; /* dom0 connection */
};

/* Start drvdom-hv; as_uid >= 0 runs it under that uid/gid (root only).
 * Returns 0 or -errno. */
int hvt_hv_start(struct hvt_hv *h, int as_uid);
/* SIGTERM it and wait (5 s); returns its wait status, or -errno. Removes the
 * run directory. */
int hvt_hv_stop(struct hvt_hv *h);
/* A new dom0 connection. Returns the fd or -errno. */
int hvt_hv_connect(const struct hvt_hv *h);

/* DOMCTL_CREATE of test kernel `kernel` (a bare name in tests/bin, or a
 * path, passed as is) with argv[1..] = args (NULL-terminated). Returns the ret;
 * *domid on success. */
int hvt_create(int fd, const char *name, const char *kernel, const char *const *args,
	       domid_t *domid, struct hv_create_rep *rep);
int hvt_domid_op(int fd, uint32_t op, domid_t domid);
int hvt_info(int fd, domid_t domid, struct hv_domain_info *info);

/* Path of RUN/console/NAME.log or RUN/hv.log (name NULL). */
void hvt_log_path(const struct hvt_hv *h, const char *name, char *buf, size_t cap);
/* Wait up to timeout_ms for needle to appear in a log. */
bool hvt_log_wait(const struct hvt_hv *h, const char *name, const char *needle, int timeout_ms);
/* Whole log into buf (NUL-terminated). */
void hvt_log_read(const struct hvt_hv *h, const char *name, char *buf, size_t cap);

/* Wait for HV_EVT_DOMAIN_EXIT of domid (needs SUBSCRIBE). */
int hvt_wait_exit(int fd, domid_t domid, int timeout_ms, struct hv_evt_domain_exit *out);

void hvt_sleep_ms(int ms);

#endif
