// SPDX-License-Identifier: MIT
// The domain table and each domain's life (docs/hv.md): domain 0, creation
// (name and kernel checks, hypercall socket, console, start info: a
// one-page segment for dom0 granted at ref 1 and an unbound port to dom0,
// then the sandboxed process), the exit path with its fixed cleanup order
// (revoke the dead domain's mappings, close its ports, forget others'
// handles on it, free its segments and grant table, its devices, then tell
// subscribers), the console, and devices.
#include "common/log.h"
#include "hv/hv_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

struct hv_dom *hv_dom_get(domid_t domid)
{
	return domid < DOMID_FIRST_FREE ? hv.doms[domid] : NULL;
}

static struct hv_dom *hv_dom_new(void)
{
	struct hv_dom *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->pidfd = d->con_fd = d->log_fd = d->gnt_fd = -1;
	d->next_frame = 1;
	d->state = HV_DOM_RUNNING;
	d->start_ns = d->heartbeat_ns = hv_now_ns();
	return d;
}

static void hv_dom_free(struct hv_dom *d)
{
	hv_evtchn_close_all(d, NULL);
	free(d->ports);
	hv_seg_free_all(d, NULL);
	hv_gnttab_free(d);
	while (d->devs) {
		struct hv_device *dv = d->devs;
		d->devs = dv->next;
		close(dv->fd);
		free(dv);
	}
	while (d->waiters) {
		struct hv_waiter *w = d->waiters;
		d->waiters = w->next;
		free(w);
	}
	if (d->conn) {
		if (d->conn->fd >= 0)
			close(d->conn->fd);
		free(d->conn);
	}
	if (d->pidfd >= 0)
		close(d->pidfd);
	if (d->con_fd >= 0)
		close(d->con_fd);
	if (d->log_fd >= 0)
		close(d->log_fd);
	free(d);
}

int hv_dom0_init(void)
{
	struct hv_dom *d = hv_dom_new();
	if (!d)
		return -ENOMEM;
	d->domid = 0;
	d->flags = HV_DOMF_PRIVILEGED;
	d->memory = UINT64_MAX;
	d->pid = getpid();
	snprintf(d->name, sizeof(d->name), "Domain-0");
	int r = hv_gnttab_init(d);
	if (!r)
		r = hv_evtchn_init(d);
	if (r) {
		hv_dom_free(d);
		return r;
	}
	hv.doms[0] = d;
	hv.next_domid = 1;
	return 0;
}

void hv_dom_fill_info(const struct hv_dom *d, bool for_dom0, struct hv_domain_info *out)
{
	memset(out, 0, sizeof(*out));
	out->domid = d->domid;
	out->state = d->state;
	out->flags = d->flags;
	out->pid = for_dom0 ? d->pid : 0;
	out->store_port = d->store_port;
	out->store_frame = d->store_frame;
	out->restarts = d->rec ? d->rec->restarts : d->restarts;
	out->memory = d->memory;
	out->start_ns = d->start_ns;
	memcpy(out->name, d->name, sizeof(out->name));
}

static int hv_domid_alloc(domid_t *out)
{
	for (unsigned i = 0; i < DOMID_FIRST_FREE - 1; i++) {
		domid_t id = hv.next_domid;
		hv.next_domid = (domid_t)(id + 1u >= DOMID_FIRST_FREE ? 1u : id + 1u);
		if (!hv.doms[id] && !hv.recs[id]) {
			*out = id;
			return 0;
		}
	}
	return -ENOSPC;
}

int hv_dom_spawn(struct hv_rec *rec, int *sock, int *con_out, pid_t *pid, int *pidfd)
{
	int sv[2] = {-1, -1}, con[2] = {-1, -1};
	int r;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) || pipe2(con, O_CLOEXEC)) {
		r = -errno;
		goto fail;
	}
	int fl = fcntl(sv[0], F_GETFL);
	if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) ||
	    fcntl(con[0], F_SETFL, O_NONBLOCK)) {
		r = -errno;
		goto fail;
	}
	int sz = HV_SNDBUF;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	r = hv_sandbox_spawn(rec->kfd, sv[1], con[1], (const char *const *)rec->argv, rec->domid,
			     rec->memory, pid, pidfd);
	if (r)
		goto fail;
	hv_affinity_apply(rec, *pid);
	close(sv[1]);
	close(con[1]);
	*sock = sv[0];
	*con_out = con[0];
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0)
			close(sv[i]);
		if (con[i] >= 0)
			close(con[i]);
	}
	return r;
}

int hv_dom_start(struct hv_rec *rec, struct hv_spare *spare)
{
	int r;
	struct hv_dom *d = hv_dom_new();
	if (!d) {
		r = -ENOMEM;
		goto fail;
	}
	d->rec = rec;
	d->domid = rec->domid;
	memcpy(d->name, rec->name, sizeof(d->name));
	d->flags = rec->flags;
	d->memory = rec->memory;
	d->restarts = rec->restarts;
	if ((r = hv_gnttab_init(d)) || (r = hv_evtchn_init(d)))
		goto fail;
	d->conn = calloc(1, sizeof(*d->conn));
	if (!d->conn) {
		r = -ENOMEM;
		goto fail;
	}
	d->conn->fd = -1;
	d->conn->dom = d;
	d->conn->serial = ++hv.conn_serial;
	d->conn->ev = (struct hv_ev){HV_EV_CONN, d->conn};

	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/console/%s.log", hv.run_dir, d->name);
	d->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	struct stat lst;
	if (d->log_fd >= 0 && !fstat(d->log_fd, &lst))
		d->log_bytes = (uint64_t)lst.st_size;
	if (d->log_fd < 0)
		log_warn("domain %u (%s): console log %s: %s", d->domid, d->name, path,
			 strerror(errno));

	/* Start info: the xenstore page (a segment for dom0, ref 1) and the
	 * xenstore port (unbound, remote dom0). */
	struct hv_seg *store;
	if ((r = hv_seg_alloc(d, d->conn, 0, 1, &store)))
		goto fail;
	d->store_frame = store->first_frame;
	hv_gnt_grant(d, GNTTAB_RESERVED_XENSTORE, 0, store->first_frame);
	if ((r = hv_evtchn_alloc_unbound(d, d->conn, 0, &d->store_port)))
		goto fail;

	if (spare) {
		/* The parked instance becomes the domain: its first call has
		 * been waiting unread on its socket. */
		d->conn->fd = spare->sock;
		d->con_fd = spare->con_fd;
		d->pid = spare->pid;
		d->pidfd = spare->pidfd;
		free(spare);
		spare = NULL;
	} else if ((r = hv_dom_spawn(rec, &d->conn->fd, &d->con_fd, &d->pid, &d->pidfd))) {
		goto fail;
	}

	hv.doms[d->domid] = d;
	hv.ndoms++;
	rec->dom = d;
	d->pid_ev = (struct hv_ev){HV_EV_PIDFD, d};
	d->con_ev = (struct hv_ev){HV_EV_CONSOLE, d};
	hv_epoll_add(d->pidfd, &d->pid_ev);
	hv_epoll_add(d->con_fd, &d->con_ev);
	hv_epoll_add(d->conn->fd, &d->conn->ev);
	d->start_ns = d->heartbeat_ns = hv_now_ns();
	/* Before anything else the domain reads: its watchdog, its devices. */
	if (rec->policy.watchdog_ms) {
		struct hv_evt_watchdog w = {rec->policy.watchdog_ms};
		hv_send(d->conn, HV_EVT_WATCHDOG, 0, 0, &w, sizeof(w), NULL, 0);
	}
	for (struct hv_device *dv = rec->devs; dv; dv = dv->next) {
		int fd = fcntl(dv->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0 || hv_device_assign(d, dv->name, fd)) {
			log_warn("domain %u (%s): device %s not assigned again: %s", d->domid,
				 d->name, dv->name, fd < 0 ? strerror(errno) : "no room");
			if (fd >= 0)
				close(fd);
		}
	}
	return 0;

fail:
	if (spare)
		hv_spare_kill(spare);
	if (d)
		hv_dom_free(d);
	return r;
}

int hv_domctl_create(struct hv_conn *c, const struct hv_create_req *req,
		     const struct hv_policy_req *policy, const char **strs,
		     struct hv_create_rep *rep)
{
	struct hv_rec *rec = NULL;
	int kfd = -1;
	int r;
	domid_t domid;
	char name[HV_NAME_MAX];
	(void)c;

	memcpy(name, req->name, sizeof(name));
	if (req->flags & ~(HV_DOMF_DRIVER | HV_CREATE_F_POLICY))
		return -EINVAL;
	if (hv_call_name_check(name, sizeof(name)))
		return -EINVAL;
	for (struct hv_rec *x = hv.rec_list; x; x = x->next)
		if (!strcmp(x->name, name))
			return -EEXIST;
	if (hv.ndoms >= HV_MAX_DOMAINS)
		return -ENOSPC;
	uint64_t memory = req->memory ? req->memory : HV_DEFAULT_MEMORY;
	if (memory < (4u << 20) || memory > HV_MAX_MEMORY)
		return -EINVAL;
	const char *kernel = strs[0];
	if (kernel[0] != '/')
		return -EINVAL;
	kfd = open(kernel, O_RDONLY | O_CLOEXEC);
	if (kfd < 0) {
		r = -errno;
		log_warn("domain %s: kernel %s: %s", name, kernel, strerror(errno));
		return r;
	}
	r = hv_sandbox_check_kernel(kfd, kernel);
	if (r)
		goto fail;
	if ((r = hv_domid_alloc(&domid)))
		goto fail;
	r = hv_rec_new(domid, name, req->flags & HV_DOMF_DRIVER, memory, kfd, strs, &rec);
	if (r)
		goto fail;
	kfd = -1; /* the record's */
	if (policy) {
		struct hv_policy_req pol = *policy;
		pol.domid = domid;
		if ((r = hv_rec_set_policy(&pol)))
			goto fail;
	}
	r = hv_dom_start(rec, NULL);
	if (r)
		goto fail;
	struct hv_dom *d = rec->dom;
	log_info("domain %u (%s): created, pid %d, kernel %s", d->domid, d->name, (int)d->pid,
		 kernel);
	hv_rec_timer(); /* the policy's deadlines (watchdog, standby spare) */
	rep->domid = d->domid;
	rep->store_port = d->store_port;
	rep->store_frame = d->store_frame;
	return 0;

fail:
	if (kfd >= 0)
		close(kfd);
	if (rec)
		hv_rec_free(rec);
	log_warn("domain %s: create failed: %s", name, strerror(-r));
	return r;
}

int hv_dom_signal(struct hv_dom *d, int sig)
{
	if (d->pidfd < 0)
		return -ESRCH;
	if (syscall(SYS_pidfd_send_signal, d->pidfd, sig, NULL, 0))
		return -errno;
	return 0;
}

/* --- console -------------------------------------------------------------- */

/* A domain's console is untrusted output: past HV_CONSOLE_MAX bytes the log
 * moves to NAME.log.1 (replacing an older one) and a new one starts, so a
 * chatty domain holds at most twice that on disk. */
static void hv_con_rotate(struct hv_dom *d)
{
	char path[PATH_MAX], old[PATH_MAX + 2];
	snprintf(path, sizeof(path), "%s/console/%s.log", hv.run_dir, d->name);
	snprintf(old, sizeof(old), "%s.1", path);
	close(d->log_fd);
	if (rename(path, old))
		log_warn("domain %u (%s): rotate %s: %s", d->domid, d->name, path, strerror(errno));
	d->log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	d->log_bytes = 0;
}

static void hv_con_emit(struct hv_dom *d, const char *line, size_t n)
{
	char pre[HV_NAME_MAX + 32];
	if (d->log_fd >= 0 && d->log_bytes + n + 1 > HV_CONSOLE_MAX)
		hv_con_rotate(d);
	if (d->log_fd >= 0) {
		struct iovec iov[2] = {{(void *)line, n}, {"\n", 1}};
		ssize_t w = writev(d->log_fd, iov, 2);
		if (w > 0)
			d->log_bytes += (uint64_t)w;
	}
	if (hv.foreground) {
		int m = snprintf(pre, sizeof(pre), "[dom%u %s] ", d->domid, d->name);
		struct iovec iov[3] = {{pre, (size_t)m}, {(void *)line, n}, {"\n", 1}};
		ssize_t w = writev(STDERR_FILENO, iov, 3);
		(void)w;
	}
}

static void hv_con_drain(struct hv_dom *d, bool final)
{
	while (d->con_fd >= 0) {
		ssize_t n =
		    read(d->con_fd, d->con_buf + d->con_len, sizeof(d->con_buf) - d->con_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0) {
			d->con_len += (size_t)n;
			size_t start = 0;
			for (size_t i = 0; i < d->con_len; i++)
				if (d->con_buf[i] == '\n') {
					hv_con_emit(d, d->con_buf + start, i - start);
					start = i + 1;
				}
			if (start == 0 && d->con_len == sizeof(d->con_buf)) {
				hv_con_emit(d, d->con_buf, d->con_len); /* overlong line */
				start = d->con_len;
			}
			memmove(d->con_buf, d->con_buf + start, d->con_len - start);
			d->con_len -= start;
			if (!final)
				return; /* level-triggered: come back for more */
			continue;
		}
		if (n < 0 && errno == EAGAIN && !final)
			return;
		/* EOF, error, or the final drain found nothing more. */
		if (d->con_len)
			hv_con_emit(d, d->con_buf, d->con_len);
		d->con_len = 0;
		epoll_ctl(hv.epfd, EPOLL_CTL_DEL, d->con_fd, NULL);
		close(d->con_fd);
		d->con_fd = -1;
	}
}

void hv_dom_console(struct hv_dom *d)
{
	hv_con_drain(d, false);
}

/* --- exit ---------------------------------------------------------------- */

static void hv_dom_reap(struct hv_dom *d, const siginfo_t *si)
{
	uint16_t reason;
	int32_t status = si->si_status;
	const char *sname;
	if (si->si_code == CLD_EXITED) {
		reason = HV_EXIT_EXITED;
		log_info("domain %u (%s): exited with status %d", d->domid, d->name, status);
	} else if (d->exit_reason) {
		reason = d->exit_reason;
		log_info("domain %u (%s): %s", d->domid, d->name,
			 reason == HV_EXIT_MALFORMED ? "killed for a malformed hypercall"
			 : reason == HV_EXIT_HUNG    ? "killed as hung"
			 : reason == HV_EXIT_STALLED ? "killed by the ring-progress watchdog"
						     : "destroyed");
	} else if (status == SIGSYS) {
		reason = HV_EXIT_SECCOMP;
		log_warn("domain %u (%s): killed by seccomp: forbidden system call", d->domid,
			 d->name);
	} else {
		reason = HV_EXIT_KILLED;
		sname = sigabbrev_np(status);
		log_warn("domain %u (%s): killed by signal %d (SIG%s)%s", d->domid, d->name, status,
			 sname ? sname : "?", si->si_code == CLD_DUMPED ? ", core dumped" : "");
	}
	d->state = HV_DOM_DYING;

	/* The cleanup order of docs/hv.md. */
	hv_gnt_revoke_all(d, NULL);
	hv_evtchn_close_all(d, NULL);
	hv_gnt_forget_granter(d);
	hv_seg_free_all(d, NULL);
	hv_gnttab_free(d);
	while (d->devs) {
		struct hv_device *dv = d->devs;
		d->devs = dv->next;
		close(dv->fd);
		free(dv);
	}
	uint16_t flags = d->rec ? hv_rec_on_exit(d, reason, status) : 0;
	struct hv_evt_domain_exit ev = {
	    .domid = d->domid, .reason = (uint16_t)(reason | flags), .status = status};
	memcpy(ev.name, d->name, sizeof(ev.name));
	for (struct hv_conn *c = hv.conns; c; c = c->next)
		if (c->subscribed)
			hv_send(c, HV_EVT_DOMAIN_EXIT, 0, 0, &ev, sizeof(ev), NULL, 0);
	while (d->waiters) {
		struct hv_waiter *w = d->waiters;
		d->waiters = w->next;
		hv_send(w->conn, w->op, w->id, 0, NULL, 0, NULL, 0);
		free(w);
	}

	epoll_ctl(hv.epfd, EPOLL_CTL_DEL, d->pidfd, NULL);
	if (d->conn && d->conn->fd >= 0)
		epoll_ctl(hv.epfd, EPOLL_CTL_DEL, d->conn->fd, NULL);
	hv.doms[d->domid] = NULL;
	hv.ndoms--;
	struct hv_rec *rec = d->rec;
	if (rec)
		rec->dom = NULL;
	hv_dom_free(d);
	if (rec)
		hv_rec_after_exit(rec, flags);
}

void hv_dom_exited(struct hv_dom *d)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid((idtype_t)P_PIDFD, (id_t)d->pidfd, &si, WEXITED | WNOHANG))
		die("waitid on domain %u", d->domid);
	if (si.si_pid == 0)
		return; /* not yet */
	hv_con_drain(d, true);
	hv_dom_reap(d, &si);
}

void hv_dom_kill_all(void)
{
	for (unsigned i = 1; i < DOMID_FIRST_FREE; i++)
		if (hv.doms[i]) {
			hv.doms[i]->exit_reason = HV_EXIT_DESTROYED;
			hv_dom_signal(hv.doms[i], SIGKILL);
		}
	for (unsigned i = 1; i < DOMID_FIRST_FREE; i++) {
		struct hv_dom *d = hv.doms[i];
		if (!d)
			continue;
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		while (waitid((idtype_t)P_PIDFD, (id_t)d->pidfd, &si, WEXITED) && errno == EINTR)
			;
		hv_con_drain(d, true);
		hv_dom_reap(d, &si);
	}
}

void hv_conn_release(struct hv_conn *c)
{
	struct hv_dom *d = c->dom;
	hv_gnt_revoke_all(d, c);
	hv_evtchn_close_all(d, c);
	hv_seg_free_all(d, c);
	for (unsigned i = 1; i < DOMID_FIRST_FREE; i++) {
		struct hv_dom *x = hv.doms[i];
		if (!x)
			continue;
		for (struct hv_waiter **pp = &x->waiters; *pp;) {
			struct hv_waiter *w = *pp;
			if (w->conn == c) {
				*pp = w->next;
				free(w);
			} else {
				pp = &w->next;
			}
		}
	}
}

/* --- devices ----------------------------------------------------------------- */

int hv_device_assign(struct hv_dom *d, const char *name, int fd)
{
	for (struct hv_device *dv = d->devs; dv; dv = dv->next)
		if (!strcmp(dv->name, name))
			return -EEXIST;
	if (d->ndevs >= HV_MAX_DEVICES)
		return -ENOSPC;
	struct hv_device *dv = calloc(1, sizeof(*dv));
	if (!dv)
		return -ENOMEM;
	snprintf(dv->name, sizeof(dv->name), "%s", name);
	dv->fd = fd;
	dv->next = d->devs;
	d->devs = dv;
	d->ndevs++;
	struct hv_evt_device_assigned ev;
	memset(&ev, 0, sizeof(ev));
	snprintf(ev.name, sizeof(ev.name), "%s", name);
	hv_send(d->conn, HV_EVT_DEVICE_ASSIGNED, 0, 0, &ev, sizeof(ev), NULL, 0);
	return 0;
}

int hv_device_get(struct hv_dom *d, const char *name, int *fd)
{
	for (struct hv_device **pp = &d->devs; *pp; pp = &(*pp)->next) {
		struct hv_device *dv = *pp;
		if (strcmp(dv->name, name))
			continue;
		*pp = dv->next;
		*fd = dv->fd;
		d->ndevs--;
		free(dv);
		return 0;
	}
	return -ENOENT;
}
