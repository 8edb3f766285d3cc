// SPDX-License-Identifier: MIT
// The physical NIC (docs/devices.md "The physical NIC", docs/netback.md
// "Packet I/O"): the AF_PACKET socket the toolstack opened on phys0 in our
// namespace, configured here with PACKET_VNET_HDR (GSO frames pass whole,
// checksum offsets travel with them), a TPACKET_V2 receive ring read
// without system calls by the event loop's poller (epoll only when idle),
// and transmission in sendmmsg batches. A TAP fd (nic = tap:NAME) is served
// with read/writev instead. Frames from the NIC go into the bridge.
#include "backends/netback/netback.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"

#define VH_LEN sizeof(struct virtio_net_hdr)

static void nic_ready(void *arg, int fd, uint32_t events);

/* TPACKET_V3: 16 blocks of 1 MiB, a block retired after 1 ms at most. */
static int nic_ring_setup_v3(struct netback_nic *n)
{
	struct tpacket_req3 req = {0};
	req.tp_block_size = 1u << 20;
	req.tp_block_nr = 16;
	req.tp_frame_size = 2048;
	req.tp_frame_nr = req.tp_block_size / req.tp_frame_size * req.tp_block_nr;
	req.tp_retire_blk_tov = 1;
	if (setsockopt(n->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
		return -errno;
	n->ring_bytes = (size_t)req.tp_block_size * req.tp_block_nr;
	void *m = mmap(NULL, n->ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, n->fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	n->ring = m;
	n->block_size = req.tp_block_size;
	n->nframes = req.tp_block_nr; /* blocks */
	n->head = 0;
	return 0;
}

/* The ring's geometry, the same in every instance (nic_ring_setup). */
static void nic_ring_geometry(struct netback_nic *n)
{
	if (n->v3) {
		n->block_size = 1u << 20;
		n->nframes = 16; /* blocks */
		n->ring_bytes = (size_t)n->block_size * n->nframes;
		return;
	}
	n->block_size = 256u * 1024u;
	n->frame_size = (n->block_size / 3u) & ~(unsigned)(TPACKET_ALIGNMENT - 1);
	n->frames_per_block = n->block_size / n->frame_size;
	n->nframes = NETBACK_NIC_FRAMES / 3u * 3u;
	n->ring_bytes = (size_t)n->block_size * (NETBACK_NIC_FRAMES / 3u);
}

static uint8_t *nic_slot(const struct netback_nic *n, unsigned i)
{
	if (n->v3)
		return n->ring + (size_t)i * n->block_size;
	return n->ring + (size_t)(i / n->frames_per_block) * n->block_size +
	       (size_t)(i % n->frames_per_block) * n->frame_size;
}

/* Is slot i ours (filled by the kernel, not yet given back)? If so, *ts
 * is when the kernel filled it (its first frame's, for a V3 block). */
static bool nic_slot_user(const struct netback_nic *n, unsigned i, uint64_t *ts)
{
	uint8_t *f = nic_slot(n, i);
	if (n->v3) {
		struct tpacket_block_desc *bd = (struct tpacket_block_desc *)f;
		_Atomic uint32_t *st = (_Atomic uint32_t *)&bd->hdr.bh1.block_status;
		if (!(atomic_load_explicit(st, memory_order_acquire) & TP_STATUS_USER))
			return false;
		*ts = (uint64_t)bd->hdr.bh1.ts_first_pkt.ts_sec * 1000000000u +
		      bd->hdr.bh1.ts_first_pkt.ts_nsec;
		return true;
	}
	struct tpacket2_hdr *th = (struct tpacket2_hdr *)f;
	_Atomic uint32_t *st = (_Atomic uint32_t *)&th->tp_status;
	if (!(atomic_load_explicit(st, memory_order_acquire) & TP_STATUS_USER))
		return false;
	*ts = (uint64_t)th->tp_sec * 1000000000u + th->tp_nsec;
	return true;
}

/* A kept ring: the kernel's write position is not ours to read. The slots
 * it filled and nobody gave back are one run ending just before it (the
 * dead instance gave slots back in order), so start at the oldest of
 * them. None: the ring is empty and the kernel's position unknown: stay
 * in resync until a slot turns up, then start at the oldest again. */
static bool nic_ring_resync(struct netback_nic *n)
{
	uint64_t best = UINT64_MAX, ts;
	bool found = false;
	for (unsigned i = 0; i < n->nframes; i++)
		if (nic_slot_user(n, i, &ts) && ts < best) {
			best = ts;
			n->head = i;
			found = true;
		}
	n->resync = !found;
	return found;
}

/* A restarted instance gets the same socket again (the hv hands each
 * instance the device fd it keeps), and with it the ring the dead
 * instance set up: map that one if it is exactly ours. Freeing it and
 * allocating it again costs 20-30 ms (each PACKET_RX_RING change waits
 * for an RCU grace period, synchronize_net, and 10 MiB of high-order
 * pages are zeroed), the largest part of a network failover. The dead
 * instance's mapping is gone: the hv hands the fd on only after its
 * process has exited (its mm torn down before its pidfd fires). */
static bool nic_ring_adopt(struct netback_nic *n)
{
	int v = -1, vh = 0;
	socklen_t l = sizeof(v);
	if (getsockopt(n->fd, SOL_PACKET, PACKET_VERSION, &v, &l) < 0 ||
	    v != (n->v3 ? TPACKET_V3 : TPACKET_V2))
		return false;
	l = sizeof(vh);
	if (getsockopt(n->fd, SOL_PACKET, PACKET_VNET_HDR, &vh, &l) < 0 || !vh)
		return false;
	nic_ring_geometry(n);
	/* The kernel refuses (EINVAL) a size other than the ring's, and any
	 * mmap without a ring: a socket without ours falls back to set-up. */
	void *m = mmap(NULL, n->ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, n->fd, 0);
	if (m == MAP_FAILED)
		return false;
	n->ring = m;
	n->kept = true;
	n->head = 0;
	nic_ring_resync(n);
	return true;
}

static int nic_ring_setup(struct netback_nic *n)
{
	int one = 1, v = n->v3 ? TPACKET_V3 : TPACKET_V2;
	if (nic_ring_adopt(n))
		return 0;
	/* Someone else's ring (another geometry or version): free it (nothing
	 * maps it any more), or the options below fail with EBUSY. */
	struct tpacket_req3 none = {0};
	(void)setsockopt(n->fd, SOL_PACKET, PACKET_RX_RING, &none, sizeof(none));
	if (setsockopt(n->fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0)
		return -errno;
	if (setsockopt(n->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0)
		return -errno;
	(void)setsockopt(n->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
#ifdef PACKET_IGNORE_OUTGOING
	(void)setsockopt(n->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
#endif
	if (n->v3)
		return nic_ring_setup_v3(n);
	/* One TPACKET_V2 frame must hold the ring header, the sockaddr_ll, the
	 * vnet header and a 64 KiB GSO frame: three such frames per 256 KiB
	 * block. */
	struct tpacket_req req = {0};
	req.tp_block_size = 256u * 1024u;
	req.tp_frame_size = (req.tp_block_size / 3u) & ~(unsigned)(TPACKET_ALIGNMENT - 1);
	req.tp_block_nr = NETBACK_NIC_FRAMES / 3u;
	req.tp_frame_nr = req.tp_block_nr * 3u;
	if (setsockopt(n->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
		return -errno;
	n->ring_bytes = (size_t)req.tp_block_size * req.tp_block_nr;
	void *m = mmap(NULL, n->ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, n->fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	n->ring = m;
	n->frame_size = req.tp_frame_size;
	n->block_size = req.tp_block_size;
	n->frames_per_block = req.tp_block_size / req.tp_frame_size;
	n->nframes = req.tp_frame_nr;
	n->head = 0;
	return 0;
}

int netback_nic_prepare(struct netback *nb, int fd, bool v3)
{
	struct netback_nic *n = &nb->nic;
	int type, r;
	n->v3 = v3;
	socklen_t sl = sizeof(type);
	n->fd = fd;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) < 0 && errno == ENOTSOCK) {
		int hl = (int)VH_LEN;
		n->tap = true;
		if (ioctl(fd, TUNSETVNETHDRSZ, &hl) < 0 ||
		    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
			return -errno;
		(void)ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
		if (!(n->tapbuf = malloc(VH_LEN + NETBACK_MAX_FRAME)))
			return -ENOMEM;
		log_info("NIC is a TAP: read/writev with vnet headers");
	} else if ((r = nic_ring_setup(n))) {
		return r;
	} else {
		if (n->kept)
			log_info("NIC: packet socket, the previous instance's rx ring kept "
				 "(%s, head %u%s)",
				 n->v3 ? "TPACKET_V3" : "TPACKET_V2", n->head,
				 n->resync ? ", empty" : "");
		else if (n->v3)
			log_info("NIC: packet socket, TPACKET_V3 rx ring of %u blocks of %u bytes "
				 "(retired after 1 ms), PACKET_VNET_HDR, sendmmsg tx",
				 n->nframes, n->block_size);
		else
			log_info("NIC: packet socket, TPACKET_V2 rx ring of %u frames of %u bytes, "
				 "PACKET_VNET_HDR, sendmmsg tx",
				 n->nframes, n->frame_size);
	}
	for (unsigned i = 0; i < NETBACK_NIC_BATCH; i++) {
		n->msgs[i].msg_hdr.msg_iov = n->iov[i];
		n->msgs[i].msg_hdr.msg_iovlen = 2;
		n->iov[i][0].iov_base = &n->vh[i];
		n->iov[i][0].iov_len = VH_LEN;
	}
	return 0;
}

int netback_nic_attach(struct netback *nb)
{
	struct netback_nic *n = &nb->nic;
	int r;
	if ((r = evloop_add_fd(nb->loop, n->fd, EPOLLIN, nic_ready, nb)))
		return r;
	if (!n->tap && (r = evloop_add_poller(nb->loop, netback_nic_poll, nb)))
		return r;
	nb->nic_open = true;
	return 0;
}

int netback_nic_open(struct netback *nb, int fd, bool v3)
{
	int r = netback_nic_prepare(nb, fd, v3);
	return r ? r : netback_nic_attach(nb);
}

void netback_nic_close(struct netback *nb)
{
	struct netback_nic *n = &nb->nic;
	if (!nb->nic_open)
		return;
	evloop_del_fd(nb->loop, n->fd);
	if (!n->tap)
		evloop_del_poller(nb->loop, netback_nic_poll, nb);
	if (n->ring)
		munmap(n->ring, n->ring_bytes);
	free(n->tapbuf);
	close(n->fd);
	nb->nic_open = false;
}

/* TPACKET_V3: every frame of each block the kernel retired to us. */
static int nic_rx_ring_v3(struct netback *nb, unsigned budget)
{
	struct netback_nic *n = &nb->nic;
	int done = 0;
	while (budget--) {
		uint8_t *b = n->ring + (size_t)n->head * n->block_size;
		struct tpacket_block_desc *bd = (struct tpacket_block_desc *)b;
		_Atomic uint32_t *st = (_Atomic uint32_t *)&bd->hdr.bh1.block_status;
		/* acquire: pairs with the kernel's barrier before it retires the block. */
		if (!(atomic_load_explicit(st, memory_order_acquire) & TP_STATUS_USER))
			break;
		uint32_t np = bd->hdr.bh1.num_pkts, off = bd->hdr.bh1.offset_to_first_pkt;
		for (uint32_t i = 0; i < np && off < n->block_size; i++) {
			struct tpacket3_hdr *th = (struct tpacket3_hdr *)(b + off);
			struct sockaddr_ll *sll =
			    (struct sockaddr_ll *)((uint8_t *)th +
						   TPACKET_ALIGN(sizeof(struct tpacket3_hdr)));
			if (th->tp_snaplen < th->tp_len || th->tp_mac < VH_LEN ||
			    (size_t)off + th->tp_mac + th->tp_snaplen > n->block_size) {
				n->rx_trunc++;
			} else if (sll->sll_pkttype != PACKET_OUTGOING) {
				struct netback_pkt p;
				memcpy(&p.vh, (uint8_t *)th + th->tp_mac - VH_LEN, VH_LEN);
				p.data = (uint8_t *)th + th->tp_mac;
				p.len = p.head_len = th->tp_snaplen;
				p.tail = NULL;
				p.ntail = 0;
				n->rx_pkts++;
				n->rx_bytes += p.len;
				netback_bridge_input(nb, 0, &p, true);
				done++;
			}
			if (!th->tp_next_offset)
				break;
			off += th->tp_next_offset;
		}
		/* release: our reads of the block before the kernel refills it. */
		atomic_store_explicit(st, TP_STATUS_KERNEL, memory_order_release);
		n->head = (n->head + 1) % n->nframes;
	}
	return done;
}

/* Frames the NIC received: walk the ring from head while frames are ours. */
static int nic_rx_ring(struct netback *nb, unsigned budget)
{
	struct netback_nic *n = &nb->nic;
	if (n->resync && !nic_ring_resync(n))
		return 0;
	if (n->v3)
		return nic_rx_ring_v3(nb, budget / 16 + 1);
	int done = 0;
	while (budget--) {
		uint8_t *f = n->ring + (size_t)(n->head / n->frames_per_block) * n->block_size +
			     (size_t)(n->head % n->frames_per_block) * n->frame_size;
		struct tpacket2_hdr *th = (struct tpacket2_hdr *)f;
		_Atomic uint32_t *st = (_Atomic uint32_t *)&th->tp_status;
		/* acquire: pairs with the kernel's smp_wmb before it sets the status. */
		uint32_t s = atomic_load_explicit(st, memory_order_acquire);
		if (!(s & TP_STATUS_USER))
			break;
		struct sockaddr_ll *sll =
		    (struct sockaddr_ll *)(f + TPACKET_ALIGN(sizeof(struct tpacket2_hdr)));
		if (th->tp_snaplen < th->tp_len || (s & TP_STATUS_COPY) || th->tp_mac < VH_LEN ||
		    (size_t)th->tp_mac + th->tp_snaplen > n->frame_size) {
			n->rx_trunc++;
		} else if (sll->sll_pkttype != PACKET_OUTGOING) {
			struct netback_pkt p;
			memcpy(&p.vh, f + th->tp_mac - VH_LEN, VH_LEN);
			p.data = f + th->tp_mac;
			p.len = p.head_len = th->tp_snaplen;
			p.tail = NULL;
			p.ntail = 0;
			n->rx_pkts++;
			n->rx_bytes += p.len;
			netback_bridge_input(nb, 0, &p, true);
		}
		/* release: our reads of the frame before the kernel may reuse it. */
		atomic_store_explicit(st, TP_STATUS_KERNEL, memory_order_release);
		n->head = (n->head + 1) % n->nframes;
		done++;
	}
	return done;
}

static int nic_rx_tap(struct netback *nb, unsigned budget)
{
	struct netback_nic *n = &nb->nic;
	int done = 0;
	while (budget--) {
		ssize_t r = read(n->fd, n->tapbuf, VH_LEN + NETBACK_MAX_FRAME);
		if (r <= (ssize_t)VH_LEN)
			break;
		struct netback_pkt p;
		memcpy(&p.vh, n->tapbuf, VH_LEN);
		p.data = n->tapbuf + VH_LEN;
		p.len = p.head_len = (uint32_t)(r - (ssize_t)VH_LEN);
		p.tail = NULL;
		p.ntail = 0;
		n->rx_pkts++;
		n->rx_bytes += p.len;
		netback_bridge_input(nb, 0, &p, true);
		done++;
	}
	return done;
}

/* Deliver what the bridge queued for the vifs after a NIC batch. */
static void rx_kick_vifs(struct netback *nb)
{
	netback_rx_kick_all(nb); /* every queue of every vif */
}

int netback_nic_rx(struct netback *nb)
{
	if (!nb->nic_open || nb->nic.tap)
		return 0;
	int n = nic_rx_ring(nb, 64);
	if (n > 0)
		rx_kick_vifs(nb);
	return n;
}

int netback_nic_poll(void *arg, unsigned flags)
{
	(void)flags;
	struct netback *nb = arg;
	if (!nb->nic_open)
		return 0;
	nb->now_ns = netback_now_ns();
	int n = netback_nic_rx(nb);
	netback_kick_all(nb);
	return n > 0;
}

static void nic_ready(void *arg, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	struct netback *nb = arg;
	nb->nic.rx_wakeups++;
	nb->now_ns = netback_now_ns();
	int n = nb->nic.tap ? nic_rx_tap(nb, 64) : nic_rx_ring(nb, 256);
	if (n > 0)
		rx_kick_vifs(nb);
	netback_kick_all(nb);
}

void netback_nic_send(struct netback *nb, const struct netback_pkt *p, bool stays)
{
	(void)stays; /* every source keeps its bytes until netback_nic_flush */
	struct netback_nic *n = &nb->nic;
	if (n->tap) {
		struct iovec iov[2 + NETBACK_PKT_MAX_TAIL] = {{(void *)&p->vh, VH_LEN},
							      {(void *)p->data, p->head_len}};
		for (unsigned k = 0; k < p->ntail; k++)
			iov[2 + k] = p->tail[k];
		if (writev(n->fd, iov, 2 + (int)p->ntail) < 0)
			n->tx_drops++;
		else
			n->tx_pkts++, n->tx_bytes += p->len;
		return;
	}
	unsigned i = n->ntx++;
	n->vh[i] = p->vh;
	n->iov[i][1].iov_base = (void *)p->data;
	n->iov[i][1].iov_len = p->head_len;
	for (unsigned k = 0; k < p->ntail; k++)
		n->iov[i][2 + k] = p->tail[k];
	n->msgs[i].msg_hdr.msg_iovlen = 2 + p->ntail;
	n->tx_bytes += p->len;
	if (n->ntx == NETBACK_NIC_BATCH)
		netback_nic_flush(nb);
}

void netback_nic_flush(struct netback *nb)
{
	struct netback_nic *n = &nb->nic;
	unsigned done = 0;
	while (done < n->ntx) {
		int r = sendmmsg(n->fd, n->msgs + done, n->ntx - done, MSG_DONTWAIT);
		n->tx_calls++;
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			/* a full queue or a frame the kernel refused: skip one */
			n->tx_drops++;
			done++;
			continue;
		}
		n->tx_pkts += (unsigned)r;
		done += (unsigned)r;
	}
	n->ntx = 0;
}
