// SPDX-License-Identifier: MIT
// Pure NBD protocol helpers: decoding and validating transmission requests,
// encoding simple replies, mapping errno values and computing the
// transmission flags. Shared by the server and the unit tests; see
// docs/nbd.md for which checks answer which error.
#include "frontends/nbd/nbd_proto.h"

#include <errno.h>

void nbd_proto_parse_request(const uint8_t buf[NBD_REQUEST_SIZE], struct nbd_request *req)
{
	req->magic = nbd_get32(buf + NBD_REQ_OFF_MAGIC);
	req->flags = nbd_get16(buf + NBD_REQ_OFF_FLAGS);
	req->type = nbd_get16(buf + NBD_REQ_OFF_TYPE);
	req->cookie = nbd_get64(buf + NBD_REQ_OFF_COOKIE);
	req->offset = nbd_get64(buf + NBD_REQ_OFF_OFFSET);
	req->length = nbd_get32(buf + NBD_REQ_OFF_LENGTH);
}

static bool range_ok(const struct nbd_request *req, const struct nbd_limits *lim)
{
	return req->offset <= lim->size && req->length <= lim->size - req->offset;
}

static bool aligned(const struct nbd_request *req, const struct nbd_limits *lim)
{
	uint64_t mask = lim->min_block > 1 ? lim->min_block - 1 : 0;

	return (req->offset & mask) == 0 && (req->length & mask) == 0;
}

int nbd_proto_check_request(const struct nbd_request *req, const struct nbd_limits *lim)
{
	const uint16_t known_flags = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE;

	if (req->magic != NBD_REQUEST_MAGIC)
		return -EPROTO;
	if (req->flags & ~known_flags)
		return NBD_EINVAL;
	if ((req->flags & NBD_CMD_FLAG_NO_HOLE) && req->type != NBD_CMD_WRITE_ZEROES)
		return NBD_EINVAL;

	switch (req->type) {
	case NBD_CMD_READ:
		if (req->length > lim->max_payload)
			return NBD_EINVAL; /* no payload to drain: stream stays in sync */
		if (!range_ok(req, lim) || !aligned(req, lim))
			return NBD_EINVAL;
		return 0;
	case NBD_CMD_WRITE:
		/* The payload of a rejected write is drained by the server. */
		if (req->length > lim->max_payload)
			return NBD_EINVAL;
		if (lim->read_only)
			return NBD_EPERM;
		if (!aligned(req, lim))
			return NBD_EINVAL;
		if (!range_ok(req, lim))
			return NBD_ENOSPC;
		return 0;
	case NBD_CMD_WRITE_ZEROES:
		if (!lim->can_zero)
			return NBD_EINVAL;
		if (lim->read_only)
			return NBD_EPERM;
		if (!aligned(req, lim))
			return NBD_EINVAL;
		if (!range_ok(req, lim))
			return NBD_ENOSPC;
		return 0;
	case NBD_CMD_TRIM:
		if (!lim->can_trim)
			return NBD_EINVAL;
		if (lim->read_only)
			return NBD_EPERM;
		if (!range_ok(req, lim) || !aligned(req, lim))
			return NBD_EINVAL;
		return 0;
	case NBD_CMD_FLUSH:
		/* offset and length are reserved; a nonzero value is refused. */
		if (!lim->can_flush || req->offset != 0 || req->length != 0)
			return NBD_EINVAL;
		return 0;
	case NBD_CMD_DISC:
		return 0;
	default:
		return NBD_EINVAL;
	}
}

void nbd_proto_put_simple_reply(uint8_t buf[NBD_SIMPLE_REPLY_SIZE], uint32_t error, uint64_t cookie)
{
	nbd_put32(buf, NBD_SIMPLE_REPLY_MAGIC);
	nbd_put32(buf + 4, error);
	nbd_put64(buf + 8, cookie);
}

uint32_t nbd_proto_errno_to_nbd(int err)
{
	switch (-err) {
	case 0:
		return 0;
	case EPERM:
	case EROFS:
		return NBD_EPERM;
	case ENOMEM:
		return NBD_ENOMEM;
	case EINVAL:
		return NBD_EINVAL;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return NBD_ENOSPC;
	case EOVERFLOW:
		return NBD_EOVERFLOW;
	case ENOTSUP:
		return NBD_ENOTSUP;
	case ESHUTDOWN:
		return NBD_ESHUTDOWN;
	default:
		return NBD_EIO;
	}
}

uint16_t nbd_proto_transmission_flags(const struct nbd_limits *lim, bool can_fua,
				      bool can_multi_conn)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS;

	if (lim->read_only)
		f |= NBD_FLAG_READ_ONLY;
	if (lim->can_flush)
		f |= NBD_FLAG_SEND_FLUSH;
	if (can_fua && !lim->read_only)
		f |= NBD_FLAG_SEND_FUA;
	if (lim->can_trim && !lim->read_only)
		f |= NBD_FLAG_SEND_TRIM;
	if (lim->can_zero && !lim->read_only)
		f |= NBD_FLAG_SEND_WRITE_ZEROES;
	if (can_multi_conn)
		f |= NBD_FLAG_CAN_MULTI_CONN;
	return f;
}
