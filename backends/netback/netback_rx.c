// SPDX-License-Identifier: MIT
// Frames for a guest (docs/netback.md "Receive"): the bridge copies each
// into the vif's rx queue, a bounded byte ring in a segment of our own
// memory (NETBACK_RXQ_PAGES pages, at most NETBACK_RXQ_LEN frames; a full
// queue drops, so a guest that stops posting rx buffers costs drops, never
// memory). When the guest has posted enough rx requests for the frame at the
// head (one per 4 KiB, plus one for a GSO extra-info slot), netback fills
// them by grant copy from the queue (request-rx-copy), a batch of frames per
// hypercall, and writes each response in the slot of its request. Otherwise
// it sets req_event so that the guest's next push of that many buffers
// wakes it.
#include "backends/netback/netback.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define RXQ_BYTES (NETBACK_RXQ_PAGES * NETBACK_PAGE)

int netback_rxq_init(struct netback_vif *v)
{
	int r = gnt_seg_alloc(v->nb->h, v->fe_domid, NETBACK_RXQ_PAGES, &v->rxq_seg);
	if (r)
		return r;
	v->rxq = calloc(NETBACK_RXQ_LEN, sizeof(*v->rxq));
	if (!v->rxq)
		return -ENOMEM;
	v->rxq_head = v->rxq_tail = 0;
	return 0;
}

void netback_rxq_fini(struct netback_vif *v)
{
	free(v->rxq);
	v->rxq = NULL;
	if (v->rxq_seg && gnt_seg_free(v->nb->h, v->rxq_seg) == 0)
		v->rxq_seg = NULL;
	v->rxq_head = v->rxq_tail = 0;
}

/* Room for len contiguous bytes in the byte ring: 0 and *off, or -ENOSPC. */
static int rxq_alloc(struct netback_vif *v, uint32_t len, uint32_t *off)
{
	if (v->rxq_tail - v->rxq_head >= NETBACK_RXQ_LEN)
		return -ENOSPC;
	if (v->rxq_head == v->rxq_tail) {
		*off = 0;
		return 0;
	}
	const struct netback_rxq_ent *first = &v->rxq[v->rxq_head % NETBACK_RXQ_LEN];
	const struct netback_rxq_ent *last = &v->rxq[(v->rxq_tail - 1) % NETBACK_RXQ_LEN];
	uint32_t end = (last->off + last->len + 63u) & ~63u;
	if (end > first->off) { /* not wrapped: free space after end, then before first */
		if (end + len <= RXQ_BYTES) {
			*off = end;
			return 0;
		}
		if (len < first->off) {
			*off = 0;
			return 0;
		}
		return -ENOSPC;
	}
	if (end + len < first->off) {
		*off = end;
		return 0;
	}
	return -ENOSPC;
}

static unsigned rx_need_len(uint32_t len, bool gso)
{
	return (len + NETBACK_PAGE - 1) / NETBACK_PAGE + (gso ? 1u : 0u);
}

/* netif rx flags of a frame's first response. */
static uint16_t rx_csum_flags(const struct virtio_net_hdr *vh)
{
	if (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED;
	if (vh->flags & VIRTIO_NET_HDR_F_DATA_VALID)
		return NETRXF_DATA_VALIDATED;
	return 0;
}

static void rx_gso_extra(struct netif_extra *x, const struct virtio_net_hdr *vh)
{
	memset(x, 0, sizeof(*x));
	x->type = XEN_NETIF_EXTRA_TYPE_GSO;
	x->u.gso.size = vh->gso_size;
	x->u.gso.type = (vh->gso_type & 0x7f) == VIRTIO_NET_HDR_GSO_TCPV6
			    ? XEN_NETIF_GSO_TYPE_TCPV6
			    : XEN_NETIF_GSO_TYPE_TCPV4;
}

/* The buffer at req_cons is not mapped yet (a vif's first packets after a
 * (re)connection): map it and the buffers posted behind it in one call
 * (netback_pgnt_map_ahead), not one hypercall per buffer as each is
 * reached. The requests are copied, not consumed; their refs are hints. */
static void rx_map_ahead(struct netback_vif *v)
{
	uint32_t avail;
	if (!v->persistent || netif_rx_ring_back_unconsumed_requests(&v->rx, &avail) || !avail)
		return;
	struct netif_rx_req rq;
	netif_rx_ring_back_copy_request(&v->rx, v->rx.req_cons, &rq);
	if (netback_pgnt_cached(v, rq.gref))
		return;
	grant_ref_t refs[NETBACK_PGNT_AHEAD];
	unsigned n = avail < NETBACK_PGNT_AHEAD ? avail : NETBACK_PGNT_AHEAD;
	for (unsigned k = 0; k < n; k++) {
		netif_rx_ring_back_copy_request(&v->rx, v->rx.req_cons + k, &rq);
		refs[k] = rq.gref;
	}
	netback_pgnt_map_ahead(v, refs, n, true);
}

/* With persistent grants and nothing queued, copy a frame straight into the
 * guest's posted buffers (one memcpy instead of two). Only if every buffer
 * it needs is mapped; false otherwise (nothing consumed: queue it). The
 * responses are published by netback_rx_poll (rx_dirty). */
static bool rx_direct(struct netback_vif *v, const struct netback_pkt *p)
{
	bool gso = p->vh.gso_type != VIRTIO_NET_HDR_GSO_NONE;
	unsigned need = rx_need_len(p->len, gso);
	uint32_t avail;
	if (!v->persistent || v->rxq_head != v->rxq_tail || need > XEN_NETIF_NR_SLOTS_MIN + 1 ||
	    netif_rx_ring_back_unconsumed_requests(&v->rx, &avail) || avail < need)
		return false;
	struct netif_rx_req rq[XEN_NETIF_NR_SLOTS_MIN + 1];
	uint8_t *dst[XEN_NETIF_NR_SLOTS_MIN + 1];
	rx_map_ahead(v);
	for (unsigned k = 0; k < need; k++) {
		netif_rx_ring_back_copy_request(&v->rx, v->rx.req_cons + k, &rq[k]);
		dst[k] = NULL;
		if (gso && k == 1)
			continue;
		if (!(dst[k] = netback_pgnt_get(v, rq[k].gref, true)))
			return false;
	}
	uint16_t csum = rx_csum_flags(&p->vh);
	uint32_t pos = 0;
	for (unsigned k = 0; k < need; k++) {
		struct netif_rx_req dummy;
		(void)netif_rx_ring_back_take_request(&v->rx, &dummy);
		union netif_rx_rsp_slot *rs = netif_rx_ring_back_next_rsp(&v->rx);
		if (gso && k == 1) {
			rx_gso_extra(&rs->extra, &p->vh);
			continue;
		}
		uint32_t chunk = p->len - pos > NETBACK_PAGE ? NETBACK_PAGE : p->len - pos;
		memcpy(dst[k], p->data + pos, chunk);
		uint16_t fl = 0;
		if (k == 0)
			fl = (uint16_t)(csum | (gso ? NETRXF_EXTRA_INFO : 0));
		if (pos + chunk < p->len)
			fl |= NETRXF_MORE_DATA;
		rs->rsp.id = rq[k].id;
		rs->rsp.offset = 0;
		rs->rsp.flags = fl;
		rs->rsp.status = (int16_t)chunk;
		pos += chunk;
	}
	v->st.rx_pkts++;
	v->st.rx_bytes += p->len;
	v->rx_dirty = true;
	return true;
}

void netback_rx_enqueue(struct netback_vif *v, const struct netback_pkt *p)
{
	bool gso = p->vh.gso_type != VIRTIO_NET_HDR_GSO_NONE;
	uint32_t off;
	if (p->len > NETBACK_MAX_FRAME || (p->len > NETBACK_PAGE && !v->fe_sg) ||
	    (gso && !((p->vh.gso_type & 0x7f) == VIRTIO_NET_HDR_GSO_TCPV4   ? v->fe_gso4
		      : (p->vh.gso_type & 0x7f) == VIRTIO_NET_HDR_GSO_TCPV6 ? v->fe_gso6
									    : false))) {
		v->st.rx_drops++;
		return;
	}
	if (rx_direct(v, p))
		return;
	if (rxq_alloc(v, p->len, &off)) {
		v->st.rx_drops++;
		return;
	}
	memcpy((uint8_t *)gnt_seg_page(v->rxq_seg, 0) + off, p->data, p->len);
	struct netback_rxq_ent *e = &v->rxq[v->rxq_tail % NETBACK_RXQ_LEN];
	e->off = off;
	e->len = p->len;
	e->vh = p->vh;
	v->rxq_tail++;
}

static unsigned rx_need(const struct netback_rxq_ent *e)
{
	return (e->len + NETBACK_PAGE - 1) / NETBACK_PAGE +
	       (e->vh.gso_type != VIRTIO_NET_HDR_GSO_NONE ? 1u : 0u);
}

struct rx_done {
	uint32_t first_rsp; /* ring index of its first response */
	unsigned nrsp, op_first, op_count;
	bool gso;
};

static int rx_round(struct netback_vif *v)
{
	struct netback *nb = v->nb;
	static struct rx_done done[64];
	unsigned npk = 0, nops = 0;
	rx_map_ahead(v);
	while (v->rxq_head != v->rxq_tail && npk < 64 && nops + 40 <= HV_COPY_BATCH_MAX) {
		const struct netback_rxq_ent *e = &v->rxq[v->rxq_head % NETBACK_RXQ_LEN];
		unsigned need = rx_need(e);
		uint32_t avail;
		if (netif_rx_ring_back_unconsumed_requests(&v->rx, &avail)) {
			netback_vif_fail(v, "rx ring: producer index jump");
			return -EPROTO;
		}
		if (avail < need)
			break;
		struct rx_done *d = &done[npk++];
		d->first_rsp = v->rx.rsp_prod_pvt;
		d->nrsp = need;
		d->op_first = nops;
		bool gso = e->vh.gso_type != VIRTIO_NET_HDR_GSO_NONE;
		d->gso = gso;
		uint16_t csum = rx_csum_flags(&e->vh);
		uint32_t pos = 0;
		for (unsigned k = 0; k < need; k++) {
			struct netif_rx_req rq = {0};
			(void)netif_rx_ring_back_take_request(&v->rx, &rq);
			union netif_rx_rsp_slot *rs = netif_rx_ring_back_next_rsp(&v->rx);
			if (gso && k == 1) {
				memset(&rs->extra, 0, sizeof(rs->extra));
				rs->extra.type = XEN_NETIF_EXTRA_TYPE_GSO;
				rs->extra.u.gso.size = e->vh.gso_size;
				rs->extra.u.gso.type =
				    (e->vh.gso_type & 0x7f) == VIRTIO_NET_HDR_GSO_TCPV6
					? XEN_NETIF_GSO_TYPE_TCPV6
					: XEN_NETIF_GSO_TYPE_TCPV4;
				continue;
			}
			uint32_t chunk = e->len - pos > NETBACK_PAGE ? NETBACK_PAGE : e->len - pos;
			uint16_t fl = 0;
			if (k == 0)
				fl = (uint16_t)(csum | (gso ? NETRXF_EXTRA_INFO : 0));
			if (pos + chunk < e->len)
				fl |= NETRXF_MORE_DATA;
			rs->rsp.id = rq.id;
			rs->rsp.offset = 0;
			rs->rsp.flags = fl;
			rs->rsp.status = (int16_t)chunk;
			uint8_t *dst = v->persistent ? netback_pgnt_get(v, rq.gref, true) : NULL;
			if (dst) /* mapped once: copy it ourselves, no hypercall */
				memcpy(dst, (uint8_t *)gnt_seg_page(v->rxq_seg, 0) + e->off + pos,
				       chunk);
			/* else the chunk by grant copy, split where our source crosses a page */
			uint32_t c = dst ? chunk : 0;
			while (c < chunk) {
				uint32_t src = e->off + pos + c;
				uint32_t in = src % NETBACK_PAGE, l = chunk - c;
				if (l > NETBACK_PAGE - in)
					l = NETBACK_PAGE - in;
				struct hv_gnt_copy *o = &nb->ops[nops++];
				memset(o, 0, sizeof(*o));
				o->source.u = gnt_seg_frame(v->rxq_seg, src / NETBACK_PAGE);
				o->source.domid = DOMID_SELF;
				o->source.offset = (uint16_t)in;
				o->dest.u = rq.gref;
				o->dest.domid = v->fe_domid;
				o->dest.offset = (uint16_t)c;
				o->len = (uint16_t)l;
				o->flags = GNTCOPY_dest_gref;
				c += l;
			}
			pos += chunk;
		}
		d->op_count = nops - d->op_first;
		v->st.rx_pkts++;
		v->st.rx_bytes += e->len;
		v->rxq_head++;
	}
	if (npk == 0)
		return 0;
	int cr = 0;
	if (nops) {
		cr = gnt_copy(nb->h, nb->ops, nops);
		v->st.gnt_copies += nops;
		v->st.gnt_copy_calls++;
	}
	if (cr) {
		for (unsigned i = 0; i < npk; i++) {
			bool bad = false;
			for (unsigned k = 0; k < done[i].op_count; k++)
				if (cr != -EIO ||
				    nb->ops[done[i].op_first + k].status != GNTST_okay)
					bad = true;
			if (!bad)
				continue;
			v->st.rx_drops++;
			for (unsigned k = 0; k < done[i].nrsp; k++) {
				if (done[i].gso && k == 1)
					continue; /* the extra-info slot */
				union netif_rx_rsp_slot *rs =
				    netif_rx_ring_back_rsp_slot(&v->rx, done[i].first_rsp + k);
				rs->rsp.status = NETIF_RSP_ERROR;
			}
		}
	}
	netback_vif_notify_rx(v);
	return (int)npk;
}

int netback_rx_poll(struct netback_vif *v, unsigned flags)
{
	(void)flags;
	if (!v->connected || v->broken)
		return 0;
	int work = 0;
	if (v->rx_dirty) /* frames rx_direct delivered */
		netback_vif_notify_rx(v);
	for (;;) {
		int n = rx_round(v);
		if (n <= 0)
			break;
		work += n;
	}
	if (v->broken || v->rxq_head == v->rxq_tail)
		return work;
	/* Frames wait for buffers: be woken when the guest has pushed enough. */
	uint32_t n;
	unsigned need = rx_need(&v->rxq[v->rxq_head % NETBACK_RXQ_LEN]);
	if (netif_rx_ring_back_final_check_ahead(&v->rx, need, &n))
		netback_vif_fail(v, "rx ring: producer index jump");
	else if (n >= need)
		work += rx_round(v) > 0;
	return work;
}

struct netback_vif *netback_rx_queue(struct netback_vif *v, const struct netback_pkt *p)
{
	if (v->nqueues <= 1)
		return v;
	struct netback_vif *q = v->queue[netpkt_flow_hash(p->data, p->head_len) % v->nqueues];
	return q ? q : v;
}

void netback_rx_kick_all(struct netback *nb)
{
	for (unsigned i = 1; i <= NETBACK_MAX_VIFS; i++) {
		struct netback_vif *v = nb->vifs[i];
		for (unsigned k = 0; v && k < v->nqueues; k++) {
			struct netback_vif *o = v->queue[k];
			if (o && o->connected && !o->broken &&
			    (o->rxq_head != o->rxq_tail || o->rx_dirty))
				netback_rx_poll(o, 0);
		}
	}
}
