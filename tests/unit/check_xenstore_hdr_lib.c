// SPDX-License-Identifier: MIT
// Compile check: the public xenstore_lib.h builds on its own (compiled into
// the xenstore unit suite; the function is never called).
#include "xenstore/include/xenstore_lib.h"

unsigned int check_xenstore_hdr_lib(void);
unsigned int check_xenstore_hdr_lib(void)
{
	struct xs_permissions p = {0, XS_PERM_READ};
	return p.perms + (unsigned int)MAX_STRLEN(unsigned int);
}
