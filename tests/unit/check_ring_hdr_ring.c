// SPDX-License-Identifier: MIT
// Build test: ring/ring.h compiles alone, included first and by itself
// (STYLE.md: every public header compiles alone).
#include "ring/ring.h"

int ring_hdr_ring_alone(void);
int ring_hdr_ring_alone(void)
{
	return (int)ring_nr_slots(RING_PAGE_SIZE, 112) + ring_event_in_range(1, 0, 1);
}
