// SPDX-License-Identifier: MIT
// Connections of drvdom-xenstored and the request dispatcher: one function
// per xs_wire.h message type. A connection is a Unix-socket client (always
// domain 0) or a domain's ring; either way its input arrives as bytes in
// c->in and its output leaves through a bounded queue. Reads run under
// rcu_read_lock() only; mutations go through xsd_store.c, which serialises
// writers. Errors go back as errno names, as Xen's xenstored does.
#include <errno.h>

#include "xenstore/xsd.h"

#include <inttypes.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* Set by the ring transport when an hv is present: connect an introduced
 * domain's ring (0 or -errno) and tear it down. */
int (*xsd_domain_connect)(struct xsd_domain *d);
void (*xsd_domain_disconnect)(struct xsd_domain *d);

const char *xsd_errno_name(int err)
{
	for (size_t i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)
		if (xsd_errors[i].errnum == err)
			return xsd_errors[i].errstring;
	return "EIO";
}

/* Bytes held by every connection's output queue (XS_CONTROL "memory"). */
static atomic_size_t xsd_outq_bytes;

/* out_lock held. Free what is queued: nothing more goes out. */
static void xsd_conn_drop_queue(struct xsd_conn *c)
{
	while (c->out_head) {
		struct xsd_buf *b = c->out_head;
		c->out_head = b->next;
		atomic_fetch_sub(&xsd_outq_bytes, b->len);
		free(b);
	}
	c->out_tail = NULL;
	c->out_bytes = 0;
	c->out_msgs = 0;
}

struct xsd_conn *xsd_conn_new(uint16_t domid, const struct xsd_transport *tp, void *priv)
{
	struct xsd_conn *c = calloc(1, sizeof(*c));
	if (!c || !(c->in = malloc(XSD_IN_MAX)))
		die("malloc conn");
	c->domid = domid;
	c->tp = tp;
	c->tp_priv = priv;
	c->fd = -1;
	c->epfd = -1;
	pthread_mutex_init(&c->out_lock, NULL);
	return c;
}

void xsd_conn_free(struct xsd_conn *c)
{
	pthread_mutex_lock(&xsd_store_lock);
	xsd_watch_del_all(c);
	for (uint16_t d = 1; d < XSD_DOMID_MAX && c->domid; d++) {
		struct xsd_domain *dom = xsd_domain_get(d, false);
		if (dom && dom->conn == c)
			dom->conn = NULL;
	}
	pthread_mutex_unlock(&xsd_store_lock);
	xsd_tx_abort_all(c);
	pthread_mutex_lock(&c->out_lock);
	c->dead = true;
	xsd_conn_drop_queue(c);
	pthread_mutex_unlock(&c->out_lock);
	pthread_mutex_destroy(&c->out_lock);
	free(c->in);
	free(c);
}

void xsd_conn_kill(struct xsd_conn *c)
{
	c->dead = true;
	if (c->tp && c->tp->kill)
		c->tp->kill(c);
}

void xsd_conn_send(struct xsd_conn *c, uint32_t type, uint32_t req_id, uint32_t tx_id,
		   const void *data, uint32_t len)
{
	struct xsd_sockmsg h = {type, req_id, tx_id, len};
	pthread_mutex_lock(&c->out_lock);
	if (c->dead) {
		pthread_mutex_unlock(&c->out_lock);
		return;
	}
	if (c->out_bytes + sizeof(h) + len > XSD_OUTQ_MAX) {
		log_warn("connection of domain %u: %zu bytes unread, dropping it", c->domid,
			 c->out_bytes);
		/* Its memory goes now, not when its owner gets round to it: by
		 * the time the client sees the connection end, it is free. */
		c->dead = true;
		xsd_conn_drop_queue(c);
		pthread_mutex_unlock(&c->out_lock);
		xsd_conn_kill(c);
		return;
	}
	struct xsd_buf *b = malloc(sizeof(*b) + sizeof(h) + len);
	if (!b)
		die("malloc reply");
	b->next = NULL;
	b->len = (uint32_t)sizeof(h) + len;
	b->off = 0;
	memcpy(b->data, &h, sizeof(h));
	if (len)
		memcpy(b->data + sizeof(h), data, len);
	if (c->out_tail)
		c->out_tail->next = b;
	else
		c->out_head = b;
	c->out_tail = b;
	c->out_bytes += b->len;
	atomic_fetch_add(&xsd_outq_bytes, b->len);
	c->out_msgs++;
	if (c->tp && c->tp->flush)
		c->tp->flush(c);
	pthread_mutex_unlock(&c->out_lock);
}

bool xsd_conn_over(const struct xsd_conn *c)
{
	return c->out_bytes > XSD_OUTQ_THROTTLE ||
	       (!xsd_conn_privileged(c) && c->out_msgs >= XSD_QUOTA_OUTSTANDING);
}

bool xsd_conn_may_resume(const struct xsd_conn *c)
{
	return c->out_bytes <= XSD_OUTQ_THROTTLE / 2 &&
	       (xsd_conn_privileged(c) || c->out_msgs < XSD_QUOTA_OUTSTANDING / 2);
}

void xsd_conn_sent(struct xsd_conn *c, struct xsd_buf *b)
{
	c->out_head = b->next;
	if (!c->out_head)
		c->out_tail = NULL;
	c->out_msgs--;
	atomic_fetch_sub(&xsd_outq_bytes, b->len);
	free(b);
}

struct xsd_buf *xsd_conn_pop(struct xsd_conn *c)
{
	pthread_mutex_lock(&c->out_lock);
	struct xsd_buf *b = c->out_head;
	if (b) {
		c->out_head = b->next;
		if (!c->out_head)
			c->out_tail = NULL;
		c->out_bytes -= b->len - b->off;
		c->out_msgs--;
		atomic_fetch_sub(&xsd_outq_bytes, b->len);
	}
	pthread_mutex_unlock(&c->out_lock);
	return b;
}

static void xsd_reply(struct xsd_conn *c, const struct xsd_sockmsg *h, const void *d, uint32_t len)
{
	xsd_conn_send(c, h->type, h->req_id, h->tx_id, d, len);
}

static void xsd_reply_str(struct xsd_conn *c, const struct xsd_sockmsg *h, const char *s)
{
	xsd_reply(c, h, s, (uint32_t)strlen(s) + 1);
}

static void xsd_reply_err(struct xsd_conn *c, const struct xsd_sockmsg *h, int err)
{
	const char *name = xsd_errno_name(err);
	xsd_conn_send(c, XS_ERROR, h->req_id, h->tx_id, name, (uint32_t)strlen(name) + 1);
}

static void xsd_reply_ret(struct xsd_conn *c, const struct xsd_sockmsg *h, int ret)
{
	if (ret)
		xsd_reply_err(c, h, -ret);
	else
		xsd_reply_str(c, h, "OK");
}

/* Split a body of NUL-terminated strings; -EINVAL if the last one lacks
 * its NUL. Returns the number of strings (at most max are stored). */
static int xsd_args(const char *body, uint32_t len, const char **vec, int max)
{
	if (len == 0 || body[len - 1] != 0)
		return -EINVAL;
	int n = 0;
	for (uint32_t off = 0; off < len; off += (uint32_t)strlen(body + off) + 1) {
		if (n < max)
			vec[n] = body + off;
		n++;
	}
	return n;
}

static int xsd_parse_domid(const char *s, uint16_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v >= XSD_DOMID_MAX)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

static void xsd_do_read(struct xsd_conn *c, const struct xsd_sockmsg *h, const char *body,
			struct xsd_tx *tx)
{
	const char *vec[2];
	int na = xsd_args(body, h->len, vec, 2);
	int want = h->type == XS_DIRECTORY_PART ? 2 : 1;
	if (na != want) {
		xsd_reply_err(c, h, EINVAL);
		return;
	}
	char path[XENSTORE_ABS_PATH_MAX + 64];
	int ret =
	    xsd_path_canon(c->domid, vec[0], h->type == XS_GET_PERMS, path, sizeof(path), NULL);
	if (ret) {
		xsd_reply_err(c, h, -ret);
		return;
	}
	char out[XENSTORE_PAYLOAD_MAX];
	uint32_t olen = 0;
	if (xsd_path_is_special(path)) {
		pthread_mutex_lock(&xsd_store_lock);
		uint32_t *np;
		struct xsd_perm *sp = xsd_special_perms(path, &np);
		ret = sp && h->type == XS_GET_PERMS ? 0 : -ENOENT;
		for (uint32_t i = 0; !ret && i < *np; i++)
			olen += (uint32_t)xsd_perm_format(&sp[i], out + olen, 16) + 1;
		pthread_mutex_unlock(&xsd_store_lock);
		goto done;
	}
	rcu_read_lock();
	const struct xsd_node *n;
	ret = xsd_check_access(c, tx, path, XSD_PERM_READ, &n);
	if (ret)
		goto unlock;
	switch (h->type) {
	case XS_READ:
		olen = n->vlen; /* a value never exceeds a payload */
		memcpy(out, n->value, olen);
		break;
	case XS_DIRECTORY:
		if (n->clen > XENSTORE_PAYLOAD_MAX) {
			ret = -E2BIG;
			break;
		}
		olen = n->clen;
		memcpy(out, n->children, olen);
		break;
	case XS_DIRECTORY_PART: {
		char *end;
		errno = 0;
		unsigned long off = strtoul(vec[1], &end, 10);
		if (!*vec[1] || *end || errno || off > n->clen) {
			ret = -EINVAL;
			break;
		}
		olen = (uint32_t)snprintf(out, sizeof(out), "%" PRIu64, n->gen) + 1;
		/* Whole names that fit, then an empty string if that was all. */
		while (off < n->clen) {
			uint32_t kl = (uint32_t)strlen(n->children + off) + 1;
			if (olen + kl + 1 > XENSTORE_PAYLOAD_MAX)
				break;
			memcpy(out + olen, n->children + off, kl);
			olen += kl;
			off += kl;
		}
		if (off >= n->clen)
			out[olen++] = 0;
		break;
	}
	case XS_GET_PERMS:
		for (uint32_t i = 0; i < n->nperms; i++)
			olen += (uint32_t)xsd_perm_format(&n->perms[i], out + olen, 16) + 1;
		break;
	}
unlock:
	rcu_read_unlock();
done:
	if (ret)
		xsd_reply_err(c, h, -ret);
	else
		xsd_reply(c, h, out, olen);
}

static void xsd_do_write(struct xsd_conn *c, const struct xsd_sockmsg *h, const char *body,
			 struct xsd_tx *tx)
{
	const char *nul = memchr(body, 0, h->len);
	char path[XENSTORE_ABS_PATH_MAX + 64];
	if (!nul) {
		xsd_reply_err(c, h, EINVAL);
		return;
	}
	int ret = xsd_path_canon(c->domid, body, false, path, sizeof(path), NULL);
	if (!ret) {
		uint32_t plen = (uint32_t)(nul - body) + 1;
		ret = xsd_op_write(c, tx, path, body + plen, h->len - plen);
	}
	xsd_reply_ret(c, h, ret);
}

static void xsd_do_path_op(struct xsd_conn *c, const struct xsd_sockmsg *h, const char *body,
			   struct xsd_tx *tx)
{
	const char *vec[1];
	char path[XENSTORE_ABS_PATH_MAX + 64];
	if (xsd_args(body, h->len, vec, 1) != 1) {
		xsd_reply_err(c, h, EINVAL);
		return;
	}
	int ret = xsd_path_canon(c->domid, vec[0], false, path, sizeof(path), NULL);
	if (!ret)
		ret = h->type == XS_MKDIR ? xsd_op_mkdir(c, tx, path) : xsd_op_rm(c, tx, path);
	xsd_reply_ret(c, h, ret);
}

static void xsd_do_set_perms(struct xsd_conn *c, const struct xsd_sockmsg *h, const char *body,
			     struct xsd_tx *tx)
{
	const char *vec[66];
	struct xsd_perm p[65];
	char path[XENSTORE_ABS_PATH_MAX + 64];
	int na = xsd_args(body, h->len, vec, 66);
	int ret = na < 2 ? -EINVAL : na > 66 ? -ENOSPC : 0;
	if (!ret)
		ret = xsd_path_canon(c->domid, vec[0], true, path, sizeof(path), NULL);
	for (int i = 1; !ret && i < na; i++)
		ret = xsd_perm_parse(vec[i], &p[i - 1]);
	if (!ret)
		ret = xsd_op_set_perms(c, tx, path, p, (uint32_t)na - 1);
	xsd_reply_ret(c, h, ret);
}

static void xsd_do_watch(struct xsd_conn *c, const struct xsd_sockmsg *h, const char *body)
{
	const char *vec[2];
	char path[XENSTORE_ABS_PATH_MAX + 64];
	uint32_t rel_off = 0;
	int ret = xsd_args(body, h->len, vec, 2) == 2 ? 0 : -EINVAL;
	if (!ret)
		ret = xsd_path_canon(c->domid, vec[0], true, path, sizeof(path), &rel_off);
	if (ret) {
		xsd_reply_err(c, h, -ret);
		return;
	}
	pthread_mutex_lock(&xsd_store_lock);
	if (h->type == XS_WATCH) {
		ret = xsd_watch_add(c, path, vec[1], rel_off);
		xsd_reply_ret(c, h, ret);
		if (!ret)
			xsd_watch_initial(c, path, vec[1], rel_off);
	} else {
		xsd_reply_ret(c, h, xsd_watch_del(c, path, vec[1]));
	}
	pthread_mutex_unlock(&xsd_store_lock);
}

static void xsd_do_tx_start(struct xsd_conn *c, const struct xsd_sockmsg *h, const char *body)
{
	const char *vec[1];
	if (xsd_args(body, h->len, vec, 1) < 1) {
		xsd_reply_err(c, h, EINVAL);
		return;
	}
	if (h->tx_id) {
		xsd_reply_err(c, h, EBUSY);
		return;
	}
	struct xsd_tx *tx = xsd_tx_new(c);
	if (!tx) {
		xsd_reply_err(c, h, ENOSPC);
		return;
	}
	char id[16];
	snprintf(id, sizeof(id), "%u", xsd_tx_id(tx));
	xsd_reply_str(c, h, id);
}

static void xsd_do_tx_end(struct xsd_conn *c, const struct xsd_sockmsg *h, const char *body,
			  struct xsd_tx *tx)
{
	const char *vec[1];
	if (xsd_args(body, h->len, vec, 1) != 1 ||
	    (strcmp(vec[0], "T") != 0 && strcmp(vec[0], "F") != 0)) {
		xsd_reply_err(c, h, EINVAL);
		return;
	}
	if (!tx) {
		xsd_reply_err(c, h, ENOENT);
		return;
	}
	xsd_reply_ret(c, h, xsd_tx_end(c, tx, vec[0][0] == 'T'));
}

static void xsd_fire_special(const char *name)
{
	uint32_t *np;
	struct xsd_perm *sp = xsd_special_perms(name, &np);
	xsd_watch_fire(name, sp, *np, false);
}

int xsd_domain_introduce(uint16_t domid, uint64_t gfn, uint32_t port)
{
	if (domid == 0)
		return -EINVAL;
	struct xsd_domain *d = xsd_domain_get(domid, true);
	if (d->introduced)
		return d->gfn == gfn && d->port == port ? 0 : -EEXIST;
	d->gfn = gfn;
	d->port = port;
	if (xsd_domain_connect) {
		int ret = xsd_domain_connect(d);
		if (ret)
			return ret;
	}
	d->introduced = true;
	d->has_target = false;
	xsd_fire_special("@introduceDomain");
	return 0;
}

/* Forget a domain: called for XS_RELEASE and when the hv reports its
 * death. Under xsd_store_lock. */
int xsd_domain_release(uint16_t domid)
{
	return xsd_domain_release_keep(domid, false);
}

int xsd_domain_release_keep(uint16_t domid, bool keep_perms)
{
	struct xsd_domain *d = xsd_domain_get(domid, false);
	if (domid == 0)
		return -EINVAL;
	if (!d || !d->introduced)
		return -ENOENT;
	d->introduced = false;
	__atomic_store_n(&d->has_target, false, __ATOMIC_RELEASE);
	if (d->conn) {
		xsd_watch_del_all(d->conn);
		xsd_conn_kill(d->conn);
	}
	if (xsd_domain_disconnect)
		xsd_domain_disconnect(d);
	if (!keep_perms)
		xsd_domain_forget_perms(domid);
	xsd_fire_special("@releaseDomain");
	return 0;
}

static void xsd_do_domain(struct xsd_conn *c, const struct xsd_sockmsg *h, const char *body)
{
	const char *vec[3];
	int na = xsd_args(body, h->len, vec, 3);
	uint16_t domid = 0, target = 0;
	char out[64];
	int ret = na < 1 ? -EINVAL : xsd_parse_domid(vec[0], &domid);
	if (ret) {
		xsd_reply_err(c, h, -ret);
		return;
	}
	if (h->type == XS_GET_DOMAIN_PATH) {
		snprintf(out, sizeof(out), "/local/domain/%u", domid);
		xsd_reply_str(c, h, out);
		return;
	}
	pthread_mutex_lock(&xsd_store_lock);
	struct xsd_domain *d = xsd_domain_get(domid, false);
	bool known = domid == 0 || (d && d->introduced);
	if (h->type == XS_IS_DOMAIN_INTRODUCED) {
		xsd_reply_str(c, h, known ? "T" : "F");
		goto out;
	}
	if (!xsd_conn_privileged(c)) {
		ret = -EACCES;
	} else if (h->type == XS_INTRODUCE) {
		char *e1, *e2;
		errno = 0;
		unsigned long long gfn = na == 3 ? strtoull(vec[1], &e1, 0) : 0;
		unsigned long port = na == 3 ? strtoul(vec[2], &e2, 10) : 0;
		if (na != 3 || !*vec[1] || *e1 || !*vec[2] || *e2 || errno || port > 4095)
			ret = -EINVAL;
		else
			ret = xsd_domain_introduce(domid, gfn, (uint32_t)port);
	} else if (h->type == XS_RELEASE) {
		ret = na == 1 ? xsd_domain_release(domid) : -EINVAL;
	} else if (h->type == XS_RESUME) {
		ret = na != 1 ? -EINVAL : domid == 0 ? -EINVAL : known ? 0 : -ENOENT;
	} else { /* XS_SET_TARGET */
		ret = na != 2 ? -EINVAL : xsd_parse_domid(vec[1], &target);
		if (!ret && (!known || domid == 0))
			ret = domid == 0 ? -EINVAL : -ENOENT;
		if (!ret) {
			d->target = target;
			__atomic_store_n(&d->has_target, true, __ATOMIC_RELEASE);
		}
	}
	xsd_reply_ret(c, h, ret);
out:
	pthread_mutex_unlock(&xsd_store_lock);
}

static void xsd_do_control(struct xsd_conn *c, const struct xsd_sockmsg *h, const char *body)
{
	const char *vec[2];
	int na = xsd_args(body, h->len, vec, 2);
	if (!xsd_conn_privileged(c)) {
		xsd_reply_err(c, h, EACCES);
	} else if (na < 1) {
		xsd_reply_err(c, h, EINVAL);
	} else if (strcmp(vec[0], "print") == 0 && na >= 2) {
		log_info("control: %s", vec[1]);
		xsd_reply_str(c, h, "OK");
	} else if (strcmp(vec[0], "check") == 0) {
		xsd_reply_str(c, h, "OK");
	} else if (strcmp(vec[0], "help") == 0) {
		xsd_reply_str(c, h,
			      "Supported commands:\ncheck\nhelp\nmemory\nprint <string>\nquota\n");
	} else if (strcmp(vec[0], "memory") == 0) {
		/* Wait for every deferred free queued so far (old node versions
		 * go after a grace period) and give free heap back to the
		 * system, so what remains, and RSS, is what is live: a point a
		 * test can measure at without waiting for reclamation to catch
		 * up. Heap bytes: malloc'ed and not freed, every arena (RSS
		 * also depends on how the arenas are fragmented). Blocks this
		 * worker for a grace period. */
		rcu_barrier();
		malloc_trim(0);
		struct mallinfo2 mi = mallinfo2(); /* all arenas */
		char out[160];
		snprintf(out, sizeof(out),
			 "nodes: %" PRIu64 "\nqueued bytes: %zu\nheap bytes: %zu\n",
			 xsd_store_nodes(), atomic_load(&xsd_outq_bytes), mi.uordblks + mi.hblkhd);
		xsd_reply_str(c, h, out);
	} else if (strcmp(vec[0], "quota") == 0) {
		char out[256];
		snprintf(out, sizeof(out),
			 "Quota settings:\nnodes: %d\nwatches: %d\ntransactions: %d\n"
			 "node size: %d\npermissions: %d\noutstanding: %d\n",
			 XSD_QUOTA_NODES, XSD_QUOTA_WATCHES, XSD_QUOTA_TRANSACTIONS,
			 XSD_QUOTA_NODE_SIZE, XSD_QUOTA_PERMS, XSD_QUOTA_OUTSTANDING);
		xsd_reply_str(c, h, out);
	} else {
		xsd_reply_err(c, h, EINVAL);
	}
}

void xsd_conn_handle(struct xsd_conn *c, const struct xsd_sockmsg *h, const char *body)
{
	struct xsd_tx *tx = NULL;
	switch (h->type) {
	case XS_DIRECTORY:
	case XS_DIRECTORY_PART:
	case XS_READ:
	case XS_GET_PERMS:
	case XS_WRITE:
	case XS_MKDIR:
	case XS_RM:
	case XS_SET_PERMS:
	case XS_TRANSACTION_END:
		if (h->tx_id && !(tx = xsd_tx_find(c, h->tx_id))) {
			xsd_reply_err(c, h, ENOENT);
			return;
		}
		break;
	}
	switch (h->type) {
	case XS_DIRECTORY:
	case XS_DIRECTORY_PART:
	case XS_READ:
	case XS_GET_PERMS:
		xsd_do_read(c, h, body, tx);
		break;
	case XS_WRITE:
		xsd_do_write(c, h, body, tx);
		break;
	case XS_MKDIR:
	case XS_RM:
		xsd_do_path_op(c, h, body, tx);
		break;
	case XS_SET_PERMS:
		xsd_do_set_perms(c, h, body, tx);
		break;
	case XS_WATCH:
	case XS_UNWATCH:
		xsd_do_watch(c, h, body);
		break;
	case XS_TRANSACTION_START:
		xsd_do_tx_start(c, h, body);
		break;
	case XS_TRANSACTION_END:
		xsd_do_tx_end(c, h, body, tx);
		break;
	case XS_INTRODUCE:
	case XS_RELEASE:
	case XS_GET_DOMAIN_PATH:
	case XS_IS_DOMAIN_INTRODUCED:
	case XS_RESUME:
	case XS_SET_TARGET:
		xsd_do_domain(c, h, body);
		break;
	case XS_CONTROL:
		xsd_do_control(c, h, body);
		break;
	case XS_RESET_WATCHES:
		pthread_mutex_lock(&xsd_store_lock);
		xsd_watch_del_all(c);
		pthread_mutex_unlock(&xsd_store_lock);
		xsd_tx_abort_all(c);
		xsd_reply_str(c, h, "OK");
		break;
	case XS_WATCH_EVENT:
	case XS_ERROR:
		xsd_reply_err(c, h, EINVAL);
		break;
	default:
		xsd_reply_err(c, h, ENOSYS);
		break;
	}
}

int xsd_conn_input(struct xsd_conn *c)
{
	uint32_t off = 0;
	int ret = 0;
	static _Thread_local char body[XENSTORE_PAYLOAD_MAX + 1];
	while (c->in_len - off >= sizeof(struct xsd_sockmsg) && !c->dead) {
		struct xsd_sockmsg h;
		memcpy(&h, c->in + off, sizeof(h));
		if (h.len > XENSTORE_PAYLOAD_MAX) {
			log_warn("domain %u sent a %u-byte message: dropping it", c->domid, h.len);
			ret = -EPROTO;
			break;
		}
		if (c->in_len - off < sizeof(h) + h.len)
			break;
		pthread_mutex_lock(&c->out_lock);
		c->throttled = xsd_conn_over(c);
		if (c->throttled && c->tp && c->tp->flush)
			c->tp->flush(c);
		pthread_mutex_unlock(&c->out_lock);
		if (c->throttled)
			break;
		memcpy(body, c->in + off + sizeof(h), h.len);
		body[h.len] = 0;
		off += (uint32_t)sizeof(h) + h.len;
		xsd_conn_handle(c, &h, body);
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return ret;
}
