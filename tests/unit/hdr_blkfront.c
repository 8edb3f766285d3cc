// SPDX-License-Identifier: MIT
// Compiles frontends/blkfront/blkfront.h alone (every public header must):
// nothing else here.
#include "frontends/blkfront/blkfront.h"

int hdr_blkfront_compiled(void);
int hdr_blkfront_compiled(void)
{
	return BLKFRONT_FUA;
}
