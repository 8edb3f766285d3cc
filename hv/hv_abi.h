// SPDX-License-Identifier: MIT
// The hypercall wire format between drvdom-hv and its domains (and dom0
// tools). Self-contained: fixed-width types, no pointers; every layout is
// asserted. Semantics are in docs/hv.md. One SOCK_SEQPACKET datagram per
// message: struct hv_hdr, then hdr.len payload bytes; fds with SCM_RIGHTS.
#ifndef DRVDOM_HV_ABI_H
#define DRVDOM_HV_ABI_H

#include <stddef.h>
#include <stdint.h>

typedef uint16_t domid_t;
typedef uint32_t grant_ref_t;
typedef uint32_t evtchn_port_t;

#define HV_PAGE_SHIFT 12
#define HV_PAGE_SIZE (1u << HV_PAGE_SHIFT)

#define DOMID_FIRST_FREE 0x7FF0u /* domids are 1 .. DOMID_FIRST_FREE - 1 */
#define DOMID_SELF 0x7FF0u
#define DOMID_INVALID 0x7FF4u

#define HV_MSG_MAX 65536u      /* largest datagram, header included */
#define HV_MAX_FDS 64u	       /* most fds in one message */
#define HV_NAME_MAX 64u	       /* domain names, NUL included */
#define HV_DEVNAME_MAX 32u     /* device names, NUL included */
#define HV_BATCH_MAX 64u       /* grant map / unmap ops per call */
#define HV_COPY_BATCH_MAX 256u /* grant copy ops per call */
#define HV_EVTCHN_PORTS 4096u  /* Xen 2-level ABI on 64-bit: 64 x 64 ports */

/* Reserved grant refs (Xen): 0-7 reserved, 1 = xenstore page. */
#define GNTTAB_NR_RESERVED_ENTRIES 8u
#define GNTTAB_RESERVED_XENSTORE 1u

/* --- Xen v1 grant entry, written by the granter in its grant table ---- */
struct grant_entry_v1 {
	uint16_t flags;
	domid_t domid;
	uint32_t frame;
};
_Static_assert(sizeof(struct grant_entry_v1) == 8, "grant_entry_v1 size");
_Static_assert(offsetof(struct grant_entry_v1, flags) == 0, "flags");
_Static_assert(offsetof(struct grant_entry_v1, domid) == 2, "domid");
_Static_assert(offsetof(struct grant_entry_v1, frame) == 4, "frame");

#define GTF_invalid 0u
#define GTF_permit_access 1u
#define GTF_type_mask 3u
#define GTF_readonly (1u << 2)
#define GTF_reading (1u << 3) /* set by the hv while mapped */
#define GTF_writing (1u << 4) /* set by the hv while mapped writable */

#define GNTMAP_readonly (1u << 2)

#define GNTST_okay 0
#define GNTST_general_error (-1)
#define GNTST_bad_domain (-2)
#define GNTST_bad_gntref (-3)
#define GNTST_bad_handle (-4)
#define GNTST_permission_denied (-8)
#define GNTST_bad_page (-9)
#define GNTST_bad_copy_arg (-10)
#define GNTST_no_space (-13)

#define GNTCOPY_source_gref (1u << 0)
#define GNTCOPY_dest_gref (1u << 1)

/* --- message header -------------------------------------------------- */
struct hv_hdr {
	uint32_t op;  /* HV_OP_* or HV_EVT_* */
	uint32_t id;  /* chosen by the caller, echoed; 0 on async events */
	uint32_t len; /* payload bytes after the header */
	int32_t ret;  /* 0 in requests; 0 or -errno in replies */
};
_Static_assert(sizeof(struct hv_hdr) == 16, "hv_hdr size");

enum hv_op {
	/* any domain */
	HV_OP_DOMAIN_INFO = 1,
	HV_OP_SEG_ALLOC = 2,
	HV_OP_SEG_FREE = 3,
	HV_OP_GNTTAB_SETUP = 4,
	HV_OP_GNT_MAP = 5,
	HV_OP_GNT_UNMAP = 6,
	HV_OP_GNT_COPY = 7,
	HV_OP_EVTCHN_ALLOC_UNBOUND = 8,
	HV_OP_EVTCHN_BIND_INTERDOMAIN = 9,
	HV_OP_EVTCHN_CLOSE = 10,
	HV_OP_EVTCHN_STATUS = 11,
	HV_OP_DEVICE_GET = 12,
	HV_OP_HEARTBEAT = 13,
	HV_OP_STORE_SEG = 14,
	HV_OP_WATCHDOG_STALL = 15, /* ring-progress watchdog (docs/recovery.md) */
	/* domain 0 only: anyone else gets -EPERM */
	HV_OP_DOMCTL_CREATE = 32,
	HV_OP_DOMCTL_DESTROY = 33,
	HV_OP_DOMCTL_PAUSE = 34,
	HV_OP_DOMCTL_UNPAUSE = 35,
	HV_OP_DOMCTL_ASSIGN_DEVICE = 36,
	HV_OP_DOMCTL_LIST = 37,
	HV_OP_DOMCTL_KILL = 38,
	HV_OP_DOMCTL_SUBSCRIBE = 39,
	HV_OP_DOMCTL_REVOKE_DEVICE = 40,
	HV_OP_DOMCTL_SET_POLICY = 41,	/* crash recovery (docs/recovery.md) */
	HV_OP_DOMCTL_SET_AFFINITY = 42, /* cpus = (docs/hv.md, "CPU placement") */
};

enum hv_evt {
	HV_EVT_PORT_BOUND = 0x100,
	HV_EVT_PORT_CLOSED = 0x101,
	HV_EVT_DEVICE_ASSIGNED = 0x102,
	HV_EVT_DOMAIN_EXIT = 0x103,
	/* Crash recovery (docs/recovery.md); the first two go to dom0
	 * subscribers, the last to the domain itself. */
	HV_EVT_DOMAIN_RESTARTED = 0x104, /* struct hv_evt_domain_restarted */
	HV_EVT_DOMAIN_FAILED = 0x105,	 /* struct hv_evt_domain_failed */
	HV_EVT_WATCHDOG = 0x106,	 /* struct hv_evt_watchdog */
};

/* HV_OP_DOMAIN_INFO: request, then reply (Xen's start_info, roughly). */
struct hv_domain_info_req {
	domid_t domid; /* DOMID_SELF for the caller */
	uint16_t pad;
};
/* RESTARTING: crashed, a new instance starts after the backoff delay;
 * DEAD: on_crash = preserve kept the record; FAILED: the crash limit was hit.
 * The last three have no process; only DOMAIN_INFO, LIST and DESTROY (which
 * drops the record) see them. */
enum hv_dom_state {
	HV_DOM_RUNNING = 1,
	HV_DOM_PAUSED = 2,
	HV_DOM_DYING = 3,
	HV_DOM_DEAD = 4,
	HV_DOM_RESTARTING = 5,
	HV_DOM_FAILED = 6,
};
struct hv_domain_info {
	domid_t domid;
	uint16_t state;		  /* enum hv_dom_state */
	uint32_t flags;		  /* HV_DOMF_* */
	int32_t pid;		  /* host pid (dom0 callers only, else 0) */
	evtchn_port_t store_port; /* unbound port, remote dom0: xenstore */
	uint32_t store_frame;	  /* frame of the xenstore page (grant ref 1) */
	uint32_t restarts;	  /* times this domain was restarted */
	uint64_t memory;	  /* bytes the domain may hold in segments */
	uint64_t start_ns;	  /* CLOCK_MONOTONIC at start */
	char name[HV_NAME_MAX];
};
#define HV_DOMF_PRIVILEGED (1u << 0)
#define HV_DOMF_DRIVER (1u << 1)
_Static_assert(sizeof(struct hv_domain_info) == 104, "hv_domain_info size");

/* HV_OP_SEG_ALLOC: reply carries one fd (read-write memfd). */
struct hv_seg_alloc_req {
	domid_t peer; /* the one domain this segment is dedicated to */
	uint16_t pad;
	uint32_t npages;
};
struct hv_seg_alloc_rep {
	uint32_t seg_id;
	uint32_t first_frame; /* frames first_frame .. first_frame+npages-1 */
	uint32_t npages;
	uint32_t pad;
};
/* HV_OP_SEG_FREE: -EBUSY while any frame of it is mapped by the peer. */
struct hv_seg_free_req {
	uint32_t seg_id;
};

/* HV_OP_STORE_SEG: empty request; reply is struct hv_seg_alloc_rep for the
 * one-page segment holding this domain's xenstore page (the start-info frame
 * granted to dom0 at GNTTAB_RESERVED_XENSTORE) plus its read-write fd, so the
 * domain can map its own store page. Domain 0 has none: -ENOENT. */

/* HV_OP_HEARTBEAT, HV_OP_DOMCTL_LIST, HV_OP_DOMCTL_SUBSCRIBE: empty request.
 * HV_OP_GNTTAB_SETUP: the table is created with the domain and has a fixed
 * size (the reply's nr_entries, >= the request unless capped); every call
 * returns the same table. */

/* HV_OP_GNTTAB_SETUP: reply carries the grant table memfd (read-write). */
struct hv_gnttab_setup_req {
	uint32_t nr_entries; /* wanted; the hv may cap it */
};
struct hv_gnttab_setup_rep {
	uint32_t nr_entries;
};

/* HV_OP_GNT_MAP: payload is uint32_t count, then count ops. */
struct hv_gnt_map_op {
	domid_t domid;	/* granter */
	uint16_t flags; /* GNTMAP_readonly */
	grant_ref_t ref;
};
/* Reply: uint32_t count, count results, fds for the results that name one. */
struct hv_gnt_map_res {
	int16_t status;	   /* GNTST_* */
	uint16_t fd_index; /* index into the reply's fds, or 0xFFFF */
	uint32_t handle;
	uint32_t seg_id;  /* granter's segment: (domid, seg_id, seg_gen) */
	uint32_t seg_gen; /* names one segment instance for caching */
	uint32_t seg_npages;
	uint32_t offset; /* byte offset of the page in the segment */
};
_Static_assert(sizeof(struct hv_gnt_map_op) == 8, "hv_gnt_map_op size");
_Static_assert(sizeof(struct hv_gnt_map_res) == 24, "hv_gnt_map_res size");

/* HV_OP_GNT_UNMAP: uint32_t count, count uint32_t handles. Reply: count,
 * then count int16_t statuses. */

/* HV_OP_GNT_COPY: uint32_t count, uint32_t pad, count ops in Xen's
 * struct gnttab_copy layout (x86_64). Reply: the same, status filled. */
struct hv_gnt_copy_ptr {
	uint64_t u; /* grant ref (GNTCOPY_*_gref) or the caller's own frame */
	domid_t domid;
	uint16_t offset;
	uint32_t pad;
};
struct hv_gnt_copy {
	struct hv_gnt_copy_ptr source, dest;
	uint16_t len;
	uint16_t flags; /* GNTCOPY_* */
	int16_t status; /* GNTST_* */
	uint16_t pad;
};
_Static_assert(sizeof(struct hv_gnt_copy) == 40, "hv_gnt_copy size");
_Static_assert(offsetof(struct hv_gnt_copy, len) == 32, "hv_gnt_copy.len");

/* Event channels. */
struct hv_evtchn_alloc_unbound_req {
	domid_t dom;	    /* DOMID_SELF, or another domain (dom0 only) */
	domid_t remote_dom; /* who may bind it */
};
struct hv_evtchn_port_rep {
	evtchn_port_t port;
};
/* Reply carries 2 fds: [0] wait (read it; epoll it), [1] kick (write 1). */
struct hv_evtchn_bind_interdomain_req {
	domid_t remote_dom;
	uint16_t pad;
	evtchn_port_t remote_port;
};
struct hv_evtchn_close_req {
	evtchn_port_t port;
};
struct hv_evtchn_status_req {
	domid_t dom; /* DOMID_SELF, or another domain (dom0 only) */
	uint16_t pad;
	evtchn_port_t port;
};
enum { EVTCHNSTAT_closed = 0, EVTCHNSTAT_unbound = 1, EVTCHNSTAT_interdomain = 2 };
struct hv_evtchn_status_rep {
	uint32_t status; /* EVTCHNSTAT_* */
	domid_t remote_dom;
	uint16_t pad;
	evtchn_port_t remote_port; /* interdomain only */
};

/* HV_OP_DEVICE_GET: reply carries the device fd. */
struct hv_device_req {
	char name[HV_DEVNAME_MAX];
};

/* HV_OP_DOMCTL_CREATE: this struct, then (with HV_CREATE_F_POLICY) a
 * struct hv_policy_req (its domid ignored), then nr_strings NUL-terminated
 * strings (the kernel's absolute path, then argv[1..]) filling the payload.
 * A policy given here is in force before the kernel runs, so even a kernel
 * that dies at once is restarted (DOMCTL_SET_POLICY after create races
 * with such a death). */
#define HV_CREATE_F_POLICY (1u << 31)
struct hv_create_req {
	uint32_t flags; /* HV_DOMF_DRIVER, HV_CREATE_F_POLICY */
	uint32_t nr_strings;
	uint64_t memory; /* bytes; 0 = default */
	char name[HV_NAME_MAX];
};
struct hv_create_rep {
	domid_t domid;
	uint16_t pad;
	evtchn_port_t store_port;
	uint32_t store_frame;
};
struct hv_domid_req {
	domid_t domid;
	uint16_t pad;
};
/* HV_OP_DOMCTL_ASSIGN_DEVICE: one fd attached. HV_OP_DOMCTL_REVOKE_DEVICE:
 * the same request, no fd: closes an assignment the domain has not taken
 * (-ENOENT if it has or there is none) and in every case forgets the copy
 * the hv keeps for restarts, so later instances do not get it again. */
struct hv_assign_device_req {
	domid_t domid;
	uint16_t pad;
	char name[HV_DEVNAME_MAX];
};
/* HV_OP_DOMCTL_LIST: reply is uint32_t count, then count hv_domain_info. */

/* Async events (hdr.id == 0). */
struct hv_evt_port_bound { /* 2 fds: [0] wait, [1] kick */
	evtchn_port_t port;
	domid_t remote_dom;
	uint16_t pad;
	evtchn_port_t remote_port;
};
struct hv_evt_port_closed {
	evtchn_port_t port;
};
struct hv_evt_device_assigned {
	char name[HV_DEVNAME_MAX];
};
enum hv_exit_reason {
	HV_EXIT_EXITED = 1,    /* exit(status) */
	HV_EXIT_KILLED = 2,    /* signal status */
	HV_EXIT_SECCOMP = 3,   /* SIGSYS: forbidden system call */
	HV_EXIT_MALFORMED = 4, /* killed by the hv for a malformed hypercall */
	HV_EXIT_DESTROYED = 5, /* DOMCTL_DESTROY */
	HV_EXIT_HUNG = 6,      /* watchdog: no HEARTBEAT in watchdog_ms (status 9) */
	HV_EXIT_STALLED = 7,   /* watchdog: the domain reported WATCHDOG_STALL (status 9) */
};
/* The reason's high bits say what follows the exit (docs/recovery.md); mask
 * with HV_EXIT_REASON_MASK before comparing with enum hv_exit_reason. */
#define HV_EXIT_REASON_MASK 0xffu
#define HV_EXIT_F_RESTART 0x100u   /* a new instance follows: DOMAIN_RESTARTED */
#define HV_EXIT_F_FAILED 0x200u	   /* crash limit hit: no restart, DOMAIN_FAILED */
#define HV_EXIT_F_PRESERVED 0x400u /* on_crash = preserve: record kept, dead */
struct hv_evt_domain_exit {
	domid_t domid;
	uint16_t reason; /* enum hv_exit_reason | HV_EXIT_F_* */
	int32_t status;	 /* exit code or signal */
	char name[HV_NAME_MAX];
};
_Static_assert(sizeof(struct hv_evt_domain_exit) == 72, "hv_evt_domain_exit size");

/* --- crash recovery (docs/recovery.md) ------------------------------------ */

/* HV_OP_DOMCTL_SET_POLICY (dom0): what the hv does when domid dies other
 * than by DOMCTL_DESTROY or exit(0). May be set again at any time (also on
 * a domain that is RESTARTING); the restart history is kept. */
enum hv_on_crash { HV_ON_CRASH_DESTROY = 0, HV_ON_CRASH_RESTART = 1, HV_ON_CRASH_PRESERVE = 2 };
struct hv_policy_req {
	domid_t domid;
	uint8_t on_crash;      /* enum hv_on_crash */
	uint8_t standby;       /* 1: keep a parked warm spare instance (restart only) */
	uint32_t max_restarts; /* more crashes than this within window_ms: failed; 0 = 5 */
	uint32_t window_ms;    /* 0 = 60000 */
	uint32_t watchdog_ms;  /* no HEARTBEAT for this long: killed as hung; 0 = off */
};
_Static_assert(sizeof(struct hv_policy_req) == 16, "hv_policy_req size");
#define HV_POLICY_DEFAULT_MAX_RESTARTS 5u
#define HV_POLICY_DEFAULT_WINDOW_MS 60000u

/* HV_OP_DOMCTL_SET_AFFINITY (dom0): the CPUs every thread of domid runs
 * on (xl.cfg's cpus =, xl vcpu-pin): bit n of mask is CPU n (the first
 * 1024). The hv applies it to the live instance and its parked spare at
 * once and to every instance it starts later (restarts, spares); all bits
 * clear: no placement (the instances already running keep theirs). -EINVAL
 * when the mask names no online CPU, or flags has an unknown bit.
 * HV_AFFINITY_YIELDING (the toolstack's automatic placement): the live
 * instance may run anywhere while its threads queue for those CPUs, and comes back
 * once its own load is light (docs/hv.md "CPU placement"). */
#define HV_AFFINITY_WORDS 16u
#define HV_AFFINITY_YIELDING (1u << 0)
struct hv_affinity_req {
	domid_t domid;
	uint16_t flags; /* HV_AFFINITY_* */
	uint32_t pad2;
	uint64_t mask[HV_AFFINITY_WORDS];
};
_Static_assert(sizeof(struct hv_affinity_req) == 136, "hv_affinity_req size");

/* HV_EVT_DOMAIN_RESTARTED (to dom0 subscribers): a new instance of domid
 * runs, with a fresh xenstore page (grant ref 1, frame store_frame) and
 * store port; xenstored introduces it itself. Follows the DOMAIN_EXIT that
 * carried HV_EXIT_F_RESTART. */
struct hv_evt_domain_restarted {
	domid_t domid;
	uint16_t flags; /* HV_RESTARTED_STANDBY: a parked spare took over */
	evtchn_port_t store_port;
	uint32_t store_frame;
	uint32_t restarts; /* how many times domid was restarted, this one included */
	char name[HV_NAME_MAX];
};
#define HV_RESTARTED_STANDBY 1u
_Static_assert(sizeof(struct hv_evt_domain_restarted) == 80, "hv_evt_domain_restarted size");

/* HV_EVT_DOMAIN_FAILED (to dom0 subscribers): domid crashed more than
 * max_restarts times within window_ms and will not be restarted; its record
 * stays (state HV_DOM_FAILED) until DOMCTL_DESTROY. Follows the DOMAIN_EXIT
 * that carried HV_EXIT_F_FAILED. */
struct hv_evt_domain_failed {
	domid_t domid;
	uint16_t pad;
	uint32_t restarts;
	char name[HV_NAME_MAX];
};
_Static_assert(sizeof(struct hv_evt_domain_failed) == 72, "hv_evt_domain_failed size");

/* HV_EVT_WATCHDOG (to the domain): its watchdog period (0 = off). Sent when
 * the policy is set and to every new instance before anything else; the
 * library's event loop then calls HEARTBEAT at least every watchdog_ms / 4,
 * and asks its progress check (evloop_set_progress_check) each time. */
struct hv_evt_watchdog {
	uint32_t watchdog_ms;
};

/* HV_OP_WATCHDOG_STALL (a domain, about itself): work it took from a ring
 * has been outstanding for longer than its watchdog period with no answer.
 * The hv logs "ring progress: <why>", kills the domain (exit reason
 * HV_EXIT_STALLED) and applies on_crash. Only the domain's own private
 * bookkeeping decides to send it (a peer cannot). -EINVAL while no watchdog
 * is set (the call is then ignored), or for a why that is not a
 * NUL-terminated string in its field. */
#define HV_STALL_WHY_MAX 120u
struct hv_watchdog_stall_req {
	uint32_t stalled_ms; /* age of the oldest unanswered work */
	uint32_t pad;
	char why[HV_STALL_WHY_MAX]; /* e.g. "vbd/5/51712 ring 0: request outstanding 2013 ms" */
};
_Static_assert(sizeof(struct hv_watchdog_stall_req) == 128, "hv_watchdog_stall_req size");

#endif
