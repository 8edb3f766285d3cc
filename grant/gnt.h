// SPDX-License-Identifier: MIT
// Grants, domain side (docs/hv.md "Grant segments and tables"): segments
// (shareable memory, each dedicated to one peer domain), this domain's grant
// table (Xen v1 entries written directly: publish domid+frame, release
// barrier, flags; end access by compare-and-swap that fails while the hv
// holds GTF_reading/GTF_writing), mapping others' grants (the hv hands over
// the granter's segment fd; the library maps each segment once per mode and
// shares that mapping between all grants in it) and grant copy (the hv
// copies; neither side sees the other's memory). Usage: docs/lib.md.
#ifndef DRVDOM_GRANT_GNT_H
#define DRVDOM_GRANT_GNT_H

#include <stddef.h>
#include <stdint.h>

#include "hv/hv_abi.h"

struct hvc;

/* --- segments --------------------------------------------------------------- */

/* A segment of this domain's memory, dedicated to `peer`: pages 0..npages-1
 * at base, frames first_frame..first_frame+npages-1. Fields are read-only. */
struct gnt_seg {
	domid_t peer;
	uint32_t id;
	uint32_t first_frame;
	uint32_t npages;
	void *base;
};

/* Allocate and map (read-write) npages of memory shareable with peer. One
 * round trip. Returns 0 and *out, or -errno (-ENOMEM: over the domain's
 * memory limit, -ESRCH: no such peer, -EINVAL). */
int gnt_seg_alloc(struct hvc *h, domid_t peer, uint32_t npages, struct gnt_seg **out);

/* Give a segment back. -EBUSY (segment kept, still valid) while the peer
 * maps any frame of it; end access to its grants first. On 0, seg is freed
 * and unmapped. One round trip. */
int gnt_seg_free(struct hvc *h, struct gnt_seg *seg);

/* Address of page i, or NULL if i is out of range. Pure. */
void *gnt_seg_page(const struct gnt_seg *seg, uint32_t i);
/* Frame of page i (no range check: i < npages is the caller's job). Pure. */
uint32_t gnt_seg_frame(const struct gnt_seg *seg, uint32_t i);
/* Frame holding addr: 0 and *frame, or -EFAULT if addr is outside. Pure. */
int gnt_seg_addr_to_frame(const struct gnt_seg *seg, const void *addr, uint32_t *frame);
/* Address of a frame of seg, or NULL if it is not one. Pure. */
void *gnt_seg_frame_to_addr(const struct gnt_seg *seg, uint32_t frame);

/* --- the grant table (granter side) ----------------------------------------- */

struct gnt_table;

/* Set up this domain's grant table (GNTTAB_SETUP asking for nr_entries; the
 * hv's table has a fixed size, which gnt_table_size() reports) and map it.
 * A domain has one table: further calls on the same hvc return the same
 * table (same ref allocator) and count the users. Any thread. One round
 * trip the first time. Returns 0 or -errno. */
int gnt_table_open(struct hvc *h, uint32_t nr_entries, struct gnt_table **out);

/* A table over caller-provided memory (nr_entries entries, zeroed by the
 * caller): the same logic with no hv, for tests and tools. */
int gnt_table_init_local(void *entries, uint32_t nr_entries, struct gnt_table **out);

/* Drop one user; the last unmaps (if gnt_table_open mapped it) and frees.
 * Entries stay as they are in the hv's copy. Call before hvc_close. NULL is
 * a no-op. */
void gnt_table_close(struct gnt_table *t);

/* Number of entries. */
uint32_t gnt_table_size(const struct gnt_table *t);

/* Grant domid access to frame (read-only if readonly != 0): take the lowest
 * free ref (>= GNTTAB_NR_RESERVED_ENTRIES, so the first grant of a domain is
 * ref 8), write domid and frame, release barrier, write flags. Any thread;
 * never blocks beyond a mutex. Returns 0 and *ref, or -ENOSPC (no free ref). */
int gnt_grant_access(struct gnt_table *t, domid_t domid, uint32_t frame, int readonly,
		     grant_ref_t *ref);

/* End access: compare-and-swap the flags to 0, refused with -EBUSY while the
 * grantee maps the page (GTF_reading|GTF_writing); on 0 the ref is free
 * again. -EINVAL for a reserved, out-of-range or unallocated ref. Any
 * thread; never blocks beyond a mutex. */
int gnt_end_access(struct gnt_table *t, grant_ref_t ref);

/* The same two steps without the allocator (for persistent-grant pools and
 * the reserved refs, e.g. a toolstack filling ref 1): publish into a ref the
 * caller owns; end access keeping the ref. Same barriers and return values;
 * gnt_entry_publish refuses (-EBUSY) to overwrite an entry in use. */
int gnt_entry_publish(struct gnt_table *t, grant_ref_t ref, domid_t domid, uint32_t frame,
		      int readonly);
int gnt_entry_end(struct gnt_table *t, grant_ref_t ref);

/* Take / give back a ref from the allocator with no entry change. */
int gnt_ref_claim(struct gnt_table *t, grant_ref_t *ref);
int gnt_ref_release(struct gnt_table *t, grant_ref_t ref);

/* Current flags of an entry (acquire load), for diagnostics and tests.
 * Returns 0 or -EINVAL. */
int gnt_entry_flags(const struct gnt_table *t, grant_ref_t ref, uint16_t *flags);

/* --- mapping others' grants (grantee side) ---------------------------------- */

typedef uint32_t gnt_handle_t;

/* One map op of a batch: in domid, ref, flags (GNTMAP_readonly); out
 * status (GNTST_*), handle and addr (the page, valid until gnt_unmap). */
struct gnt_map_op {
	domid_t domid;
	uint16_t flags;
	grant_ref_t ref;
	int16_t status;
	gnt_handle_t handle;
	void *addr;
};

/* Map n grants (any n; split into calls of HV_BATCH_MAX). One round trip per
 * HV_BATCH_MAX ops. Segments already mapped in the same mode are reused and
 * the duplicate fds closed. Returns 0 if every op succeeded, -EIO if some
 * failed (see each status; the others are mapped), or -errno if the hv
 * could not be asked (ops from the failed call on have status
 * GNTST_general_error). */
int gnt_map_batch(struct hvc *h, struct gnt_map_op *ops, unsigned n);

/* Map one grant. Returns 0 with *addr and *handle, or -errno translated from
 * the GNTST code (see gnt_status_errno). */
int gnt_map(struct hvc *h, domid_t domid, grant_ref_t ref, uint16_t flags, void **addr,
	    gnt_handle_t *handle);

/* Unmap: the hv drops the pin (the granter can end access once the last pin
 * is gone) and the library drops its segment mapping when no handle uses
 * it any more. The page must not be touched after. If the granter died the
 * hv already revoked the pin; the local mapping goes anyway. Returns 0 or
 * -errno (-EINVAL: unknown handle). */
int gnt_unmap(struct hvc *h, gnt_handle_t handle);
/* n handles (any n); status[i] (may be NULL) gets GNTST_*. Returns 0 if all
 * succeeded, -EIO if some failed, -errno. */
int gnt_unmap_batch(struct hvc *h, const gnt_handle_t *handles, unsigned n, int16_t *status);

/* --- grant copy --------------------------------------------------------------- */

/* Have the hv copy for us: ops in Xen's gnttab_copy layout (each side a grant
 * ref of another domain with GNTCOPY_*_gref, or one of our own frames; a
 * length that does not cross a page). Any n: split into calls of
 * HV_COPY_BATCH_MAX. Blocks for one round trip per batch. Returns 0 if every
 * op's status is GNTST_okay, -EIO if some failed (statuses filled), -errno if
 * the hv could not be asked. */
int gnt_copy(struct hvc *h, struct hv_gnt_copy *ops, unsigned n);

/* A GNTST_* code as -errno (0 for okay). */
int gnt_status_errno(int16_t status);

#endif
