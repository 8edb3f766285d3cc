// SPDX-License-Identifier: MIT
// drvdom-nbd-file: serve one file over NBD on a Unix socket with the file
// backend, for tests and for debugging clients without a running drvdom.
//   drvdom-nbd-file --socket PATH FILE [--read-only] [--name NAME]
// Runs until SIGINT or SIGTERM, then removes the socket. It is linked
// statically, as the guest is, so it also proves the server needs nothing a
// static domain kernel lacks.
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

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: drvdom-nbd-file --socket PATH FILE [--read-only] [--name NAME]\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"read-only", no_argument, NULL, 'r'},
	    {"name", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *sock = NULL, *name = NULL;
	bool read_only = false;
	struct nbd_file_backend *fb;
	struct nbd_server *srv;
	struct nbd_export exp;
	struct sigaction sa = {.sa_handler = on_signal};
	int opt, rc;

	log_init("drvdom-nbd-file");
	while ((opt = getopt_long(argc, argv, "s:rn:h", longopts, NULL)) != -1) {
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
	rc = nbd_server_create(&exp, &nbd_file_backend_ops, fb, &srv);
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
		rc = nbd_server_poll_blocking(srv, 1000);
		if (rc)
			die_err(-rc, "nbd_server_poll_blocking");
	}
	nbd_server_destroy(srv);
	nbd_file_backend_close(fb);
	unlink(sock);
	return 0;
}
