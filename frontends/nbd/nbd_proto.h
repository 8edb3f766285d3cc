// SPDX-License-Identifier: MIT
// The NBD wire format (fixed newstyle negotiation, simple replies) as
// constants and byte offsets, with the pure helpers that parse and check a
// transmission request. No I/O and no allocation here, so the unit tests can
// feed it arbitrary bytes. Every field on the wire is big-endian; the layout
// is described in docs/nbd.md and, authoritatively, in the NBD protocol
// document (doc/proto.md of the NetworkBlockDevice/nbd project).
#ifndef DRVDOM_FRONTENDS_NBD_NBD_PROTO_H
#define DRVDOM_FRONTENDS_NBD_NBD_PROTO_H

#include <stdbool.h>
#include <stdint.h>

/* Handshake. */
#define NBD_MAGIC UINT64_C(0x4e42444d41474943)	    /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC UINT64_C(0x49484156454f5054) /* "IHAVEOPT" */
#define NBD_REP_MAGIC UINT64_C(0x0003e889045565a9)

#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0) /* handshake flags (server, 16 bit) */
#define NBD_FLAG_NO_ZEROES (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0) /* client flags (32 bit) */
#define NBD_FLAG_C_NO_ZEROES (1u << 1)

/* Options. */
#define NBD_OPT_EXPORT_NAME 1u
#define NBD_OPT_ABORT 2u
#define NBD_OPT_LIST 3u
#define NBD_OPT_PEEK_EXPORT 4u
#define NBD_OPT_STARTTLS 5u
#define NBD_OPT_INFO 6u
#define NBD_OPT_GO 7u
#define NBD_OPT_STRUCTURED_REPLY 8u
#define NBD_OPT_LIST_META_CONTEXT 9u
#define NBD_OPT_SET_META_CONTEXT 10u
#define NBD_OPT_EXTENDED_HEADERS 11u

/* Option reply types; errors have bit 31 set. */
#define NBD_REP_ACK 1u
#define NBD_REP_SERVER 2u
#define NBD_REP_INFO 3u
#define NBD_REP_FLAG_ERROR (1u << 31)
#define NBD_REP_ERR_UNSUP (NBD_REP_FLAG_ERROR | 1u)
#define NBD_REP_ERR_POLICY (NBD_REP_FLAG_ERROR | 2u)
#define NBD_REP_ERR_INVALID (NBD_REP_FLAG_ERROR | 3u)
#define NBD_REP_ERR_PLATFORM (NBD_REP_FLAG_ERROR | 4u)
#define NBD_REP_ERR_TLS_REQD (NBD_REP_FLAG_ERROR | 5u)
#define NBD_REP_ERR_UNKNOWN (NBD_REP_FLAG_ERROR | 6u)
#define NBD_REP_ERR_SHUTDOWN (NBD_REP_FLAG_ERROR | 7u)
#define NBD_REP_ERR_BLOCK_SIZE_REQD (NBD_REP_FLAG_ERROR | 8u)
#define NBD_REP_ERR_TOO_BIG (NBD_REP_FLAG_ERROR | 9u)

/* NBD_REP_INFO item types. */
#define NBD_INFO_EXPORT 0u
#define NBD_INFO_NAME 1u
#define NBD_INFO_DESCRIPTION 2u
#define NBD_INFO_BLOCK_SIZE 3u

/* Transmission flags (16 bit), sent with the export size. */
#define NBD_FLAG_HAS_FLAGS (1u << 0)
#define NBD_FLAG_READ_ONLY (1u << 1)
#define NBD_FLAG_SEND_FLUSH (1u << 2)
#define NBD_FLAG_SEND_FUA (1u << 3)
#define NBD_FLAG_ROTATIONAL (1u << 4)
#define NBD_FLAG_SEND_TRIM (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN (1u << 8)

/* Commands and command flags. */
#define NBD_CMD_READ 0u
#define NBD_CMD_WRITE 1u
#define NBD_CMD_DISC 2u
#define NBD_CMD_FLUSH 3u
#define NBD_CMD_TRIM 4u
#define NBD_CMD_CACHE 5u
#define NBD_CMD_WRITE_ZEROES 6u
#define NBD_CMD_BLOCK_STATUS 7u

#define NBD_CMD_FLAG_FUA (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)

/* Error values carried in replies (not the host's errno numbering, though
 * Linux happens to agree on these). */
#define NBD_EPERM 1u
#define NBD_EIO 5u
#define NBD_ENOMEM 12u
#define NBD_EINVAL 22u
#define NBD_ENOSPC 28u
#define NBD_EOVERFLOW 75u
#define NBD_ENOTSUP 95u
#define NBD_ESHUTDOWN 108u

#define NBD_REQUEST_MAGIC 0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u

/* Sizes and field offsets of the fixed-size messages. */
#define NBD_GREETING_SIZE 18u /* u64 NBDMAGIC, u64 IHAVEOPT, u16 flags */
#define NBD_CLIENT_FLAGS_SIZE 4u
#define NBD_OPT_HDR_SIZE 16u	       /* u64 IHAVEOPT, u32 option, u32 length */
#define NBD_OPT_REPLY_SIZE 20u	       /* u64 magic, u32 option, u32 type, u32 length */
#define NBD_EXPORT_NAME_REPLY_SIZE 10u /* u64 size, u16 flags (+124 zeroes) */
#define NBD_EXPORT_NAME_ZEROES 124u

#define NBD_REQUEST_SIZE 28u
#define NBD_REQ_OFF_MAGIC 0u
#define NBD_REQ_OFF_FLAGS 4u
#define NBD_REQ_OFF_TYPE 6u
#define NBD_REQ_OFF_COOKIE 8u
#define NBD_REQ_OFF_OFFSET 16u
#define NBD_REQ_OFF_LENGTH 24u
_Static_assert(NBD_REQ_OFF_LENGTH + 4 == NBD_REQUEST_SIZE, "NBD request is 28 bytes");

#define NBD_SIMPLE_REPLY_SIZE 16u /* u32 magic, u32 error, u64 cookie */
_Static_assert(4 + 4 + 8 == NBD_SIMPLE_REPLY_SIZE, "NBD simple reply is 16 bytes");

/* Strings (export names) may be no longer than this. */
#define NBD_MAX_STRING 4096u

/* Big-endian accessors for unaligned byte buffers. */
static inline uint16_t nbd_get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t nbd_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t nbd_get64(const uint8_t *p)
{
	return (uint64_t)nbd_get32(p) << 32 | nbd_get32(p + 4);
}

static inline void nbd_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void nbd_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void nbd_put64(uint8_t *p, uint64_t v)
{
	nbd_put32(p, (uint32_t)(v >> 32));
	nbd_put32(p + 4, (uint32_t)v);
}

/* A transmission request, decoded to host order. */
struct nbd_request {
	uint32_t magic;
	uint16_t flags;
	uint16_t type;
	uint64_t cookie;
	uint64_t offset;
	uint32_t length;
};

/* What the request checker must know about the export. */
struct nbd_limits {
	uint64_t size;
	uint32_t min_block;   /* offsets and lengths must be multiples (power of 2) */
	uint32_t max_payload; /* largest READ or WRITE length */
	bool read_only, can_flush, can_trim, can_zero;
};

/* Decode the 28 bytes of a request. Never fails: the magic is checked by
 * nbd_proto_check_request(). Pure; any caller. */
void nbd_proto_parse_request(const uint8_t buf[NBD_REQUEST_SIZE], struct nbd_request *req);

/* Validate a decoded request against the export. Returns 0 if it may be
 * served, an NBD error value (NBD_EINVAL, NBD_ENOSPC, NBD_EPERM, ...) to
 * reply with, or -EPROTO if the stream cannot be trusted any more (bad
 * magic, or a WRITE whose payload is too large to drain): the connection
 * must then be closed. Pure; any caller. */
int nbd_proto_check_request(const struct nbd_request *req, const struct nbd_limits *lim);

/* Encode a simple reply. */
void nbd_proto_put_simple_reply(uint8_t buf[NBD_SIMPLE_REPLY_SIZE], uint32_t error,
				uint64_t cookie);

/* Map a host -errno (as passed to nbd_io_complete) to an NBD error value. */
uint32_t nbd_proto_errno_to_nbd(int err);

/* The transmission flags an export with these limits advertises. */
uint16_t nbd_proto_transmission_flags(const struct nbd_limits *lim, bool can_fua,
				      bool can_multi_conn);

#endif
