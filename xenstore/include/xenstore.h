// SPDX-License-Identifier: MIT
// drvdom's libxenstore-compatible client library (build/lib/libxenstore.a):
// the API of Xen's <xenstore.h> with its names, types and semantics, so a
// program written for libxenstore builds against it unchanged. It talks to
// drvdom-xenstored (or Xen's) over the Unix socket named by XENSTORED_PATH,
// and inside a drvdom domain over the domain's xenstore ring. Every call
// may block on the daemon; failures return false/NULL with errno set.
// A handle may be shared by threads: requests are serialised, and watch
// events are queued by a reader thread (started by the first xs_watch or
// xs_fileno) so that xs_fileno() is readable while one is pending.
#ifndef XENSTORE_H
#define XENSTORE_H

#include "xenstore_lib.h"

#define XBT_NULL 0

/* Open flags: accepted and ignored, as in current Xen. */
#define XS_OPEN_READONLY (1UL << 0)
#define XS_OPEN_SOCKETONLY (1UL << 1)
#define XS_UNWATCH_FILTER (1UL << 2)

struct xs_handle;
typedef uint32_t xs_transaction_t;

/* Connect to the daemon: the socket of xs_daemon_socket(), or inside a
 * drvdom domain its xenstore ring. NULL with errno on failure. */
struct xs_handle *xs_open(unsigned long flags);
/* Close the connection (NULL is fine); pending watch events are lost. */
void xs_close(struct xs_handle *xsh);

/* Deprecated synonyms of xs_open(0) / xs_close(). */
struct xs_handle *xs_daemon_open(void);
struct xs_handle *xs_domain_open(void);
struct xs_handle *xs_daemon_open_readonly(void);
void xs_daemon_close(struct xs_handle *);
/* Throw the connection away without talking to it, after fork(). */
void xs_daemon_destroy_postfork(struct xs_handle *);

/* Children of path: one malloc'ed array of *num names, free() it. */
char **xs_directory(struct xs_handle *h, xs_transaction_t t, const char *path, unsigned int *num);
/* Value of path, malloc'ed and NUL-terminated, length in *len (may be
 * NULL); free() it. */
void *xs_read(struct xs_handle *h, xs_transaction_t t, const char *path, unsigned int *len);
/* Set path to len bytes of data, creating it and missing parents. */
bool xs_write(struct xs_handle *h, xs_transaction_t t, const char *path, const void *data,
	      unsigned int len);
/* Create path (and parents) if missing; an existing node is fine. */
bool xs_mkdir(struct xs_handle *h, xs_transaction_t t, const char *path);
/* Remove path and everything below it. */
bool xs_rm(struct xs_handle *h, xs_transaction_t t, const char *path);
/* Always false: XS_RESTRICT no longer exists. */
bool xs_restrict(struct xs_handle *h, unsigned domid);

/* Permissions of path: malloc'ed array of *num entries, owner first. */
struct xs_permissions *xs_get_permissions(struct xs_handle *h, xs_transaction_t t, const char *path,
					  unsigned int *num);
/* Replace the permissions of path (owner or domain 0 only). */
bool xs_set_permissions(struct xs_handle *h, xs_transaction_t t, const char *path,
			struct xs_permissions *perms, unsigned int num_perms);

/* Watch path and everything below it; events carry token. An event fires
 * once at registration. */
bool xs_watch(struct xs_handle *h, const char *path, const char *token);
/* A file descriptor readable while a watch event is pending. */
int xs_fileno(struct xs_handle *h);
/* A pending event without blocking: malloc'ed {path, token} (indices
 * XS_WATCH_PATH, XS_WATCH_TOKEN), or NULL with errno EAGAIN if none. */
char **xs_check_watch(struct xs_handle *h);
/* Next watch event, blocking until one arrives; *num gets 2. */
char **xs_read_watch(struct xs_handle *h, unsigned int *num);
/* Remove a watch registered with the same path and token. */
bool xs_unwatch(struct xs_handle *h, const char *path, const char *token);

/* Start a transaction; XBT_NULL with errno on failure. */
xs_transaction_t xs_transaction_start(struct xs_handle *h);
/* Commit (abort false) or abandon it; false with errno EAGAIN when the
 * commit conflicted and the caller should retry. */
bool xs_transaction_end(struct xs_handle *h, xs_transaction_t t, bool abort);

/* drvdom extension (not in Xen's libxenstore): send n requests at once
 * and wait for their n replies in order — one round trip to the daemon
 * instead of n, which is what a restarted driver domain's handshake costs
 * (docs/recovery.md). Plain Xen wire messages, pipelined as the protocol
 * allows (xenstored answers a connection's requests in order). Each op:
 * type XS_READ, XS_DIRECTORY, XS_WRITE (data, len), XS_RM, XS_MKDIR,
 * XS_WATCH / XS_UNWATCH (data = the token string; always outside t) or
 * XS_TRANSACTION_END (path "T" commit, "F" abort); the rest go in
 * transaction t. On return each op's err is 0 or an errno value (EBADF
 * for a reply that does not belong to it), and reply (XS_READ: the value;
 * XS_DIRECTORY: the NUL-separated names, no XS_DIRECTORY_PART fallback)
 * is malloc'ed and NUL-terminated, reply_len bytes: free() it. At most
 * XS_BATCH_MAX ops (Xen's quota of 20 outstanding requests). Returns false
 * with errno only if the connection failed (E2BIG: too many ops or an op
 * too long, nothing sent). Blocks; starts the reader thread. */
#define XS_BATCH_MAX 16
struct xs_batch_op {
	uint32_t type;
	const char *path;
	const void *data;
	unsigned int len;
	int err;
	void *reply;
	unsigned int reply_len;
};
bool xs_batch(struct xs_handle *h, xs_transaction_t t, struct xs_batch_op *ops, unsigned int n);
/* Fill op as an XS_READ, or an XS_WRITE of the string val, of dir/key;
 * the path is formatted into buf (cap bytes), which must outlive the
 * batch. */
void xs_batch_read(struct xs_batch_op *op, char *buf, size_t cap, const char *dir,
		   const char *key);
void xs_batch_write(struct xs_batch_op *op, char *buf, size_t cap, const char *dir,
		    const char *key, const char *val);
/* Free the replies of ops[0 .. n) and clear them. */
void xs_batch_free(struct xs_batch_op *ops, unsigned int n);
/* A read op's reply as a strict unsigned decimal (digits only, no sign or
 * space, no overflow): 0 and *out = the value; -ENOENT (no reply) or
 * -EINVAL (anything else), *out = def. A peer's keys are hostile. */
int xs_batch_uint(const struct xs_batch_op *op, uint64_t def, uint64_t *out);

/* Domain 0 only: make a domain known (its ring page frame and event
 * channel), mark another as its target, resume or release one. */
bool xs_introduce_domain(struct xs_handle *h, unsigned int domid, unsigned long mfn,
			 unsigned int eventchn);
bool xs_set_target(struct xs_handle *h, unsigned int domid, unsigned int target);
bool xs_resume_domain(struct xs_handle *h, unsigned int domid);
bool xs_release_domain(struct xs_handle *h, unsigned int domid);
/* "/local/domain/<domid>", malloc'ed. */
char *xs_get_domain_path(struct xs_handle *h, unsigned int domid);
/* True if child equals parent or lies below it. */
bool xs_path_is_subpath(const char *parent, const char *child);
/* Whether xenstored knows domid (domain 0 always). */
bool xs_is_domain_introduced(struct xs_handle *h, unsigned int domid);

/* XS_CONTROL: cmd plus len bytes of data; malloc'ed reply string. */
char *xs_control_command(struct xs_handle *h, const char *cmd, void *data, unsigned int len);
char *xs_debug_command(struct xs_handle *h, const char *cmd, void *data, unsigned int len);

/* Not supported here: -1. */
int xs_suspend_evtchn_port(int domid);

#endif
