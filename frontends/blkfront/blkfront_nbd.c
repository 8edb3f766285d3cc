// SPDX-License-Identifier: MIT
// The NBD export of a virtual disk: the NBD server of frontends/nbd/ with
// blkfront as its asynchronous backend. The listening socket is the one the
// toolstack made and assigned to the guest (docs/devices.md: device
// "nbd/N", named by the frontend's `drvdom-nbd` key); the server's epoll fd
// sits in the guest's event loop. READ/WRITE/FLUSH/TRIM and the FUA flag map
// onto blkfront_submit(); a -EAGAIN (ring or pool full, backend away during
// a restart) makes the server hold the request until blkfront kicks it.
// See docs/nbd.md ("The integration contract") and docs/blkfront.md.
#include "frontends/blkfront/blkfront_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "frontends/nbd/nbd.h"
#include "hv/evloop.h"
#include "hv/hvc.h"
#include "xenstore/include/xenstore.h"

/* Reply batching of the NBD server (one sendmsg per client per pass over
 * the response rings). Weak: a server without it writes each reply at
 * once, which is correct, only slower. */
void nbd_server_batch_begin(struct nbd_server *srv) __attribute__((weak));
void nbd_server_batch_end(struct nbd_server *srv) __attribute__((weak));

static void nbd_batch_begin(void *arg)
{
	struct blkfront *bf = arg;
	if (bf->nbd)
		nbd_server_batch_begin(bf->nbd);
}

static void nbd_batch_end(void *arg)
{
	struct blkfront *bf = arg;
	if (bf->nbd)
		nbd_server_batch_end(bf->nbd);
}

static void nbd_done(void *arg, int err)
{
	nbd_io_complete(arg, err);
}

static int nbd_submit(void *ctx, struct nbd_io *io)
{
	struct blkfront *bf = ctx;
	if (bf->failed)
		return -EIO; /* the backend domain failed for good */
	enum blkfront_op op;
	unsigned flags = (io->flags & NBD_IO_FUA) ? BLKFRONT_FUA : 0;
	switch (io->cmd) {
	case NBD_IO_READ:
		op = BLKFRONT_READ;
		flags = 0;
		break;
	case NBD_IO_WRITE:
		op = BLKFRONT_WRITE;
		break;
	case NBD_IO_FLUSH:
		op = BLKFRONT_FLUSH;
		flags = 0;
		break;
	case NBD_IO_TRIM:
		op = BLKFRONT_DISCARD;
		break;
	case NBD_IO_WRITE_ZEROES:
		op = BLKFRONT_WRITE_ZEROES; /* NO_HOLE: always true of real writes */
		break;
	default:
		return -ENOTSUP;
	}
	return blkfront_submit(bf, op, flags, io->offset, io->length, io->data, nbd_done, io);
}

/* The NBD payload goes straight between the client's socket and pool pages
 * the backend reads and writes: a write's data is received into them, a
 * read's reply is sent from them (no copy in the guest). */
static void *nbd_buf_get(void *ctx, uint32_t len)
{
	return blkfront_buf_get(ctx, len);
}

static void nbd_buf_put(void *ctx, void *buf, uint32_t len)
{
	blkfront_buf_put(ctx, buf, len);
}

static const struct nbd_backend_ops bf_nbd_ops = {
    .submit = nbd_submit, .buf_get = nbd_buf_get, .buf_put = nbd_buf_put};

static void nbd_kick(void *arg)
{
	struct blkfront *bf = arg;
	if (bf->nbd)
		nbd_server_kick(bf->nbd);
}

static void nbd_ready(void *arg, int fd, uint32_t events)
{
	struct blkfront *bf = arg;
	(void)fd;
	(void)events;
	int r = nbd_server_dispatch(bf->nbd);
	if (r)
		log_warn("vbd %u: NBD server: %s", bf->devid, strerror(-r));
	struct nbd_server_stats st;
	nbd_server_get_stats(bf->nbd, &st);
	bf->nbd_active = st.clients > 0; /* bf_poll spins for their requests */
}

int bf_nbd_start(struct blkfront *bf)
{
	if (bf->nbd)
		return 0;
	if (bf->nbd_fd < 0) {
		/* The toolstack assigns the socket before it writes our directory,
		 * so this is a retry for a slow assignment. */
		char p[384];
		unsigned len;
		snprintf(p, sizeof(p), "%s/drvdom-nbd", bf->fe_path);
		char *name = xs_read(bf->env.xs, XBT_NULL, p, &len);
		if (!name)
			return -ENOENT;
		int r = hvc_device_get(bf->env.h, name, &bf->nbd_fd);
		free(name);
		if (r)
			return r;
	}
	char desc[128];
	snprintf(desc, sizeof(desc), "drvdom vbd %u (%s), backend domain %u", bf->devid, bf->vdev,
		 bf->backend_id);
	bool flush = bf->can_flush || bf->can_barrier;
	struct nbd_export exp = {
	    .name = bf->vdev,
	    .description = desc,
	    .size = bf->sectors * 512u,
	    .min_block = bf->sector_size > 512 ? bf->sector_size : 512,
	    .pref_block = bf->sector_size > 4096 ? bf->sector_size : 4096,
	    .max_payload = BF_MAX_IO,
	    .read_only = bf->read_only,
	    .can_flush = flush,
	    .can_fua = flush && !bf->read_only,
	    .can_trim = bf->can_discard && !bf->read_only,
	    .can_zero = !bf->read_only,
	    .can_multi_conn = true,
	};
	int r = nbd_server_create(&exp, &bf_nbd_ops, bf, &bf->nbd);
	if (r)
		return r;
	r = nbd_server_add_listener(bf->nbd, bf->nbd_fd);
	bf->nbd_fd = -1; /* the server owns it now, even on failure */
	if (!r)
		r = evloop_add_fd(bf->env.loop, nbd_server_fd(bf->nbd), EPOLLIN, nbd_ready, bf);
	if (r) {
		nbd_server_destroy(bf->nbd);
		bf->nbd = NULL;
		return r;
	}
	blkfront_set_kick(bf, nbd_kick, bf);
	if (nbd_server_batch_begin && nbd_server_batch_end) {
		bf->batch_begin = nbd_batch_begin;
		bf->batch_end = nbd_batch_end;
		bf->batch_arg = bf;
	}
	log_info("vbd %u: serving NBD export '%s' (%llu bytes%s)", bf->devid, bf->vdev,
		 (unsigned long long)exp.size, exp.read_only ? ", read-only" : "");
	return 0;
}

void bf_nbd_stop(struct blkfront *bf)
{
	if (!bf->nbd)
		return;
	evloop_del_fd(bf->env.loop, nbd_server_fd(bf->nbd));
	nbd_server_destroy(bf->nbd);
	bf->nbd = NULL;
	bf->nbd_active = false;
	bf->batch_begin = bf->batch_end = NULL;
	if (bf->kick == nbd_kick)
		blkfront_set_kick(bf, NULL, NULL);
}

void blkfront_publish_stats(struct blkfront *bf)
{
	if (!bf->ever_connected || bf->detached)
		return;
	struct nbd_server_stats ns = {0};
	if (bf->nbd)
		nbd_server_get_stats(bf->nbd, &ns);
	const struct blkfront_stats *st = &bf->stats;
	unsigned sent = 0;
	for (unsigned i = 0; bf->rings_up && i < bf->nr_queues; i++)
		sent += bf->queues[i].sent;
	char buf[sizeof(bf->stats_last)];
	snprintf(buf, sizeof(buf),
		 "state=%d queues=%u requests=%llu bytes_rd=%llu bytes_wr=%llu flush=%llu "
		 "discard=%llu errors=%llu inflight=%u shadow=%u notify_sent=%llu "
		 "bad_responses=%llu replayed=%llu reconnects=%llu nbd_clients=%u",
		 bf->state, bf->nr_queues, (unsigned long long)st->requests,
		 (unsigned long long)st->bytes_rd, (unsigned long long)st->bytes_wr,
		 (unsigned long long)st->flushes, (unsigned long long)st->discards,
		 (unsigned long long)st->errors, sent, st->shadow_live,
		 (unsigned long long)st->notifies, (unsigned long long)st->bad_responses,
		 (unsigned long long)st->replayed, (unsigned long long)st->reconnects, ns.clients);
	if (!strcmp(buf, bf->stats_last))
		return;
	char p[384];
	snprintf(p, sizeof(p), "%s/drvdom-stats", bf->fe_path);
	if (xs_write(bf->env.xs, XBT_NULL, p, buf, (unsigned)strlen(buf)))
		memcpy(bf->stats_last, buf, sizeof(buf));
}
