// SPDX-License-Identifier: MIT
// Unit suite "netpkt": the frame header parser netback and netfront use to
// find checksum and GSO offsets (common/netpkt.h), on well-formed IPv4,
// IPv6 and VLAN frames, and on every way a frame from another domain can be
// short or malformed.
#include "common/netpkt.h"

#include <check.h>
#include <errno.h>
#include <string.h>

static uint8_t f[256];

/* Ethernet + IPv4 (ihl 5) + TCP (doff 5) or UDP. */
static size_t v4(uint8_t proto)
{
	memset(f, 0, sizeof(f));
	f[12] = 0x08, f[13] = 0x00;
	f[14] = 0x45;
	f[23] = proto;
	f[14 + 20 + 12] = 5 << 4; /* TCP data offset */
	return 14 + 20 + 20 + 10;
}

START_TEST(test_ipv4_tcp)
{
	struct netpkt_l4 l4;
	size_t n = v4(6);
	ck_assert_int_eq(netpkt_l4_parse(f, n, &l4), 0);
	ck_assert_uint_eq(l4.csum_start, 34);
	ck_assert_uint_eq(l4.csum_offset, 16);
	ck_assert_uint_eq(l4.hdr_len, 54);
	ck_assert_uint_eq(l4.proto, 6);
	ck_assert_uint_eq(l4.ipv6, 0);
}
END_TEST

START_TEST(test_ipv4_udp_vlan)
{
	struct netpkt_l4 l4;
	size_t n = v4(17);
	memmove(f + 16, f + 12, n - 12);
	f[12] = 0x81, f[13] = 0x00, f[14] = 0, f[15] = 5;
	ck_assert_int_eq(netpkt_l4_parse(f, n + 4, &l4), 0);
	ck_assert_uint_eq(l4.csum_start, 38);
	ck_assert_uint_eq(l4.csum_offset, 6);
	ck_assert_uint_eq(l4.proto, 17);
}
END_TEST

START_TEST(test_ipv6_tcp)
{
	struct netpkt_l4 l4;
	memset(f, 0, sizeof(f));
	f[12] = 0x86, f[13] = 0xdd;
	f[14] = 0x60;
	f[14 + 6] = 6;
	f[14 + 40 + 12] = 8 << 4; /* options: 32-byte TCP header */
	ck_assert_int_eq(netpkt_l4_parse(f, 14 + 40 + 32, &l4), 0);
	ck_assert_uint_eq(l4.csum_start, 54);
	ck_assert_uint_eq(l4.hdr_len, 86);
	ck_assert_uint_eq(l4.ipv6, 1);
}
END_TEST

START_TEST(test_malformed)
{
	struct netpkt_l4 l4;
	size_t n = v4(6);
	/* truncated anywhere before the end of the TCP header */
	for (size_t len = 0; len < 54; len++)
		ck_assert_int_lt(netpkt_l4_parse(f, len, &l4), 0);
	/* IHL below 5, a wrong IP version, a TCP data offset below 5 or past the end */
	f[14] = 0x44;
	ck_assert_int_eq(netpkt_l4_parse(f, n, &l4), -EINVAL);
	f[14] = 0x65;
	ck_assert_int_eq(netpkt_l4_parse(f, n, &l4), -EINVAL);
	f[14] = 0x45;
	f[14 + 20 + 12] = 4 << 4;
	ck_assert_int_eq(netpkt_l4_parse(f, n, &l4), -EINVAL);
	f[14 + 20 + 12] = 15 << 4;
	ck_assert_int_eq(netpkt_l4_parse(f, n, &l4), -EINVAL);
	/* a fragment, ICMP, ARP: no L4 checksum to offload */
	v4(6);
	f[14 + 6] = 0x20; /* more fragments */
	ck_assert_int_eq(netpkt_l4_parse(f, n, &l4), -EPROTONOSUPPORT);
	v4(1);
	ck_assert_int_eq(netpkt_l4_parse(f, n, &l4), -EPROTONOSUPPORT);
	f[12] = 0x08, f[13] = 0x06;
	ck_assert_int_eq(netpkt_l4_parse(f, n, &l4), -EPROTONOSUPPORT);
}
END_TEST

Suite *netpkt_suite(void);
Suite *netpkt_suite(void)
{
	Suite *s = suite_create("netpkt");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, test_ipv4_tcp);
	tcase_add_test(tc, test_ipv4_udp_vlan);
	tcase_add_test(tc, test_ipv6_tcp);
	tcase_add_test(tc, test_malformed);
	suite_add_tcase(s, tc);
	return s;
}
