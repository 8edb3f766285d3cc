// SPDX-License-Identifier: MIT
// The NBD server state machine. Each client connection moves through
// CLIENT_FLAGS -> OPT_HDR <-> OPT_DATA -> REQ_HDR <-> REQ_PAYLOAD (or DRAIN)
// driven by non-blocking reads into a staging buffer; every validated
// request becomes an nbd_req handed to the backend, and its reply is queued
// when the backend completes it, in whatever order that happens. Nothing here
// blocks: all descriptors sit in the server's own epoll fd, and work that
// arises outside nbd_server_dispatch() (a completion that unthrottles a
// client, a backend kick, a connection to reap) is put on a work list and
// signalled through an eventfd in that same epoll set. Connection memory is
// freed only from the work list, never inside a call that may still use it.
// The protocol subset is described in docs/nbd.md.
#include "frontends/nbd/nbd.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "frontends/nbd/nbd_int.h"
#include "frontends/nbd/nbd_proto.h"

/* The backend sees the wire's command numbers and flag bits unchanged. */
_Static_assert(NBD_IO_READ == NBD_CMD_READ && NBD_IO_WRITE == NBD_CMD_WRITE &&
		   NBD_IO_FLUSH == NBD_CMD_FLUSH && NBD_IO_TRIM == NBD_CMD_TRIM &&
		   NBD_IO_WRITE_ZEROES == NBD_CMD_WRITE_ZEROES,
	       "nbd_io_cmd values are the NBD command numbers");
_Static_assert(NBD_IO_FUA == NBD_CMD_FLAG_FUA && NBD_IO_NO_HOLE == NBD_CMD_FLAG_NO_HOLE,
	       "nbd_io flags are the NBD command flags");

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

enum ep_kind { EP_LISTEN, EP_CONN, EP_KICK };

/* First member of everything registered in the epoll set. */
struct ep_tag {
	enum ep_kind kind;
};

struct listener {
	struct ep_tag tag;
	int fd;
	struct listener *next;
};

enum conn_state {
	ST_CLIENT_FLAGS,
	ST_OPT_HDR,
	ST_OPT_DATA,
	ST_REQ_HDR,
	ST_REQ_PAYLOAD,
	ST_DRAIN,
};

struct nbd_conn;

/* One request from its header to its reply; io is what the backend sees. */
struct nbd_req {
	struct nbd_io io;
	struct nbd_conn *conn;
	struct nbd_req *next; /* reply queue */
	uint8_t hdr[NBD_SIMPLE_REPLY_SIZE];
	uint32_t reply_data; /* payload bytes following hdr */
	uint32_t sent;	     /* bytes of hdr + payload already written */
	uint32_t alloc;	     /* size of io.data, counted in conn->nbytes */
	bool backend_buf;    /* io.data came from the backend's buf_get */
};

struct nbd_conn {
	struct ep_tag tag;
	struct nbd_server *srv;
	int fd;
	enum conn_state state;
	uint32_t events; /* registered epoll events */
	bool no_zeroes;
	bool closing; /* no more input: close once replies are out */
	bool dead;    /* socket closed; waiting for the backend */
	bool on_work;
	struct nbd_conn *work_next;
	bool on_flush; /* replies queued inside a backend batch */
	struct nbd_conn *flush_next;
	struct nbd_conn *prev, *next;

	/* input staging */
	uint8_t *ibuf;
	size_t rpos, wpos;

	/* option being received */
	uint32_t opt, opt_len, opt_have;
	bool opt_skip;
	uint8_t *opt_data;

	/* request whose payload is being received or drained */
	struct nbd_req *cur;
	uint32_t cur_have;
	uint64_t drain;

	/* a request the backend refused with -EAGAIN */
	struct nbd_req *stalled;

	/* output: handshake bytes first, then replies */
	uint8_t *obuf;
	size_t olen, ooff, ocap;
	struct nbd_req *rq_head, *rq_tail;

	uint32_t in_flight; /* owned by the backend */
	uint32_t nreqs;	    /* allocated, whatever their stage */
	uint64_t nbytes;    /* data buffers of those */
};

struct nbd_server {
	struct nbd_export exp; /* name and description point into names */
	char *name, *description;
	struct nbd_limits lim;
	uint16_t tflags;
	const struct nbd_backend_ops *ops;
	void *ctx;
	int epfd;
	struct ep_tag kick_tag;
	int kick_fd;
	bool kick_signalled;
	int in_dispatch;
	int in_batch; /* nbd_server_batch_begin() depth */
	struct nbd_conn *flush_head;
	bool destroyed;
	struct listener *listeners;
	struct nbd_conn *conns;
	struct nbd_conn *work_head, *work_tail;
	struct nbd_conn *running; /* the client run_work() is handling */
	uint32_t in_flight;
	uint64_t nbytes, max_bytes;	 /* data buffers of all clients, and the cap */
	void *buf_free[NBD_BUF_CLASSES]; /* cached data buffers by size class */
	uint64_t buf_cached;
	struct nbd_server_stats stats;
};

static void server_free(struct nbd_server *srv);
static void buf_put(struct nbd_server *srv, void *b, uint32_t len);

/* --- helpers ---------------------------------------------------------- */

static void schedule_work(struct nbd_conn *c)
{
	struct nbd_server *srv = c->srv;

	if (srv->destroyed)
		return; /* no work list any more: whoever completes frees */
	if (!c->on_work) {
		c->on_work = true;
		c->work_next = NULL;
		if (srv->work_tail)
			srv->work_tail->work_next = c;
		else
			srv->work_head = c;
		srv->work_tail = c;
	}
	if (!srv->in_dispatch && !srv->kick_signalled) {
		uint64_t one = 1;

		if (write(srv->kick_fd, &one, sizeof(one)) == sizeof(one))
			srv->kick_signalled = true;
	}
}

static bool conn_throttled(const struct nbd_conn *c)
{
	return c->stalled || c->nreqs >= NBD_CONN_MAX_REQS || c->nbytes >= NBD_CONN_MAX_BYTES ||
	       c->srv->nbytes >= c->srv->max_bytes;
}

static void req_free(struct nbd_req *r)
{
	struct nbd_conn *c = r->conn;
	struct nbd_server *srv = c->srv;
	bool srv_was_full = srv->nbytes >= srv->max_bytes;
	bool was = conn_throttled(c);

	c->nreqs--;
	c->nbytes -= r->alloc;
	srv->nbytes -= r->alloc;
	if (r->io.data && r->backend_buf)
		srv->ops->buf_put(srv->ctx, r->io.data, r->alloc);
	else if (r->io.data)
		buf_put(srv, r->io.data, r->alloc);
	free(r);
	if (srv_was_full && srv->nbytes < srv->max_bytes && !srv->destroyed) {
		/* Rare: every client may have been waiting for memory. */
		for (struct nbd_conn *o = srv->conns; o; o = o->next)
			if (!o->dead)
				schedule_work(o);
	} else if (was && !conn_throttled(c) && !c->dead) {
		schedule_work(c);
	}
}

/* Data buffers are page-aligned powers of two (so a backend may use
 * O_DIRECT or grant pages), recycled through a small per-server cache: a
 * fresh 1 MiB buffer costs 256 page faults, more than the I/O itself. */
static unsigned buf_class(uint32_t len)
{
	unsigned k = NBD_BUF_MIN_SHIFT;

	while (((uint64_t)1 << k) < len)
		k++;
	return k - NBD_BUF_MIN_SHIFT;
}

static void *buf_get(struct nbd_server *srv, uint32_t len)
{
	unsigned k = buf_class(len);
	void *b = srv->buf_free[k];

	if (b) {
		memcpy(&srv->buf_free[k], b, sizeof(void *));
		srv->buf_cached -= (size_t)1 << (k + NBD_BUF_MIN_SHIFT);
		return b;
	}
	return aligned_alloc(4096, (size_t)1 << (k + NBD_BUF_MIN_SHIFT));
}

static void buf_put(struct nbd_server *srv, void *b, uint32_t len)
{
	unsigned k = buf_class(len);
	size_t sz = (size_t)1 << (k + NBD_BUF_MIN_SHIFT);

	if (srv->destroyed || srv->buf_cached + sz > NBD_BUF_CACHE_BYTES) {
		free(b);
		return;
	}
	memcpy(b, &srv->buf_free[k], sizeof(void *));
	srv->buf_free[k] = b;
	srv->buf_cached += sz;
}

static void buf_cache_drain(struct nbd_server *srv)
{
	for (unsigned k = 0; k < NBD_BUF_CLASSES; k++) {
		while (srv->buf_free[k]) {
			void *b = srv->buf_free[k];

			memcpy(&srv->buf_free[k], b, sizeof(void *));
			free(b);
		}
	}
	srv->buf_cached = 0;
}

static struct nbd_req *req_alloc(struct nbd_conn *c, uint32_t data_len)
{
	struct nbd_req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	if (data_len) {
		struct nbd_server *srv = c->srv;

		if (srv->ops->buf_get && srv->ops->buf_put) {
			r->io.data = srv->ops->buf_get(srv->ctx, data_len);
			r->backend_buf = r->io.data != NULL;
		}
		if (!r->io.data)
			r->io.data = buf_get(c->srv, data_len);
		if (!r->io.data) {
			free(r);
			return NULL;
		}
		r->alloc = data_len;
	}
	r->conn = c;
	c->nreqs++;
	c->nbytes += r->alloc;
	c->srv->nbytes += r->alloc;
	return r;
}

static void conn_set_events(struct nbd_conn *c)
{
	uint32_t want = 0;
	struct epoll_event ev;

	if (c->dead)
		return;
	if (!c->closing && !conn_throttled(c))
		want |= EPOLLIN;
	if (c->ooff < c->olen || c->rq_head)
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	ev.events = want;
	ev.data.ptr = &c->tag;
	if (epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		log_warn("nbd: epoll_ctl(MOD) on client fd %d: %m", c->fd);
	else
		c->events = want;
}

/* The socket is unusable or the conversation is over: close it now. The
 * struct lives on until the backend has completed every io (reap). */
static void conn_kill(struct nbd_conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	epoll_ctl(c->srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	while (c->rq_head) {
		struct nbd_req *r = c->rq_head;

		c->rq_head = r->next;
		req_free(r);
	}
	c->rq_tail = NULL;
	schedule_work(c);
}

static void conn_free(struct nbd_conn *c)
{
	struct nbd_server *srv = c->srv;

	if (c->on_flush) {
		struct nbd_conn **pp = &srv->flush_head;

		while (*pp != c)
			pp = &(*pp)->flush_next;
		*pp = c->flush_next;
	}

	if (c->cur)
		req_free(c->cur);
	if (c->stalled)
		req_free(c->stalled);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->stats.clients--;
	free(c->ibuf);
	free(c->opt_data);
	free(c->obuf);
	free(c);
}

static int obuf_append(struct nbd_conn *c, const void *p, size_t n)
{
	if (c->ooff == c->olen)
		c->ooff = c->olen = 0;
	if (c->olen + n > c->ocap) {
		size_t cap = c->ocap ? c->ocap : 256;
		uint8_t *nb;

		while (cap < c->olen + n)
			cap *= 2;
		nb = realloc(c->obuf, cap);
		if (!nb)
			return -ENOMEM;
		c->obuf = nb;
		c->ocap = cap;
	}
	memcpy(c->obuf + c->olen, p, n);
	c->olen += n;
	return 0;
}

/* Write as much queued output as the socket takes. */
static void conn_flush(struct nbd_conn *c)
{
	while (!c->dead && (c->ooff < c->olen || c->rq_head)) {
		struct iovec iov[64];
		int n = 0;
		struct msghdr msg = {0};
		ssize_t w;

		if (c->ooff < c->olen)
			iov[n++] = (struct iovec){c->obuf + c->ooff, c->olen - c->ooff};
		for (struct nbd_req *r = c->rq_head; r && n < 62; r = r->next) {
			uint32_t s = r->sent;

			if (s < NBD_SIMPLE_REPLY_SIZE) {
				iov[n++] = (struct iovec){r->hdr + s, NBD_SIMPLE_REPLY_SIZE - s};
				s = NBD_SIMPLE_REPLY_SIZE;
			}
			if (r->reply_data) {
				uint32_t d = s - NBD_SIMPLE_REPLY_SIZE;

				iov[n++] =
				    (struct iovec){(uint8_t *)r->io.data + d, r->reply_data - d};
			}
		}
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)n;
		w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			log_debug("nbd: client fd %d: send: %m", c->fd);
			conn_kill(c);
			return;
		}
		size_t left = (size_t)w;

		if (c->ooff < c->olen) {
			size_t k = c->olen - c->ooff < left ? c->olen - c->ooff : left;

			c->ooff += k;
			left -= k;
		}
		while (left && c->rq_head) {
			struct nbd_req *r = c->rq_head;
			size_t total = NBD_SIMPLE_REPLY_SIZE + r->reply_data;
			size_t k = total - r->sent < left ? total - r->sent : left;

			r->sent += (uint32_t)k;
			left -= k;
			if (r->sent == total) {
				c->rq_head = r->next;
				if (!c->rq_head)
					c->rq_tail = NULL;
				req_free(r);
			}
		}
	}
	if (!c->dead && c->closing && c->in_flight == 0 && !c->stalled && c->ooff == c->olen &&
	    !c->rq_head)
		conn_kill(c);
}

static void queue_reply(struct nbd_conn *c, struct nbd_req *r, uint32_t nbd_err)
{
	nbd_proto_put_simple_reply(r->hdr, nbd_err, r->io.cookie);
	r->reply_data = (r->io.cmd == NBD_IO_READ && nbd_err == 0) ? r->io.length : 0;
	r->sent = 0;
	r->next = NULL;
	if (c->rq_tail)
		c->rq_tail->next = r;
	else
		c->rq_head = r;
	c->rq_tail = r;
	if (nbd_err)
		c->srv->stats.errors++;
}

/* Reply with an error to a request the backend never saw. */
static int reply_error(struct nbd_conn *c, uint64_t cookie, uint32_t nbd_err)
{
	struct nbd_req *r = req_alloc(c, 0);

	if (!r)
		return -ENOMEM;
	r->io.cookie = cookie;
	r->io.cmd = NBD_IO_FLUSH; /* no payload in the reply */
	queue_reply(c, r, nbd_err);
	return 0;
}

void nbd_io_complete(struct nbd_io *io, int err)
{
	struct nbd_req *r = container_of(io, struct nbd_req, io);
	struct nbd_conn *c = r->conn;
	struct nbd_server *srv = c->srv;

	c->in_flight--;
	srv->in_flight--;
	srv->stats.in_flight = srv->in_flight;
	if (c->dead) {
		req_free(r);
		if (srv->destroyed) {
			if (c->in_flight == 0)
				conn_free(c);
			if (srv->in_flight == 0)
				server_free(srv);
		} else if (c->in_flight == 0) {
			schedule_work(c);
		}
		return;
	}
	if (err == 0 && io->cmd == NBD_IO_READ)
		srv->stats.read_bytes += io->length;
	else if (err == 0 && io->cmd == NBD_IO_WRITE)
		srv->stats.write_bytes += io->length;
	if (err > 0 || err < -4095) {
		log_warn("nbd: backend completed io with bad status %d", err);
		err = -EIO;
	}
	queue_reply(c, r, nbd_proto_errno_to_nbd(err));
	if (srv->in_dispatch) {
		/* Batched: run_work() flushes once per client per pass. */
		if (srv->running != c)
			schedule_work(c);
	} else if (srv->in_batch) {
		/* Batched by the backend: nbd_server_batch_end() flushes. */
		if (!c->on_flush) {
			c->on_flush = true;
			c->flush_next = srv->flush_head;
			srv->flush_head = c;
		}
	} else {
		conn_flush(c);
		if (c->dead || c->stalled || c->closing)
			schedule_work(c);
		else
			conn_set_events(c);
	}
}

static void submit_req(struct nbd_conn *c, struct nbd_req *r)
{
	struct nbd_server *srv = c->srv;
	int rc;

	c->in_flight++;
	srv->in_flight++;
	srv->stats.in_flight = srv->in_flight;
	srv->stats.requests++;
	rc = srv->ops->submit(srv->ctx, &r->io);
	if (rc == -EAGAIN) {
		c->in_flight--;
		srv->in_flight--;
		srv->stats.requests--;
		srv->stats.in_flight = srv->in_flight;
		c->stalled = r;
	} else if (rc < 0) {
		nbd_io_complete(&r->io, rc);
	}
}

/* --- handshake -------------------------------------------------------- */

static int opt_reply(struct nbd_conn *c, uint32_t type, const void *data, uint32_t len)
{
	uint8_t h[NBD_OPT_REPLY_SIZE];
	int rc;

	nbd_put64(h, NBD_REP_MAGIC);
	nbd_put32(h + 8, c->opt);
	nbd_put32(h + 12, type);
	nbd_put32(h + 16, len);
	rc = obuf_append(c, h, sizeof(h));
	if (rc == 0 && len)
		rc = obuf_append(c, data, len);
	return rc;
}

static int opt_error(struct nbd_conn *c, uint32_t type, const char *msg)
{
	return opt_reply(c, type, msg, (uint32_t)strlen(msg));
}

static bool name_matches(const struct nbd_server *srv, const uint8_t *name, uint32_t len)
{
	size_t el = strlen(srv->exp.name);

	return len == 0 || (len == el && memcmp(name, srv->exp.name, len) == 0);
}

static int send_info(struct nbd_conn *c, uint16_t type)
{
	struct nbd_server *srv = c->srv;
	uint8_t b[2 + NBD_MAX_STRING];
	uint32_t n = 2;

	nbd_put16(b, type);
	switch (type) {
	case NBD_INFO_EXPORT:
		nbd_put64(b + 2, srv->exp.size);
		nbd_put16(b + 10, srv->tflags);
		n = 12;
		break;
	case NBD_INFO_NAME:
		n += (uint32_t)strlen(srv->exp.name);
		memcpy(b + 2, srv->exp.name, n - 2);
		break;
	case NBD_INFO_DESCRIPTION:
		if (!srv->exp.description)
			return 0;
		n += (uint32_t)strlen(srv->exp.description);
		memcpy(b + 2, srv->exp.description, n - 2);
		break;
	case NBD_INFO_BLOCK_SIZE:
		nbd_put32(b + 2, srv->exp.min_block);
		nbd_put32(b + 6, srv->exp.pref_block);
		nbd_put32(b + 10, srv->exp.max_payload);
		n = 14;
		break;
	default:
		return 0; /* unknown requests are ignored, as the spec says */
	}
	return opt_reply(c, NBD_REP_INFO, b, n);
}

/* NBD_OPT_INFO and NBD_OPT_GO: u32 name length, name, u16 count, u16 each. */
static int opt_info_go(struct nbd_conn *c)
{
	const uint8_t *d = c->opt_data;
	uint32_t len = c->opt_len, nlen, nreq;
	bool sent[4] = {false};
	int rc;

	if (len < 6)
		return opt_error(c, NBD_REP_ERR_INVALID, "option too short");
	nlen = nbd_get32(d);
	if (nlen > len - 6)
		return opt_error(c, NBD_REP_ERR_INVALID, "bad name length");
	nreq = nbd_get16(d + 4 + nlen);
	if (len != 6 + nlen + 2 * nreq)
		return opt_error(c, NBD_REP_ERR_INVALID, "bad option length");
	if (!name_matches(c->srv, d + 4, nlen))
		return opt_error(c, NBD_REP_ERR_UNKNOWN, "no such export");
	for (uint32_t i = 0; i < nreq; i++) {
		uint16_t t = nbd_get16(d + 4 + nlen + 2 + 2 * i);

		if (t < 4 && t != NBD_INFO_EXPORT && !sent[t]) {
			sent[t] = true;
			rc = send_info(c, t);
			if (rc)
				return rc;
		}
	}
	rc = send_info(c, NBD_INFO_EXPORT);
	if (rc == 0)
		rc = opt_reply(c, NBD_REP_ACK, NULL, 0);
	if (rc == 0 && c->opt == NBD_OPT_GO)
		c->state = ST_REQ_HDR;
	return rc;
}

static int opt_export_name(struct nbd_conn *c)
{
	struct nbd_server *srv = c->srv;
	uint8_t b[NBD_EXPORT_NAME_REPLY_SIZE + NBD_EXPORT_NAME_ZEROES] = {0};
	size_t n = NBD_EXPORT_NAME_REPLY_SIZE;

	if (!name_matches(srv, c->opt_data, c->opt_len)) {
		/* This option has no error reply: the only answer is to hang up. */
		log_debug("nbd: NBD_OPT_EXPORT_NAME for an unknown export");
		return -ENOENT;
	}
	nbd_put64(b, srv->exp.size);
	nbd_put16(b + 8, srv->tflags);
	if (!c->no_zeroes)
		n += NBD_EXPORT_NAME_ZEROES;
	c->state = ST_REQ_HDR;
	return obuf_append(c, b, n);
}

static int opt_list(struct nbd_conn *c)
{
	const char *name = c->srv->exp.name, *desc = c->srv->exp.description;
	uint32_t nl = (uint32_t)strlen(name), dl = desc ? (uint32_t)strlen(desc) : 0;
	uint8_t b[4 + 2 * NBD_MAX_STRING];
	int rc;

	if (c->opt_len != 0)
		return opt_error(c, NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
	nbd_put32(b, nl);
	memcpy(b + 4, name, nl);
	memcpy(b + 4 + nl, desc ? desc : "", dl);
	rc = opt_reply(c, NBD_REP_SERVER, b, 4 + nl + dl);
	if (rc == 0)
		rc = opt_reply(c, NBD_REP_ACK, NULL, 0);
	return rc;
}

/* A whole option has arrived (or was skipped for its size). Returns 0 or
 * -errno to close the connection. */
static int handle_option(struct nbd_conn *c)
{
	c->state = ST_OPT_HDR;
	if (c->opt_skip)
		return c->opt == NBD_OPT_EXPORT_NAME
			   ? -E2BIG
			   : opt_error(c, NBD_REP_ERR_TOO_BIG, "option too large");
	switch (c->opt) {
	case NBD_OPT_EXPORT_NAME:
		return opt_export_name(c);
	case NBD_OPT_ABORT:
		c->closing = true;
		return opt_reply(c, NBD_REP_ACK, NULL, 0);
	case NBD_OPT_LIST:
		return opt_list(c);
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		return opt_info_go(c);
	default:
		/* Including STRUCTURED_REPLY, STARTTLS, meta contexts and
		 * extended headers: simple replies only. */
		return opt_error(c, NBD_REP_ERR_UNSUP, "unsupported option");
	}
}

/* --- transmission ----------------------------------------------------- */

/* A request header has arrived. Returns 0 or -errno to close. */
static int handle_request(struct nbd_conn *c, const uint8_t *buf)
{
	struct nbd_request q;
	struct nbd_req *r;
	int rc;

	nbd_proto_parse_request(buf, &q);
	rc = nbd_proto_check_request(&q, &c->srv->lim);
	if (rc < 0) {
		log_warn("nbd: bad request magic 0x%08x, closing client", q.magic);
		return rc;
	}
	if (q.type == NBD_CMD_DISC) {
		c->closing = true;
		return 0;
	}
	if (rc > 0) {
		if (q.type == NBD_CMD_WRITE && q.length) {
			c->drain = q.length;
			c->state = ST_DRAIN;
			c->cur = req_alloc(c, 0);
			if (!c->cur)
				return -ENOMEM;
			c->cur->io.cookie = q.cookie;
			c->cur->io.cmd = NBD_IO_FLUSH;
			c->cur->reply_data = (uint32_t)rc; /* error to send after draining */
			return 0;
		}
		return reply_error(c, q.cookie, (uint32_t)rc);
	}
	bool has_data = q.type == NBD_CMD_READ || q.type == NBD_CMD_WRITE;

	r = req_alloc(c, has_data ? q.length : 0);
	if (!r) {
		if (q.type == NBD_CMD_WRITE && q.length) {
			/* Drain the payload, then say ENOMEM. */
			c->drain = q.length;
			c->state = ST_DRAIN;
			c->cur = req_alloc(c, 0);
			if (!c->cur)
				return -ENOMEM;
			c->cur->io.cookie = q.cookie;
			c->cur->io.cmd = NBD_IO_FLUSH;
			c->cur->reply_data = NBD_ENOMEM;
			return 0;
		}
		return reply_error(c, q.cookie, NBD_ENOMEM);
	}
	r->io.cmd = (enum nbd_io_cmd)q.type;
	r->io.flags = q.flags & (NBD_IO_FUA | NBD_IO_NO_HOLE);
	r->io.offset = q.offset;
	r->io.length = q.length;
	r->io.cookie = q.cookie;
	if (q.length == 0 && q.type != NBD_CMD_FLUSH) {
		queue_reply(c, r, 0); /* nothing to do */
		return 0;
	}
	if (q.type == NBD_CMD_WRITE) {
		c->cur = r;
		c->cur_have = 0;
		c->state = ST_REQ_PAYLOAD;
		return 0;
	}
	submit_req(c, r);
	return 0;
}

static size_t ibuf_avail(const struct nbd_conn *c)
{
	return c->wpos - c->rpos;
}

/* Consume what the staging buffer holds. Returns 1 if more bytes are needed,
 * 0 if parsing must pause (throttled, closing, dead), -errno to close. */
static int parse_input(struct nbd_conn *c)
{
	int rc;

	for (;;) {
		size_t avail = ibuf_avail(c);
		const uint8_t *p = c->ibuf + c->rpos;

		if (c->dead || c->closing)
			return 0;
		switch (c->state) {
		case ST_CLIENT_FLAGS: {
			if (avail < NBD_CLIENT_FLAGS_SIZE)
				return 1;
			uint32_t f = nbd_get32(p);

			c->rpos += NBD_CLIENT_FLAGS_SIZE;
			if (f & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
				log_debug("nbd: unknown client flags 0x%x", f);
				return -EPROTO;
			}
			c->no_zeroes = f & NBD_FLAG_C_NO_ZEROES;
			c->state = ST_OPT_HDR;
			break;
		}
		case ST_OPT_HDR:
			if (avail < NBD_OPT_HDR_SIZE)
				return 1;
			if (nbd_get64(p) != NBD_OPTS_MAGIC) {
				log_debug("nbd: bad option magic");
				return -EPROTO;
			}
			c->opt = nbd_get32(p + 8);
			c->opt_len = nbd_get32(p + 12);
			c->opt_have = 0;
			c->opt_skip = c->opt_len > NBD_OPT_MAX_LEN;
			c->rpos += NBD_OPT_HDR_SIZE;
			c->state = ST_OPT_DATA;
			break;
		case ST_OPT_DATA: {
			uint32_t need = c->opt_len - c->opt_have;
			uint32_t k = avail < need ? (uint32_t)avail : need;

			if (!c->opt_skip && k)
				memcpy(c->opt_data + c->opt_have, p, k);
			c->opt_have += k;
			c->rpos += k;
			if (c->opt_have < c->opt_len)
				return 1;
			rc = handle_option(c);
			if (rc < 0)
				return rc;
			break;
		}
		case ST_REQ_HDR:
			if (conn_throttled(c))
				return 0;
			if (avail < NBD_REQUEST_SIZE)
				return 1;
			c->rpos += NBD_REQUEST_SIZE;
			rc = handle_request(c, p);
			if (rc < 0)
				return rc;
			break;
		case ST_REQ_PAYLOAD: {
			struct nbd_req *r = c->cur;
			uint32_t need = r->io.length - c->cur_have;
			uint32_t k = avail < need ? (uint32_t)avail : need;

			memcpy((uint8_t *)r->io.data + c->cur_have, p, k);
			c->cur_have += k;
			c->rpos += k;
			if (c->cur_have < r->io.length)
				return 1;
			c->cur = NULL;
			c->state = ST_REQ_HDR;
			submit_req(c, r);
			break;
		}
		case ST_DRAIN: {
			uint64_t k = avail < c->drain ? avail : c->drain;

			c->drain -= k;
			c->rpos += k;
			if (c->drain)
				return 1;
			struct nbd_req *r = c->cur;
			uint32_t err = r->reply_data;

			c->cur = NULL;
			c->state = ST_REQ_HDR;
			queue_reply(c, r, err);
			break;
		}
		}
	}
}

/* Read and parse until the socket is empty, the client is throttled or it
 * has had its share. */
static void conn_input(struct nbd_conn *c)
{
	bool drained = false; /* a short read: epoll will say when there is more */

	for (int reads = 0;;) {
		int rc;
		ssize_t n;

		if (c->stalled && !c->dead) {
			struct nbd_req *r = c->stalled;

			c->stalled = NULL;
			submit_req(c, r);
			if (c->stalled)
				return;
		}
		rc = parse_input(c);
		if (rc < 0) {
			conn_kill(c);
			return;
		}
		if (rc == 0 || drained || reads++ >= NBD_READS_PER_WAKEUP)
			return;
		/* Need more bytes: keep the unparsed tail at the start. */
		if (c->rpos == c->wpos) {
			c->rpos = c->wpos = 0;
		} else if (c->rpos > 0) {
			memmove(c->ibuf, c->ibuf + c->rpos, c->wpos - c->rpos);
			c->wpos -= c->rpos;
			c->rpos = 0;
		}
		if (c->state == ST_REQ_PAYLOAD && c->wpos == 0 &&
		    c->cur->io.length - c->cur_have >= NBD_IBUF_SIZE / 2) {
			/* Large payload: straight into the request's buffer. */
			size_t want = c->cur->io.length - c->cur_have;

			n = read(c->fd, (uint8_t *)c->cur->io.data + c->cur_have, want);
			if (n > 0) {
				c->cur_have += (uint32_t)n;
				drained = (size_t)n < want;
				continue;
			}
		} else {
			size_t want = NBD_IBUF_SIZE - c->wpos;

			n = read(c->fd, c->ibuf + c->wpos, want);
			if (n > 0) {
				c->wpos += (size_t)n;
				drained = (size_t)n < want;
				continue;
			}
		}
		if (n == 0) {
			/* EOF: finish what was submitted, then close. A partly
			 * received write is dropped unanswered. */
			c->closing = true;
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			log_debug("nbd: client fd %d: read: %m", c->fd);
			conn_kill(c);
		}
		return;
	}
}

/* --- server ----------------------------------------------------------- */

static void run_work(struct nbd_server *srv)
{
	while (srv->work_head) {
		struct nbd_conn *c = srv->work_head;

		srv->work_head = c->work_next;
		if (!srv->work_head)
			srv->work_tail = NULL;
		c->on_work = false;
		if (!c->dead) {
			srv->running = c;
			conn_input(c);
			conn_flush(c);
			conn_set_events(c);
			srv->running = NULL;
		}
		if (c->dead && c->in_flight == 0 && !c->on_work)
			conn_free(c);
	}
}

int nbd_server_add_client(struct nbd_server *srv, int fd)
{
	struct nbd_conn *c;
	struct epoll_event ev;
	uint8_t g[NBD_GREETING_SIZE];
	int fl;

	if (srv->stats.clients >= NBD_MAX_CLIENTS) {
		log_warn("nbd: too many clients, refusing one");
		close(fd);
		return -EMFILE;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto fail_c;
	c->ibuf = malloc(NBD_IBUF_SIZE);
	if (!c->ibuf)
		goto fail_ibuf;
	c->opt_data = malloc(NBD_OPT_MAX_LEN);
	if (!c->opt_data)
		goto fail_opt;
	c->tag.kind = EP_CONN;
	c->srv = srv;
	c->fd = fd;
	c->state = ST_CLIENT_FLAGS;
	nbd_put64(g, NBD_MAGIC);
	nbd_put64(g + 8, NBD_OPTS_MAGIC);
	nbd_put16(g + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	if (obuf_append(c, g, sizeof(g)) < 0)
		goto fail_obuf;
	c->events = EPOLLIN | EPOLLOUT;
	ev.events = c->events;
	ev.data.ptr = &c->tag;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;

		free(c->obuf);
		free(c->opt_data);
		free(c->ibuf);
		free(c);
		close(fd);
		return -e;
	}
	c->next = srv->conns;
	if (c->next)
		c->next->prev = c;
	srv->conns = c;
	srv->stats.clients++;
	srv->stats.connections++;
	schedule_work(c); /* send the greeting */
	return 0;

fail_obuf:
	free(c->obuf);
	free(c->opt_data);
fail_opt:
	free(c->ibuf);
fail_ibuf:
	free(c);
fail_c:
	close(fd);
	return -ENOMEM;
}

static void listener_accept(struct nbd_server *srv, struct listener *l)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("nbd: accept: %m");
			return;
		}
		nbd_server_add_client(srv, fd);
	}
}

static void handle_events(struct nbd_server *srv, const struct epoll_event *evs, int n)
{
	for (int i = 0; i < n; i++) {
		struct ep_tag *t = evs[i].data.ptr;

		switch (t->kind) {
		case EP_LISTEN:
			listener_accept(srv, container_of(t, struct listener, tag));
			break;
		case EP_KICK: {
			uint64_t v;

			if (read(srv->kick_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_warn("nbd: eventfd read: %m");
			srv->kick_signalled = false;
			break;
		}
		case EP_CONN: {
			struct nbd_conn *c = container_of(t, struct nbd_conn, tag);

			if (c->dead)
				break;
			/* Input and output are handled by run_work(); a hang-up
			 * while input is paused must still close. */
			if ((evs[i].events & (EPOLLHUP | EPOLLERR)) &&
			    (c->closing || conn_throttled(c)))
				conn_kill(c);
			schedule_work(c);
			break;
		}
		}
	}
	run_work(srv);
}

/* Wait up to timeout_ms on the server's own epoll set and handle what is
 * ready; dispatch and poll_blocking differ only in the timeout. */
static int server_wait(struct nbd_server *srv, int timeout_ms)
{
	struct epoll_event evs[64];
	int n;

	n = epoll_wait(srv->epfd, evs, 64, timeout_ms);
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	srv->in_dispatch++;
	handle_events(srv, evs, n);
	srv->in_dispatch--;
	return 0;
}

int nbd_server_dispatch(struct nbd_server *srv)
{
	return server_wait(srv, 0);
}

int nbd_server_poll_blocking(struct nbd_server *srv, int timeout_ms)
{
	return server_wait(srv, timeout_ms);
}

void nbd_server_batch_begin(struct nbd_server *srv)
{
	srv->in_batch++;
}

void nbd_server_batch_end(struct nbd_server *srv)
{
	if (--srv->in_batch > 0)
		return;
	while (srv->flush_head) {
		struct nbd_conn *c = srv->flush_head;

		srv->flush_head = c->flush_next;
		c->on_flush = false;
		if (c->dead)
			continue;
		conn_flush(c);
		if (c->dead || c->stalled || c->closing)
			schedule_work(c);
		else
			conn_set_events(c);
	}
}

void nbd_server_kick(struct nbd_server *srv)
{
	for (struct nbd_conn *c = srv->conns; c; c = c->next)
		if (c->stalled && !c->dead)
			schedule_work(c);
}

int nbd_server_fd(const struct nbd_server *srv)
{
	return srv->epfd;
}

void nbd_server_get_stats(const struct nbd_server *srv, struct nbd_server_stats *st)
{
	*st = srv->stats;
}

int nbd_server_add_listener(struct nbd_server *srv, int fd)
{
	struct listener *l = calloc(1, sizeof(*l));
	struct epoll_event ev;
	int fl = fcntl(fd, F_GETFL);

	if (!l) {
		close(fd);
		return -ENOMEM;
	}
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		goto fail;
	l->tag.kind = EP_LISTEN;
	l->fd = fd;
	ev.events = EPOLLIN;
	ev.data.ptr = &l->tag;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		goto fail;
	l->next = srv->listeners;
	srv->listeners = l;
	return 0;
fail:;
	int e = errno;

	free(l);
	close(fd);
	return -e;
}

int nbd_server_listen_unix(struct nbd_server *srv, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST; /* never remove anything but a stale socket */
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Only the owner (the toolstack's user) may connect. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 64) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return nbd_server_add_listener(srv, fd);
}

static int pow2_ok(uint32_t v)
{
	return v && !(v & (v - 1));
}

int nbd_server_create(const struct nbd_export *exp, const struct nbd_backend_ops *ops, void *ctx,
		      struct nbd_server **out)
{
	struct nbd_server *srv;
	struct epoll_event ev;
	const char *name = exp->name ? exp->name : "";
	int e;

	if (!ops || !ops->submit || strlen(name) > NBD_MAX_STRING ||
	    (exp->description && strlen(exp->description) > NBD_MAX_STRING))
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->exp = *exp;
	if (!srv->exp.min_block)
		srv->exp.min_block = 1;
	if (!srv->exp.pref_block)
		srv->exp.pref_block = srv->exp.min_block > 4096 ? srv->exp.min_block : 4096;
	if (!srv->exp.max_payload)
		srv->exp.max_payload = NBD_DEFAULT_MAX_PAYLOAD;
	if (!srv->exp.max_buffered)
		srv->exp.max_buffered = NBD_DEFAULT_MAX_BUFFERED;
	srv->max_bytes = srv->exp.max_buffered;
	if (!pow2_ok(srv->exp.min_block) || srv->exp.min_block > 65536 ||
	    !pow2_ok(srv->exp.pref_block) || srv->exp.pref_block < srv->exp.min_block ||
	    srv->exp.max_payload < srv->exp.pref_block ||
	    srv->exp.max_payload % srv->exp.min_block || srv->exp.max_payload > (1u << 30) ||
	    srv->exp.max_buffered < srv->exp.max_payload) {
		free(srv);
		return -EINVAL;
	}
	srv->name = strdup(name);
	srv->description = exp->description ? strdup(exp->description) : NULL;
	if (!srv->name || (exp->description && !srv->description)) {
		e = -ENOMEM;
		goto fail_names;
	}
	srv->exp.name = srv->name;
	srv->exp.description = srv->description;
	srv->lim = (struct nbd_limits){
	    .size = exp->size,
	    .min_block = srv->exp.min_block,
	    .max_payload = srv->exp.max_payload,
	    .read_only = exp->read_only,
	    .can_flush = exp->can_flush,
	    .can_trim = exp->can_trim,
	    .can_zero = exp->can_zero,
	};
	srv->tflags = nbd_proto_transmission_flags(&srv->lim, exp->can_fua, exp->can_multi_conn);
	srv->ops = ops;
	srv->ctx = ctx;
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epfd < 0) {
		e = -errno;
		goto fail_names;
	}
	srv->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (srv->kick_fd < 0) {
		e = -errno;
		goto fail_kick;
	}
	srv->kick_tag.kind = EP_KICK;
	ev.events = EPOLLIN;
	ev.data.ptr = &srv->kick_tag;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->kick_fd, &ev) < 0) {
		e = -errno;
		goto fail_ctl;
	}
	*out = srv;
	return 0;

fail_ctl:
	close(srv->kick_fd);
fail_kick:
	close(srv->epfd);
fail_names:
	free(srv->name);
	free(srv->description);
	free(srv);
	return e;
}

static void server_free(struct nbd_server *srv)
{
	buf_cache_drain(srv);
	close(srv->kick_fd);
	close(srv->epfd);
	free(srv->name);
	free(srv->description);
	free(srv);
}

void nbd_server_destroy(struct nbd_server *srv)
{
	struct nbd_conn *c, *next;

	while (srv->listeners) {
		struct listener *l = srv->listeners;

		srv->listeners = l->next;
		close(l->fd);
		free(l);
	}
	srv->destroyed = true;
	srv->work_head = srv->work_tail = NULL;
	for (c = srv->conns; c; c = next) {
		next = c->next;
		c->on_work = false;
		conn_kill(c);
		if (c->in_flight == 0)
			conn_free(c);
	}
	if (srv->in_flight == 0)
		server_free(srv);
}
