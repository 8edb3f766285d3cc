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

static uint32_t fnv(uint32_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

uint32_t netpkt_flow_hash(const uint8_t *frame, size_t len)
{
	size_t l3 = 14;
	if (len < 14)
		return 0;
	uint16_t type = be16(frame + 12);
	if ((type == 0x8100 || type == 0x88a8) && len >= 18) {
		type = be16(frame + 16);
		l3 = 18;
	}
	uint32_t h = 2166136261u;
	if (type == 0x0800 && len >= l3 + 20)
		h = fnv(h, frame + l3 + 12, 8); /* source and destination */
	else if (type == 0x86dd && len >= l3 + 40)
		h = fnv(h, frame + l3 + 8, 32);
	else
		return 0;
	struct netpkt_l4 l4;
	if (netpkt_l4_parse(frame, len, &l4) == 0 && len >= (size_t)l4.csum_start + 4)
		h = fnv(h, frame + l4.csum_start, 4); /* the two ports */
	/* fnv's low bits are weak for a modulo of a few queues: mix */
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	return h;
}
