// SPDX-License-Identifier: MIT
// A guest's transmit ring (docs/netback.md "Transmit"): requests are copied
// out of the shared ring one packet at a time (first slot, extra-info slots,
// fragments) and checked before anything is done with them; the packet's
// bytes are then fetched by grant copy into staging pages of our own memory
// (the hv copies: netback never maps a guest's data pages), a batch of
// packets per hypercall. Each slot gets its response (NETIF_RSP_NULL for
// extras) and the packets go into the bridge. A malformed packet (offset +
// size past the page, a zero-length fragment, a first size that does not
// cover its fragments, a bad extra) is answered NETIF_RSP_ERROR and
// dropped; a packet of more than XEN_NETIF_NR_SLOTS_MIN slots or a producer
// index jump disconnects the vif.
#include "backends/netback/netback.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define MAX_EXTRAS 4u
#define MAX_SLOTS (XEN_NETIF_NR_SLOTS_MIN + MAX_EXTRAS)
#define OPS_PER_PKT (2u * XEN_NETIF_NR_SLOTS_MIN)

struct tx_pkt {
	uint16_t nslots;
	uint16_t ids[MAX_SLOTS];
	bool extra[MAX_SLOTS];
	bool bad;
	uint16_t nflags;
	struct netif_extra gso;
	bool has_gso;
	uint32_t stage_off, len;
	unsigned op_first, op_count;
	uint32_t head_len; /* zero-copy: headers copied, the rest in tail */
	struct iovec tail[NETBACK_PKT_MAX_TAIL];
	unsigned ntail;
};

/* Bytes of headers netback copies for itself before a zero-copy send: the
 * rest of the frame goes from the guest's mapped pages straight into the
 * kernel's skb (a guest changing it meanwhile only changes its own frame;
 * everything netback parses is its own copy). */
#define TX_HEAD_COPY 256u

/* Peek at the packet starting at req_cons (avail slots pushed). Returns 1 and
 * *slots_out if a whole packet is there (consumed: the caller answers every
 * slot), 0 if it is not complete yet, or -EPROTO if it can never be valid. */
static int tx_take(struct netback_vif *v, uint32_t avail, struct tx_pkt *pk,
		   struct netif_tx_req *frags, unsigned *nfrags)
{
	uint32_t idx = v->tx.req_cons;
	union netif_tx_req_slot s;
	unsigned nf = 0, ns = 0, nextra = 0;
	bool more = true, extra_next = false;
	memset(pk, 0, sizeof(*pk));
	while (more || extra_next) {
		if (ns >= avail)
			return 0;
		if (ns >= MAX_SLOTS)
			return -EPROTO;
		netif_tx_ring_back_copy_request(&v->tx, idx + ns, &s);
		if (extra_next) {
			if (++nextra > MAX_EXTRAS)
				return -EPROTO;
			pk->extra[ns] = true;
			pk->ids[ns] = 0;
			if (s.extra.type == XEN_NETIF_EXTRA_TYPE_GSO) {
				pk->gso = s.extra;
				pk->has_gso = true;
			} else if (s.extra.type != XEN_NETIF_EXTRA_TYPE_MCAST_ADD &&
				   s.extra.type != XEN_NETIF_EXTRA_TYPE_MCAST_DEL) {
				pk->bad = true;
			}
			extra_next = (s.extra.flags & NETIF_EXTRA_FLAG_MORE) != 0;
			ns++;
			continue;
		}
		if (nf >= XEN_NETIF_NR_SLOTS_MIN)
			return -EPROTO;
		frags[nf++] = s.req;
		pk->ids[ns] = s.req.id;
		more = (s.req.flags & NETTXF_MORE_DATA) != 0;
		if (nf == 1) {
			pk->nflags = s.req.flags;
			extra_next = (s.req.flags & NETTXF_EXTRA_INFO) != 0;
		}
		ns++;
	}
	pk->nslots = (uint16_t)ns;
	*nfrags = nf;
	v->tx.req_cons += ns;
	return 1;
}

/* Check a packet's fragments; on success its length. */
static bool tx_check(struct tx_pkt *pk, struct netif_tx_req *f, unsigned nf)
{
	uint32_t total = f[0].size, rest = 0;
	if (total < 14)
		return false;
	for (unsigned i = 0; i < nf; i++) {
		if (i > 0) {
			if (f[i].size == 0)
				return false;
			rest += f[i].size;
		}
		if ((uint32_t)f[i].offset + f[i].size > NETBACK_PAGE && i > 0)
			return false;
	}
	if (rest >= total)
		return false;
	uint32_t first = total - rest;
	if ((uint32_t)f[0].offset + first > NETBACK_PAGE)
		return false;
	f[0].size = (uint16_t)first;
	if (pk->has_gso &&
	    (pk->gso.u.gso.size == 0 || (pk->gso.u.gso.type != XEN_NETIF_GSO_TYPE_TCPV4 &&
					 pk->gso.u.gso.type != XEN_NETIF_GSO_TYPE_TCPV6)))
		return false;
	pk->len = total;
	return true;
}

/* Copy ops for one fragment into the staging area at byte *dst. */
static unsigned tx_ops(struct netback_vif *v, struct hv_gnt_copy *ops, const struct netif_tx_req *f,
		       uint32_t *dst)
{
	unsigned n = 0;
	uint32_t done = 0;
	while (done < f->size) {
		uint32_t pg = *dst / NETBACK_PAGE, in = *dst % NETBACK_PAGE;
		uint32_t len = f->size - done;
		if (len > NETBACK_PAGE - in)
			len = NETBACK_PAGE - in;
		struct hv_gnt_copy *o = &ops[n++];
		memset(o, 0, sizeof(*o));
		o->source.u = f->gref;
		o->source.domid = v->fe_domid;
		o->source.offset = (uint16_t)(f->offset + done);
		o->dest.u = gnt_seg_frame(v->tx_stage, pg);
		o->dest.domid = DOMID_SELF;
		o->dest.offset = (uint16_t)in;
		o->len = (uint16_t)len;
		o->flags = GNTCOPY_source_gref;
		done += len;
		*dst += len;
	}
	return n;
}

/* netif flags and GSO extra -> virtio_net_hdr. 0, or -EINVAL (drop). */
int netback_pkt_vnet(struct netback_pkt *p, uint16_t nflags, const struct netif_extra *gso)
{
	memset(&p->vh, 0, sizeof(p->vh));
	if ((nflags & NETTXF_CSUM_BLANK) || gso) {
		struct netpkt_l4 l4;
		if (netpkt_l4_parse(p->data, p->head_len, &l4))
			return -EINVAL;
		p->vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		p->vh.csum_start = l4.csum_start;
		p->vh.csum_offset = l4.csum_offset;
		if (gso) {
			if (l4.proto != 6 ||
			    (gso->u.gso.type == XEN_NETIF_GSO_TYPE_TCPV6) != l4.ipv6)
				return -EINVAL;
			p->vh.gso_type =
			    l4.ipv6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
			p->vh.gso_size = gso->u.gso.size;
			p->vh.hdr_len = l4.hdr_len;
		}
	} else if (nflags & NETTXF_DATA_VALIDATED) {
		p->vh.flags = VIRTIO_NET_HDR_F_DATA_VALID;
	}
	return 0;
}

static void tx_respond(struct netback_vif *v, const struct tx_pkt *pk, int16_t status)
{
	for (unsigned i = 0; i < pk->nslots; i++) {
		struct netif_tx_rsp *r = netif_tx_ring_back_next_rsp(&v->tx);
		if (!r)
			return;
		r->id = pk->ids[i];
		r->status = pk->extra[i] ? NETIF_RSP_NULL : status;
	}
}

/* Deliver what the bridge queued for other vifs. */
/* A packet's page is not mapped yet (a vif's first packets after a
 * (re)connection): map its pages and those of the packets behind it on the
 * ring in one call (netback_pgnt_map_ahead), not one hypercall per page as
 * each is reached. The slots behind are copied, not consumed, and only
 * their refs are used, as hints: tx_take checks them when their turn
 * comes. */
static void tx_map_ahead(struct netback_vif *v, const struct netif_tx_req *f, unsigned nf)
{
	grant_ref_t refs[NETBACK_PGNT_AHEAD];
	unsigned n = 0;
	for (unsigned i = 0; i < nf && n < NETBACK_PGNT_AHEAD; i++)
		refs[n++] = f[i].gref;
	uint32_t avail;
	if (!netif_tx_ring_back_unconsumed_requests(&v->tx, &avail)) {
		bool extra = false;
		for (uint32_t k = 0; k < avail && n < NETBACK_PGNT_AHEAD; k++) {
			union netif_tx_req_slot s;
			netif_tx_ring_back_copy_request(&v->tx, v->tx.req_cons + k, &s);
			if (extra) {
				extra = (s.extra.flags & NETIF_EXTRA_FLAG_MORE) != 0;
				continue;
			}
			refs[n++] = s.req.gref;
			extra = (s.req.flags & NETTXF_EXTRA_INFO) != 0;
		}
	}
	netback_pgnt_map_ahead(v, refs, n, false);
}

static void tx_kick_vifs(struct netback *nb)
{
	netback_rx_kick_all(nb); /* every queue of every vif */
}

static int tx_round(struct netback_vif *v)
{
	struct netback *nb = v->nb;
	static struct tx_pkt pk[NETBACK_TX_BATCH];
	struct netif_tx_req frags[XEN_NETIF_NR_SLOTS_MIN];
	unsigned npk = 0, nops = 0;
	bool ahead = false;
	uint32_t stage = 0;
	const uint32_t stage_bytes = NETBACK_TX_STAGE_PAGES * NETBACK_PAGE;

	while (npk < NETBACK_TX_BATCH && nops + OPS_PER_PKT <= HV_COPY_BATCH_MAX &&
	       stage + 65536u + 64u <= stage_bytes) {
		uint32_t avail;
		if (netif_tx_ring_back_unconsumed_requests(&v->tx, &avail)) {
			netback_vif_fail(v, "tx ring: producer index jump");
			break;
		}
		if (avail == 0)
			break;
		unsigned nf;
		struct tx_pkt *p = &pk[npk];
		int r = tx_take(v, avail, p, frags, &nf);
		if (r == 0)
			break;
		if (r < 0) {
			netback_vif_fail(v, "tx ring: packet of more than XEN_NETIF_NR_SLOTS_MIN "
					    "slots or extras");
			break;
		}
		npk++;
		v->st.tx_reqs += p->nslots;
		if (nb->crash_at_tx && ++nb->tx_taken == nb->crash_at_tx) {
			log_warn("drvdom-crash-at: tx:%" PRIu64 ": crashing", nb->crash_at_tx);
			abort();
		}
		if (p->bad || !tx_check(p, frags, nf)) {
			p->bad = true;
			continue;
		}
		p->stage_off = stage;
		p->op_first = nops;
		p->head_len = p->len;
		p->ntail = 0;
		for (unsigned i = 0; i < nf && v->persistent && !ahead; i++)
			if (!netback_pgnt_cached(v, frags[i].gref)) {
				tx_map_ahead(v, frags, nf);
				ahead = true; /* once a round: what it missed is not mappable */
			}
		uint8_t *src[XEN_NETIF_NR_SLOTS_MIN];
		bool zc = v->persistent && nb->nic_open;
		for (unsigned i = 0; i < nf && zc; i++)
			zc = (src[i] = netback_pgnt_get(v, frags[i].gref, false)) != NULL;
		if (zc && p->len > TX_HEAD_COPY) {
			uint8_t *dst = (uint8_t *)gnt_seg_page(v->tx_stage, 0) + stage;
			uint32_t copied = 0;
			for (unsigned i = 0; i < nf; i++) {
				uint8_t *s = src[i] + frags[i].offset;
				uint32_t sz = frags[i].size;
				if (copied < TX_HEAD_COPY) {
					uint32_t c =
					    TX_HEAD_COPY - copied < sz ? TX_HEAD_COPY - copied : sz;
					memcpy(dst + copied, s, c);
					copied += c;
					s += c;
					sz -= c;
				}
				if (sz)
					p->tail[p->ntail++] = (struct iovec){s, sz};
			}
			p->head_len = TX_HEAD_COPY;
			stage = (stage + TX_HEAD_COPY + 63u) & ~63u;
			p->op_count = 0;
			continue;
		}
		for (unsigned i = 0; i < nf; i++) {
			uint8_t *from =
			    v->persistent ? netback_pgnt_get(v, frags[i].gref, false) : NULL;
			if (from) { /* mapped once: copy it ourselves, no hypercall */
				memcpy((uint8_t *)gnt_seg_page(v->tx_stage, 0) + stage,
				       from + frags[i].offset, frags[i].size);
				stage += frags[i].size;
			} else {
				nops += tx_ops(v, nb->ops + nops, &frags[i], &stage);
			}
		}
		p->op_count = nops - p->op_first;
		stage = (stage + 63u) & ~63u;
	}
	if (npk == 0)
		return 0;
	int cr = 0;
	if (nops) {
		cr = gnt_copy(nb->h, nb->ops, nops);
		v->st.gnt_copies += nops;
		v->st.gnt_copy_calls++;
	}
	uint8_t *base = gnt_seg_page(v->tx_stage, 0);
	for (unsigned i = 0; i < npk; i++) {
		struct tx_pkt *p = &pk[i];
		if (!p->bad && cr) {
			for (unsigned k = 0; k < p->op_count; k++)
				if (cr != -EIO || nb->ops[p->op_first + k].status != GNTST_okay)
					p->bad = true;
		}
		struct netback_pkt np = {.data = base + p->stage_off,
					 .len = p->len,
					 .head_len = p->head_len,
					 .tail = p->tail,
					 .ntail = p->ntail};
		if (!p->bad && netback_pkt_vnet(&np, p->nflags, p->has_gso ? &p->gso : NULL))
			p->bad = true;
		tx_respond(v, p, p->bad ? NETIF_RSP_ERROR : NETIF_RSP_OKAY);
		if (p->bad) {
			v->st.tx_errors++;
			v->st.tx_drops++;
			continue;
		}
		v->st.tx_pkts++;
		v->st.tx_bytes += p->len;
		netback_bridge_input(nb, v->port, &np, true);
	}
	if (nb->nic_open) {
		netback_nic_flush(nb);
		/* A peer on this host (a veth's other end) answers inside
		 * sendmmsg: take the answer now, so that the guest learns of
		 * its tx responses and the answer with one notification. */
		netback_nic_rx(nb);
	}
	netback_vif_notify_tx(v);
	tx_kick_vifs(nb);
	return (int)npk;
}

int netback_tx_poll(struct netback_vif *v, unsigned flags)
{
	if (!v->connected || v->broken)
		return 0;
	v->nb->now_ns = netback_now_ns();
	int work = 0;
	for (;;) {
		int n = tx_round(v);
		if (n <= 0 || v->broken)
			break;
		work += n;
	}
	if ((flags & EVLOOP_POLL_FINAL) && !v->broken) {
		uint32_t n;
		if (netif_tx_ring_back_final_check_for_requests(&v->tx, &n))
			netback_vif_fail(v, "tx ring: producer index jump");
		else if (n)
			work += tx_round(v) > 0;
	}
	return work;
}
