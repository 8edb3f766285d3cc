// SPDX-License-Identifier: MIT
// A malicious netif backend for the net suite (a static driver domain
// kernel, extra_args = [MODE]): it serves the first vif that appears under
// its backend/vif directory just far enough to connect (InitWait, map the
// rings, bind the channel, Connected), then breaks the protocol on the rx
// ring as MODE says:
//   id     a response whose id is not the one of its slot
//   jump   rsp_prod moved 1000 slots ahead of the requests posted
// netfront must reset the connection (frontend state back to Initialising),
// not crash; then this backend offers itself again (InitWait) and the
// frontend must run the handshake again (Initialised): the reconnect path a
// restarted netback relies on. Result in data/result ("ok ..." or "fail:").
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grant/gnt.h"
#include "hv/evtchn.h"
#include "hv/hvc.h"
#include "ring/netif.h"
#include "ring/xenbus.h"
#include "tests/integration/netevil_common.h"
#include "xenstore/include/xenstore.h"
#include "xenstore/xs_transport.h"

static struct hvc *h;

static void wr(const char *dir, const char *key, long v)
{
	char p[256], b[32];
	snprintf(p, sizeof(p), "%s/%s", dir, key);
	snprintf(b, sizeof(b), "%ld", v);
	xs_write(xs, XBT_NULL, p, b, (unsigned)strlen(b));
}

static int wait_state(const char *dir, long want, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (rd(dir, "state") == want)
			return 0;
		sleep_ms(10);
	}
	return -ETIMEDOUT;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "id";
	int r;
	if ((r = hvc_open_domain(&h)) || (r = hvc_self_domid(h, &self)))
		return 1;
	xs_ring_use_hvc(h);
	if (!(xs = xs_open(0)))
		return 1;
	char vifs[96], be[160], fe[160];
	snprintf(vifs, sizeof(vifs), "/local/domain/%u/backend/vif", self);
	unsigned fe_dom = 0;
	for (int i = 0; i < 1000 && !fe_dom; i++) {
		unsigned n = 0;
		char **d = xs_directory(xs, XBT_NULL, vifs, &n);
		if (d && n)
			fe_dom = (unsigned)strtoul(d[0], NULL, 10);
		free(d);
		if (!fe_dom)
			sleep_ms(10);
	}
	snprintf(be, sizeof(be), "%s/%u/0", vifs, fe_dom);
	snprintf(fe, sizeof(fe), "/local/domain/%u/device/vif/0", fe_dom);
	for (int round = 0; round < 2; round++) {
		wr(be, "feature-rx-copy", 1);
		wr(be, "feature-sg", 1);
		wr(be, "state", XENBUS_STATE_INIT_WAIT);
		if (wait_state(fe, XENBUS_STATE_INITIALISED, 10000)) {
			result("fail: round %d: frontend state %ld, not Initialised", round,
			       rd(fe, "state"));
			goto idle;
		}
		if (round == 1) {
			result("ok %s: frontend reset and came back to Initialised", mode);
			goto idle;
		}
		long rx_ref = rd(fe, "rx-ring-ref"), port = rd(fe, "event-channel");
		void *page;
		gnt_handle_t hd;
		evtchn_port_t lport;
		if (gnt_map(h, (domid_t)fe_dom, (grant_ref_t)rx_ref, 0, &page, &hd) ||
		    evtchn_bind_interdomain(h, (domid_t)fe_dom, (evtchn_port_t)port, &lport)) {
			result("fail: cannot map/bind");
			goto idle;
		}
		struct netif_rx_ring_back rx = {0};
		if (netif_rx_ring_back_attach(&rx, page, 0)) {
			result("fail: attach");
			goto idle;
		}
		wr(be, "state", XENBUS_STATE_CONNECTED);
		if (wait_state(fe, XENBUS_STATE_CONNECTED, 10000)) {
			result("fail: frontend never Connected");
			goto idle;
		}
		uint32_t prod = atomic_load(&rx.sring->rsp_prod);
		if (!strcmp(mode, "jump")) {
			atomic_store(&rx.sring->rsp_prod, prod + 1000);
		} else {
			union netif_rx_rsp_slot *s = netif_rx_ring_back_rsp_slot(&rx, prod);
			s->rsp.id = (uint16_t)((prod + 5) & 255); /* not this slot's id */
			s->rsp.offset = 0;
			s->rsp.flags = 0;
			s->rsp.status = 60;
			atomic_store(&rx.sring->rsp_prod, prod + 1);
		}
		evtchn_notify(h, lport);
		if (wait_state(fe, XENBUS_STATE_INITIALISING, 10000)) {
			result("fail: %s: frontend state %ld, not reset", mode, rd(fe, "state"));
			goto idle;
		}
		gnt_unmap(h, hd);
		evtchn_close(h, lport);
	}
idle:
	for (;;)
		sleep_ms(1000);
}
