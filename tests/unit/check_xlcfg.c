// SPDX-License-Identifier: MIT
// Tests for the xl.cfg parser and the xl disk spec syntax (tools/xlcfg.c).
#include <check.h>
#include <errno.h>
#include <string.h>

#include "tools/xlcfg.h"

START_TEST(parses_strings_numbers_lists)
{
	struct xlcfg cfg;
	char err[256] = "";
	const char *text = "# a guest\n"
			   "name = \"guest1\"\n"
			   "memory=256 ; on_crash = 'restart'\n"
			   "disk = [ 'target=/tmp/a.img, vdev=xvda, access=rw, backend=blkdom',\n"
			   "         \"target=/tmp/b.img,vdev=xvdb\", ]\n"
			   "driver_domain = 1 # trailing comment\n";
	ck_assert_int_eq(xlcfg_parse(text, &cfg, err, sizeof(err)), 0);
	const struct xlcfg_entry *e = xlcfg_get(&cfg, "name");
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->val.type, XLCFG_STRING);
	ck_assert_str_eq(e->val.str, "guest1");
	e = xlcfg_get(&cfg, "memory");
	ck_assert_int_eq(e->val.type, XLCFG_INT);
	ck_assert_int_eq(e->val.num, 256);
	ck_assert_str_eq(xlcfg_get(&cfg, "on_crash")->val.str, "restart");
	e = xlcfg_get(&cfg, "disk");
	ck_assert_int_eq(e->val.type, XLCFG_LIST);
	ck_assert_uint_eq(e->val.nitems, 2);
	ck_assert_str_eq(e->val.items[1], "target=/tmp/b.img,vdev=xvdb");
	ck_assert_int_eq(xlcfg_get(&cfg, "driver_domain")->line, 6);
	xlcfg_free(&cfg);
}
END_TEST

START_TEST(rejects_bad_syntax_with_line)
{
	static const struct {
		const char *text, *msg;
	} bad[] = {
	    {"name = \"x\nmemory = 1\n", "line 1: unterminated string"},
	    {"\n\nname \"x\"\n", "line 3: expected '='"},
	    {"disk = [ a ]\n", "line 1: list items must be quoted strings"},
	    {"disk = [ 'a' 'b' ]\n", "line 1: expected ',' or ']' in list"},
	    {"name = x\n", "line 1: expected a string, a number or a list"},
	    {"memory = 12 34\n", "line 1: unexpected text after value"},
	    {"= 3\n", "line 1: expected a key"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct xlcfg cfg;
		char err[256] = "";
		ck_assert_int_eq(xlcfg_parse(bad[i].text, &cfg, err, sizeof(err)), -EINVAL);
		ck_assert_str_eq(err, bad[i].msg);
	}
}
END_TEST

START_TEST(command_line_overrides)
{
	struct xlcfg cfg;
	char err[256] = "";
	ck_assert_int_eq(xlcfg_parse("name = 'a'\nmemory = 64\n", &cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(xlcfg_set(&cfg, "name=b", err, sizeof(err)), 0);
	ck_assert_int_eq(xlcfg_set(&cfg, "memory=128", err, sizeof(err)), 0);
	ck_assert_int_eq(xlcfg_set(&cfg, "vif=['mac=00:16:3e:00:00:01']", err, sizeof(err)), 0);
	ck_assert_str_eq(xlcfg_get(&cfg, "name")->val.str, "b");
	ck_assert_int_eq(xlcfg_get(&cfg, "memory")->val.num, 128);
	ck_assert_uint_eq(xlcfg_get(&cfg, "vif")->val.nitems, 1);
	ck_assert_int_eq(xlcfg_set(&cfg, "novalue", err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(xlcfg_set(&cfg, "=x", err, sizeof(err)), -EINVAL);
	xlcfg_free(&cfg);
}
END_TEST

START_TEST(disk_specs)
{
	struct xlcfg_disk d;
	char err[256] = "";
	ck_assert_int_eq(xlcfg_disk_parse("target=/tmp/a.img, vdev=xvda, access=rw, backend=blkdom",
					  &d, err, sizeof(err)),
			 0);
	ck_assert_str_eq(d.target, "/tmp/a.img");
	ck_assert_str_eq(d.vdev, "xvda");
	ck_assert_str_eq(d.backend, "blkdom");
	ck_assert(!d.readonly);
	ck_assert_int_eq(d.devid, 51712);
	ck_assert_int_eq(xlcfg_disk_parse("/tmp/b.img,raw,xvdb,ro", &d, err, sizeof(err)), 0);
	ck_assert_str_eq(d.target, "/tmp/b.img");
	ck_assert(d.readonly);
	ck_assert_int_eq(d.devid, 51728);
	ck_assert_int_eq(xlcfg_vdev_to_devid("xvdq"), (1 << 28) | (16 << 8));
	ck_assert_int_eq(xlcfg_vdev_to_devid("hda"), -EINVAL);
	ck_assert_int_eq(xlcfg_vdev_to_devid("xvd"), -EINVAL);
	ck_assert_int_eq(xlcfg_vdev_to_devid("xvdA"), -EINVAL);

	ck_assert_int_eq(xlcfg_disk_parse("vdev=xvda", &d, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "disk 'vdev=xvda': missing target");
	ck_assert_int_eq(xlcfg_disk_parse("target=/x, vdev=sda1", &d, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(
	    err, "disk 'target=/x, vdev=sda1': bad vdev name 'sda1' (expected xvda, xvdb, …)");
	ck_assert_int_eq(xlcfg_disk_parse("target=/x, vdev=xvda, colour=red", &d, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "disk 'target=/x, vdev=xvda, colour=red': unknown key 'colour'");
	ck_assert_int_eq(
	    xlcfg_disk_parse("target=/x, vdev=xvda, format=qcow2", &d, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(xlcfg_disk_parse("target=/x, vdev=xvda, access=rx", &d, err, sizeof(err)),
			 -EINVAL);
	ck_assert_int_eq(xlcfg_disk_parse("target=/x", &d, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "disk 'target=/x': missing vdev");
}
END_TEST

START_TEST(cpus_lists)
{
	char err[160];
	cpu_set_t set;
	ck_assert_int_eq(xlcfg_cpus_parse("1", &set, err, sizeof(err)), 0);
	ck_assert_int_eq(CPU_COUNT(&set), 1);
	ck_assert(CPU_ISSET(1, &set));
	ck_assert_int_eq(xlcfg_cpus_parse("0-3,^2, 7", &set, err, sizeof(err)), 0);
	ck_assert_int_eq(CPU_COUNT(&set), 4);
	ck_assert(CPU_ISSET(0, &set) && CPU_ISSET(1, &set) && CPU_ISSET(3, &set));
	ck_assert(!CPU_ISSET(2, &set) && CPU_ISSET(7, &set));
	ck_assert_int_eq(xlcfg_cpus_parse("all", &set, err, sizeof(err)), 0);
	ck_assert_int_eq(CPU_COUNT(&set), CPU_SETSIZE);
	ck_assert_int_eq(xlcfg_cpus_parse("3-1", &set, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(xlcfg_cpus_parse("1,", &set, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(xlcfg_cpus_parse("", &set, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(xlcfg_cpus_parse("x", &set, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(xlcfg_cpus_parse("99999", &set, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(xlcfg_cpus_parse("1,^1", &set, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "cpus '1,^1': no CPU left");
}
END_TEST

Suite *xlcfg_suite(void);
Suite *xlcfg_suite(void)
{
	Suite *s = suite_create("xlcfg");
	TCase *tc = tcase_create("parse");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, parses_strings_numbers_lists);
	tcase_add_test(tc, rejects_bad_syntax_with_line);
	tcase_add_test(tc, command_line_overrides);
	tcase_add_test(tc, disk_specs);
	tcase_add_test(tc, cpus_lists);
	suite_add_tcase(s, tc);
	return s;
}
