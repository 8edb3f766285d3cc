// SPDX-License-Identifier: MIT
// Unit tests of drvdom-xenstored's store, permission, path, watch,
// transaction and quota logic (xenstore/xsd_*.c), driven through the request
// dispatcher with in-memory connections: each test builds xs_wire requests,
// hands them to xsd_conn_handle() and checks the queued replies.
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xenstore/xsd.h"

struct reply {
	uint32_t type, req_id, tx_id, len;
	char body[XENSTORE_PAYLOAD_MAX + 1];
};

static void setup(void)
{
	rcu_register_thread();
	xsd_store_init();
}

static struct xsd_conn *conn(uint16_t domid)
{
	return xsd_conn_new(domid, NULL, NULL);
}

static bool pop(struct xsd_conn *c, struct reply *r)
{
	struct xsd_buf *b = xsd_conn_pop(c);
	if (!b)
		return false;
	struct xsd_sockmsg h;
	memcpy(&h, b->data, sizeof(h));
	r->type = h.type;
	r->req_id = h.req_id;
	r->tx_id = h.tx_id;
	r->len = h.len;
	memcpy(r->body, b->data + sizeof(h), h.len);
	r->body[h.len] = 0;
	free(b);
	return true;
}

/* Send a request whose body is len bytes; return the reply (not events). */
static struct reply *req(struct xsd_conn *c, uint32_t type, uint32_t tx, const void *body,
			 uint32_t len)
{
	static struct reply r;
	static char buf[XENSTORE_PAYLOAD_MAX + 1];
	struct xsd_sockmsg h = {type, 77, tx, len};
	memcpy(buf, body, len);
	buf[len] = 0;
	xsd_conn_handle(c, &h, buf);
	/* Watch events queued before the reply go back to the queue. */
	static struct reply ev[256];
	int nev = 0;
	for (;;) {
		ck_assert(pop(c, &r));
		if (r.type != XS_WATCH_EVENT)
			break;
		ck_assert_int_lt(nev, 256);
		ev[nev++] = r;
	}
	for (int i = 0; i < nev; i++)
		xsd_conn_send(c, XS_WATCH_EVENT, 0, 0, ev[i].body, ev[i].len);
	ck_assert_uint_eq(r.req_id, 77);
	return &r;
}

/* Requests made of NUL-terminated strings: "a\0b\0" from ("a", "b"). */
static struct reply *reqs(struct xsd_conn *c, uint32_t type, uint32_t tx, int n, ...)
{
	char buf[XENSTORE_PAYLOAD_MAX];
	uint32_t len = 0;
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		const char *s = va_arg(ap, const char *);
		memcpy(buf + len, s, strlen(s) + 1);
		len += (uint32_t)strlen(s) + 1;
	}
	va_end(ap);
	return req(c, type, tx, buf, len);
}

static struct reply *wr(struct xsd_conn *c, uint32_t tx, const char *path, const char *val)
{
	char buf[XENSTORE_PAYLOAD_MAX];
	size_t pl = strlen(path) + 1;
	memcpy(buf, path, pl);
	memcpy(buf + pl, val, strlen(val));
	return req(c, XS_WRITE, tx, buf, (uint32_t)(pl + strlen(val)));
}

#define ck_ok(r) ck_assert_str_eq((r)->body, "OK")
#define ck_err(r, e)                                                                               \
	do {                                                                                       \
		struct reply *r_ = (r);                                                            \
		ck_assert_uint_eq(r_->type, XS_ERROR);                                             \
		ck_assert_str_eq(r_->body, e);                                                     \
	} while (0)

START_TEST(paths_are_validated_like_xen)
{
	char out[4096];
	uint32_t off;
	ck_assert_int_eq(xsd_path_canon(3, "/a/b", false, out, sizeof(out), &off), 0);
	ck_assert_str_eq(out, "/a/b");
	ck_assert_int_eq(xsd_path_canon(3, "device/vbd", false, out, sizeof(out), &off), 0);
	ck_assert_str_eq(out, "/local/domain/3/device/vbd");
	ck_assert_uint_eq(off, strlen("/local/domain/3/"));
	ck_assert_int_eq(xsd_path_canon(0, "/", false, out, sizeof(out), NULL), 0);
	ck_assert_int_eq(xsd_path_canon(0, "/a//b", false, out, sizeof(out), NULL), -EINVAL);
	ck_assert_int_eq(xsd_path_canon(0, "/a/", false, out, sizeof(out), NULL), -EINVAL);
	ck_assert_int_eq(xsd_path_canon(0, "/a b", false, out, sizeof(out), NULL), -EINVAL);
	ck_assert_int_eq(xsd_path_canon(0, "@releaseDomain", false, out, sizeof(out), NULL),
			 -EINVAL);
	ck_assert_int_eq(xsd_path_canon(0, "@releaseDomain", true, out, sizeof(out), NULL), 0);
	char longp[XENSTORE_ABS_PATH_MAX + 2];
	memset(longp, 'x', sizeof(longp));
	longp[0] = '/';
	longp[XENSTORE_ABS_PATH_MAX] = 0; /* exactly the limit */
	ck_assert_int_eq(xsd_path_canon(0, longp, false, out, sizeof(out), NULL), 0);
	longp[XENSTORE_ABS_PATH_MAX] = 'x';
	longp[XENSTORE_ABS_PATH_MAX + 1] = 0;
	ck_assert_int_eq(xsd_path_canon(0, longp, false, out, sizeof(out), NULL), -EINVAL);
	char rel[XENSTORE_REL_PATH_MAX + 2];
	memset(rel, 'y', sizeof(rel));
	rel[XENSTORE_REL_PATH_MAX + 1] = 0;
	ck_assert_int_eq(xsd_path_canon(1, rel, false, out, sizeof(out), NULL), -EINVAL);
	rel[XENSTORE_REL_PATH_MAX] = 0;
	ck_assert_int_eq(xsd_path_canon(1, rel, false, out, sizeof(out), NULL), 0);
}
END_TEST

START_TEST(perm_strings_round_trip)
{
	struct xsd_perm p;
	char s[16];
	ck_assert_int_eq(xsd_perm_parse("b12", &p), 0);
	ck_assert_uint_eq(p.id, 12);
	ck_assert_uint_eq(p.perms, XSD_PERM_BOTH);
	xsd_perm_format(&p, s, sizeof(s));
	ck_assert_str_eq(s, "b12");
	ck_assert_int_eq(xsd_perm_parse("x1", &p), -EINVAL);
	ck_assert_int_eq(xsd_perm_parse("r", &p), -EINVAL);
	ck_assert_int_eq(xsd_perm_parse("r1x", &p), -EINVAL);
}
END_TEST

START_TEST(write_read_directory_rm)
{
	struct xsd_conn *c = conn(0);
	ck_ok(wr(c, 0, "/a/b/c", "hello"));
	struct reply *r = reqs(c, XS_READ, 0, 1, "/a/b/c");
	ck_assert_uint_eq(r->type, XS_READ);
	ck_assert_uint_eq(r->len, 5);
	ck_assert_str_eq(r->body, "hello");
	/* Implicit parents exist, empty. */
	r = reqs(c, XS_READ, 0, 1, "/a/b");
	ck_assert_uint_eq(r->len, 0);
	ck_ok(wr(c, 0, "/a/b/d", ""));
	r = reqs(c, XS_DIRECTORY, 0, 1, "/a/b");
	ck_assert_uint_eq(r->len, 4);
	ck_assert(memcmp(r->body, "c\0d\0", 4) == 0);
	ck_ok(reqs(c, XS_MKDIR, 0, 1, "/a/b")); /* existing: fine */
	ck_ok(reqs(c, XS_RM, 0, 1, "/a/b"));
	ck_err(reqs(c, XS_READ, 0, 1, "/a/b/c"), "ENOENT");
	ck_ok(reqs(c, XS_RM, 0, 1, "/a/zz")); /* parent exists */
	ck_err(reqs(c, XS_RM, 0, 1, "/q/zz"), "ENOENT");
	ck_err(reqs(c, XS_RM, 0, 1, "/"), "EINVAL");
	r = reqs(c, XS_DIRECTORY, 0, 1, "/a");
	ck_assert_uint_eq(r->len, 0);
	r = reqs(c, XS_GET_PERMS, 0, 1, "/a");
	ck_assert_str_eq(r->body, "n0");
	xsd_conn_free(c);
}
END_TEST

START_TEST(directory_part_pages_large_dirs)
{
	struct xsd_conn *c = conn(0);
	char p[64];
	for (int i = 0; i < 400; i++) {
		snprintf(p, sizeof(p), "/big/child-number-%04d", i);
		ck_ok(wr(c, 0, p, "v"));
	}
	ck_err(reqs(c, XS_DIRECTORY, 0, 1, "/big"), "E2BIG");
	unsigned long off = 0;
	int names = 0;
	char gen[32] = "";
	for (int part = 0; part < 10; part++) {
		char o[16];
		snprintf(o, sizeof(o), "%lu", off);
		struct reply *r = reqs(c, XS_DIRECTORY_PART, 0, 2, "/big", o);
		ck_assert_uint_eq(r->type, XS_DIRECTORY_PART);
		if (!gen[0])
			snprintf(gen, sizeof(gen), "%.31s", r->body);
		ck_assert_str_eq(r->body, gen);
		uint32_t i = (uint32_t)strlen(r->body) + 1;
		bool end = false;
		while (i < r->len) {
			size_t l = strlen(r->body + i);
			if (l == 0) {
				end = true;
				break;
			}
			names++;
			off += l + 1;
			i += (uint32_t)l + 1;
		}
		if (end)
			break;
	}
	ck_assert_int_eq(names, 400);
	xsd_conn_free(c);
}
END_TEST

START_TEST(permissions_owner_default_and_acl)
{
	struct xsd_conn *d0 = conn(0), *d5 = conn(5), *d6 = conn(6), *d7 = conn(7);
	ck_ok(wr(d0, 0, "/vm/x", "secret"));
	ck_err(reqs(d5, XS_READ, 0, 1, "/vm/x"), "EACCES");
	ck_err(wr(d5, 0, "/vm/x", "no"), "EACCES");
	ck_err(wr(d5, 0, "/vm/new", "no"), "EACCES");		  /* parent not writable */
	ck_err(reqs(d5, XS_READ, 0, 1, "/vm/missing"), "EACCES"); /* parent unreadable */
	/* owner 5, everyone read, domain 6 nothing */
	ck_ok(reqs(d0, XS_SET_PERMS, 0, 3, "/vm/x", "r5", "n6"));
	ck_assert_str_eq(reqs(d5, XS_READ, 0, 1, "/vm/x")->body, "secret");
	ck_ok(wr(d5, 0, "/vm/x", "mine")); /* owner: full access */
	ck_assert_str_eq(reqs(d7, XS_READ, 0, 1, "/vm/x")->body, "mine");
	ck_err(reqs(d6, XS_READ, 0, 1, "/vm/x"), "EACCES");
	ck_err(wr(d7, 0, "/vm/x", "no"), "EACCES");
	/* Only the owner changes perms, and may not give the node away. */
	ck_err(reqs(d7, XS_SET_PERMS, 0, 2, "/vm/x", "b7"), "EACCES");
	ck_err(reqs(d5, XS_SET_PERMS, 0, 2, "/vm/x", "b7"), "EPERM");
	ck_ok(reqs(d5, XS_SET_PERMS, 0, 3, "/vm/x", "n5", "w7"));
	ck_ok(wr(d7, 0, "/vm/x", "seven"));
	ck_err(reqs(d7, XS_READ, 0, 1, "/vm/x"), "EACCES");
	/* A node a domain creates under a writable parent is its own. */
	ck_ok(wr(d0, 0, "/local/domain/5", ""));
	ck_ok(reqs(d0, XS_SET_PERMS, 0, 2, "/local/domain/5", "n5"));
	ck_ok(wr(d5, 0, "data/k", "v")); /* relative to /local/domain/5 */
	struct reply *r = reqs(d0, XS_GET_PERMS, 0, 1, "/local/domain/5/data/k");
	ck_assert_str_eq(r->body, "n5");
	ck_err(reqs(d5, XS_SET_PERMS, 0, 2, "data/k", "bad"), "EINVAL");
	ck_err(reqs(d5, XS_INTRODUCE, 0, 3, "9", "1", "1"), "EACCES");
	ck_err(reqs(d5, XS_RELEASE, 0, 1, "9"), "EACCES");
	ck_err(reqs(d5, XS_CONTROL, 0, 1, "check"), "EACCES");
	ck_err(reqs(d5, XS_SET_PERMS, 0, 2, "@releaseDomain", "r5"), "EACCES");
	xsd_conn_free(d0);
	xsd_conn_free(d5);
	xsd_conn_free(d6);
	xsd_conn_free(d7);
}
END_TEST

static int count_events(struct xsd_conn *c, const char *path, const char *token)
{
	struct reply r;
	int n = 0;
	while (pop(c, &r)) {
		ck_assert_uint_eq(r.type, XS_WATCH_EVENT);
		if (strcmp(r.body, path) == 0 && strcmp(r.body + strlen(r.body) + 1, token) == 0)
			n++;
	}
	return n;
}

START_TEST(watches_fire_below_and_only_to_readers)
{
	struct xsd_conn *d0 = conn(0), *w = conn(0), *d5 = conn(5);
	ck_ok(wr(d0, 0, "/w", ""));
	ck_ok(reqs(w, XS_WATCH, 0, 2, "/w", "tok"));
	ck_assert_int_eq(count_events(w, "/w", "tok"), 1); /* fires on registration */
	ck_err(reqs(w, XS_WATCH, 0, 2, "/w", "tok"), "EEXIST");
	ck_ok(reqs(d5, XS_WATCH, 0, 2, "/w", "t5"));
	ck_assert_int_eq(count_events(d5, "/w", "t5"), 1);
	ck_ok(wr(d0, 0, "/w/a/b", "1"));
	ck_assert_int_eq(count_events(w, "/w/a/b", "tok"), 1);
	ck_assert_int_eq(count_events(d5, "/w/a/b", "t5"), 0); /* cannot read it */
	ck_ok(wr(d0, 0, "/wx", "1"));			       /* not below /w */
	ck_assert_int_eq(count_events(w, "/wx", "tok"), 0);
	/* Removing a parent fires watches on nodes below it. */
	ck_ok(reqs(w, XS_WATCH, 0, 2, "/w/a/b", "deep"));
	ck_assert_int_eq(count_events(w, "/w/a/b", "deep"), 1);
	ck_ok(reqs(d0, XS_RM, 0, 1, "/w/a"));
	struct reply r;
	int deep = 0, top = 0;
	while (pop(w, &r)) {
		const char *tok = r.body + strlen(r.body) + 1;
		deep += strcmp(r.body, "/w/a/b") == 0 && strcmp(tok, "deep") == 0;
		top += strcmp(r.body, "/w/a") == 0 && strcmp(tok, "tok") == 0;
	}
	ck_assert_int_eq(deep, 1);
	ck_assert_int_eq(top, 1);
	ck_ok(reqs(w, XS_UNWATCH, 0, 2, "/w", "tok"));
	ck_err(reqs(w, XS_UNWATCH, 0, 2, "/w", "tok"), "ENOENT");
	ck_ok(wr(d0, 0, "/w/c", "1"));
	ck_assert_int_eq(count_events(w, "/w/c", "tok"), 0);
	/* Relative watches report relative paths. */
	ck_ok(wr(d0, 0, "/local/domain/5", ""));
	ck_ok(reqs(d0, XS_SET_PERMS, 0, 2, "/local/domain/5", "n5"));
	ck_ok(wr(d0, 0, "/local/domain/5/dev", ""));
	ck_ok(reqs(d5, XS_WATCH, 0, 2, "dev", "rel"));
	ck_assert_int_eq(count_events(d5, "dev", "rel"), 1);
	ck_ok(wr(d0, 0, "/local/domain/5/dev/x", "1"));
	ck_assert_int_eq(count_events(d5, "dev/x", "rel"), 1);
	xsd_conn_free(d0);
	xsd_conn_free(w);
	xsd_conn_free(d5);
}
END_TEST

START_TEST(watch_event_too_large_is_not_sent)
{
	struct xsd_conn *c = conn(0);
	char token[XENSTORE_PAYLOAD_MAX];
	memset(token, 't', sizeof(token));
	token[XENSTORE_PAYLOAD_MAX - 4] = 0; /* "/e\0" + token + NUL = 4096 */
	ck_ok(reqs(c, XS_WATCH, 0, 2, "/e", token));
	struct reply r;
	ck_assert(pop(c, &r)); /* the registration event fits exactly */
	ck_assert_uint_eq(r.len, XENSTORE_PAYLOAD_MAX);
	ck_ok(wr(c, 0, "/e/longer", "x")); /* would be 4103 bytes: dropped */
	ck_assert(!pop(c, &r));
	ck_ok(wr(c, 0, "/e", "y")); /* fits: delivered */
	ck_assert(pop(c, &r));
	ck_assert_uint_eq(r.type, XS_WATCH_EVENT);
	xsd_conn_free(c);
}
END_TEST

static uint32_t tx_start(struct xsd_conn *c)
{
	struct reply *r = reqs(c, XS_TRANSACTION_START, 0, 1, "");
	ck_assert_uint_eq(r->type, XS_TRANSACTION_START);
	return (uint32_t)strtoul(r->body, NULL, 10);
}

START_TEST(transactions_snapshot_and_conflict)
{
	struct xsd_conn *a = conn(0), *b = conn(0);
	ck_ok(wr(a, 0, "/t/x", "1"));
	uint32_t t = tx_start(a);
	ck_assert_uint_ne(t, 0);
	ck_assert_str_eq(reqs(a, XS_READ, t, 1, "/t/x")->body, "1");
	ck_ok(wr(a, t, "/t/y", "2"));
	/* Not visible outside before commit. */
	ck_err(reqs(b, XS_READ, 0, 1, "/t/y"), "ENOENT");
	ck_assert_str_eq(reqs(a, XS_READ, t, 1, "/t/y")->body, "2");
	ck_ok(reqs(a, XS_TRANSACTION_END, t, 1, "T"));
	ck_assert_str_eq(reqs(b, XS_READ, 0, 1, "/t/y")->body, "2");

	/* Conflict: b changes what a's transaction read. */
	t = tx_start(a);
	ck_assert_str_eq(reqs(a, XS_READ, t, 1, "/t/x")->body, "1");
	ck_ok(wr(b, 0, "/t/x", "changed"));
	ck_assert_str_eq(reqs(a, XS_READ, t, 1, "/t/x")->body, "1"); /* snapshot */
	ck_ok(wr(a, t, "/t/z", "3"));
	ck_err(reqs(a, XS_TRANSACTION_END, t, 1, "T"), "EAGAIN");
	ck_err(reqs(b, XS_READ, 0, 1, "/t/z"), "ENOENT");
	/* The id is gone after the end; bogus ids get ENOENT. */
	ck_err(reqs(a, XS_READ, t, 1, "/t/x"), "ENOENT");
	ck_err(reqs(a, XS_TRANSACTION_END, 4242, 1, "T"), "ENOENT");
	ck_err(reqs(b, XS_READ, t, 1, "/t/x"), "ENOENT"); /* not b's */
	/* Abort discards; bad argument is EINVAL. */
	t = tx_start(a);
	ck_ok(reqs(a, XS_RM, t, 1, "/t"));
	ck_err(reqs(a, XS_TRANSACTION_END, t, 1, "X"), "EINVAL");
	ck_ok(reqs(a, XS_TRANSACTION_END, t, 1, "F"));
	ck_assert_str_eq(reqs(b, XS_READ, 0, 1, "/t/x")->body, "changed");
	/* Watches fire on commit only. */
	ck_ok(reqs(b, XS_WATCH, 0, 2, "/t", "k"));
	ck_assert_int_eq(count_events(b, "/t", "k"), 1);
	t = tx_start(a);
	ck_ok(wr(a, t, "/t/w", "1"));
	ck_assert_int_eq(count_events(b, "/t/w", "k"), 0);
	ck_ok(reqs(a, XS_TRANSACTION_END, t, 1, "T"));
	ck_assert_int_eq(count_events(b, "/t/w", "k"), 1);
	xsd_conn_free(a);
	xsd_conn_free(b);
}
END_TEST

START_TEST(quotas_of_unprivileged_domains)
{
	struct xsd_conn *d0 = conn(0), *d5 = conn(5);
	ck_ok(wr(d0, 0, "/local/domain/5", ""));
	ck_ok(reqs(d0, XS_SET_PERMS, 0, 2, "/local/domain/5", "n5"));
	/* node size */
	char big[XSD_QUOTA_NODE_SIZE + 2];
	memset(big, 'v', sizeof(big));
	big[XSD_QUOTA_NODE_SIZE + 1] = 0;
	ck_err(wr(d5, 0, "k", big), "ENOSPC");
	big[XSD_QUOTA_NODE_SIZE] = 0;
	ck_ok(wr(d5, 0, "k", big));
	/* watches: 128, then E2BIG */
	char tok[16];
	for (int i = 0; i < XSD_QUOTA_WATCHES; i++) {
		snprintf(tok, sizeof(tok), "t%d", i);
		ck_ok(reqs(d5, XS_WATCH, 0, 2, "k", tok));
	}
	ck_err(reqs(d5, XS_WATCH, 0, 2, "k", "one-more"), "E2BIG");
	for (struct xsd_buf *b; (b = xsd_conn_pop(d5));)
		free(b);
	/* transactions: 10, then ENOSPC */
	for (int i = 0; i < XSD_QUOTA_TRANSACTIONS; i++)
		tx_start(d5);
	ck_err(reqs(d5, XS_TRANSACTION_START, 0, 1, ""), "ENOSPC");
	/* permissions per node: 5 */
	ck_err(reqs(d5, XS_SET_PERMS, 0, 7, "k", "n5", "r1", "r2", "r3", "r4", "r6"), "ENOSPC");
	ck_ok(reqs(d5, XS_SET_PERMS, 0, 5, "k", "n5", "r1", "r2", "r3"));
	/* nodes: 1000 owned (k is one, domain dir is another) */
	struct xsd_domain *d = xsd_domain_get(5, false);
	ck_assert_ptr_nonnull(d);
	char p[32];
	int made = 0;
	for (int i = 0; i < XSD_QUOTA_NODES + 5; i++) {
		snprintf(p, sizeof(p), "n%d", i);
		struct reply *r = wr(d5, 0, p, "");
		if (r->type == XS_ERROR) {
			ck_assert_str_eq(r->body, "ENOSPC");
			break;
		}
		made++;
	}
	ck_assert_uint_eq(d->nnodes, XSD_QUOTA_NODES);
	ck_assert_int_lt(made, XSD_QUOTA_NODES);
	xsd_conn_free(d0);
	xsd_conn_free(d5);
}
END_TEST

START_TEST(malformed_requests_get_xen_errors)
{
	struct xsd_conn *c = conn(0);
	ck_err(req(c, 99, 0, "x", 2), "ENOSYS");
	ck_err(req(c, 20, 0, "x", 2), "ENOSYS");       /* XS_RESTRICT is gone */
	ck_err(req(c, XS_READ, 0, "/a", 2), "EINVAL"); /* no NUL */
	ck_err(req(c, XS_READ, 0, "", 0), "EINVAL");
	ck_err(req(c, XS_WATCH, 0, "/a\0tok", 6), "EINVAL");
	ck_err(req(c, XS_WRITE, 0, "/a", 2), "EINVAL");
	ck_err(reqs(c, XS_READ, 0, 1, "/a//b"), "EINVAL");
	ck_err(reqs(c, XS_WRITE, 0, 1, "/a/"), "EINVAL");
	ck_err(reqs(c, XS_WATCH_EVENT, 0, 1, "/a"), "EINVAL");
	ck_err(reqs(c, XS_READ, 12345, 1, "/"), "ENOENT");
	ck_err(reqs(c, XS_TRANSACTION_START, 5, 1, ""), "EBUSY");
	ck_err(reqs(c, XS_GET_DOMAIN_PATH, 0, 1, "x"), "EINVAL");
	ck_err(reqs(c, XS_INTRODUCE, 0, 2, "3", "1"), "EINVAL");
	ck_err(reqs(c, XS_CONTROL, 0, 1, "no-such-command"), "EINVAL");
	xsd_conn_free(c);
}
END_TEST

START_TEST(introduce_release_and_special_watches)
{
	struct xsd_conn *c = conn(0);
	ck_ok(reqs(c, XS_WATCH, 0, 2, "@introduceDomain", "i"));
	ck_assert_int_eq(count_events(c, "@introduceDomain", "i"), 1);
	ck_ok(reqs(c, XS_WATCH, 0, 2, "@releaseDomain", "r"));
	ck_assert_int_eq(count_events(c, "@releaseDomain", "r"), 1);
	ck_assert_str_eq(reqs(c, XS_IS_DOMAIN_INTRODUCED, 0, 1, "3")->body, "F");
	ck_assert_str_eq(reqs(c, XS_IS_DOMAIN_INTRODUCED, 0, 1, "0")->body, "T");
	ck_ok(reqs(c, XS_INTRODUCE, 0, 3, "3", "4096", "7"));
	ck_assert_int_eq(count_events(c, "@introduceDomain", "i"), 1);
	ck_assert_str_eq(reqs(c, XS_IS_DOMAIN_INTRODUCED, 0, 1, "3")->body, "T");
	ck_assert_str_eq(reqs(c, XS_GET_DOMAIN_PATH, 0, 1, "3")->body, "/local/domain/3");
	ck_ok(reqs(c, XS_RESUME, 0, 1, "3"));
	ck_ok(reqs(c, XS_SET_TARGET, 0, 2, "3", "4"));
	/* A node owned by 3 and one that grants 3 access. */
	ck_ok(wr(c, 0, "/own", "x"));
	ck_ok(reqs(c, XS_SET_PERMS, 0, 2, "/own", "n3"));
	ck_ok(wr(c, 0, "/acl", "x"));
	ck_ok(reqs(c, XS_SET_PERMS, 0, 3, "/acl", "n0", "b3"));
	ck_ok(reqs(c, XS_RELEASE, 0, 1, "3"));
	ck_assert_int_eq(count_events(c, "@releaseDomain", "r"), 1);
	ck_err(reqs(c, XS_RELEASE, 0, 1, "3"), "ENOENT");
	ck_err(reqs(c, XS_RESUME, 0, 1, "3"), "ENOENT");
	ck_assert_str_eq(reqs(c, XS_IS_DOMAIN_INTRODUCED, 0, 1, "3")->body, "F");
	/* Nodes stay; a reused domid 3 inherits nothing. */
	ck_assert_str_eq(reqs(c, XS_GET_PERMS, 0, 1, "/own")->body, "n0");
	ck_assert_str_eq(reqs(c, XS_GET_PERMS, 0, 1, "/acl")->body, "n0");
	struct xsd_conn *d3 = conn(3);
	ck_err(reqs(d3, XS_READ, 0, 1, "/own"), "EACCES");
	ck_err(reqs(c, XS_RELEASE, 0, 1, "0"), "EINVAL");
	xsd_conn_free(c);
	xsd_conn_free(d3);
}
END_TEST

START_TEST(output_queue_is_bounded)
{
	struct xsd_conn *w = conn(0), *d0 = conn(0);
	ck_ok(reqs(w, XS_WATCH, 0, 2, "/flood", "t"));
	char pad[2900];
	memset(pad, 'p', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = 0;
	/* The watcher never reads: its queue hits the limit and it is dropped. */
	for (int i = 0; i < 5000 && !w->dead; i++) {
		char p[3072];
		snprintf(p, sizeof(p), "/flood/%d/%s", i, pad);
		ck_ok(wr(d0, 0, p, "v"));
	}
	ck_assert(w->dead);
	ck_assert_uint_le(w->out_bytes, XSD_OUTQ_MAX);
	xsd_conn_free(w);
	xsd_conn_free(d0);
}
END_TEST

START_TEST(full_transaction_fails_cleanly)
{
	struct xsd_conn *c = conn(0);
	uint32_t t = tx_start(c);
	char p[64];
	/* Touch the most paths a transaction may hold... */
	for (int i = 0; i < XSD_TX_MAX_ENTRIES; i++) {
		snprintf(p, sizeof(p), "/full/%d", i);
		ck_err(reqs(c, XS_READ, t, 1, p), "ENOENT");
	}
	/* ...then a write needing new entries gets an error, not a hang. */
	ck_err(wr(c, t, "/deep/a/b/c", "x"), "ENOSPC");
	ck_ok(reqs(c, XS_TRANSACTION_END, t, 1, "F"));
	ck_ok(wr(c, 0, "/deep/a/b/c", "x"));
	xsd_conn_free(c);
}
END_TEST

START_TEST(memory_quota_of_a_domain)
{
	struct xsd_conn *d0 = conn(0), *d5 = conn(5);
	ck_ok(wr(d0, 0, "/local/domain/5", ""));
	ck_ok(reqs(d0, XS_SET_PERMS, 0, 2, "/local/domain/5", "n5"));
	char name[1600], val[XSD_QUOTA_NODE_SIZE + 1];
	memset(val, 'v', XSD_QUOTA_NODE_SIZE);
	val[XSD_QUOTA_NODE_SIZE] = 0;
	memset(name, 'n', sizeof(name));
	name[sizeof(name) - 1] = 0;
	int i;
	struct reply *r = NULL;
	for (i = 0; i < XSD_QUOTA_NODES; i++) {
		snprintf(name, 8, "%06d", i);
		name[6] = 'n';
		r = wr(d5, 0, name, val);
		if (r->type == XS_ERROR)
			break;
	}
	ck_assert_int_lt(i, XSD_QUOTA_NODES - 1); /* memory ran out first */
	ck_assert_str_eq(r->body, "ENOMEM");
	struct xsd_domain *d = xsd_domain_get(5, false);
	ck_assert_uint_le(d->bytes, XSD_QUOTA_MEMORY);
	/* Removing its nodes gives the memory back. */
	ck_ok(reqs(d0, XS_RM, 0, 1, "/local/domain/5"));
	ck_assert_uint_eq(d->bytes, 0);
	xsd_conn_free(d0);
	xsd_conn_free(d5);
}
END_TEST

START_TEST(outstanding_requests_of_a_domain)
{
	struct xsd_conn *d5 = conn(5);
	struct xsd_sockmsg h = {XS_GET_DOMAIN_PATH, 1, 0, 2};
	for (int i = 0; i < 30; i++) {
		memcpy(d5->in + d5->in_len, &h, sizeof(h));
		memcpy(d5->in + d5->in_len + sizeof(h), "5", 2);
		d5->in_len += (uint32_t)sizeof(h) + 2;
	}
	ck_assert_int_eq(xsd_conn_input(d5), 0);
	/* 20 replies unread: the rest waits in the input buffer. */
	ck_assert_uint_eq(d5->out_msgs, XSD_QUOTA_OUTSTANDING);
	ck_assert_uint_eq(d5->in_len, 10 * (sizeof(h) + 2));
	struct reply r;
	for (int i = 0; i < 15; i++)
		ck_assert(pop(d5, &r));
	ck_assert_int_eq(xsd_conn_input(d5), 0);
	ck_assert_uint_eq(d5->in_len, 0);
	int n = 0;
	while (pop(d5, &r)) {
		ck_assert_str_eq(r.body, "/local/domain/5");
		n++;
	}
	ck_assert_int_eq(n, 15);
	xsd_conn_free(d5);
}
END_TEST

Suite *xenstore_suite(void);
Suite *xenstore_suite(void)
{
	Suite *s = suite_create("xenstore");
	TCase *tc = tcase_create("store");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, paths_are_validated_like_xen);
	tcase_add_test(tc, perm_strings_round_trip);
	tcase_add_test(tc, write_read_directory_rm);
	tcase_add_test(tc, directory_part_pages_large_dirs);
	tcase_add_test(tc, permissions_owner_default_and_acl);
	tcase_add_test(tc, watches_fire_below_and_only_to_readers);
	tcase_add_test(tc, watch_event_too_large_is_not_sent);
	tcase_add_test(tc, transactions_snapshot_and_conflict);
	tcase_add_test(tc, quotas_of_unprivileged_domains);
	tcase_add_test(tc, malformed_requests_get_xen_errors);
	tcase_add_test(tc, introduce_release_and_special_watches);
	tcase_add_test(tc, output_queue_is_bounded);
	tcase_add_test(tc, full_transaction_fails_cleanly);
	tcase_add_test(tc, memory_quota_of_a_domain);
	tcase_add_test(tc, outstanding_requests_of_a_domain);
	suite_add_tcase(s, tc);
	return s;
}
