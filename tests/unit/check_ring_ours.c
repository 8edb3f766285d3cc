// SPDX-License-Identifier: MIT
// drvdom's side of the ring layout test: the same facts as check_ring_xen.c,
// measured on ring/{ring,blkif,netif,xenbus}.h. Includes drvdom's headers
// only.
#include <stddef.h>
#include <stdint.h>

#include "ring/blkif.h"
#include "ring/netif.h"
#include "ring/xenbus.h"
#include "tests/unit/check_ring_layout.h"

size_t ring_facts_ours(struct ring_fact *out)
{
	size_t n = 0;
#define SZ(name, xt, ot) out[n++] = (struct ring_fact){name, (long long)sizeof(ot)};
#define AL(name, xt, ot) out[n++] = (struct ring_fact){name, (long long)_Alignof(ot)};
#define OFF(name, xt, xf, ot, of) out[n++] = (struct ring_fact){name, (long long)offsetof(ot, of)};
#define VAL(name, xv, ov) out[n++] = (struct ring_fact){name, (long long)(ov)};
	RING_LAYOUT_FACTS
	return n;
}
