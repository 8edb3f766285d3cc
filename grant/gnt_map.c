// SPDX-License-Identifier: MIT
// Mapping others' grants and grant copy (see grant/gnt.h). GNT_MAP replies
// name the granter's segment (domid, seg_id, seg_gen) and a page offset, and
// carry the segment fd (read-only for read-only maps). The library keeps one
// mmap per (granter, seg_id, seg_gen, mode), counted by the handles using
// it: a new fd for a segment already mapped is closed at once, so a domain
// mapping thousands of grants holds a handful of mappings and no fds.
#include "grant/gnt.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "hv/hvc_internal.h"

#define GNT_SEG_MAX_PAGES (1u << 22)
#define HANDLE_BUCKETS 1024u

struct map_seg {
	struct map_seg *next;
	domid_t domid;
	bool ro;
	uint32_t seg_id, seg_gen, npages;
	void *base;
	size_t refs; /* handles using this mapping */
};

struct map_handle {
	struct map_handle *next;
	gnt_handle_t handle;
	struct map_seg *seg;
};

struct map_cache {
	struct map_seg *segs;
	struct map_handle *hb[HANDLE_BUCKETS];
};

static void map_cache_free(void *p)
{
	struct map_cache *c = p;
	for (unsigned i = 0; i < HANDLE_BUCKETS; i++) {
		struct map_handle *mh = c->hb[i];
		while (mh) {
			struct map_handle *n = mh->next;
			free(mh);
			mh = n;
		}
	}
	struct map_seg *s = c->segs;
	while (s) {
		struct map_seg *n = s->next;
		munmap(s->base, (size_t)s->npages * HV_PAGE_SIZE);
		free(s);
		s = n;
	}
	free(c);
}

/* gnt_lock held. */
static struct map_cache *cache_get(struct hvc *h)
{
	if (!h->gnt_cache) {
		h->gnt_cache = calloc(1, sizeof(struct map_cache));
		h->gnt_cache_free = map_cache_free;
	}
	return h->gnt_cache;
}

int gnt_status_errno(int16_t status)
{
	switch (status) {
	case GNTST_okay:
		return 0;
	case GNTST_bad_domain:
		return -ESRCH;
	case GNTST_bad_gntref:
	case GNTST_bad_handle:
	case GNTST_bad_copy_arg:
		return -EINVAL;
	case GNTST_permission_denied:
		return -EPERM;
	case GNTST_bad_page:
		return -EFAULT;
	case GNTST_no_space:
		return -ENOSPC;
	default:
		return -EIO;
	}
}

static int unmap_call(struct hvc *h, const gnt_handle_t *handles, unsigned n, int16_t *status)
{
	size_t req_len = sizeof(uint32_t) + n * sizeof(uint32_t);
	size_t rep_len = sizeof(uint32_t) + n * sizeof(int16_t);
	uint32_t req[1 + HV_BATCH_MAX];
	char rep[sizeof(uint32_t) + HV_BATCH_MAX * sizeof(int16_t)];
	req[0] = n;
	memcpy(&req[1], handles, n * sizeof(uint32_t));
	struct hvc_msg m = {
	    .op = HV_OP_GNT_UNMAP, .req = req, .req_len = req_len, .rep = rep, .rep_cap = rep_len};
	int ret = hvc_call_exact(h, &m);
	if (ret < 0)
		return ret;
	uint32_t cnt;
	memcpy(&cnt, rep, sizeof(cnt));
	if (cnt != n)
		return -EPROTO;
	memcpy(status, rep + sizeof(uint32_t), n * sizeof(int16_t));
	return 0;
}

/* gnt_lock held: attach a mapped page to the cache. fd < 0: reuse only. */
static int cache_attach(struct hvc *h, domid_t domid, bool ro, const struct hv_gnt_map_res *r,
			int fd, void **addr)
{
	struct map_cache *c = cache_get(h);
	if (!c)
		return -ENOMEM;
	struct map_seg *s;
	for (s = c->segs; s; s = s->next)
		if (s->domid == domid && s->ro == ro && s->seg_id == r->seg_id &&
		    s->seg_gen == r->seg_gen)
			break;
	if (s && s->npages != r->seg_npages)
		return -EPROTO;
	if (!s) {
		if (fd < 0)
			return -EPROTO;
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		void *base = mmap(NULL, (size_t)r->seg_npages * HV_PAGE_SIZE,
				  PROT_READ | (ro ? 0 : PROT_WRITE), MAP_SHARED, fd, 0);
		if (base == MAP_FAILED) {
			int err = -errno;
			free(s);
			return err;
		}
		s->domid = domid;
		s->ro = ro;
		s->seg_id = r->seg_id;
		s->seg_gen = r->seg_gen;
		s->npages = r->seg_npages;
		s->base = base;
		s->next = c->segs;
		c->segs = s;
	}
	struct map_handle *mh = malloc(sizeof(*mh));
	if (!mh)
		return -ENOMEM; /* an unused segment stays cached until close */
	mh->handle = r->handle;
	mh->seg = s;
	unsigned b = r->handle % HANDLE_BUCKETS;
	mh->next = c->hb[b];
	c->hb[b] = mh;
	s->refs++;
	*addr = (char *)s->base + r->offset;
	return 0;
}

/* gnt_lock held: detach a handle; unmaps the segment when unused. */
static int cache_detach(struct hvc *h, gnt_handle_t handle)
{
	struct map_cache *c = h->gnt_cache;
	if (!c)
		return -EINVAL;
	struct map_handle **pp = &c->hb[handle % HANDLE_BUCKETS];
	while (*pp && (*pp)->handle != handle)
		pp = &(*pp)->next;
	struct map_handle *mh = *pp;
	if (!mh)
		return -EINVAL;
	*pp = mh->next;
	struct map_seg *s = mh->seg;
	free(mh);
	if (--s->refs == 0) {
		struct map_seg **sp = &c->segs;
		while (*sp != s)
			sp = &(*sp)->next;
		*sp = s->next;
		munmap(s->base, (size_t)s->npages * HV_PAGE_SIZE);
		free(s);
	}
	return 0;
}

static int map_call(struct hvc *h, struct gnt_map_op *ops, unsigned n)
{
	char req[sizeof(uint32_t) + HV_BATCH_MAX * sizeof(struct hv_gnt_map_op)];
	char rep[sizeof(uint32_t) + HV_BATCH_MAX * sizeof(struct hv_gnt_map_res)];
	int fds[HV_MAX_FDS];
	uint32_t cnt = n;
	memcpy(req, &cnt, sizeof(cnt));
	for (unsigned i = 0; i < n; i++) {
		struct hv_gnt_map_op op = {
		    .domid = ops[i].domid, .flags = ops[i].flags, .ref = ops[i].ref};
		memcpy(req + sizeof(cnt) + i * sizeof(op), &op, sizeof(op));
		ops[i].status = GNTST_general_error;
		ops[i].addr = NULL;
	}
	struct hvc_msg m = {.op = HV_OP_GNT_MAP,
			    .req = req,
			    .req_len = sizeof(cnt) + n * sizeof(struct hv_gnt_map_op),
			    .rep = rep,
			    .rep_cap = sizeof(cnt) + n * sizeof(struct hv_gnt_map_res),
			    .rfds = fds,
			    .rfds_cap = HV_MAX_FDS};
	int ret = hvc_call(h, &m);
	if (ret < 0)
		return ret;
	memcpy(&cnt, rep, sizeof(cnt));
	if (m.rep_len != m.rep_cap || cnt != n) {
		for (unsigned i = 0; i < m.nrfds; i++)
			close(fds[i]);
		return -EPROTO;
	}
	gnt_handle_t undo[HV_BATCH_MAX];
	unsigned nundo = 0;
	int failed = 0;
	pthread_mutex_lock(&h->gnt_lock);
	for (unsigned i = 0; i < n; i++) {
		struct hv_gnt_map_res r;
		memcpy(&r, rep + sizeof(cnt) + i * sizeof(r), sizeof(r));
		ops[i].status = r.status;
		if (r.status != GNTST_okay) {
			if (r.status > 0)
				ops[i].status = GNTST_general_error;
			failed = 1;
			continue;
		}
		ops[i].handle = r.handle;
		int fd = -1;
		bool bad = r.seg_npages == 0 || r.seg_npages > GNT_SEG_MAX_PAGES ||
			   (r.offset & (HV_PAGE_SIZE - 1)) ||
			   r.offset / HV_PAGE_SIZE >= r.seg_npages;
		if (r.fd_index != 0xFFFF) {
			if (r.fd_index >= m.nrfds)
				bad = true;
			else
				fd = fds[r.fd_index];
		}
		int e = bad ? -EPROTO
			    : cache_attach(h, ops[i].domid, (ops[i].flags & GNTMAP_readonly) != 0,
					   &r, fd, &ops[i].addr);
		if (e < 0) {
			log_warn("gnt: map of ref %u of dom %u: %s reply", ops[i].ref, ops[i].domid,
				 e == -EPROTO ? "bad" : "unusable");
			ops[i].status = GNTST_general_error;
			undo[nundo++] = r.handle;
			failed = 1;
		}
	}
	pthread_mutex_unlock(&h->gnt_lock);
	for (unsigned i = 0; i < m.nrfds; i++)
		close(fds[i]); /* mmap holds the memory; duplicates go */
	if (nundo) {
		int16_t st[HV_BATCH_MAX];
		(void)unmap_call(h, undo, nundo, st);
	}
	return failed ? -EIO : 0;
}

int gnt_map_batch(struct hvc *h, struct gnt_map_op *ops, unsigned n)
{
	int result = 0;
	for (unsigned i = 0; i < n; i += HV_BATCH_MAX) {
		unsigned k = n - i < HV_BATCH_MAX ? n - i : HV_BATCH_MAX;
		int ret = map_call(h, ops + i, k);
		if (ret == -EIO) {
			result = -EIO;
			continue;
		}
		if (ret < 0) {
			for (unsigned j = i; j < n; j++) {
				ops[j].status = GNTST_general_error;
				ops[j].addr = NULL;
			}
			return ret;
		}
	}
	return result;
}

int gnt_map(struct hvc *h, domid_t domid, grant_ref_t ref, uint16_t flags, void **addr,
	    gnt_handle_t *handle)
{
	struct gnt_map_op op = {.domid = domid, .flags = flags, .ref = ref};
	int ret = gnt_map_batch(h, &op, 1);
	if (ret == -EIO)
		return gnt_status_errno(op.status);
	if (ret < 0)
		return ret;
	*addr = op.addr;
	*handle = op.handle;
	return 0;
}

int gnt_unmap_batch(struct hvc *h, const gnt_handle_t *handles, unsigned n, int16_t *status)
{
	int result = 0;
	for (unsigned i = 0; i < n; i += HV_BATCH_MAX) {
		unsigned k = n - i < HV_BATCH_MAX ? n - i : HV_BATCH_MAX;
		int16_t st[HV_BATCH_MAX];
		int known[HV_BATCH_MAX];
		/* Drop the local mappings first: the page must not be used
		 * after unmap whatever the hv answers. */
		pthread_mutex_lock(&h->gnt_lock);
		for (unsigned j = 0; j < k; j++)
			known[j] = cache_detach(h, handles[i + j]) == 0;
		pthread_mutex_unlock(&h->gnt_lock);
		int ret = unmap_call(h, handles + i, k, st);
		for (unsigned j = 0; j < k; j++) {
			int16_t s = ret < 0 ? GNTST_general_error : st[j];
			if (!known[j] && s == GNTST_okay)
				s = GNTST_bad_handle;
			if (status)
				status[i + j] = s;
			if (s != GNTST_okay)
				result = -EIO;
		}
		if (ret < 0 && ret != -EIO)
			result = result ? result : ret;
	}
	return result;
}

int gnt_unmap(struct hvc *h, gnt_handle_t handle)
{
	int16_t st;
	int known;
	pthread_mutex_lock(&h->gnt_lock);
	known = cache_detach(h, handle) == 0;
	pthread_mutex_unlock(&h->gnt_lock);
	int ret = unmap_call(h, &handle, 1, &st);
	if (!known)
		return -EINVAL;
	if (ret < 0)
		return ret;
	/* A bad handle here means the hv already revoked it (the granter
	 * died): the local mapping is gone too, which is what was asked. */
	if (st == GNTST_bad_handle)
		return 0;
	return gnt_status_errno(st);
}

/* --- copy ----------------------------------------------------------------------- */

int gnt_copy(struct hvc *h, struct hv_gnt_copy *ops, unsigned n)
{
	size_t hdr = 2 * sizeof(uint32_t);
	size_t cap = hdr + HV_COPY_BATCH_MAX * sizeof(struct hv_gnt_copy);
	char *buf = malloc(2 * cap);
	if (!buf)
		return -ENOMEM;
	char *rep = buf + cap;
	int result = 0;
	for (unsigned i = 0; i < n; i += HV_COPY_BATCH_MAX) {
		unsigned k = n - i < HV_COPY_BATCH_MAX ? n - i : HV_COPY_BATCH_MAX;
		uint32_t head[2] = {k, 0};
		memcpy(buf, head, hdr);
		memcpy(buf + hdr, ops + i, k * sizeof(struct hv_gnt_copy));
		size_t len = hdr + k * sizeof(struct hv_gnt_copy);
		struct hvc_msg m = {
		    .op = HV_OP_GNT_COPY, .req = buf, .req_len = len, .rep = rep, .rep_cap = len};
		int ret = hvc_call_exact(h, &m);
		if (ret == 0) {
			memcpy(head, rep, hdr);
			if (head[0] != k)
				ret = -EPROTO;
		}
		if (ret < 0) {
			for (unsigned j = i; j < n; j++)
				ops[j].status = GNTST_general_error;
			free(buf);
			return ret;
		}
		for (unsigned j = 0; j < k; j++) {
			struct hv_gnt_copy c;
			memcpy(&c, rep + hdr + j * sizeof(c), sizeof(c));
			ops[i + j].status = c.status > 0 ? GNTST_general_error : c.status;
			if (ops[i + j].status != GNTST_okay)
				result = -EIO;
		}
	}
	free(buf);
	return result;
}
