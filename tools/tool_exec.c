// SPDX-License-Identifier: MIT
// `drvdom exec DOMAIN -- CMD …`: run an ordinary program in a domain's
// network namespace (and nothing else of it: the program keeps the host's
// files, so ping or iperf3 are found). As root only the network namespace
// is joined; as an ordinary user, the domain's user namespace first, which
// the caller owns. CMD runs on the domain's CPUs (its cpus = key, or
// whatever affinity it has), like a program running on a guest's vCPUs: a
// guest placed on one CPU with its driver domain gets its traffic handed
// from process to process on that CPU.
#include "hv/hvc.h"
#include "tools/tool.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int tool_enter_netns(pid_t pid)
{
	char p[64];
	if (geteuid() != 0) {
		snprintf(p, sizeof(p), "/proc/%d/ns/user", (int)pid);
		int ufd = open(p, O_RDONLY | O_CLOEXEC);
		if (ufd < 0 || setns(ufd, CLONE_NEWUSER)) {
			int e = errno;
			if (ufd >= 0)
				close(ufd);
			return -e;
		}
		close(ufd);
	}
	snprintf(p, sizeof(p), "/proc/%d/ns/net", (int)pid);
	int nfd = open(p, O_RDONLY | O_CLOEXEC);
	if (nfd < 0)
		return -errno;
	int r = setns(nfd, CLONE_NEWNET) ? -errno : 0;
	close(nfd);
	return r;
}

int tool_cmd_exec(int argc, char **argv)
{
	int cmd = 2;
	if (argc > 2 && !strcmp(argv[2], "--"))
		cmd = 3;
	if (argc <= cmd) {
		fprintf(stderr, "usage: drvdom exec DOMAIN -- CMD [ARGS…]\n");
		return 2;
	}
	pid_t pid = 0;
	int r = tool_domain_netns_pid(argv[1], &pid);
	if (r)
		return 1;
	r = tool_enter_netns(pid);
	if (r) {
		fprintf(stderr, "drvdom: exec: cannot enter the network of %s: %s\n", argv[1],
			strerror(-r));
		return 1;
	}
	cpu_set_t cpus;
	if (strcmp(argv[1], "wire") && sched_getaffinity(pid, sizeof(cpus), &cpus) == 0 &&
	    sched_setaffinity(0, sizeof(cpus), &cpus))
		fprintf(stderr, "drvdom: exec: cannot run on the CPUs of %s: %s\n", argv[1],
			strerror(errno));
	execvp(argv[cmd], argv + cmd);
	fprintf(stderr, "drvdom: exec %s: %s\n", argv[cmd], strerror(errno));
	return 127;
}

int tool_domain_netns_pid(const char *name, pid_t *pid)
{
	if (!strcmp(name, "wire")) {
		int r = tool_wire_pid(false, pid);
		if (r)
			fprintf(stderr, "drvdom: no wire namespace (no driver domain has nic = "
					"\"veth:…\" or \"tap:…\")\n");
		return r;
	}
	struct hvc *h;
	if (tool_connect_hv(&h))
		return -ENOTCONN;
	struct hv_domain_info d;
	int r = tool_find_domain(h, name, &d);
	hvc_close(h);
	if (r || d.domid == 0 || d.pid <= 0) {
		fprintf(stderr, "drvdom: no running domain '%s'\n", name);
		return -ESRCH;
	}
	*pid = d.pid;
	return 0;
}
