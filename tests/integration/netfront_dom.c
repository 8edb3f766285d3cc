// SPDX-License-Identifier: MIT
// netfront_dom: a guest domain kernel for the net suite that runs netfront
// and nothing else (drvdom-guest runs it beside blkfront): hypercall
// connection, event loop, xenstore over the domain's ring, and every watch
// event handed to netfront_xs_event. `--copy` turns off persistent grants
// (the backend then reaches data pages only by grant copy); `--queues=N`
// lets each vif use up to N netif queues (multi-queue).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "frontends/netfront/netfront.h"
#include "hv/evloop.h"
#include "hv/hvc.h"
#include "xenstore/include/xenstore.h"
#include "xenstore/xs_transport.h"

static struct xs_handle *xs;

static void xs_ready(void *arg, int fd, uint32_t events)
{
	(void)arg;
	(void)fd;
	(void)events;
	char **ev;
	while ((ev = xs_check_watch(xs))) {
		netfront_xs_event(ev[XS_WATCH_PATH], ev[XS_WATCH_TOKEN]);
		free(ev);
	}
}

int main(int argc, char **argv)
{
	struct hvc *h;
	struct evloop *l;
	int r;
	log_init("netfront_dom");
	/* --copy: no persistent grants, the backend copies through the hv */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--copy"))
			netfront_set_persistent(false);
		else if (!strncmp(argv[i], "--queues=", 9))
			netfront_set_max_queues((unsigned)atoi(argv[i] + 9));
	}
	if ((r = hvc_open_domain(&h)))
		die_err(-r, "hvc_open_domain");
	if ((r = evloop_create(h, &l)))
		die_err(-r, "evloop_create");
	evloop_set_spin_ns(l, 200000);
	xs_ring_use_hvc(h);
	if (!(xs = xs_open(0)))
		die("xs_open");
	if ((r = evloop_add_fd(l, xs_fileno(xs), EPOLLIN, xs_ready, NULL)))
		die_err(-r, "evloop_add_fd");
	if ((r = netfront_watch_start(h, xs, l, NULL)))
		die_err(-r, "netfront_watch_start");
	r = evloop_run(l);
	netfront_stop();
	xs_close(xs);
	evloop_destroy(l);
	hvc_close(h);
	return r ? 1 : 0;
}
