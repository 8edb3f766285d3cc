// SPDX-License-Identifier: MIT
// Build test: ring/blkif.h compiles alone, included first and by itself
// (STYLE.md: every public header compiles alone).
#include "ring/blkif.h"

int ring_hdr_blkif_alone(void);
int ring_hdr_blkif_alone(void)
{
	return (int)sizeof(union blkif_ring_sring_entry) + (int)blkif_ring_nr_slots(0);
}
