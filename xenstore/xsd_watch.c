// SPDX-License-Identifier: MIT
// Watches of drvdom-xenstored. One global list, guarded by xsd_store_lock
// like every mutation, so an event is queued to its watcher in the same
// critical section as the change that caused it. A watch fires for changes
// at or below its path (and, on removal, for watched nodes below the removed
// one), only to watchers allowed to read the node; @introduceDomain and
// @releaseDomain fire only on exact match. An event larger than the payload
// limit is not sent (Xen does the same).
#include "xenstore/xsd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static struct xsd_watch *xsd_watches;

static bool xsd_is_child(const char *child, const char *parent)
{
	size_t pl = strlen(parent);
	if (strcmp(parent, "/") == 0)
		return child[0] == '/';
	return strncmp(child, parent, pl) == 0 && (child[pl] == 0 || child[pl] == '/');
}

static void xsd_watch_send(struct xsd_conn *c, const char *path, const char *token)
{
	size_t pl = strlen(path) + 1, tl = strlen(token) + 1;
	if (pl + tl > XENSTORE_PAYLOAD_MAX)
		return;
	char buf[XENSTORE_PAYLOAD_MAX];
	memcpy(buf, path, pl);
	memcpy(buf + pl, token, tl);
	xsd_conn_send(c, XS_WATCH_EVENT, 0, 0, buf, (uint32_t)(pl + tl));
}

int xsd_watch_add(struct xsd_conn *c, const char *path, const char *token, uint32_t rel_off)
{
	uint32_t max = xsd_conn_privileged(c) ? XSD_DOM0_MAX_WATCHES : XSD_QUOTA_WATCHES;
	for (struct xsd_watch *w = xsd_watches; w; w = w->next)
		if (w->conn == c && strcmp(w->path, path) == 0 && strcmp(w->token, token) == 0)
			return -EEXIST;
	if (c->nwatches >= max)
		return -E2BIG;
	struct xsd_watch *w = calloc(1, sizeof(*w));
	if (!w || !(w->path = strdup(path)) || !(w->token = strdup(token)))
		die("malloc watch");
	w->conn = c;
	w->rel_off = rel_off;
	w->next = xsd_watches;
	xsd_watches = w;
	c->nwatches++;
	return 0;
}

void xsd_watch_initial(struct xsd_conn *c, const char *path, const char *token, uint32_t rel_off)
{
	xsd_watch_send(c, path + rel_off, token);
}

static void xsd_watch_free(struct xsd_watch *w)
{
	free(w->path);
	free(w->token);
	free(w);
}

int xsd_watch_del(struct xsd_conn *c, const char *path, const char *token)
{
	for (struct xsd_watch **pp = &xsd_watches; *pp; pp = &(*pp)->next) {
		struct xsd_watch *w = *pp;
		if (w->conn == c && strcmp(w->path, path) == 0 && strcmp(w->token, token) == 0) {
			*pp = w->next;
			c->nwatches--;
			xsd_watch_free(w);
			return 0;
		}
	}
	return -ENOENT;
}

void xsd_watch_del_all(struct xsd_conn *c)
{
	for (struct xsd_watch **pp = &xsd_watches; *pp;) {
		struct xsd_watch *w = *pp;
		if (w->conn == c) {
			*pp = w->next;
			xsd_watch_free(w);
		} else {
			pp = &w->next;
		}
	}
	c->nwatches = 0;
}

void xsd_watch_fire(const char *path, const struct xsd_perm *p, uint32_t n, bool recurse)
{
	bool special = xsd_path_is_special(path);
	for (struct xsd_watch *w = xsd_watches; w; w = w->next) {
		const char *ev = NULL;
		if (special || xsd_path_is_special(w->path))
			ev = strcmp(w->path, path) == 0 ? path : NULL;
		else if (xsd_is_child(path, w->path))
			ev = path;
		else if (recurse && xsd_is_child(w->path, path))
			ev = w->path;
		if (!ev || w->conn->dead)
			continue;
		if (!(xsd_perm_for(w->conn, p, n) & XSD_PERM_READ))
			continue;
		if (w->rel_off && strlen(ev) >= w->rel_off)
			ev += w->rel_off;
		xsd_watch_send(w->conn, ev, w->token);
	}
}
