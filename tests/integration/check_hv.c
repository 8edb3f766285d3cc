// SPDX-License-Identifier: MIT
// Suite hv: the real drvdom-hv ($DRVDOM_BUILD/bin) in a temporary run
// directory, driven as domain 0 with raw hypercalls (hvtest_msg.h) and with
// static test domain kernels (dom_sandbox, dom_hcall). It shows the sandbox
// is real (no files, only lo, seccomp kills a forbidden call and the hv says
// why), malformed hypercalls kill their sender while the hv serves others,
// grant and event channel semantics and their bad inputs, start info,
// devices, pause, clean shutdown, running as an ordinary user, and no leak
// across 1,000 create/destroy cycles.
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hv/hv_internal.h" /* HV_GNTTAB_ENTRIES: the documented table size */
#include "tests/integration/hvtest_hv.h"

static struct hvt_hv H;
static char logbuf[1 << 20];

static void start(void)
{
	int r = hvt_hv_start(&H, -1);
	ck_assert_msg(r == 0, "drvdom-hv did not start: %s", strerror(-r));
}

static void stop(void)
{
	int st = hvt_hv_stop(&H);
	ck_assert_msg(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "drvdom-hv did not stop cleanly: %d", st);
}

static domid_t create(const char *name, const char *kernel, const char *arg)
{
	const char *args[2] = {arg, NULL};
	domid_t id = 0;
	int r = hvt_create(H.fd, name, kernel, arg ? args : NULL, &id, NULL);
	ck_assert_msg(r == 0, "create %s: %d", name, r);
	return id;
}

static void subscribe(void)
{
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_DOMCTL_SUBSCRIBE, NULL, 0, NULL, 0, NULL), 0);
}

static void log_expect(const char *name, const char *needle)
{
	bool ok = hvt_log_wait(&H, name, needle, 5000);
	if (!ok)
		hvt_log_read(&H, name, logbuf, sizeof(logbuf));
	ck_assert_msg(ok, "%s log lacks \"%s\"; it has:\n%s", name ? name : "hv", needle,
		      ok ? "" : logbuf);
}

/* --- basics ------------------------------------------------------------------ */

START_TEST(test_dom0_info_and_stop)
{
	start();
	struct hv_domain_info info;
	ck_assert_int_eq(hvt_info(H.fd, DOMID_SELF, &info), 0);
	ck_assert_uint_eq(info.domid, 0);
	ck_assert_str_eq(info.name, "Domain-0");
	ck_assert_uint_eq(info.flags & HV_DOMF_PRIVILEGED, HV_DOMF_PRIVILEGED);
	ck_assert_int_eq(hvt_info(H.fd, 77, &info), -ESRCH);
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_STORE_SEG, NULL, 0, NULL, 0, NULL), -ENOENT);
	/* A second dom0 connection at the same time. */
	int fd2 = hvt_hv_connect(&H);
	ck_assert_int_ge(fd2, 0);
	ck_assert_int_eq(hvt_info(fd2, 0, &info), 0);
	close(fd2);
	/* A second hv on the same run dir refuses to start. */
	char cmd[PATH_MAX * 2];
	snprintf(cmd, sizeof(cmd), "%s/bin/drvdom-hv --run-dir %s/run 2>/dev/null",
		 getenv("DRVDOM_BUILD"), H.dir);
	int st2 = system(cmd);
	ck_assert(WIFEXITED(st2) && WEXITSTATUS(st2) != 0);
	ck_assert_int_eq(hvt_info(H.fd, 0, &info), 0);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/run/hv.pid", H.dir);
	ck_assert_int_eq(access(path, F_OK), 0);
	struct stat st;
	snprintf(path, sizeof(path), "%s/run/hv/socket", H.dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	setenv("HVTEST_KEEP", "1", 1);
	stop();
	unsetenv("HVTEST_KEEP");
	ck_assert_int_ne(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/run/hv.pid", H.dir);
	ck_assert_int_ne(access(path, F_OK), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", H.dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* SIGTERM kills every domain and exits 0. */
START_TEST(test_sigterm_kills_domains)
{
	start();
	domid_t a = create("a", "dom_sandbox", "sleep");
	domid_t b = create("b", "dom_hcall", "info");
	struct hv_domain_info ia, ib;
	ck_assert_int_eq(hvt_info(H.fd, a, &ia), 0);
	ck_assert_int_eq(hvt_info(H.fd, b, &ib), 0);
	ck_assert_int_gt(ia.pid, 1);
	ck_assert_int_eq(kill(ia.pid, 0), 0);
	stop();
	ck_assert_int_ne(kill(ia.pid, 0), 0);
	ck_assert_int_ne(kill(ib.pid, 0), 0);
}
END_TEST

/* --- the sandbox ------------------------------------------------------------- */

START_TEST(test_sandbox_view)
{
	start();
	domid_t d = create("sb", "dom_sandbox", "sleep");
	log_expect("sb", "sandbox: mode sleep");
	hvt_log_read(&H, "sb", logbuf, sizeof(logbuf));
	ck_assert_msg(strstr(logbuf, "open /etc/passwd: denied"), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "sandbox: interfaces: lo\n"), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "pid=1 "), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "hvfd=3 "), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "fd3=open fd4=closed"), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "sigmask=clean sigpipe=default"), "%s", logbuf);
	struct hv_domain_info info;
	ck_assert_int_eq(hvt_info(H.fd, d, &info), 0);
	ck_assert_uint_eq(info.state, HV_DOM_RUNNING);
	/* The host sees it as nobody (root hv) or as us. */
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d", info.pid);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_uid, geteuid() == 0 ? 65534 : geteuid());
	/* Console lines also reach the hv's stderr, prefixed. */
	char pre[64];
	snprintf(pre, sizeof(pre), "[dom%u sb] sandbox: mode sleep", d);
	log_expect(NULL, pre);
	stop();
}
END_TEST

/* A flooding domain's console log is rotated, never larger than the cap. */
START_TEST(test_console_rotates)
{
	start();
	create("fl", "dom_sandbox", "flood");
	char path[PATH_MAX], old[PATH_MAX + 2], tail[256];
	struct stat st;
	hvt_log_path(&H, "fl", path, sizeof(path));
	bool done = false;
	for (int i = 0; i < 2000 && !done; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && !fstat(fd, &st) && st.st_size > 0) {
			off_t at = st.st_size > 200 ? st.st_size - 200 : 0;
			ssize_t n = pread(fd, tail, sizeof(tail) - 1, at);
			tail[n > 0 ? n : 0] = 0;
			done = strstr(tail, "sandbox: flood done") != NULL;
		}
		if (fd >= 0)
			close(fd);
		if (!done)
			hvt_sleep_ms(10);
	}
	ck_assert_msg(done, "flood did not finish");
	snprintf(old, sizeof(old), "%s.1", path);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_le(st.st_size, HV_CONSOLE_MAX);
	ck_assert_int_eq(stat(old, &st), 0);
	ck_assert_int_le(st.st_size, HV_CONSOLE_MAX);
	ck_assert_int_gt(st.st_size, HV_CONSOLE_MAX - 200);
	stop();
}
END_TEST

/* The allow-list is enough for a threaded event-loop program. */
START_TEST(test_sandbox_runtime)
{
	start();
	subscribe();
	domid_t d = create("rt", "dom_sandbox", "runtime");
	log_expect("rt", "sandbox: runtime ");
	hvt_log_read(&H, "rt", logbuf, sizeof(logbuf));
	ck_assert_msg(strstr(logbuf, "sandbox: runtime ok"), "%s", logbuf);
	struct hv_domain_info info;
	ck_assert_int_eq(hvt_info(H.fd, d, &info), 0);
	ck_assert_uint_eq(info.state, HV_DOM_RUNNING);
	stop();
}
END_TEST

static const char *const forbidden[] = {"ptrace", "mount", "fork", "exec"};

START_TEST(test_seccomp_kills)
{
	start();
	subscribe();
	domid_t d = create("bad", "dom_sandbox", forbidden[_i]);
	struct hv_evt_domain_exit ev;
	ck_assert_int_eq(hvt_wait_exit(H.fd, d, 5000, &ev), 0);
	ck_assert_uint_eq(ev.reason, HV_EXIT_SECCOMP);
	ck_assert_int_eq(ev.status, SIGSYS);
	ck_assert_str_eq(ev.name, "bad");
	char line[128];
	snprintf(line, sizeof(line), "domain %u (bad): killed by seccomp: forbidden system call",
		 d);
	log_expect(NULL, line);
	hvt_log_read(&H, "bad", logbuf, sizeof(logbuf));
	ck_assert_msg(!strstr(logbuf, "survived"), "%s", logbuf);
	ck_assert_int_eq(hvt_info(H.fd, d, &(struct hv_domain_info){0}), -ESRCH);
	stop();
}
END_TEST

START_TEST(test_exit_code)
{
	start();
	subscribe();
	domid_t d = create("ex", "dom_sandbox", "exit");
	struct hv_evt_domain_exit ev;
	ck_assert_int_eq(hvt_wait_exit(H.fd, d, 5000, &ev), 0);
	ck_assert_uint_eq(ev.reason, HV_EXIT_EXITED);
	ck_assert_int_eq(ev.status, 7);
	log_expect(NULL, "(ex): exited with status 7");
	stop();
}
END_TEST

START_TEST(test_create_refused)
{
	start();
	domid_t id;
	const char *none[] = {NULL};
	ck_assert_int_eq(hvt_create(H.fd, "dyn", "/bin/true", none, &id, NULL), -ENOEXEC);
	log_expect(NULL, "dynamically linked (PT_INTERP)");
	ck_assert_int_eq(hvt_create(H.fd, "txt", "/etc/passwd", none, &id, NULL), -EACCES);
	ck_assert_int_eq(hvt_create(H.fd, "rel", "bin/true", none, &id, NULL), -EINVAL);
	ck_assert_int_eq(hvt_create(H.fd, "nx", "/nonexistent/kernel", none, &id, NULL), -ENOENT);
	ck_assert_int_eq(hvt_create(H.fd, "a/b", "dom_sandbox", none, &id, NULL), -EINVAL);
	ck_assert_int_eq(hvt_create(H.fd, "", "dom_sandbox", none, &id, NULL), -EINVAL);
	create("same", "dom_sandbox", "sleep");
	ck_assert_int_eq(hvt_create(H.fd, "same", "dom_sandbox", none, &id, NULL), -EEXIST);
	/* flags and memory */
	static uint8_t p[512];
	struct hv_create_req q = {.flags = 0x80, .nr_strings = 1};
	strcpy(q.name, "flags");
	memcpy(p, &q, sizeof(q));
	strcpy((char *)p + sizeof(q), "/bin/true");
	size_t len = sizeof(q) + strlen("/bin/true") + 1;
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_DOMCTL_CREATE, p, len, NULL, 0, NULL), -EINVAL);
	q.flags = 0;
	q.memory = 1ull << 50;
	memcpy(p, &q, sizeof(q));
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_DOMCTL_CREATE, p, len, NULL, 0, NULL), -EINVAL);
	/* domctls on dom0 or on nobody */
	ck_assert_int_eq(hvt_domid_op(H.fd, HV_OP_DOMCTL_DESTROY, 0), -EINVAL);
	ck_assert_int_eq(hvt_domid_op(H.fd, HV_OP_DOMCTL_KILL, 999), -ESRCH);
	ck_assert_int_eq(hvt_domid_op(H.fd, HV_OP_DOMCTL_PAUSE, DOMID_SELF), -EINVAL);
	stop();
}
END_TEST

/* --- malformed hypercalls ---------------------------------------------------------- */

static const char *const malformed_modes[][2] = {
    {"truncated", "DOMAIN_INFO: length field disagrees with the datagram size"},
    {"oversized", "DOMAIN_INFO: payload size wrong for the op"},
    {"short", "(no header): shorter than the header"},
    {"unknown", "op 999: unknown op"},
    {"fds", "DOMAIN_INFO: unexpected fds"},
    {"huge", "DOMAIN_INFO: message or its fds truncated (too large)"},
    {"manyfds", "DOMCTL_ASSIGN_DEVICE: message or its fds truncated (too large)"},
};

START_TEST(test_malformed_kills_sender)
{
	start();
	subscribe();
	domid_t good = create("good", "dom_sandbox", "sleep");
	domid_t bad = create("bad", "dom_hcall", malformed_modes[_i][0]);
	struct hv_evt_domain_exit ev;
	ck_assert_int_eq(hvt_wait_exit(H.fd, bad, 5000, &ev), 0);
	ck_assert_uint_eq(ev.reason, HV_EXIT_MALFORMED);
	char line[160];
	snprintf(line, sizeof(line), "domain %u (bad): malformed hypercall %s: killed", bad,
		 malformed_modes[_i][1]);
	log_expect(NULL, line);
	hvt_log_read(&H, "bad", logbuf, sizeof(logbuf));
	ck_assert_msg(!strstr(logbuf, "still alive"), "%s", logbuf);
	/* The hv serves the others: the good one lives, a new one works. */
	struct hv_domain_info info;
	ck_assert_int_eq(hvt_info(H.fd, good, &info), 0);
	ck_assert_uint_eq(info.state, HV_DOM_RUNNING);
	create("next", "dom_hcall", "info");
	log_expect("next", "hcall: info ret=0");
	stop();
}
END_TEST

START_TEST(test_malformed_dom0_closed)
{
	start();
	struct hv_hdr h = {.op = HV_OP_DOMAIN_INFO, .id = 1, .len = 12};
	uint8_t junk[4] = {0};
	ck_assert_int_eq(hvt_send(H.fd, &h, junk, sizeof(junk), NULL, 0), 0);
	struct hvt_msg *m = malloc(sizeof(*m));
	ck_assert_int_eq(hvt_recv(H.fd, m, 5000), -ECONNRESET);
	free(m);
	log_expect(NULL, "domain 0 (connection 1): malformed hypercall DOMAIN_INFO");
	close(H.fd);
	H.fd = hvt_hv_connect(&H);
	ck_assert_int_ge(H.fd, 0);
	struct hv_domain_info info;
	ck_assert_int_eq(hvt_info(H.fd, 0, &info), 0);
	stop();
}
END_TEST

START_TEST(test_dom0_only_and_start_info)
{
	start();
	struct hv_create_rep rep;
	const char *args[] = {"info", NULL};
	domid_t d;
	ck_assert_int_eq(hvt_create(H.fd, "inf", "dom_hcall", args, &d, &rep), 0);
	log_expect("inf", "hcall: info(0) ret=");
	hvt_log_read(&H, "inf", logbuf, sizeof(logbuf));
	char want[160];
	snprintf(want, sizeof(want),
		 "hcall: info ret=0 domid=%u name=inf store_port=%u store_frame=%u pid=0", d,
		 rep.store_port, rep.store_frame);
	ck_assert_msg(strstr(logbuf, want), "want %s in:\n%s", want, logbuf);
	snprintf(want, sizeof(want), "hcall: store_seg ret=0 frame=%u npages=1 fds=1",
		 rep.store_frame);
	ck_assert_msg(strstr(logbuf, want), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "hcall: list ret=-1\n"), "%s", logbuf); /* EPERM */
	ck_assert_msg(strstr(logbuf, "hcall: info(0) ret=-1\n"), "%s", logbuf);
	/* Start info from dom0's side: store port unbound to dom0, ref 1
	 * granted to dom0 for the store frame; dom0 can map it. */
	struct hv_evtchn_status_req sq = {.dom = d, .port = rep.store_port};
	struct hvt_msg *m = malloc(sizeof(*m));
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_EVTCHN_STATUS, &sq, sizeof(sq), NULL, 0, m), 0);
	struct hv_evtchn_status_rep st;
	memcpy(&st, m->payload, sizeof(st));
	ck_assert_uint_eq(st.status, EVTCHNSTAT_unbound);
	ck_assert_uint_eq(st.remote_dom, 0);
	struct {
		uint32_t n;
		struct hv_gnt_map_op op;
	} mq = {1, {.domid = d, .ref = GNTTAB_RESERVED_XENSTORE}};
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_GNT_MAP, &mq, sizeof(mq), NULL, 0, m), 0);
	struct hv_gnt_map_res res;
	memcpy(&res, m->payload + 4, sizeof(res));
	ck_assert_int_eq(res.status, GNTST_okay);
	ck_assert_uint_eq(m->nfds, 1);
	ck_assert_uint_eq(res.offset, 0);
	ck_assert_uint_eq(res.seg_npages, 1);
	hvt_msg_close_fds(m);
	struct hv_domain_info info;
	ck_assert_int_eq(hvt_info(H.fd, d, &info), 0);
	ck_assert_uint_eq(info.store_port, rep.store_port);
	ck_assert_uint_eq(info.store_frame, rep.store_frame);
	free(m);
	stop();
}
END_TEST

/* --- grants ------------------------------------------------------------------ */

struct map_q {
	uint32_t n;
	struct hv_gnt_map_op op[HV_BATCH_MAX];
};

static int map_one(domid_t dom, grant_ref_t ref, uint16_t flags, struct hv_gnt_map_res *res,
		   int *fd)
{
	struct map_q q = {1, {{.domid = dom, .flags = flags, .ref = ref}}};
	struct hvt_msg *m = malloc(sizeof(*m));
	int r = hvt_call(H.fd, HV_OP_GNT_MAP, &q, 4 + sizeof(q.op[0]), NULL, 0, m);
	ck_assert_int_eq(r, 0);
	memcpy(res, m->payload + 4, sizeof(*res));
	if (res->status == GNTST_okay) {
		ck_assert_uint_eq(m->nfds, 1);
		ck_assert_uint_eq(res->fd_index, 0);
		*fd = m->fds[0];
	} else {
		ck_assert_uint_eq(m->nfds, 0);
		ck_assert_uint_eq(res->fd_index, 0xFFFF);
		*fd = -1;
	}
	free(m);
	return res->status;
}

static int16_t unmap_one(uint32_t handle)
{
	uint32_t q[2] = {1, handle};
	struct hvt_msg *m = malloc(sizeof(*m));
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_GNT_UNMAP, q, sizeof(q), NULL, 0, m), 0);
	ck_assert_uint_eq(m->hdr.len, 6);
	int16_t st;
	memcpy(&st, m->payload + 4, 2);
	free(m);
	return st;
}

/* Domain g learns its peer from port 2: dom0 allocates it unbound for it. */
static void tell_peer(domid_t dom, domid_t peer)
{
	struct hv_evtchn_alloc_unbound_req q = {.dom = dom, .remote_dom = peer};
	struct hvt_msg *m = malloc(sizeof(*m));
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_EVTCHN_ALLOC_UNBOUND, &q, sizeof(q), NULL, 0, m), 0);
	uint32_t port;
	memcpy(&port, m->payload, 4);
	ck_assert_uint_eq(port, 2);
	free(m);
}

static int16_t copy_one(struct hv_gnt_copy *op)
{
	struct {
		uint32_t n, pad;
		struct hv_gnt_copy op;
	} q = {1, 0, *op};
	struct hvt_msg *m = malloc(sizeof(*m));
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_GNT_COPY, &q, sizeof(q), NULL, 0, m), 0);
	ck_assert_uint_eq(m->hdr.len, sizeof(q));
	memcpy(op, m->payload + 8, sizeof(*op));
	free(m);
	return op->status;
}

START_TEST(test_grant_bad_inputs)
{
	start();
	domid_t g = create("g", "dom_hcall", "grant");
	tell_peer(g, 0);
	log_expect("g", "hcall: granted peer=0");
	struct hv_gnt_map_res res;
	int fd;
	/* ref out of range, not granted, granted to someone else, ro for writing,
	 * a frame outside any segment for us, a granter that does not exist */
	ck_assert_int_eq(map_one(g, HV_GNTTAB_ENTRIES, 0, &res, &fd), GNTST_bad_gntref);
	ck_assert_int_eq(map_one(g, 0xFFFFFFFFu, 0, &res, &fd), GNTST_bad_gntref);
	ck_assert_int_eq(map_one(g, 20, 0, &res, &fd), GNTST_general_error);
	ck_assert_int_eq(map_one(g, 11, 0, &res, &fd), GNTST_general_error);
	ck_assert_int_eq(map_one(g, 11, GNTMAP_readonly, &res, &fd), GNTST_general_error);
	ck_assert_int_eq(map_one(g, 9, 0, &res, &fd), GNTST_general_error);
	ck_assert_int_eq(map_one(g, 12, 0, &res, &fd), GNTST_bad_page);
	ck_assert_int_eq(map_one(0x7000, 8, 0, &res, &fd), GNTST_bad_domain);
	ck_assert_int_eq(map_one(g, 8, 0x40, &res, &fd), GNTST_general_error);
	/* read-only grant, read-only map: a read-only fd */
	ck_assert_int_eq(map_one(g, 9, GNTMAP_readonly, &res, &fd), GNTST_okay);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	ck_assert_ptr_eq(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, res.offset),
			 MAP_FAILED);
	char *ro = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, res.offset);
	ck_assert_ptr_ne(ro, MAP_FAILED);
	ck_assert_msg(!strncmp(ro, "page1 of domain", 15), "%s", ro);
	ck_assert_int_ne(mprotect(ro, 4096, PROT_READ | PROT_WRITE), 0);
	uint32_t ro_handle = res.handle;
	close(fd);
	/* the writable grant */
	ck_assert_int_eq(map_one(g, 8, 0, &res, &fd), GNTST_okay);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
	char *rw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, res.offset);
	ck_assert_ptr_ne(rw, MAP_FAILED);
	ck_assert_msg(!strncmp(rw, "page0 of domain", 15), "%s", rw);
	ck_assert_uint_eq(res.seg_npages, 4);
	close(fd);
	/* end access while mapped: refused; after unmap: done */
	log_expect("g", "hcall: endaccess 8: refused");
	hvt_sleep_ms(50);
	hvt_log_read(&H, "g", logbuf, sizeof(logbuf));
	ck_assert_msg(!strstr(logbuf, "endaccess 8: ok"), "%s", logbuf);
	ck_assert_int_eq(unmap_one(12345), GNTST_bad_handle);
	ck_assert_int_eq(unmap_one(res.handle), GNTST_okay);
	ck_assert_int_eq(unmap_one(res.handle), GNTST_bad_handle);
	log_expect("g", "hcall: endaccess 8: ok");
	/* ended: mapping it again fails */
	ck_assert_int_eq(map_one(g, 8, 0, &res, &fd), GNTST_general_error);
	ck_assert_int_eq(unmap_one(ro_handle), GNTST_okay);
	munmap(ro, 4096);
	munmap(rw, 4096);

	/* grant copy: dom0's own segment (dedicated to g) as the other side */
	struct hv_seg_alloc_req sq = {.peer = g, .npages = 1};
	struct hvt_msg *m = malloc(sizeof(*m));
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_SEG_ALLOC, &sq, sizeof(sq), NULL, 0, m), 0);
	ck_assert_uint_eq(m->nfds, 1);
	struct hv_seg_alloc_rep seg;
	memcpy(&seg, m->payload, sizeof(seg));
	int sfd = m->fds[0];
	char *mine = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
	ck_assert_ptr_ne(mine, MAP_FAILED);
	struct hv_gnt_copy c = {
	    .source = {.u = 9, .domid = g, .offset = 0},
	    .dest = {.u = seg.first_frame, .domid = DOMID_SELF, .offset = 100},
	    .len = 64,
	    .flags = GNTCOPY_source_gref,
	};
	ck_assert_int_eq(copy_one(&c), GNTST_okay);
	ck_assert_msg(!strncmp(mine + 100, "page1 of domain", 15), "%s", mine + 100);
	struct hv_gnt_copy bad = c;
	bad.dest.offset = 4090; /* 4090 + 64 crosses the page */
	ck_assert_int_eq(copy_one(&bad), GNTST_bad_copy_arg);
	bad = c;
	bad.len = 4097;
	bad.source.offset = 0;
	bad.dest.offset = 0;
	ck_assert_int_eq(copy_one(&bad), GNTST_bad_copy_arg);
	bad = c;
	bad.flags |= 0x100;
	ck_assert_int_eq(copy_one(&bad), GNTST_bad_copy_arg);
	bad = c; /* writing through the read-only grant */
	bad.source = c.dest;
	bad.dest = c.source;
	bad.flags = GNTCOPY_dest_gref;
	ck_assert_int_eq(copy_one(&bad), GNTST_general_error);
	bad = c; /* a frame that is not the caller's */
	bad.dest.domid = g;
	ck_assert_int_eq(copy_one(&bad), GNTST_permission_denied);
	bad = c;
	bad.dest.u = 999999;
	ck_assert_int_eq(copy_one(&bad), GNTST_bad_page);
	bad = c;
	bad.source.u = 20;
	ck_assert_int_eq(copy_one(&bad), GNTST_general_error);
	bad = c;
	bad.source.u = 1u << 20;
	ck_assert_int_eq(copy_one(&bad), GNTST_bad_gntref);
	bad = c;
	bad.source.domid = 0x7000;
	ck_assert_int_eq(copy_one(&bad), GNTST_bad_domain);
	/* a copy leaves no pin behind: g's earlier end access still holds, and
	 * ref 9 can still be pinned and released */
	ck_assert_int_eq(map_one(g, 9, GNTMAP_readonly, &res, &fd), GNTST_okay);
	close(fd);
	ck_assert_int_eq(unmap_one(res.handle), GNTST_okay);

	/* segments: free an unknown one, free ours, too big, self, nobody */
	struct hv_seg_free_req fq = {.seg_id = 4242};
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_SEG_FREE, &fq, sizeof(fq), NULL, 0, NULL), -ENOENT);
	fq.seg_id = seg.seg_id;
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_SEG_FREE, &fq, sizeof(fq), NULL, 0, NULL), 0);
	sq.npages = 0;
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_SEG_ALLOC, &sq, sizeof(sq), NULL, 0, NULL), -EINVAL);
	sq = (struct hv_seg_alloc_req){.peer = 0, .npages = 1};
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_SEG_ALLOC, &sq, sizeof(sq), NULL, 0, NULL), -EINVAL);
	sq.peer = 0x7000;
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_SEG_ALLOC, &sq, sizeof(sq), NULL, 0, NULL), -ESRCH);
	munmap(mine, 4096);
	close(sfd);
	free(m);
	stop();
}
END_TEST

/* A domain maps another's grant; the granter cannot end access until the
 * mapper dies, then it can. */
START_TEST(test_end_access_after_mapper_dies)
{
	start();
	subscribe();
	domid_t g = create("g", "dom_hcall", "grant");
	domid_t mp = create("m", "dom_hcall", "map");
	tell_peer(g, mp);
	tell_peer(mp, g);
	log_expect("m", "hcall: mapped: page0 of domain");
	log_expect("g", "hcall: endaccess 8: refused");
	hvt_sleep_ms(50);
	hvt_log_read(&H, "g", logbuf, sizeof(logbuf));
	ck_assert_msg(!strstr(logbuf, "endaccess 8: ok"), "%s", logbuf);
	ck_assert_int_eq(hvt_domid_op(H.fd, HV_OP_DOMCTL_KILL, mp), 0);
	ck_assert_int_eq(hvt_wait_exit(H.fd, mp, 5000, NULL), 0);
	log_expect("g", "hcall: endaccess 8: ok");
	stop();
}
END_TEST

/* A segment is refused to SEG_FREE while its peer maps it; a dom0
 * connection's mappings go away with it. */
START_TEST(test_seg_busy_and_conn_release)
{
	start();
	domid_t g = create("g", "dom_hcall", "grant");
	int fd2 = hvt_hv_connect(&H);
	ck_assert_int_ge(fd2, 0);
	tell_peer(g, 0);
	log_expect("g", "hcall: granted peer=0");
	struct map_q q = {1, {{.domid = g, .ref = 8}}};
	struct hvt_msg *m = malloc(sizeof(*m));
	ck_assert_int_eq(hvt_call(fd2, HV_OP_GNT_MAP, &q, 4 + sizeof(q.op[0]), NULL, 0, m), 0);
	struct hv_gnt_map_res res;
	memcpy(&res, m->payload + 4, sizeof(res));
	ck_assert_int_eq(res.status, GNTST_okay);
	hvt_msg_close_fds(m);
	/* the other dom0 connection may not unmap it */
	ck_assert_int_eq(unmap_one(res.handle), GNTST_bad_handle);
	log_expect("g", "hcall: endaccess 8: refused");
	close(fd2); /* releases its mapping */
	log_expect("g", "hcall: endaccess 8: ok");
	free(m);
	stop();
}
END_TEST

/* --- event channels ---------------------------------------------------------- */

static int status(domid_t dom, evtchn_port_t port, struct hv_evtchn_status_rep *st)
{
	struct hv_evtchn_status_req q = {.dom = dom, .port = port};
	struct hvt_msg *m = malloc(sizeof(*m));
	int r = hvt_call(H.fd, HV_OP_EVTCHN_STATUS, &q, sizeof(q), NULL, 0, m);
	memcpy(st, m->payload, sizeof(*st));
	free(m);
	return r;
}

static int bind(domid_t rdom, evtchn_port_t rport, evtchn_port_t *port, int fds[2])
{
	struct hv_evtchn_bind_interdomain_req q = {.remote_dom = rdom, .remote_port = rport};
	struct hvt_msg *m = malloc(sizeof(*m));
	int r = hvt_call(H.fd, HV_OP_EVTCHN_BIND_INTERDOMAIN, &q, sizeof(q), NULL, 0, m);
	if (!r) {
		ck_assert_uint_eq(m->nfds, 2);
		memcpy(port, m->payload, 4);
		fds[0] = m->fds[0];
		fds[1] = m->fds[1];
	} else {
		ck_assert_uint_eq(m->nfds, 0);
	}
	free(m);
	return r;
}

static int evclose(evtchn_port_t port)
{
	struct hv_evtchn_close_req q = {.port = port};
	return hvt_call(H.fd, HV_OP_EVTCHN_CLOSE, &q, sizeof(q), NULL, 0, NULL);
}

START_TEST(test_evtchn)
{
	start();
	struct hv_create_rep rep;
	domid_t d;
	const char *args[] = {"sleep", NULL};
	ck_assert_int_eq(hvt_create(H.fd, "d", "dom_sandbox", args, &d, &rep), 0);
	evtchn_port_t p;
	int fds[2];
	/* bad binds */
	ck_assert_int_eq(bind(0x7000, rep.store_port, &p, fds), -ESRCH);
	ck_assert_int_eq(bind(d, 0, &p, fds), -EINVAL);
	ck_assert_int_eq(bind(d, HV_EVTCHN_PORTS, &p, fds), -EINVAL);
	ck_assert_int_eq(bind(d, 7, &p, fds), -EINVAL); /* not allocated */
	/* bind to the store port: new local port is pending */
	ck_assert_int_eq(bind(d, rep.store_port, &p, fds), 0);
	ck_assert_uint_ge(p, 1);
	uint64_t v = 0;
	ck_assert_int_eq(read(fds[0], &v, sizeof(v)), 8);
	ck_assert_uint_eq(v, 1);
	ck_assert_int_eq(bind(d, rep.store_port, &p, (int[2]){0}), -EINVAL); /* bound now */
	struct hv_evtchn_status_rep st;
	ck_assert_int_eq(status(DOMID_SELF, p, &st), 0);
	ck_assert_uint_eq(st.status, EVTCHNSTAT_interdomain);
	ck_assert_uint_eq(st.remote_dom, d);
	ck_assert_uint_eq(st.remote_port, rep.store_port);
	ck_assert_int_eq(status(d, rep.store_port, &st), 0);
	ck_assert_uint_eq(st.status, EVTCHNSTAT_interdomain);
	ck_assert_uint_eq(st.remote_dom, 0);
	ck_assert_uint_eq(st.remote_port, p);
	ck_assert_int_eq(status(DOMID_SELF, 4000, &st), 0);
	ck_assert_uint_eq(st.status, EVTCHNSTAT_closed);
	ck_assert_int_eq(status(DOMID_SELF, HV_EVTCHN_PORTS, &st), -EINVAL);
	ck_assert_int_eq(status(0x7000, 1, &st), -ESRCH);
	ck_assert_int_eq(evclose(0), -EINVAL);
	ck_assert_int_eq(evclose(4000), -EINVAL);
	/* the peer dies: our port goes back to unbound, we are told */
	subscribe();
	ck_assert_int_eq(hvt_domid_op(H.fd, HV_OP_DOMCTL_DESTROY, d), 0);
	struct hvt_msg *m = malloc(sizeof(*m));
	ck_assert_int_eq(hvt_wait_event(H.fd, HV_EVT_PORT_CLOSED, 5000, m), 0);
	struct hv_evt_port_closed pc;
	memcpy(&pc, m->payload, sizeof(pc));
	ck_assert_uint_eq(pc.port, p);
	ck_assert_int_eq(status(DOMID_SELF, p, &st), 0);
	ck_assert_uint_eq(st.status, EVTCHNSTAT_unbound);
	ck_assert_uint_eq(st.remote_dom, d);
	ck_assert_int_eq(evclose(p), 0);
	ck_assert_int_eq(evclose(p), -EINVAL);
	close(fds[0]);
	close(fds[1]);

	/* loopback in dom0: alloc_unbound + bind; kicks go across */
	struct hv_evtchn_alloc_unbound_req aq = {.dom = DOMID_SELF, .remote_dom = DOMID_SELF};
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_EVTCHN_ALLOC_UNBOUND, &aq, sizeof(aq), NULL, 0, m),
			 0);
	evtchn_port_t q;
	memcpy(&q, m->payload, 4);
	aq.dom = 0x7000;
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_EVTCHN_ALLOC_UNBOUND, &aq, sizeof(aq), NULL, 0, NULL),
			 -ESRCH);
	evtchn_port_t r;
	ck_assert_int_eq(bind(0, q, &r, fds), 0);
	ck_assert_int_eq(hvt_wait_event(H.fd, HV_EVT_PORT_BOUND, 5000, m), 0);
	struct hv_evt_port_bound pb;
	memcpy(&pb, m->payload, sizeof(pb));
	ck_assert_uint_eq(pb.port, q);
	ck_assert_uint_eq(pb.remote_dom, 0);
	ck_assert_uint_eq(pb.remote_port, r);
	ck_assert_uint_eq(m->nfds, 2);
	int qwait = m->fds[0], qkick = m->fds[1];
	ck_assert_int_eq(read(fds[0], &v, 8), 8); /* r pending */
	v = 1;
	ck_assert_int_eq(write(fds[1], &v, 8), 8); /* send on r: q sees it */
	ck_assert_int_eq(read(qwait, &v, 8), 8);
	ck_assert_int_eq(write(qkick, &v, 8), 8); /* and back */
	ck_assert_int_eq(read(fds[0], &v, 8), 8);
	ck_assert_int_eq(evclose(r), 0);
	ck_assert_int_eq(hvt_wait_event(H.fd, HV_EVT_PORT_CLOSED, 5000, m), 0);
	memcpy(&pc, m->payload, sizeof(pc));
	ck_assert_uint_eq(pc.port, q);
	ck_assert_int_eq(status(0, q, &st), 0);
	ck_assert_uint_eq(st.status, EVTCHNSTAT_unbound);
	close(fds[0]);
	close(fds[1]);
	close(qwait);
	close(qkick);
	free(m);
	stop();
}
END_TEST

/* Segments are charged to memory; private memory is capped by it too. */
START_TEST(test_memory_limit)
{
	start();
	static uint8_t p[512];
	struct hv_create_req q = {.nr_strings = 2, .memory = 8u << 20};
	strcpy(q.name, "mem");
	memcpy(p, &q, sizeof(q));
	int n = snprintf((char *)p + sizeof(q), sizeof(p) - sizeof(q), "%s/tests/bin/dom_hcall",
			 getenv("DRVDOM_BUILD"));
	memcpy(p + sizeof(q) + n + 1, "memlimit", 9);
	size_t len = sizeof(q) + (size_t)n + 1 + 9;
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_DOMCTL_CREATE, p, len, NULL, 0, NULL), 0);
	/* 8 MiB: the store page and 7 segments of 1 MiB fit, the 8th does not */
	log_expect("mem", "hcall: memlimit segments=7 ret=-12 private64=refused");
	stop();
}
END_TEST

/* Port space: 4095 ports, then ENOSPC. */
START_TEST(test_evtchn_exhaustion)
{
	start();
	struct hv_evtchn_alloc_unbound_req aq = {.dom = DOMID_SELF, .remote_dom = 0};
	int r = 0, n = 0;
	while (n < 5000 && (r = hvt_call(H.fd, HV_OP_EVTCHN_ALLOC_UNBOUND, &aq, sizeof(aq), NULL, 0,
					 NULL)) == 0)
		n++;
	ck_assert_int_eq(n, HV_EVTCHN_PORTS - 1);
	ck_assert_int_eq(r, -ENOSPC);
	ck_assert_int_eq(evclose(77), 0);
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_EVTCHN_ALLOC_UNBOUND, &aq, sizeof(aq), NULL, 0, NULL),
			 0);
	stop();
}
END_TEST

/* --- devices, pause ---------------------------------------------------------- */

START_TEST(test_device)
{
	start();
	domid_t d = create("dev", "dom_hcall", "device");
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	struct hv_assign_device_req q = {.domid = d};
	strcpy(q.name, "nic0");
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_DOMCTL_ASSIGN_DEVICE, &q, sizeof(q), &p[1], 1, NULL),
			 0);
	close(p[1]);
	log_expect("dev", "hcall: device get again ret=-2"); /* ENOENT: handed over once */
	log_expect("dev", "hcall: device write 12");
	char buf[32] = {0};
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 12);
	ck_assert_str_eq(buf, "hello device");
	/* bad names, dom0, nobody, duplicates */
	int fd = p[0];
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_DOMCTL_ASSIGN_DEVICE, &q, sizeof(q), &fd, 1, NULL),
			 0);
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_DOMCTL_ASSIGN_DEVICE, &q, sizeof(q), &fd, 1, NULL),
			 -EEXIST);
	q.domid = 0;
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_DOMCTL_ASSIGN_DEVICE, &q, sizeof(q), &fd, 1, NULL),
			 -EINVAL);
	q.domid = 0x7000;
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_DOMCTL_ASSIGN_DEVICE, &q, sizeof(q), &fd, 1, NULL),
			 -ESRCH);
	/* revoke: takes back what was not taken, once */
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_DOMCTL_REVOKE_DEVICE, &q, sizeof(q), NULL, 0, NULL),
			 -ESRCH);
	q.domid = d;
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_DOMCTL_REVOKE_DEVICE, &q, sizeof(q), NULL, 0, NULL),
			 0);
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_DOMCTL_REVOKE_DEVICE, &q, sizeof(q), NULL, 0, NULL),
			 -ENOENT);
	strcpy(q.name, "vbd/3/51712");
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_DOMCTL_ASSIGN_DEVICE, &q, sizeof(q), &fd, 1, NULL),
			 0);
	strcpy(q.name, "../x");
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_DOMCTL_ASSIGN_DEVICE, &q, sizeof(q), &fd, 1, NULL),
			 -EINVAL);
	close(p[0]);
	stop();
}
END_TEST

static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return '?';
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	char *rp = strrchr(buf, ')');
	return rp && rp[1] ? rp[2] : '?';
}

START_TEST(test_pause)
{
	start();
	domid_t d = create("p", "dom_sandbox", "sleep");
	struct hv_domain_info info;
	ck_assert_int_eq(hvt_domid_op(H.fd, HV_OP_DOMCTL_PAUSE, d), 0);
	ck_assert_int_eq(hvt_info(H.fd, d, &info), 0);
	ck_assert_uint_eq(info.state, HV_DOM_PAUSED);
	char s = '?';
	for (int i = 0; i < 100 && (s = proc_state(info.pid)) != 'T'; i++)
		hvt_sleep_ms(10);
	ck_assert_int_eq(s, 'T');
	ck_assert_int_eq(hvt_domid_op(H.fd, HV_OP_DOMCTL_UNPAUSE, d), 0);
	ck_assert_int_eq(hvt_info(H.fd, d, &info), 0);
	ck_assert_uint_eq(info.state, HV_DOM_RUNNING);
	for (int i = 0; i < 100 && (s = proc_state(info.pid)) == 'T'; i++)
		hvt_sleep_ms(10);
	ck_assert_int_ne(s, 'T');
	/* a paused domain can still be destroyed */
	ck_assert_int_eq(hvt_domid_op(H.fd, HV_OP_DOMCTL_PAUSE, d), 0);
	ck_assert_int_eq(hvt_domid_op(H.fd, HV_OP_DOMCTL_DESTROY, d), 0);
	ck_assert_int_eq(hvt_info(H.fd, d, &info), -ESRCH);
	stop();
}
END_TEST

/* --- random arguments ---------------------------------------------------------- */

/* Well-formed calls with random arguments (biased to small values, so they
 * hit live domains, ports and refs) never kill the hv nor close dom0. */
START_TEST(test_fuzz_arguments)
{
	static const uint32_t ops[] = {
	    HV_OP_DOMAIN_INFO,
	    HV_OP_SEG_ALLOC,
	    HV_OP_SEG_FREE,
	    HV_OP_GNTTAB_SETUP,
	    HV_OP_GNT_MAP,
	    HV_OP_GNT_UNMAP,
	    HV_OP_GNT_COPY,
	    HV_OP_EVTCHN_ALLOC_UNBOUND,
	    HV_OP_EVTCHN_BIND_INTERDOMAIN,
	    HV_OP_EVTCHN_CLOSE,
	    HV_OP_EVTCHN_STATUS,
	    HV_OP_DEVICE_GET,
	    HV_OP_HEARTBEAT,
	    HV_OP_STORE_SEG,
	    HV_OP_DOMCTL_PAUSE,
	    HV_OP_DOMCTL_UNPAUSE,
	    HV_OP_DOMCTL_LIST,
	    HV_OP_DOMCTL_ASSIGN_DEVICE,
	    HV_OP_DOMCTL_REVOKE_DEVICE,
	};
	static const uint8_t small[] = {0, 1, 2, 3, 8, 9, 11, 12, 0xF0, 0x7F, 0xFF};
	start();
	domid_t g = create("g", "dom_hcall", "grant");
	tell_peer(g, 0);
	create("s", "dom_sandbox", "sleep");
	log_expect("g", "hcall: granted peer=0");
	srand(12345);
	static uint8_t p[HV_MSG_MAX];
	struct hvt_msg *m = malloc(sizeof(*m));
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);
	for (int i = 0; i < 3000; i++) {
		uint32_t op = ops[(unsigned)rand() % (sizeof(ops) / sizeof(ops[0]))];
		const struct hv_op_desc *d = hv_call_desc(op);
		uint32_t count = d->elem ? (uint32_t)rand() % (d->max_elems + 1) : 0;
		size_t len = d->fixed + (size_t)count * d->elem;
		for (size_t k = 0; k < len; k++)
			p[k] =
			    rand() % 3 ? small[(unsigned)rand() % sizeof(small)] : (uint8_t)rand();
		if (d->elem)
			memcpy(p + d->count_off, &count, 4);
		int r = hvt_call(H.fd, op, p, len, d->nfds ? &pfd[1] : NULL, d->nfds, m);
		ck_assert_msg(r <= 0 && r > -4096, "op %u: %d", op, r);
		hvt_msg_close_fds(m);
	}
	close(pfd[0]);
	close(pfd[1]);
	struct hv_domain_info info;
	ck_assert_int_eq(hvt_info(H.fd, 0, &info), 0);
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_DOMCTL_LIST, NULL, 0, NULL, 0, m), 0);
	free(m);
	stop();
}
END_TEST

/* --- an ordinary user ------------------------------------------------------------ */

START_TEST(test_as_ordinary_user)
{
	if (geteuid() != 0) {
		/* Every other case already runs as an ordinary user. */
		return;
	}
	/* Can nobody reach the build tree at all? (CI may build under /root.) */
	char prog[PATH_MAX], kern[PATH_MAX];
	snprintf(prog, sizeof(prog), "%s/bin/drvdom-hv", getenv("DRVDOM_BUILD"));
	snprintf(kern, sizeof(kern), "%s/tests/bin/dom_sandbox", getenv("DRVDOM_BUILD"));
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(2);
		_exit(access(prog, X_OK) || access(kern, R_OK | X_OK) ? 1 : 0);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "hv: test_as_ordinary_user: skipped, build tree unreachable "
				"by nobody\n");
		return;
	}
	int r = hvt_hv_start(&H, 65534);
	ck_assert_msg(r == 0, "drvdom-hv as nobody did not start: %s", strerror(-r));
	struct hv_create_rep rep;
	const char *args[] = {"sleep", NULL};
	domid_t d;
	r = hvt_create(H.fd, "u", "dom_sandbox", args, &d, &rep);
	ck_assert_int_eq(r, 0);
	log_expect("u", "sandbox: mode sleep");
	hvt_log_read(&H, "u", logbuf, sizeof(logbuf));
	ck_assert_msg(strstr(logbuf, "open /etc/passwd: denied"), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "interfaces: lo\n"), "%s", logbuf);
	subscribe();
	const char *pt[] = {"ptrace", NULL};
	ck_assert_int_eq(hvt_create(H.fd, "pt", "dom_sandbox", pt, &d, NULL), 0);
	struct hv_evt_domain_exit ev;
	ck_assert_int_eq(hvt_wait_exit(H.fd, d, 5000, &ev), 0);
	ck_assert_uint_eq(ev.reason, HV_EXIT_SECCOMP);
	stop();
}
END_TEST

/* --- no leaks ------------------------------------------------------------------ */

struct usage {
	int fds, maps;
	long rss_kb;
};

static int count_lines(const char *path)
{
	FILE *f = fopen(path, "re");
	int n = 0, ch;
	if (!f)
		return -1;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

static struct usage usage_of(pid_t pid)
{
	struct usage u = {0, 0, 0};
	char path[64], cmd[128];
	snprintf(cmd, sizeof(cmd), "ls /proc/%d/fd | wc -l", (int)pid);
	FILE *p = popen(cmd, "r");
	if (p) {
		if (fscanf(p, "%d", &u.fds) != 1)
			u.fds = -1;
		pclose(p);
	}
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	u.maps = count_lines(path);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	char line[256];
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			u.rss_kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return u;
}

static uint32_t cycle_frame; /* a dom0 frame, destination of the copies */

static void cycle(int i)
{
	char name[32];
	snprintf(name, sizeof(name), "c%d", i % 4);
	domid_t d = create(name, "dom_sandbox", "sleep");
	/* touch what a domain owns: its store segment (mapped by us, and by
	 * the hv for a copy), a bound port */
	evtchn_port_t p;
	int fds[2];
	struct hv_domain_info info;
	ck_assert_int_eq(hvt_info(H.fd, d, &info), 0);
	ck_assert_int_eq(bind(d, info.store_port, &p, fds), 0);
	close(fds[0]);
	close(fds[1]);
	struct hv_gnt_map_res res;
	int fd;
	ck_assert_int_eq(map_one(d, GNTTAB_RESERVED_XENSTORE, 0, &res, &fd), GNTST_okay);
	close(fd);
	struct hv_gnt_copy c = {
	    .source = {.u = GNTTAB_RESERVED_XENSTORE, .domid = d},
	    .dest = {.u = cycle_frame, .domid = DOMID_SELF},
	    .len = 64,
	    .flags = GNTCOPY_source_gref,
	};
	ck_assert_int_eq(copy_one(&c), GNTST_okay);
	if (i % 2)
		ck_assert_int_eq(hvt_domid_op(H.fd, HV_OP_DOMCTL_DESTROY, d), 0);
	else
		ck_assert_int_eq(hvt_domid_op(H.fd, HV_OP_DOMCTL_KILL, d), 0);
	struct hvt_msg *m = malloc(sizeof(*m));
	ck_assert_int_eq(hvt_wait_event(H.fd, HV_EVT_PORT_CLOSED, 5000, m), 0);
	free(m);
	ck_assert_int_eq(hvt_wait_exit(H.fd, d, 5000, NULL), 0);
	ck_assert_int_eq(evclose(p), 0);
	/* the handle on the dead domain's grant is stale but still ours */
	ck_assert_int_eq(unmap_one(res.handle), GNTST_okay);
}

START_TEST(test_no_leak_1000_cycles)
{
	start();
	subscribe();
	domid_t anchor = create("anchor", "dom_sandbox", "sleep");
	struct hv_seg_alloc_req sq = {.peer = anchor, .npages = 1};
	struct hvt_msg *sm = malloc(sizeof(*sm));
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_SEG_ALLOC, &sq, sizeof(sq), NULL, 0, sm), 0);
	struct hv_seg_alloc_rep seg;
	memcpy(&seg, sm->payload, sizeof(seg));
	cycle_frame = seg.first_frame;
	hvt_msg_close_fds(sm);
	free(sm);
	for (int i = 0; i < 20; i++)
		cycle(i);
	struct usage before = usage_of(H.pid);
	for (int i = 20; i < 1020; i++)
		cycle(i);
	struct usage after = usage_of(H.pid);
	if (getenv("HVTEST_VERBOSE"))
		fprintf(stderr, "hv leak: fds %d -> %d, maps %d -> %d, rss %ld -> %ld kB\n",
			before.fds, after.fds, before.maps, after.maps, before.rss_kb,
			after.rss_kb);
	ck_assert_int_gt(before.fds, 0);
	ck_assert_msg(after.fds == before.fds, "fds %d -> %d", before.fds, after.fds);
	ck_assert_msg(after.maps <= before.maps + 2, "maps %d -> %d", before.maps, after.maps);
#ifndef __SANITIZE_ADDRESS__ /* ASan's quarantine keeps freed memory resident */
	ck_assert_msg(after.rss_kb <= before.rss_kb + 2048, "rss %ld kB -> %ld kB", before.rss_kb,
		      after.rss_kb);
#endif
	struct hvt_msg *m = malloc(sizeof(*m));
	ck_assert_int_eq(hvt_call(H.fd, HV_OP_DOMCTL_LIST, NULL, 0, NULL, 0, m), 0);
	uint32_t n;
	memcpy(&n, m->payload, 4);
	ck_assert_uint_eq(n, 2); /* dom0 and the anchor */
	free(m);
	stop();
}
END_TEST

Suite *hv_suite(void);
Suite *hv_suite(void)
{
	Suite *s = suite_create("hv");
	TCase *tc = tcase_create("daemon");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_dom0_info_and_stop);
	tcase_add_test(tc, test_sigterm_kills_domains);
	tcase_add_test(tc, test_sandbox_view);
	tcase_add_test(tc, test_sandbox_runtime);
	tcase_add_test(tc, test_console_rotates);
	tcase_add_loop_test(tc, test_seccomp_kills, 0,
			    (int)(sizeof(forbidden) / sizeof(forbidden[0])));
	tcase_add_test(tc, test_exit_code);
	tcase_add_test(tc, test_create_refused);
	tcase_add_loop_test(tc, test_malformed_kills_sender, 0,
			    (int)(sizeof(malformed_modes) / sizeof(malformed_modes[0])));
	tcase_add_test(tc, test_malformed_dom0_closed);
	tcase_add_test(tc, test_dom0_only_and_start_info);
	tcase_add_test(tc, test_grant_bad_inputs);
	tcase_add_test(tc, test_end_access_after_mapper_dies);
	tcase_add_test(tc, test_seg_busy_and_conn_release);
	tcase_add_test(tc, test_evtchn);
	tcase_add_test(tc, test_device);
	tcase_add_test(tc, test_memory_limit);
	tcase_add_test(tc, test_evtchn_exhaustion);
	tcase_add_test(tc, test_pause);
	tcase_add_test(tc, test_as_ordinary_user);
	tcase_add_test(tc, test_fuzz_arguments);
	suite_add_tcase(s, tc);
	TCase *leak = tcase_create("leak");
	tcase_set_timeout(leak, 120);
	tcase_add_test(leak, test_no_leak_1000_cycles);
	suite_add_tcase(s, leak);
	return s;
}
