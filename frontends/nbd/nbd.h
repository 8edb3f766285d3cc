// SPDX-License-Identifier: MIT
// The NBD server: exposes one block export to any number of NBD clients
// (fixed newstyle handshake, simple replies, multi-conn) and hands every
// request to an abstract backend through an ops table. It is an event-driven,
// non-blocking state machine with no threads: all its descriptors sit in one
// epoll fd of its own, which the owner adds to its event loop and services
// with nbd_server_dispatch() when readable. The guest drives it with blkfront
// as the backend; drvdom-nbd-file drives it with the file backend. The
// protocol subset and the integration contract are described in docs/nbd.md.
#ifndef DRVDOM_FRONTENDS_NBD_NBD_H
#define DRVDOM_FRONTENDS_NBD_NBD_H

#include <stdbool.h>
#include <stdint.h>

/* Commands a backend receives (the NBD wire values). */
enum nbd_io_cmd {
	NBD_IO_READ = 0,
	NBD_IO_WRITE = 1,
	NBD_IO_FLUSH = 3,
	NBD_IO_TRIM = 4,
	NBD_IO_WRITE_ZEROES = 6,
};

/* nbd_io.flags */
#define NBD_IO_FUA (1u << 0)	 /* the write must be durable before completion */
#define NBD_IO_NO_HOLE (1u << 1) /* WRITE_ZEROES: allocate, do not punch */

/* One request handed to the backend. The server owns the memory; the
 * backend may read every field and write `data` (READ) until it calls
 * nbd_io_complete(), after which it must not touch the io again. */
struct nbd_io {
	enum nbd_io_cmd cmd;
	uint32_t flags;	    /* NBD_IO_FUA, NBD_IO_NO_HOLE */
	uint64_t offset;    /* bytes; offset + length <= export size, checked */
	uint32_t length;    /* bytes; <= max_payload for READ/WRITE, checked */
	void *data;	    /* READ: fill length bytes; WRITE: length bytes; else NULL */
	uint64_t cookie;    /* the client's handle: for tracing only */
	void *backend_priv; /* free for the backend's use */
};

/* The backend. submit() takes a validated request:
 *   - returns 0: the backend owns the io and calls nbd_io_complete() exactly
 *     once, later or before submit() returns;
 *   - returns -EAGAIN: the backend is full; the server keeps the io, stops
 *     reading from that client, and submits it again after the backend calls
 *     nbd_server_kick();
 *   - returns another -errno: refused; the server replies with that error.
 * submit() must not block. Called from nbd_server_dispatch() only. */
struct nbd_backend_ops {
	int (*submit)(void *ctx, struct nbd_io *io);
	/* Optional: a data buffer of len bytes for a READ or WRITE from the
	 * backend's own memory (e.g. pages it shares with a device), which the
	 * server then fills from the socket or sends from without another
	 * copy; NULL: the server uses its own. Every buffer it gave is handed
	 * back with buf_put (same len) once the io is done and its reply sent,
	 * possibly after nbd_server_destroy(). Loop thread; must not block. */
	void *(*buf_get)(void *ctx, uint32_t len);
	void (*buf_put)(void *ctx, void *buf, uint32_t len);
};

/* What the server advertises. Copied by nbd_server_create(). */
struct nbd_export {
	const char *name;	 /* export name; NULL or "" = default only */
	const char *description; /* optional, for NBD_OPT_LIST and INFO */
	uint64_t size;		 /* bytes */
	uint32_t min_block;	 /* power of two, 1..65536; requests must align */
	uint32_t pref_block;	 /* power of two >= min_block, e.g. 4096 */
	uint32_t max_payload;	 /* largest READ/WRITE, 0 = NBD_DEFAULT_MAX_PAYLOAD */
	uint64_t max_buffered;	 /* data buffers held for all clients together before
				  * the server stops reading; 0 = NBD_DEFAULT_MAX_BUFFERED */
	bool read_only;
	bool can_flush;	     /* backend honours NBD_IO_FLUSH */
	bool can_fua;	     /* backend honours NBD_IO_FUA on writes */
	bool can_trim;	     /* backend honours NBD_IO_TRIM */
	bool can_zero;	     /* backend honours NBD_IO_WRITE_ZEROES */
	bool can_multi_conn; /* a flush on any connection covers all (see docs) */
};

#define NBD_DEFAULT_MAX_PAYLOAD (32u << 20)
#define NBD_DEFAULT_MAX_BUFFERED (256ull << 20)

struct nbd_server;

/* Create a server for one export served by (ops, ctx). No listener yet.
 * Returns 0 or -errno (-EINVAL for a bad export description). */
int nbd_server_create(const struct nbd_export *exp, const struct nbd_backend_ops *ops, void *ctx,
		      struct nbd_server **out);

/* Listen on a Unix stream socket at path, mode 0600 (a stale socket file
 * is replaced; anything else there is -EEXIST). May be called more than
 * once. Returns 0 or -errno. */
int nbd_server_listen_unix(struct nbd_server *srv, const char *path);

/* Serve an already listening socket; the server takes ownership of fd. */
int nbd_server_add_listener(struct nbd_server *srv, int fd);

/* Serve one already connected stream socket (e.g. one end of a
 * socketpair); the server takes ownership of fd and starts the handshake. */
int nbd_server_add_client(struct nbd_server *srv, int fd);

/* The epoll fd holding all the server's descriptors. Add it with EPOLLIN to
 * the owner's loop; when it is readable call nbd_server_dispatch(). */
int nbd_server_fd(const struct nbd_server *srv);

/* Handle whatever is ready (accept, read, parse, submit, write replies)
 * without blocking. Call from the owner's loop thread only. Returns 0, or
 * -errno on a host failure of the server itself (client errors only close
 * that client). */
int nbd_server_dispatch(struct nbd_server *srv);

/* Wait up to timeout_ms (-1 = forever) for the server's fd, then dispatch:
 * the whole loop for a program with nothing else to do. Blocks. */
int nbd_server_poll_blocking(struct nbd_server *srv, int timeout_ms);

/* Tell the server the backend has room again after returning -EAGAIN.
 * Callable from the loop thread at any time, including inside submit(). */
void nbd_server_kick(struct nbd_server *srv);

/* Complete an io handed to submit(): err is 0 or -errno (mapped to NBD
 * errors: -EPERM, -EIO, -ENOMEM, -EINVAL, -ENOSPC, -EOVERFLOW, -ENOTSUP,
 * -ESHUTDOWN pass through, EDQUOT/EFBIG become ENOSPC, the rest EIO). Queues
 * the reply and tries to send it at once. Call from the loop thread,
 * possibly inside submit(). Never blocks. */
void nbd_io_complete(struct nbd_io *io, int err);

/* Bracket a burst of completions made outside nbd_server_dispatch() (e.g.
 * one pass over a response ring): replies are queued, and batch_end()
 * writes each client's replies with one sendmsg instead of one per io.
 * Nests. Loop thread only; never blocks. Without it every completion
 * outside dispatch is written at once. */
void nbd_server_batch_begin(struct nbd_server *srv);
void nbd_server_batch_end(struct nbd_server *srv);

/* Counters for drvdom top. */
struct nbd_server_stats {
	uint64_t connections; /* accepted so far */
	uint32_t clients;     /* connected now */
	uint32_t in_flight;   /* ios owned by the backend now */
	uint64_t requests, read_bytes, write_bytes, errors;
};
void nbd_server_get_stats(const struct nbd_server *srv, struct nbd_server_stats *st);

/* Close every client and listener and free the server. Ios still owned by
 * the backend stay valid: the server is freed only when the last of them is
 * completed (their replies are dropped). Loop thread only. */
void nbd_server_destroy(struct nbd_server *srv);

/* The file backend: a regular file or block device served with pread,
 * pwrite, fdatasync and fallocate, completing every io synchronously inside
 * submit(). Used by drvdom-nbd-file and the tests, and a reference for
 * asynchronous backends. */
struct nbd_file_backend;
extern const struct nbd_backend_ops nbd_file_backend_ops;

/* Open path (O_RDWR, or O_RDONLY if read_only) and fill *exp to describe it
 * (name "", flush, FUA, trim and zero on, multi-conn on). Blocks on open.
 * Returns 0 or -errno. */
int nbd_file_backend_open(const char *path, bool read_only, struct nbd_file_backend **out,
			  struct nbd_export *exp);

/* Close the file. No io may be outstanding (none ever is: it is synchronous). */
void nbd_file_backend_close(struct nbd_file_backend *fb);

#endif
