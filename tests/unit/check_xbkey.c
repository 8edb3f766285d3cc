// SPDX-License-Identifier: MIT
// Unit suite "xbkey": drvdom's xenbus extension keys (common/xbkey.h). An
// instance name is made and recognised; a frontend's echo lets exactly the
// instances it should take the rings; the combined-key parser takes what a
// peer of ours writes and refuses every way a hostile string can be
// malformed (missing, doubled or out-of-range values, stray characters,
// overflow, lists too long), skipping only well-formed unknown names; the
// block pair's drvdom-rings (a ref for every page of every ring) within
// blkback's limits; the writer gives back what the parser reads, or says
// that it does not fit.
#include "common/xbkey.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

START_TEST(test_instance_names)
{
	char a[XBKEY_INSTANCE_LEN], b[XBKEY_INSTANCE_LEN];
	xbkey_instance_make(a);
	xbkey_instance_make(b);
	ck_assert(xbkey_instance_valid(a));
	ck_assert(xbkey_instance_valid(b));
	ck_assert_str_ne(a, b);
	ck_assert(!xbkey_instance_valid(NULL));
	ck_assert(!xbkey_instance_valid(""));
	ck_assert(!xbkey_instance_valid("12G4"));
	ck_assert(!xbkey_instance_valid("ABC")); /* lowercase only */
	ck_assert(!xbkey_instance_valid("!abc"));
	ck_assert(xbkey_instance_valid("0123456789abcdef0123456"));   /* 23: fits with its NUL */
	ck_assert(!xbkey_instance_valid("0123456789abcdef01234567")); /* 24: too long */
	char c[XBKEY_INSTANCE_LEN] = "keep";
	ck_assert(!xbkey_instance_copy(NULL, c));
	ck_assert(!xbkey_instance_copy("0123456789abcdef01234567", c));
	ck_assert(!xbkey_instance_copy("ab c", c));
	ck_assert_str_eq(c, "keep");
	ck_assert(xbkey_instance_copy("0123456789abcdef0123456", c));
	ck_assert_str_eq(c, "0123456789abcdef0123456");
	ck_assert(xbkey_instance_copy(a, c));
	ck_assert_str_eq(c, a);
}
END_TEST

START_TEST(test_echo)
{
	ck_assert(xbkey_echo_allows(NULL, "abc"));
	ck_assert(xbkey_echo_allows("abc", "abc"));
	ck_assert(!xbkey_echo_allows("abd", "abc"));
	ck_assert(xbkey_echo_allows("!abd", "abc"));
	ck_assert(!xbkey_echo_allows("!abc", "abc"));
	ck_assert(!xbkey_echo_allows("!", "abc"));
	ck_assert(!xbkey_echo_allows("", "abc"));
	ck_assert(!xbkey_echo_allows("!x y", "abc"));
	ck_assert(!xbkey_echo_allows("!!abd", "abc"));
}
END_TEST

static uint64_t q[1], tx[4], port[4], sg[1];
static struct xbkey_field F[4];

static bool parse(const char *s)
{
	struct xbkey_field f[4] = {
	    {.name = "queues", .max = 4, .max_vals = 1, .vals = q},
	    {.name = "tx-ring-ref", .max = UINT32_MAX, .max_vals = 4, .vals = tx},
	    {.name = "event-channel", .max = UINT32_MAX, .max_vals = 4, .vals = port},
	    {.name = "feature-sg", .max = UINT64_MAX, .max_vals = 1, .vals = sg},
	};
	memcpy(F, f, sizeof(f));
	return xbkey_parse(s, F, 4);
}

START_TEST(test_parse_good)
{
	ck_assert(parse("queues=2 tx-ring-ref=8,9 event-channel=5,6 feature-sg=1"));
	ck_assert_uint_eq(q[0], 2);
	ck_assert_uint_eq(F[1].nvals, 2);
	ck_assert_uint_eq(tx[0], 8);
	ck_assert_uint_eq(tx[1], 9);
	ck_assert_uint_eq(port[1], 6);
	ck_assert_uint_eq(sg[0], 1);
	/* any order; unknown well-formed names skipped */
	ck_assert(parse("feature-sg=0 future=1,2,3 event-channel=7 tx-ring-ref=4294967295 "
			"queues=1"));
	ck_assert_uint_eq(tx[0], 4294967295u);
	ck_assert_uint_eq(F[2].nvals, 1);
	ck_assert(parse("queues=1 tx-ring-ref=1 event-channel=1 feature-sg=18446744073709551615"));
	ck_assert_uint_eq(sg[0], UINT64_MAX);
}
END_TEST

START_TEST(test_parse_bad)
{
	static const char *const bad[] = {
	    "",
	    " ",
	    "queues=1 tx-ring-ref=1 event-channel=1",			    /* one missing */
	    "queues=1 tx-ring-ref=1 event-channel=1 feature-sg=1 queues=1", /* twice */
	    "queues=5 tx-ring-ref=1 event-channel=1 feature-sg=1",	    /* above max */
	    "queues=1 tx-ring-ref=4294967296 event-channel=1 feature-sg=1",
	    "queues=1 tx-ring-ref=1,2,3,4,5 event-channel=1 feature-sg=1", /* list too long */
	    "queues=1 tx-ring-ref=1, event-channel=1 feature-sg=1",
	    "queues=1 tx-ring-ref=,1 event-channel=1 feature-sg=1",
	    "queues=1 tx-ring-ref=1 event-channel=1 feature-sg=",
	    "queues=1 tx-ring-ref=1 event-channel=1 feature-sg=-1",
	    "queues=1 tx-ring-ref=1 event-channel=1 feature-sg=+1",
	    "queues=1 tx-ring-ref=1 event-channel=1 feature-sg=1 ",
	    " queues=1 tx-ring-ref=1 event-channel=1 feature-sg=1",
	    "queues=1  tx-ring-ref=1 event-channel=1 feature-sg=1",
	    "queues=1 tx-ring-ref=1 event-channel=1 feature-sg=0x1",
	    "queues=1 tx-ring-ref=1 event-channel=1 feature-sg=18446744073709551616",
	    "queues=1 tx-ring-ref=1 event-channel=1 feature-sg=99999999999999999999999",
	    "queues=1 tx-ring-ref=1 event-channel=1 feature-sg=1\n",
	    "queues=1\ttx-ring-ref=1 event-channel=1 feature-sg=1",
	    "queues=1 tx-ring-ref=1 event-channel=1 feature-sg=1 Bad=1",
	    "queues=1 tx-ring-ref=1 event-channel=1 feature-sg=1 junk",
	    "queues=1 tx-ring-ref=1 event-channel=1 feature-sg=1 =1",
	    "queues=1 tx-ring-ref=1 event-channel=1 feature-sg=1 x=y",
	    "queues==1 tx-ring-ref=1 event-channel=1 feature-sg=1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!parse(bad[i]), "accepted '%s'", bad[i]);
	ck_assert(!xbkey_parse(NULL, F, 4));
}
END_TEST

/* blkfront's drvdom-rings (docs/recovery.md, "Fast reconnect"): "order=O
 * queues=N refs=R,... ports=P,..." with the 2^O refs of each queue in
 * turn, parsed within blkback's limits (order 0..4, 1..4 queues, ports
 * below 4096). */
static uint64_t order[1], nq[1], refs[64], ports[4];
static struct xbkey_field B[4];

static bool parse_blk(const char *s)
{
	struct xbkey_field f[4] = {
	    {.name = "order", .max = 4, .max_vals = 1, .vals = order},
	    {.name = "queues", .max = 4, .max_vals = 1, .vals = nq},
	    {.name = "refs", .max = UINT32_MAX, .max_vals = 64, .vals = refs},
	    {.name = "ports", .max = 4095, .max_vals = 4, .vals = ports},
	};
	memcpy(B, f, sizeof(f));
	return xbkey_parse(s, B, 4);
}

START_TEST(test_parse_blk_rings)
{
	ck_assert(parse_blk("order=0 queues=1 refs=8 ports=5"));
	ck_assert_uint_eq(B[2].nvals, 1);
	ck_assert_uint_eq(refs[0], 8);
	ck_assert_uint_eq(ports[0], 5);
	ck_assert(parse_blk("order=1 queues=2 refs=1,2,3,4294967295 ports=0,4095"));
	ck_assert_uint_eq(order[0], 1);
	ck_assert_uint_eq(nq[0], 2);
	ck_assert_uint_eq(B[2].nvals, 4);
	ck_assert_uint_eq(refs[3], 4294967295u);
	ck_assert_uint_eq(B[3].nvals, 2);
	ck_assert_uint_eq(ports[1], 4095);
	/* 4 queues of 16 pages: 64 refs, the most there can be */
	char s[1024];
	int n = snprintf(s, sizeof(s), "order=4 queues=4 refs=");
	for (unsigned i = 0; i < 64; i++)
		n += snprintf(s + n, sizeof(s) - (size_t)n, "%s%u", i ? "," : "", 1000 + i);
	snprintf(s + n, sizeof(s) - (size_t)n, " ports=1,2,3,4");
	ck_assert(parse_blk(s));
	ck_assert_uint_eq(B[2].nvals, 64);
	ck_assert_uint_eq(refs[63], 1063);

	static const char *const bad[] = {
	    "order=5 queues=1 refs=8 ports=5",	   /* order above blkback's */
	    "order=0 queues=5 refs=8 ports=5",	   /* queues above */
	    "order=0 queues=1 refs=8 ports=4096",  /* a port past the last */
	    "order=0 queues=1 refs=4294967296 ports=5",
	    "order=0 queues=1 refs=8 ports=1,2,3,4,5",
	    "order=0 queues=1 refs=8",
	    "order=0 queues=1 refs=8 ports=5 order=0",
	    "order=0 queues=1 refs=8,,9 ports=5",
	    "order=0 queues=1 refs=8 ports=5,",
	    "order=0 queues=1 refs= ports=5",
	    "order=0 queues=-1 refs=8 ports=5",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!parse_blk(bad[i]), "accepted '%s'", bad[i]);
	/* 65 refs: more than 4 queues of 16 pages */
	n = snprintf(s, sizeof(s), "order=4 queues=4 refs=");
	for (unsigned i = 0; i < 65; i++)
		n += snprintf(s + n, sizeof(s) - (size_t)n, "%s%u", i ? "," : "", i);
	snprintf(s + n, sizeof(s) - (size_t)n, " ports=1,2,3,4");
	ck_assert(!parse_blk(s));
}
END_TEST

/* xbkey_format writes what xbkey_parse reads back, in the order given,
 * and says when it does not fit rather than publish a truncated key. */
START_TEST(test_format)
{
	uint64_t o = 2, q2 = 2, r[8] = {1, 2, 3, 4, 5, 6, 7, 4294967295u}, p[2] = {17, 4095};
	struct xbkey_field f[4] = {
	    {.name = "order", .vals = &o, .nvals = 1},
	    {.name = "queues", .vals = &q2, .nvals = 1},
	    {.name = "refs", .vals = r, .nvals = 8},
	    {.name = "ports", .vals = p, .nvals = 2},
	};
	static const char want[] = "order=2 queues=2 refs=1,2,3,4,5,6,7,4294967295 ports=17,4095";
	char s[256];
	ck_assert_int_eq(xbkey_format(s, sizeof(s), f, 4), 0);
	ck_assert_str_eq(s, want);
	ck_assert(parse_blk(s));
	ck_assert_uint_eq(order[0], 2);
	ck_assert_uint_eq(B[2].nvals, 8);
	ck_assert_uint_eq(refs[7], 4294967295u);
	ck_assert_uint_eq(ports[1], 4095);
	/* exactly fits with its NUL; one byte less does not */
	ck_assert_int_eq(xbkey_format(s, sizeof(want), f, 4), 0);
	ck_assert_str_eq(s, want);
	ck_assert_int_eq(xbkey_format(s, sizeof(want) - 1, f, 4), -ENOSPC);
	ck_assert_int_eq(xbkey_format(s, 3, f, 4), -ENOSPC);
	ck_assert_int_eq(xbkey_format(s, sizeof(s), f, 0), -EINVAL);
	ck_assert_int_eq(xbkey_format(s, 0, f, 4), -EINVAL);
	f[1].nvals = 0;
	ck_assert_int_eq(xbkey_format(s, sizeof(s), f, 4), -EINVAL);
	/* a scalar at the top of the range */
	uint64_t big = UINT64_MAX;
	struct xbkey_field one = {.name = "sectors", .vals = &big, .nvals = 1};
	ck_assert_int_eq(xbkey_format(s, sizeof(s), &one, 1), 0);
	ck_assert_str_eq(s, "sectors=18446744073709551615");
}
END_TEST

Suite *xbkey_suite(void);
Suite *xbkey_suite(void)
{
	Suite *s = suite_create("xbkey");
	TCase *tc = tcase_create("xbkey");
	tcase_add_test(tc, test_instance_names);
	tcase_add_test(tc, test_echo);
	tcase_add_test(tc, test_parse_good);
	tcase_add_test(tc, test_parse_bad);
	tcase_add_test(tc, test_parse_blk_rings);
	tcase_add_test(tc, test_format);
	suite_add_tcase(s, tc);
	return s;
}
