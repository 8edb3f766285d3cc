// SPDX-License-Identifier: MIT
// Domains over rings: placeholder until the hv's dom0 client library lands
// (hv/). With --hv-socket the daemon would connect to the hv as a dom0
// client, map each introduced domain's xenstore page (grant ref 1) and bind
// its event channel. Until then --hv-socket fails with ENOSYS.
#include "xenstore/xsd.h"

#include <errno.h>

int xsd_ring_init(const char *hv_socket);

int xsd_ring_init(const char *hv_socket)
{
	(void)hv_socket;
	return -ENOSYS;
}
