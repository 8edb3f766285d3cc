// SPDX-License-Identifier: MIT
// Unit suite "xbkey": drvdom's xenbus extension keys (common/xbkey.h). An
// instance name is made and recognised; a frontend's echo lets exactly the
// instances it should take the rings; the combined-key parser takes what a
// peer of ours writes and refuses every way a hostile string can be
// malformed (missing, doubled or out-of-range values, stray characters,
// overflow, lists too long), skipping only well-formed unknown names.
#include "common/xbkey.h"

#include <check.h>
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

Suite *xbkey_suite(void);
Suite *xbkey_suite(void)
{
	Suite *s = suite_create("xbkey");
	TCase *tc = tcase_create("xbkey");
	tcase_add_test(tc, test_instance_names);
	tcase_add_test(tc, test_echo);
	tcase_add_test(tc, test_parse_good);
	tcase_add_test(tc, test_parse_bad);
	suite_add_tcase(s, tc);
	return s;
}
