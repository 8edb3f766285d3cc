// SPDX-License-Identifier: MIT
// The node store of drvdom-xenstored. Every node version is immutable and
// lives in a liburcu lock-free hash table keyed by its absolute path.
// Readers look nodes up under rcu_read_lock() and never wait; writers hold
// xsd_store_lock, publish a new version with cds_lfht_add_replace() and free
// the old one after a grace period (call_rcu). A transaction is a private
// overlay: each path it touches is copied in with the generation it had, and
// commit fails with EAGAIN if any of those generations moved (Xen's
// semantics: the transaction behaves as a snapshot). Paths, permissions and
// quotas follow Xen's xenstored; see docs/xenstore.md.
#include "xenstore/xsd.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

pthread_mutex_t xsd_store_lock = PTHREAD_MUTEX_INITIALIZER;

static struct cds_lfht *xsd_ht;
static uint64_t xsd_gen;    /* under xsd_store_lock */
static uint64_t xsd_nnodes; /* under xsd_store_lock */
static struct xsd_domain *xsd_domains[XSD_DOMID_MAX];

#define XSD_SPECIAL_MAX 16
static struct {
	const char *path;
	struct xsd_perm perms[XSD_SPECIAL_MAX];
	uint32_t n;
} xsd_specials[] = {
    {"@introduceDomain", {{0, XSD_PERM_NONE}}, 1},
    {"@releaseDomain", {{0, XSD_PERM_NONE}}, 1},
};

struct xsd_txent {
	char *path;
	uint64_t seen_gen;
	struct xsd_node *node; /* private version; NULL = absent */
	bool written;
};

struct xsd_txev {
	char *path;
	struct xsd_perm *perms;
	uint32_t nperms;
	bool recurse;
};

struct xsd_tx {
	struct xsd_tx *next;
	uint32_t id;
	struct xsd_txent *ents;
	uint32_t nents, capents;
	struct xsd_txev *evs;
	uint32_t nevs, capevs;
};

static uint64_t xsd_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static int xsd_match(struct cds_lfht_node *hn, const void *key)
{
	struct xsd_node *n = caa_container_of(hn, struct xsd_node, hnode);
	return strcmp(n->path, key) == 0;
}

struct xsd_node *xsd_node_new(const char *path, const void *value, uint32_t vlen,
			      const char *children, uint32_t clen, const struct xsd_perm *perms,
			      uint32_t nperms)
{
	size_t plen = strlen(path) + 1;
	struct xsd_node *n =
	    malloc(sizeof(*n) + nperms * sizeof(*perms) + vlen + 1 + clen + 1 + plen);
	if (!n)
		die("malloc node");
	cds_lfht_node_init(&n->hnode);
	n->gen = 0;
	n->vlen = vlen;
	n->clen = clen;
	n->nperms = nperms;
	n->perms = (struct xsd_perm *)n->data;
	memcpy(n->perms, perms, nperms * sizeof(*perms));
	n->value = (char *)(n->perms + nperms);
	if (vlen)
		memcpy(n->value, value, vlen);
	n->value[vlen] = 0;
	n->children = n->value + vlen + 1;
	if (clen)
		memcpy(n->children, children, clen);
	n->children[clen] = 0;
	n->path = n->children + clen + 1;
	memcpy(n->path, path, plen);
	return n;
}

void xsd_node_free(struct xsd_node *n)
{
	free(n);
}

static struct xsd_node *xsd_node_dup(const struct xsd_node *o)
{
	struct xsd_node *n =
	    xsd_node_new(o->path, o->value, o->vlen, o->children, o->clen, o->perms, o->nperms);
	n->gen = o->gen;
	return n;
}

static void xsd_node_free_rcu(struct rcu_head *h)
{
	free(caa_container_of(h, struct xsd_node, rcu));
}

struct xsd_node *xsd_store_lookup(const char *path)
{
	struct cds_lfht_iter it;
	cds_lfht_lookup(xsd_ht, xsd_hash(path), xsd_match, path, &it);
	struct cds_lfht_node *hn = cds_lfht_iter_get_node(&it);
	return hn ? caa_container_of(hn, struct xsd_node, hnode) : NULL;
}

uint64_t xsd_store_nodes(void)
{
	return __atomic_load_n(&xsd_nnodes, __ATOMIC_RELAXED);
}

struct xsd_domain *xsd_domain_get(uint16_t domid, bool create)
{
	if (domid >= XSD_DOMID_MAX)
		return NULL;
	/* Readers look domains up without the store lock: publish with release,
	 * read with acquire. Domains are never freed. */
	struct xsd_domain *d = __atomic_load_n(&xsd_domains[domid], __ATOMIC_ACQUIRE);
	if (!d && create) {
		d = calloc(1, sizeof(*d));
		if (!d)
			die("calloc domain");
		d->domid = domid;
		__atomic_store_n(&xsd_domains[domid], d, __ATOMIC_RELEASE);
	}
	return d;
}

/* What a node costs its owner, for the memory quota. */
static size_t xsd_node_bytes(const struct xsd_node *n)
{
	return sizeof(*n) + n->nperms * sizeof(struct xsd_perm) + n->vlen + n->clen +
	       strlen(n->path) + 3;
}

static void xsd_account(const struct xsd_node *n, int delta)
{
	struct xsd_domain *d = xsd_domain_get((uint16_t)n->perms[0].id, true);
	if (d) {
		d->nnodes += delta;
		/* Read without the lock by the quota check: atomic update. */
		__atomic_fetch_add(&d->bytes,
				   (uint64_t)((int64_t)delta * (int64_t)xsd_node_bytes(n)),
				   __ATOMIC_RELAXED);
	}
	__atomic_store_n(&xsd_nnodes, xsd_nnodes + delta, __ATOMIC_RELAXED);
}

/* Global view, xsd_store_lock + rcu_read_lock held. Takes ownership. */
static void xsd_global_put(struct xsd_node *n)
{
	n->gen = ++xsd_gen;
	struct cds_lfht_node *old =
	    cds_lfht_add_replace(xsd_ht, xsd_hash(n->path), xsd_match, n->path, &n->hnode);
	xsd_account(n, 1);
	if (old) {
		struct xsd_node *o = caa_container_of(old, struct xsd_node, hnode);
		xsd_account(o, -1);
		call_rcu(&o->rcu, xsd_node_free_rcu);
	}
}

static void xsd_global_del(const char *path)
{
	struct xsd_node *o = xsd_store_lookup(path);
	if (o && cds_lfht_del(xsd_ht, &o->hnode) == 0) {
		xsd_account(o, -1);
		call_rcu(&o->rcu, xsd_node_free_rcu);
	}
}

void xsd_store_init(void)
{
	if (xsd_ht)
		return;
	xsd_ht = cds_lfht_new(1024, 1024, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
	if (!xsd_ht)
		die("cds_lfht_new");
	struct xsd_perm root = {0, XSD_PERM_NONE};
	xsd_domain_get(0, true)->introduced = true;
	pthread_mutex_lock(&xsd_store_lock);
	rcu_read_lock();
	xsd_global_put(xsd_node_new("/", NULL, 0, NULL, 0, &root, 1));
	rcu_read_unlock();
	pthread_mutex_unlock(&xsd_store_lock);
}

/* --- paths and permissions ---------------------------------------------- */

bool xsd_path_is_special(const char *path)
{
	return path[0] == '@';
}

int xsd_path_canon(uint16_t domid, const char *in, bool allow_special, char *out, size_t outsz,
		   uint32_t *rel_off)
{
	size_t len = strlen(in);
	uint32_t off = 0;
	if (in[0] == '@') {
		if (!allow_special)
			return -EINVAL;
	} else if (in[0] != '/') {
		if (len > XENSTORE_REL_PATH_MAX)
			return -EINVAL;
		off = (uint32_t)snprintf(out, outsz, "/local/domain/%u/", domid);
	}
	if (off + len > XENSTORE_ABS_PATH_MAX || off + len + 1 > outsz)
		return -EINVAL;
	memcpy(out + off, in, len + 1);
	len += off;
	if (len > 1 && out[len - 1] == '/')
		return -EINVAL;
	if (strstr(out, "//"))
		return -EINVAL;
	for (const char *p = out; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-/_@", *p))
			return -EINVAL;
	/* Xen's path quota: below /local/domain/N/ at most REL_PATH_MAX. */
	unsigned int d;
	int n = 0;
	if (sscanf(out, "/local/domain/%5u/%n", &d, &n) == 1 && n > 0 &&
	    len - (size_t)n > XENSTORE_REL_PATH_MAX)
		return -EINVAL;
	if (rel_off)
		*rel_off = off;
	return 0;
}

bool xsd_conn_privileged(const struct xsd_conn *c)
{
	return c->domid == 0;
}

uint32_t xsd_perm_for(const struct xsd_conn *c, const struct xsd_perm *p, uint32_t n)
{
	if (xsd_conn_privileged(c) || p[0].id == c->domid)
		return XSD_PERM_BOTH;
	struct xsd_domain *d = xsd_domain_get(c->domid, false);
	if (d && __atomic_load_n(&d->has_target, __ATOMIC_ACQUIRE) && p[0].id == d->target)
		return XSD_PERM_BOTH;
	for (uint32_t i = 1; i < n; i++)
		if (p[i].id == c->domid)
			return p[i].perms;
	return p[0].perms;
}

int xsd_perm_parse(const char *s, struct xsd_perm *p)
{
	switch (s[0]) {
	case 'n':
		p->perms = XSD_PERM_NONE;
		break;
	case 'r':
		p->perms = XSD_PERM_READ;
		break;
	case 'w':
		p->perms = XSD_PERM_WRITE;
		break;
	case 'b':
		p->perms = XSD_PERM_BOTH;
		break;
	default:
		return -EINVAL;
	}
	if (!isdigit((unsigned char)s[1]))
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long id = strtoul(s + 1, &end, 10);
	if (*end || errno || id >= 65536)
		return -EINVAL;
	p->id = (uint32_t)id;
	return 0;
}

int xsd_perm_format(const struct xsd_perm *p, char *buf, size_t sz)
{
	static const char letters[] = "nrwb";
	return snprintf(buf, sz, "%c%u", letters[p->perms & 3], p->id);
}

struct xsd_perm *xsd_special_perms(const char *path, uint32_t **nperms)
{
	for (size_t i = 0; i < sizeof(xsd_specials) / sizeof(xsd_specials[0]); i++)
		if (strcmp(path, xsd_specials[i].path) == 0) {
			*nperms = &xsd_specials[i].n;
			return xsd_specials[i].perms;
		}
	return NULL;
}

/* --- views: the global store or a transaction overlay -------------------- */

static struct xsd_txent *xsd_tx_ent(struct xsd_tx *tx, const char *path)
{
	for (uint32_t i = 0; i < tx->nents; i++)
		if (strcmp(tx->ents[i].path, path) == 0)
			return &tx->ents[i];
	if (tx->nents == XSD_TX_MAX_ENTRIES)
		return NULL;
	if (tx->nents == tx->capents) {
		tx->capents = tx->capents ? tx->capents * 2 : 16;
		tx->ents = realloc(tx->ents, tx->capents * sizeof(*tx->ents));
		if (!tx->ents)
			die("realloc tx");
	}
	struct xsd_txent *e = &tx->ents[tx->nents++];
	e->path = strdup(path);
	if (!e->path)
		die("strdup");
	e->written = false;
	rcu_read_lock();
	struct xsd_node *g = xsd_store_lookup(path);
	e->seen_gen = g ? g->gen : 0;
	e->node = g ? xsd_node_dup(g) : NULL;
	rcu_read_unlock();
	return e;
}

const struct xsd_node *xsd_view_get(struct xsd_tx *tx, const char *path)
{
	if (!tx)
		return xsd_store_lookup(path);
	struct xsd_txent *e = xsd_tx_ent(tx, path);
	return e ? e->node : NULL;
}

static int xsd_view_put(struct xsd_tx *tx, struct xsd_node *n)
{
	if (!tx) {
		xsd_global_put(n);
		return 0;
	}
	struct xsd_txent *e = xsd_tx_ent(tx, n->path);
	if (!e) {
		xsd_node_free(n);
		return -ENOSPC;
	}
	xsd_node_free(e->node);
	e->node = n;
	e->written = true;
	return 0;
}

static int xsd_view_del(struct xsd_tx *tx, const char *path)
{
	if (!tx) {
		xsd_global_del(path);
		return 0;
	}
	struct xsd_txent *e = xsd_tx_ent(tx, path);
	if (!e)
		return -ENOSPC;
	xsd_node_free(e->node);
	e->node = NULL;
	e->written = true;
	return 0;
}

static void xsd_changed(struct xsd_tx *tx, const char *path, const struct xsd_perm *p, uint32_t n,
			bool recurse)
{
	if (!tx) {
		xsd_watch_fire(path, p, n, recurse);
		return;
	}
	if (tx->nevs == tx->capevs) {
		tx->capevs = tx->capevs ? tx->capevs * 2 : 8;
		tx->evs = realloc(tx->evs, tx->capevs * sizeof(*tx->evs));
		if (!tx->evs)
			die("realloc tx events");
	}
	struct xsd_txev *ev = &tx->evs[tx->nevs++];
	ev->path = strdup(path);
	ev->perms = malloc(n * sizeof(*p));
	if (!ev->path || !ev->perms)
		die("malloc tx event");
	memcpy(ev->perms, p, n * sizeof(*p));
	ev->nperms = n;
	ev->recurse = recurse;
}

static void xsd_view_begin(struct xsd_tx *tx)
{
	if (!tx)
		pthread_mutex_lock(&xsd_store_lock);
	rcu_read_lock();
}

static void xsd_view_end(struct xsd_tx *tx)
{
	rcu_read_unlock();
	if (!tx)
		pthread_mutex_unlock(&xsd_store_lock);
}

static void xsd_parent_path(const char *path, char *out)
{
	const char *slash = strrchr(path, '/');
	size_t len = slash == path ? 1 : (size_t)(slash - path);
	memcpy(out, path, len);
	out[len] = 0;
}

int xsd_check_access(struct xsd_conn *c, struct xsd_tx *tx, const char *path, uint32_t perm,
		     const struct xsd_node **out)
{
	const struct xsd_node *n = xsd_view_get(tx, path);
	if (n) {
		if ((xsd_perm_for(c, n->perms, n->nperms) & perm) != perm)
			return -EACCES;
		if (out)
			*out = n;
		return 0;
	}
	/* Missing: the nearest existing ancestor decides EACCES vs ENOENT. */
	char buf[XENSTORE_ABS_PATH_MAX + 1];
	snprintf(buf, sizeof(buf), "%s", path);
	while (strcmp(buf, "/") != 0) {
		char parent[XENSTORE_ABS_PATH_MAX + 1];
		xsd_parent_path(buf, parent);
		const struct xsd_node *p = xsd_view_get(tx, parent);
		if (p)
			return (xsd_perm_for(c, p->perms, p->nperms) & perm) == perm ? -ENOENT
										     : -EACCES;
		strcpy(buf, parent);
	}
	return -ENOENT;
}

static int xsd_children_add(struct xsd_tx *tx, const char *parent, const char *name)
{
	const struct xsd_node *p = xsd_view_get(tx, parent);
	if (!p)
		return -ENOENT;
	size_t nl = strlen(name) + 1;
	char *kids = malloc(p->clen + nl);
	if (!kids)
		die("malloc");
	memcpy(kids, p->children, p->clen);
	memcpy(kids + p->clen, name, nl);
	struct xsd_node *n = xsd_node_new(p->path, p->value, p->vlen, kids, p->clen + (uint32_t)nl,
					  p->perms, p->nperms);
	free(kids);
	return xsd_view_put(tx, n);
}

static int xsd_children_del(struct xsd_tx *tx, const char *parent, const char *name)
{
	const struct xsd_node *p = xsd_view_get(tx, parent);
	if (!p)
		return 0;
	char *kids = malloc(p->clen + 1);
	if (!kids)
		die("malloc");
	uint32_t len = 0;
	for (uint32_t off = 0; off < p->clen;) {
		const char *k = p->children + off;
		uint32_t kl = (uint32_t)strlen(k) + 1;
		if (strcmp(k, name) != 0) {
			memcpy(kids + len, k, kl);
			len += kl;
		}
		off += kl;
	}
	struct xsd_node *n =
	    xsd_node_new(p->path, p->value, p->vlen, kids, len, p->perms, p->nperms);
	free(kids);
	return xsd_view_put(tx, n);
}

/* Create path (absent) and any missing ancestors, last one with value. */
static int xsd_create(struct xsd_conn *c, struct xsd_tx *tx, const char *path, const void *val,
		      uint32_t vlen)
{
	char anc[XENSTORE_ABS_PATH_MAX + 1];
	const struct xsd_node *a;
	unsigned int missing = 0;
	snprintf(anc, sizeof(anc), "%s", path);
	for (;;) {
		char parent[XENSTORE_ABS_PATH_MAX + 1];
		xsd_parent_path(anc, parent);
		strcpy(anc, parent);
		missing++;
		a = xsd_view_get(tx, anc);
		if (a)
			break;
		if (strcmp(anc, "/") == 0)
			return -ENOSPC; /* only a full transaction loses the root */
	}
	if (!(xsd_perm_for(c, a->perms, a->nperms) & XSD_PERM_WRITE))
		return -EACCES;
	if (!xsd_conn_privileged(c)) {
		struct xsd_domain *d = xsd_domain_get(c->domid, true);
		if (d->nnodes + missing > XSD_QUOTA_NODES)
			return -ENOSPC;
	}
	struct xsd_perm perms[XSD_SPECIAL_MAX + 64];
	uint32_t np = a->nperms < sizeof(perms) / sizeof(perms[0])
			  ? a->nperms
			  : (uint32_t)(sizeof(perms) / sizeof(perms[0]));
	memcpy(perms, a->perms, np * sizeof(perms[0]));
	if (!xsd_conn_privileged(c))
		perms[0].id = c->domid;
	/* Walk down from the ancestor, creating each level. */
	size_t alen = strlen(anc);
	while (missing--) {
		const char *start = path + (alen == 1 ? 1 : alen + 1);
		const char *slash = strchr(start, '/');
		size_t end = slash ? (size_t)(slash - path) : strlen(path);
		char cur[XENSTORE_ABS_PATH_MAX + 1];
		memcpy(cur, path, end);
		cur[end] = 0;
		bool last = missing == 0;
		int ret = xsd_view_put(
		    tx, xsd_node_new(cur, last ? val : NULL, last ? vlen : 0, NULL, 0, perms, np));
		if (!ret)
			ret = xsd_children_add(tx, anc, cur + (alen == 1 ? 1 : alen + 1));
		if (ret)
			return ret;
		strcpy(anc, cur);
		alen = end;
	}
	xsd_changed(tx, path, perms, np, false);
	return 0;
}

int xsd_op_write(struct xsd_conn *c, struct xsd_tx *tx, const char *path, const void *val,
		 uint32_t len)
{
	if (!xsd_conn_privileged(c) && len > XSD_QUOTA_NODE_SIZE)
		return -ENOSPC;
	if (!xsd_conn_privileged(c)) {
		/* Memory quota: what the write would add, parents' child lists
		 * included (racy read; the store lock is taken below). */
		struct xsd_domain *d = xsd_domain_get(c->domid, false);
		if (d && __atomic_load_n(&d->bytes, __ATOMIC_RELAXED) + len + 2 * strlen(path) +
				 sizeof(struct xsd_node) >
			     XSD_QUOTA_MEMORY)
			return -ENOMEM;
	}
	xsd_view_begin(tx);
	const struct xsd_node *n;
	int ret = xsd_check_access(c, tx, path, XSD_PERM_WRITE, &n);
	if (ret == 0) {
		struct xsd_node *nn =
		    xsd_node_new(path, val, len, n->children, n->clen, n->perms, n->nperms);
		struct xsd_perm p[XSD_SPECIAL_MAX + 64];
		uint32_t np = nn->nperms < 80 ? nn->nperms : 80;
		memcpy(p, nn->perms, np * sizeof(p[0]));
		ret = xsd_view_put(tx, nn);
		if (!ret)
			xsd_changed(tx, path, p, np, false);
	} else if (ret == -ENOENT) {
		ret = xsd_create(c, tx, path, val, len);
	}
	xsd_view_end(tx);
	return ret;
}

int xsd_op_mkdir(struct xsd_conn *c, struct xsd_tx *tx, const char *path)
{
	xsd_view_begin(tx);
	int ret = xsd_check_access(c, tx, path, XSD_PERM_WRITE, NULL);
	/* An existing node is fine; a missing one is created. */
	if (ret == -ENOENT)
		ret = xsd_create(c, tx, path, NULL, 0);
	xsd_view_end(tx);
	return ret;
}

static int xsd_rm_tree(struct xsd_tx *tx, const char *path)
{
	const struct xsd_node *n = xsd_view_get(tx, path);
	if (!n)
		return 0;
	uint32_t clen = n->clen;
	char *kids = malloc(clen + 1);
	if (!kids)
		die("malloc");
	memcpy(kids, n->children, clen);
	int ret = 0;
	for (uint32_t off = 0; off < clen && !ret;) {
		char sub[XENSTORE_ABS_PATH_MAX + 2];
		snprintf(sub, sizeof(sub), "%s/%s", strcmp(path, "/") ? path : "", kids + off);
		ret = xsd_rm_tree(tx, sub);
		off += (uint32_t)strlen(kids + off) + 1;
	}
	free(kids);
	return ret ? ret : xsd_view_del(tx, path);
}

int xsd_op_rm(struct xsd_conn *c, struct xsd_tx *tx, const char *path)
{
	if (strcmp(path, "/") == 0)
		return -EINVAL;
	xsd_view_begin(tx);
	const struct xsd_node *n;
	char parent[XENSTORE_ABS_PATH_MAX + 1];
	xsd_parent_path(path, parent);
	int ret = xsd_check_access(c, tx, path, XSD_PERM_WRITE, &n);
	if (ret == -ENOENT) {
		/* Nothing to remove is fine if the parent exists (Xen). */
		ret = xsd_view_get(tx, parent) ? 0 : -ENOENT;
	} else if (ret == 0) {
		struct xsd_perm p[80];
		uint32_t np = n->nperms < 80 ? n->nperms : 80;
		memcpy(p, n->perms, np * sizeof(p[0]));
		ret = xsd_rm_tree(tx, path);
		if (!ret)
			ret = xsd_children_del(tx, parent, strrchr(path, '/') + 1);
		if (!ret)
			xsd_changed(tx, path, p, np, true);
	}
	xsd_view_end(tx);
	return ret;
}

int xsd_op_set_perms(struct xsd_conn *c, struct xsd_tx *tx, const char *path,
		     const struct xsd_perm *p, uint32_t n)
{
	if (n == 0)
		return -EINVAL;
	if (!xsd_conn_privileged(c) && n > XSD_QUOTA_PERMS)
		return -ENOSPC;
	if (n > 64)
		return -ENOSPC;
	if (xsd_path_is_special(path)) {
		if (!xsd_conn_privileged(c))
			return -EACCES;
		pthread_mutex_lock(&xsd_store_lock);
		uint32_t *np;
		struct xsd_perm *sp = xsd_special_perms(path, &np);
		int ret = -ENOENT;
		if (sp && n <= XSD_SPECIAL_MAX) {
			memcpy(sp, p, n * sizeof(*p));
			*np = n;
			ret = 0;
		} else if (sp) {
			ret = -ENOSPC;
		}
		pthread_mutex_unlock(&xsd_store_lock);
		return ret;
	}
	xsd_view_begin(tx);
	const struct xsd_node *o;
	int ret = xsd_check_access(c, tx, path, XSD_PERM_WRITE, &o);
	if (ret == 0) {
		/* Only the owner (or a privileged domain) may change perms, and
		 * an unprivileged owner may not give the node away. */
		struct xsd_domain *d = xsd_domain_get(c->domid, false);
		bool owner = o->perms[0].id == c->domid ||
			     (d && d->has_target && o->perms[0].id == d->target);
		if (!xsd_conn_privileged(c) && !owner)
			ret = -EACCES;
		else if (!xsd_conn_privileged(c) && p[0].id != o->perms[0].id)
			ret = -EPERM;
	}
	if (ret == 0) {
		struct xsd_node *nn =
		    xsd_node_new(path, o->value, o->vlen, o->children, o->clen, p, n);
		ret = xsd_view_put(tx, nn);
		if (!ret)
			xsd_changed(tx, path, p, n, false);
	}
	xsd_view_end(tx);
	return ret;
}

/* --- transactions --------------------------------------------------------- */

struct xsd_tx *xsd_tx_new(struct xsd_conn *c)
{
	uint32_t max = xsd_conn_privileged(c) ? XSD_DOM0_MAX_TRANSACTIONS : XSD_QUOTA_TRANSACTIONS;
	if (c->ntx >= max)
		return NULL;
	struct xsd_tx *tx = calloc(1, sizeof(*tx));
	if (!tx)
		die("calloc tx");
	do
		tx->id = ++c->next_txid;
	while (tx->id == 0 || xsd_tx_find(c, tx->id));
	tx->next = c->txs;
	c->txs = tx;
	c->ntx++;
	return tx;
}

struct xsd_tx *xsd_tx_find(struct xsd_conn *c, uint32_t id)
{
	for (struct xsd_tx *t = c->txs; t; t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

uint32_t xsd_tx_id(const struct xsd_tx *tx)
{
	return tx->id;
}

static void xsd_tx_free(struct xsd_tx *tx)
{
	for (uint32_t i = 0; i < tx->nents; i++) {
		free(tx->ents[i].path);
		xsd_node_free(tx->ents[i].node);
	}
	for (uint32_t i = 0; i < tx->nevs; i++) {
		free(tx->evs[i].path);
		free(tx->evs[i].perms);
	}
	free(tx->ents);
	free(tx->evs);
	free(tx);
}

int xsd_tx_end(struct xsd_conn *c, struct xsd_tx *tx, bool commit)
{
	for (struct xsd_tx **pp = &c->txs; *pp; pp = &(*pp)->next)
		if (*pp == tx) {
			*pp = tx->next;
			c->ntx--;
			break;
		}
	int ret = 0;
	if (commit) {
		pthread_mutex_lock(&xsd_store_lock);
		rcu_read_lock();
		for (uint32_t i = 0; i < tx->nents && !ret; i++) {
			struct xsd_node *g = xsd_store_lookup(tx->ents[i].path);
			if ((g ? g->gen : 0) != tx->ents[i].seen_gen)
				ret = -EAGAIN;
		}
		for (uint32_t i = 0; i < tx->nents && !ret; i++) {
			struct xsd_txent *e = &tx->ents[i];
			if (!e->written)
				continue;
			if (e->node) {
				xsd_global_put(e->node);
				e->node = NULL;
			} else {
				xsd_global_del(e->path);
			}
		}
		for (uint32_t i = 0; i < tx->nevs && !ret; i++)
			xsd_watch_fire(tx->evs[i].path, tx->evs[i].perms, tx->evs[i].nperms,
				       tx->evs[i].recurse);
		rcu_read_unlock();
		pthread_mutex_unlock(&xsd_store_lock);
	}
	xsd_tx_free(tx);
	return ret;
}

void xsd_tx_abort_all(struct xsd_conn *c)
{
	while (c->txs)
		xsd_tx_end(c, c->txs, false);
}

/* --- domains -------------------------------------------------------------- */

void xsd_domain_forget_perms(uint16_t domid)
{
	struct cds_lfht_iter it;
	struct xsd_node *n;
	rcu_read_lock();
	cds_lfht_for_each_entry(xsd_ht, &it, n, hnode)
	{
		bool hit = false;
		for (uint32_t i = 0; i < n->nperms; i++)
			hit |= n->perms[i].id == domid;
		if (!hit)
			continue;
		struct xsd_perm p[80];
		uint32_t np = 0;
		for (uint32_t i = 0; i < n->nperms && np < 80; i++) {
			if (i == 0) {
				p[np] = n->perms[0];
				if (p[np].id == domid)
					p[np].id = 0;
				np++;
			} else if (n->perms[i].id != domid) {
				p[np++] = n->perms[i];
			}
		}
		xsd_global_put(
		    xsd_node_new(n->path, n->value, n->vlen, n->children, n->clen, p, np));
	}
	rcu_read_unlock();
}
