// SPDX-License-Identifier: MIT
// The layout facts the ring suite compares between Xen's public headers
// (check_ring_xen.c) and drvdom's ring/ headers (check_ring_ours.c). Each
// fact names a Xen expression and ours; each translation unit expands only
// its own side of RING_LAYOUT_FACTS, so the two sets of names never meet in
// one unit and the two tables line up entry by entry. Also the functions of
// the one-header-per-unit build tests.
#ifndef DRVDOM_TESTS_CHECK_RING_LAYOUT_H
#define DRVDOM_TESTS_CHECK_RING_LAYOUT_H

#include <stddef.h>

struct ring_fact {
	const char *name;
	long long value;
};

/* Fill out[] (at least RING_NR_FACTS entries); return the count. */
size_t ring_facts_xen(struct ring_fact *out);
size_t ring_facts_ours(struct ring_fact *out);
#define RING_NR_FACTS 256

/* Each defined in a unit that includes only that header; returns nonzero. */
int ring_hdr_ring_alone(void);
int ring_hdr_blkif_alone(void);
int ring_hdr_netif_alone(void);
int ring_hdr_xenbus_alone(void);
/* Defined in a unit that includes Xen's headers and ours together. */
int ring_hdr_coexist(void);

/* SZ(size of), AL(alignment of), OFF(offset of), VAL(a value):
 * (fact name, Xen's type/expr [, Xen's field], our type/expr [, our field]). */
#define RING_RING_FACTS(X, xn, on)                                                                 \
	SZ(#xn " entry", union xn##_sring_entry, union on##_sring_entry)                           \
	AL(#xn " entry", union xn##_sring_entry, union on##_sring_entry)                           \
	OFF(#xn " req_prod", struct xn##_sring, req_prod, struct on##_sring, req_prod)             \
	OFF(#xn " req_event", struct xn##_sring, req_event, struct on##_sring, req_event)          \
	OFF(#xn " rsp_prod", struct xn##_sring, rsp_prod, struct on##_sring, rsp_prod)             \
	OFF(#xn " rsp_event", struct xn##_sring, rsp_event, struct on##_sring, rsp_event)          \
	OFF(#xn " pvt", struct xn##_sring, pvt, struct on##_sring, pvt)                            \
	OFF(#xn " pad", struct xn##_sring, __pad, struct on##_sring, pad)                          \
	OFF(#xn " ring", struct xn##_sring, ring, struct on##_sring, ring)                         \
	VAL(#xn " slots order 0", __CONST_RING_SIZE(xn, 4096 << 0), on##_nr_slots(0))              \
	VAL(#xn " slots order 1", __CONST_RING_SIZE(xn, 4096 << 1), on##_nr_slots(1))              \
	VAL(#xn " slots order 2", __CONST_RING_SIZE(xn, 4096 << 2), on##_nr_slots(2))              \
	VAL(#xn " slots order 3", __CONST_RING_SIZE(xn, 4096 << 3), on##_nr_slots(3))              \
	VAL(#xn " slots order 4", __CONST_RING_SIZE(xn, 4096 << 4), on##_nr_slots(4))

#define RING_LAYOUT_FACTS                                                                          \
	RING_RING_FACTS(X, blkif, blkif_ring)                                                      \
	RING_RING_FACTS(X, netif_tx, netif_tx_ring)                                                \
	RING_RING_FACTS(X, netif_rx, netif_rx_ring)                                                \
	/* blkif */                                                                                \
	SZ("blkif seg", struct blkif_request_segment, struct blkif_seg)                            \
	OFF("blkif seg.gref", struct blkif_request_segment, gref, struct blkif_seg, gref)          \
	OFF("blkif seg.first_sect", struct blkif_request_segment, first_sect, struct blkif_seg,    \
	    first_sect)                                                                            \
	OFF("blkif seg.last_sect", struct blkif_request_segment, last_sect, struct blkif_seg,      \
	    last_sect)                                                                             \
	SZ("blkif req", struct blkif_request, struct blkif_req)                                    \
	AL("blkif req", struct blkif_request, struct blkif_req)                                    \
	SZ("blkif req slot", struct blkif_request, union blkif_req_slot)                           \
	OFF("blkif req.operation", struct blkif_request, operation, struct blkif_req, operation)   \
	OFF("blkif req.nr_segments", struct blkif_request, nr_segments, struct blkif_req,          \
	    nr_segments)                                                                           \
	OFF("blkif req.handle", struct blkif_request, handle, struct blkif_req, handle)            \
	OFF("blkif req.id", struct blkif_request, id, struct blkif_req, id)                        \
	OFF("blkif req.sector_number", struct blkif_request, sector_number, struct blkif_req,      \
	    sector_number)                                                                         \
	OFF("blkif req.seg", struct blkif_request, seg, struct blkif_req, seg)                     \
	OFF("blkif req.seg[10]", struct blkif_request, seg[10], struct blkif_req, seg[10])         \
	OFF("blkif slot.operation", struct blkif_request, operation, union blkif_req_slot,         \
	    operation)                                                                             \
	SZ("blkif discard", struct blkif_request_discard, struct blkif_req_discard)                \
	OFF("blkif discard.operation", struct blkif_request_discard, operation,                    \
	    struct blkif_req_discard, operation)                                                   \
	OFF("blkif discard.flag", struct blkif_request_discard, flag, struct blkif_req_discard,    \
	    flag)                                                                                  \
	OFF("blkif discard.handle", struct blkif_request_discard, handle,                          \
	    struct blkif_req_discard, handle)                                                      \
	OFF("blkif discard.id", struct blkif_request_discard, id, struct blkif_req_discard, id)    \
	OFF("blkif discard.sector_number", struct blkif_request_discard, sector_number,            \
	    struct blkif_req_discard, sector_number)                                               \
	OFF("blkif discard.nr_sectors", struct blkif_request_discard, nr_sectors,                  \
	    struct blkif_req_discard, nr_sectors)                                                  \
	SZ("blkif indirect", struct blkif_request_indirect, struct blkif_req_indirect)             \
	OFF("blkif indirect.operation", struct blkif_request_indirect, operation,                  \
	    struct blkif_req_indirect, operation)                                                  \
	OFF("blkif indirect.indirect_op", struct blkif_request_indirect, indirect_op,              \
	    struct blkif_req_indirect, indirect_op)                                                \
	OFF("blkif indirect.nr_segments", struct blkif_request_indirect, nr_segments,              \
	    struct blkif_req_indirect, nr_segments)                                                \
	OFF("blkif indirect.id", struct blkif_request_indirect, id, struct blkif_req_indirect, id) \
	OFF("blkif indirect.sector_number", struct blkif_request_indirect, sector_number,          \
	    struct blkif_req_indirect, sector_number)                                              \
	OFF("blkif indirect.handle", struct blkif_request_indirect, handle,                        \
	    struct blkif_req_indirect, handle)                                                     \
	OFF("blkif indirect.indirect_grefs", struct blkif_request_indirect, indirect_grefs,        \
	    struct blkif_req_indirect, indirect_grefs)                                             \
	SZ("blkif rsp", struct blkif_response, struct blkif_rsp)                                   \
	OFF("blkif rsp.id", struct blkif_response, id, struct blkif_rsp, id)                       \
	OFF("blkif rsp.operation", struct blkif_response, operation, struct blkif_rsp, operation)  \
	OFF("blkif rsp.status", struct blkif_response, status, struct blkif_rsp, status)           \
	VAL("BLKIF_OP_READ", BLKIF_OP_READ, BLKIF_OP_READ)                                         \
	VAL("BLKIF_OP_WRITE", BLKIF_OP_WRITE, BLKIF_OP_WRITE)                                      \
	VAL("BLKIF_OP_WRITE_BARRIER", BLKIF_OP_WRITE_BARRIER, BLKIF_OP_WRITE_BARRIER)              \
	VAL("BLKIF_OP_FLUSH_DISKCACHE", BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_FLUSH_DISKCACHE)        \
	VAL("BLKIF_OP_DISCARD", BLKIF_OP_DISCARD, BLKIF_OP_DISCARD)                                \
	VAL("BLKIF_OP_INDIRECT", BLKIF_OP_INDIRECT, BLKIF_OP_INDIRECT)                             \
	VAL("BLKIF_RSP_OKAY", BLKIF_RSP_OKAY, BLKIF_RSP_OKAY)                                      \
	VAL("BLKIF_RSP_ERROR", BLKIF_RSP_ERROR, BLKIF_RSP_ERROR)                                   \
	VAL("BLKIF_RSP_EOPNOTSUPP", BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_EOPNOTSUPP)                    \
	VAL("BLKIF_MAX_SEGMENTS_PER_REQUEST", BLKIF_MAX_SEGMENTS_PER_REQUEST,                      \
	    BLKIF_MAX_SEGMENTS_PER_REQUEST)                                                        \
	VAL("BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST", BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,          \
	    BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST)                                                  \
	VAL("BLKIF_DISCARD_SECURE", BLKIF_DISCARD_SECURE, BLKIF_DISCARD_SECURE)                    \
	VAL("segments per indirect page", 4096 / sizeof(struct blkif_request_segment),             \
	    BLKIF_SEGS_PER_INDIRECT_FRAME)                                                         \
	VAL("VDISK_READONLY", VDISK_READONLY, VDISK_READONLY)                                      \
	/* netif */                                                                                \
	SZ("netif tx req", struct netif_tx_request, struct netif_tx_req)                           \
	SZ("netif tx req slot", struct netif_tx_request, union netif_tx_req_slot)                  \
	OFF("netif tx req.gref", struct netif_tx_request, gref, struct netif_tx_req, gref)         \
	OFF("netif tx req.offset", struct netif_tx_request, offset, struct netif_tx_req, offset)   \
	OFF("netif tx req.flags", struct netif_tx_request, flags, struct netif_tx_req, flags)      \
	OFF("netif tx req.id", struct netif_tx_request, id, struct netif_tx_req, id)               \
	OFF("netif tx req.size", struct netif_tx_request, size, struct netif_tx_req, size)         \
	SZ("netif tx rsp", struct netif_tx_response, struct netif_tx_rsp)                          \
	OFF("netif tx rsp.id", struct netif_tx_response, id, struct netif_tx_rsp, id)              \
	OFF("netif tx rsp.status", struct netif_tx_response, status, struct netif_tx_rsp, status)  \
	SZ("netif extra", struct netif_extra_info, struct netif_extra)                             \
	OFF("netif extra.type", struct netif_extra_info, type, struct netif_extra, type)           \
	OFF("netif extra.flags", struct netif_extra_info, flags, struct netif_extra, flags)        \
	OFF("netif extra.gso.size", struct netif_extra_info, u.gso.size, struct netif_extra,       \
	    u.gso.size)                                                                            \
	OFF("netif extra.gso.type", struct netif_extra_info, u.gso.type, struct netif_extra,       \
	    u.gso.type)                                                                            \
	OFF("netif extra.gso.features", struct netif_extra_info, u.gso.features,                   \
	    struct netif_extra, u.gso.features)                                                    \
	OFF("netif extra.mcast.addr", struct netif_extra_info, u.mcast.addr, struct netif_extra,   \
	    u.mcast.addr)                                                                          \
	OFF("netif extra.hash.type", struct netif_extra_info, u.hash.type, struct netif_extra,     \
	    u.hash.type)                                                                           \
	OFF("netif extra.hash.algorithm", struct netif_extra_info, u.hash.algorithm,               \
	    struct netif_extra, u.hash.algorithm)                                                  \
	OFF("netif extra.hash.value", struct netif_extra_info, u.hash.value, struct netif_extra,   \
	    u.hash.value)                                                                          \
	SZ("netif rx req", struct netif_rx_request, struct netif_rx_req)                           \
	OFF("netif rx req.id", struct netif_rx_request, id, struct netif_rx_req, id)               \
	OFF("netif rx req.gref", struct netif_rx_request, gref, struct netif_rx_req, gref)         \
	SZ("netif rx rsp", struct netif_rx_response, struct netif_rx_rsp)                          \
	SZ("netif rx rsp slot", struct netif_rx_response, union netif_rx_rsp_slot)                 \
	OFF("netif rx rsp.id", struct netif_rx_response, id, struct netif_rx_rsp, id)              \
	OFF("netif rx rsp.offset", struct netif_rx_response, offset, struct netif_rx_rsp, offset)  \
	OFF("netif rx rsp.flags", struct netif_rx_response, flags, struct netif_rx_rsp, flags)     \
	OFF("netif rx rsp.status", struct netif_rx_response, status, struct netif_rx_rsp, status)  \
	VAL("XEN_NETIF_NR_SLOTS_MIN", XEN_NETIF_NR_SLOTS_MIN, XEN_NETIF_NR_SLOTS_MIN)              \
	VAL("XEN_NETIF_MAX_TX_SIZE", XEN_NETIF_MAX_TX_SIZE, XEN_NETIF_MAX_TX_SIZE)                 \
	VAL("NETTXF_csum_blank", NETTXF_csum_blank, NETTXF_CSUM_BLANK)                             \
	VAL("NETTXF_data_validated", NETTXF_data_validated, NETTXF_DATA_VALIDATED)                 \
	VAL("NETTXF_more_data", NETTXF_more_data, NETTXF_MORE_DATA)                                \
	VAL("NETTXF_extra_info", NETTXF_extra_info, NETTXF_EXTRA_INFO)                             \
	VAL("NETRXF_data_validated", NETRXF_data_validated, NETRXF_DATA_VALIDATED)                 \
	VAL("NETRXF_csum_blank", NETRXF_csum_blank, NETRXF_CSUM_BLANK)                             \
	VAL("NETRXF_more_data", NETRXF_more_data, NETRXF_MORE_DATA)                                \
	VAL("NETRXF_extra_info", NETRXF_extra_info, NETRXF_EXTRA_INFO)                             \
	VAL("NETRXF_gso_prefix", NETRXF_gso_prefix, NETRXF_GSO_PREFIX)                             \
	VAL("XEN_NETIF_EXTRA_TYPE_GSO", XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_EXTRA_TYPE_GSO)        \
	VAL("XEN_NETIF_EXTRA_TYPE_MCAST_ADD", XEN_NETIF_EXTRA_TYPE_MCAST_ADD,                      \
	    XEN_NETIF_EXTRA_TYPE_MCAST_ADD)                                                        \
	VAL("XEN_NETIF_EXTRA_TYPE_MCAST_DEL", XEN_NETIF_EXTRA_TYPE_MCAST_DEL,                      \
	    XEN_NETIF_EXTRA_TYPE_MCAST_DEL)                                                        \
	VAL("XEN_NETIF_EXTRA_TYPE_HASH", XEN_NETIF_EXTRA_TYPE_HASH, XEN_NETIF_EXTRA_TYPE_HASH)     \
	VAL("XEN_NETIF_EXTRA_FLAG_MORE", XEN_NETIF_EXTRA_FLAG_MORE, NETIF_EXTRA_FLAG_MORE)         \
	VAL("XEN_NETIF_GSO_TYPE_TCPV4", XEN_NETIF_GSO_TYPE_TCPV4, XEN_NETIF_GSO_TYPE_TCPV4)        \
	VAL("XEN_NETIF_GSO_TYPE_TCPV6", XEN_NETIF_GSO_TYPE_TCPV6, XEN_NETIF_GSO_TYPE_TCPV6)        \
	VAL("NETIF_RSP_DROPPED", NETIF_RSP_DROPPED, NETIF_RSP_DROPPED)                             \
	VAL("NETIF_RSP_ERROR", NETIF_RSP_ERROR, NETIF_RSP_ERROR)                                   \
	VAL("NETIF_RSP_OKAY", NETIF_RSP_OKAY, NETIF_RSP_OKAY)                                      \
	VAL("NETIF_RSP_NULL", NETIF_RSP_NULL, NETIF_RSP_NULL)                                      \
	/* xenbus */                                                                               \
	VAL("XenbusStateUnknown", XenbusStateUnknown, XENBUS_STATE_UNKNOWN)                        \
	VAL("XenbusStateInitialising", XenbusStateInitialising, XENBUS_STATE_INITIALISING)         \
	VAL("XenbusStateInitWait", XenbusStateInitWait, XENBUS_STATE_INIT_WAIT)                    \
	VAL("XenbusStateInitialised", XenbusStateInitialised, XENBUS_STATE_INITIALISED)            \
	VAL("XenbusStateConnected", XenbusStateConnected, XENBUS_STATE_CONNECTED)                  \
	VAL("XenbusStateClosing", XenbusStateClosing, XENBUS_STATE_CLOSING)                        \
	VAL("XenbusStateClosed", XenbusStateClosed, XENBUS_STATE_CLOSED)                           \
	VAL("XenbusStateReconfiguring", XenbusStateReconfiguring, XENBUS_STATE_RECONFIGURING)      \
	VAL("XenbusStateReconfigured", XenbusStateReconfigured, XENBUS_STATE_RECONFIGURED)

#endif
