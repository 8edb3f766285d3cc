// SPDX-License-Identifier: MIT
// drvdom-guest's internal header: the guest's state (its environment and
// its virtual disks) shared by the main loop (guest_main.c) and the in-guest
// load generator (guest_loadgen.c). Prototypes grouped by defining file.
#ifndef DRVDOM_FRONTENDS_GUEST_GUEST_H
#define DRVDOM_FRONTENDS_GUEST_GUEST_H

#include "frontends/blkfront/blkfront.h"

#define GUEST_MAX_VBDS 64

struct loadgen;

struct guest {
	struct blkfront_env env;
	char vbd_dir[64];
	struct blkfront *vbds[GUEST_MAX_VBDS];
	unsigned nvbds;
	/* Removed disks whose rings the backend still maps: freed later. */
	struct blkfront *zombies[GUEST_MAX_VBDS];
	unsigned zombie_ticks[GUEST_MAX_VBDS];
	unsigned nzombies;
	struct loadgen *lg;
};

/* guest_loadgen.c: run the workloads of spec on the guest's first disk
 * once it is connected, straight through blkfront (no NBD); results go to
 * the console and to /local/domain/<self>/data/loadgen/. Spec syntax in
 * docs/blkfront.md. Returns 0 or -EINVAL for a bad spec, -ENOMEM. */
int guest_loadgen_start(struct guest *g, const char *spec);

#endif
