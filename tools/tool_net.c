// SPDX-License-Identifier: MIT
// Network devices in the toolstack (docs/devices.md): the run dir's wire
// namespace, a network driver domain's physical NIC (veth pair, TAP, or an
// existing interface moved in) handed over as a packet socket or TAP fd,
// and each guest vif's TAP interface ethN with its MAC and address. Network
// namespaces are entered in short-lived child processes; interface setup is
// done with iproute2's `ip`, which is what a person would type.
#include "hv/hvc.h"
#include "tools/tool.h"
#include "tools/xlcfg.h"
#include "xenstore/include/xenstore.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* --- the wire namespace -------------------------------------------------- */

static pid_t wire_pid_read(void)
{
	char p[PATH_MAX], buf[32];
	if (tool_path(p, sizeof(p), "wire.pid"))
		return -1;
	FILE *f = fopen(p, "re");
	if (!f)
		return -1;
	pid_t pid = -1;
	if (fgets(buf, sizeof(buf), f))
		pid = (pid_t)strtol(buf, NULL, 10);
	fclose(f);
	if (pid <= 1 || kill(pid, 0))
		return -1;
	/* The pid must still be our holder (not a reused pid). */
	char comm[64] = "";
	snprintf(p, sizeof(p), "/proc/%d/comm", (int)pid);
	f = fopen(p, "re");
	if (f) {
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = 0;
		fclose(f);
	}
	return strncmp(comm, "drvdom-wire", 11) ? -1 : pid;
}

/* Run `ip ARGS…` inside the network namespace of pid (0: the host's). */
static int ip_in(pid_t pid, ...)
{
	char *argv[24];
	int argc = 0;
	argv[argc++] = "ip";
	va_list ap;
	va_start(ap, pid);
	char *a;
	while ((a = va_arg(ap, char *)) && argc < 23)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	pid_t c = fork();
	if (c < 0)
		return -errno;
	if (c == 0) {
		if (pid > 0 && tool_enter_netns(pid))
			_exit(126);
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 1);
		execvp("ip", argv);
		_exit(127);
	}
	int st;
	while (waitpid(c, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	fprintf(stderr, "drvdom: `");
	for (int i = 0; i < argc; i++)
		fprintf(stderr, "%s%s", i ? " " : "", argv[i]);
	fprintf(stderr, "` failed (in the namespace of pid %d)\n", (int)pid);
	return -EIO;
}

/* Write value to /proc/sys/PATH inside the network namespace of pid (its
 * net.* sysctls are the namespace's own). */
static int sysctl_in(pid_t pid, const char *path, const char *value)
{
	pid_t c = fork();
	if (c < 0)
		return -errno;
	if (c == 0) {
		if (tool_enter_netns(pid))
			_exit(126);
		char p[256];
		snprintf(p, sizeof(p), "/proc/sys/%s", path);
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		_exit(fd < 0 || write(fd, value, strlen(value)) != (ssize_t)strlen(value));
	}
	int st;
	while (waitpid(c, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

int tool_wire_pid(bool create, int *out)
{
	pid_t pid = wire_pid_read();
	if (pid > 0 || !create) {
		*out = pid;
		return pid > 0 ? 0 : -ESRCH;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "drvdom: network devices need root for now\n");
		return -EPERM;
	}
	int sync[2];
	if (pipe2(sync, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* The holder: a process whose only job is to keep the wire
		 * namespace alive until `drvdom down`. */
		setsid();
		prctl(PR_SET_NAME, "drvdom-wire");
		char ok = unshare(CLONE_NEWNET) ? 'n' : 'y';
		for (int fd = 0; fd < 3; fd++) {
			int null = open("/dev/null", O_RDWR);
			if (null >= 0 && null != fd) {
				dup2(null, fd);
				close(null);
			}
		}
		if (write(sync[1], &ok, 1) != 1 || ok != 'y')
			_exit(1);
		close(sync[1]);
		signal(SIGTERM, SIG_DFL);
		for (;;)
			pause();
	}
	close(sync[1]);
	char ok = 0;
	if (read(sync[0], &ok, 1) != 1 || ok != 'y') {
		close(sync[0]);
		waitpid(pid, NULL, 0);
		fprintf(stderr, "drvdom: cannot create the wire namespace\n");
		return -EIO;
	}
	close(sync[0]);
	char p[PATH_MAX];
	tool_path(p, sizeof(p), "wire.pid");
	FILE *f = fopen(p, "we");
	if (f) {
		fprintf(f, "%d\n", (int)pid);
		fclose(f);
	}
	int r = ip_in(pid, "link", "set", "lo", "up", NULL);
	*out = pid;
	return r;
}

void tool_wire_stop(void)
{
	pid_t pid = wire_pid_read();
	if (pid > 0) {
		kill(pid, SIGTERM);
		for (int i = 0; i < 200 && !kill(pid, 0); i++) {
			waitpid(pid, NULL, WNOHANG);
			usleep(10000);
		}
	}
	char p[PATH_MAX];
	if (!tool_path(p, sizeof(p), "wire.pid"))
		unlink(p);
}

/* --- fds made inside a namespace ----------------------------------------- */

enum mkfd_kind { MKFD_PACKET, MKFD_TAP };

static int mkfd_here(enum mkfd_kind kind, const char *ifname)
{
	if (kind == MKFD_PACKET) {
		int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
		if (s < 0)
			return -errno;
		struct sockaddr_ll sll = {.sll_family = AF_PACKET,
					  .sll_protocol = htons(ETH_P_ALL),
					  .sll_ifindex = (int)if_nametoindex(ifname)};
		if (!sll.sll_ifindex || bind(s, (struct sockaddr *)&sll, sizeof(sll))) {
			int e = sll.sll_ifindex ? errno : ENODEV;
			close(s);
			return -e;
		}
		return s;
	}
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	int hdr = 12; /* struct virtio_net_hdr_mrg_rxbuf */
	if (ioctl(fd, TUNSETIFF, &ifr) || ioctl(fd, TUNSETVNETHDRSZ, &hdr)) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* Make a packet socket or TAP fd inside pid's network namespace. */
static int mkfd_in(pid_t pid, enum mkfd_kind kind, const char *ifname)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	pid_t c = fork();
	if (c < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (c == 0) {
		close(sv[0]);
		int fd = tool_enter_netns(pid);
		if (!fd)
			fd = mkfd_here(kind, ifname);
		int err = fd < 0 ? fd : 0;
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} cm;
		struct iovec iov = {.iov_base = &err, .iov_len = sizeof(err)};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		if (fd >= 0) {
			memset(&cm, 0, sizeof(cm));
			mh.msg_control = cm.buf;
			mh.msg_controllen = sizeof(cm.buf);
			struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);
			ch->cmsg_level = SOL_SOCKET;
			ch->cmsg_type = SCM_RIGHTS;
			ch->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(ch), &fd, sizeof(int));
		}
		_exit(sendmsg(sv[1], &mh, 0) < 0);
	}
	close(sv[1]);
	int err = -EIO, fd = -1;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {.iov_base = &err, .iov_len = sizeof(err)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cm.buf,
			    .msg_controllen = sizeof(cm.buf)};
	if (recvmsg(sv[0], &mh, MSG_CMSG_CLOEXEC) == sizeof(err)) {
		struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);
		if (ch && ch->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(ch), sizeof(int));
	}
	close(sv[0]);
	waitpid(c, NULL, 0);
	if (fd >= 0)
		return fd;
	return err < 0 ? err : -EIO;
}

/* --- a driver domain's NIC ----------------------------------------------- */

static bool valid_ifname(const char *n)
{
	size_t l = strlen(n);
	if (!l || l >= IFNAMSIZ)
		return false;
	for (; *n; n++)
		if (!isalnum((unsigned char)*n) && *n != '-' && *n != '_' && *n != '.')
			return false;
	return true;
}

static bool valid_cidr(const char *s)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		return false;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = 0;
	char *end;
	long plen = strtol(slash + 1, &end, 10);
	unsigned char buf[16];
	if (*end || slash[1] == 0)
		return false;
	if (inet_pton(AF_INET, addr, buf) == 1)
		return plen >= 0 && plen <= 32;
	if (inet_pton(AF_INET6, addr, buf) == 1)
		return plen >= 0 && plen <= 128;
	return false;
}

int tool_nic_setup(struct hvc *h, struct xs_handle *xs, const struct hv_domain_info *drv,
		   const char *spec_text)
{
	struct xlcfg_spec spec;
	if (xlcfg_spec_parse(spec_text, &spec))
		return -ENOMEM;
	int r = -EINVAL;
	const char *what = NULL, *wire_ip = xlcfg_spec_get(&spec, "wire_ip");
	for (size_t i = 0; i < spec.n; i++) {
		if (!spec.kv[i].key && !what)
			what = spec.kv[i].val;
		else if (!spec.kv[i].key || strcmp(spec.kv[i].key, "wire_ip")) {
			fprintf(stderr, "drvdom: nic '%s': unexpected '%s'\n", spec_text,
				spec.kv[i].key ? spec.kv[i].key : spec.kv[i].val);
			goto out;
		}
	}
	if (!what) {
		fprintf(stderr, "drvdom: nic '%s': say veth:NAME, tap:NAME or an interface\n",
			spec_text);
		goto out;
	}
	const char *ifname = what;
	enum { NIC_VETH, NIC_TAP, NIC_HOST } kind = NIC_HOST;
	if (!strncmp(what, "veth:", 5))
		kind = NIC_VETH, ifname = what + 5;
	else if (!strncmp(what, "tap:", 4))
		kind = NIC_TAP, ifname = what + 4;
	if (!valid_ifname(ifname)) {
		fprintf(stderr, "drvdom: nic '%s': bad interface name '%s'\n", spec_text, ifname);
		goto out;
	}
	if (wire_ip && !valid_cidr(wire_ip)) {
		fprintf(stderr, "drvdom: nic '%s': wire_ip must be ADDRESS/PREFIX\n", spec_text);
		goto out;
	}
	if (wire_ip && kind == NIC_HOST) {
		fprintf(stderr, "drvdom: nic '%s': wire_ip needs veth: or tap:\n", spec_text);
		goto out;
	}
	pid_t wire = -1;
	if (kind != NIC_HOST && (r = tool_wire_pid(true, &wire)))
		goto out;
	char dpid[16], wpid[16];
	snprintf(dpid, sizeof(dpid), "%d", (int)drv->pid);
	snprintf(wpid, sizeof(wpid), "%d", (int)wire);
	int fd;
	if (kind == NIC_VETH) {
		r = ip_in(0, "link", "add", "name", ifname, "netns", dpid, "type", "veth", "peer",
			  "name", ifname, "netns", wpid, NULL);
		if (!r && wire_ip)
			r = ip_in(wire, "addr", "add", wire_ip, "dev", ifname, NULL);
		if (!r)
			r = ip_in(wire, "link", "set", ifname, "up", NULL);
	} else if (kind == NIC_HOST) {
		r = ip_in(0, "link", "set", ifname, "netns", dpid, NULL);
	} else {
		r = 0;
	}
	if (r)
		goto out;
	if (kind == NIC_TAP) {
		fd = mkfd_in(wire, MKFD_TAP, ifname);
		if (fd >= 0 && wire_ip)
			r = ip_in(wire, "addr", "add", wire_ip, "dev", ifname, NULL);
		if (fd >= 0 && !r)
			r = ip_in(wire, "link", "set", ifname, "up", NULL);
	} else {
		r = ip_in(drv->pid, "link", "set", ifname, "promisc", "on", "up", NULL);
		fd = r ? r : mkfd_in(drv->pid, MKFD_PACKET, ifname);
	}
	if (fd < 0 || r) {
		if (fd < 0)
			fprintf(stderr, "drvdom: nic %s: %s\n", ifname, strerror(-fd));
		r = fd < 0 ? fd : r;
		if (fd >= 0)
			close(fd);
		goto out;
	}
	char devname[HV_DEVNAME_MAX], p[128];
	snprintf(devname, sizeof(devname), "nic/%s", ifname);
	r = hvc_domctl_assign_device(h, drv->domid, devname, fd);
	close(fd);
	if (r) {
		fprintf(stderr, "drvdom: nic %s: assign: %s\n", ifname, strerror(-r));
		goto out;
	}
	snprintf(p, sizeof(p), "/local/domain/%u/drvdom/nic", drv->domid);
	r = tool_xs_write(xs, XBT_NULL, p, devname) && tool_xs_perms(xs, XBT_NULL, p, 0, drv->domid)
		? 0
		: -EIO;
out:
	xlcfg_spec_free(&spec);
	return r;
}

/* --- a guest's vif ------------------------------------------------------- */

int tool_vif_parse(const char *text, struct tool_vif *v)
{
	struct xlcfg_spec spec;
	memset(v, 0, sizeof(*v));
	if (xlcfg_spec_parse(text, &spec))
		return -ENOMEM;
	int r = 0;
	for (size_t i = 0; i < spec.n && !r; i++) {
		const char *k = spec.kv[i].key;
		if (!k || (strcmp(k, "mac") && strcmp(k, "ip") && strcmp(k, "backend") &&
			   strcmp(k, "bridge") && strcmp(k, "type"))) {
			fprintf(stderr, "drvdom: vif '%s': unknown key '%s'\n", text,
				k ? k : spec.kv[i].val);
			r = -EINVAL;
		}
	}
	const char *mac = xlcfg_spec_get(&spec, "mac"), *ip = xlcfg_spec_get(&spec, "ip"),
		   *be = xlcfg_spec_get(&spec, "backend");
	unsigned m[6];
	char tail;
	if (!r && (!mac ||
		   sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &m[0], &m[1], &m[2], &m[3], &m[4],
			  &m[5], &tail) != 6 ||
		   strlen(mac) != 17 || (m[0] & 1))) {
		fprintf(stderr, "drvdom: vif '%s': mac must be a unicast xx:xx:xx:xx:xx:xx\n",
			text);
		r = -EINVAL;
	}
	if (!r && ip && !valid_cidr(ip)) {
		fprintf(stderr, "drvdom: vif '%s': ip must be ADDRESS/PREFIX\n", text);
		r = -EINVAL;
	}
	if (!r && (!be || !*be || strlen(be) >= sizeof(v->backend))) {
		fprintf(stderr, "drvdom: vif '%s': backend= names no driver domain\n", text);
		r = -EINVAL;
	}
	if (!r) {
		snprintf(v->mac, sizeof(v->mac), "%s", mac);
		for (char *c = v->mac; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		snprintf(v->ip, sizeof(v->ip), "%s", ip ? ip : "");
		snprintf(v->backend, sizeof(v->backend), "%s", be);
	}
	xlcfg_spec_free(&spec);
	return r;
}

int tool_vif_attach(struct hvc *h, struct xs_handle *xs, const struct hv_domain_info *guest,
		    const struct hv_domain_info *back, const struct tool_vif *vif, int index)
{
	char ifname[IFNAMSIZ], fe[128], be[128], devname[HV_DEVNAME_MAX];
	snprintf(ifname, sizeof(ifname), "eth%d", index);
	snprintf(fe, sizeof(fe), "/local/domain/%u/device/vif/%d", guest->domid, index);
	snprintf(be, sizeof(be), "/local/domain/%u/backend/vif/%u/%d", back->domid, guest->domid,
		 index);
	snprintf(devname, sizeof(devname), "vif/%d", index);
	int fd = mkfd_in(guest->pid, MKFD_TAP, ifname);
	if (fd < 0) {
		fprintf(stderr, "drvdom: vif %d of %.*s: TAP: %s\n", index, (int)HV_NAME_MAX,
			guest->name, strerror(-fd));
		return fd;
	}
	int r = ip_in(guest->pid, "link", "set", ifname, "address", vif->mac, NULL);
	/* When netfront drops the carrier (its backend domain failed for good:
	 * docs/netfront.md), routes through the vif are ignored, so programs
	 * get "Network is unreachable" at once rather than silence. IPv6 may
	 * be off in the namespace: its knob is best effort. */
	char knob[96];
	snprintf(knob, sizeof(knob), "net/ipv4/conf/%s/ignore_routes_with_linkdown", ifname);
	if (!r && sysctl_in(guest->pid, knob, "1"))
		fprintf(stderr, "drvdom: vif %d: %s: cannot set\n", index, knob);
	snprintf(knob, sizeof(knob), "net/ipv6/conf/%s/ignore_routes_with_linkdown", ifname);
	if (!r)
		(void)sysctl_in(guest->pid, knob, "1");
	if (!r && vif->ip[0])
		r = ip_in(guest->pid, "addr", "add", vif->ip, "dev", ifname, NULL);
	if (!r)
		r = ip_in(guest->pid, "link", "set", ifname, "up", NULL);
	if (!r)
		r = ip_in(guest->pid, "link", "set", "lo", "up", NULL);
	if (!r)
		r = hvc_domctl_assign_device(h, guest->domid, devname, fd);
	close(fd);
	if (r)
		return r;
	char feid[16], beid[16], handle[16];
	snprintf(feid, sizeof(feid), "%u", guest->domid);
	snprintf(beid, sizeof(beid), "%u", back->domid);
	snprintf(handle, sizeof(handle), "%d", index);
	struct tool_kv bekv[] = {
	    {"frontend", fe},	{"frontend-id", feid}, {"online", "1"}, {"state", "1"},
	    {"handle", handle}, {"mac", vif->mac},     {"ip", vif->ip},
	};
	const struct tool_kv fekv[] = {
	    {"backend", be},   {"backend-id", beid},	{"state", "1"},		 {"handle", handle},
	    {"mac", vif->mac}, {"drvdom-tap", devname}, {"drvdom-vdev", ifname},
	};
	size_t nbe = sizeof(bekv) / sizeof(bekv[0]) - (vif->ip[0] ? 0 : 1); /* ip last */
	return tool_xs_write_device(xs, be, bekv, nbe, back->domid, fe, fekv,
				    sizeof(fekv) / sizeof(fekv[0]), guest->domid);
}
