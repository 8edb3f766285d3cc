// SPDX-License-Identifier: MIT
// Build test: Xen's public headers and drvdom's ring/ headers can be included
// in one translation unit, in either order, without a clash of names (under
// -Werror, a differing macro redefinition would fail the build).
#include <stddef.h>
#include <stdint.h>

#include <xen/io/blkif.h>
#include <xen/io/netif.h>
#include <xen/io/xenbus.h>

#include "ring/blkif.h"
#include "ring/netif.h"
#include "ring/xenbus.h"
#include "tests/unit/check_ring_layout.h"

int ring_hdr_coexist(void)
{
	return sizeof(struct blkif_request) == sizeof(union blkif_req_slot) &&
	       BLKIF_OP_INDIRECT == 6 && (int)XenbusStateConnected == (int)XENBUS_STATE_CONNECTED;
}
