// SPDX-License-Identifier: MIT
// Persistent-grant cache (see grant/gnt_pcache.h): an open-addressing hash
// table keyed by grant ref, twice the maximum size so probes stay short.
// Entries are never removed one by one (a persistent grant lives as long as
// the ring), so no tombstones are needed.
#include "grant/gnt_pcache.h"

#include <errno.h>
#include <stdlib.h>

#include "common/log.h"

struct gnt_pcache_ent {
	grant_ref_t ref;
	gnt_handle_t handle;
	void *addr; /* NULL: empty slot */
};

struct gnt_pcache {
	struct hvc *h;
	domid_t domid;
	uint32_t max, count, mask;
	struct gnt_pcache_ent *tab;
};

static uint32_t pcache_hash(grant_ref_t ref)
{
	/* Fibonacci hashing: frontends hand out refs densely from 8 upwards. */
	return (uint32_t)(ref * 2654435761u);
}

int gnt_pcache_create(struct hvc *h, domid_t domid, uint32_t max, struct gnt_pcache **out)
{
	if (max == 0 || max > 65536)
		return -EINVAL;
	struct gnt_pcache *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	uint32_t size = 1;
	while (size < 2 * max)
		size *= 2;
	c->tab = calloc(size, sizeof(*c->tab));
	if (!c->tab) {
		free(c);
		return -ENOMEM;
	}
	c->h = h;
	c->domid = domid;
	c->max = max;
	c->mask = size - 1;
	*out = c;
	return 0;
}

void gnt_pcache_destroy(struct gnt_pcache *c)
{
	if (!c)
		return;
	gnt_handle_t batch[HV_BATCH_MAX];
	unsigned n = 0;
	for (uint32_t i = 0; i <= c->mask; i++) {
		if (!c->tab[i].addr)
			continue;
		if (c->h)
			batch[n++] = c->tab[i].handle;
		if (c->h && (n == HV_BATCH_MAX || c->count == 1)) {
			int r = gnt_unmap_batch(c->h, batch, n, NULL);
			if (r)
				log_warn("pcache: unmap of %u grants of domain %u: %d", n, c->domid,
					 r);
			n = 0;
		}
		c->count--;
	}
	free(c->tab);
	free(c);
}

void *gnt_pcache_lookup(const struct gnt_pcache *c, grant_ref_t ref)
{
	for (uint32_t i = pcache_hash(ref) & c->mask;; i = (i + 1) & c->mask) {
		if (!c->tab[i].addr)
			return NULL;
		if (c->tab[i].ref == ref)
			return c->tab[i].addr;
	}
}

int gnt_pcache_insert(struct gnt_pcache *c, grant_ref_t ref, void *addr, gnt_handle_t handle)
{
	if (!addr)
		return -EINVAL;
	uint32_t i = pcache_hash(ref) & c->mask;
	for (; c->tab[i].addr; i = (i + 1) & c->mask)
		if (c->tab[i].ref == ref)
			return -EEXIST;
	if (c->count == c->max)
		return -ENOSPC;
	c->tab[i] = (struct gnt_pcache_ent){.ref = ref, .handle = handle, .addr = addr};
	c->count++;
	return 0;
}

uint32_t gnt_pcache_count(const struct gnt_pcache *c)
{
	return c->count;
}
