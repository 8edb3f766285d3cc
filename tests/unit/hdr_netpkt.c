// SPDX-License-Identifier: MIT
// Compiles common/netpkt.h alone (every public header must): nothing else
// here.
#include "common/netpkt.h"

int hdr_netpkt_compiled(void);
int hdr_netpkt_compiled(void)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	return netpkt_mac_is_group(bcast);
}
