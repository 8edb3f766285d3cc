// SPDX-License-Identifier: MIT
// See hvtest_msg.h.
#include "tests/integration/hvtest_msg.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HVT_QUEUE 32

static struct hvt_msg *hvt_queue[HVT_QUEUE];
static unsigned hvt_nqueued;
static uint32_t hvt_next_id = 1;

int hvt_send(int fd, const struct hv_hdr *hdr, const void *payload, size_t len, const int *fds,
	     unsigned nfds)
{
	struct iovec iov[2] = {{(void *)hdr, sizeof(*hdr)}, {(void *)payload, len}};
	union {
		char buf[CMSG_SPACE(sizeof(int) * (HV_MAX_FDS + 4))];
		struct cmsghdr align;
	} cm;
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
	if (nfds) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);
		ch->cmsg_level = SOL_SOCKET;
		ch->cmsg_type = SCM_RIGHTS;
		ch->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(ch), fds, sizeof(int) * nfds);
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int hvt_recv(int fd, struct hvt_msg *m, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r = poll(&p, 1, timeout_ms);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	union {
		char buf[CMSG_SPACE(sizeof(int) * HV_MAX_FDS)];
		struct cmsghdr align;
	} cm;
	struct iovec iov[2] = {{&m->hdr, sizeof(m->hdr)}, {m->payload, sizeof(m->payload)}};
	struct msghdr mh = {.msg_iov = iov,
			    .msg_iovlen = 2,
			    .msg_control = cm.buf,
			    .msg_controllen = sizeof(cm.buf)};
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	m->nfds = 0;
	for (struct cmsghdr *ch = CMSG_FIRSTHDR(&mh); ch; ch = CMSG_NXTHDR(&mh, ch)) {
		if (ch->cmsg_level != SOL_SOCKET || ch->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned k = (unsigned)((ch->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (unsigned i = 0; i < k && m->nfds < HV_MAX_FDS; i++)
			memcpy(&m->fds[m->nfds++], CMSG_DATA(ch) + i * sizeof(int), sizeof(int));
	}
	if ((size_t)n < sizeof(m->hdr) || m->hdr.len != (size_t)n - sizeof(m->hdr))
		return -EPROTO;
	return 0;
}

void hvt_msg_close_fds(struct hvt_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	m->nfds = 0;
}

static long hvt_ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hvt_enqueue(struct hvt_msg *m)
{
	if (hvt_nqueued == HVT_QUEUE) {
		hvt_msg_close_fds(m);
		free(m);
		return;
	}
	hvt_queue[hvt_nqueued++] = m;
}

int hvt_call(int fd, uint32_t op, const void *req, size_t len, const int *fds, unsigned nfds,
	     struct hvt_msg *rep)
{
	struct hv_hdr hdr = {.op = op, .id = hvt_next_id++, .len = (uint32_t)len};
	if (hdr.id == 0)
		hdr.id = hvt_next_id++;
	int r = hvt_send(fd, &hdr, req, len, fds, nfds);
	if (r)
		return r;
	long deadline = hvt_ms_now() + 10000;
	for (;;) {
		struct hvt_msg *m = malloc(sizeof(*m));
		if (!m)
			return -ENOMEM;
		long left = deadline - hvt_ms_now();
		r = hvt_recv(fd, m, left > 0 ? (int)left : 0);
		if (r) {
			free(m);
			return r;
		}
		if (m->hdr.id == 0) {
			hvt_enqueue(m);
			continue;
		}
		if (m->hdr.id != hdr.id || m->hdr.op != op) {
			hvt_msg_close_fds(m);
			free(m);
			return -EPROTO;
		}
		r = m->hdr.ret;
		if (rep)
			memcpy(rep, m, sizeof(*m));
		else
			hvt_msg_close_fds(m);
		free(m);
		return r;
	}
}

int hvt_wait_event(int fd, uint32_t op, int timeout_ms, struct hvt_msg *ev)
{
	long deadline = hvt_ms_now() + timeout_ms;
	for (;;) {
		for (unsigned i = 0; i < hvt_nqueued; i++) {
			struct hvt_msg *m = hvt_queue[i];
			if (m->hdr.op != op)
				continue;
			memmove(&hvt_queue[i], &hvt_queue[i + 1],
				(hvt_nqueued - i - 1) * sizeof(hvt_queue[0]));
			hvt_nqueued--;
			if (ev)
				memcpy(ev, m, sizeof(*m));
			else
				hvt_msg_close_fds(m);
			free(m);
			return 0;
		}
		struct hvt_msg *m = malloc(sizeof(*m));
		if (!m)
			return -ENOMEM;
		long left = deadline - hvt_ms_now();
		int r = hvt_recv(fd, m, left > 0 ? (int)left : 0);
		if (r) {
			free(m);
			return r;
		}
		hvt_enqueue(m);
	}
}
