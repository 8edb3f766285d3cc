// SPDX-License-Identifier: MIT
// Grant segments and grant tables (docs/hv.md, "Grant segments and
// tables"). A segment is a sealed memfd dedicated to one peer; a grant table
// is a sealed memfd of Xen v1 entries shared with its domain, which writes
// it directly. The hv pins an entry for a map or a copy by a compare-and-swap
// on its 32-bit (flags, domid) word that adds GTF_reading/GTF_writing, then
// reads the frame once and checks it lies in a segment of the granter
// dedicated to the mapper. The granter's end-access CAS fails while those
// bits are set; the last unpin clears them. Copies go through the hv's own
// mappings of the segments, so neither side sees the other's memory.
#include "common/log.h"
#include "hv/hv_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HV_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static int hv_memfd(const char *name, size_t bytes)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)bytes) || fcntl(fd, F_ADD_SEALS, HV_SEALS)) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* The entry's (flags, domid) word: flags are the low half (little endian). */
static _Atomic uint32_t *hv_gnt_word(struct hv_dom *g, grant_ref_t ref)
{
	return (_Atomic uint32_t *)(void *)&g->gnt[ref];
}

int hv_gnttab_init(struct hv_dom *d)
{
	size_t bytes = (size_t)HV_GNTTAB_ENTRIES * sizeof(struct grant_entry_v1);
	int fd = hv_memfd("drvdom-gnttab", bytes);
	if (fd < 0)
		return fd;
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int r = -errno;
		close(fd);
		return r;
	}
	d->pins = calloc(HV_GNTTAB_ENTRIES, sizeof(*d->pins));
	if (!d->pins) {
		munmap(p, bytes);
		close(fd);
		return -ENOMEM;
	}
	d->gnt_fd = fd;
	d->gnt = p;
	d->gnt_nr = HV_GNTTAB_ENTRIES;
	return 0;
}

void hv_gnttab_free(struct hv_dom *d)
{
	if (d->gnt)
		munmap(d->gnt, (size_t)d->gnt_nr * sizeof(struct grant_entry_v1));
	if (d->gnt_fd >= 0)
		close(d->gnt_fd);
	free(d->pins);
	free(d->handles);
	d->gnt = NULL;
	d->gnt_fd = -1;
	d->pins = NULL;
	d->handles = NULL;
	d->gnt_nr = 0;
}

void hv_gnt_grant(struct hv_dom *d, grant_ref_t ref, domid_t peer, uint32_t frame)
{
	struct grant_entry_v1 *e = &d->gnt[ref];
	e->domid = peer;
	e->frame = frame;
	/* Pairs with the acquire load of the word in hv_pin_get (and the
	 * granted domain's reads): domid and frame before flags. */
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit((_Atomic uint16_t *)(void *)&e->flags, GTF_permit_access,
			      memory_order_relaxed);
}

/* --- segments ------------------------------------------------------------ */

int hv_seg_alloc(struct hv_dom *d, struct hv_conn *owner, domid_t peer, uint32_t npages,
		 struct hv_seg **out)
{
	if (npages == 0 || npages > HV_MAX_MEMORY / HV_PAGE_SIZE)
		return -EINVAL;
	uint64_t bytes = (uint64_t)npages * HV_PAGE_SIZE;
	if (d->mem_used + bytes > d->memory)
		return -ENOMEM;
	if (d->nsegs >= HV_MAX_SEGS)
		return -ENOSPC;
	if ((uint64_t)d->next_frame + npages > UINT32_MAX)
		return -ENOSPC;
	struct hv_seg *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	char name[32];
	snprintf(name, sizeof(name), "drvdom-seg-d%u", (unsigned)d->domid);
	s->fd = hv_memfd(name, bytes);
	if (s->fd < 0) {
		int r = s->fd;
		free(s);
		return r;
	}
	s->ro_fd = -1;
	s->owner = owner;
	if (++d->next_seg_id == 0)
		d->next_seg_id = 1;
	s->id = d->next_seg_id;
	s->gen = ++hv.seg_gen;
	s->peer = peer;
	s->first_frame = d->next_frame;
	s->npages = npages;
	d->next_frame += npages;
	d->mem_used += bytes;
	d->nsegs++;
	s->next = d->segs;
	d->segs = s;
	*out = s;
	return 0;
}

static struct hv_seg *hv_seg_by_frame(struct hv_dom *d, uint32_t frame)
{
	for (struct hv_seg *s = d->segs; s; s = s->next)
		if (frame >= s->first_frame && frame - s->first_frame < s->npages)
			return s;
	return NULL;
}

/* Clear status bits on ref of granter g (the hv's own pins only). */
static void hv_gnt_clear_bits(struct hv_dom *g, grant_ref_t ref, uint16_t bits)
{
	/* Release: our copies out of the frame happen before the granter
	 * may see the entry idle (pairs with its end-access CAS). */
	atomic_fetch_and_explicit(hv_gnt_word(g, ref), ~(uint32_t)bits, memory_order_release);
}

/* Forget every handle anyone holds on (g, ref), or on any ref if all. */
static void hv_handles_forget(struct hv_dom *g, grant_ref_t ref, bool all)
{
	for (unsigned i = 0; i < DOMID_FIRST_FREE; i++) {
		struct hv_dom *m = hv.doms[i];
		if (!m)
			continue;
		for (uint32_t h = 0; h < m->handle_cap; h++) {
			struct hv_handle *hd = &m->handles[h];
			if (hd->used && hd->granter == g && (all || hd->ref == ref))
				hd->granter = NULL;
		}
	}
}

static void hv_seg_destroy(struct hv_dom *d, struct hv_seg *s)
{
	if (s->pins) {
		/* Forced (owner gone): drop every pin on it first. */
		for (uint32_t ref = 0; ref < d->gnt_nr; ref++) {
			struct hv_pin *p = &d->pins[ref];
			if (p->seg != s)
				continue;
			hv_gnt_clear_bits(d, ref, GTF_reading | GTF_writing);
			hv_handles_forget(d, ref, false);
			memset(p, 0, sizeof(*p));
		}
	}
	d->mem_used -= (uint64_t)s->npages * HV_PAGE_SIZE;
	d->nsegs--;
	if (s->map)
		munmap(s->map, (size_t)s->npages * HV_PAGE_SIZE);
	close(s->fd);
	if (s->ro_fd >= 0)
		close(s->ro_fd);
	free(s);
}

int hv_seg_free(struct hv_dom *d, struct hv_conn *owner, uint32_t seg_id)
{
	for (struct hv_seg **pp = &d->segs; *pp; pp = &(*pp)->next) {
		struct hv_seg *s = *pp;
		if (s->id != seg_id || s->owner != owner)
			continue;
		if (s->pins)
			return -EBUSY;
		*pp = s->next;
		hv_seg_destroy(d, s);
		return 0;
	}
	return -ENOENT;
}

void hv_seg_free_all(struct hv_dom *d, struct hv_conn *owner)
{
	struct hv_seg **pp = &d->segs;
	while (*pp) {
		struct hv_seg *s = *pp;
		if (owner && s->owner != owner) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		hv_seg_destroy(d, s);
	}
}

/* --- pins ------------------------------------------------------------------ */

/* Pin (g, ref) for domain caller: read-only or writable. On success the
 * entry's status bits are set, *seg and *offset name the page. */
static int16_t hv_pin_get(struct hv_dom *g, grant_ref_t ref, domid_t caller, bool ro,
			  struct hv_seg **seg, uint64_t *offset)
{
	if (ref >= g->gnt_nr)
		return GNTST_bad_gntref;
	_Atomic uint32_t *w = hv_gnt_word(g, ref);
	struct hv_pin *p = &g->pins[ref];
	uint16_t added;
	/* Acquire pairs with the granter's release barrier before flags. */
	uint32_t old = atomic_load_explicit(w, memory_order_acquire);
	for (;;) {
		uint16_t flags = (uint16_t)old, dom = (uint16_t)(old >> 16);
		if ((flags & GTF_type_mask) != GTF_permit_access || dom != caller)
			return GNTST_general_error;
		if (!ro && (flags & GTF_readonly))
			return GNTST_general_error;
		uint16_t nf = (uint16_t)(flags | GTF_reading | (ro ? 0 : GTF_writing));
		added = (uint16_t)(nf & ~flags);
		if (!added)
			break;
		if (atomic_compare_exchange_weak_explicit(w, &old, (old & 0xFFFF0000u) | nf,
							  memory_order_acq_rel,
							  memory_order_acquire))
			break;
	}
	/* Bits we must take back on failure: only those no pin relies on. */
	uint16_t undo = 0;
	if (p->ro + p->rw == 0)
		undo = GTF_reading | GTF_writing;
	else if (!ro && p->rw == 0)
		undo = GTF_writing;
	if (p->ro + p->rw == 0) {
		/* Read the frame once, after the CAS: the granter cannot end
		 * access from here on (Xen's double-fetch rule). */
		uint32_t frame = atomic_load_explicit(
		    (_Atomic uint32_t *)(void *)&g->gnt[ref].frame, memory_order_acquire);
		struct hv_seg *s = hv_seg_by_frame(g, frame);
		if (!s || s->peer != caller) {
			if (undo)
				hv_gnt_clear_bits(g, ref, undo);
			return GNTST_bad_page;
		}
		p->frame = frame;
		p->seg = s;
		s->pins++;
	} else if (!p->seg || p->seg->peer != caller) {
		if (undo)
			hv_gnt_clear_bits(g, ref, undo);
		return GNTST_general_error;
	}
	if (ro)
		p->ro++;
	else
		p->rw++;
	*seg = p->seg;
	*offset = (uint64_t)(p->frame - p->seg->first_frame) * HV_PAGE_SIZE;
	return GNTST_okay;
}

static void hv_pin_put(struct hv_dom *g, grant_ref_t ref, bool ro)
{
	struct hv_pin *p = &g->pins[ref];
	if (ro ? p->ro == 0 : p->rw == 0)
		return; /* dropped already (forced segment free) */
	if (ro)
		p->ro--;
	else
		p->rw--;
	if (p->ro + p->rw == 0) {
		hv_gnt_clear_bits(g, ref, GTF_reading | GTF_writing);
		if (p->seg)
			p->seg->pins--;
		p->seg = NULL;
	} else if (!ro && p->rw == 0) {
		hv_gnt_clear_bits(g, ref, GTF_writing);
	}
}

/* --- map / unmap ------------------------------------------------------------ */

static int hv_handle_alloc(struct hv_dom *d, uint32_t *out)
{
	if (d->handle_free) {
		uint32_t h = d->handle_free - 1;
		d->handle_free = d->handles[h].next_free;
		*out = h;
		return 0;
	}
	if (d->nhandles == d->handle_cap) {
		if (d->handle_cap >= HV_MAX_HANDLES)
			return -ENOSPC;
		uint32_t cap = d->handle_cap ? d->handle_cap * 2 : 64;
		struct hv_handle *n = realloc(d->handles, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		memset(n + d->handle_cap, 0, (cap - d->handle_cap) * sizeof(*n));
		d->handles = n;
		d->handle_cap = cap;
	}
	*out = d->nhandles++;
	return 0;
}

static void hv_handle_release(struct hv_dom *d, uint32_t h)
{
	struct hv_handle *hd = &d->handles[h];
	if (hd->granter)
		hv_pin_put(hd->granter, hd->ref, hd->ro);
	memset(hd, 0, sizeof(*hd));
	hd->next_free = d->handle_free;
	d->handle_free = h + 1;
}

static int hv_seg_ro_fd(struct hv_seg *s)
{
	if (s->ro_fd < 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", s->fd);
		s->ro_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (s->ro_fd < 0)
			log_warn("reopen segment read-only: %s", strerror(errno));
	}
	return s->ro_fd;
}

void hv_gnt_map(struct hv_conn *c, const struct hv_gnt_map_op *op, uint32_t n,
		struct hv_gnt_map_res *res, int *fds, unsigned *nfds)
{
	struct hv_dom *d = c->dom;
	*nfds = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct hv_gnt_map_res *r = &res[i];
		memset(r, 0, sizeof(*r));
		r->fd_index = 0xFFFF;
		domid_t gid = op[i].domid == DOMID_SELF ? d->domid : op[i].domid;
		struct hv_dom *g = hv_dom_get(gid);
		bool ro = op[i].flags & GNTMAP_readonly;
		if (!g || g->state == HV_DOM_DYING) {
			r->status = GNTST_bad_domain;
			continue;
		}
		if (op[i].flags & ~GNTMAP_readonly) {
			r->status = GNTST_general_error;
			continue;
		}
		uint32_t h;
		if (hv_handle_alloc(d, &h)) {
			r->status = GNTST_no_space;
			continue;
		}
		struct hv_seg *s;
		uint64_t off;
		r->status = hv_pin_get(g, op[i].ref, d->domid, ro, &s, &off);
		if (r->status != GNTST_okay) {
			d->handles[h].next_free = d->handle_free;
			d->handle_free = h + 1;
			continue;
		}
		int fd = ro ? hv_seg_ro_fd(s) : s->fd;
		if (fd < 0) {
			hv_pin_put(g, op[i].ref, ro);
			d->handles[h].next_free = d->handle_free;
			d->handle_free = h + 1;
			r->status = GNTST_general_error;
			continue;
		}
		struct hv_handle *hd = &d->handles[h];
		*hd = (struct hv_handle){
		    .used = true, .ro = ro, .granter = g, .owner = c, .ref = op[i].ref};
		unsigned k;
		for (k = 0; k < *nfds && fds[k] != fd; k++)
			;
		if (k == *nfds)
			fds[(*nfds)++] = fd;
		r->fd_index = (uint16_t)k;
		r->handle = h;
		r->seg_id = s->id;
		r->seg_gen = s->gen;
		r->seg_npages = s->npages;
		r->offset = (uint32_t)off;
	}
}

int16_t hv_gnt_unmap_one(struct hv_dom *d, struct hv_conn *c, uint32_t handle)
{
	if (handle >= d->nhandles)
		return GNTST_bad_handle;
	struct hv_handle *hd = &d->handles[handle];
	if (!hd->used || hd->owner != c)
		return GNTST_bad_handle;
	hv_handle_release(d, handle);
	return GNTST_okay;
}

void hv_gnt_revoke_all(struct hv_dom *d, struct hv_conn *owner)
{
	for (uint32_t h = 0; h < d->nhandles; h++) {
		struct hv_handle *hd = &d->handles[h];
		if (hd->used && (!owner || hd->owner == owner))
			hv_handle_release(d, h);
	}
}

void hv_gnt_forget_granter(struct hv_dom *d)
{
	hv_handles_forget(d, 0, true);
	/* No handle refers to d's pins any more: drop them all at once, so
	 * freeing d's segments needs no per-entry walk. The pin array itself
	 * is not cleared: d is DYING (no map or copy resolves it) and
	 * hv_gnttab_free frees the array next. Clearing it touched all 768
	 * KiB of it, ~0.3 ms of the hv's time between a driver domain's death
	 * and its restart (docs/bench-recovery.md). */
	for (struct hv_seg *s = d->segs; s; s = s->next)
		s->pins = 0;
}

/* --- copy ---------------------------------------------------------------- */

struct hv_copy_side {
	struct hv_dom *g; /* pinned granter, or NULL */
	grant_ref_t ref;
	bool ro;
	struct hv_seg *seg;
	uint64_t off;
};

/* The hv's own mapping of a segment, for copies: made on first use, kept
 * until the segment is freed. The memfd is sealed against shrinking, so a
 * domain cannot make it fault. NULL if it cannot be mapped (copies then go
 * through pread/pwrite). */
static uint8_t *hv_seg_map(struct hv_seg *s)
{
	if (!s->map && !s->map_failed) {
		void *p = mmap(NULL, (size_t)s->npages * HV_PAGE_SIZE, PROT_READ | PROT_WRITE,
			       MAP_SHARED, s->fd, 0);
		if (p == MAP_FAILED) {
			log_warn("map a segment for copies: %s", strerror(errno));
			s->map_failed = true;
		} else {
			s->map = p;
		}
	}
	return s->map;
}

static int16_t hv_copy_resolve(struct hv_dom *d, const struct hv_gnt_copy_ptr *ptr, bool gref,
			       bool write, struct hv_copy_side *out)
{
	out->g = NULL;
	if (gref) {
		domid_t gid = ptr->domid == DOMID_SELF ? d->domid : ptr->domid;
		struct hv_dom *g = hv_dom_get(gid);
		if (!g || g->state == HV_DOM_DYING)
			return GNTST_bad_domain;
		if (ptr->u >= g->gnt_nr)
			return GNTST_bad_gntref;
		struct hv_seg *s;
		uint64_t off;
		int16_t st = hv_pin_get(g, (grant_ref_t)ptr->u, d->domid, !write, &s, &off);
		if (st != GNTST_okay)
			return st;
		*out = (struct hv_copy_side){g, (grant_ref_t)ptr->u, !write, s, off + ptr->offset};
		return GNTST_okay;
	}
	if (ptr->domid != DOMID_SELF && ptr->domid != d->domid)
		return GNTST_permission_denied;
	if (ptr->u > UINT32_MAX)
		return GNTST_bad_page;
	struct hv_seg *s = hv_seg_by_frame(d, (uint32_t)ptr->u);
	if (!s)
		return GNTST_bad_page;
	out->seg = s;
	out->off = (uint64_t)((uint32_t)ptr->u - s->first_frame) * HV_PAGE_SIZE + ptr->offset;
	return GNTST_okay;
}

static void hv_copy_release(struct hv_copy_side *s)
{
	if (s->g)
		hv_pin_put(s->g, s->ref, s->ro);
	s->g = NULL;
}

void hv_gnt_copy(struct hv_conn *c, struct hv_gnt_copy *ops, uint32_t n)
{
	struct hv_dom *d = c->dom;
	static uint8_t buf[HV_PAGE_SIZE];
	for (uint32_t i = 0; i < n; i++) {
		struct hv_gnt_copy *op = &ops[i];
		struct hv_copy_side src = {0}, dst = {0};
		if ((op->flags & ~(GNTCOPY_source_gref | GNTCOPY_dest_gref)) ||
		    !hv_call_copy_fits(op->source.offset, op->len) ||
		    !hv_call_copy_fits(op->dest.offset, op->len)) {
			op->status = GNTST_bad_copy_arg;
			continue;
		}
		op->status =
		    hv_copy_resolve(d, &op->source, op->flags & GNTCOPY_source_gref, false, &src);
		if (op->status != GNTST_okay)
			continue;
		op->status =
		    hv_copy_resolve(d, &op->dest, op->flags & GNTCOPY_dest_gref, true, &dst);
		if (op->status != GNTST_okay) {
			hv_copy_release(&src);
			continue;
		}
		uint8_t *sm = op->len ? hv_seg_map(src.seg) : NULL;
		uint8_t *dm = op->len ? hv_seg_map(dst.seg) : NULL;
		if (sm && dm)
			memmove(dm + dst.off, sm + src.off, op->len);
		else if (op->len &&
			 (pread(src.seg->fd, buf, op->len, (off_t)src.off) != (ssize_t)op->len ||
			  pwrite(dst.seg->fd, buf, op->len, (off_t)dst.off) != (ssize_t)op->len))
			op->status = GNTST_general_error;
		hv_copy_release(&dst);
		hv_copy_release(&src);
	}
}
