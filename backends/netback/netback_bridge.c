// SPDX-License-Identifier: MIT
// The learning bridge inside netback (docs/netback.md "Switching"): one MAC
// table (open addressing, aged entries) mapping source addresses to ports
// (0 = the physical NIC, 1.. = vifs); a frame goes to the port its
// destination was last seen on, and is flooded to every other port when the
// destination is unknown, broadcast or multicast. A frame never goes back
// out of the port it came in on. A vif's source addresses are learnt from
// what it sends (a guest may spoof: it can then steal traffic for that MAC
// on this netback only, as on a Linux bridge without ebtables).
#include "backends/netback/netback.h"

#include <string.h>

static uint32_t fdb_hash(const uint8_t *mac)
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < 6; i++)
		h = (h ^ mac[i]) * 16777619u;
	return h;
}

static struct netback_fdb *fdb_find(struct netback *nb, const uint8_t *mac, bool create)
{
	uint32_t h = fdb_hash(mac);
	struct netback_fdb *free_e = NULL;
	for (uint32_t i = 0; i < 16; i++) {
		struct netback_fdb *e = &nb->fdb[(h + i) & (NETBACK_FDB_SIZE - 1)];
		bool stale = e->port == 0xffff || nb->now_ns - e->seen_ns > NETBACK_FDB_AGE_NS;
		if (!stale && !memcmp(e->mac, mac, 6))
			return e;
		if (stale && !free_e)
			free_e = e;
	}
	if (!create)
		return NULL;
	if (!free_e) /* a full neighbourhood: replace the first */
		free_e = &nb->fdb[h & (NETBACK_FDB_SIZE - 1)];
	memcpy(free_e->mac, mac, 6);
	return free_e;
}

void netback_bridge_forget_port(struct netback *nb, unsigned port)
{
	for (unsigned i = 0; i < NETBACK_FDB_SIZE; i++)
		if (nb->fdb[i].port == port)
			nb->fdb[i].port = 0xffff;
}

static void output(struct netback *nb, unsigned port, const struct netback_pkt *p, bool stays)
{
	if (port == 0) {
		if (nb->nic_open)
			netback_nic_send(nb, p, stays);
		return;
	}
	struct netback_vif *v = nb->vifs[port];
	if (!v || !v->connected || v->broken)
		return;
	v = netback_rx_queue(v, p); /* multi-queue: the flow's rx queue */
	if (!v->connected || v->broken)
		return;
	if (p->ntail) { /* rx wants contiguous bytes: gather the pieces */
		struct netback_pkt flat = *p;
		uint32_t at = p->head_len;
		memcpy(nb->scratch, p->data, p->head_len);
		for (unsigned k = 0; k < p->ntail && at + p->tail[k].iov_len <= NETBACK_MAX_FRAME;
		     k++) {
			memcpy(nb->scratch + at, p->tail[k].iov_base, p->tail[k].iov_len);
			at += (uint32_t)p->tail[k].iov_len;
		}
		flat.data = nb->scratch;
		flat.len = flat.head_len = at;
		flat.tail = NULL;
		flat.ntail = 0;
		netback_rx_enqueue(v, &flat);
		return;
	}
	netback_rx_enqueue(v, p);
}

void netback_bridge_input(struct netback *nb, unsigned src_port, const struct netback_pkt *p,
			  bool stays)
{
	if (p->len < 14)
		return;
	const uint8_t *dst = p->data, *src = p->data + 6;
	if (!netpkt_mac_is_group(src)) {
		struct netback_fdb *e = fdb_find(nb, src, true);
		e->port = (uint16_t)src_port;
		e->seen_ns = nb->now_ns;
	}
	if (!netpkt_mac_is_group(dst)) {
		struct netback_fdb *e = fdb_find(nb, dst, false);
		if (e) {
			if (e->port != src_port)
				output(nb, e->port, p, stays);
			return;
		}
	}
	/* flood */
	if (src_port != 0)
		output(nb, 0, p, stays);
	for (unsigned port = 1; port <= NETBACK_MAX_VIFS; port++)
		if (port != src_port && nb->vifs[port])
			output(nb, port, p, stays);
}
