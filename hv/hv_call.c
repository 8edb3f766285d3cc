// SPDX-License-Identifier: MIT
// Hypercall decoding: the shape of every op's payload (hv/hv_abi.h) and the
// well-formedness check every received datagram passes before anything
// else looks at it. Pure functions with no hv state, so the unit suite
// (tests/unit/check_hv_call.c) drives every malformed path without
// processes. What "malformed" means is in docs/hv.md ("Validation").
#include "hv/hv_internal.h"

#include <errno.h>
#include <string.h>

#define HV_CREATE_MAX_STRINGS 256u

/* clang-format off */
static const struct hv_op_desc hv_ops[] = {
	{HV_OP_DOMAIN_INFO, "DOMAIN_INFO", sizeof(struct hv_domain_info_req), 0, 0, 0, 0, false, false},
	{HV_OP_SEG_ALLOC, "SEG_ALLOC", sizeof(struct hv_seg_alloc_req), 0, 0, 0, 0, false, false},
	{HV_OP_SEG_FREE, "SEG_FREE", sizeof(struct hv_seg_free_req), 0, 0, 0, 0, false, false},
	{HV_OP_GNTTAB_SETUP, "GNTTAB_SETUP", sizeof(struct hv_gnttab_setup_req), 0, 0, 0, 0, false, false},
	{HV_OP_GNT_MAP, "GNT_MAP", 4, sizeof(struct hv_gnt_map_op), 0, HV_BATCH_MAX, 0, false, false},
	{HV_OP_GNT_UNMAP, "GNT_UNMAP", 4, sizeof(uint32_t), 0, HV_BATCH_MAX, 0, false, false},
	{HV_OP_GNT_COPY, "GNT_COPY", 8, sizeof(struct hv_gnt_copy), 0, HV_COPY_BATCH_MAX, 0, false, false},
	{HV_OP_EVTCHN_ALLOC_UNBOUND, "EVTCHN_ALLOC_UNBOUND", sizeof(struct hv_evtchn_alloc_unbound_req), 0, 0, 0, 0, false, false},
	{HV_OP_EVTCHN_BIND_INTERDOMAIN, "EVTCHN_BIND_INTERDOMAIN", sizeof(struct hv_evtchn_bind_interdomain_req), 0, 0, 0, 0, false, false},
	{HV_OP_EVTCHN_CLOSE, "EVTCHN_CLOSE", sizeof(struct hv_evtchn_close_req), 0, 0, 0, 0, false, false},
	{HV_OP_EVTCHN_STATUS, "EVTCHN_STATUS", sizeof(struct hv_evtchn_status_req), 0, 0, 0, 0, false, false},
	{HV_OP_DEVICE_GET, "DEVICE_GET", sizeof(struct hv_device_req), 0, 0, 0, 0, false, false},
	{HV_OP_HEARTBEAT, "HEARTBEAT", 0, 0, 0, 0, 0, false, false},
	{HV_OP_STORE_SEG, "STORE_SEG", 0, 0, 0, 0, 0, false, false},
	{HV_OP_WATCHDOG_STALL, "WATCHDOG_STALL", sizeof(struct hv_watchdog_stall_req), 0, 0, 0, 0, false, false},
	{HV_OP_DOMCTL_CREATE, "DOMCTL_CREATE", sizeof(struct hv_create_req), 0, 0, 0, 0, true, true},
	{HV_OP_DOMCTL_DESTROY, "DOMCTL_DESTROY", sizeof(struct hv_domid_req), 0, 0, 0, 0, true, false},
	{HV_OP_DOMCTL_PAUSE, "DOMCTL_PAUSE", sizeof(struct hv_domid_req), 0, 0, 0, 0, true, false},
	{HV_OP_DOMCTL_UNPAUSE, "DOMCTL_UNPAUSE", sizeof(struct hv_domid_req), 0, 0, 0, 0, true, false},
	{HV_OP_DOMCTL_ASSIGN_DEVICE, "DOMCTL_ASSIGN_DEVICE", sizeof(struct hv_assign_device_req), 0, 0, 0, 1, true, false},
	{HV_OP_DOMCTL_LIST, "DOMCTL_LIST", 0, 0, 0, 0, 0, true, false},
	{HV_OP_DOMCTL_KILL, "DOMCTL_KILL", sizeof(struct hv_domid_req), 0, 0, 0, 0, true, false},
	{HV_OP_DOMCTL_SUBSCRIBE, "DOMCTL_SUBSCRIBE", 0, 0, 0, 0, 0, true, false},
	{HV_OP_DOMCTL_REVOKE_DEVICE, "DOMCTL_REVOKE_DEVICE", sizeof(struct hv_assign_device_req), 0, 0, 0, 0, true, false},
	{HV_OP_DOMCTL_SET_POLICY, "DOMCTL_SET_POLICY", sizeof(struct hv_policy_req), 0, 0, 0, 0, true, false},
	{HV_OP_DOMCTL_SET_AFFINITY, "DOMCTL_SET_AFFINITY", sizeof(struct hv_affinity_req), 0, 0, 0, 0, true, false},
};
/* clang-format on */

const struct hv_op_desc *hv_call_desc(uint32_t op)
{
	for (size_t i = 0; i < sizeof(hv_ops) / sizeof(hv_ops[0]); i++)
		if (hv_ops[i].op == op)
			return &hv_ops[i];
	return NULL;
}

int hv_call_create_strings(const void *payload, uint32_t len, const char **strs, uint32_t max)
{
	struct hv_create_req req;
	if (len < sizeof(req))
		return -EBADMSG;
	memcpy(&req, payload, sizeof(req));
	if (req.nr_strings == 0 || req.nr_strings > max)
		return -EBADMSG;
	size_t off = sizeof(req);
	if (req.flags & HV_CREATE_F_POLICY)
		off += sizeof(struct hv_policy_req);
	if (len < off)
		return -EBADMSG;
	const char *p = (const char *)payload + off;
	const char *end = (const char *)payload + len;
	for (uint32_t i = 0; i < req.nr_strings; i++) {
		const char *nul = p < end ? memchr(p, 0, (size_t)(end - p)) : NULL;
		if (!nul)
			return -EBADMSG;
		strs[i] = p;
		p = nul + 1;
	}
	return p == end ? 0 : -EBADMSG;
}

int hv_call_check(const void *msg, size_t size, unsigned nfds, bool truncated,
		  const struct hv_op_desc **desc, const char **why)
{
	struct hv_hdr hdr;
	*desc = NULL;
	if (size >= sizeof(hdr)) {
		memcpy(&hdr, msg, sizeof(hdr));
		*desc = hv_call_desc(hdr.op); /* for the log line, even if malformed */
	}
	if (truncated) {
		*why = "message or its fds truncated (too large)";
		return -EBADMSG;
	}
	if (size < sizeof(hdr)) {
		*why = "shorter than the header";
		return -EBADMSG;
	}
	if (hdr.len != size - sizeof(hdr)) {
		*why = "length field disagrees with the datagram size";
		return -EBADMSG;
	}
	const struct hv_op_desc *d = hv_call_desc(hdr.op);
	if (!d) {
		*why = "unknown op";
		return -EBADMSG;
	}
	*desc = d;
	if (hdr.ret != 0) {
		*why = "nonzero ret in a request";
		return -EBADMSG;
	}
	if (nfds != d->nfds) {
		*why = nfds > d->nfds ? "unexpected fds" : "missing fd";
		return -EBADMSG;
	}
	const uint8_t *p = (const uint8_t *)msg + sizeof(hdr);
	if (d->elem) {
		uint32_t count;
		if (hdr.len < d->fixed) {
			*why = "payload shorter than its count";
			return -EBADMSG;
		}
		memcpy(&count, p + d->count_off, sizeof(count));
		if (count > d->max_elems) {
			*why = "batch larger than the op allows";
			return -EBADMSG;
		}
		if (hdr.len != d->fixed + (uint64_t)count * d->elem) {
			*why = "payload size disagrees with its count";
			return -EBADMSG;
		}
		return 0;
	}
	if (d->var_strings) {
		const char *strs[HV_CREATE_MAX_STRINGS];
		if (hv_call_create_strings(p, hdr.len, strs, HV_CREATE_MAX_STRINGS)) {
			*why = "strings do not fill the payload";
			return -EBADMSG;
		}
		return 0;
	}
	if (hdr.len != d->fixed) {
		*why = "payload size wrong for the op";
		return -EBADMSG;
	}
	return 0;
}

int hv_call_name_check(const char *name, size_t cap)
{
	size_t n = strnlen(name, cap);
	if (n == 0 || n == cap)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
		if (!ok)
			return -EINVAL;
	}
	if (name[0] == '.')
		return -EINVAL;
	return 0;
}

int hv_call_devname_check(const char *name, size_t cap)
{
	/* Device names are paths of name components: "vbd/3/51712". */
	char part[HV_DEVNAME_MAX];
	size_t n = strnlen(name, cap);
	if (n == 0 || n == cap || n >= sizeof(part))
		return -EINVAL;
	const char *p = name;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		memcpy(part, p, len);
		part[len] = 0;
		if (hv_call_name_check(part, sizeof(part)))
			return -EINVAL;
		if (!slash)
			return 0;
		p = slash + 1;
	}
}

bool hv_call_copy_fits(uint16_t offset, uint16_t len)
{
	return (uint32_t)offset + len <= HV_PAGE_SIZE;
}
