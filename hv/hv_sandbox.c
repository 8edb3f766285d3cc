// SPDX-License-Identifier: MIT
// The domain sandbox (docs/hv.md, "Domains are sandboxed processes"): the
// static-kernel check, clone3 into new user/mount/pid/ipc/net/uts/cgroup
// namespaces with a pidfd, uid/gid maps, an empty read-only tmpfs root,
// rlimits, no_new_privs, the fd layout (0 = EOF pipe, 1/2 = console, 3 =
// hypercall socket), the libseccomp allow-list, and the final execveat of
// the kernel. The child reports a setup failure through a close-on-exec
// pipe, so DOMCTL_CREATE returns it as an errno instead of a dead domain.
#include "common/log.h"
#include "hv/hv_internal.h"

#include <elf.h>
#include <grp.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static scmp_filter_ctx hv_seccomp;

/* Fd layout in the child just before execveat: 0-3 as the domain gets
 * them, the status pipe at 4, and the kernel at hv_kfd_slot, the first fd
 * number past the domain's RLIMIT_NOFILE. Seccomp allows execveat on that
 * fd only; it is close-on-exec and the domain can never open or dup a
 * descriptor that high, so the initial exec is the only one possible. */
#define HV_CHILD_STATUS_FD 4
static int hv_kfd_slot;

/* Plain allowed system calls (see docs/hv.md, "Seccomp allow-list"). */
static const char *const hv_allowed[] = {
    /* memory */
    "brk",
    "mmap",
    "munmap",
    "mprotect",
    "mremap",
    "madvise",
    "mincore",
    "membarrier",
    /* fds the domain was given */
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "close",
    "close_range",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "lseek",
    "fstat",
    "newfstatat",
    "statx",
    "fstatfs",
    "ftruncate",
    "fallocate",
    "fsync",
    "fdatasync",
    "sync_file_range",
    "fadvise64",
    "splice",
    "tee",
    "sendfile",
    "ioctl",
    "pipe",
    "pipe2",
    "eventfd2",
    "signalfd4",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
    /* waiting */
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "futex",
    "futex_waitv",
    "nanosleep",
    "clock_nanosleep",
    "sched_yield",
    "restart_syscall",
    /* io_uring */
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    /* sockets (socket() itself is filtered by family below) */
    "socketpair",
    "sendmsg",
    "recvmsg",
    "sendto",
    "recvfrom",
    "sendmmsg",
    "recvmmsg",
    "bind",
    "connect",
    "listen",
    "accept",
    "accept4",
    "getsockname",
    "getpeername",
    "getsockopt",
    "setsockopt",
    "shutdown",
    /* threads, signals, process */
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "set_tid_address",
    "arch_prctl",
    "gettid",
    "getpid",
    "getppid",
    "tgkill",
    "tkill",
    "kill",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigtimedwait",
    "rt_sigpending",
    "rt_sigsuspend",
    "sigaltstack",
    "exit",
    "exit_group",
    "sched_getaffinity",
    "sched_setaffinity",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "prlimit64",
    "getrlimit",
    "getrusage",
    "times",
    "uname",
    "sysinfo",
    "getcwd",
    "getrandom",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "alarm",
    "setitimer",
    "getitimer",
    "timer_create",
    "timer_settime",
    "timer_gettime",
    "timer_delete",
    "timer_getoverrun",
};

/* Path-based calls fail with EACCES instead of killing: the root is empty
 * anyway, and libc probes files (e.g. /sys/devices/system/cpu/online). */
static const char *const hv_denied_eacces[] = {
    "open",	  "openat",   "openat2",    "creat", "access", "faccessat",
    "faccessat2", "readlink", "readlinkat", "stat",  "lstat",
};

static int hv_rule(uint32_t action, const char *name, unsigned n, const struct scmp_arg_cmp *a)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0; /* not on this architecture */
	return seccomp_rule_add_array(hv_seccomp, action, nr, n, a);
}

int hv_sandbox_init(void)
{
	int r;
	hv_seccomp = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!hv_seccomp)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(hv_allowed) / sizeof(hv_allowed[0]); i++)
		if ((r = hv_rule(SCMP_ACT_ALLOW, hv_allowed[i], 0, NULL)))
			goto fail;
	for (size_t i = 0; i < sizeof(hv_denied_eacces) / sizeof(hv_denied_eacces[0]); i++)
		if ((r = hv_rule(SCMP_ACT_ERRNO(EACCES), hv_denied_eacces[i], 0, NULL)))
			goto fail;
	/* Threads only: clone must carry CLONE_THREAD; clone3 (whose flags
	 * seccomp cannot see) says ENOSYS, and libc falls back to clone. */
	struct scmp_arg_cmp thr = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
	if ((r = hv_rule(SCMP_ACT_ALLOW, "clone", 1, &thr)))
		goto fail;
	if ((r = hv_rule(SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL)))
		goto fail;
	/* socket: local, netlink, packet, and inet for interface ioctls. */
	static const int families[] = {AF_UNIX, AF_NETLINK, AF_PACKET, AF_INET, AF_INET6};
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		struct scmp_arg_cmp fam = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i]);
		if ((r = hv_rule(SCMP_ACT_ALLOW, "socket", 1, &fam)))
			goto fail;
	}
	/* prctl: thread names and harmless queries only. */
	static const int prctls[] = {PR_SET_NAME,      PR_GET_NAME,	    PR_GET_DUMPABLE,
				     PR_SET_PDEATHSIG, PR_GET_NO_NEW_PRIVS, PR_SET_TIMERSLACK};
	for (size_t i = 0; i < sizeof(prctls) / sizeof(prctls[0]); i++) {
		struct scmp_arg_cmp opt = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)prctls[i]);
		if ((r = hv_rule(SCMP_ACT_ALLOW, "prctl", 1, &opt)))
			goto fail;
	}
	/* The one exec: the kernel fd, by AT_EMPTY_PATH (see hv_kfd_slot). */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile))
		return -errno;
	rlim_t lim =
	    nofile.rlim_max < HV_DOMAIN_NOFILE + 1 ? nofile.rlim_max : HV_DOMAIN_NOFILE + 1;
	if (lim < 256)
		return -EMFILE;
	hv_kfd_slot = (int)lim - 1;
	struct scmp_arg_cmp ex[2] = {SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)hv_kfd_slot),
				     SCMP_A4(SCMP_CMP_EQ, AT_EMPTY_PATH)};
	if ((r = hv_rule(SCMP_ACT_ALLOW, "execveat", 2, ex)))
		goto fail;
	return 0;
fail:
	seccomp_release(hv_seccomp);
	hv_seccomp = NULL;
	return r;
}

int hv_sandbox_check_kernel(int kfd, const char *path)
{
	struct stat st;
	Elf64_Ehdr eh;
	if (fstat(kfd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
		log_warn("kernel %s: not an executable file", path);
		return -EACCES;
	}
	if (pread(kfd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 256) {
		log_warn("kernel %s: not a 64-bit ELF executable", path);
		return -ENOEXEC;
	}
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(kfd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) !=
		    (ssize_t)sizeof(ph))
			return -ENOEXEC;
		if (ph.p_type == PT_INTERP) {
			log_warn("kernel %s: dynamically linked (PT_INTERP): a domain's root is "
				 "empty, its kernel must be static",
				 path);
			return -ENOEXEC;
		}
	}
	return 0;
}

static int hv_write_file(pid_t pid, const char *what, const char *text)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	int r = n == (ssize_t)strlen(text) ? 0 : (n < 0 ? -errno : -EIO);
	close(fd);
	return r;
}

static int hv_write_maps(pid_t pid)
{
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();
	int r;
	if (uid == 0) {
		/* ns root is the host's nobody; setgroups stays allowed so the
		 * child can drop root's supplementary groups. */
		if ((r = hv_write_file(pid, "uid_map", "0 65534 1\n")))
			return r;
		return hv_write_file(pid, "gid_map", "0 65534 1\n");
	}
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
	if ((r = hv_write_file(pid, "uid_map", map)))
		return r;
	if ((r = hv_write_file(pid, "setgroups", "deny")))
		return r;
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
	return hv_write_file(pid, "gid_map", map);
}

struct hv_child_err {
	int err;
	int stage;
};

enum {
	HV_STAGE_IDS = 1,
	HV_STAGE_MOUNT,
	HV_STAGE_ROOT,
	HV_STAGE_RLIMIT,
	HV_STAGE_PRCTL,
	HV_STAGE_FDS,
	HV_STAGE_SECCOMP,
	HV_STAGE_EXEC,
};
static const char *const hv_stage_names[] = {
    "?", "ids", "mount", "empty root", "rlimits", "prctl", "fds", "seccomp", "execveat",
};

/* Runs in the child; returns only on failure (-errno, *stage set). */
static int hv_child(int kfd, int sock, int con, int *st, const char *const *argv,
		    const char *const *envp, uint64_t memory, int *stage)
{
	*stage = HV_STAGE_IDS;
	if (setresgid(0, 0, 0))
		return -errno;
	if (setgroups(0, NULL) && errno != EPERM)
		return -errno;
	if (setresuid(0, 0, 0))
		return -errno;

	*stage = HV_STAGE_MOUNT;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return -errno;
	static const char *const spots[] = {"/tmp", "/mnt", "/dev", "/proc"};
	const char *spot = NULL;
	for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]) && !spot; i++)
		if (!mount("drvdom-root", spots[i], "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			   "size=4k,nr_inodes=4,mode=0555"))
			spot = spots[i];
	if (!spot)
		return -errno;
	*stage = HV_STAGE_ROOT;
	if (chdir(spot))
		return -errno;
	if (syscall(SYS_pivot_root, ".", "."))
		return -errno;
	if (umount2(".", MNT_DETACH))
		return -errno;
	if (chdir("/"))
		return -errno;
	if (mount(NULL, "/", NULL,
		  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		return -errno;

	*stage = HV_STAGE_RLIMIT;
	struct rlimit rl = {0, 0};
	if (setrlimit(RLIMIT_CORE, &rl))
		return -errno;

	/* The hv blocks SIGTERM/SIGINT/SIGHUP (signalfd) and ignores SIGPIPE;
	 * both would survive the exec. A domain starts with neither. */
	sigset_t none;
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) || signal(SIGPIPE, SIG_DFL) == SIG_ERR)
		return -errno;

	*stage = HV_STAGE_PRCTL;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0))
		return -errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;

	*stage = HV_STAGE_FDS;
	int nullp[2];
	if (pipe2(nullp, O_CLOEXEC))
		return -errno;
	close(nullp[1]);
	int src[5] = {nullp[0], con, sock, kfd, *st};
	int tmp[5];
	for (int i = 0; i < 5; i++) {
		if ((tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 64)) < 0)
			return -errno;
		if (tmp[i] == hv_kfd_slot)
			return -EMFILE;
	}
	if (dup3(tmp[0], 0, 0) < 0 || dup3(tmp[1], 1, 0) < 0 || dup3(tmp[1], 2, 0) < 0 ||
	    dup3(tmp[2], HV_DOM_HCALL_FD, 0) < 0 || dup3(tmp[3], hv_kfd_slot, O_CLOEXEC) < 0 ||
	    dup3(tmp[4], HV_CHILD_STATUS_FD, O_CLOEXEC) < 0)
		return -errno;
	*st = HV_CHILD_STATUS_FD;
	if (syscall(SYS_close_range, HV_CHILD_STATUS_FD + 1, hv_kfd_slot - 1, 0) ||
	    syscall(SYS_close_range, hv_kfd_slot + 1, ~0u, 0))
		return -errno;
	*stage = HV_STAGE_RLIMIT;
	rl.rlim_cur = rl.rlim_max = (rlim_t)hv_kfd_slot;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return -errno;

	*stage = HV_STAGE_SECCOMP;
	int r = seccomp_load(hv_seccomp);
	if (r)
		return r;
	/* Last, so nothing the hv's own code allocates here (libseccomp, or
	 * the ASan runtime under SANITIZE=1) counts against the domain. */
	*stage = HV_STAGE_RLIMIT;
	rl.rlim_cur = rl.rlim_max = memory;
	if (setrlimit(RLIMIT_DATA, &rl))
		return -errno;
	*stage = HV_STAGE_EXEC;
	syscall(SYS_execveat, hv_kfd_slot, "", argv, envp, AT_EMPTY_PATH);
	return -errno;
}

int hv_sandbox_spawn(int kfd, int sock, int con, const char *const *argv, domid_t domid,
		     uint64_t memory, pid_t *pid_out, int *pidfd_out)
{
	int go[2] = {-1, -1}, st[2] = {-1, -1}, pidfd = -1;
	int r;
	char env_fd[32], env_dom[32], env_log[64];
	const char *envp[5];
	unsigned ne = 0;
	snprintf(env_fd, sizeof(env_fd), "DRVDOM_HV_FD=%d", HV_DOM_HCALL_FD);
	snprintf(env_dom, sizeof(env_dom), "DRVDOM_DOMID=%u", (unsigned)domid);
	envp[ne++] = env_fd;
	envp[ne++] = env_dom;
	const char *lvl = getenv("DRVDOM_LOG");
	if (lvl && strlen(lvl) < 32) {
		snprintf(env_log, sizeof(env_log), "DRVDOM_LOG=%s", lvl);
		envp[ne++] = env_log;
	}
	const char *lt = getenv("DRVDOM_LOG_TIME");
	if (lt && !strcmp(lt, "1"))
		envp[ne++] = "DRVDOM_LOG_TIME=1";
	envp[ne] = NULL;

	if (pipe2(go, O_CLOEXEC) || pipe2(st, O_CLOEXEC)) {
		r = -errno;
		goto out;
	}
	struct clone_args ca = {
	    .flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET |
		     CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_PIDFD,
	    .pidfd = (uint64_t)(uintptr_t)&pidfd,
	    .exit_signal = SIGCHLD,
	};
	long pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid < 0) {
		r = -errno;
		log_warn("clone3: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		char b;
		struct hv_child_err ce = {0, 0};
		close(go[1]);
		close(st[0]);
		if (read(go[0], &b, 1) != 1)
			_exit(127);
		close(go[0]);
		int stfd = st[1];
		ce.err = -hv_child(kfd, sock, con, &stfd, argv, envp, memory, &ce.stage);
		ssize_t w = write(stfd, &ce, sizeof(ce));
		(void)w;
		_exit(127);
	}
	close(go[0]);
	go[0] = -1;
	close(st[1]);
	st[1] = -1;
	r = hv_write_maps((pid_t)pid);
	if (r) {
		log_warn("domain %u: uid/gid maps: %s", (unsigned)domid, strerror(-r));
		goto kill;
	}
	if (write(go[1], "g", 1) != 1) {
		r = -errno;
		goto kill;
	}
	struct hv_child_err ce;
	ssize_t n;
	do
		n = read(st[0], &ce, sizeof(ce));
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		*pid_out = (pid_t)pid;
		*pidfd_out = pidfd;
		pidfd = -1;
		r = 0;
		goto out;
	}
	if (n == (ssize_t)sizeof(ce) && ce.err > 0) {
		r = -ce.err;
		log_warn("domain %u: sandbox setup failed at %s: %s", (unsigned)domid,
			 hv_stage_names[ce.stage >= 0 && ce.stage <= HV_STAGE_EXEC ? ce.stage : 0],
			 strerror(ce.err));
	} else {
		r = -EIO;
	}
kill:
	syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	{
		siginfo_t si;
		waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED);
	}
out:
	if (pidfd >= 0)
		close(pidfd);
	for (int i = 0; i < 2; i++) {
		if (go[i] >= 0)
			close(go[i]);
		if (st[i] >= 0)
			close(st[i]);
	}
	return r;
}
