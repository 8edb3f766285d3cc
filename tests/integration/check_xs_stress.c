// SPDX-License-Identifier: MIT
// Stress test of the xenstore client library inside domains: starts the
// real drvdom-hv and drvdom-xenstored (--hv-socket) in a fresh temp dir,
// then starts the xs_stress_dom kernel (tests/integration/xs_stress_dom.c)
// ROUNDS x PAR times. Each domain opens and closes 200 handles, reads from
// two threads at once and keeps an event loop of its own busy meanwhile;
// every one must publish data/result = "ok ..." in time while dom0 floods
// its watch with events. A lost wake-up in
// the ring transport hangs a domain; one in about ten starts was enough to
// fail this suite before the transport waited on its own port only.
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv/hvc.h"
#include "tests/integration/xstest.h"
#include "xenstore/include/xenstore.h"

#define ROUNDS 10
#define PAR 3
#define DOM_TIMEOUT_MS 30000

static struct xst_env X;

static void start_hv_and_daemon(void)
{
	xst_up(&X, "/tmp/drvdom-xss-XXXXXX");
}

static void stop_hv_and_daemon(void)
{
	xst_down(&X);
}

static void put(struct xs_handle *x, domid_t d, const char *key, const char *val)
{
	char p[96];
	snprintf(p, sizeof(p), "/local/domain/%u/%s", d, key);
	ck_assert_msg(xs_write(x, XBT_NULL, p, val, (unsigned int)strlen(val)), "write %s", p);
}

/* Create a stress domain, give it its data and introduce it. */
static domid_t start_dom(struct xs_handle *x, int n)
{
	char kernel[4096], name[32];
	snprintf(kernel, sizeof(kernel), "%s/tests/bin/xs_stress_dom", getenv("DRVDOM_BUILD"));
	snprintf(name, sizeof(name), "xss%d", n);
	struct hvc_create_args a = {.kernel = kernel, .name = name};
	struct hv_create_rep rep;
	int ret = hvc_domctl_create(X.hv, &a, &rep);
	ck_assert_msg(ret == 0, "DOMCTL_CREATE: %s", strerror(-ret));
	domid_t d = rep.domid;
	char home[64];
	snprintf(home, sizeof(home), "/local/domain/%u", d);
	ck_assert(xs_mkdir(x, XBT_NULL, home));
	struct xs_permissions p = {d, XS_PERM_NONE};
	ck_assert(xs_set_permissions(x, XBT_NULL, home, &p, 1));
	put(x, d, "data/k", "v0");
	for (int k = 0; k < 4; k++) {
		char key[16], val[16];
		snprintf(key, sizeof(key), "data/r%d", k);
		snprintf(val, sizeof(val), "value-%d", k);
		put(x, d, key, val);
	}
	ck_assert(xs_introduce_domain(x, d, rep.store_frame, rep.store_port));
	return d;
}

/* On a failure: what domain n, the hv and the daemon said. */
static void dump_logs(int n)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "tail -n 40 %s/console/xss%d.log %s/hv.log %s/xenstored.log >&2",
		 X.dir, n, X.dir, X.dir);
	if (system(cmd) != 0) {
		/* Best effort. */
	}
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(many_domains_stress_their_rings)
{
	struct xs_handle *x = xs_open(0);
	ck_assert_ptr_nonnull(x);
	int ok = 0;
	for (int round = 0; round < ROUNDS; round++) {
		domid_t d[PAR];
		for (int i = 0; i < PAR; i++)
			d[i] = start_dom(x, round * PAR + i);
		long deadline = now_ms() + DOM_TIMEOUT_MS;
		for (int i = 0; i < PAR; i++) {
			char p[96];
			snprintf(p, sizeof(p), "/local/domain/%u/data/result", d[i]);
			char *v = NULL;
			unsigned int len;
			/* Meanwhile flood the domains' data/w watches with events
			 * (dom0 writes), so the daemon throttles their rings. */
			for (unsigned k = 0; now_ms() < deadline; k++) {
				if ((v = xs_read(x, XBT_NULL, p, &len)))
					break;
				for (int j = 0; j < PAR; j++) {
					char key[32];
					snprintf(key, sizeof(key), "data/w/%u", k % 16);
					put(x, d[j], key, "flood");
				}
			}
			if (!v || strncmp(v, "ok ", 3) != 0)
				dump_logs(round * PAR + i);
			ck_assert_msg(v != NULL, "round %d: domain %u hung (no %s after %d ms)",
				      round, d[i], p, DOM_TIMEOUT_MS);
			unsigned events;
			long slowest_ms;
			ck_assert_msg(sscanf(v, "ok %u %ld", &events, &slowest_ms) == 2,
				      "round %d: domain %u: %s", round, d[i], v);
			/* A wake-up lost on the domain's side costs the
			 * transport's 1 s fallback. */
			ck_assert_msg(slowest_ms < 900,
				      "round %d: domain %u: an xs_read took %ld ms", round, d[i],
				      slowest_ms);
			free(v);
			ok++;
			ck_assert_int_eq(hvc_domctl_kill(X.hv, d[i]), 0);
		}
	}
	ck_assert_int_eq(ok, ROUNDS * PAR);
	xs_close(x);
}
END_TEST

Suite *xs_stress_suite(void);
Suite *xs_stress_suite(void)
{
	Suite *s = suite_create("xs_stress");
	TCase *tc = tcase_create("domains");
	tcase_add_checked_fixture(tc, start_hv_and_daemon, stop_hv_and_daemon);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, many_domains_stress_their_rings);
	suite_add_tcase(s, tc);
	return s;
}
