// SPDX-License-Identifier: MIT
// The netif wire format (Xen's xen/io/netif.h, x86_64 layout): transmit
// requests and responses, receive requests and responses, the extra-info
// slot (GSO, multicast, hash) that may follow a tx request or an rx response
// in the next slot, flag and status constants, and the tx and rx ring types.
// Type names differ from Xen's (netif_tx_req, not netif_tx_request) and flag
// names are upper case (NETTXF_CSUM_BLANK for Xen's NETTXF_csum_blank) so
// both headers can be included together; other constants keep Xen's names
// and values, spelled so that a redefinition is identical. Every size and
// offset is asserted.
#ifndef DRVDOM_RING_NETIF_H
#define DRVDOM_RING_NETIF_H

#include <stddef.h>
#include <stdint.h>

#include "ring/ring.h"

/* Slots a frontend must accept for one packet (backend never needs more). */
#define XEN_NETIF_NR_SLOTS_MIN 18
/* Largest tx packet. */
#define XEN_NETIF_MAX_TX_SIZE 0xFFFF

/* netif_tx_req.flags */
#define NETTXF_CSUM_BLANK (1u << 0)	/* checksum to be filled in */
#define NETTXF_DATA_VALIDATED (1u << 1) /* checksum already verified */
#define NETTXF_MORE_DATA (1u << 2)	/* packet continues in the next slot */
#define NETTXF_EXTRA_INFO (1u << 3)	/* a struct netif_extra follows */

/* netif_rx_rsp.flags */
#define NETRXF_DATA_VALIDATED (1u << 0)
#define NETRXF_CSUM_BLANK (1u << 1)
#define NETRXF_MORE_DATA (1u << 2)
#define NETRXF_EXTRA_INFO (1u << 3)
#define NETRXF_GSO_PREFIX (1u << 4)

/* netif_extra.type */
#define XEN_NETIF_EXTRA_TYPE_NONE (0)
#define XEN_NETIF_EXTRA_TYPE_GSO (1)
#define XEN_NETIF_EXTRA_TYPE_MCAST_ADD (2)
#define XEN_NETIF_EXTRA_TYPE_MCAST_DEL (3)
#define XEN_NETIF_EXTRA_TYPE_HASH (4)
#define XEN_NETIF_EXTRA_TYPE_MAX (5)

/* netif_extra.flags: another extra slot follows. */
#define NETIF_EXTRA_FLAG_MORE (1u << 0)

/* netif_extra.u.gso.type */
#define XEN_NETIF_GSO_TYPE_NONE (0)
#define XEN_NETIF_GSO_TYPE_TCPV4 (1)
#define XEN_NETIF_GSO_TYPE_TCPV6 (2)

/* Response status: >= 0 on rx is the length. */
#define NETIF_RSP_DROPPED -2
#define NETIF_RSP_ERROR -1
#define NETIF_RSP_OKAY 0
#define NETIF_RSP_NULL 1 /* the response of an extra-info slot */

/* Transmit request: one fragment of a packet (Xen's netif_tx_request). The
 * first slot's size is the whole packet's. */
struct netif_tx_req {
	uint32_t gref;
	uint16_t offset; /* in the granted frame */
	uint16_t flags;	 /* NETTXF_* */
	uint16_t id;	 /* echoed in the response */
	uint16_t size;
};

/* Extra information slot (Xen's netif_extra_info). */
struct netif_extra {
	uint8_t type;  /* XEN_NETIF_EXTRA_TYPE_* */
	uint8_t flags; /* NETIF_EXTRA_FLAG_* */
	union {
		struct {
			uint16_t size; /* MSS */
			uint8_t type;  /* XEN_NETIF_GSO_TYPE_* */
			uint8_t pad;
			uint16_t features;
		} gso;
		struct {
			uint8_t addr[6];
		} mcast;
		struct {
			uint8_t type;
			uint8_t algorithm;
			uint8_t value[4];
		} hash;
		uint16_t pad[3];
	} u;
};

/* What a tx request slot holds: a request, or an extra after NETTXF_EXTRA_INFO. */
union netif_tx_req_slot {
	struct netif_tx_req req;
	struct netif_extra extra;
};

/* Transmit response (Xen's netif_tx_response); NETIF_RSP_NULL for extras. */
struct netif_tx_rsp {
	uint16_t id;
	int16_t status;
};

/* Receive request: a granted buffer for the backend to fill. */
struct netif_rx_req {
	uint16_t id;
	uint16_t pad;
	uint32_t gref;
};

/* Receive response, in the slot of its request (Xen's netif_rx_response). */
struct netif_rx_rsp {
	uint16_t id;
	uint16_t offset;
	uint16_t flags; /* NETRXF_* */
	int16_t status; /* length, or NETIF_RSP_* < 0 */
};

/* What an rx response slot holds: a response, or an extra after NETRXF_EXTRA_INFO. */
union netif_rx_rsp_slot {
	struct netif_rx_rsp rsp;
	struct netif_extra extra;
};

RING_DEFINE_TYPES(netif_tx_ring, union netif_tx_req_slot, struct netif_tx_rsp);
RING_DEFINE_TYPES(netif_rx_ring, struct netif_rx_req, union netif_rx_rsp_slot);

_Static_assert(sizeof(struct netif_tx_req) == 12, "netif_tx_req size");
_Static_assert(offsetof(struct netif_tx_req, gref) == 0, "netif_tx_req.gref");
_Static_assert(offsetof(struct netif_tx_req, offset) == 4, "netif_tx_req.offset");
_Static_assert(offsetof(struct netif_tx_req, flags) == 6, "netif_tx_req.flags");
_Static_assert(offsetof(struct netif_tx_req, id) == 8, "netif_tx_req.id");
_Static_assert(offsetof(struct netif_tx_req, size) == 10, "netif_tx_req.size");

_Static_assert(sizeof(struct netif_extra) == 8, "netif_extra size");
_Static_assert(offsetof(struct netif_extra, type) == 0, "netif_extra.type");
_Static_assert(offsetof(struct netif_extra, flags) == 1, "netif_extra.flags");
_Static_assert(offsetof(struct netif_extra, u) == 2, "netif_extra.u");
_Static_assert(offsetof(struct netif_extra, u.gso.size) == 2, "netif_extra.u.gso.size");
_Static_assert(offsetof(struct netif_extra, u.gso.type) == 4, "netif_extra.u.gso.type");
_Static_assert(offsetof(struct netif_extra, u.gso.pad) == 5, "netif_extra.u.gso.pad");
_Static_assert(offsetof(struct netif_extra, u.gso.features) == 6, "netif_extra.u.gso.features");
_Static_assert(offsetof(struct netif_extra, u.mcast.addr) == 2, "netif_extra.u.mcast.addr");
_Static_assert(offsetof(struct netif_extra, u.hash.type) == 2, "netif_extra.u.hash.type");
_Static_assert(offsetof(struct netif_extra, u.hash.algorithm) == 3, "netif_extra.u.hash.alg");
_Static_assert(offsetof(struct netif_extra, u.hash.value) == 4, "netif_extra.u.hash.value");

_Static_assert(sizeof(union netif_tx_req_slot) == 12, "tx request slot size");

_Static_assert(sizeof(struct netif_tx_rsp) == 4, "netif_tx_rsp size");
_Static_assert(offsetof(struct netif_tx_rsp, id) == 0, "netif_tx_rsp.id");
_Static_assert(offsetof(struct netif_tx_rsp, status) == 2, "netif_tx_rsp.status");

_Static_assert(sizeof(struct netif_rx_req) == 8, "netif_rx_req size");
_Static_assert(offsetof(struct netif_rx_req, id) == 0, "netif_rx_req.id");
_Static_assert(offsetof(struct netif_rx_req, pad) == 2, "netif_rx_req.pad");
_Static_assert(offsetof(struct netif_rx_req, gref) == 4, "netif_rx_req.gref");

_Static_assert(sizeof(struct netif_rx_rsp) == 8, "netif_rx_rsp size");
_Static_assert(offsetof(struct netif_rx_rsp, id) == 0, "netif_rx_rsp.id");
_Static_assert(offsetof(struct netif_rx_rsp, offset) == 2, "netif_rx_rsp.offset");
_Static_assert(offsetof(struct netif_rx_rsp, flags) == 4, "netif_rx_rsp.flags");
_Static_assert(offsetof(struct netif_rx_rsp, status) == 6, "netif_rx_rsp.status");

_Static_assert(sizeof(union netif_rx_rsp_slot) == 8, "rx response slot size");

_Static_assert(sizeof(union netif_tx_ring_sring_entry) == 12, "netif tx ring slot size");
_Static_assert(sizeof(union netif_rx_ring_sring_entry) == 8, "netif rx ring slot size");

#endif
