// SPDX-License-Identifier: MIT
// drvdom-hv's internal header: the daemon's state (domain table, dom0
// connections, segments, grant pins, event channel ports, devices) and the
// prototypes of its files, grouped by the file that defines them. The hv is
// single-threaded: one epoll loop owns every structure here, so nothing is
// locked (docs/hv.md, "Threading"). Wire formats are in hv/hv_abi.h.
#ifndef DRVDOM_HV_INTERNAL_H
#define DRVDOM_HV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hv/hv_abi.h"

/* Limits the contract leaves to the implementation (docs/hv.md, "Limits"). */
#define HV_MAX_DOMAINS 512u		 /* live domains, dom0 excluded */
#define HV_GNTTAB_ENTRIES 32768u	 /* grant entries per domain (256 KiB) */
#define HV_MAX_SEGS 4096u		 /* segments per domain */
#define HV_MAX_HANDLES 65536u		 /* grant map handles per domain */
#define HV_MAX_DEVICES 16u		 /* assigned devices per domain */
#define HV_DEFAULT_MEMORY (256ull << 20) /* segment + private memory */
#define HV_MAX_MEMORY (64ull << 30)	 /* largest memory a domain may ask */
#define HV_DOMAIN_NOFILE 16384u		 /* RLIMIT_NOFILE of a domain */
#define HV_CONSOLE_MAX (4u << 20)	 /* console log bytes before rotating to .1 */
#define HV_SNDBUF (4u << 20)		 /* hv end of every hypercall socket */
#define HV_DOM_HCALL_FD 3		 /* the hypercall socket in a domain */

/* What an epoll event belongs to: epoll_event.data.ptr points at one. */
enum hv_ev_kind {
	HV_EV_LISTEN,
	HV_EV_SIGNAL,
	HV_EV_CONN,
	HV_EV_PIDFD,
	HV_EV_CONSOLE,
	HV_EV_TIMER, /* hv.timer_fd: restarts, watchdogs, spares (hv_recovery.c) */
	HV_EV_SPARE, /* a parked standby instance's pidfd */
};
struct hv_ev {
	enum hv_ev_kind kind;
	void *obj;
};

struct hv_dom;

/* One hypercall connection: a domain's socket, or one dom0 connection. */
struct hv_conn {
	struct hv_conn *next; /* in hv.conns (dom0 connections only) */
	int fd;
	unsigned serial; /* for log lines */
	struct hv_dom *dom;
	bool subscribed; /* HV_EVT_DOMAIN_EXIT wanted */
	bool dead;	 /* malformed: no more reading */
	struct hv_ev ev;
};

/* A grant segment: memfd of npages, dedicated to one peer. */
struct hv_seg {
	struct hv_seg *next;
	struct hv_conn *owner; /* the connection that made it */
	uint32_t id;
	uint32_t gen; /* global, never reused: names this instance */
	domid_t peer;
	uint32_t first_frame;
	uint32_t npages;
	uint32_t pins; /* live map handles and copies into it */
	int fd;	       /* read-write memfd, sealed against resize */
	int ro_fd;     /* the same memfd reopened O_RDONLY, made on demand */
	uint8_t *map;  /* the hv's mapping for grant copies, made on demand */
	bool map_failed;
};

/* Status-bit pins the hv holds on one entry of a granter's table. */
struct hv_pin {
	uint32_t ro;
	uint32_t rw;
	uint32_t frame; /* read once when the first pin was taken */
	struct hv_seg *seg;
};

/* A mapping this domain holds of another domain's grant. */
struct hv_handle {
	bool used;
	bool ro;
	struct hv_dom *granter; /* NULL once the granter is gone */
	struct hv_conn *owner;
	grant_ref_t ref;
	uint32_t next_free;
};

enum hv_port_state {
	HV_PORT_FREE = 0,
	HV_PORT_UNBOUND = 1,
	HV_PORT_INTERDOMAIN = 2,
};
struct hv_port {
	uint8_t state; /* enum hv_port_state */
	domid_t remote_dom;
	evtchn_port_t remote_port;
	struct hv_conn *owner; /* who gets the async events */
};

struct hv_device {
	struct hv_device *next;
	char name[HV_DEVNAME_MAX];
	int fd;
};

/* A DOMCTL_DESTROY caller waiting for the domain to be gone. */
struct hv_waiter {
	struct hv_waiter *next;
	struct hv_conn *conn;
	uint32_t op, id;
};

struct hv_rec;

struct hv_dom {
	struct hv_rec *rec; /* what survives this instance (hv_recovery.c) */
	domid_t domid;
	uint16_t state; /* enum hv_dom_state */
	uint32_t flags; /* HV_DOMF_* */
	char name[HV_NAME_MAX];
	uint64_t memory, mem_used;
	uint64_t start_ns, heartbeat_ns;
	uint32_t restarts;
	evtchn_port_t store_port;
	uint32_t store_frame;

	/* the process (not for dom0) */
	pid_t pid;
	int pidfd;
	struct hv_ev pid_ev;
	struct hv_conn *conn;
	uint16_t exit_reason; /* set when the hv itself kills the domain */
	struct hv_waiter *waiters;

	/* console */
	int con_fd, log_fd;
	uint64_t log_bytes; /* in the current RUN/console/NAME.log */
	struct hv_ev con_ev;
	size_t con_len;
	char con_buf[1024];

	/* grants: own table (shared memfd) and pins others hold on it */
	int gnt_fd;
	struct grant_entry_v1 *gnt;
	uint32_t gnt_nr;
	struct hv_pin *pins; /* gnt_nr entries */
	struct hv_seg *segs;
	uint32_t nsegs, next_seg_id, next_frame;
	/* mappings of others' grants */
	struct hv_handle *handles;
	uint32_t nhandles, handle_cap, handle_free;

	struct hv_port *ports; /* HV_EVTCHN_PORTS entries */
	struct hv_device *devs;
	unsigned ndevs;
};

/* A parked standby instance: started, sandboxed, its hypercall socket not
 * yet read by the hv (so its first call blocks until it is activated). */
struct hv_spare {
	pid_t pid;
	int pidfd, sock, con_fd;
	struct hv_ev ev;
	struct hv_rec *rec;
};

/* A domain's record across its instances, from DOMCTL_CREATE to the end:
 * how to start it again, every device it was ever assigned (a dup of each
 * fd), its policy and its crash history. hv.recs[domid] holds it while the
 * domid is reserved: live, restarting, preserved dead or failed. */
struct hv_rec {
	struct hv_rec *next; /* hv.rec_list */
	domid_t domid;
	uint16_t state; /* when no instance lives: RESTARTING, DEAD, FAILED */
	char name[HV_NAME_MAX];
	uint32_t flags;
	uint64_t memory;
	int kfd;		/* the kernel, opened once at create */
	char **argv;		/* kernel path, then argv[1..], NULL-terminated */
	struct hv_device *devs; /* dups of every device ever assigned */
	struct hv_policy_req policy;
	uint32_t restarts;
	uint64_t *crash_ns; /* the last max_restarts + 1 crash times */
	uint32_t ncrash, crash_cap;
	uint64_t restart_at_ns; /* a restart is due then (state RESTARTING) */
	uint64_t crash_at_ns;	/* when the instance waiting for a restart died */
	uint64_t spare_at_ns;	/* a spare is to be started then (0 = none due) */
	uint64_t start_ns;	/* first creation */
	struct hv_dom *dom;	/* the live instance, or NULL */
	struct hv_spare *spare;
	uint64_t cpumask[HV_AFFINITY_WORDS]; /* cpus =; all clear: anywhere */
	uint16_t cpuflags;		     /* HV_AFFINITY_* */
	struct hv_load *load;		     /* a yielding placement's sampling */
};

struct hv {
	const char *run_dir;
	bool foreground;
	int epfd, listen_fd, sig_fd;
	struct hv_ev listen_ev, sig_ev;
	struct hv_dom *doms[DOMID_FIRST_FREE]; /* [0] is dom0 */
	unsigned ndoms;			       /* live, dom0 excluded */
	domid_t next_domid;
	uint32_t seg_gen;
	unsigned conn_serial;
	struct hv_conn *conns; /* dom0 connections */
	bool stopping;
	struct hv_rec *recs[DOMID_FIRST_FREE]; /* reserved domids ([0] unused) */
	struct hv_rec *rec_list;
	int timer_fd;
	struct hv_ev timer_ev;
	uint64_t timer_at_ns; /* when timer_fd is armed for, 0 = disarmed */
};
extern struct hv hv;

/* --- hv_call.c: message decoding, no state (unit-tested alone) --------- */

/* How an op's payload is shaped and who may call it. */
struct hv_op_desc {
	uint32_t op;
	const char *name;
	uint32_t fixed;	    /* bytes of the fixed part */
	uint32_t elem;	    /* bytes per element after a u32 count (0: none) */
	uint32_t count_off; /* offset of that u32 count */
	uint32_t max_elems; /* most elements */
	unsigned nfds;	    /* fds that must come with the request */
	bool dom0_only;
	bool var_strings; /* DOMCTL_CREATE: strings fill the rest */
};

/* The descriptor of op, or NULL if the op is unknown. */
const struct hv_op_desc *hv_call_desc(uint32_t op);

/* Check one received datagram (size bytes, nfds fds, truncated if the
 * kernel said so) for well-formedness. On success *desc is the op's
 * descriptor and 0 is returned. A malformed message gets -EBADMSG and a
 * static text in *why. Does not check dom0-only ops (the caller answers
 * those with -EPERM) nor arguments. */
int hv_call_check(const void *msg, size_t size, unsigned nfds, bool truncated,
		  const struct hv_op_desc **desc, const char **why);

/* DOMCTL_CREATE: split the strings after struct hv_create_req. strs gets
 * nr_strings pointers into payload. Returns 0, or -EBADMSG if the strings do
 * not exactly fill the payload. */
int hv_call_create_strings(const void *payload, uint32_t len, const char **strs, uint32_t max);

/* A name fits buf (NUL within cap, not empty) and uses [A-Za-z0-9_.-] only.
 * Returns 0 or -EINVAL. */
int hv_call_name_check(const char *name, size_t cap);
/* A device name: name components joined by '/', e.g. "vbd/3/51712". */
int hv_call_devname_check(const char *name, size_t cap);

/* One grant-copy side: offset and length inside a page. */
bool hv_call_copy_fits(uint16_t offset, uint16_t len);

/* Everything below runs on the hv's one thread, from the event loop; none
 * of it blocks except hv_sandbox_spawn (until the child has exec'd) and
 * hv_dom_kill_all (until every domain is reaped). */

/* --- hv_main.c ----------------------------------------------------------- */

/* Send a message (header + payload + fds) on c without blocking. A peer
 * that does not read its socket is a faulty domain: it is killed (dom0: the
 * connection is closed). Returns 0 or -errno (-EPIPE: c is dead). */
int hv_send(struct hv_conn *c, uint32_t op, uint32_t id, int32_t ret, const void *p, size_t len,
	    const int *fds, unsigned nfds);
/* Watch fd for input; ev says what it is. Dies on failure (host error). */
void hv_epoll_add(int fd, struct hv_ev *ev);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t hv_now_ns(void);

/* --- hv_dispatch.c: one decoded hypercall ------------------------------ */

/* Read one message from c, check it, run it, answer it. */
void hv_conn_readable(struct hv_conn *c);
/* Close a dom0 connection and release what it owns. */
void hv_conn_close(struct hv_conn *c);
/* Close the dom0 connections marked dead (from the main loop only). */
void hv_conns_reap(void);
/* Kill the domain behind c (or mark a dom0 connection for closing) for a
 * malformed message, logging why. Safe in the middle of any operation. */
void hv_conn_malformed(struct hv_conn *c, const char *opname, const char *why);

/* --- hv_domain.c ------------------------------------------------------------ */

/* Make domain 0 (grant table, ports). Returns 0 or -errno. */
int hv_dom0_init(void);
/* The live domain with that id (dom0 included), or NULL. */
struct hv_dom *hv_dom_get(domid_t domid);
/* DOMCTL_CREATE: checks, the record (with policy if not NULL), start info,
 * sandboxed process. strs: kernel path then argv[1..], NULL-terminated.
 * Returns 0 (rep filled) or -errno. */
int hv_domctl_create(struct hv_conn *c, const struct hv_create_req *req,
		     const struct hv_policy_req *policy, const char **strs,
		     struct hv_create_rep *rep);
/* Signal the domain's process through its pidfd. Returns 0 or -errno. */
int hv_dom_signal(struct hv_dom *d, int sig);
/* Its pidfd is readable: reap it, log why, clean up (docs/hv.md order). */
void hv_dom_exited(struct hv_dom *d);
/* Its console pipe is readable: copy whole lines to the log. */
void hv_dom_console(struct hv_dom *d);
void hv_dom_fill_info(const struct hv_dom *d, bool for_dom0, struct hv_domain_info *out);
/* Shutdown: SIGKILL every domain, then reap and clean up each. Blocks. */
void hv_dom_kill_all(void);
/* Release what connection c owns in its domain (dom0 disconnect). */
void hv_conn_release(struct hv_conn *c);
/* Store a device fd for d (taking it over on success) and tell d.
 * Returns 0, -EEXIST, -ENOSPC or -ENOMEM. */
int hv_device_assign(struct hv_dom *d, const char *name, int fd);
/* Hand over a device fd once (the caller owns it). 0 or -ENOENT. */
int hv_device_get(struct hv_dom *d, const char *name, int *fd);

/* Start an instance of rec's kernel as domain rec->domid: a fresh domain
 * (grant table, ports, start info, console), the process either spawned or
 * taken over from spare (a parked standby instance, consumed). Devices kept
 * in rec are assigned again, the watchdog announced. Returns 0 or -errno. */
int hv_dom_start(struct hv_rec *rec, struct hv_spare *spare);
/* Spawn a sandboxed instance of rec's kernel with its sockets: *sock and
 * *con get the hv's ends. Returns 0 or -errno. */
int hv_dom_spawn(struct hv_rec *rec, int *sock, int *con, pid_t *pid, int *pidfd);

/* --- hv_recovery.c: policy, restarts, watchdog, standby (docs/recovery.md) */

/* A new record for DOMCTL_CREATE (takes kfd; copies strs). 0 or -ENOMEM. */
int hv_rec_new(domid_t domid, const char *name, uint32_t flags, uint64_t memory, int kfd,
	       const char **strs, struct hv_rec **out);
/* Unreserve the domid and free the record (spare killed and reaped). */
void hv_rec_free(struct hv_rec *rec);
/* The record of domid, or NULL. */
struct hv_rec *hv_rec_get(domid_t domid);
/* hv_affinity.c: DOMCTL_SET_AFFINITY, and the placement of a new instance
 * (hv_dom_spawn calls it for every instance it starts). */
int hv_rec_set_affinity(const struct hv_affinity_req *q);
void hv_affinity_apply(const struct hv_rec *rec, pid_t pid);
/* A yielding placement's load check, from hv_rec_timer: when the next one
 * is due (0: none). */
uint64_t hv_affinity_tick(struct hv_rec *rec, uint64_t now);
void hv_affinity_free(struct hv_rec *rec);
/* A device was assigned to d: keep a dup of its fd for later instances. */
void hv_rec_device_assigned(struct hv_rec *rec, const char *name, int fd);
/* DOMCTL_REVOKE_DEVICE (taken or not): forget the kept copy. */
void hv_rec_device_revoked(struct hv_rec *rec, const char *name);
/* DOMCTL_SET_POLICY. 0, -ESRCH, -EINVAL. */
int hv_rec_set_policy(const struct hv_policy_req *p);
/* d's instance died for reason (an enum hv_exit_reason) and is cleaned up
 * but still in the table: decide what follows, returning the HV_EXIT_F_*
 * flags for the DOMAIN_EXIT event. */
uint16_t hv_rec_on_exit(struct hv_dom *d, uint16_t reason, int32_t status);
/* After the exit event: the instance is freed; restart, keep or free rec. */
void hv_rec_after_exit(struct hv_rec *rec, uint16_t flags);
/* DOMCTL_DESTROY of a domid with no live instance: drop the record.
 * 0 or -ESRCH. */
int hv_rec_destroy(domid_t domid);
/* Fill DOMAIN_INFO for a record with no live instance. */
void hv_rec_fill_info(const struct hv_rec *rec, bool for_dom0, struct hv_domain_info *out);
/* HEARTBEAT from d. */
void hv_rec_heartbeat(struct hv_dom *d);
/* WATCHDOG_STALL from d (the ring-progress watchdog): log the reason and
 * kill it as stalled. Returns 0, or -EINVAL (no watchdog set, dom0, a why
 * that is not a string). */
int hv_rec_watchdog_stall(struct hv_dom *d, const struct hv_watchdog_stall_req *q);
/* The timer fired or a deadline may have changed: run what is due, re-arm. */
void hv_rec_timer(void);
/* A parked spare's pidfd is readable. */
void hv_rec_spare_exited(struct hv_spare *sp);
/* Kill a parked spare (not in any record any more), reap it, free it. */
void hv_spare_kill(struct hv_spare *sp);
/* Set up the timer (once, at start). */
void hv_rec_init(void);
/* Shutdown: kill and reap every spare, free every record. */
void hv_rec_fini(void);

/* --- hv_sandbox.c --------------------------------------------------------- */

/* Build the seccomp filter every domain gets. Call once at start. */
int hv_sandbox_init(void);
/* Check that the kernel at kfd is a static ELF executable (-ENOEXEC else). */
int hv_sandbox_check_kernel(int kfd, const char *path);
/* Start the domain process with sock as its fd 3 and con as 1 and 2;
 * fills *pid and *pidfd. Blocks until the child has exec'd the kernel or
 * failed (its errno is returned, the failing step logged). */
int hv_sandbox_spawn(int kfd, int sock, int con, const char *const *argv, domid_t domid,
		     uint64_t memory, pid_t *pid, int *pidfd);

/* --- hv_grant.c ------------------------------------------------------------- */

/* d's grant table: a sealed memfd of HV_GNTTAB_ENTRIES, mapped by the hv. */
int hv_gnttab_init(struct hv_dom *d);
/* Unmap and close it, free pins and handles. Idempotent. */
void hv_gnttab_free(struct hv_dom *d);
/* A segment of npages for peer, charged to d's memory. 0, -EINVAL,
 * -ENOMEM (over memory), -ENOSPC or a host -errno. */
int hv_seg_alloc(struct hv_dom *d, struct hv_conn *owner, domid_t peer, uint32_t npages,
		 struct hv_seg **out);
/* SEG_FREE: 0, -ENOENT (not owner's) or -EBUSY (mapped). */
int hv_seg_free(struct hv_dom *d, struct hv_conn *owner, uint32_t seg_id);
/* Free every segment (owner NULL) or those owner made, mapped or not. */
void hv_seg_free_all(struct hv_dom *d, struct hv_conn *owner);
/* Grant ref on d's own table to peer for frame (hv-made grants only). */
void hv_gnt_grant(struct hv_dom *d, grant_ref_t ref, domid_t peer, uint32_t frame);
/* GNT_MAP for caller c: n ops, n results; fds gets each distinct segment
 * fd once (*nfds of them, owned by the hv: send, do not close). */
void hv_gnt_map(struct hv_conn *c, const struct hv_gnt_map_op *op, uint32_t n,
		struct hv_gnt_map_res *res, int *fds, unsigned *nfds);
/* GNT_UNMAP of one handle of d made by c: a GNTST_* status. */
int16_t hv_gnt_unmap_one(struct hv_dom *d, struct hv_conn *c, uint32_t handle);
/* GNT_COPY for caller c: fills each op's status. */
void hv_gnt_copy(struct hv_conn *c, struct hv_gnt_copy *ops, uint32_t n);
/* Drop every mapping d holds (owner NULL) or owner holds. */
void hv_gnt_revoke_all(struct hv_dom *d, struct hv_conn *owner);
/* Forget handles anyone holds on granter d and drop every pin on its table
 * (d is dying; its table and segments go next). */
void hv_gnt_forget_granter(struct hv_dom *d);

/* --- hv_evtchn.c ------------------------------------------------------------ */

/* d's port table (HV_EVTCHN_PORTS entries, all free). */
int hv_evtchn_init(struct hv_dom *d);
/* A free port of d, unbound, that remote may bind; owner gets its events.
 * 0 or -ENOSPC. */
int hv_evtchn_alloc_unbound(struct hv_dom *d, struct hv_conn *owner, domid_t remote,
			    evtchn_port_t *port);
/* BIND_INTERDOMAIN for c: *port and fds {wait, kick} (the caller sends
 * and then closes them); the remote's owner gets HV_EVT_PORT_BOUND. 0,
 * -ESRCH, -EINVAL, -ENOSPC or a host -errno. */
int hv_evtchn_bind(struct hv_conn *c, domid_t remote, evtchn_port_t rport, evtchn_port_t *port,
		   int fds[2]);
/* CLOSE: the remote end goes back to unbound and is told. 0 or -EINVAL. */
int hv_evtchn_close(struct hv_dom *d, struct hv_conn *c, evtchn_port_t port);
/* STATUS of d's port. 0 or -EINVAL (out of range). */
int hv_evtchn_status(struct hv_dom *d, evtchn_port_t port, struct hv_evtchn_status_rep *rep);
/* Close every port of d (owner NULL) or those owner holds. */
void hv_evtchn_close_all(struct hv_dom *d, struct hv_conn *owner);

#endif
