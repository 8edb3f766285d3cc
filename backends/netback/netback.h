// SPDX-License-Identifier: MIT
// drvdom-netback's internal header: the network driver domain
// (docs/netback.md). One process, one event loop thread. A `struct netback`
// holds the hv connection, the xenstore handle, the physical NIC (the
// AF_PACKET socket the toolstack handed over, with a TPACKET_V2 rx ring
// and sendmmsg batches for tx), the learning bridge's MAC table and the
// vifs. A `struct netback_vif` is one backend directory
// /local/domain/<self>/backend/vif/<fe>/<handle>: its XenbusState, the
// mapped tx/rx rings, event channel(s), the staging pages of its own memory
// that grant copies land in (tx) or leave from (rx, a bounded byte queue),
// and counters. Packets inside netback are `struct netback_pkt`: a
// virtio_net_hdr (the common currency of offload flags between netif, the
// packet socket and the bridge) and contiguous bytes. Prototypes are grouped
// by the file that defines them.
#ifndef DRVDOM_BACKENDS_NETBACK_H
#define DRVDOM_BACKENDS_NETBACK_H

#include <linux/virtio_net.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "grant/gnt.h"
#include "hv/evloop.h"
#include "hv/hvc.h"
#include "ring/netif.h"
#include "common/netpkt.h"
#include "common/xbkey.h"
#include "ring/xenbus.h"
#include "xenstore/include/xenstore.h"

#define NETBACK_PAGE 4096u
/* Largest frame: 64 KiB of IP plus the Ethernet header (and a VLAN tag). */
#define NETBACK_MAX_FRAME (65535u + 18u)
#define NETBACK_FRAME_PAGES ((NETBACK_MAX_FRAME + NETBACK_PAGE - 1) / NETBACK_PAGE + 1)
/* Vifs one netback serves (bridge ports 1..NETBACK_MAX_VIFS; port 0 = NIC). */
#define NETBACK_MAX_VIFS 64u
/* Tx staging: pages of our own memory that guest tx grant copies land in. */
#define NETBACK_TX_STAGE_PAGES 320u
/* Rx queue per vif: bytes of our memory holding frames waiting for the
 * guest's rx buffers, and how many frames at most (a guest that posts no
 * rx buffers gets drops beyond this, never more memory). */
#define NETBACK_RXQ_PAGES 1024u
#define NETBACK_RXQ_LEN 512u
/* Packets taken from one tx ring per round. */
#define NETBACK_TX_BATCH 64u
/* NIC tx batch (one sendmmsg). */
#define NETBACK_NIC_BATCH 64u
/* NIC rx ring: TPACKET_V2 frames of one maximal frame each. */
#define NETBACK_NIC_FRAMES 128u
/* drvdom-stats is rewritten at most this often (ns). */
#define NETBACK_STATS_NS 500000000ull
/* Persistent grant mappings kept per vif (drvdom-persistent-grants). */
#define NETBACK_PGNT_SLOTS 2048u /* hash slots, power of two */
#define NETBACK_PGNT_MAX 1024u	 /* mappings at most; beyond: grant copy */
#define NETBACK_PGNT_AHEAD 64u	 /* refs mapped ahead in one call (HV_BATCH_MAX) */
/* Adaptive polling: how long the loop spins after the last work (ns). */
#ifndef NETBACK_SPIN_NS
#define NETBACK_SPIN_NS 50000u
#endif
/* Queues a vif may have at most (multi-queue-max-queues offers fewer when
 * the domain may run on fewer CPUs: docs/netback.md "Multiple queues"). */
#define NETBACK_MAX_QUEUES 4u
/* MAC table entries (power of two) and their lifetime. */
#define NETBACK_FDB_SIZE 1024u
#define NETBACK_FDB_AGE_NS 300000000000ull

struct netback;

/* A frame: len bytes, the first head_len of them contiguous at data, the
 * rest (if any) in ntail pieces (zero-copy tx from mapped guest pages: the
 * headers are always netback's own copy). */
#define NETBACK_PKT_MAX_TAIL (XEN_NETIF_NR_SLOTS_MIN + 1)
struct netback_pkt {
	struct virtio_net_hdr vh;
	const uint8_t *data;
	uint32_t len;
	uint32_t head_len;
	const struct iovec *tail;
	unsigned ntail;
};

struct netback_stats {
	uint64_t tx_reqs, tx_pkts, tx_bytes, tx_drops, tx_errors;
	uint64_t rx_pkts, rx_bytes, rx_drops;
	uint64_t ntf_sent, ntf_supp, gnt_copies, gnt_copy_calls, gnt_maps, pgnt_hits;
};

/* A guest page kept mapped (the frontend said its buffer grants are fixed
 * for the connection: docs/netback.md "Persistent grants"). */
struct netback_pgnt {
	grant_ref_t ref;
	bool used, writable;
	gnt_handle_t handle;
	uint8_t *addr;
};

/* One queued frame for the guest: bytes [off, off+len) of the rx queue. */
struct netback_rxq_ent {
	uint32_t off, len;
	struct virtio_net_hdr vh;
};

struct netback_vif {
	struct netback *nb;
	unsigned port;	   /* bridge port (1..) */
	char path[128];	   /* backend directory */
	char fe_path[128]; /* frontend directory */
	char fe_token[64];
	domid_t fe_domid;
	unsigned handle;
	int state; /* our XenbusState */
	uint8_t mac[6];
	bool connected;
	bool broken; /* misbehaved: no more requests served */
	const char *broken_why;
	bool fail_pending;
	bool gone;	    /* directory removed: free at the next deferred run */
	bool error_written; /* our error key may hold a refused connection's reason */
	bool fe_primed;	    /* the frontend watch's first event (its registration) seen */

	/* frontend features */
	bool fe_sg, fe_gso4, fe_gso6, fe_rx_notify;
	bool persistent; /* drvdom-persistent-grants: map each buffer once, memcpy */
	struct netback_pgnt *pgnt;
	unsigned npgnt;

	/* rings */
	struct netif_tx_ring_back tx;
	struct netif_rx_ring_back rx;
	void *tx_page, *rx_page;
	gnt_handle_t tx_handle, rx_handle;
	bool tx_mapped, rx_mapped;
	evtchn_port_t port_tx, port_rx; /* equal without split channels */
	bool port_bound_tx, port_bound_rx;
	bool tx_kick, rx_kick;
	/* set by port handlers that run outside the loop thread (hvc_dispatch
	 * called by the xenstore ring reader), handled by the loop */
	_Atomic bool kicked, peer_closed;

	/* our memory */
	struct gnt_seg *tx_stage;
	struct gnt_seg *rxq_seg;
	struct netback_rxq_ent *rxq;
	uint32_t rxq_head, rxq_tail; /* free-running entry indices */
	bool rx_dirty;		     /* responses written but not pushed */
	bool ntf_tx, ntf_rx;	     /* pushed, the frontend wants a notify */

	struct netback_stats st;
	char last_stats[512];
	uint64_t stats_ns;

	/* Multiple queues (netif.h "Multiple transmit and receive queues"):
	 * each queue is a netback_vif of its own for its rings, channels,
	 * staging and counters, so tx, rx and notification code serves any
	 * queue unchanged. queue[0] is the vif itself (the bridge port, the
	 * xenbus state, the paths); queues 1.. point back at it with parent
	 * and share its port and features. nqueues is 1 without multi-queue;
	 * nalloc: queue structures allocated, kept until the vif is freed
	 * (a port handler running in another thread may still hold one for
	 * a moment after its channel is closed). */
	struct netback_vif *parent;
	struct netback_vif *queue[NETBACK_MAX_QUEUES];
	unsigned nqueues, nalloc, qidx;
};

/* MAC table entry: port 0 = NIC, 1.. = vifs; 0xffff = empty. */
struct netback_fdb {
	uint8_t mac[6];
	uint16_t port;
	uint64_t seen_ns;
};

struct netback_nic {
	int fd;
	bool tap; /* a TAP fd (nic = tap:NAME) rather than a packet socket */
	bool v3;  /* TPACKET_V3 blocks instead of V2 frames (--tpacket-v3) */
	uint8_t *ring;
	size_t ring_bytes;
	unsigned frame_size, nframes, head, block_size, frames_per_block;
	bool kept;   /* the ring a dead instance of ours set up, mapped again */
	bool resync; /* kept and empty: head is wherever the kernel writes next */
	/* pending tx batch */
	struct mmsghdr msgs[NETBACK_NIC_BATCH];
	struct iovec iov[NETBACK_NIC_BATCH][2 + NETBACK_PKT_MAX_TAIL];
	struct virtio_net_hdr vh[NETBACK_NIC_BATCH];
	uint8_t *copybuf[NETBACK_NIC_BATCH]; /* for frames whose bytes do not stay */
	unsigned ntx;
	uint8_t *tapbuf;
	uint64_t rx_pkts, tx_pkts, rx_bytes, tx_bytes, tx_drops, rx_trunc, tx_calls, rx_wakeups;
};

struct netback {
	struct hvc *h;
	struct xs_handle *xs;
	struct evloop *loop;
	domid_t self;
	/* This instance's name in the fast reconnect (docs/recovery.md,
	 * "Failover (network)"): drvdom-instance, written with InitWait. */
	char instance[XBKEY_INSTANCE_LEN];
	char vif_path[96];
	char nic_key[96];
	bool rescan;
	bool be_primed; /* the backend/vif watch's first event (its registration) seen */
	pthread_t loop_thread;
	int wake_fd;
	_Atomic bool nic_pending;
	bool kick_pending; /* some vif has ntf_tx / ntf_rx set */
	struct netback_nic nic;
	bool nic_open;
	bool nic_watched; /* drvdom/nic watched (until then the worker had it) */
	/* The NIC worker (netback_main.c): DEVICE_ASSIGNED names the NIC
	 * ("nic/...") as soon as we are the domain, and the worker takes and
	 * prepares it (mapping a kept rx ring costs ~0.6 ms) while the loop
	 * thread reconnects the vifs; the loop attaches it. nic_stage and
	 * nic_want under nic_lock. */
	pthread_mutex_t nic_lock;
	pthread_cond_t nic_cond;
	pthread_t nic_thread;
	bool nic_thread_up;
	char nic_want[HV_DEVNAME_MAX]; /* posted by device_assigned, "" none */
	enum { NIC_NONE, NIC_PREPARING, NIC_PREPARED } nic_stage;
	char nic_name[HV_DEVNAME_MAX]; /* the device the worker took */
	bool tpacket_v3;	       /* --tpacket-v3 (for measurements: docs/netback.md) */
	uint64_t crash_at_tx;	       /* --crash-at tx:N: abort at the Nth tx packet (0: off) */
	uint64_t tx_taken;	       /* tx packets taken by this instance */
	char nic_last_stats[320];
	struct netback_vif *vifs[NETBACK_MAX_VIFS + 1]; /* by port; [0] unused */
	struct netback_fdb fdb[NETBACK_FDB_SIZE];
	uint64_t now_ns;
	struct hv_gnt_copy *ops; /* HV_COPY_BATCH_MAX ops */
	uint8_t *scratch;	 /* one maximal frame, for TAP NIC reads */
};

/* netback_main.c */
uint64_t netback_now_ns(void);
void netback_scan(struct netback *nb);
bool netback_on_loop(const struct netback *nb);
void netback_wake(struct netback *nb);

/* netback_xenbus.c */
void netback_vif_probe(struct netback *nb, domid_t fe, unsigned handle);
void netback_vif_frontend_changed(struct netback_vif *v);
void netback_vif_fail(struct netback_vif *v, const char *why);
void netback_vif_free(struct netback_vif *v);
void netback_vif_stats_publish(struct netback_vif *v, bool force);
/* Push responses, note whether the frontend wants to be told... */
void netback_vif_notify_tx(struct netback_vif *v);
void netback_vif_notify_rx(struct netback_vif *v);
/* ...and tell them: one notification per port for all that was pushed,
 * for every vif. Each event loop callback and poller calls it once at its
 * end (never the functions they call). */
void netback_kick_all(struct netback *nb);
void netback_vif_run_kicks(struct netback_vif *v);

/* Address of a frontend page kept mapped (mapped now if new), or NULL:
 * not persistent, map failed, or the table is full (use grant copy). tx
 * buffers are mapped read-only (write false), rx buffers writable. */
uint8_t *netback_pgnt_get(struct netback_vif *v, grant_ref_t ref, bool write);
/* Whether netback_pgnt_get of ref would cost no hypercall (known, the
 * table full, or not persistent). */
bool netback_pgnt_cached(struct netback_vif *v, grant_ref_t ref);
/* Map every ref of refs not known yet (at most NETBACK_PGNT_AHEAD) in one
 * GNT_MAP, as netback_pgnt_get would one by one: a vif's first packets
 * after a (re)connection need a mapping each, one hypercall apiece. The
 * refs are hints taken from the ring before the requests are checked: a
 * ref the frontend did not grant us fails in the hv, and is remembered as
 * netback_pgnt_get remembers it. */
void netback_pgnt_map_ahead(struct netback_vif *v, const grant_ref_t *refs, unsigned n, bool write);
void netback_pgnt_drop_all(struct netback_vif *v);

/* netback_tx.c: the guest's transmit ring into the bridge. */
int netback_tx_poll(struct netback_vif *v, unsigned flags);
int netback_pkt_vnet(struct netback_pkt *p, uint16_t nflags, const struct netif_extra *gso);

/* netback_rx.c: frames for a guest, queued, then copied into its rx buffers. */
int netback_rxq_init(struct netback_vif *v);
void netback_rxq_fini(struct netback_vif *v);
void netback_rx_enqueue(struct netback_vif *v, const struct netback_pkt *p);
int netback_rx_poll(struct netback_vif *v, unsigned flags);
/* Deliver what the bridge queued for every vif's every queue. */
void netback_rx_kick_all(struct netback *nb);
/* The queue of vif v a frame goes to: one flow (addresses, ports) always
 * to the same queue, so that it stays in order. */
struct netback_vif *netback_rx_queue(struct netback_vif *v, const struct netback_pkt *p);

/* netback_nic.c: the physical NIC. v3: use a TPACKET_V3 rx ring.
 * netback_nic_open = prepare + attach, on the loop thread. prepare sets
 * the fd up (its ring mapped) and touches nothing but nb->nic: any
 * thread, while nothing else uses nb->nic; attach puts it in the loop:
 * the loop thread. 0 or -errno; on an error the caller closes fd. */
int netback_nic_open(struct netback *nb, int fd, bool v3);
int netback_nic_prepare(struct netback *nb, int fd, bool v3);
int netback_nic_attach(struct netback *nb);
void netback_nic_close(struct netback *nb);
int netback_nic_poll(void *arg, unsigned flags);
/* Frames waiting in the NIC's rx ring into the bridge (no notification:
 * the caller's round ends with netback_kick_all). Returns frames taken. */
int netback_nic_rx(struct netback *nb);
void netback_nic_send(struct netback *nb, const struct netback_pkt *p, bool stays);
void netback_nic_flush(struct netback *nb);

/* netback_bridge.c: the learning bridge. */
void netback_bridge_input(struct netback *nb, unsigned src_port, const struct netback_pkt *p,
			  bool stays);
void netback_bridge_forget_port(struct netback *nb, unsigned port);

#endif
