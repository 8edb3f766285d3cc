// SPDX-License-Identifier: MIT
// Compiles hv/evloop.h alone (every public header must): nothing else here.
#include "hv/evloop.h"

int hdr_evloop_compiled(void);
int hdr_evloop_compiled(void)
{
	return EVLOOP_POLL_FINAL;
}
