// SPDX-License-Identifier: MIT
// Event channels (docs/hv.md, "Event channels"): ports 1..4095 per domain
// with Xen's alloc_unbound / bind_interdomain / close / status semantics.
// A binding gets two fresh eventfds, one per direction; the binder receives
// {wait, kick} in its reply and the other side the mirror pair in an async
// HV_EVT_PORT_BOUND, after which the hv keeps neither: `send` is the
// domain's own write. Closing returns the remote end to unbound (remote =
// the closer) and tells its owner with HV_EVT_PORT_CLOSED.
#include "common/log.h"
#include "hv/hv_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int hv_evtchn_init(struct hv_dom *d)
{
	d->ports = calloc(HV_EVTCHN_PORTS, sizeof(*d->ports));
	return d->ports ? 0 : -ENOMEM;
}

static int hv_port_find_free(struct hv_dom *d, evtchn_port_t *out)
{
	for (evtchn_port_t p = 1; p < HV_EVTCHN_PORTS; p++)
		if (d->ports[p].state == HV_PORT_FREE) {
			*out = p;
			return 0;
		}
	return -ENOSPC;
}

int hv_evtchn_alloc_unbound(struct hv_dom *d, struct hv_conn *owner, domid_t remote,
			    evtchn_port_t *port)
{
	evtchn_port_t p;
	int r = hv_port_find_free(d, &p);
	if (r)
		return r;
	d->ports[p] =
	    (struct hv_port){.state = HV_PORT_UNBOUND, .remote_dom = remote, .owner = owner};
	*port = p;
	return 0;
}

int hv_evtchn_bind(struct hv_conn *c, domid_t remote, evtchn_port_t rport, evtchn_port_t *port,
		   int fds[2])
{
	struct hv_dom *d = c->dom;
	struct hv_dom *r = hv_dom_get(remote);
	if (!r || r->state == HV_DOM_DYING)
		return -ESRCH;
	if (rport == 0 || rport >= HV_EVTCHN_PORTS)
		return -EINVAL;
	struct hv_port *rp = &r->ports[rport];
	if (rp->state != HV_PORT_UNBOUND || rp->remote_dom != d->domid)
		return -EINVAL;
	evtchn_port_t lp;
	int ret = hv_port_find_free(d, &lp);
	if (ret)
		return ret;
	/* a: the binder waits on it, the remote kicks it; b: the reverse. */
	int a = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a < 0)
		return -errno;
	int b = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b < 0) {
		ret = -errno;
		close(a);
		return ret;
	}
	d->ports[lp] = (struct hv_port){
	    .state = HV_PORT_INTERDOMAIN, .remote_dom = r->domid, .remote_port = rport, .owner = c};
	rp->state = HV_PORT_INTERDOMAIN;
	rp->remote_dom = d->domid;
	rp->remote_port = lp;
	/* Xen marks the new local port pending. */
	uint64_t one = 1;
	if (write(a, &one, sizeof(one)) != (ssize_t)sizeof(one))
		log_warn("eventfd write: %s", strerror(errno));
	if (rp->owner) {
		struct hv_evt_port_bound ev = {
		    .port = rport, .remote_dom = d->domid, .remote_port = lp};
		int rfds[2] = {b, a};
		hv_send(rp->owner, HV_EVT_PORT_BOUND, 0, 0, &ev, sizeof(ev), rfds, 2);
	}
	fds[0] = a;
	fds[1] = b;
	*port = lp;
	return 0;
}

int hv_evtchn_close(struct hv_dom *d, struct hv_conn *c, evtchn_port_t port)
{
	(void)c; /* any connection of a domain may close its ports (Xen) */
	if (port == 0 || port >= HV_EVTCHN_PORTS || d->ports[port].state == HV_PORT_FREE)
		return -EINVAL;
	struct hv_port *p = &d->ports[port];
	if (p->state == HV_PORT_INTERDOMAIN) {
		struct hv_dom *r = hv_dom_get(p->remote_dom);
		struct hv_port *rp = r ? &r->ports[p->remote_port] : NULL;
		if (rp && rp->state == HV_PORT_INTERDOMAIN && rp->remote_dom == d->domid &&
		    rp->remote_port == port) {
			rp->state = HV_PORT_UNBOUND;
			rp->remote_dom = d->domid;
			rp->remote_port = 0;
			if (rp->owner) {
				struct hv_evt_port_closed ev = {.port = p->remote_port};
				hv_send(rp->owner, HV_EVT_PORT_CLOSED, 0, 0, &ev, sizeof(ev), NULL,
					0);
			}
		}
	}
	memset(p, 0, sizeof(*p));
	return 0;
}

int hv_evtchn_status(struct hv_dom *d, evtchn_port_t port, struct hv_evtchn_status_rep *rep)
{
	memset(rep, 0, sizeof(*rep));
	if (port >= HV_EVTCHN_PORTS)
		return -EINVAL;
	struct hv_port *p = &d->ports[port];
	switch (p->state) {
	case HV_PORT_UNBOUND:
		rep->status = EVTCHNSTAT_unbound;
		rep->remote_dom = p->remote_dom;
		break;
	case HV_PORT_INTERDOMAIN:
		rep->status = EVTCHNSTAT_interdomain;
		rep->remote_dom = p->remote_dom;
		rep->remote_port = p->remote_port;
		break;
	default:
		rep->status = EVTCHNSTAT_closed;
		break;
	}
	return 0;
}

void hv_evtchn_close_all(struct hv_dom *d, struct hv_conn *owner)
{
	if (!d->ports)
		return;
	for (evtchn_port_t p = 1; p < HV_EVTCHN_PORTS; p++)
		if (d->ports[p].state != HV_PORT_FREE && (!owner || d->ports[p].owner == owner))
			hv_evtchn_close(d, NULL, p);
}
