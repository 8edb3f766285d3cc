// SPDX-License-Identifier: MIT
// Build test: ring/netif.h compiles alone, included first and by itself
// (STYLE.md: every public header compiles alone).
#include "ring/netif.h"

int ring_hdr_netif_alone(void);
int ring_hdr_netif_alone(void)
{
	return (int)sizeof(struct netif_tx_req) + (int)netif_rx_ring_nr_slots(0);
}
