// SPDX-License-Identifier: MIT
// Unit tests for the persistent-grant cache (grant/gnt_pcache.h) with no hv:
// lookups of cached and uncached refs, refs that collide in the hash table,
// the size bound (-ENOSPC, the caller keeps its mapping), a ref inserted
// twice (-EEXIST, the first mapping stays), bad arguments. Unmapping on
// destroy is exercised by the blkback integration suite.
#include "grant/gnt_pcache.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>

static char pages[4096];

static void *addr_of(uint32_t i)
{
	return &pages[i % sizeof(pages)];
}

START_TEST(lookup_finds_what_was_inserted)
{
	struct gnt_pcache *c;
	ck_assert_int_eq(gnt_pcache_create(NULL, 3, 100, &c), 0);
	ck_assert_ptr_null(gnt_pcache_lookup(c, 8));
	for (uint32_t r = 8; r < 108; r++)
		ck_assert_int_eq(gnt_pcache_insert(c, r, addr_of(r), r + 1000), 0);
	ck_assert_uint_eq(gnt_pcache_count(c), 100);
	for (uint32_t r = 8; r < 108; r++)
		ck_assert_ptr_eq(gnt_pcache_lookup(c, r), addr_of(r));
	ck_assert_ptr_null(gnt_pcache_lookup(c, 7));
	ck_assert_ptr_null(gnt_pcache_lookup(c, 108));
	ck_assert_ptr_null(gnt_pcache_lookup(c, UINT32_MAX));
	gnt_pcache_destroy(c);
}
END_TEST

START_TEST(colliding_refs_all_found)
{
	/* Refs a table size apart land in the same bucket before probing. */
	struct gnt_pcache *c;
	ck_assert_int_eq(gnt_pcache_create(NULL, 3, 16, &c), 0);
	for (uint32_t i = 0; i < 16; i++)
		ck_assert_int_eq(gnt_pcache_insert(c, i * 32u, addr_of(i + 1), i), 0);
	for (uint32_t i = 0; i < 16; i++)
		ck_assert_ptr_eq(gnt_pcache_lookup(c, i * 32u), addr_of(i + 1));
	ck_assert_ptr_null(gnt_pcache_lookup(c, 16 * 32u));
	gnt_pcache_destroy(c);
}
END_TEST

START_TEST(bounded_and_no_duplicates)
{
	struct gnt_pcache *c;
	ck_assert_int_eq(gnt_pcache_create(NULL, 3, 4, &c), 0);
	for (uint32_t r = 10; r < 14; r++)
		ck_assert_int_eq(gnt_pcache_insert(c, r, addr_of(r), r), 0);
	ck_assert_int_eq(gnt_pcache_insert(c, 20, addr_of(20), 20), -ENOSPC);
	ck_assert_ptr_null(gnt_pcache_lookup(c, 20));
	ck_assert_int_eq(gnt_pcache_insert(c, 11, addr_of(99), 99), -EEXIST);
	ck_assert_ptr_eq(gnt_pcache_lookup(c, 11), addr_of(11));
	ck_assert_uint_eq(gnt_pcache_count(c), 4);
	gnt_pcache_destroy(c);
}
END_TEST

START_TEST(bad_arguments)
{
	struct gnt_pcache *c;
	ck_assert_int_eq(gnt_pcache_create(NULL, 3, 0, &c), -EINVAL);
	ck_assert_int_eq(gnt_pcache_create(NULL, 3, 65537, &c), -EINVAL);
	ck_assert_int_eq(gnt_pcache_create(NULL, 3, 1, &c), 0);
	ck_assert_int_eq(gnt_pcache_insert(c, 8, NULL, 1), -EINVAL);
	gnt_pcache_destroy(c);
	gnt_pcache_destroy(NULL);
}
END_TEST

Suite *gnt_pcache_suite(void);
Suite *gnt_pcache_suite(void)
{
	Suite *s = suite_create("gnt_pcache");
	TCase *tc = tcase_create("gnt_pcache");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, lookup_finds_what_was_inserted);
	tcase_add_test(tc, colliding_refs_all_found);
	tcase_add_test(tc, bounded_and_no_duplicates);
	tcase_add_test(tc, bad_arguments);
	suite_add_tcase(s, tc);
	return s;
}
