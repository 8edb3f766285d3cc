// SPDX-License-Identifier: MIT
// Compiles frontends/netfront/netfront.h alone (every public header must):
// nothing else here (compile-only: nothing of netfront is linked).
#include "frontends/netfront/netfront.h"

int hdr_netfront_compiled(void);
int hdr_netfront_compiled(void)
{
	bool (*ev)(const char *, const char *) = 0;
	return ev == 0;
}
