// SPDX-License-Identifier: MIT
// drvdom-xenstored's one internal header: the node store (RCU hash table of
// immutable node versions), transactions, connections, watches and the
// request dispatcher. Prototypes are grouped by the file that defines them.
// The protocol and the design are described in docs/xenstore.md.
#ifndef DRVDOM_XENSTORE_XSD_H
#define DRVDOM_XENSTORE_XSD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <urcu.h>
#include <urcu/rculfhash.h>
#include <xen/io/xs_wire.h>

/* Xen's default per-domain quotas (xenstored's -N/-W/-T/-S/-P/-Q defaults),
 * applied to unprivileged domains. */
#define XSD_QUOTA_NODES 1000
#define XSD_QUOTA_WATCHES 128
#define XSD_QUOTA_TRANSACTIONS 10
#define XSD_QUOTA_NODE_SIZE 2048
#define XSD_QUOTA_PERMS 5
#define XSD_QUOTA_OUTSTANDING 20
#define XSD_QUOTA_MEMORY (2560 * 1024) /* bytes of nodes a domain owns */

/* Bounds for privileged (dom0) connections: generous, but finite so a
 * runaway client cannot grow the daemon without limit. */
#define XSD_DOM0_MAX_WATCHES 8192
#define XSD_DOM0_MAX_TRANSACTIONS 1024
#define XSD_TX_MAX_ENTRIES 16384

/* Output queue limits per connection: above THROTTLE the daemon stops
 * reading that connection's requests; a connection whose queue passes MAX
 * (watch events it never reads) is dropped. */
#define XSD_OUTQ_THROTTLE (64 * 1024)
#define XSD_OUTQ_MAX (4 * 1024 * 1024)

#define XSD_DOMID_MAX 0x7FF0 /* DOMID_FIRST_RESERVED */

#define XSD_PERM_NONE 0u
#define XSD_PERM_READ 1u
#define XSD_PERM_WRITE 2u
#define XSD_PERM_BOTH 3u

struct xsd_perm {
	uint32_t id;
	uint32_t perms;
};

/* One immutable version of a node. Published in the hash table by the
 * writer holding xsd_store_lock; readers find it under rcu_read_lock() and
 * never see it change; replaced versions are freed after a grace period. */
struct xsd_node {
	struct cds_lfht_node hnode;
	struct rcu_head rcu;
	uint64_t gen;	     /* store generation of this version, 0 in a tx */
	uint32_t vlen, clen; /* value bytes; children: NUL-separated names */
	uint32_t nperms;
	struct xsd_perm *perms; /* [0] = owner and default for others */
	char *value;
	char *children;
	char *path;
	char data[];
};

struct xsd_tx;
struct xsd_conn;

/* Outgoing message: a complete header + payload. */
struct xsd_buf {
	struct xsd_buf *next;
	uint32_t len, off;
	char data[];
};

/* How a connection's bytes move: a Unix socket, a domain's ring, or nothing
 * (unit tests read the queue). Called with conn->out_lock held. */
struct xsd_transport {
	void (*flush)(struct xsd_conn *c);
	/* Ask the owning worker to drop the connection (any thread). */
	void (*kill)(struct xsd_conn *c);
};

struct xsd_watch {
	struct xsd_watch *next; /* global list, under xsd_store_lock */
	struct xsd_conn *conn;
	char *path; /* absolute, or @special */
	char *token;
	uint32_t rel_off; /* bytes to strip from event paths (relative watch) */
};

struct xsd_conn {
	uint16_t domid;
	bool privileged_ok; /* dom0 socket client */
	const struct xsd_transport *tp;
	void *tp_priv;
	int fd;
	int epfd; /* the owning worker's epoll */

	pthread_mutex_t out_lock;
	struct xsd_buf *out_head, *out_tail;
	size_t out_bytes;
	uint32_t out_msgs; /* messages queued, for the outstanding quota */
	_Atomic bool dead; /* drop requested (any thread); owner closes */
	bool throttled;

	/* Input, owner thread only. */
	char *in;
	uint32_t in_len;

	/* Owner thread only, except under xsd_store_lock at teardown. */
	struct xsd_tx *txs;
	uint32_t ntx, next_txid;
	uint32_t nwatches;     /* under xsd_store_lock */
	struct xsd_conn *next; /* global list, under xsd_store_lock */
};

/* --- xsd_store.c: nodes, paths, permissions, transactions --------------- */
extern pthread_mutex_t xsd_store_lock;

void xsd_store_init(void);
/* Validate and canonicalise a path for domain domid (relative paths are
 * below /local/domain/<domid>). allow_special admits @introduceDomain and
 * @releaseDomain. *rel_off gets the prefix length added. 0 or -EINVAL. */
int xsd_path_canon(uint16_t domid, const char *in, bool allow_special, char *out, size_t outsz,
		   uint32_t *rel_off);
bool xsd_path_is_special(const char *path);
/* Permission of domid on a node with these perms (owner gets both). */
uint32_t xsd_perm_for(const struct xsd_conn *c, const struct xsd_perm *p, uint32_t n);
bool xsd_conn_privileged(const struct xsd_conn *c);
/* "r0" etc. <-> struct xsd_perm; 0 or -EINVAL. */
int xsd_perm_parse(const char *s, struct xsd_perm *p);
int xsd_perm_format(const struct xsd_perm *p, char *buf, size_t sz);

struct xsd_node *xsd_node_new(const char *path, const void *value, uint32_t vlen,
			      const char *children, uint32_t clen, const struct xsd_perm *perms,
			      uint32_t nperms);
void xsd_node_free(struct xsd_node *n);
/* Caller holds rcu_read_lock(); the node stays valid until it unlocks. */
struct xsd_node *xsd_store_lookup(const char *path);
/* Special node perms (@introduceDomain/@releaseDomain), under store lock. */
struct xsd_perm *xsd_special_perms(const char *path, uint32_t **nperms);

/* A view is the global store (tx == NULL, caller holds xsd_store_lock and
 * rcu_read_lock) or a transaction's snapshot overlay. get returns a node
 * valid until the next put/del on the view, or NULL (errno-free). */
const struct xsd_node *xsd_view_get(struct xsd_tx *tx, const char *path);

/* Operations on behalf of connection c in view tx; 0 or -errno. They fire
 * watches (global view) or queue them for commit (tx). */
int xsd_op_write(struct xsd_conn *c, struct xsd_tx *tx, const char *path, const void *val,
		 uint32_t len);
int xsd_op_mkdir(struct xsd_conn *c, struct xsd_tx *tx, const char *path);
int xsd_op_rm(struct xsd_conn *c, struct xsd_tx *tx, const char *path);
int xsd_op_set_perms(struct xsd_conn *c, struct xsd_tx *tx, const char *path,
		     const struct xsd_perm *p, uint32_t n);
/* Check that c may access path with perm; -ENOENT / -EACCES like Xen
 * (a missing node's nearest ancestor decides between them). */
int xsd_check_access(struct xsd_conn *c, struct xsd_tx *tx, const char *path, uint32_t perm,
		     const struct xsd_node **out);

struct xsd_tx *xsd_tx_new(struct xsd_conn *c);
struct xsd_tx *xsd_tx_find(struct xsd_conn *c, uint32_t id);
uint32_t xsd_tx_id(const struct xsd_tx *tx);
/* Commit (0, -EAGAIN on conflict) or abort; frees tx either way. */
int xsd_tx_end(struct xsd_conn *c, struct xsd_tx *tx, bool commit);
void xsd_tx_abort_all(struct xsd_conn *c);

/* Domain table (under xsd_store_lock). */
struct xsd_domain {
	uint16_t domid;
	bool introduced;
	bool has_target;
	uint16_t target;
	uint32_t nnodes;
	uint64_t bytes; /* memory of the nodes it owns */
	uint64_t gfn;
	uint32_t port;
	struct xsd_conn *conn; /* ring connection, if any */
	bool restart_pending;  /* released for an hv restart: introduce the next instance */
};
struct xsd_domain *xsd_domain_get(uint16_t domid, bool create);
/* Chown the domain's nodes to dom0 and drop its other ACL entries. */
void xsd_domain_forget_perms(uint16_t domid);
uint64_t xsd_store_nodes(void);

/* --- xsd_watch.c --------------------------------------------------------- */
int xsd_watch_add(struct xsd_conn *c, const char *path, const char *token, uint32_t rel_off);
int xsd_watch_del(struct xsd_conn *c, const char *path, const char *token);
void xsd_watch_del_all(struct xsd_conn *c);
/* Fire watches for a change at path (node perms p/n decide who may see it);
 * recurse also fires watches below path (removal). Under xsd_store_lock. */
void xsd_watch_fire(const char *path, const struct xsd_perm *p, uint32_t n, bool recurse);
/* Send the event a new watch fires with (after its reply). Store lock held. */
void xsd_watch_initial(struct xsd_conn *c, const char *path, const char *token, uint32_t rel_off);

/* --- xsd_conn.c: connections and the request dispatcher ------------------ */
struct xsd_conn *xsd_conn_new(uint16_t domid, const struct xsd_transport *tp, void *priv);
/* Unlink from watches, transactions and the global list (takes the store
 * lock), then free. Owner thread only. */
void xsd_conn_free(struct xsd_conn *c);
/* Handle one complete request (hdr + body of hdr->len bytes). */
void xsd_conn_handle(struct xsd_conn *c, const struct xsd_sockmsg *hdr, const char *body);
/* Queue a message; drops the connection if its queue is over the limit. */
void xsd_conn_send(struct xsd_conn *c, uint32_t type, uint32_t req_id, uint32_t tx_id,
		   const void *data, uint32_t len);
/* Feed received bytes; returns 0, or -EPROTO to drop the connection. Stops
 * consuming (returns with bytes left in c->in) while throttled. */
int xsd_conn_input(struct xsd_conn *c);
/* Pop one queued message (tests / ring writer); NULL if none. */
struct xsd_buf *xsd_conn_pop(struct xsd_conn *c);
void xsd_conn_kill(struct xsd_conn *c);
/* Whether the connection's unread output is over its bound (stop reading
 * it) / back under half of it (resume). out_lock held. */
bool xsd_conn_over(const struct xsd_conn *c);
bool xsd_conn_may_resume(const struct xsd_conn *c);
/* A queued message was fully written out. out_lock held. */
void xsd_conn_sent(struct xsd_conn *c, struct xsd_buf *b);
const char *xsd_errno_name(int err);
/* Forget a domain (XS_RELEASE, or the hv reports its death): drop its ring
 * connection, watches and transactions, chown its nodes to dom0, fire
 * @releaseDomain. Under xsd_store_lock. 0, -EINVAL or -ENOENT. */
int xsd_domain_release(uint16_t domid);
/* The same; keep_perms leaves the domain's nodes owned by it (the hv will
 * restart it under the same domid: docs/recovery.md). */
int xsd_domain_release_keep(uint16_t domid, bool keep_perms);
/* XS_INTRODUCE's work (also run when the hv restarts a domain): connect
 * its ring, fire @introduceDomain. Under xsd_store_lock. 0, -EEXIST (other
 * page or port), -EINVAL, or the ring's error. */
int xsd_domain_introduce(uint16_t domid, uint64_t gfn, uint32_t port);
/* Hooks set by the ring transport when an hv is present. */
extern int (*xsd_domain_connect)(struct xsd_domain *d);
extern void (*xsd_domain_disconnect)(struct xsd_domain *d);

#define XSD_IN_MAX (64 * 1024)

/* --- xsd_ring.c: domains over rings --------------------------------------- */
/* Connect to drvdom-hv's dom0 socket, subscribe to domain exits, start the
 * ring thread and hook XS_INTRODUCE / XS_RELEASE. Main thread, once, before
 * serving. 0 or -errno. */
int xsd_ring_init(const char *hv_socket);
/* --clean-dead-domains: remove what belonged to a domain gone for good. */
extern bool xsd_ring_clean_dead;

#endif
