// SPDX-License-Identifier: MIT
// Unit tests for event channel pending/mask semantics (Xen's 2-level ABI,
// hv/evtchn.h) and the event loop (hv/evloop.h) without an hv: fd
// callbacks, removal from a callback, pollers and the adaptive spin (no
// sleep while work is recent, a final check before sleeping, no spinning
// when idle), stop from another thread. Port handlers, re-delivery on
// unmask and the hv events are tested in check_hvc.c with a fake peer.
#include "hv/evtchn.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "hv/evloop.h"

static struct evtchn_bitmap bm;
static evtchn_port_t seen[HV_EVTCHN_PORTS];
static int nseen;

static void record(void *arg, evtchn_port_t port)
{
	(void)arg;
	seen[nseen++] = port;
}

static void reset(void)
{
	memset(&bm, 0, sizeof(bm));
	nseen = 0;
}

START_TEST(set_pending_upcall_once)
{
	reset();
	ck_assert_int_eq(evtchn_bm_set_pending(&bm, 5), 1);
	ck_assert_int_eq(evtchn_bm_set_pending(&bm, 5), 0);  /* already pending */
	ck_assert_int_eq(evtchn_bm_set_pending(&bm, 6), 0);  /* same word: sel set */
	ck_assert_int_eq(evtchn_bm_set_pending(&bm, 64), 1); /* next word */
	ck_assert_int_eq(evtchn_bm_consume(&bm, record, NULL), 3);
	ck_assert_int_eq(nseen, 3);
	ck_assert_uint_eq(seen[0], 5);
	ck_assert_uint_eq(seen[1], 6);
	ck_assert_uint_eq(seen[2], 64);
	/* Consumed: pending cleared, nothing more. */
	ck_assert_int_eq(evtchn_bm_consume(&bm, record, NULL), 0);
	ck_assert_int_eq(evtchn_bm_set_pending(&bm, 5), 1);
}
END_TEST

START_TEST(masked_stays_pending_unmask_redelivers)
{
	reset();
	evtchn_bm_mask(&bm, 9);
	ck_assert_int_eq(evtchn_bm_set_pending(&bm, 9), 0); /* masked: no upcall */
	ck_assert_int_eq(evtchn_bm_consume(&bm, record, NULL), 0);
	ck_assert_uint_ne(atomic_load(&bm.pending[0]) & (1ull << 9), 0);
	ck_assert_int_eq(evtchn_bm_unmask(&bm, 9), 1); /* pending: re-delivered */
	ck_assert_int_eq(evtchn_bm_consume(&bm, record, NULL), 1);
	ck_assert_uint_eq(seen[0], 9);
	/* Unmasking a port that is not masked or not pending: no upcall. */
	ck_assert_int_eq(evtchn_bm_unmask(&bm, 9), 0);
	evtchn_bm_mask(&bm, 9);
	ck_assert_int_eq(evtchn_bm_unmask(&bm, 9), 0);
}
END_TEST

START_TEST(consume_skips_masked_ports_in_word)
{
	reset();
	ck_assert_int_eq(evtchn_bm_set_pending(&bm, 1), 1);
	evtchn_bm_mask(&bm, 2);
	ck_assert_int_eq(evtchn_bm_set_pending(&bm, 2), 0);
	ck_assert_int_eq(evtchn_bm_consume(&bm, record, NULL), 1);
	ck_assert_uint_eq(seen[0], 1);
	ck_assert_uint_ne(atomic_load(&bm.pending[0]) & (1ull << 2), 0);
	ck_assert_int_eq(evtchn_bm_clear_pending(&bm, 2), 1);
	ck_assert_int_eq(evtchn_bm_clear_pending(&bm, 2), 0);
	ck_assert_int_eq(evtchn_bm_unmask(&bm, 2), 0); /* no longer pending */
}
END_TEST

START_TEST(last_port_and_all_ports)
{
	reset();
	ck_assert_int_eq(evtchn_bm_set_pending(&bm, HV_EVTCHN_PORTS - 1), 1);
	ck_assert_int_eq(evtchn_bm_consume(&bm, record, NULL), 1);
	ck_assert_uint_eq(seen[0], HV_EVTCHN_PORTS - 1);
	reset();
	for (evtchn_port_t p = 0; p < HV_EVTCHN_PORTS; p++)
		evtchn_bm_set_pending(&bm, p);
	ck_assert_int_eq(evtchn_bm_consume(&bm, record, NULL), (int)HV_EVTCHN_PORTS);
	for (int i = 0; i < nseen; i++)
		ck_assert_uint_eq(seen[i], (evtchn_port_t)i);
}
END_TEST

/* --- evloop ----------------------------------------------------------------- */

static int fd_calls;
static void on_fd(void *arg, int fd, uint32_t events)
{
	(void)arg;
	(void)events;
	uint64_t v;
	ck_assert_int_eq(read(fd, &v, sizeof(v)), 8);
	fd_calls++;
}

START_TEST(loop_fd_callbacks_and_timeout)
{
	struct evloop *l;
	ck_assert_int_eq(evloop_create(NULL, &l), 0);
	int efd = eventfd(0, EFD_NONBLOCK);
	ck_assert_int_eq(evloop_add_fd(l, efd, EPOLLIN, on_fd, NULL), 0);
	ck_assert_int_eq(evloop_add_fd(l, efd, EPOLLIN, on_fd, NULL), -EEXIST);
	ck_assert_int_eq(evloop_add_port(l, 1, NULL, NULL), -ENOTCONN);
	fd_calls = 0;
	ck_assert_int_eq(evloop_run_once(l, 10), 0); /* timeout */
	uint64_t one = 1;
	ck_assert_int_eq(write(efd, &one, 8), 8);
	ck_assert_int_eq(evloop_run_once(l, 1000), 1);
	ck_assert_int_eq(fd_calls, 1);
	ck_assert_int_eq(evloop_del_fd(l, efd), 0);
	ck_assert_int_eq(evloop_del_fd(l, efd), -ENOENT);
	ck_assert_int_eq(write(efd, &one, 8), 8);
	ck_assert_int_eq(evloop_run_once(l, 10), 0);
	ck_assert_int_eq(fd_calls, 1);
	evloop_destroy(l);
	close(efd);
}
END_TEST

/* Two ready fds; the first callback removes the other one. */
static int fds2[2];
static struct evloop *loop2;
static int removed_calls;
static void on_fd_remover(void *arg, int fd, uint32_t events)
{
	(void)arg;
	(void)events;
	uint64_t v;
	(void)!read(fd, &v, sizeof(v));
	removed_calls++;
	int other = fd == fds2[0] ? fds2[1] : fds2[0];
	evloop_del_fd(loop2, other);
}

START_TEST(loop_delete_from_callback)
{
	ck_assert_int_eq(evloop_create(NULL, &loop2), 0);
	uint64_t one = 1;
	for (int i = 0; i < 2; i++) {
		fds2[i] = eventfd(0, EFD_NONBLOCK);
		ck_assert_int_eq(write(fds2[i], &one, 8), 8);
		ck_assert_int_eq(evloop_add_fd(loop2, fds2[i], EPOLLIN, on_fd_remover, NULL), 0);
	}
	removed_calls = 0;
	ck_assert_int_ge(evloop_run_once(loop2, 100), 1);
	ck_assert_int_eq(removed_calls, 1);
	evloop_destroy(loop2);
	close(fds2[0]);
	close(fds2[1]);
}
END_TEST

struct pstate {
	int work_left;
	int calls, finals;
};

static int poller(void *arg, unsigned flags)
{
	struct pstate *p = arg;
	p->calls++;
	if (flags & EVLOOP_POLL_FINAL)
		p->finals++;
	if (p->work_left > 0) {
		p->work_left--;
		return 1;
	}
	return 0;
}

START_TEST(loop_pollers_spin_then_sleep)
{
	struct evloop *l;
	ck_assert_int_eq(evloop_create(NULL, &l), 0);
	struct pstate ps = {.work_left = 1000};
	ck_assert_int_eq(evloop_add_poller(l, poller, &ps), 0);
	evloop_set_spin_ns(l, 5 * 1000 * 1000); /* 5 ms: robust on a busy box */
	int total = 0;
	while (ps.work_left > 0)
		total += evloop_run_once(l, 0);
	ck_assert_int_eq(total, 1000);
	struct evloop_stats st;
	evloop_get_stats(l, &st);
	ck_assert_uint_eq(st.sleeps, 0); /* busy: never a blocking epoll_wait */
	ck_assert_int_eq(ps.finals, 0);
	/* Work arrives while spinning: found without sleeping. */
	ps.work_left = 1;
	ck_assert_int_eq(evloop_run_once(l, 1000), 1);
	/* Nothing more: it spins out the budget, final-checks, sleeps. */
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	ck_assert_int_eq(evloop_run_once(l, 20), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
	ck_assert_double_ge(ms, 20.0);
	ck_assert_int_eq(ps.finals, 1);
	evloop_get_stats(l, &st);
	ck_assert_uint_eq(st.sleeps, 1);
	/* Idle now: no spinning, straight to the final check and sleep. */
	int calls = ps.calls;
	ck_assert_int_eq(evloop_run_once(l, 1), 0);
	ck_assert_int_eq(ps.calls - calls, 2); /* one plain poll + the final */
	ck_assert_int_eq(evloop_del_poller(l, poller, &ps), 0);
	ck_assert_int_eq(evloop_del_poller(l, poller, &ps), -ENOENT);
	evloop_destroy(l);
}
END_TEST

static int final_finds_work(void *arg, unsigned flags)
{
	int *n = arg;
	if ((flags & EVLOOP_POLL_FINAL) && *n > 0) {
		(*n)--;
		return 1; /* work raced in after the spin: no sleep */
	}
	return 0;
}

START_TEST(loop_final_check_prevents_sleep)
{
	struct evloop *l;
	ck_assert_int_eq(evloop_create(NULL, &l), 0);
	evloop_set_spin_ns(l, 0);
	int n = 1;
	ck_assert_int_eq(evloop_add_poller(l, final_finds_work, &n), 0);
	ck_assert_int_eq(evloop_run_once(l, 5000), 1); /* returned at once */
	struct evloop_stats st;
	evloop_get_stats(l, &st);
	ck_assert_uint_eq(st.sleeps, 0);
	evloop_destroy(l);
}
END_TEST

static void *stopper(void *arg)
{
	usleep(50 * 1000);
	evloop_stop(arg);
	return NULL;
}

START_TEST(loop_stop_from_other_thread)
{
	struct evloop *l;
	ck_assert_int_eq(evloop_create(NULL, &l), 0);
	pthread_t th;
	pthread_create(&th, NULL, stopper, l);
	ck_assert_int_eq(evloop_run(l), 0);
	pthread_join(th, NULL);
	evloop_destroy(l);
}
END_TEST

Suite *evtchn_suite(void);
Suite *evtchn_suite(void)
{
	Suite *s = suite_create("evtchn");
	TCase *tc = tcase_create("bitmap");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, set_pending_upcall_once);
	tcase_add_test(tc, masked_stays_pending_unmask_redelivers);
	tcase_add_test(tc, consume_skips_masked_ports_in_word);
	tcase_add_test(tc, last_port_and_all_ports);
	suite_add_tcase(s, tc);
	tc = tcase_create("evloop");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, loop_fd_callbacks_and_timeout);
	tcase_add_test(tc, loop_delete_from_callback);
	tcase_add_test(tc, loop_pollers_spin_then_sleep);
	tcase_add_test(tc, loop_final_check_prevents_sleep);
	tcase_add_test(tc, loop_stop_from_other_thread);
	suite_add_tcase(s, tc);
	return s;
}
