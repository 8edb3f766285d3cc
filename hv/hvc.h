// SPDX-License-Identifier: MIT
// The hypercall client: the domain side of the hv's SOCK_SEQPACKET socket
// (docs/hv.md, wire format hv/hv_abi.h). Every domain program and dom0 tool
// opens one `struct hvc` and makes every hypercall through it; the grant
// (grant/gnt.h), event channel (hv/evtchn.h) and event loop (hv/evloop.h)
// layers sit on top. One call is outstanding at a time (a mutex serialises
// callers). Async events the hv sends on its own (hdr.id == 0, HV_EVT_*) may
// arrive while a call waits: their effect on library state (event channel
// fds) is applied at once, and the user-visible callbacks are queued and run
// by hvc_dispatch(), i.e. in the thread that runs the event loop, never
// inside hvc_call(). Usage: docs/lib.md.
#ifndef DRVDOM_HV_HVC_H
#define DRVDOM_HV_HVC_H

#include <stddef.h>
#include <stdint.h>

#include "hv/hv_abi.h"

struct hvc;

/* Open the hypercall socket a domain was started with: the fd named by the
 * environment variable DRVDOM_HV_FD, default 3. Call once at start, from a
 * domain program. Does not block. Returns 0 or -errno (-EBADF: no such fd,
 * -ENOTSOCK: not a socket). */
int hvc_open_domain(struct hvc **out);

/* Connect to drvdom-hv's dom0 socket (RUN/hv/socket) as domain 0: for tools
 * and xenstored. Blocks for the connect only. Returns 0 or -errno. */
int hvc_open_dom0(const char *socket_path, struct hvc **out);

/* Wrap an already connected SOCK_SEQPACKET fd (the library takes ownership;
 * used by tests with a fake peer). Returns 0 or -errno. */
int hvc_open_fd(int fd, struct hvc **out);

/* Close the connection, the fds the library holds (event channels, cached
 * grant mappings stay mapped until unmapped by their owners) and free h.
 * No other thread may use h any more. NULL is a no-op. */
void hvc_close(struct hvc *h);

/* One raw hypercall. The caller fills op, the request payload (req,
 * req_len) and fds to send; on return rep_len / nrfds say what came back.
 * A reply larger than rep_cap, or carrying more than rfds_cap fds, is a
 * protocol violation: the fds are closed and -EPROTO returned. */
struct hvc_msg {
	uint32_t op;	 /* HV_OP_* */
	const void *req; /* request payload, req_len bytes (may be NULL if 0) */
	size_t req_len;
	const int *fds; /* fds to send with SCM_RIGHTS */
	unsigned nfds;	/* at most HV_MAX_FDS */
	void *rep;	/* reply payload buffer, rep_cap bytes */
	size_t rep_cap;
	size_t rep_len; /* out: reply payload bytes */
	int *rfds;	/* out: received fds (caller owns them on success) */
	unsigned rfds_cap;
	unsigned nrfds; /* out */
};

/* Send one request and wait for its reply. Thread-safe: callers are
 * serialised by a mutex; async events read meanwhile are applied/queued
 * (see the file comment). Blocks until the reply arrives. Returns the hv's
 * answer (0 or a negative Xen errno; received fds are closed unless it is
 * 0) or a transport error: -EPIPE/-ECONNRESET (hv gone), -EPROTO (bad
 * reply framing), -EMSGSIZE (request too large), -EINVAL. */
int hvc_call(struct hvc *h, struct hvc_msg *m);

/* Same, but the reply payload must be exactly rep_cap bytes and carry
 * exactly rfds_cap fds on success (-EPROTO otherwise). Most wrappers use
 * this. */
int hvc_call_exact(struct hvc *h, struct hvc_msg *m);

/* A descriptor that becomes readable when hvc_dispatch() has work (an async
 * event on the socket, or one already read by a hvc_call() in another
 * thread). For epoll/poll; do not read it. Owned by h. */
int hvc_fd(const struct hvc *h);

/* Handle every pending async event without blocking: apply it and run the
 * callbacks (event channel hooks, device assigned, domain exit). Call from
 * the thread that owns the event loop (evloop does it for you). Returns the
 * number of events handled, or -errno if the connection is gone
 * (-ECONNRESET) or the hv broke the protocol (-EPROTO). */
int hvc_dispatch(struct hvc *h);

/* Read the async events waiting on the socket, without blocking and
 * without running any callback: apply their effect on library state (a
 * bound port's fds are stored, a closed port's dropped) and queue them for
 * hvc_dispatch() (hvc_fd() stays readable), exactly as a hvc_call() that
 * reads one does. For a thread that must learn of bindings while another
 * thread owns the event loop (the xenstore client inside a domain): it
 * takes nothing from the loop. Any thread. Returns 0 or -errno
 * (-ECONNRESET: the hv is gone, -EPROTO). */
int hvc_read_events(struct hvc *h);

/* --- callbacks (run from hvc_dispatch) ----------------------------------- */

/* A domain exited (dom0 subscribers only; see hvc_domctl_subscribe). */
typedef void (*hvc_domain_exit_fn)(void *arg, const struct hv_evt_domain_exit *e);
/* A device was assigned to this domain: fetch it with hvc_device_get(). */
typedef void (*hvc_device_assigned_fn)(void *arg, const char *name);

/* A crashed domain runs again under the same domid (dom0 subscribers; it
 * follows a DOMAIN_EXIT whose reason has HV_EXIT_F_RESTART). */
typedef void (*hvc_domain_restarted_fn)(void *arg, const struct hv_evt_domain_restarted *e);
/* A domain hit its crash limit and stays down (dom0 subscribers). */
typedef void (*hvc_domain_failed_fn)(void *arg, const struct hv_evt_domain_failed *e);

/* Set (or clear with fn == NULL) the callback. Any thread; does not block
 * beyond a mutex. */
void hvc_set_domain_exit_cb(struct hvc *h, hvc_domain_exit_fn fn, void *arg);
void hvc_set_device_assigned_cb(struct hvc *h, hvc_device_assigned_fn fn, void *arg);
void hvc_set_domain_restarted_cb(struct hvc *h, hvc_domain_restarted_fn fn, void *arg);
void hvc_set_domain_failed_cb(struct hvc *h, hvc_domain_failed_fn fn, void *arg);

/* --- typed wrappers: any domain ------------------------------------------ */

/* Domain info (Xen's start_info): domid DOMID_SELF for the caller. Blocks
 * for one round trip. Returns 0 or -errno (-ESRCH: no such domain). */
int hvc_domain_info(struct hvc *h, domid_t domid, struct hv_domain_info *out);

/* This domain's id, from a DOMAIN_INFO(self) made once and cached. */
int hvc_self_domid(struct hvc *h, domid_t *out);

/* Take an assigned device's fd (caller owns it). Returns 0 or -errno
 * (-ENOENT: nothing assigned under that name, -ENAMETOOLONG). */
int hvc_device_get(struct hvc *h, const char *name, int *fd_out);

/* Tell the hv's watchdog this domain is alive. One round trip. */
int hvc_heartbeat(struct hvc *h);

/* Tell the hv's ring-progress watchdog that work this domain took has gone
 * unanswered for stalled_ms, longer than its watchdog period: the hv logs
 * why (truncated to HV_STALL_WHY_MAX - 1 bytes) and kills the domain, then
 * applies on_crash. evloop sends it for a progress check that reports a
 * stall (evloop_set_progress_check). One round trip; returns 0 (the kill
 * follows) or -errno (-EINVAL: no watchdog is set). */
int hvc_watchdog_stall(struct hvc *h, uint32_t stalled_ms, const char *why);

/* The watchdog period the hv announced (HV_EVT_WATCHDOG), 0 if none (yet).
 * evloop heartbeats by itself while this is set; a domain without an
 * evloop must call hvc_heartbeat() at least this often. Any thread. */
uint32_t hvc_watchdog_ms(const struct hvc *h);

/* --- typed wrappers: domain 0 only (others get -EPERM) -------------------- */

struct hvc_create_args {
	const char *kernel;	 /* absolute path to a static executable */
	const char *const *argv; /* argv[1..], NULL-terminated; may be NULL */
	const char *name;	 /* < HV_NAME_MAX bytes, unique */
	uint64_t memory;	 /* bytes, 0 = the hv's default */
	uint32_t flags;		 /* HV_DOMF_DRIVER */
	/* Crash-recovery policy in force from the start (docs/recovery.md);
	 * NULL: on_crash = destroy. Its domid is ignored. */
	const struct hv_policy_req *policy;
};
/* Start a domain. Blocks for one round trip. out may be NULL. Returns 0 or
 * -errno (-E2BIG: the strings do not fit in one message, -ENAMETOOLONG,
 * -ENOEXEC: not a static executable, -EEXIST: name in use, ...). */
int hvc_domctl_create(struct hvc *h, const struct hvc_create_args *a, struct hv_create_rep *out);
int hvc_domctl_destroy(struct hvc *h, domid_t domid); /* orderly: SIGTERM-like */
int hvc_domctl_kill(struct hvc *h, domid_t domid);    /* SIGKILL: fault injector */
int hvc_domctl_pause(struct hvc *h, domid_t domid);
int hvc_domctl_unpause(struct hvc *h, domid_t domid);
/* Hand a device fd to a domain (the fd stays the caller's: the kernel dups
 * it into the message). */
int hvc_domctl_assign_device(struct hvc *h, domid_t domid, const char *name, int fd);
/* Take back a device assignment the domain has not taken yet (closing the
 * hv's copy). -ENOENT if it was taken or never made. */
int hvc_domctl_revoke_device(struct hvc *h, domid_t domid, const char *name);
/* List domains into buf (room for cap entries); *n gets how many were
 * stored (a longer list is truncated to cap). */
int hvc_domctl_list(struct hvc *h, struct hv_domain_info *buf, uint32_t cap, uint32_t *n);
/* Ask for HV_EVT_DOMAIN_EXIT (and _RESTARTED, _FAILED) events on this
 * connection. */
int hvc_domctl_subscribe(struct hvc *h);
/* Crash-recovery policy of a domain (docs/recovery.md): on_crash, crash
 * limit, watchdog, standby. Blocks for one round trip. Returns 0 or -errno
 * (-ESRCH, -EINVAL: bad values, standby without restart). */
int hvc_domctl_set_policy(struct hvc *h, const struct hv_policy_req *p);
/* DOMCTL_SET_AFFINITY: where domid's instances run, now and after restarts
 * (struct hv_affinity_req). */
int hvc_domctl_set_affinity(struct hvc *h, const struct hv_affinity_req *q);

#endif
