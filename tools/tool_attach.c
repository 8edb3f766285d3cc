// SPDX-License-Identifier: MIT
// Hot-plug while running: block-attach / block-detach and network-attach /
// network-detach, as xl does them. Attach writes the same directories as
// create; detach asks the backend to close (online = 0, state = Closing),
// waits for the frontend to reach Closed, then removes both directories.
#include "hv/hvc.h"
#include "ring/xenbus.h"
#include "tools/tool.h"
#include "tools/xlcfg.h"
#include "xenstore/include/xenstore.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct attach_ctx {
	struct hvc *h;
	struct xs_handle *xs;
	struct hv_domain_info guest;
};

static int ctx_open(struct attach_ctx *c, const char *guest)
{
	memset(c, 0, sizeof(*c));
	if (tool_connect_hv(&c->h))
		return -ENOTCONN;
	c->xs = tool_connect_xs();
	if (!c->xs) {
		hvc_close(c->h);
		return -ENOTCONN;
	}
	int r = tool_find_domain(c->h, guest, &c->guest);
	if (r || c->guest.domid == 0) {
		fprintf(stderr, "drvdom: no domain '%s'\n", guest);
		xs_close(c->xs);
		hvc_close(c->h);
		return -ESRCH;
	}
	return 0;
}

static void ctx_close(struct attach_ctx *c)
{
	xs_close(c->xs);
	hvc_close(c->h);
}

static int find_backend(struct attach_ctx *c, const char *name, struct hv_domain_info *out)
{
	int r = tool_find_domain(c->h, name, out);
	if (r || !(out->flags & HV_DOMF_DRIVER) || out->state != HV_DOM_RUNNING) {
		fprintf(stderr, "drvdom: backend '%s' is not a running driver domain\n", name);
		return -ESRCH;
	}
	return 0;
}

int tool_cmd_block_attach(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: drvdom block-attach GUEST 'target=…, vdev=xvdb, "
				"access=rw, backend=blkdom'\n");
		return 2;
	}
	struct xlcfg_disk disk;
	char err[512];
	if (xlcfg_disk_parse(argv[2], &disk, err, sizeof(err))) {
		fprintf(stderr, "drvdom: %s\n", err);
		return 1;
	}
	if (!disk.backend[0]) {
		fprintf(stderr, "drvdom: disk '%s': backend= names no driver domain\n", argv[2]);
		return 1;
	}
	struct attach_ctx c;
	if (ctx_open(&c, argv[1]))
		return 1;
	struct hv_domain_info be;
	int r = find_backend(&c, disk.backend, &be);
	if (!r)
		r = tool_vbd_attach(c.h, c.xs, &c.guest, &be, &disk);
	if (!r)
		printf("attached %s to %.*s (backend %s)\n", disk.vdev, (int)HV_NAME_MAX,
		       c.guest.name, disk.backend);
	ctx_close(&c);
	return r ? 1 : 0;
}

static int read_int(struct xs_handle *xs, const char *path, int *out)
{
	unsigned len;
	char *v = xs_read(xs, XBT_NULL, path, &len);
	if (!v)
		return -errno;
	char *end;
	long n = strtol(v, &end, 10);
	int r = (end == v || *end) ? -EINVAL : 0;
	free(v);
	*out = (int)n;
	return r;
}

/* Close one device: backend online = 0 and Closing, wait for the frontend
 * to report Closed (or vanish), then remove both directories. */
static int detach(struct attach_ctx *c, const char *cls, int devid)
{
	char fe[128], be_path[256], p[300];
	snprintf(fe, sizeof(fe), "/local/domain/%u/device/%s/%d", c->guest.domid, cls, devid);
	snprintf(p, sizeof(p), "%s/backend", fe);
	unsigned len;
	char *be = xs_read(c->xs, XBT_NULL, p, &len);
	if (!be) {
		fprintf(stderr, "drvdom: %.*s has no %s %d\n", (int)HV_NAME_MAX, c->guest.name, cls,
			devid);
		return -ENOENT;
	}
	snprintf(be_path, sizeof(be_path), "%s", be);
	free(be);
	snprintf(p, sizeof(p), "%s/online", be_path);
	xs_write(c->xs, XBT_NULL, p, "0", 1);
	snprintf(p, sizeof(p), "%s/state", be_path);
	char st[4];
	snprintf(st, sizeof(st), "%d", XENBUS_STATE_CLOSING);
	xs_write(c->xs, XBT_NULL, p, st, (unsigned)strlen(st));
	snprintf(p, sizeof(p), "%s/state", fe);
	int state = 0, waited = 0;
	for (; waited < 10000; waited += 20) {
		if (read_int(c->xs, p, &state) || state == XENBUS_STATE_CLOSED)
			break;
		struct timespec ts = {0, 20 * 1000000};
		nanosleep(&ts, NULL);
	}
	if (waited >= 10000)
		fprintf(stderr,
			"drvdom: frontend did not close in 10 s (state %d); removing it "
			"anyway\n",
			state);
	snprintf(p, sizeof(p), "%s/drvdom-device", be_path);
	char *dev = xs_read(c->xs, XBT_NULL, p, &len);
	snprintf(p, sizeof(p), "%s/backend-id", fe);
	int beid = -1;
	if (dev && !read_int(c->xs, p, &beid) && beid > 0)
		hvc_domctl_revoke_device(c->h, (domid_t)beid, dev); /* -ENOENT: taken */
	free(dev);
	/* And the guest's side of it (its NBD socket or TAP): the hv keeps a
	 * copy of every assigned fd for restarts, which must go too. */
	static const char *const fe_devs[] = {"drvdom-nbd", "drvdom-tap"};
	for (size_t i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/%s", fe, fe_devs[i]);
		dev = xs_read(c->xs, XBT_NULL, p, &len);
		if (dev)
			hvc_domctl_revoke_device(c->h, c->guest.domid, dev);
		free(dev);
	}
	xs_rm(c->xs, XBT_NULL, be_path);
	xs_rm(c->xs, XBT_NULL, fe);
	return 0;
}

int tool_cmd_block_detach(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: drvdom block-detach GUEST VDEV\n");
		return 2;
	}
	int devid = xlcfg_vdev_to_devid(argv[2]);
	if (devid < 0) {
		char *end;
		devid = (int)strtol(argv[2], &end, 10);
		if (*end || devid <= 0) {
			fprintf(stderr, "drvdom: bad vdev '%s'\n", argv[2]);
			return 1;
		}
	}
	struct attach_ctx c;
	if (ctx_open(&c, argv[1]))
		return 1;
	int r = detach(&c, "vbd", devid);
	if (!r) {
		char sock[PATH_MAX], rel[HV_NAME_MAX + 64];
		snprintf(rel, sizeof(rel), "%.*s/%s.nbd", (int)HV_NAME_MAX, c.guest.name, argv[2]);
		if (!tool_path(sock, sizeof(sock), rel))
			unlink(sock);
		printf("detached %s from %.*s\n", argv[2], (int)HV_NAME_MAX, c.guest.name);
	}
	ctx_close(&c);
	return r ? 1 : 0;
}

int tool_cmd_network_attach(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr,
			"usage: drvdom network-attach GUEST 'mac=…, ip=…, backend=netdom'\n");
		return 2;
	}
	struct tool_vif vif;
	if (tool_vif_parse(argv[2], &vif))
		return 1;
	struct attach_ctx c;
	if (ctx_open(&c, argv[1]))
		return 1;
	struct hv_domain_info be;
	int r = find_backend(&c, vif.backend, &be);
	int index = 0;
	if (!r) {
		/* The lowest free index, as xl picks devids. */
		char p[128], q[160];
		for (;; index++) {
			snprintf(p, sizeof(p), "/local/domain/%u/device/vif/%d", c.guest.domid,
				 index);
			snprintf(q, sizeof(q), "%s/state", p);
			unsigned len;
			char *v = xs_read(c.xs, XBT_NULL, q, &len);
			if (!v)
				break;
			free(v);
		}
		r = tool_vif_attach(c.h, c.xs, &c.guest, &be, &vif, index);
	}
	if (!r)
		printf("attached eth%d (%s) to %.*s (backend %s)\n", index, vif.mac,
		       (int)HV_NAME_MAX, c.guest.name, vif.backend);
	ctx_close(&c);
	return r ? 1 : 0;
}

int tool_cmd_network_detach(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: drvdom network-detach GUEST DEVID\n");
		return 2;
	}
	char *end;
	long devid = strtol(argv[2], &end, 10);
	if (*end || devid < 0 || devid > 1000) {
		fprintf(stderr, "drvdom: bad vif devid '%s'\n", argv[2]);
		return 1;
	}
	struct attach_ctx c;
	if (ctx_open(&c, argv[1]))
		return 1;
	int r = detach(&c, "vif", (int)devid);
	if (!r)
		printf("detached vif %ld from %.*s\n", devid, (int)HV_NAME_MAX, c.guest.name);
	ctx_close(&c);
	return r ? 1 : 0;
}
