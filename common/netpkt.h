// SPDX-License-Identifier: MIT
// Ethernet frame helpers shared by netback and netfront (docs/netback.md
// "Offloads"): netif's checksum and GSO flags carry no header offsets, while
// Linux's virtio_net_hdr (TAP, AF_PACKET with PACKET_VNET_HDR) needs
// csum_start/csum_offset, so each side finds them by parsing the frame's
// Ethernet (one optional VLAN tag), IPv4/IPv6 and TCP/UDP headers, as Linux
// netback's skb_checksum_setup does. Pure functions over bytes that may come
// from another domain: every read is bounds-checked.
#ifndef DRVDOM_COMMON_NETPKT_H
#define DRVDOM_COMMON_NETPKT_H

#include <stddef.h>
#include <stdint.h>

/* Header offsets of a frame. */
struct netpkt_l4 {
	uint16_t csum_start;  /* first byte of the L4 header */
	uint16_t csum_offset; /* checksum field, relative to csum_start */
	uint16_t hdr_len;     /* bytes of headers up to the payload (TCP) */
	uint8_t proto;	      /* IPPROTO_TCP or IPPROTO_UDP */
	uint8_t ipv6;	      /* 1 for IPv6 */
};

/* Parse the headers of the len bytes at frame. Returns 0 and *out, or
 * -EPROTONOSUPPORT (not TCP/UDP over IPv4/IPv6, or fragmented) or -EINVAL
 * (truncated or malformed). Pure; any caller. */
int netpkt_l4_parse(const uint8_t *frame, size_t len, struct netpkt_l4 *out);

/* A hash of the frame's flow: IPv4/IPv6 addresses, and TCP/UDP ports when
 * the frame has them (not a fragment); 0 for anything else. Every frame of
 * one connection hashes alike, so picking a queue by it keeps the
 * connection in order on one queue (netif multi-queue, docs/netback.md).
 * Pure; bounds-checked. */
uint32_t netpkt_flow_hash(const uint8_t *frame, size_t len);

/* 1 if the destination MAC (frame[0..5]) is multicast or broadcast. */
static inline int netpkt_mac_is_group(const uint8_t *mac)
{
	return mac[0] & 1;
}

#endif
