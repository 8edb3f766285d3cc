// SPDX-License-Identifier: MIT
// Compiles common/xbkey.h alone (every public header must): nothing else
// here.
#include "common/xbkey.h"

int hdr_xbkey_compiled(void);
int hdr_xbkey_compiled(void)
{
	return xbkey_instance_valid("1f") ? 0 : 1;
}
