// SPDX-License-Identifier: MIT
// Build test: ring/xenbus.h compiles alone, included first and by itself
// (STYLE.md: every public header compiles alone).
#include "ring/xenbus.h"

int ring_hdr_xenbus_alone(void);
int ring_hdr_xenbus_alone(void)
{
	return xenbus_st_name(XENBUS_STATE_CONNECTED)[0];
}
