// SPDX-License-Identifier: MIT
// End-to-end tests of the NBD server: drvdom-nbd-file serves a temporary
// image on a Unix socket and real clients talk to it — qemu-io and qemu-img
// for the data path (patterns at random offsets and sizes, comparison with
// an expected image, flush, FUA, trim, write-zeroes, concurrent
// connections), and a raw socket client of this file's own for what a real
// client never sends (bad magic, requests past the end, oversized lengths,
// unknown commands and options, a client vanishing mid-write). After every
// abuse the same server must still serve a new client.
/* First, so the wire-format header is shown to compile alone. */
#include "frontends/nbd/nbd_proto.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IMG_SIZE (64u << 20)

struct fixture {
	char dir[64];
	char img[128];
	char sock[128];
	char uri[200];
	pid_t pid;
};

static struct fixture fx;

static void start_server(const char *const *extra)
{
	const char *build = getenv("DRVDOM_BUILD");
	char bin[512];

	ck_assert_msg(build, "DRVDOM_BUILD is not set");
	snprintf(bin, sizeof(bin), "%s/bin/drvdom-nbd-file", build);
	fx.pid = fork();
	ck_assert_int_ge(fx.pid, 0);
	if (fx.pid == 0) {
		const char *argv[16] = {bin, "--socket", fx.sock, fx.img};
		int n = 4;

		/* A failed test skips teardown: the server must not outlive it. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (!getenv("DRVDOM_LOG"))
			setenv("DRVDOM_LOG", "warn", 1); /* no "serving" banner per case */
		for (int i = 0; extra && extra[i] && n < 15; i++)
			argv[n++] = extra[i];
		argv[n] = NULL;
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		struct stat st;

		if (stat(fx.sock, &st) == 0)
			return;
		usleep(10000);
	}
	ck_abort_msg("drvdom-nbd-file did not create %s", fx.sock);
}

static void setup_common(const char *const *extra)
{
	int fd;

	strcpy(fx.dir, "/tmp/drvdom-nbd-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fx.dir));
	snprintf(fx.img, sizeof(fx.img), "%s/disk.img", fx.dir);
	snprintf(fx.sock, sizeof(fx.sock), "%s/xvda.nbd", fx.dir);
	snprintf(fx.uri, sizeof(fx.uri), "nbd+unix:///?socket=%s", fx.sock);
	fd = open(fx.img, O_CREAT | O_RDWR | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, IMG_SIZE), 0);
	close(fd);
	start_server(extra);
}

static void setup(void)
{
	setup_common(NULL);
}

static void setup_ro(void)
{
	static const char *const args[] = {"--read-only", NULL};

	setup_common(args);
}

/* The file backend behind an asynchronous shim that completes out of
 * order, outside dispatch, with -EAGAIN when full, and 512-byte sectors:
 * the shape of blkfront. */
static void setup_deferred(void)
{
	static const char *const args[] = {"--defer", "8", "--block-size", "512", NULL};

	setup_common(args);
}

/* The server must have survived everything the test did to it. */
static void assert_server_alive(void)
{
	ck_assert_msg(waitpid(fx.pid, NULL, WNOHANG) == 0, "drvdom-nbd-file died");
}

static void teardown(void)
{
	char cmd[256];

	if (fx.pid > 0) {
		kill(fx.pid, SIGTERM);
		waitpid(fx.pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fx.dir);
}

/* Run argv (through timeout(1)) and return its exit status; its output goes
 * to out (if not NULL) and stderr. */
static int run(char *const argv[], char *out, size_t outsz)
{
	int pfd[2];
	pid_t pid;
	int status;
	size_t have = 0;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int argc = 0, n = 4;
		char **args;

		while (argv[argc])
			argc++;
		args = calloc((size_t)argc + 5, sizeof(char *));
		if (!args)
			_exit(127);
		args[0] = "timeout";
		args[1] = "-k";
		args[2] = "5";
		args[3] = "60";
		for (int i = 0; i < argc; i++)
			args[n++] = argv[i];
		args[n] = NULL;
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execvp("timeout", args);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		char tmp[4096];
		ssize_t n = read(pfd[0], tmp, sizeof(tmp));

		if (n <= 0)
			break;
		if (out && have + 1 < outsz) {
			size_t k = (size_t)n < outsz - 1 - have ? (size_t)n : outsz - 1 - have;

			memcpy(out + have, tmp, k);
			have += k;
		}
	}
	if (out)
		out[have] = 0;
	close(pfd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* qemu-io on the export with the given -c commands; returns its output.
 * Fails the test if qemu-io fails or reports a pattern mismatch. */
static char *qemu_io(char **cmds, int ncmds)
{
	char **argv = calloc((size_t)(2 * ncmds + 5), sizeof(char *));
	char *out = malloc(1 << 20);
	int n = 0, rc;

	argv[n++] = "qemu-io";
	argv[n++] = "-f";
	argv[n++] = "raw";
	argv[n++] = fx.uri;
	for (int i = 0; i < ncmds; i++) {
		argv[n++] = "-c";
		argv[n++] = cmds[i];
	}
	argv[n] = NULL;
	rc = run(argv, out, 1 << 20);
	/* Check's messages are short: show where it went wrong. */
	const char *bad = strstr(out, "Pattern verification failed");

	if (!bad)
		bad = strstr(out, "failed:");
	if (!bad)
		bad = strlen(out) > 1500 ? out + strlen(out) - 1500 : out;
	ck_assert_msg(rc == 0, "qemu-io exited %d:\n%.1500s", rc, bad);
	ck_assert_msg(!strstr(out, "Pattern verification failed"), "qemu-io: %.1500s", bad);
	ck_assert_msg(!strstr(out, "failed:"), "qemu-io: %.1500s", bad);
	free(argv);
	return out;
}

static char *qemu_io1(const char *cmd)
{
	char *c = strdup(cmd);
	char *out = qemu_io(&c, 1);

	free(c);
	return out;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void write_file(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static uint8_t *read_img(void)
{
	uint8_t *buf = malloc(IMG_SIZE);
	int fd = open(fx.img, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, IMG_SIZE, 0), (ssize_t)IMG_SIZE);
	close(fd);
	return buf;
}

/* --- real clients ----------------------------------------------------- */

START_TEST(test_qemu_io_random_patterns)
{
	const char *env = getenv("DRVDOM_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) | 1;
	uint8_t *expect = calloc(1, IMG_SIZE);
	char *cmds[128], path[256], *out;
	char *cmp[] = {"qemu-img", "compare", "-f", "raw", "-F", "raw", path, fx.uri, NULL};
	int n = 0;

	fprintf(stderr, "nbd random patterns: seed %llu (DRVDOM_TEST_SEED to repeat)\n",
		(unsigned long long)seed);
	/* Sequential writes at random offsets and sizes, each read back. */
	for (int i = 0; i < 40; i++) {
		uint64_t len = 1 + rnd(&seed) % (2u << 20);
		uint64_t off = rnd(&seed) % (IMG_SIZE - len);
		unsigned pat = 1 + (unsigned)(rnd(&seed) % 255);

		if (i % 2 == 0) { /* half of them sector-aligned, as a file system would */
			off &= ~511ull;
			len = (len + 511) & ~511ull;
		}
		memset(expect + off, (int)pat, len);
		ck_assert_int_gt(asprintf(&cmds[n++], "write -P 0x%02x %llu %llu", pat,
					  (unsigned long long)off, (unsigned long long)len),
				 0);
		ck_assert_int_gt(asprintf(&cmds[n++], "read -P 0x%02x %llu %llu", pat,
					  (unsigned long long)off, (unsigned long long)len),
				 0);
	}
	out = qemu_io(cmds, n);
	free(out);
	for (int i = 0; i < n; i++)
		free(cmds[i]);

	/* Pipelined: 32 aio writes to disjoint slots in flight at once. */
	uint64_t lens[32];

	n = 0;
	for (int i = 0; i < 32; i++) {
		uint64_t slot = (uint64_t)i * (2u << 20);
		uint64_t len = lens[i] = 1 + rnd(&seed) % (1u << 20);
		unsigned pat = 1 + (unsigned)(rnd(&seed) % 255);

		memset(expect + slot, (int)pat, len);
		ck_assert_int_gt(asprintf(&cmds[n++], "aio_write -P 0x%02x %llu %llu", pat,
					  (unsigned long long)slot, (unsigned long long)len),
				 0);
	}
	ck_assert_int_gt(asprintf(&cmds[n++], "aio_flush"), 0);
	for (int i = 0; i < 32; i++) {
		uint64_t slot = (uint64_t)i * (2u << 20);

		ck_assert_int_gt(asprintf(&cmds[n++], "aio_read -P 0x%02x %llu %llu", expect[slot],
					  (unsigned long long)slot, (unsigned long long)lens[i]),
				 0);
	}
	ck_assert_int_gt(asprintf(&cmds[n++], "aio_flush"), 0);
	out = qemu_io(cmds, n);
	free(out);
	for (int i = 0; i < n; i++)
		free(cmds[i]);

	/* The whole export equals the image we expect, byte for byte. */
	snprintf(path, sizeof(path), "%s/expect.img", fx.dir);
	write_file(path, expect, IMG_SIZE);
	ck_assert_int_eq(run(cmp, NULL, 0), 0);
	/* qemu-img compare can fail: a changed byte must be reported. */
	expect[12345] ^= 0xff;
	write_file(path, expect, IMG_SIZE);
	ck_assert_int_eq(run(cmp, NULL, 0), 1);
	free(expect);
	assert_server_alive();
}
END_TEST

START_TEST(test_flush_and_fua_reach_file)
{
	uint8_t *img;

	free(qemu_io1("write -P 0x5a 1048576 65536"));
	free(qemu_io1("flush"));
	free(qemu_io1("write -f -P 0xa5 2097152 4096")); /* FUA */
	/* The server is killed outright: what the file holds is what was made
	 * to reach it, not something a clean shutdown wrote later. */
	kill(fx.pid, SIGKILL);
	waitpid(fx.pid, NULL, 0);
	fx.pid = 0;
	img = read_img();
	for (size_t i = 0; i < 65536; i++)
		ck_assert_uint_eq(img[1048576 + i], 0x5a);
	for (size_t i = 0; i < 4096; i++)
		ck_assert_uint_eq(img[2097152 + i], 0xa5);
	ck_assert_uint_eq(img[1048576 - 1], 0);
	free(img);
}
END_TEST

static long long allocated(void)
{
	struct stat st;

	ck_assert_int_eq(stat(fx.img, &st), 0);
	return (long long)st.st_blocks * 512;
}

START_TEST(test_trim_and_zeroes)
{
	long long before, after;

	free(qemu_io1("write -P 0x77 4194304 4194304"));
	free(qemu_io1("flush"));
	before = allocated();
	ck_assert_int_ge(before, 4194304);
	free(qemu_io1("discard 4194304 4194304"));
	after = allocated();
	ck_assert_msg(after <= before - 4194304, "trim freed nothing: %lld -> %lld", before, after);
	free(qemu_io1("read -P 0 4194304 4194304"));

	free(qemu_io1("write -P 0x33 8388608 1048576"));
	free(qemu_io1("write -z 8388608 524288"));
	free(qemu_io1("read -P 0 8388608 524288"));
	free(qemu_io1("read -P 0x33 8912896 524288"));
	assert_server_alive();
}
END_TEST

START_TEST(test_two_concurrent_qemu_io)
{
	pid_t kids[2];
	char *cmds[2][64];
	int n[2] = {0, 0};

	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < 20; i++) {
			unsigned long long off = (unsigned long long)(k * 32 + i) << 20;
			unsigned pat = (unsigned)(k * 100 + i + 1);

			ck_assert_int_gt(
			    asprintf(&cmds[k][n[k]++], "aio_write -P %u %llu 1048576", pat, off),
			    0);
		}
		ck_assert_int_gt(asprintf(&cmds[k][n[k]++], "aio_flush"), 0);
		for (int i = 0; i < 20; i++) {
			unsigned long long off = (unsigned long long)(k * 32 + i) << 20;
			unsigned pat = (unsigned)(k * 100 + i + 1);

			ck_assert_int_gt(
			    asprintf(&cmds[k][n[k]++], "read -P %u %llu 1048576", pat, off), 0);
		}
	}
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		ck_assert_int_ge(kids[k], 0);
		if (kids[k] == 0) {
			free(qemu_io(cmds[k], n[k]));
			_exit(0);
		}
	}
	for (int k = 0; k < 2; k++) {
		int st;

		ck_assert_int_eq(waitpid(kids[k], &st, 0), kids[k]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client %d failed", k);
	}
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < n[k]; i++)
			free(cmds[k][i]);
	/* Each sees the other's data. */
	free(qemu_io1("read -P 1 0 1048576"));
	free(qemu_io1("read -P 119 52428800 1048576"));
	assert_server_alive();
}
END_TEST

/* --- raw client ------------------------------------------------------- */

static int raw_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 10};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	strcpy(sa.sun_path, fx.sock);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		ck_assert_int_gt(w, 0);
		b += w;
		n -= (size_t)w;
	}
}

/* Read exactly n bytes; returns 0, or -1 on EOF (or error). */
static int recv_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n) {
		ssize_t r = recv(fd, b, n, 0);

		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* The server closes the connection (EOF) within the socket timeout. */
static void assert_closed(int fd)
{
	uint8_t b[256];
	ssize_t r;

	do
		r = recv(fd, b, sizeof(b), 0);
	while (r > 0);
	ck_assert_msg(r == 0 || errno == ECONNRESET, "server did not close: %s", strerror(errno));
}

/* Greeting and client flags; returns the handshake flags. */
static uint16_t raw_greeting(int fd)
{
	uint8_t g[NBD_GREETING_SIZE], f[4];

	ck_assert_int_eq(recv_all(fd, g, sizeof(g)), 0);
	ck_assert(nbd_get64(g) == NBD_MAGIC);
	ck_assert(nbd_get64(g + 8) == NBD_OPTS_MAGIC);
	nbd_put32(f, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	send_all(fd, f, 4);
	return nbd_get16(g + 16);
}

static void send_opt(int fd, uint32_t opt, const void *data, uint32_t len)
{
	uint8_t h[NBD_OPT_HDR_SIZE];

	nbd_put64(h, NBD_OPTS_MAGIC);
	nbd_put32(h + 8, opt);
	nbd_put32(h + 12, len);
	send_all(fd, h, sizeof(h));
	if (len)
		send_all(fd, data, len);
}

/* Read one option reply; returns its type, payload into data (up to 4 KiB). */
static uint32_t recv_opt_reply(int fd, uint32_t opt, uint8_t *data, uint32_t *len)
{
	uint8_t h[NBD_OPT_REPLY_SIZE];
	uint32_t n;

	ck_assert_int_eq(recv_all(fd, h, sizeof(h)), 0);
	ck_assert(nbd_get64(h) == NBD_REP_MAGIC);
	ck_assert_uint_eq(nbd_get32(h + 8), opt);
	n = nbd_get32(h + 16);
	ck_assert_uint_le(n, 4096);
	ck_assert_int_eq(recv_all(fd, data, n), 0);
	if (len)
		*len = n;
	return nbd_get32(h + 12);
}

struct raw_info {
	uint64_t size;
	uint16_t tflags;
	uint32_t min_block, pref_block, max_block;
};

/* NBD_OPT_GO (or INFO) for name, requesting block sizes. Returns the final
 * reply type (NBD_REP_ACK on success). */
static uint32_t raw_opt_go(int fd, uint32_t opt, const char *name, struct raw_info *info)
{
	uint8_t d[4096];
	uint32_t nl = (uint32_t)strlen(name), len, type;

	nbd_put32(d, nl);
	memcpy(d + 4, name, nl);
	nbd_put16(d + 4 + nl, 1);
	nbd_put16(d + 6 + nl, NBD_INFO_BLOCK_SIZE);
	send_opt(fd, opt, d, 8 + nl);
	memset(info, 0, sizeof(*info));
	while ((type = recv_opt_reply(fd, opt, d, &len)) == NBD_REP_INFO) {
		ck_assert_uint_ge(len, 2);
		if (nbd_get16(d) == NBD_INFO_EXPORT) {
			ck_assert_uint_eq(len, 12);
			info->size = nbd_get64(d + 2);
			info->tflags = nbd_get16(d + 10);
		} else if (nbd_get16(d) == NBD_INFO_BLOCK_SIZE) {
			ck_assert_uint_eq(len, 14);
			info->min_block = nbd_get32(d + 2);
			info->pref_block = nbd_get32(d + 6);
			info->max_block = nbd_get32(d + 10);
		}
	}
	return type;
}

/* A connection in transmission phase. */
static int raw_open(struct raw_info *info)
{
	int fd = raw_connect();
	struct raw_info tmp;

	raw_greeting(fd);
	ck_assert_uint_eq(raw_opt_go(fd, NBD_OPT_GO, "", info ? info : &tmp), NBD_REP_ACK);
	return fd;
}

static void send_req(int fd, uint16_t type, uint16_t flags, uint64_t cookie, uint64_t off,
		     uint32_t len)
{
	uint8_t b[NBD_REQUEST_SIZE];

	nbd_put32(b, NBD_REQUEST_MAGIC);
	nbd_put16(b + 4, flags);
	nbd_put16(b + 6, type);
	nbd_put64(b + 8, cookie);
	nbd_put64(b + 16, off);
	nbd_put32(b + 24, len);
	send_all(fd, b, sizeof(b));
}

/* Read a simple reply header; returns the error, checks the cookie. */
static uint32_t recv_reply(int fd, uint64_t cookie)
{
	uint8_t b[NBD_SIMPLE_REPLY_SIZE];

	ck_assert_int_eq(recv_all(fd, b, sizeof(b)), 0);
	ck_assert_uint_eq(nbd_get32(b), NBD_SIMPLE_REPLY_MAGIC);
	ck_assert_uint_eq(nbd_get64(b + 8), cookie);
	return nbd_get32(b + 4);
}

/* A full round trip of a small write and read-back, to show the server
 * still serves this connection or a new one. */
static void raw_roundtrip(int fd, uint64_t off)
{
	uint8_t w[512], r[512];

	memset(w, 0xc3, sizeof(w));
	send_req(fd, NBD_CMD_WRITE, 0, 1001, off, sizeof(w));
	send_all(fd, w, sizeof(w));
	ck_assert_uint_eq(recv_reply(fd, 1001), 0);
	send_req(fd, NBD_CMD_READ, 0, 1002, off, sizeof(r));
	ck_assert_uint_eq(recv_reply(fd, 1002), 0);
	ck_assert_int_eq(recv_all(fd, r, sizeof(r)), 0);
	ck_assert_mem_eq(w, r, sizeof(r));
}

static void new_client_works(void)
{
	int fd = raw_open(NULL);

	raw_roundtrip(fd, 4096);
	send_req(fd, NBD_CMD_DISC, 0, 0, 0, 0);
	assert_closed(fd);
	close(fd);
	assert_server_alive();
}

START_TEST(test_raw_handshake_and_info)
{
	int fd = raw_connect();
	uint16_t hs = raw_greeting(fd);
	struct raw_info info;
	uint8_t d[4096];
	uint32_t len;

	ck_assert_uint_eq(hs, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	/* Unknown and refused options get NBD_REP_ERR_UNSUP, and the
	 * negotiation goes on. */
	send_opt(fd, 0x4242, "xyz", 3);
	ck_assert_uint_eq(recv_opt_reply(fd, 0x4242, d, NULL), NBD_REP_ERR_UNSUP);
	send_opt(fd, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	ck_assert_uint_eq(recv_opt_reply(fd, NBD_OPT_STRUCTURED_REPLY, d, NULL), NBD_REP_ERR_UNSUP);
	send_opt(fd, NBD_OPT_STARTTLS, NULL, 0);
	ck_assert_uint_eq(recv_opt_reply(fd, NBD_OPT_STARTTLS, d, NULL), NBD_REP_ERR_UNSUP);
	/* LIST: one export, the default one. */
	send_opt(fd, NBD_OPT_LIST, NULL, 0);
	ck_assert_uint_eq(recv_opt_reply(fd, NBD_OPT_LIST, d, &len), NBD_REP_SERVER);
	ck_assert_uint_ge(len, 4);
	ck_assert_uint_eq(nbd_get32(d), 0);
	ck_assert_uint_eq(recv_opt_reply(fd, NBD_OPT_LIST, d, NULL), NBD_REP_ACK);
	/* LIST with data is invalid. */
	send_opt(fd, NBD_OPT_LIST, "x", 1);
	ck_assert_uint_eq(recv_opt_reply(fd, NBD_OPT_LIST, d, NULL), NBD_REP_ERR_INVALID);
	/* INFO for an unknown name. */
	ck_assert_uint_eq(raw_opt_go(fd, NBD_OPT_INFO, "nosuch", &info), NBD_REP_ERR_UNKNOWN);
	/* INFO with a name length pointing past the option. */
	nbd_put32(d, 100);
	send_opt(fd, NBD_OPT_INFO, d, 6);
	ck_assert_uint_eq(recv_opt_reply(fd, NBD_OPT_INFO, d, NULL), NBD_REP_ERR_INVALID);
	/* An option too large to hold is drained and refused. */
	{
		uint32_t big = 1u << 20;
		uint8_t *junk = calloc(1, big);

		send_opt(fd, NBD_OPT_INFO, junk, big);
		free(junk);
		ck_assert_uint_eq(recv_opt_reply(fd, NBD_OPT_INFO, d, NULL), NBD_REP_ERR_TOO_BIG);
	}
	/* INFO then GO. */
	ck_assert_uint_eq(raw_opt_go(fd, NBD_OPT_INFO, "", &info), NBD_REP_ACK);
	ck_assert_uint_eq(info.size, IMG_SIZE);
	ck_assert_uint_eq(raw_opt_go(fd, NBD_OPT_GO, "", &info), NBD_REP_ACK);
	ck_assert_uint_eq(info.size, IMG_SIZE);
	ck_assert_uint_eq(info.tflags, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
					   NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |
					   NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN);
	ck_assert_uint_eq(info.min_block, 1);
	ck_assert_uint_eq(info.pref_block, 4096);
	ck_assert_uint_eq(info.max_block, 32u << 20);
	raw_roundtrip(fd, 0);
	close(fd);
	new_client_works();
}
END_TEST

START_TEST(test_raw_export_name_and_abort)
{
	int fd = raw_connect();
	uint8_t b[NBD_EXPORT_NAME_REPLY_SIZE], d[64];

	/* Old-style EXPORT_NAME with NO_ZEROES: 10 bytes, then transmission. */
	raw_greeting(fd);
	send_opt(fd, NBD_OPT_EXPORT_NAME, NULL, 0);
	ck_assert_int_eq(recv_all(fd, b, sizeof(b)), 0);
	ck_assert_uint_eq(nbd_get64(b), IMG_SIZE);
	ck_assert(nbd_get16(b + 8) & NBD_FLAG_HAS_FLAGS);
	raw_roundtrip(fd, 8192);
	close(fd);

	/* EXPORT_NAME for an unknown export: the server hangs up. */
	fd = raw_connect();
	raw_greeting(fd);
	send_opt(fd, NBD_OPT_EXPORT_NAME, "nosuch", 6);
	assert_closed(fd);
	close(fd);

	/* ABORT is acknowledged, then the connection closes. */
	fd = raw_connect();
	raw_greeting(fd);
	send_opt(fd, NBD_OPT_ABORT, NULL, 0);
	ck_assert_uint_eq(recv_opt_reply(fd, NBD_OPT_ABORT, d, NULL), NBD_REP_ACK);
	assert_closed(fd);
	close(fd);

	/* Unknown client flags: the server hangs up. */
	fd = raw_connect();
	ck_assert_int_eq(recv_all(fd, d, NBD_GREETING_SIZE), 0);
	nbd_put32(d, 0x80000001u);
	send_all(fd, d, 4);
	assert_closed(fd);
	close(fd);

	/* Bad option magic: hang up. */
	fd = raw_connect();
	raw_greeting(fd);
	memset(d, 0x41, NBD_OPT_HDR_SIZE);
	send_all(fd, d, NBD_OPT_HDR_SIZE);
	assert_closed(fd);
	close(fd);
	new_client_works();
}
END_TEST

START_TEST(test_raw_bad_requests)
{
	struct raw_info info;
	int fd = raw_open(&info);
	uint8_t buf[4096] = {0};

	/* Past the end: read and trim EINVAL, write ENOSPC (the spec's choice). */
	send_req(fd, NBD_CMD_READ, 0, 1, IMG_SIZE - 512, 1024);
	ck_assert_uint_eq(recv_reply(fd, 1), NBD_EINVAL);
	send_req(fd, NBD_CMD_READ, 0, 2, UINT64_MAX - 10, 512); /* offset + length wraps */
	ck_assert_uint_eq(recv_reply(fd, 2), NBD_EINVAL);
	send_req(fd, NBD_CMD_TRIM, 0, 3, IMG_SIZE, 4096);
	ck_assert_uint_eq(recv_reply(fd, 3), NBD_EINVAL);
	send_req(fd, NBD_CMD_WRITE, 0, 4, IMG_SIZE - 100, 200);
	send_all(fd, buf, 200); /* the payload is drained */
	ck_assert_uint_eq(recv_reply(fd, 4), NBD_ENOSPC);
	send_req(fd, NBD_CMD_WRITE_ZEROES, 0, 5, IMG_SIZE, 1);
	ck_assert_uint_eq(recv_reply(fd, 5), NBD_ENOSPC);
	/* Oversized lengths. */
	send_req(fd, NBD_CMD_READ, 0, 6, 0, (32u << 20) + 1);
	ck_assert_uint_eq(recv_reply(fd, 6), NBD_EINVAL);
	{
		uint32_t big = (32u << 20) + 4096;
		uint8_t *p = calloc(1, big);

		send_req(fd, NBD_CMD_WRITE, 0, 7, 0, big);
		send_all(fd, p, big);
		free(p);
		ck_assert_uint_eq(recv_reply(fd, 7), NBD_EINVAL);
	}
	/* Unknown commands and flags. */
	send_req(fd, 99, 0, 8, 0, 512);
	ck_assert_uint_eq(recv_reply(fd, 8), NBD_EINVAL);
	send_req(fd, NBD_CMD_BLOCK_STATUS, 0, 9, 0, 512);
	ck_assert_uint_eq(recv_reply(fd, 9), NBD_EINVAL);
	send_req(fd, NBD_CMD_READ, 0x8000, 10, 0, 512);
	ck_assert_uint_eq(recv_reply(fd, 10), NBD_EINVAL);
	send_req(fd, NBD_CMD_FLUSH, 0, 11, 4096, 0); /* reserved fields set */
	ck_assert_uint_eq(recv_reply(fd, 11), NBD_EINVAL);
	/* None of that broke the connection: the stream is still in sync. */
	raw_roundtrip(fd, 0);
	send_req(fd, NBD_CMD_FLUSH, 0, 12, 0, 0);
	ck_assert_uint_eq(recv_reply(fd, 12), 0);
	send_req(fd, NBD_CMD_READ, 0, 13, 0, 0); /* zero length: a no-op */
	ck_assert_uint_eq(recv_reply(fd, 13), 0);

	/* Bad request magic: the stream cannot be trusted, so hang up. */
	memset(buf, 0x55, NBD_REQUEST_SIZE);
	send_all(fd, buf, NBD_REQUEST_SIZE);
	assert_closed(fd);
	close(fd);
	new_client_works();
}
END_TEST

START_TEST(test_raw_pipelined)
{
	int fd = raw_open(NULL);
	enum { N = 200 };
	static uint8_t w[N][1024];
	uint8_t r[1024];
	int seen[N] = {0};

	/* N writes sent back to back before any reply is read. */
	for (int i = 0; i < N; i++) {
		memset(w[i], i & 0xff, sizeof(w[i]));
		send_req(fd, NBD_CMD_WRITE, 0, (uint64_t)i, (uint64_t)i * 1024, 1024);
		send_all(fd, w[i], 1024);
	}
	for (int i = 0; i < N; i++) {
		uint8_t b[NBD_SIMPLE_REPLY_SIZE];
		uint64_t c;

		ck_assert_int_eq(recv_all(fd, b, sizeof(b)), 0);
		ck_assert_uint_eq(nbd_get32(b + 4), 0);
		c = nbd_get64(b + 8);
		ck_assert_uint_lt(c, N);
		ck_assert_int_eq(seen[c]++, 0);
	}
	/* And N reads, each reply carrying the right data for its cookie. */
	for (int i = 0; i < N; i++)
		send_req(fd, NBD_CMD_READ, 0, (uint64_t)(N + i), (uint64_t)i * 1024, 1024);
	for (int i = 0; i < N; i++) {
		uint8_t b[NBD_SIMPLE_REPLY_SIZE];
		uint64_t c;

		ck_assert_int_eq(recv_all(fd, b, sizeof(b)), 0);
		ck_assert_uint_eq(nbd_get32(b + 4), 0);
		c = nbd_get64(b + 8) - N;
		ck_assert_uint_lt(c, N);
		ck_assert_int_eq(recv_all(fd, r, sizeof(r)), 0);
		ck_assert_mem_eq(r, w[c], sizeof(r));
	}
	close(fd);
	assert_server_alive();
}
END_TEST

START_TEST(test_raw_multi_conn)
{
	int a = raw_open(NULL), b = raw_open(NULL);
	uint8_t w[4096], r[4096];

	memset(w, 0x9e, sizeof(w));
	send_req(a, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 1, 65536, sizeof(w));
	send_all(a, w, sizeof(w));
	ck_assert_uint_eq(recv_reply(a, 1), 0);
	send_req(b, NBD_CMD_FLUSH, 0, 2, 0, 0);
	ck_assert_uint_eq(recv_reply(b, 2), 0);
	send_req(b, NBD_CMD_READ, 0, 3, 65536, sizeof(r));
	ck_assert_uint_eq(recv_reply(b, 3), 0);
	ck_assert_int_eq(recv_all(b, r, sizeof(r)), 0);
	ck_assert_mem_eq(w, r, sizeof(r));
	close(a);
	close(b);
	assert_server_alive();
}
END_TEST

START_TEST(test_raw_disconnect_mid_write)
{
	for (int i = 0; i < 5; i++) {
		int fd = raw_open(NULL);
		uint8_t p[8192] = {0};

		/* Announce 1 MiB, send 8 KiB, vanish. */
		send_req(fd, NBD_CMD_WRITE, 0, 1, 0, 1u << 20);
		send_all(fd, p, sizeof(p));
		close(fd);
	}
	/* Mid-header and mid-handshake too. */
	{
		int fd = raw_open(NULL);

		send_all(fd, "\x25\x60\x95", 3);
		close(fd);
		fd = raw_connect();
		close(fd);
		fd = raw_connect();
		raw_greeting(fd);
		send_all(fd, "IHAVE", 5);
		close(fd);
	}
	new_client_works();
}
END_TEST

START_TEST(test_raw_read_only)
{
	struct raw_info info;
	int fd = raw_open(&info);
	uint8_t buf[512] = {0};

	ck_assert(info.tflags & NBD_FLAG_READ_ONLY);
	ck_assert(!(info.tflags & (NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES)));
	send_req(fd, NBD_CMD_WRITE, 0, 1, 0, sizeof(buf));
	send_all(fd, buf, sizeof(buf));
	ck_assert_uint_eq(recv_reply(fd, 1), NBD_EPERM);
	send_req(fd, NBD_CMD_TRIM, 0, 2, 0, 4096);
	ck_assert_uint_eq(recv_reply(fd, 2), NBD_EPERM);
	send_req(fd, NBD_CMD_READ, 0, 3, 0, sizeof(buf));
	ck_assert_uint_eq(recv_reply(fd, 3), 0);
	ck_assert_int_eq(recv_all(fd, buf, sizeof(buf)), 0);
	close(fd);
	/* qemu-io sees a read-only export: writes fail, reads work. */
	{
		char *argv[] = {"qemu-io",	   "-r", "-f", "raw", fx.uri, "-c",
				"read -P 0 0 64k", NULL};

		ck_assert_int_eq(run(argv, NULL, 0), 0);
	}
	assert_server_alive();
}
END_TEST

START_TEST(test_raw_block_size)
{
	struct raw_info info;
	int fd = raw_open(&info);
	uint8_t buf[512] = {0};

	ck_assert_uint_eq(info.min_block, 512);
	send_req(fd, NBD_CMD_READ, 0, 1, 1, 512);
	ck_assert_uint_eq(recv_reply(fd, 1), NBD_EINVAL);
	send_req(fd, NBD_CMD_WRITE, 0, 2, 0, 100);
	send_all(fd, buf, 100);
	ck_assert_uint_eq(recv_reply(fd, 2), NBD_EINVAL);
	raw_roundtrip(fd, 512);
	close(fd);
	/* qemu-io honours the block size: an unaligned write is done as a
	 * read-modify-write of whole sectors. */
	free(qemu_io1("write -P 0x11 100 1000"));
	free(qemu_io1("read -P 0x11 100 1000"));
	free(qemu_io1("read -P 0 0 100"));
	assert_server_alive();
}
END_TEST

START_TEST(test_clean_shutdown_with_clients)
{
	int a = raw_open(NULL), b = raw_open(NULL), c = raw_connect();
	uint8_t p[4096] = {0};
	int st;
	struct stat sb;

	send_req(b, NBD_CMD_WRITE, 0, 1, 0, 1u << 20); /* b is mid-payload */
	send_all(b, p, sizeof(p));
	raw_roundtrip(a, 0);
	kill(fx.pid, SIGTERM);
	ck_assert_int_eq(waitpid(fx.pid, &st, 0), fx.pid);
	fx.pid = 0;
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status 0x%x", st);
	ck_assert_int_ne(stat(fx.sock, &sb), 0); /* the socket was removed */
	assert_closed(a);
	assert_closed(b);
	close(a);
	close(b);
	close(c);
}
END_TEST

Suite *nbd_suite(void);

Suite *nbd_suite(void)
{
	Suite *s = suite_create("nbd");
	TCase *t = tcase_create("qemu");
	TCase *r = tcase_create("raw");
	TCase *ro = tcase_create("read-only");
	TCase *d = tcase_create("deferred");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, test_qemu_io_random_patterns);
	tcase_add_test(t, test_flush_and_fua_reach_file);
	tcase_add_test(t, test_trim_and_zeroes);
	tcase_add_test(t, test_two_concurrent_qemu_io);
	suite_add_tcase(s, t);

	tcase_add_checked_fixture(d, setup_deferred, teardown);
	tcase_set_timeout(d, 120);
	tcase_add_test(d, test_qemu_io_random_patterns);
	tcase_add_test(d, test_trim_and_zeroes);
	tcase_add_test(d, test_two_concurrent_qemu_io);
	tcase_add_test(d, test_raw_pipelined);
	tcase_add_test(d, test_raw_disconnect_mid_write);
	tcase_add_test(d, test_raw_block_size);
	tcase_add_test(d, test_clean_shutdown_with_clients);
	suite_add_tcase(s, d);

	tcase_add_checked_fixture(r, setup, teardown);
	tcase_set_timeout(r, 60);
	tcase_add_test(r, test_raw_handshake_and_info);
	tcase_add_test(r, test_raw_export_name_and_abort);
	tcase_add_test(r, test_raw_bad_requests);
	tcase_add_test(r, test_raw_pipelined);
	tcase_add_test(r, test_raw_multi_conn);
	tcase_add_test(r, test_raw_disconnect_mid_write);
	tcase_add_test(r, test_clean_shutdown_with_clients);
	suite_add_tcase(s, r);

	tcase_add_checked_fixture(ro, setup_ro, teardown);
	tcase_set_timeout(ro, 60);
	tcase_add_test(ro, test_raw_read_only);
	suite_add_tcase(s, ro);
	return s;
}
