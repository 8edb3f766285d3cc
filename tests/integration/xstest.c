// SPDX-License-Identifier: MIT
// See xstest.h: the real hv and xenstored for the xenstore suites.
#include "tests/integration/xstest.h"

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hv/hvc.h"

pid_t xst_spawn(const char *dir, const char *prog, const char *logname, const char *const *args)
{
	const char *build = getenv("DRVDOM_BUILD");
	ck_assert_msg(build != NULL, "DRVDOM_BUILD not set");
	char bin[4096], log[256];
	snprintf(bin, sizeof(bin), "%s/bin/%s", build, prog);
	snprintf(log, sizeof(log), "%s/%s", dir, logname);
	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		const char *argv[16] = {bin};
		for (int i = 0; args[i] && i < 14; i++)
			argv[i + 1] = args[i];
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static bool xst_sock_up(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	bool up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return up;
}

void xst_up(struct xst_env *e, const char *tmpl)
{
	memset(e, 0, sizeof(*e));
	e->hv_pid = e->xsd_pid = -1;
	snprintf(e->dir, sizeof(e->dir), "%s", tmpl);
	ck_assert_ptr_nonnull(mkdtemp(e->dir));
	snprintf(e->hvsock, sizeof(e->hvsock), "%s/hv/socket", e->dir);
	snprintf(e->xssock, sizeof(e->xssock), "%s/xs.sock", e->dir);
	const char *hvargs[] = {"--run-dir", e->dir, "--foreground", NULL};
	e->hv_pid = xst_spawn(e->dir, "drvdom-hv", "hv.log", hvargs);
	for (int i = 0; i < 500 && hvc_open_dom0(e->hvsock, &e->hv) != 0; i++)
		usleep(10000);
	ck_assert_msg(e->hv != NULL, "drvdom-hv did not come up");
	const char *xsargs[] = {"--socket", e->xssock,	    "--hv-socket",
				e->hvsock,  "--foreground", NULL};
	e->xsd_pid = xst_spawn(e->dir, "drvdom-xenstored", "xenstored.log", xsargs);
	for (int i = 0; i < 500; i++) {
		if (xst_sock_up(e->xssock)) {
			setenv("XENSTORED_PATH", e->xssock, 1);
			return;
		}
		usleep(10000);
	}
	ck_abort_msg("drvdom-xenstored did not come up on %s", e->xssock);
}

static void xst_stop(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGTERM);
		waitpid(*pid, NULL, 0);
		*pid = -1;
	}
}

void xst_down(struct xst_env *e)
{
	xst_stop(&e->xsd_pid);
	hvc_close(e->hv);
	e->hv = NULL;
	xst_stop(&e->hv_pid);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
	if (e->dir[0] && system(cmd) != 0) {
		/* Leftovers in /tmp are harmless. */
	}
}
