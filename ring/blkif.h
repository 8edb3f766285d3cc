// SPDX-License-Identifier: MIT
// The blkif wire format (Xen's xen/io/blkif.h, x86_64 layout): the request
// kinds a frontend puts in a block ring slot (read/write/flush/barrier with up
// to 11 inline segments, discard, indirect), the 16-byte response, operation
// and status codes, the indirect segment page, and the blkif ring types. Type
// names differ from Xen's (blkif_req, not blkif_request) so both headers can
// be included together; constants keep Xen's names and values, spelled so
// that a redefinition is identical. Fixed-width fields only, no pointers;
// every size and offset is asserted. Sectors are 512-byte units. The
// handshake and xenstore keys are in Xen's header and PROTOCOLS.md.
#ifndef DRVDOM_RING_BLKIF_H
#define DRVDOM_RING_BLKIF_H

#include <stddef.h>
#include <stdint.h>

#include "ring/ring.h"

/* Operations (request `operation`). */
#define BLKIF_OP_READ 0
#define BLKIF_OP_WRITE 1
#define BLKIF_OP_WRITE_BARRIER 2
#define BLKIF_OP_FLUSH_DISKCACHE 3
#define BLKIF_OP_RESERVED_1 4
#define BLKIF_OP_DISCARD 5
#define BLKIF_OP_INDIRECT 6

/* Response status. */
#define BLKIF_RSP_EOPNOTSUPP -2
#define BLKIF_RSP_ERROR -1
#define BLKIF_RSP_OKAY 0

/* Segments carried inline by a read/write request. */
#define BLKIF_MAX_SEGMENTS_PER_REQUEST 11
/* Grant refs of indirect segment pages in an indirect request. */
#define BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST 8
/* Discard request `flag` (spelled as in Xen's header, so both may be included). */
// clang-format off
#define BLKIF_DISCARD_SECURE (1<<0)
// clang-format on
/* The unit of sector_number, first_sect and last_sect. */
#define BLKIF_SECTOR_SIZE 512u
/* Sectors per 4096-byte frame: first_sect/last_sect lie in 0..7. */
#define BLKIF_SECTORS_PER_FRAME 8u
/* Segment descriptors in one indirect page (4096 / 8). */
#define BLKIF_SEGS_PER_INDIRECT_FRAME 512u
/* Most segments an indirect request can describe. */
#define BLKIF_MAX_INDIRECT_SEGMENTS                                                                \
	(BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * BLKIF_SEGS_PER_INDIRECT_FRAME)

/* `info` bits the backend publishes. */
#define VDISK_CDROM 0x1
#define VDISK_REMOVABLE 0x2
#define VDISK_READONLY 0x4

/* One segment: a granted frame and the sectors in it, inclusive
 * (Xen's blkif_request_segment). */
struct blkif_seg {
	uint32_t gref;
	uint8_t first_sect;
	uint8_t last_sect;
};

/* Read, write, barrier and flush requests (Xen's blkif_request). */
struct blkif_req {
	uint8_t operation;   /* BLKIF_OP_* */
	uint8_t nr_segments; /* 0..BLKIF_MAX_SEGMENTS_PER_REQUEST */
	uint16_t handle;     /* virtual device */
	uint64_t id;	     /* echoed in the response */
	uint64_t sector_number;
	struct blkif_seg seg[BLKIF_MAX_SEGMENTS_PER_REQUEST];
};

/* BLKIF_OP_DISCARD (Xen's blkif_request_discard). */
struct blkif_req_discard {
	uint8_t operation; /* BLKIF_OP_DISCARD */
	uint8_t flag;	   /* BLKIF_DISCARD_SECURE or 0 */
	uint16_t handle;
	uint64_t id;
	uint64_t sector_number;
	uint64_t nr_sectors;
};

/* BLKIF_OP_INDIRECT: segments live in granted pages of struct
 * blkif_indirect_page (Xen's blkif_request_indirect, x86_64 layout). */
struct blkif_req_indirect {
	uint8_t operation;    /* BLKIF_OP_INDIRECT */
	uint8_t indirect_op;  /* BLKIF_OP_READ or BLKIF_OP_WRITE */
	uint16_t nr_segments; /* up to feature-max-indirect-segments */
	uint64_t id;
	uint64_t sector_number;
	uint16_t handle;
	uint32_t indirect_grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
};

/* What a request slot of the blkif ring holds: read `operation` of the copy,
 * then the matching member. */
union blkif_req_slot {
	uint8_t operation;
	struct blkif_req rw;
	struct blkif_req_discard discard;
	struct blkif_req_indirect indirect;
};

/* One page of indirect segment descriptors. */
struct blkif_indirect_page {
	struct blkif_seg seg[BLKIF_SEGS_PER_INDIRECT_FRAME];
};

/* Response (Xen's blkif_response). */
struct blkif_rsp {
	uint64_t id;	   /* from the request */
	uint8_t operation; /* from the request */
	int16_t status;	   /* BLKIF_RSP_* */
};

RING_DEFINE_TYPES(blkif_ring, union blkif_req_slot, struct blkif_rsp);

_Static_assert(sizeof(struct blkif_seg) == 8, "blkif_seg size");
_Static_assert(offsetof(struct blkif_seg, gref) == 0, "blkif_seg.gref");
_Static_assert(offsetof(struct blkif_seg, first_sect) == 4, "blkif_seg.first_sect");
_Static_assert(offsetof(struct blkif_seg, last_sect) == 5, "blkif_seg.last_sect");

_Static_assert(sizeof(struct blkif_req) == 112, "blkif_req size");
_Static_assert(offsetof(struct blkif_req, operation) == 0, "blkif_req.operation");
_Static_assert(offsetof(struct blkif_req, nr_segments) == 1, "blkif_req.nr_segments");
_Static_assert(offsetof(struct blkif_req, handle) == 2, "blkif_req.handle");
_Static_assert(offsetof(struct blkif_req, id) == 8, "blkif_req.id");
_Static_assert(offsetof(struct blkif_req, sector_number) == 16, "blkif_req.sector_number");
_Static_assert(offsetof(struct blkif_req, seg) == 24, "blkif_req.seg");

_Static_assert(sizeof(struct blkif_req_discard) == 32, "blkif_req_discard size");
_Static_assert(offsetof(struct blkif_req_discard, operation) == 0, "discard.operation");
_Static_assert(offsetof(struct blkif_req_discard, flag) == 1, "discard.flag");
_Static_assert(offsetof(struct blkif_req_discard, handle) == 2, "discard.handle");
_Static_assert(offsetof(struct blkif_req_discard, id) == 8, "discard.id");
_Static_assert(offsetof(struct blkif_req_discard, sector_number) == 16, "discard.sector_number");
_Static_assert(offsetof(struct blkif_req_discard, nr_sectors) == 24, "discard.nr_sectors");

_Static_assert(sizeof(struct blkif_req_indirect) == 64, "blkif_req_indirect size");
_Static_assert(offsetof(struct blkif_req_indirect, operation) == 0, "indirect.operation");
_Static_assert(offsetof(struct blkif_req_indirect, indirect_op) == 1, "indirect.indirect_op");
_Static_assert(offsetof(struct blkif_req_indirect, nr_segments) == 2, "indirect.nr_segments");
_Static_assert(offsetof(struct blkif_req_indirect, id) == 8, "indirect.id");
_Static_assert(offsetof(struct blkif_req_indirect, sector_number) == 16, "indirect.sector_number");
_Static_assert(offsetof(struct blkif_req_indirect, handle) == 24, "indirect.handle");
_Static_assert(offsetof(struct blkif_req_indirect, indirect_grefs) == 28, "indirect.grefs");

_Static_assert(sizeof(union blkif_req_slot) == 112, "blkif request slot size");
_Static_assert(sizeof(struct blkif_indirect_page) == RING_PAGE_SIZE, "indirect page size");

_Static_assert(sizeof(struct blkif_rsp) == 16, "blkif_rsp size");
_Static_assert(offsetof(struct blkif_rsp, id) == 0, "blkif_rsp.id");
_Static_assert(offsetof(struct blkif_rsp, operation) == 8, "blkif_rsp.operation");
_Static_assert(offsetof(struct blkif_rsp, status) == 10, "blkif_rsp.status");

_Static_assert(sizeof(union blkif_ring_sring_entry) == 112, "blkif ring slot size");

#endif
