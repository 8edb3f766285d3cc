// SPDX-License-Identifier: MIT
// Ethernet/IP/L4 header parsing for checksum and GSO offsets (common/netpkt.h).
#include "common/netpkt.h"

#include <errno.h>
#include <netinet/in.h>

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int netpkt_l4_parse(const uint8_t *frame, size_t len, struct netpkt_l4 *out)
{
	size_t off = 12;
	if (len < 14)
		return -EINVAL;
	uint16_t type = be16(frame + off);
	off += 2;
	if (type == 0x8100 || type == 0x88a8) {
		if (len < off + 4)
			return -EINVAL;
		type = be16(frame + off + 2);
		off += 4;
	}
	uint8_t proto;
	int v6 = 0;
	if (type == 0x0800) {
		if (len < off + 20)
			return -EINVAL;
		const uint8_t *ip = frame + off;
		size_t ihl = (size_t)(ip[0] & 15) * 4;
		if ((ip[0] >> 4) != 4 || ihl < 20 || len < off + ihl)
			return -EINVAL;
		if (be16(ip + 6) & 0x3fff) /* MF or a fragment offset */
			return -EPROTONOSUPPORT;
		proto = ip[9];
		off += ihl;
	} else if (type == 0x86dd) {
		if (len < off + 40)
			return -EINVAL;
		proto = frame[off + 6];
		off += 40;
		v6 = 1;
	} else {
		return -EPROTONOSUPPORT;
	}
	out->proto = proto;
	out->ipv6 = (uint8_t)v6;
	out->csum_start = (uint16_t)off;
	if (proto == IPPROTO_TCP) {
		if (len < off + 20)
			return -EINVAL;
		size_t doff = (size_t)(frame[off + 12] >> 4) * 4;
		if (doff < 20 || len < off + doff)
			return -EINVAL;
		out->csum_offset = 16;
		out->hdr_len = (uint16_t)(off + doff);
		return 0;
	}
	if (proto == IPPROTO_UDP) {
		if (len < off + 8)
			return -EINVAL;
		out->csum_offset = 6;
		out->hdr_len = (uint16_t)(off + 8);
		return 0;
	}
	return -EPROTONOSUPPORT;
}
