// SPDX-License-Identifier: MIT
// Test domain kernel: probes its own sandbox and prints what it sees on its
// console, then does what argv[1] says. "exit": exit 7; "flood": 10 MiB of console output;
// "runtime": check that threads, epoll, eventfd, timerfd and big allocations work under the seccomp
// allow-list, then sleep; "ptrace" / "mount" / "exec": make that forbidden system call (seccomp
// must kill it); "fork": fork (forbidden too); anything else: sleep until killed. The hv suite
// (check_hv.c) reads the console log.
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void *thread_main(void *arg)
{
	uint64_t one = 1;
	if (write(*(int *)arg, &one, sizeof(one)) != sizeof(one))
		return (void *)1;
	return NULL;
}

/* What a domain's event loop needs: threads, epoll, eventfd, timerfd,
 * large allocations. Returns a failure text or NULL. */
static const char *probe_runtime(void)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int ev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int tf = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (ep < 0 || ev < 0 || tf < 0)
		return "epoll/eventfd/timerfd";
	struct epoll_event e = {.events = EPOLLIN, .data.fd = ev};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e))
		return "epoll_ctl";
	pthread_t t;
	void *ret;
	if (pthread_create(&t, NULL, thread_main, &ev) || pthread_join(t, &ret) || ret)
		return "pthread";
	if (epoll_wait(ep, &e, 1, 1000) != 1)
		return "epoll_wait";
	struct itimerspec its = {.it_value = {0, 1000000}};
	uint64_t n;
	if (timerfd_settime(tf, 0, &its, NULL) || read(tf, &n, sizeof(n)) != sizeof(n))
		return "timerfd";
	char *big = malloc(64 << 20);
	if (!big)
		return "malloc 64 MiB";
	memset(big, 1, 64 << 20);
	free(big);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 1)
		return "sysconf";
	return NULL;
}

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
	sigset_t mask;
	struct sigaction sa;
	sigprocmask(SIG_SETMASK, NULL, &mask);
	sigaction(SIGPIPE, NULL, &sa);
	printf("sandbox: sigmask=%s sigpipe=%s\n",
	       sigismember(&mask, SIGTERM) || sigismember(&mask, SIGINT) ? "blocked" : "clean",
	       sa.sa_handler == SIG_DFL ? "default" : "changed");
	printf("sandbox: mode %s\n", mode);
	if (!strcmp(mode, "exit"))
		return 7;
	if (!strcmp(mode, "flood")) {
		/* 10 MiB of console in 100-byte lines, then a marker. */
		static char line[100];
		memset(line, 'x', sizeof(line) - 1);
		for (int i = 0; i < 100 * 1024; i++)
			printf("%s\n", line);
		printf("sandbox: flood done\n");
		mode = "sleep";
	}
	if (!strcmp(mode, "runtime")) {
		const char *bad = probe_runtime();
		printf("sandbox: runtime %s%s\n", bad ? "FAILED at " : "ok", bad ? bad : "");
		mode = "sleep";
	}
	if (!strcmp(mode, "ptrace"))
		syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
	else if (!strcmp(mode, "mount"))
		mount("none", "/", "tmpfs", 0, NULL);
	else if (!strcmp(mode, "fork"))
		fork();
	else if (!strcmp(mode, "exec")) {
		/* Re-exec ourselves from a descriptor: no fd can match the one
		 * the hv's filter allows. */
		struct rlimit rl;
		getrlimit(RLIMIT_NOFILE, &rl);
		printf("sandbox: nofile %llu, dup2 to it: %s\n", (unsigned long long)rl.rlim_cur,
		       dup2(3, (int)rl.rlim_cur) < 0 ? strerrorname_np(errno) : "ok");
		char *const av[] = {argv[0], "sleep", NULL};
		syscall(SYS_execveat, 3, "", av, NULL, AT_EMPTY_PATH);
	}
	if (strcmp(mode, "sleep"))
		printf("sandbox: %s survived\n", mode);
	for (;;) {
		struct timespec ts = {1, 0};
		nanosleep(&ts, NULL);
	}
}
