// SPDX-License-Identifier: MIT
// The toolstack's NBD client (tools/nbdc.c) against a real NBD server
// (drvdom-nbd-file serving a real file): pipelined writes and reads at
// queue depth 16 verified against the file, flush, and a request past the
// end answered with an error.
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frontends/nbd/nbd_proto.h"
#include "tools/nbdc.h"

static char dir[64], img[128], sock[128];
static pid_t server;

static void start_server(void)
{
	strcpy(dir, "/tmp/drvdom-nbdc-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	snprintf(sock, sizeof(sock), "%s/d.nbd", dir);
	int fd = open(img, O_CREAT | O_RDWR, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 16 << 20), 0);
	close(fd);
	char prog[PATH_MAX];
	snprintf(prog, sizeof(prog), "%s/bin/drvdom-nbd-file", getenv("DRVDOM_BUILD"));
	server = fork();
	if (server == 0) {
		execl(prog, prog, "--socket", sock, img, (char *)NULL);
		_exit(127);
	}
	ck_assert_int_gt(server, 0);
}

static void stop_server(void)
{
	kill(server, SIGTERM);
	waitpid(server, NULL, 0);
	unlink(img);
	unlink(sock);
	rmdir(dir);
}

START_TEST(pipelined_io_matches_file)
{
	start_server();
	struct nbdc c;
	ck_assert_int_eq(nbdc_connect_wait(sock, 16, 5000, &c), 0);
	ck_assert_uint_eq(c.size, 16u << 20);
	ck_assert(c.flags & NBD_FLAG_SEND_FLUSH);
	static unsigned char wbuf[16][65536], rbuf[16][65536];
	for (int i = 0; i < 16; i++)
		memset(wbuf[i], 'a' + i, sizeof(wbuf[i]));
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(
		    nbdc_submit(&c, NBD_CMD_WRITE, 0, (uint64_t)i * 65536 * 3, 65536, wbuf[i]), i);
	ck_assert_int_eq(nbdc_submit(&c, NBD_CMD_WRITE, 0, 0, 512, wbuf[0]), -EBUSY);
	for (int i = 0; i < 16; i++) {
		int s;
		uint32_t e;
		ck_assert_int_eq(nbdc_reap(&c, &s, &e), 0);
		ck_assert_uint_eq(e, 0);
	}
	ck_assert_int_eq(nbdc_flush(&c), 0);
	for (int i = 0; i < 16; i++)
		ck_assert_int_ge(
		    nbdc_submit(&c, NBD_CMD_READ, 0, (uint64_t)i * 65536 * 3, 65536, rbuf[i]), 0);
	for (int i = 0; i < 16; i++) {
		int s;
		uint32_t e;
		ck_assert_int_eq(nbdc_reap(&c, &s, &e), 0);
		ck_assert_uint_eq(e, 0);
	}
	for (int i = 0; i < 16; i++)
		ck_assert(!memcmp(rbuf[i], wbuf[i], 65536));
	/* The file itself holds the data. */
	int fd = open(img, O_RDONLY);
	unsigned char b[65536];
	ck_assert_int_eq(pread(fd, b, sizeof(b), 5 * 65536 * 3), 65536);
	ck_assert(!memcmp(b, wbuf[5], 65536));
	close(fd);
	ck_assert_int_eq(nbdc_pread(&c, b, 4096, c.size), -EIO);
	nbdc_close(&c);
	stop_server();
}
END_TEST

START_TEST(refuses_non_nbd_peer)
{
	struct nbdc c;
	ck_assert_int_eq(nbdc_connect("/nonexistent/x.nbd", 1, &c), -ENOENT);
	ck_assert_int_eq(nbdc_connect("/tmp/x.nbd", 0, &c), -EINVAL);
}
END_TEST

Suite *nbdc_suite(void);
Suite *nbdc_suite(void)
{
	Suite *s = suite_create("nbdc");
	TCase *tc = tcase_create("client");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, pipelined_io_matches_file);
	tcase_add_test(tc, refuses_non_nbd_peer);
	suite_add_tcase(s, tc);
	return s;
}
