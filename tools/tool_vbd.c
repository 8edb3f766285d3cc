// SPDX-License-Identifier: MIT
// Virtual block devices in the toolstack: open the disk, assign it to the
// driver domain, make the guest's NBD socket, and write both xenstore
// directories (docs/devices.md). The disk is locked with flock() on the open
// file description the driver domain receives, so a second read-write
// attach of the same file is refused for as long as anyone serves it.
#include "hv/hvc.h"
#include "tools/tool.h"
#include "tools/xlcfg.h"
#include "xenstore/include/xenstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int nbd_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int tool_vbd_attach(struct hvc *h, struct xs_handle *xs, const struct hv_domain_info *guest,
		    const struct hv_domain_info *back, const struct xlcfg_disk *disk)
{
	char gname[HV_NAME_MAX + 1], be[256], fe[256];
	snprintf(gname, sizeof(gname), "%.*s", (int)HV_NAME_MAX, guest->name);
	snprintf(fe, sizeof(fe), "/local/domain/%u/device/vbd/%d", guest->domid, disk->devid);
	snprintf(be, sizeof(be), "/local/domain/%u/backend/vbd/%u/%d", back->domid, guest->domid,
		 disk->devid);
	unsigned len;
	char *exists = xs_read(xs, XBT_NULL, fe, &len);
	if (exists) {
		free(exists);
		fprintf(stderr, "drvdom: %s already has a disk %s\n", gname, disk->vdev);
		return -EEXIST;
	}

	int dfd = open(disk->target, (disk->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (dfd < 0) {
		int e = errno;
		fprintf(stderr, "drvdom: disk %s: %s: %s\n", disk->vdev, disk->target, strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(dfd, &st) || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		fprintf(stderr, "drvdom: disk %s: %s is not a file or block device\n", disk->vdev,
			disk->target);
		close(dfd);
		return -EINVAL;
	}
	if (flock(dfd, (disk->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB)) {
		fprintf(stderr, "drvdom: disk %s: %s is already attached %s elsewhere\n",
			disk->vdev, disk->target, disk->readonly ? "read-write" : "");
		close(dfd);
		return -EBUSY;
	}

	char dir[PATH_MAX], sock[PATH_MAX];
	int r = tool_path(dir, sizeof(dir), gname);
	if (!r && mkdir(dir, 0700) && errno != EEXIST)
		r = -errno;
	if (!r && snprintf(sock, sizeof(sock), "%s/%s.nbd", dir, disk->vdev) >= (int)sizeof(sock))
		r = -ENAMETOOLONG;
	int lfd = r ? r : nbd_listen(sock);
	if (lfd < 0) {
		fprintf(stderr, "drvdom: disk %s: NBD socket: %s\n", disk->vdev, strerror(-lfd));
		close(dfd);
		return lfd;
	}
	char devname[HV_DEVNAME_MAX], nbdname[HV_DEVNAME_MAX];
	snprintf(devname, sizeof(devname), "vbd/%u/%d", guest->domid, disk->devid);
	snprintf(nbdname, sizeof(nbdname), "nbd/%d", disk->devid);
	r = hvc_domctl_assign_device(h, back->domid, devname, dfd);
	if (!r)
		r = hvc_domctl_assign_device(h, guest->domid, nbdname, lfd);
	close(dfd);
	close(lfd);
	if (r) {
		fprintf(stderr, "drvdom: disk %s: assigning devices: %s\n", disk->vdev,
			strerror(-r));
		unlink(sock);
		return r;
	}

	char feid[16], beid[16], devid[16];
	snprintf(feid, sizeof(feid), "%u", guest->domid);
	snprintf(beid, sizeof(beid), "%u", back->domid);
	snprintf(devid, sizeof(devid), "%d", disk->devid);
	const struct tool_kv bekv[] = {
	    {"frontend", fe},
	    {"frontend-id", feid},
	    {"online", "1"},
	    {"state", "1"},
	    {"params", disk->target},
	    {"mode", disk->readonly ? "r" : "w"},
	    {"type", "phy"},
	    {"dev", disk->vdev},
	    {"removable", "0"},
	    {"device-type", "disk"},
	    {"drvdom-device", devname},
	};
	const struct tool_kv fekv[] = {
	    {"backend", be},
	    {"backend-id", beid},
	    {"state", "1"},
	    {"virtual-device", devid},
	    {"device-type", "disk"},
	    {"drvdom-nbd", nbdname},
	    {"drvdom-vdev", disk->vdev},
	};
	return tool_xs_write_device(xs, be, bekv, sizeof(bekv) / sizeof(bekv[0]), back->domid, fe,
				    fekv, sizeof(fekv) / sizeof(fekv[0]), guest->domid);
}

void tool_vbd_revoke_all(struct hvc *h, struct xs_handle *xs, const char *dir, domid_t backend)
{
	unsigned n = 0;
	char **devs = xs_directory(xs, XBT_NULL, dir, &n);
	for (unsigned i = 0; devs && i < n; i++) {
		char p[512];
		unsigned len;
		snprintf(p, sizeof(p), "%s/%s/drvdom-device", dir, devs[i]);
		char *name = xs_read(xs, XBT_NULL, p, &len);
		if (name)
			hvc_domctl_revoke_device(h, backend, name); /* -ENOENT: taken */
		free(name);
	}
	free(devs);
}

void tool_describe_devices(struct xs_handle *xs, domid_t domid, char *buf, size_t len)
{
	char p[128];
	size_t used = 0;
	buf[0] = 0;
	static const char *const classes[] = {"vbd", "vif"};
	for (size_t c = 0; c < 2; c++) {
		/* Frontends of this domain, then what it serves as a backend. */
		unsigned n = 0;
		snprintf(p, sizeof(p), "/local/domain/%u/device/%s", domid, classes[c]);
		char **ids = xs_directory(xs, XBT_NULL, p, &n);
		for (unsigned i = 0; ids && i < n; i++) {
			char q[192];
			unsigned l;
			snprintf(q, sizeof(q), "%s/%s/drvdom-vdev", p, ids[i]);
			char *vdev = xs_read(xs, XBT_NULL, q, &l);
			int w = snprintf(buf + used, len - used, "%s%s", used ? "," : "",
					 vdev ? vdev : ids[i]);
			free(vdev);
			if (w > 0 && used + (size_t)w < len)
				used += (size_t)w;
		}
		free(ids);
		snprintf(p, sizeof(p), "/local/domain/%u/backend/%s", domid, classes[c]);
		ids = xs_directory(xs, XBT_NULL, p, &n);
		unsigned served = 0;
		for (unsigned i = 0; ids && i < n; i++) {
			char q[192];
			unsigned m = 0;
			snprintf(q, sizeof(q), "%s/%s", p, ids[i]);
			char **devs = xs_directory(xs, XBT_NULL, q, &m);
			served += m;
			free(devs);
		}
		free(ids);
		if (served) {
			int w = snprintf(buf + used, len - used, "%sserves %u %s", used ? "," : "",
					 served, classes[c]);
			if (w > 0 && used + (size_t)w < len)
				used += (size_t)w;
		}
	}
}

void tool_rm_guest_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	char p[PATH_MAX];
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > 4 && !strcmp(de->d_name + l - 4, ".nbd")) {
			snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			unlink(p);
		}
	}
	closedir(d);
	rmdir(dir);
}
