// SPDX-License-Identifier: MIT
// drvdom-nbd-file: serve one file over NBD on a Unix socket with the file
// backend, for tests and for debugging clients without a running drvdom.
//   drvdom-nbd-file --socket PATH FILE [--read-only] [--name NAME]
//                   [--block-size N] [--defer N]
// Runs until SIGINT or SIGTERM, then removes the socket. --block-size sets
// the minimum block size advertised (512 imitates blkfront's sectors).
// --defer N puts an asynchronous shim in front of the file backend, as
// blkfront will be: it holds up to N ios (-EAGAIN beyond), then completes
// them in reverse order from the main loop, outside nbd_server_dispatch(),
// in one nbd_server_batch_begin/end bracket, and kicks the server. It is linked statically, as the
// guest is, so it also proves the server needs nothing a static domain kernel lacks.
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "frontends/nbd/nbd.h"

static volatile sig_atomic_t stop;

/* The --defer shim: ios held for completion by the main loop. */
struct defer {
	struct nbd_file_backend *fb;
	struct nbd_io **held;
	int n, cap;
};

static int defer_submit(void *ctx, struct nbd_io *io)
{
	struct defer *d = ctx;

	if (d->n >= d->cap)
		return -EAGAIN;
	d->held[d->n++] = io;
	return 0;
}

static const struct nbd_backend_ops defer_ops = {.submit = defer_submit};

/* Complete everything held, newest first, through the file backend's own
 * submit (which completes at once), then let stalled requests in (srv is
 * NULL once the server is destroyed). */
static void defer_complete_all(struct defer *d, struct nbd_server *srv)
{
	if (srv)
		nbd_server_batch_begin(srv); /* one sendmsg per client, not per io */
	while (d->n) {
		struct nbd_io *io = d->held[--d->n];
		int rc = nbd_file_backend_ops.submit(d->fb, io);

		if (rc)
			nbd_io_complete(io, rc);
	}
	if (srv) {
		nbd_server_batch_end(srv);
		nbd_server_kick(srv);
	}
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: drvdom-nbd-file --socket PATH FILE [--read-only] [--name NAME]\n"
		   "                       [--block-size N] [--defer N]\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"read-only", no_argument, NULL, 'r'},
	    {"name", required_argument, NULL, 'n'},
	    {"block-size", required_argument, NULL, 'b'},
	    {"defer", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *sock = NULL, *name = NULL;
	bool read_only = false;
	unsigned long block_size = 0, defer_n = 0;
	struct defer defer = {0};
	struct nbd_file_backend *fb;
	struct nbd_server *srv;
	struct nbd_export exp;
	struct sigaction sa = {.sa_handler = on_signal};
	int opt, rc;

	log_init("drvdom-nbd-file");
	while ((opt = getopt_long(argc, argv, "s:rn:b:d:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			sock = optarg;
			break;
		case 'r':
			read_only = true;
			break;
		case 'n':
			name = optarg;
			break;
		case 'b':
			block_size = strtoul(optarg, NULL, 0);
			break;
		case 'd':
			defer_n = strtoul(optarg, NULL, 0);
			if (defer_n < 1 || defer_n > 4096) {
				usage(stderr);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!sock || optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	rc = nbd_file_backend_open(argv[optind], read_only, &fb, &exp);
	if (rc)
		die_err(-rc, "open %s", argv[optind]);
	if (name)
		exp.name = name;
	if (block_size)
		exp.min_block = (uint32_t)block_size;
	if (defer_n) {
		defer.fb = fb;
		defer.cap = (int)defer_n;
		defer.held = calloc(defer_n, sizeof(*defer.held));
		if (!defer.held)
			die("calloc");
		rc = nbd_server_create(&exp, &defer_ops, &defer, &srv);
	} else {
		rc = nbd_server_create(&exp, &nbd_file_backend_ops, fb, &srv);
	}
	if (rc)
		die_err(-rc, "nbd_server_create");
	rc = nbd_server_listen_unix(srv, sock);
	if (rc)
		die_err(-rc, "listen on %s", sock);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_info("serving %s (%llu bytes%s) on %s", argv[optind], (unsigned long long)exp.size,
		 read_only ? ", read-only" : "", sock);
	while (!stop) {
		rc = nbd_server_poll_blocking(srv, defer.n ? 0 : 1000);
		if (rc)
			die_err(-rc, "nbd_server_poll_blocking");
		if (defer.n)
			defer_complete_all(&defer, srv);
	}
	nbd_server_destroy(srv);
	if (defer.n)
		defer_complete_all(&defer, NULL); /* after destroy: replies dropped */
	free(defer.held);
	nbd_file_backend_close(fb);
	unlink(sock);
	return 0;
}
