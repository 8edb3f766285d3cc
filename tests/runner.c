// SPDX-License-Identifier: MIT
// The one Check runner: every suite named in build/gen/suites.inc (made by
// the Makefile from UNIT_SUITES and INTEG_SUITES) runs here in fork mode, so
// a crash fails one test, not the run. Built with -DDRVDOM_ONE_SUITE=name it
// runs that suite alone (make check-name). CK_RUN_SUITE / CK_RUN_CASE select
// as usual.
#include <check.h>
#include <stdlib.h>

/* Two levels so DRVDOM_ONE_SUITE expands before it is pasted. */
#define SUITE_DECL(name) Suite *name##_suite(void);
#define SUITE_ADD(name) srunner_add_suite(sr, name##_suite());

#define DRVDOM_SUITE(name) SUITE_DECL(name)
#ifdef DRVDOM_ONE_SUITE
DRVDOM_SUITE(DRVDOM_ONE_SUITE)
#else
#include "suites.inc"
#endif
#undef DRVDOM_SUITE

int main(void)
{
	SRunner *sr = srunner_create(NULL);
#define DRVDOM_SUITE(name) SUITE_ADD(name)
#ifdef DRVDOM_ONE_SUITE
	DRVDOM_SUITE(DRVDOM_ONE_SUITE)
#else
#include "suites.inc"
#endif
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
