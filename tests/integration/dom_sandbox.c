// SPDX-License-Identifier: MIT
// Test domain kernel: probes its own sandbox and prints what it sees on its
// console, then does what argv[1] says. "exit": exit 7; "ptrace" / "mount":
// make that forbidden system call (seccomp must kill it); "fork": fork
// (forbidden too); anything else: sleep until killed. The hv suite
// (check_hv.c) reads the console log.
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "sleep";
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("sandbox: uid=%d pid=%d hvfd=%s domid=%s\n", (int)getuid(), (int)getpid(),
	       getenv("DRVDOM_HV_FD") ? getenv("DRVDOM_HV_FD") : "-",
	       getenv("DRVDOM_DOMID") ? getenv("DRVDOM_DOMID") : "-");
	int fd = open("/etc/passwd", O_RDONLY);
	if (fd >= 0)
		printf("sandbox: open /etc/passwd: SUCCEEDED\n");
	else
		printf("sandbox: open /etc/passwd: denied (%s)\n", strerrorname_np(errno));
	struct if_nameindex *ifs = if_nameindex();
	printf("sandbox: interfaces:");
	for (struct if_nameindex *i = ifs; i && i->if_index; i++)
		printf(" %s", i->if_name);
	printf("%s\n", ifs ? "" : " (if_nameindex failed)");
	if (ifs)
		if_freenameindex(ifs);
	printf("sandbox: fd3=%s fd4=%s\n", fcntl(3, F_GETFD) >= 0 ? "open" : "closed",
	       fcntl(4, F_GETFD) >= 0 ? "open" : "closed");
	printf("sandbox: mode %s\n", mode);
	if (!strcmp(mode, "exit"))
		return 7;
	if (!strcmp(mode, "ptrace"))
		syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
	else if (!strcmp(mode, "mount"))
		mount("none", "/", "tmpfs", 0, NULL);
	else if (!strcmp(mode, "fork"))
		fork();
	if (strcmp(mode, "sleep"))
		printf("sandbox: %s survived\n", mode);
	for (;;) {
		struct timespec ts = {1, 0};
		nanosleep(&ts, NULL);
	}
}
