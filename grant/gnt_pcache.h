// SPDX-License-Identifier: MIT
// Persistent-grant cache, grantee side: the pages a frontend granted once
// and reuses for every request (blkif `feature-persistent`), kept mapped by
// the backend in a table keyed by grant ref so a request that names one
// costs no hypercall. One cache per ring and peer domain. The cache only
// owns mappings the caller made (batched with gnt_map_batch, read-write) and
// unmaps them, batched, when it is destroyed. Not thread-safe: one ring
// loop uses it. Bounded: when full, the caller maps per request instead.
#ifndef DRVDOM_GRANT_GNT_PCACHE_H
#define DRVDOM_GRANT_GNT_PCACHE_H

#include <stdint.h>

#include "grant/gnt.h"

struct gnt_pcache;

/* A cache for grants of domain `domid`, holding at most max entries (1 ..
 * 65536). h may be NULL (tests): destroying then only forgets the entries.
 * Does not block. Returns 0 and *out, or -EINVAL / -ENOMEM. */
int gnt_pcache_create(struct hvc *h, domid_t domid, uint32_t max, struct gnt_pcache **out);

/* Unmap every cached grant (batched GNT_UNMAP; blocks for those round
 * trips) and free the cache. NULL is a no-op. */
void gnt_pcache_destroy(struct gnt_pcache *c);

/* The mapped page of ref, or NULL if ref is not cached. Pure lookup. */
void *gnt_pcache_lookup(const struct gnt_pcache *c, grant_ref_t ref);

/* Take ownership of a mapping (addr, handle) of ref made read-write by the
 * caller. Returns 0, -EEXIST if ref is cached already, -ENOSPC if the cache
 * is full (the caller keeps the mapping and must unmap it itself). */
int gnt_pcache_insert(struct gnt_pcache *c, grant_ref_t ref, void *addr, gnt_handle_t handle);

/* Number of cached grants. */
uint32_t gnt_pcache_count(const struct gnt_pcache *c);

#endif
