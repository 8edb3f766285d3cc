// SPDX-License-Identifier: MIT
// What the two misbehaving network test kernels (netevil_dom, a frontend;
// netevil_back, a backend) share: their xenstore handle and domid, and the
// small helpers to sleep, read a number and report a result that the test
// reads from /local/domain/SELF/data/result.
#ifndef DRVDOM_TESTS_NETEVIL_COMMON_H
#define DRVDOM_TESTS_NETEVIL_COMMON_H

#include "hv/hv_abi.h"

struct xs_handle;
extern struct xs_handle *xs;
extern domid_t self;

void sleep_ms(int ms);
/* Write the result key and print it on the console. */
void result(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* DIR/KEY as a number, -1 if absent. */
long rd(const char *dir, const char *key);

#endif
