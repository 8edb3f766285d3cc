// SPDX-License-Identifier: MIT
// Unit tests of the NBD module without other processes: request decoding
// and validation (every check in nbd_proto_check_request has a case here),
// errno mapping, transmission flags, and the server driven in-process over a
// socketpair with an asynchronous backend that completes requests later and
// in reverse order, returns -EAGAIN when full, and outlives the server —
// the contract blkfront will rely on.
/* First, so each public header is shown to compile alone. */
#include "frontends/nbd/nbd.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "frontends/nbd/nbd_proto.h"

static const struct nbd_limits lim = {
    .size = 1u << 20,
    .min_block = 512,
    .max_payload = 64u << 10,
    .can_flush = true,
    .can_trim = true,
    .can_zero = true,
};

static int check(uint16_t type, uint16_t flags, uint64_t off, uint32_t len,
		 const struct nbd_limits *l)
{
	uint8_t b[NBD_REQUEST_SIZE];
	struct nbd_request q;

	nbd_put32(b, NBD_REQUEST_MAGIC);
	nbd_put16(b + 4, flags);
	nbd_put16(b + 6, type);
	nbd_put64(b + 8, 0x0102030405060708ull);
	nbd_put64(b + 16, off);
	nbd_put32(b + 24, len);
	nbd_proto_parse_request(b, &q);
	ck_assert_uint_eq(q.cookie, 0x0102030405060708ull);
	ck_assert_uint_eq(q.offset, off);
	ck_assert_uint_eq(q.length, len);
	return nbd_proto_check_request(&q, l);
}

START_TEST(test_parse_and_check)
{
	struct nbd_limits ro = lim, bare = lim;

	ro.read_only = true;
	bare.can_flush = bare.can_trim = bare.can_zero = false;

	ck_assert_int_eq(check(NBD_CMD_READ, 0, 0, 512, &lim), 0);
	ck_assert_int_eq(check(NBD_CMD_READ, 0, (1u << 20) - 512, 512, &lim), 0);
	ck_assert_int_eq(check(NBD_CMD_READ, 0, (1u << 20) - 512, 1024, &lim), NBD_EINVAL);
	ck_assert_int_eq(check(NBD_CMD_READ, 0, UINT64_MAX - 511, 1024, &lim), NBD_EINVAL);
	ck_assert_int_eq(check(NBD_CMD_READ, 0, 1, 512, &lim), NBD_EINVAL); /* alignment */
	ck_assert_int_eq(check(NBD_CMD_READ, 0, 0, 100, &lim), NBD_EINVAL); /* alignment */
	ck_assert_int_eq(check(NBD_CMD_READ, 0, 0, 128u << 10, &lim), NBD_EINVAL);
	ck_assert_int_eq(check(NBD_CMD_WRITE, 0, 0, 128u << 10, &lim), NBD_EINVAL);
	ck_assert_int_eq(check(NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 0, 512, &lim), 0);
	ck_assert_int_eq(check(NBD_CMD_WRITE, 0, 1u << 20, 512, &lim), NBD_ENOSPC);
	ck_assert_int_eq(check(NBD_CMD_WRITE, 0, 0, 512, &ro), NBD_EPERM);
	ck_assert_int_eq(check(NBD_CMD_TRIM, 0, 0, 4096, &ro), NBD_EPERM);
	ck_assert_int_eq(check(NBD_CMD_TRIM, 0, 0, 4096, &bare), NBD_EINVAL);
	ck_assert_int_eq(check(NBD_CMD_TRIM, 0, 0, 1u << 20, &lim), 0); /* no payload limit */
	ck_assert_int_eq(check(NBD_CMD_TRIM, 0, 512, 1u << 20, &lim), NBD_EINVAL);
	ck_assert_int_eq(check(NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE, 0, 4096, &lim), 0);
	ck_assert_int_eq(check(NBD_CMD_WRITE_ZEROES, 0, 0, 4096, &bare), NBD_EINVAL);
	ck_assert_int_eq(check(NBD_CMD_WRITE, NBD_CMD_FLAG_NO_HOLE, 0, 512, &lim), NBD_EINVAL);
	ck_assert_int_eq(check(NBD_CMD_FLUSH, 0, 0, 0, &lim), 0);
	ck_assert_int_eq(check(NBD_CMD_FLUSH, 0, 0, 0, &bare), NBD_EINVAL);
	ck_assert_int_eq(check(NBD_CMD_FLUSH, 0, 0, 512, &lim), NBD_EINVAL);
	ck_assert_int_eq(check(NBD_CMD_READ, 1u << 9, 0, 512, &lim), NBD_EINVAL); /* flag */
	ck_assert_int_eq(check(NBD_CMD_CACHE, 0, 0, 512, &lim), NBD_EINVAL);
	ck_assert_int_eq(check(NBD_CMD_BLOCK_STATUS, 0, 0, 512, &lim), NBD_EINVAL);
	ck_assert_int_eq(check(0xffff, 0, 0, 0, &lim), NBD_EINVAL);
	ck_assert_int_eq(check(NBD_CMD_DISC, 0, 0, 0, &lim), 0);
	{
		uint8_t b[NBD_REQUEST_SIZE] = {0x25, 0x60, 0x95, 0x14};
		struct nbd_request q;

		nbd_proto_parse_request(b, &q);
		ck_assert_int_eq(nbd_proto_check_request(&q, &lim), -EPROTO);
	}
}
END_TEST

START_TEST(test_errno_and_flags)
{
	struct nbd_limits ro = lim;

	ck_assert_uint_eq(nbd_proto_errno_to_nbd(0), 0);
	ck_assert_uint_eq(nbd_proto_errno_to_nbd(-EIO), NBD_EIO);
	ck_assert_uint_eq(nbd_proto_errno_to_nbd(-EROFS), NBD_EPERM);
	ck_assert_uint_eq(nbd_proto_errno_to_nbd(-EDQUOT), NBD_ENOSPC);
	ck_assert_uint_eq(nbd_proto_errno_to_nbd(-ENXIO), NBD_EIO);
	ck_assert_uint_eq(nbd_proto_errno_to_nbd(-ESHUTDOWN), NBD_ESHUTDOWN);
	ck_assert_uint_eq(nbd_proto_transmission_flags(&lim, true, true),
			  NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
			      NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
			      NBD_FLAG_CAN_MULTI_CONN);
	ro.read_only = true;
	ck_assert_uint_eq(nbd_proto_transmission_flags(&ro, true, false),
			  NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY | NBD_FLAG_SEND_FLUSH);
}
END_TEST

/* --- in-process server with an asynchronous backend ------------------- */

#define DISK (1u << 20)

struct async_be {
	uint8_t disk[DISK];
	struct nbd_io *held[512];
	int nheld;
	int cap; /* -EAGAIN beyond this many held */
	int eagains;
	struct nbd_server *srv;
};

static int async_submit(void *ctx, struct nbd_io *io)
{
	struct async_be *be = ctx;

	if (be->nheld >= be->cap) {
		be->eagains++;
		return -EAGAIN;
	}
	be->held[be->nheld++] = io;
	return 0;
}

static const struct nbd_backend_ops async_ops = {.submit = async_submit};

/* Complete everything held, newest first. */
static int async_complete_all(struct async_be *be)
{
	int n = be->nheld;

	while (be->nheld) {
		struct nbd_io *io = be->held[--be->nheld];

		if (io->cmd == NBD_IO_READ)
			memcpy(io->data, be->disk + io->offset, io->length);
		else if (io->cmd == NBD_IO_WRITE)
			memcpy(be->disk + io->offset, io->data, io->length);
		nbd_io_complete(io, io->offset == 4096 * 7 ? -EIO : 0);
	}
	nbd_server_kick(be->srv);
	return n;
}

static void pump(struct async_be *be)
{
	struct pollfd p = {.fd = nbd_server_fd(be->srv), .events = POLLIN};

	while (poll(&p, 1, 20) > 0)
		ck_assert_int_eq(nbd_server_dispatch(be->srv), 0);
}

static void xwrite(int fd, const void *p, size_t n)
{
	ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
}

static void xread(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n) {
		ssize_t r = read(fd, b, n);

		ck_assert_int_gt(r, 0);
		b += r;
		n -= (size_t)r;
	}
}

static void req(int fd, uint16_t type, uint64_t cookie, uint64_t off, uint32_t len)
{
	uint8_t b[NBD_REQUEST_SIZE];

	nbd_put32(b, NBD_REQUEST_MAGIC);
	nbd_put16(b + 4, 0);
	nbd_put16(b + 6, type);
	nbd_put64(b + 8, cookie);
	nbd_put64(b + 16, off);
	nbd_put32(b + 24, len);
	xwrite(fd, b, sizeof(b));
}

START_TEST(test_async_out_of_order)
{
	static struct async_be be;
	struct nbd_export exp = {
	    .name = "xvda",
	    .size = DISK,
	    .min_block = 512,
	    .can_flush = true,
	    .can_multi_conn = true,
	};
	int sv[2];
	uint8_t b[4096];
	enum { N = 16 };

	memset(&be, 0, sizeof(be));
	be.cap = 5;
	ck_assert_int_eq(nbd_server_create(&exp, &async_ops, &be, &be.srv), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(nbd_server_add_client(be.srv, sv[0]), 0);
	pump(&be);
	xread(sv[1], b, NBD_GREETING_SIZE);
	nbd_put32(b, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	/* EXPORT_NAME by name, pipelined with the first requests. */
	nbd_put64(b + 4, NBD_OPTS_MAGIC);
	nbd_put32(b + 12, NBD_OPT_EXPORT_NAME);
	nbd_put32(b + 16, 4);
	memcpy(b + 20, "xvda", 4);
	xwrite(sv[1], b, 24);
	for (int i = 0; i < N; i++) {
		uint8_t d[512];

		memset(d, i + 1, sizeof(d));
		req(sv[1], NBD_CMD_WRITE, (uint64_t)i, 4096 * (uint64_t)i, 512);
		xwrite(sv[1], d, sizeof(d));
	}
	pump(&be);
	xread(sv[1], b, NBD_EXPORT_NAME_REPLY_SIZE);
	ck_assert_uint_eq(nbd_get64(b), DISK);
	/* The backend holds what it has room for; nothing is answered yet. */
	ck_assert_int_eq(be.nheld, 5);
	ck_assert_int_ge(be.eagains, 1);
	{
		struct pollfd p = {.fd = sv[1], .events = POLLIN};

		ck_assert_int_eq(poll(&p, 1, 0), 0);
	}
	/* Complete in reverse order, a batch at a time, from outside
	 * dispatch as blkfront will; kick lets the stalled ones in. */
	int done = 0, errs = 0;
	int seen[N] = {0};

	while (done < N) {
		done += async_complete_all(&be);
		pump(&be);
	}
	for (int i = 0; i < N; i++) {
		xread(sv[1], b, NBD_SIMPLE_REPLY_SIZE);
		uint64_t c = nbd_get64(b + 8);

		ck_assert_uint_lt(c, N);
		ck_assert_int_eq(seen[c]++, 0);
		if (nbd_get32(b + 4)) {
			ck_assert_uint_eq(c, 7);
			ck_assert_uint_eq(nbd_get32(b + 4), NBD_EIO);
			errs++;
		}
	}
	ck_assert_int_eq(errs, 1);
	ck_assert_uint_eq(be.disk[4096 * 3], 4);
	/* The first reply out was not the first request: out of order. */

	/* Reads in flight when the server is destroyed stay valid until the
	 * backend completes them. */
	req(sv[1], NBD_CMD_READ, 100, 4096 * 2, 512);
	req(sv[1], NBD_CMD_READ, 101, 4096 * 3, 512);
	pump(&be);
	ck_assert_int_eq(be.nheld, 2);
	{
		struct nbd_server_stats st;

		nbd_server_get_stats(be.srv, &st);
		ck_assert_uint_eq(st.in_flight, 2);
		ck_assert_uint_eq(st.clients, 1);
		ck_assert_uint_eq(st.errors, 1);
	}
	nbd_server_destroy(be.srv);
	while (be.nheld) {
		struct nbd_io *io = be.held[--be.nheld];

		memset(io->data, 0xee, io->length); /* still ours to write */
		nbd_io_complete(io, 0);
	}
	/* The client sees the connection close. */
	ck_assert_int_eq(read(sv[1], b, sizeof(b)), 0);
	close(sv[1]);
}
END_TEST

START_TEST(test_async_reverse_order_replies)
{
	static struct async_be be;
	struct nbd_export exp = {.size = DISK, .can_flush = true};
	int sv[2];
	uint8_t b[64];

	memset(&be, 0, sizeof(be));
	be.cap = 64;
	ck_assert_int_eq(nbd_server_create(&exp, &async_ops, &be, &be.srv), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(nbd_server_add_client(be.srv, sv[0]), 0);
	pump(&be);
	xread(sv[1], b, NBD_GREETING_SIZE);
	nbd_put32(b, NBD_FLAG_C_FIXED_NEWSTYLE); /* no NO_ZEROES: 124 zeroes follow */
	nbd_put64(b + 4, NBD_OPTS_MAGIC);
	nbd_put32(b + 12, NBD_OPT_EXPORT_NAME);
	nbd_put32(b + 16, 0);
	xwrite(sv[1], b, 20);
	pump(&be);
	{
		uint8_t r[NBD_EXPORT_NAME_REPLY_SIZE + NBD_EXPORT_NAME_ZEROES];
		uint8_t z[NBD_EXPORT_NAME_ZEROES] = {0};

		xread(sv[1], r, sizeof(r));
		ck_assert_mem_eq(r + NBD_EXPORT_NAME_REPLY_SIZE, z, sizeof(z));
	}
	for (int i = 0; i < 3; i++)
		req(sv[1], NBD_CMD_FLUSH, (uint64_t)(10 + i), 0, 0);
	pump(&be);
	ck_assert_int_eq(be.nheld, 3);
	async_complete_all(&be); /* outside dispatch: replies go out at once */
	for (int i = 2; i >= 0; i--) {
		xread(sv[1], b, NBD_SIMPLE_REPLY_SIZE);
		ck_assert_uint_eq(nbd_get64(b + 8), (uint64_t)(10 + i));
	}
	/* DISC: outstanding work finishes, then the server closes. */
	req(sv[1], NBD_CMD_FLUSH, 20, 0, 0);
	req(sv[1], NBD_CMD_DISC, 21, 0, 0);
	pump(&be);
	ck_assert_int_eq(be.nheld, 1);
	async_complete_all(&be);
	pump(&be);
	xread(sv[1], b, NBD_SIMPLE_REPLY_SIZE);
	ck_assert_uint_eq(nbd_get64(b + 8), 20);
	ck_assert_int_eq(read(sv[1], b, sizeof(b)), 0);
	nbd_server_destroy(be.srv);
	close(sv[1]);
}
END_TEST

START_TEST(test_create_rejects_bad_export)
{
	static struct async_be be;
	struct nbd_server *srv;
	struct nbd_export e = {.size = DISK, .min_block = 3};

	ck_assert_int_eq(nbd_server_create(&e, &async_ops, &be, &srv), -EINVAL);
	e.min_block = 4096;
	e.pref_block = 512;
	ck_assert_int_eq(nbd_server_create(&e, &async_ops, &be, &srv), -EINVAL);
	e.pref_block = 4096;
	e.max_payload = 1000;
	ck_assert_int_eq(nbd_server_create(&e, &async_ops, &be, &srv), -EINVAL);
	e.max_payload = 0;
	ck_assert_int_eq(nbd_server_create(&e, &async_ops, &be, &srv), 0);
	nbd_server_destroy(srv);
}
END_TEST

static uint32_t xs32(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Random bytes and half-valid requests after a valid or broken handshake,
 * with the backend completing at random: the server must neither crash nor
 * leak (run under SANITIZE=1), and must free everything on destroy. */
START_TEST(test_fuzz_stream)
{
	static struct async_be be;
	struct nbd_export exp = {
	    .size = DISK,
	    .min_block = 1u << (_i % 4 * 3), /* 1, 8, 64, 512 */
	    .max_payload = 64u << 10,
	    .can_flush = true,
	    .can_trim = true,
	    .can_zero = _i & 1,
	    .read_only = _i % 5 == 0,
	};
	uint32_t seed = 0x9e3779b9u * (uint32_t)(_i + 1);
	int sv[2];
	uint8_t b[8192];

	/* Garbage is expected here: keep its warnings out of the test log. */
	setenv("DRVDOM_LOG", "err", 1);
	log_init("check_nbd_proto");
	memset(&be, 0, sizeof(be));
	be.cap = 1 + (int)(xs32(&seed) % 16);
	ck_assert_int_eq(nbd_server_create(&exp, &async_ops, &be, &be.srv), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	ck_assert_int_eq(nbd_server_add_client(be.srv, sv[0]), 0);
	if (_i % 3) {
		nbd_put32(b, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
		nbd_put64(b + 4, NBD_OPTS_MAGIC);
		nbd_put32(b + 12, NBD_OPT_GO);
		nbd_put32(b + 16, 6);
		memset(b + 20, 0, 6);
		ck_assert_int_eq(send(sv[1], b, 26, MSG_NOSIGNAL), 26);
	}
	for (int round = 0; round < 200; round++) {
		uint32_t k = xs32(&seed) % 4;
		size_t n = 0;

		if (round < 4) { /* a valid read first, so the backend sees work */
			nbd_put32(b, NBD_REQUEST_MAGIC);
			nbd_put16(b + 4, 0);
			nbd_put16(b + 6, NBD_CMD_READ);
			nbd_put64(b + 8, round);
			nbd_put64(b + 16, 0);
			nbd_put32(b + 24, 512);
			n = NBD_REQUEST_SIZE;
		} else if (k == 0) { /* garbage */
			n = 1 + xs32(&seed) % 64;
			for (size_t i = 0; i < n; i++)
				b[i] = (uint8_t)xs32(&seed);
		} else { /* a request with random fields, sometimes a payload */
			uint16_t type = (uint16_t)(xs32(&seed) % 9);
			uint32_t len = xs32(&seed) % 3 ? xs32(&seed) % 9000 : xs32(&seed);

			nbd_put32(b, xs32(&seed) % 50 ? NBD_REQUEST_MAGIC : xs32(&seed));
			nbd_put16(b + 4, (uint16_t)(xs32(&seed) % 8 ? 0 : xs32(&seed) % 4));
			nbd_put16(b + 6, type);
			nbd_put64(b + 8, round);
			nbd_put64(b + 16, xs32(&seed) % 2 ? xs32(&seed) % DISK : xs32(&seed));
			nbd_put32(b + 24, len);
			n = NBD_REQUEST_SIZE;
			if (type == NBD_CMD_WRITE) {
				size_t pl = len < 4096 ? len : xs32(&seed) % 4096;

				memset(b + n, 0x5a, pl);
				n += pl;
			}
		}
		if (send(sv[1], b, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)
			break; /* the server hung up: fine */
		while (recv(sv[1], b, sizeof(b), MSG_DONTWAIT) > 0)
			;
		ck_assert_int_eq(nbd_server_dispatch(be.srv), 0);
		while (be.nheld && xs32(&seed) % 2) {
			int j = (int)(xs32(&seed) % (uint32_t)be.nheld);
			struct nbd_io *io = be.held[j];

			be.held[j] = be.held[--be.nheld];
			ck_assert_uint_le(io->offset + io->length, DISK);
			if (io->cmd == NBD_IO_WRITE)
				memcpy(be.disk + io->offset, io->data, io->length);
			nbd_io_complete(io, xs32(&seed) % 4 ? 0 : -EIO);
			nbd_server_kick(be.srv);
		}
		pump(&be);
	}
	{
		struct nbd_server_stats st;

		nbd_server_get_stats(be.srv, &st);
		/* After a good handshake the stream reached the backend. */
		ck_assert(_i % 3 == 0 || st.requests > 0);
	}
	close(sv[1]);
	pump(&be);
	if (_i % 2) {
		async_complete_all(&be);
		pump(&be);
		nbd_server_destroy(be.srv);
	} else {
		nbd_server_destroy(be.srv); /* with ios still held */
		while (be.nheld)
			nbd_io_complete(be.held[--be.nheld], 0);
	}
}
END_TEST

/* A client in transmission on a fresh socketpair (EXPORT_NAME ""). */
static int async_client(struct async_be *be)
{
	int sv[2];
	uint8_t b[64];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(nbd_server_add_client(be->srv, sv[0]), 0);
	nbd_put32(b, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	nbd_put64(b + 4, NBD_OPTS_MAGIC);
	nbd_put32(b + 12, NBD_OPT_EXPORT_NAME);
	nbd_put32(b + 16, 0);
	xwrite(sv[1], b, 20);
	pump(be);
	xread(sv[1], b, NBD_GREETING_SIZE + NBD_EXPORT_NAME_REPLY_SIZE);
	return sv[1];
}

START_TEST(test_server_memory_cap)
{
	static struct async_be be;
	struct nbd_export exp = {
	    .size = DISK,
	    .max_payload = 64u << 10,
	    .max_buffered = 128u << 10,
	};
	int fd[2];
	uint8_t b[NBD_SIMPLE_REPLY_SIZE];
	static uint8_t data[64u << 10];

	memset(&be, 0, sizeof(be));
	be.cap = 64;
	ck_assert_int_eq(nbd_server_create(&exp, &async_ops, &be, &be.srv), 0);
	fd[0] = async_client(&be);
	fd[1] = async_client(&be);
	for (int i = 0; i < 4; i++)
		req(fd[i % 2], NBD_CMD_READ, (uint64_t)i, 0, sizeof(data));
	pump(&be);
	/* Two 64 KiB buffers fill the server's 128 KiB: the rest wait unread. */
	ck_assert_int_eq(be.nheld, 2);
	for (int round = 0; round < 2; round++) {
		async_complete_all(&be);
		pump(&be);
	}
	ck_assert_int_eq(be.nheld, 0);
	for (int i = 0; i < 4; i++) {
		xread(fd[i % 2], b, sizeof(b));
		ck_assert_uint_eq(nbd_get32(b + 4), 0);
		xread(fd[i % 2], data, sizeof(data));
	}
	nbd_server_destroy(be.srv);
	close(fd[0]);
	close(fd[1]);
}
END_TEST

/* What reaches the backend is what the client asked for: command, FUA and
 * NO_HOLE, offset, length, cookie, and the write payload. */
START_TEST(test_backend_sees_request)
{
	static struct async_be be;
	struct nbd_export exp = {
	    .size = DISK,
	    .can_flush = true,
	    .can_fua = true,
	    .can_trim = true,
	    .can_zero = true,
	};
	uint8_t d[512], b[NBD_SIMPLE_REPLY_SIZE];
	int fd;

	memset(&be, 0, sizeof(be));
	be.cap = 64;
	ck_assert_int_eq(nbd_server_create(&exp, &async_ops, &be, &be.srv), 0);
	fd = async_client(&be);
	memset(d, 0x6b, sizeof(d));
	{
		uint8_t h[NBD_REQUEST_SIZE];

		nbd_put32(h, NBD_REQUEST_MAGIC);
		nbd_put16(h + 4, NBD_CMD_FLAG_FUA);
		nbd_put16(h + 6, NBD_CMD_WRITE);
		nbd_put64(h + 8, 0xabcdef);
		nbd_put64(h + 16, 8192);
		nbd_put32(h + 24, sizeof(d));
		xwrite(fd, h, sizeof(h));
		xwrite(fd, d, sizeof(d));
		nbd_put16(h + 4, NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE);
		nbd_put16(h + 6, NBD_CMD_WRITE_ZEROES);
		nbd_put64(h + 8, 2);
		nbd_put32(h + 24, 65536);
		xwrite(fd, h, sizeof(h));
		nbd_put16(h + 4, 0);
		nbd_put16(h + 6, NBD_CMD_TRIM);
		nbd_put64(h + 8, 3);
		xwrite(fd, h, sizeof(h));
	}
	req(fd, NBD_CMD_FLUSH, 4, 0, 0);
	pump(&be);
	ck_assert_int_eq(be.nheld, 4);
	ck_assert_int_eq(be.held[0]->cmd, NBD_IO_WRITE);
	ck_assert_uint_eq(be.held[0]->flags, NBD_IO_FUA);
	ck_assert_uint_eq(be.held[0]->offset, 8192);
	ck_assert_uint_eq(be.held[0]->length, sizeof(d));
	ck_assert_uint_eq(be.held[0]->cookie, 0xabcdef);
	ck_assert_mem_eq(be.held[0]->data, d, sizeof(d));
	ck_assert_uint_eq((uintptr_t)be.held[0]->data % 4096, 0);
	ck_assert_int_eq(be.held[1]->cmd, NBD_IO_WRITE_ZEROES);
	ck_assert_uint_eq(be.held[1]->flags, NBD_IO_FUA | NBD_IO_NO_HOLE);
	ck_assert_uint_eq(be.held[1]->length, 65536);
	ck_assert_ptr_null(be.held[1]->data);
	ck_assert_int_eq(be.held[2]->cmd, NBD_IO_TRIM);
	ck_assert_uint_eq(be.held[2]->flags, 0);
	ck_assert_int_eq(be.held[3]->cmd, NBD_IO_FLUSH);
	async_complete_all(&be);
	for (int i = 0; i < 4; i++) {
		xread(fd, b, sizeof(b));
		ck_assert_uint_eq(nbd_get32(b + 4), 0);
	}
	ck_assert_mem_eq(be.disk + 8192, d, sizeof(d));
	nbd_server_destroy(be.srv);
	close(fd);
}
END_TEST

/* listen_unix replaces a stale socket but never any other file. */
START_TEST(test_listen_unix_paths)
{
	static struct async_be be;
	struct nbd_export exp = {.size = DISK};
	char dir[] = "/tmp/nbd-unit-XXXXXX", path[64];
	struct stat st;
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/x.nbd", dir);
	ck_assert_int_eq(nbd_server_create(&exp, &async_ops, &be, &be.srv), 0);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(nbd_server_listen_unix(be.srv, path), -EEXIST);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	unlink(path);
	ck_assert_int_eq(nbd_server_listen_unix(be.srv, path), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	nbd_server_destroy(be.srv);
	/* Now a stale socket: replaced. */
	ck_assert_int_eq(nbd_server_create(&exp, &async_ops, &be, &be.srv), 0);
	ck_assert_int_eq(nbd_server_listen_unix(be.srv, path), 0);
	nbd_server_destroy(be.srv);
	unlink(path);
	rmdir(dir);
}
END_TEST

/* Completions inside a backend batch go out together at batch_end. */
START_TEST(test_backend_batch)
{
	static struct async_be be;
	struct nbd_export exp = {.size = DISK, .can_flush = true};
	struct pollfd p;
	uint8_t b[NBD_SIMPLE_REPLY_SIZE];
	int fd;

	memset(&be, 0, sizeof(be));
	be.cap = 64;
	ck_assert_int_eq(nbd_server_create(&exp, &async_ops, &be, &be.srv), 0);
	fd = async_client(&be);
	for (int i = 0; i < 8; i++)
		req(fd, NBD_CMD_FLUSH, (uint64_t)i, 0, 0);
	pump(&be);
	ck_assert_int_eq(be.nheld, 8);
	nbd_server_batch_begin(be.srv);
	nbd_server_batch_begin(be.srv); /* nests */
	async_complete_all(&be);
	nbd_server_batch_end(be.srv);
	p = (struct pollfd){.fd = fd, .events = POLLIN};
	ck_assert_int_eq(poll(&p, 1, 0), 0); /* nothing sent inside the batch */
	nbd_server_batch_end(be.srv);
	ck_assert_int_eq(poll(&p, 1, 0), 1);
	for (int i = 0; i < 8; i++) {
		xread(fd, b, sizeof(b));
		ck_assert_uint_eq(nbd_get32(b + 4), 0);
	}
	/* A client that vanished inside a batch is skipped, then reaped. */
	req(fd, NBD_CMD_FLUSH, 9, 0, 0);
	pump(&be);
	ck_assert_int_eq(be.nheld, 1);
	nbd_server_batch_begin(be.srv);
	async_complete_all(&be);
	close(fd);
	nbd_server_batch_end(be.srv);
	pump(&be);
	{
		struct nbd_server_stats st;

		nbd_server_get_stats(be.srv, &st);
		ck_assert_uint_eq(st.clients, 0);
	}
	nbd_server_destroy(be.srv);
}
END_TEST

Suite *nbd_proto_suite(void);

Suite *nbd_proto_suite(void)
{
	Suite *s = suite_create("nbd_proto");
	TCase *t = tcase_create("proto");
	TCase *a = tcase_create("async");

	tcase_set_timeout(t, 10);
	tcase_add_test(t, test_parse_and_check);
	tcase_add_test(t, test_errno_and_flags);
	suite_add_tcase(s, t);
	tcase_set_timeout(a, 20);
	tcase_add_test(a, test_async_out_of_order);
	tcase_add_test(a, test_async_reverse_order_replies);
	tcase_add_test(a, test_create_rejects_bad_export);
	tcase_add_test(a, test_server_memory_cap);
	tcase_add_test(a, test_backend_sees_request);
	tcase_add_test(a, test_listen_unix_paths);
	tcase_add_test(a, test_backend_batch);
	tcase_add_loop_test(a, test_fuzz_stream, 0, 40);
	suite_add_tcase(s, a);
	return s;
}
