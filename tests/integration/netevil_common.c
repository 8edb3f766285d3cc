// SPDX-License-Identifier: MIT
// See netevil_common.h.
#include "tests/integration/netevil_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xenstore/include/xenstore.h"

struct xs_handle *xs;
domid_t self;

void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

void result(const char *fmt, ...)
{
	char b[256], p[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	snprintf(p, sizeof(p), "/local/domain/%u/data/result", self);
	xs_write(xs, XBT_NULL, p, b, (unsigned)strlen(b));
	printf("RESULT %s\n", b);
	fflush(stdout);
}

long rd(const char *dir, const char *key)
{
	char p[256];
	unsigned len;
	snprintf(p, sizeof(p), "%s/%s", dir, key);
	char *s = xs_read(xs, XBT_NULL, p, &len);
	long v = s ? strtol(s, NULL, 10) : -1;
	free(s);
	return v;
}
