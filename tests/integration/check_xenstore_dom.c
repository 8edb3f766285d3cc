// SPDX-License-Identifier: MIT
// Test domain kernel (static, started by drvdom-hv in the xenstore_daemon
// suite) that uses the libxenstore-compatible library over its xenstore ring,
// as argv[1] says:
//   basic    write data/hello (relative: below its home), read it back, try
//            to write /forbidden (expect EACCES), then publish data/done =
//            "ok:<value>" and data/denied = the errno name; sleep
//   corrupt  write data/hello, then push req_prod 5000 bytes past req_cons
//            in its own ring page and notify; sleep
//   flood    also register watches until refused, publish data/watches =
//            "<count> <errno name>"
//   watched  also watch data/ev (the reader thread starts), make RTT_READS
//            reads and publish data/wakes = "<voluntary context switches of
//            the domain's threads during them> <reads>"; then wait for a
//            watch event and publish its path as data/event
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "hv/evtchn.h"
#include "hv/hvc.h"
#include "xenstore/include/xenstore.h"
#include "xenstore/xs_transport.h"

static void sleep_forever(void)
{
	for (;;) {
		struct timespec ts = {1, 0};
		nanosleep(&ts, NULL);
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "basic";
	struct hvc *h;
	if (hvc_open_domain(&h)) {
		printf("xs_dom: no hypercall socket\n");
		return 1;
	}
	xs_ring_use_hvc(h);
	struct xs_handle *xs = xs_open(0);
	if (!xs) {
		printf("xs_dom: xs_open: %s\n", strerror(errno));
		return 1;
	}
	if (!xs_write(xs, XBT_NULL, "data/hello", "world", 5)) {
		printf("xs_dom: write: %s\n", strerror(errno));
		return 1;
	}
	printf("xs_dom: wrote data/hello\n");
	fflush(stdout);
	if (strcmp(mode, "corrupt") == 0) {
		struct hv_domain_info info;
		struct hv_seg_alloc_rep seg;
		int fd = -1;
		struct hvc_msg m = {.op = HV_OP_STORE_SEG,
				    .rep = &seg,
				    .rep_cap = sizeof(seg),
				    .rfds = &fd,
				    .rfds_cap = 1};
		if (hvc_domain_info(h, DOMID_SELF, &info) || hvc_call_exact(h, &m))
			return 1;
		struct xenstore_domain_interface *in =
		    mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (in == MAP_FAILED)
			return 1;
		__atomic_store_n(&in->req_prod, in->req_cons + 5000, __ATOMIC_RELEASE);
		evtchn_notify(h, info.store_port);
		printf("xs_dom: corrupted the ring\n");
		fflush(stdout);
		sleep_forever();
	}
	unsigned int len;
	char *v = xs_read(xs, XBT_NULL, "data/hello", &len);
	bool denied = !xs_write(xs, XBT_NULL, "/forbidden", "x", 1);
	const char *err = denied ? (errno == EACCES ? "EACCES" : strerror(errno)) : "allowed";
	char done[64];
	snprintf(done, sizeof(done), "ok:%s", v ? v : "(null)");
	free(v);
	xs_write(xs, XBT_NULL, "data/denied", err, (unsigned int)strlen(err));
	xs_write(xs, XBT_NULL, "data/done", done, (unsigned int)strlen(done));
	if (strcmp(mode, "flood") == 0) {
		char tok[16], res[64];
		int i;
		for (i = 0; i < 1000; i++) {
			snprintf(tok, sizeof(tok), "t%d", i);
			if (!xs_watch(xs, "data", tok))
				break;
		}
		snprintf(res, sizeof(res), "%d %s", i, errno == E2BIG ? "E2BIG" : strerror(errno));
		xs_write(xs, XBT_NULL, "data/watches", res, (unsigned int)strlen(res));
	}
	if (strcmp(mode, "watched") == 0) {
		enum { RTT_READS = 500 };
		unsigned int num;
		char res[64];
		if (!xs_watch(xs, "data/ev", "tok"))
			return 1;
		free(xs_read_watch(xs, &num)); /* the registration event */
		for (int i = 0; i < 50; i++)   /* warm up */
			free(xs_read(xs, XBT_NULL, "data/hello", &len));
		struct rusage a, b;
		getrusage(RUSAGE_SELF, &a);
		for (int i = 0; i < RTT_READS; i++)
			free(xs_read(xs, XBT_NULL, "data/hello", &len));
		getrusage(RUSAGE_SELF, &b);
		snprintf(res, sizeof(res), "%ld %d", b.ru_nvcsw - a.ru_nvcsw, RTT_READS);
		xs_write(xs, XBT_NULL, "data/wakes", res, (unsigned int)strlen(res));
		char **e = xs_read_watch(xs, &num);
		const char *ev = e ? e[XS_WATCH_PATH] : "(none)";
		xs_write(xs, XBT_NULL, "data/event", ev, (unsigned int)strlen(ev));
		free(e);
	}
	printf("xs_dom: %s, /forbidden %s\n", done, err);
	fflush(stdout);
	sleep_forever();
}
