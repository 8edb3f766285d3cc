// SPDX-License-Identifier: MIT
// Xen's side of the ring layout test: the sizes, offsets, ring sizes and
// constants of xen/io/{ring,blkif,netif,xenbus}.h (libxen-dev) as numbers,
// in the order of RING_LAYOUT_FACTS. Includes Xen's headers only, never
// drvdom's, so no name can clash.
#include <stddef.h>
#include <stdint.h>

#include <xen/io/blkif.h>
#include <xen/io/netif.h>
#include <xen/io/xenbus.h>

#include "tests/unit/check_ring_layout.h"

size_t ring_facts_xen(struct ring_fact *out)
{
	size_t n = 0;
#define SZ(name, xt, ot) out[n++] = (struct ring_fact){name, (long long)sizeof(xt)};
#define AL(name, xt, ot) out[n++] = (struct ring_fact){name, (long long)_Alignof(xt)};
#define OFF(name, xt, xf, ot, of) out[n++] = (struct ring_fact){name, (long long)offsetof(xt, xf)};
#define VAL(name, xv, ov) out[n++] = (struct ring_fact){name, (long long)(xv)};
	RING_LAYOUT_FACTS
	return n;
}
