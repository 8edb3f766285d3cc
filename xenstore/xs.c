// SPDX-License-Identifier: MIT
// libxenstore-compatible client library (see xenstore/include/xenstore.h).
// One handle = one connection. Requests are serialised by req_lock. One
// thread at a time holds the receive role and reads the transport: a caller
// with a request in flight reads its own reply (and queues any watch event
// it meets); between calls the reader thread (started on the first xs_watch
// / xs_fileno / xs_read_watch / xs_check_watch) does, and queues watch
// events, making the watch pipe readable while the queue is non-empty. The
// reader sleeps on the transport only while no caller reads (the transport
// parks it), so a reply wakes its caller alone (docs/xenstore.md, "Who
// reads"). A reply is taken only if it echoes the req_id of the request
// waiting for it (ids are unique in the process); any other reply is stale
// and dropped (docs/xenstore.md). The transport is the daemon's Unix socket,
// or inside a drvdom domain its xenstore ring (xs_ring.c). Wire format:
// Xen's xs_wire.h; see docs/xenstore.md.
#include <errno.h>

#include "xenstore/include/xenstore.h"
#include "xenstore/xs_transport.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct xs_msg {
	struct xs_msg *next;
	struct xsd_sockmsg hdr;
	char body[]; /* hdr.len bytes + a NUL */
};

/* Receive state: the message being read, resumable (reads never wait: a
 * message that is not all there yet is finished by the next read, whoever
 * holds the receive role then), and stale input to skip. On the ring it
 * passes from a handle to the next (tp.carry). Owned by the holder of the
 * receive role (struct xs_handle), xs_close after joining the reader. */
struct xs_rx {
	struct xsd_sockmsg hdr;
	size_t hdr_got;
	struct xs_msg *m; /* header complete: body being read */
	size_t body_got;
	/* An earlier handle's XS_RESET_WATCHES went unanswered: everything up
	 * to its reply (that handle's replies and watch events) is dropped. */
	bool drain;
	uint32_t drain_id;
};

/* Who reads the transport and h->rx (h->lock). */
enum xs_rx_owner { XS_RX_FREE, XS_RX_READER, XS_RX_CALLER };

struct xs_handle {
	struct xs_transport tp;
	pthread_mutex_t req_lock; /* one request in flight */
	pthread_mutex_t lock;	  /* everything below */
	pthread_cond_t rx_cond, watch_cond;
	enum xs_rx_owner rx_owner;
	unsigned rx_waiters;		   /* callers waiting on rx_cond for the role */
	struct xs_msg *reply, *reply_tail; /* replies waited for, oldest first */
	struct xs_msg *wq_head, *wq_tail;
	int watch_pipe[2];
	bool reader_running, broken, stopping;
	bool stateful; /* a watch or transaction was made (under req_lock) */
	pthread_t reader;
	struct xs_rx rx;
	/* The req_ids waited for: [want_lo, want_lo + want_n) (h->lock). */
	uint32_t want_lo, want_n;
};

/* Process-wide: the handles a domain opens one after another share its ring,
 * and a late reply to one must not match another's request. */
static atomic_uint xs_next_req_id = 1;

/* --- transport: the daemon's socket --------------------------------------- */

/* The reader thread's sleep: an epoll set holding the socket unless a
 * caller parked it. */
struct xs_sock {
	int rep;
};

static int xs_sock_read(struct xs_transport *tp, void *buf, size_t len, size_t *done)
{
	char *p = buf;
	*done = 0;
	while (len) {
		ssize_t n = recv(tp->fd, p, len, MSG_DONTWAIT);
		if (n == 0)
			return *done ? 0 : -ECONNRESET; /* the next read says so */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		*done += (size_t)n;
	}
	return *done ? 0 : -EAGAIN;
}

/* The socket buffer takes any batch we send (xenstored reads requests until
 * 64 KiB of our replies wait): waiting for room here cannot deadlock. */
static int xs_sock_write(struct xs_transport *tp, const void *buf, size_t len, size_t *done)
{
	const char *p = buf;
	*done = 0;
	while (len) {
		ssize_t n = send(tp->fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		*done += (size_t)n;
	}
	return 0;
}

static void xs_sock_wait(struct xs_transport *tp, bool room, int max_ms)
{
	struct pollfd p = {tp->fd, POLLIN | (room ? POLLOUT : 0), 0};
	(void)poll(&p, 1, max_ms);
}

static void xs_sock_reader_wait(struct xs_transport *tp)
{
	struct xs_sock *s = tp->priv;
	struct epoll_event ev;
	(void)epoll_wait(s->rep, &ev, 1, -1); /* shutdown makes the socket readable */
}

static void xs_sock_park(struct xs_transport *tp, bool on)
{
	struct xs_sock *s = tp->priv;
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = tp->fd};
	(void)epoll_ctl(s->rep, on ? EPOLL_CTL_DEL : EPOLL_CTL_ADD, tp->fd, &ev);
}

static void xs_sock_shutdown(struct xs_transport *tp)
{
	shutdown(tp->fd, SHUT_RDWR);
}

static void xs_sock_close(struct xs_transport *tp)
{
	struct xs_sock *s = tp->priv;
	close(s->rep);
	free(s);
	close(tp->fd);
}

static int xs_sock_open(struct xs_transport *tp)
{
	const char *path = xs_daemon_socket();
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct xs_sock *s = malloc(sizeof(*s));
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
	if (!s || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (s->rep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		int err = errno;
		free(s);
		close(fd);
		return -err;
	}
	if (epoll_ctl(s->rep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = errno;
		close(s->rep);
		free(s);
		close(fd);
		return -err;
	}
	tp->fd = fd;
	tp->priv = s;
	tp->read = xs_sock_read;
	tp->write = xs_sock_write;
	tp->prepare = NULL; /* readiness is the socket's own: nothing to clear */
	tp->wait = xs_sock_wait;
	tp->reader_wait = xs_sock_reader_wait;
	tp->park = xs_sock_park;
	tp->shutdown = xs_sock_shutdown;
	tp->close = xs_sock_close;
	return 0;
}

/* --- paths and helpers (xenstore_lib.h) ------------------------------------ */

const char *xs_daemon_rundir(void)
{
	const char *s = getenv("XENSTORED_RUNDIR");
	return s ? s : "/var/run/xenstored";
}

const char *xs_daemon_socket(void)
{
	static _Thread_local char buf[4096];
	const char *s = getenv("XENSTORED_PATH");
	if (s)
		return s;
	snprintf(buf, sizeof(buf), "%s/socket", xs_daemon_rundir());
	return buf;
}

const char *xs_daemon_socket_ro(void)
{
	return xs_daemon_socket();
}

bool xs_write_all(int fd, const void *data, unsigned int len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		p += n;
		len -= (unsigned int)n;
	}
	return true;
}

bool xs_strings_to_perms(struct xs_permissions *perms, unsigned int num, const char *strings)
{
	const char *s = strings;
	for (unsigned int i = 0; i < num; i++, s += strlen(s) + 1) {
		switch (s[0]) {
		case 'n':
			perms[i].perms = XS_PERM_NONE;
			break;
		case 'r':
			perms[i].perms = XS_PERM_READ;
			break;
		case 'w':
			perms[i].perms = XS_PERM_WRITE;
			break;
		case 'b':
			perms[i].perms = XS_PERM_READ | XS_PERM_WRITE;
			break;
		default:
			errno = EINVAL;
			return false;
		}
		char *end;
		unsigned long id = strtoul(s + 1, &end, 10);
		if (end == s + 1 || *end || id > UINT_MAX) {
			errno = EINVAL;
			return false;
		}
		perms[i].id = (unsigned int)id;
	}
	return true;
}

bool xs_perm_to_string(const struct xs_permissions *perm, char *buffer, size_t buf_len)
{
	static const char letters[] = "nrwb";
	unsigned int p = perm->perms & ~(unsigned int)(XS_PERM_OWNER | XS_PERM_IGNORE);
	if (p > 3) {
		errno = EINVAL;
		return false;
	}
	int n = snprintf(buffer, buf_len, "%c%u", letters[p], perm->id);
	if (n < 0 || (size_t)n >= buf_len) {
		errno = ENOBUFS;
		return false;
	}
	return true;
}

unsigned int xs_count_strings(const char *strings, unsigned int len)
{
	unsigned int n = 0;
	for (unsigned int i = 0; i < len; i++)
		n += strings[i] == 0;
	return n;
}

bool xs_path_is_subpath(const char *parent, const char *child)
{
	size_t pl = strlen(parent);
	if (pl && parent[pl - 1] == '/')
		pl--;
	return strncmp(child, parent, pl) == 0 && (child[pl] == 0 || child[pl] == '/');
}

/* --- messages ---------------------------------------------------------------- */

static int xs_errno_of(const char *name)
{
	for (size_t i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)
		if (strcmp(name, xsd_errors[i].errstring) == 0)
			return xsd_errors[i].errnum;
	return EINVAL;
}

/* Read one whole message, or NULL with errno (EAGAIN: not all there yet);
 * what a read got of an unfinished message stays in h->rx for the next. */
static struct xs_msg *xs_msg_read_one(struct xs_handle *h)
{
	struct xs_rx *rx = &h->rx;
	while (rx->hdr_got < sizeof(rx->hdr)) {
		size_t done;
		int ret = h->tp.read(&h->tp, (char *)&rx->hdr + rx->hdr_got,
				     sizeof(rx->hdr) - rx->hdr_got, &done);
		rx->hdr_got += done;
		if (ret) {
			errno = -ret;
			return NULL;
		}
	}
	if (!rx->m) {
		if (rx->hdr.len > XENSTORE_PAYLOAD_MAX) {
			errno = EPROTO; /* no message boundary to resume at */
			return NULL;
		}
		rx->m = malloc(sizeof(*rx->m) + rx->hdr.len + 1);
		if (!rx->m)
			return NULL;
		rx->m->next = NULL;
		rx->m->hdr = rx->hdr;
		rx->body_got = 0;
	}
	struct xs_msg *m = rx->m;
	while (rx->body_got < m->hdr.len) {
		size_t done;
		int ret =
		    h->tp.read(&h->tp, m->body + rx->body_got, m->hdr.len - rx->body_got, &done);
		rx->body_got += done;
		if (ret) {
			errno = -ret;
			return NULL;
		}
	}
	m->body[m->hdr.len] = 0;
	rx->m = NULL;
	rx->hdr_got = 0;
	return m;
}

/* Read the next message that is not stale input (see struct xs_rx). */
static struct xs_msg *xs_msg_read(struct xs_handle *h)
{
	for (;;) {
		struct xs_msg *m = xs_msg_read_one(h);
		if (!m || !h->rx.drain)
			return m;
		if (m->hdr.type != XS_WATCH_EVENT && m->hdr.req_id == h->rx.drain_id)
			h->rx.drain = false;
		free(m);
	}
}

/* h->lock held. */
static void xs_queue_watch(struct xs_handle *h, struct xs_msg *m)
{
	if (h->wq_tail)
		h->wq_tail->next = m;
	else {
		h->wq_head = m;
		char c = 0;
		if (write(h->watch_pipe[1], &c, 1) < 0) {
			/* The pipe holds one byte at most: cannot be full. */
		}
	}
	h->wq_tail = m;
	pthread_cond_broadcast(&h->watch_cond);
}

/* The role holder: read every whole message that is there (with
 * until_reply, stop after a reply of the window); queue watch events and the
 * replies of the window [want_lo, want_lo + want_n), drop any other reply
 * (stale: nobody waits for it). 0 once nothing more is there, else -errno:
 * the connection is broken (h->broken set). */
static int xs_rx_pump(struct xs_handle *h, bool until_reply)
{
	for (;;) {
		struct xs_msg *m = xs_msg_read(h);
		if (!m && errno == EAGAIN)
			return 0;
		int err = m ? 0 : errno;
		pthread_mutex_lock(&h->lock);
		if (!m) {
			h->broken = true;
			pthread_cond_broadcast(&h->watch_cond);
		} else if (m->hdr.type == XS_WATCH_EVENT) {
			xs_queue_watch(h, m);
		} else if (m->hdr.req_id - h->want_lo < h->want_n) {
			if (h->reply_tail)
				h->reply_tail->next = m;
			else
				h->reply = m;
			h->reply_tail = m;
		} else {
			free(m);
			m = NULL;
		}
		bool reply = m && m->hdr.type != XS_WATCH_EVENT;
		pthread_mutex_unlock(&h->lock);
		if (err)
			return -err;
		if (reply && until_reply)
			return 0;
	}
}

/* The reader thread: sleeps on the transport while nobody else reads; when
 * it wakes and the role is free, reads what is there. A caller holding the
 * role has parked the transport, so its replies never wake this thread. */
static void *xs_reader_main(void *arg)
{
	struct xs_handle *h = arg;
	for (;;) {
		h->tp.reader_wait(&h->tp);
		pthread_mutex_lock(&h->lock);
		if (h->stopping || h->broken) {
			/* No more events: xs_read_watch returns. */
			h->broken = true;
			pthread_cond_broadcast(&h->watch_cond);
			pthread_mutex_unlock(&h->lock);
			return NULL;
		}
		if (h->rx_owner != XS_RX_FREE) { /* a caller reads */
			pthread_mutex_unlock(&h->lock);
			continue;
		}
		h->rx_owner = XS_RX_READER;
		pthread_mutex_unlock(&h->lock);
		if (h->tp.prepare)
			h->tp.prepare(&h->tp);
		int ret = xs_rx_pump(h, false);
		pthread_mutex_lock(&h->lock);
		h->rx_owner = XS_RX_FREE;
		if (h->rx_waiters)
			pthread_cond_broadcast(&h->rx_cond);
		pthread_mutex_unlock(&h->lock);
		if (ret)
			return NULL;
	}
}

/* Wait for the replies to req_ids [lo, lo + n): xs_rx_pump queues those
 * and drops any other. Before the requests are sent. */
static void xs_want(struct xs_handle *h, uint32_t lo, uint32_t n)
{
	pthread_mutex_lock(&h->lock);
	h->want_lo = lo;
	h->want_n = n;
	pthread_mutex_unlock(&h->lock);
}

/* Take the receive role for a call (req_lock held). The reader thread never
 * waits holding it, so waiting here is short; parking the transport takes it
 * out of the reader's sleep without waking the reader. */
static void xs_rx_take(struct xs_handle *h)
{
	pthread_mutex_lock(&h->lock);
	while (h->rx_owner != XS_RX_FREE) {
		h->rx_waiters++;
		pthread_cond_wait(&h->rx_cond, &h->lock);
		h->rx_waiters--;
	}
	h->rx_owner = XS_RX_CALLER;
	if (h->reader_running)
		h->tp.park(&h->tp, true);
	pthread_mutex_unlock(&h->lock);
}

/* Give the role back. With a reader thread on the ring, clear the port the
 * caller woke for (else the unparked reader would wake for a reply already
 * read) and read what came before that: anything arriving later fires the
 * port again and wakes the reader. The socket needs nothing: bytes left
 * there keep it readable, which wakes the reader once it is unparked. */
static void xs_rx_give(struct xs_handle *h)
{
	if (h->reader_running && h->tp.prepare) {
		h->tp.prepare(&h->tp);
		(void)xs_rx_pump(h, false); /* an error is h->broken */
	}
	pthread_mutex_lock(&h->lock);
	h->rx_owner = XS_RX_FREE;
	if (h->reader_running)
		h->tp.park(&h->tp, false);
	if (h->rx_waiters)
		pthread_cond_broadcast(&h->rx_cond);
	pthread_mutex_unlock(&h->lock);
}

static long xs_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The role holder: the oldest reply of the window, reading the transport
 * until it comes (watch events met on the way are queued). NULL with errno
 * ECONNRESET (or the read error) if the connection broke, ETIMEDOUT after
 * max_ms (< 0: no bound). */
static struct xs_msg *xs_rx_reply(struct xs_handle *h, int max_ms)
{
	long deadline = max_ms < 0 ? 0 : xs_now_ms() + max_ms;
	int ret = 0;
	for (;;) {
		pthread_mutex_lock(&h->lock);
		struct xs_msg *m = h->reply;
		if (m) {
			h->reply = m->next;
			if (!h->reply)
				h->reply_tail = NULL;
			m->next = NULL;
		}
		bool broken = h->broken;
		pthread_mutex_unlock(&h->lock);
		if (m)
			return m;
		if (broken) {
			errno = ret ? -ret : ECONNRESET;
			return NULL;
		}
		int ms = -1;
		if (max_ms >= 0) {
			long left = deadline - xs_now_ms();
			if (left <= 0) {
				errno = ETIMEDOUT;
				return NULL;
			}
			ms = (int)left;
		}
		h->tp.wait(&h->tp, false, ms);
		ret = xs_rx_pump(h, true);
	}
}

/* The role holder: send all len bytes. While the transport has no room
 * (the ring), read what xenstored answers meanwhile, which may be what it
 * waits for before it takes more requests. */
static int xs_rx_send(struct xs_handle *h, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		size_t done;
		int ret = h->tp.write(&h->tp, p, len, &done);
		p += done;
		len -= done;
		if (ret)
			return ret;
		if (!len)
			break;
		ret = xs_rx_pump(h, false);
		if (ret)
			return ret;
		h->tp.wait(&h->tp, true, -1);
	}
	return 0;
}

static bool xs_start_reader(struct xs_handle *h)
{
	bool ok = true;
	pthread_mutex_lock(&h->req_lock);
	if (!h->reader_running) {
		int ret = pthread_create(&h->reader, NULL, xs_reader_main, h);
		if (ret) {
			errno = ret;
			ok = false;
		} else {
			h->reader_running = true;
		}
	}
	pthread_mutex_unlock(&h->req_lock);
	return ok;
}

/* Send one request made of iovecs, wait for its reply. Returns the reply
 * body (malloc'ed, NUL-terminated, length in *len) or NULL with errno. */
static void *xs_talkv(struct xs_handle *h, xs_transaction_t t, uint32_t type,
		      const struct iovec *iov, unsigned int n, unsigned int *len)
{
	struct xsd_sockmsg hdr = {.type = type, .tx_id = t};
	char buf[sizeof(hdr) + XENSTORE_PAYLOAD_MAX];
	size_t total = 0;
	for (unsigned int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (total > XENSTORE_PAYLOAD_MAX) {
		errno = E2BIG;
		return NULL;
	}
	hdr.len = (uint32_t)total;
	hdr.req_id = atomic_fetch_add(&xs_next_req_id, 1);
	pthread_mutex_lock(&h->req_lock);
	if (type == XS_WATCH || type == XS_TRANSACTION_START)
		h->stateful = true;
	memcpy(buf, &hdr, sizeof(hdr));
	size_t off = sizeof(hdr);
	for (unsigned int i = 0; i < n; i++) {
		memcpy(buf + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	struct xs_msg *m = NULL;
	xs_want(h, hdr.req_id, 1);
	xs_rx_take(h);
	int ret = xs_rx_send(h, buf, off);
	if (ret)
		errno = -ret;
	else
		m = xs_rx_reply(h, -1);
	xs_want(h, 0, 0);
	xs_rx_give(h);
	pthread_mutex_unlock(&h->req_lock);
	if (!m)
		return NULL;
	if (m->hdr.type == XS_ERROR) {
		int err = xs_errno_of(m->body);
		free(m);
		errno = err;
		return NULL;
	}
	if (m->hdr.type != type) {
		free(m);
		errno = EBADF;
		return NULL;
	}
	/* Hand back the body: move it to the front of the allocation. */
	unsigned int l = m->hdr.len;
	memmove(m, m->body, l + 1);
	if (len)
		*len = l;
	return m;
}

static void *xs_single(struct xs_handle *h, xs_transaction_t t, uint32_t type, const char *s,
		       unsigned int *len)
{
	struct iovec iov = {(void *)s, strlen(s) + 1};
	return xs_talkv(h, t, type, &iov, 1, len);
}

static bool xs_bool(void *reply)
{
	if (!reply)
		return false;
	free(reply);
	return true;
}

/* --- handles ----------------------------------------------------------------- */

struct xs_handle *xs_open(unsigned long flags)
{
	(void)flags;
	struct xs_handle *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	int ret = xs_sock_open(&h->tp);
	if (ret && getenv("DRVDOM_HV_FD"))
		ret = xs_ring_open(&h->tp);
	if (ret == 0 && pipe2(h->watch_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		ret = -errno;
		h->tp.close(&h->tp);
	}
	if (ret) {
		free(h);
		errno = -ret;
		return NULL;
	}
	if (h->tp.carry && *h->tp.carry) { /* an earlier handle's leftovers */
		struct xs_rx *rx = *h->tp.carry;
		h->rx = *rx;
		free(rx);
		*h->tp.carry = NULL;
	}
	pthread_mutex_init(&h->req_lock, NULL);
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->rx_cond, NULL);
	pthread_cond_init(&h->watch_cond, NULL);
	return h;
}

struct xs_handle *xs_daemon_open(void)
{
	return xs_open(0);
}

struct xs_handle *xs_domain_open(void)
{
	return xs_open(0);
}

struct xs_handle *xs_daemon_open_readonly(void)
{
	return xs_open(XS_OPEN_READONLY);
}

static void xs_free_queues(struct xs_handle *h)
{
	free(h->rx.m);
	while (h->reply) {
		struct xs_msg *m = h->reply;
		h->reply = m->next;
		free(m);
	}
	while (h->wq_head) {
		struct xs_msg *m = h->wq_head;
		h->wq_head = m->next;
		free(m);
	}
	close(h->watch_pipe[0]);
	close(h->watch_pipe[1]);
}

/* The ring is the domain's one connection, which outlives a handle: before
 * the handle goes, drop its watches and transactions (as closing Xen's
 * xenbus device does). Once the reply is read nothing else arrives for this
 * handle. Waits for the reply at most XS_CLOSE_WAIT_S (a xenstored that is
 * gone must not hang xs_close); returns false if it did not come, the
 * request's id in *req_id: the next handle then drops everything up to that
 * reply (xs_close). */
#define XS_CLOSE_WAIT_S 1
static bool xs_ring_reset(struct xs_handle *h, uint32_t *req_id)
{
	struct xsd_sockmsg hdr = {.type = XS_RESET_WATCHES};
	hdr.req_id = *req_id = atomic_fetch_add(&xs_next_req_id, 1);
	pthread_mutex_lock(&h->req_lock);
	xs_want(h, hdr.req_id, 1);
	xs_rx_take(h);
	bool got = true; /* nothing (whole) sent: nothing to wait for */
	if (xs_rx_send(h, &hdr, sizeof(hdr)) == 0) {
		struct xs_msg *m = xs_rx_reply(h, XS_CLOSE_WAIT_S * 1000);
		got = m != NULL;
		free(m);
	}
	/* Without the reply, the reader (if any) still queues it until it is
	 * stopped (xs_want): xs_close looks at h->reply after joining it. */
	if (got)
		xs_want(h, 0, 0);
	xs_rx_give(h);
	pthread_mutex_unlock(&h->req_lock);
	return got;
}

void xs_close(struct xs_handle *h)
{
	if (!h)
		return;
	uint32_t reset_id = 0;
	bool reset_pending = h->tp.fd < 0 && h->stateful && !xs_ring_reset(h, &reset_id);
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	pthread_mutex_unlock(&h->lock);
	/* Every wait returns, a call in flight fails; wait for it to leave. */
	h->tp.shutdown(&h->tp);
	pthread_mutex_lock(&h->req_lock);
	pthread_mutex_unlock(&h->req_lock);
	if (h->reader_running)
		pthread_join(h->reader, NULL);
	if (reset_pending && !h->reply) {
		h->rx.drain = true;
		h->rx.drain_id = reset_id;
	}
	/* Hand what is left unread to the next handle on this connection. */
	if (h->tp.carry && (h->rx.hdr_got || h->rx.drain)) {
		struct xs_rx *rx = malloc(sizeof(*rx));
		if (rx) {
			*rx = h->rx;
			h->rx.m = NULL;
			free(*h->tp.carry);
			*h->tp.carry = rx;
		}
	}
	h->tp.close(&h->tp);
	xs_free_queues(h);
	pthread_mutex_destroy(&h->req_lock);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->rx_cond);
	pthread_cond_destroy(&h->watch_cond);
	free(h);
}

void xs_daemon_close(struct xs_handle *h)
{
	xs_close(h);
}

void xs_daemon_destroy_postfork(struct xs_handle *h)
{
	/* The reader thread does not exist in the child: just drop it all. */
	h->tp.close(&h->tp);
	xs_free_queues(h);
	free(h);
}

/* --- operations -------------------------------------------------------------- */

static char **xs_split(const char *strings, unsigned int len, unsigned int *num)
{
	unsigned int n = xs_count_strings(strings, len);
	char **v = malloc((n + 1) * sizeof(char *) + len);
	if (!v)
		return NULL;
	char *s = (char *)(v + n + 1);
	memcpy(s, strings, len);
	for (unsigned int i = 0; i < n; i++) {
		v[i] = s;
		s += strlen(s) + 1;
	}
	v[n] = NULL;
	*num = n;
	return v;
}

static char **xs_directory_part(struct xs_handle *h, xs_transaction_t t, const char *path,
				unsigned int *num)
{
	char *acc = NULL, *gen = NULL;
	size_t acclen = 0;
	for (int tries = 0; tries < 100; tries++) {
		char off[32];
		snprintf(off, sizeof(off), "%zu", acclen);
		struct iovec iov[2] = {{(void *)path, strlen(path) + 1}, {off, strlen(off) + 1}};
		unsigned int len;
		char *r = xs_talkv(h, t, XS_DIRECTORY_PART, iov, 2, &len);
		if (!r)
			break;
		size_t gl = strlen(r) + 1;
		if (!gen) {
			gen = strdup(r);
		} else if (strcmp(gen, r) != 0) { /* changed meanwhile: restart */
			free(gen);
			gen = strdup(r);
			acclen = 0;
			free(r);
			continue;
		}
		size_t part = len - gl;
		bool last =
		    part == 0 || (part >= 1 && r[len - 1] == 0 && (part == 1 || r[len - 2] == 0));
		if (last && part)
			part--; /* the terminating empty string */
		char *na = realloc(acc, acclen + part + 1);
		if (!na) {
			free(r);
			break;
		}
		acc = na;
		memcpy(acc + acclen, r + gl, part);
		acclen += part;
		free(r);
		if (last) {
			char **v = xs_split(acc ? acc : "", (unsigned int)acclen, num);
			free(acc);
			free(gen);
			return v;
		}
	}
	free(acc);
	free(gen);
	return NULL;
}

char **xs_directory(struct xs_handle *h, xs_transaction_t t, const char *path, unsigned int *num)
{
	unsigned int len;
	char *r = xs_single(h, t, XS_DIRECTORY, path, &len);
	if (!r)
		return errno == E2BIG ? xs_directory_part(h, t, path, num) : NULL;
	char **v = xs_split(r, len, num);
	free(r);
	return v;
}

void *xs_read(struct xs_handle *h, xs_transaction_t t, const char *path, unsigned int *len)
{
	return xs_single(h, t, XS_READ, path, len);
}

bool xs_write(struct xs_handle *h, xs_transaction_t t, const char *path, const void *data,
	      unsigned int len)
{
	struct iovec iov[2] = {{(void *)path, strlen(path) + 1}, {(void *)data, len}};
	return xs_bool(xs_talkv(h, t, XS_WRITE, iov, 2, NULL));
}

bool xs_mkdir(struct xs_handle *h, xs_transaction_t t, const char *path)
{
	return xs_bool(xs_single(h, t, XS_MKDIR, path, NULL));
}

bool xs_rm(struct xs_handle *h, xs_transaction_t t, const char *path)
{
	return xs_bool(xs_single(h, t, XS_RM, path, NULL));
}

bool xs_restrict(struct xs_handle *h, unsigned domid)
{
	(void)h;
	(void)domid;
	errno = ENOSYS;
	return false;
}

struct xs_permissions *xs_get_permissions(struct xs_handle *h, xs_transaction_t t, const char *path,
					  unsigned int *num)
{
	unsigned int len;
	char *r = xs_single(h, t, XS_GET_PERMS, path, &len);
	if (!r)
		return NULL;
	unsigned int n = xs_count_strings(r, len);
	struct xs_permissions *p = n ? malloc(n * sizeof(*p)) : NULL;
	if (!p || !xs_strings_to_perms(p, n, r)) {
		free(p);
		free(r);
		errno = EINVAL;
		return NULL;
	}
	free(r);
	*num = n;
	return p;
}

bool xs_set_permissions(struct xs_handle *h, xs_transaction_t t, const char *path,
			struct xs_permissions *perms, unsigned int num_perms)
{
	char buf[XENSTORE_PAYLOAD_MAX];
	size_t off = 0;
	for (unsigned int i = 0; i < num_perms; i++) {
		char s[MAX_STRLEN(unsigned int) + 2];
		if (!xs_perm_to_string(&perms[i], s, sizeof(s)))
			return false;
		size_t l = strlen(s) + 1;
		if (off + l > sizeof(buf)) {
			errno = E2BIG;
			return false;
		}
		memcpy(buf + off, s, l);
		off += l;
	}
	struct iovec iov[2] = {{(void *)path, strlen(path) + 1}, {buf, off}};
	return xs_bool(xs_talkv(h, t, XS_SET_PERMS, iov, 2, NULL));
}

bool xs_watch(struct xs_handle *h, const char *path, const char *token)
{
	if (!xs_start_reader(h))
		return false;
	struct iovec iov[2] = {{(void *)path, strlen(path) + 1},
			       {(void *)token, strlen(token) + 1}};
	return xs_bool(xs_talkv(h, XBT_NULL, XS_WATCH, iov, 2, NULL));
}

bool xs_unwatch(struct xs_handle *h, const char *path, const char *token)
{
	struct iovec iov[2] = {{(void *)path, strlen(path) + 1},
			       {(void *)token, strlen(token) + 1}};
	return xs_bool(xs_talkv(h, XBT_NULL, XS_UNWATCH, iov, 2, NULL));
}

int xs_fileno(struct xs_handle *h)
{
	if (!xs_start_reader(h))
		return -1;
	return h->watch_pipe[0];
}

/* h->lock held, queue non-empty. */
static char **xs_pop_watch(struct xs_handle *h, unsigned int *num)
{
	struct xs_msg *m = h->wq_head;
	h->wq_head = m->next;
	if (!h->wq_head) {
		h->wq_tail = NULL;
		char c;
		if (read(h->watch_pipe[0], &c, 1) < 0) {
			/* Already empty: nothing to do. */
		}
	}
	unsigned int n;
	char **v = xs_split(m->body, m->hdr.len, &n);
	free(m);
	if (v && n < 2) {
		free(v);
		errno = EPROTO;
		return NULL;
	}
	if (num)
		*num = n;
	return v;
}

char **xs_check_watch(struct xs_handle *h)
{
	if (!xs_start_reader(h))
		return NULL;
	pthread_mutex_lock(&h->lock);
	char **v = NULL;
	if (h->wq_head)
		v = xs_pop_watch(h, NULL);
	else
		errno = h->broken ? ECONNRESET : EAGAIN;
	pthread_mutex_unlock(&h->lock);
	return v;
}

char **xs_read_watch(struct xs_handle *h, unsigned int *num)
{
	if (!xs_start_reader(h))
		return NULL;
	pthread_mutex_lock(&h->lock);
	while (!h->wq_head && !h->broken)
		pthread_cond_wait(&h->watch_cond, &h->lock);
	char **v = NULL;
	if (h->wq_head)
		v = xs_pop_watch(h, num);
	else
		errno = ECONNRESET;
	pthread_mutex_unlock(&h->lock);
	return v;
}

xs_transaction_t xs_transaction_start(struct xs_handle *h)
{
	char *r = xs_single(h, XBT_NULL, XS_TRANSACTION_START, "", NULL);
	if (!r)
		return XBT_NULL;
	unsigned long id = strtoul(r, NULL, 10);
	free(r);
	return (xs_transaction_t)id;
}

bool xs_transaction_end(struct xs_handle *h, xs_transaction_t t, bool abort)
{
	return xs_bool(xs_single(h, t, XS_TRANSACTION_END, abort ? "F" : "T", NULL));
}

/* drvdom extension, see xenstore.h. The caller reads the replies itself, also
 * while it waits for room to write (xs_rx_send), so xenstored never waits on
 * a full response ring while we still write; those of the window
 * [first, first + n) are queued in order (xs_want). */
void xs_batch_read(struct xs_batch_op *op, char *buf, size_t cap, const char *dir,
		   const char *key)
{
	snprintf(buf, cap, "%s/%s", dir, key);
	*op = (struct xs_batch_op){.type = XS_READ, .path = buf};
}

void xs_batch_write(struct xs_batch_op *op, char *buf, size_t cap, const char *dir,
		    const char *key, const char *val)
{
	snprintf(buf, cap, "%s/%s", dir, key);
	*op = (struct xs_batch_op){
	    .type = XS_WRITE, .path = buf, .data = val, .len = (unsigned int)strlen(val)};
}

void xs_batch_free(struct xs_batch_op *ops, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		free(ops[i].reply);
		ops[i].reply = NULL;
	}
}

int xs_batch_uint(const struct xs_batch_op *op, uint64_t def, uint64_t *out)
{
	const char *v = op->reply;
	*out = def;
	if (!v)
		return -ENOENT;
	if (*v < '0' || *v > '9')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = n;
	return 0;
}

bool xs_batch(struct xs_handle *h, xs_transaction_t t, struct xs_batch_op *ops, unsigned int n)
{
	if (n == 0)
		return true;
	if (n > XS_BATCH_MAX) {
		errno = E2BIG;
		return false;
	}
	size_t cap = (size_t)n * (sizeof(struct xsd_sockmsg) + XENSTORE_PAYLOAD_MAX);
	char *buf = malloc(cap);
	if (!buf)
		return false;
	/* One block of request ids, so the replies are one window. */
	uint32_t first = atomic_fetch_add(&xs_next_req_id, n);
	size_t off = 0;
	bool stateful = false;
	for (unsigned int i = 0; i < n; i++) {
		struct xs_batch_op *o = &ops[i];
		o->err = 0;
		o->reply = NULL;
		o->reply_len = 0;
		const char *p = o->path ? o->path : "";
		size_t pl = strlen(p) + 1, dl = o->data ? o->len : 0;
		if (o->type == XS_WATCH || o->type == XS_UNWATCH)
			dl = o->data ? strlen(o->data) + 1 : 0;
		if (o->type == XS_TRANSACTION_END) /* path "T" or "F" */
			dl = 0;
		if (pl + dl > XENSTORE_PAYLOAD_MAX) {
			free(buf);
			errno = E2BIG;
			return false;
		}
		struct xsd_sockmsg hdr = {
		    .type = o->type,
		    .req_id = first + i,
		    .tx_id = (o->type == XS_WATCH || o->type == XS_UNWATCH) ? XBT_NULL : t,
		    .len = (uint32_t)(pl + dl)};
		stateful |= o->type == XS_WATCH;
		memcpy(buf + off, &hdr, sizeof(hdr));
		memcpy(buf + off + sizeof(hdr), p, pl);
		if (dl)
			memcpy(buf + off + sizeof(hdr) + pl, o->data, dl);
		off += sizeof(hdr) + pl + dl;
	}
	pthread_mutex_lock(&h->req_lock);
	if (stateful)
		h->stateful = true;
	xs_want(h, first, n);
	xs_rx_take(h);
	int ret = xs_rx_send(h, buf, off);
	free(buf);
	bool ok = !ret;
	if (ret)
		errno = -ret;
	for (unsigned int i = 0; ok && i < n; i++) {
		struct xs_msg *m = xs_rx_reply(h, -1);
		if (!m) {
			ok = false;
			break;
		}
		struct xs_batch_op *o = &ops[i];
		if (m->hdr.req_id != first + i) {
			o->err = EBADF;
		} else if (m->hdr.type == XS_ERROR) {
			o->err = xs_errno_of(m->body);
		} else if (m->hdr.type != o->type) {
			o->err = EBADF;
		} else if (o->type == XS_READ || o->type == XS_DIRECTORY) {
			unsigned int l = m->hdr.len;
			memmove(m, m->body, l + 1);
			o->reply = m;
			o->reply_len = l;
			m = NULL;
		}
		free(m);
	}
	xs_want(h, 0, 0);
	/* Replies of the window queued after a failure: none of them is
	 * anyone's now. */
	pthread_mutex_lock(&h->lock);
	while (!ok && h->reply) {
		struct xs_msg *m = h->reply;
		h->reply = m->next;
		free(m);
	}
	if (!h->reply)
		h->reply_tail = NULL;
	pthread_mutex_unlock(&h->lock);
	xs_rx_give(h);
	pthread_mutex_unlock(&h->req_lock);
	return ok;
}

bool xs_introduce_domain(struct xs_handle *h, unsigned int domid, unsigned long mfn,
			 unsigned int eventchn)
{
	char a[16], b[32], c[16];
	snprintf(a, sizeof(a), "%u", domid);
	snprintf(b, sizeof(b), "%lu", mfn);
	snprintf(c, sizeof(c), "%u", eventchn);
	struct iovec iov[3] = {{a, strlen(a) + 1}, {b, strlen(b) + 1}, {c, strlen(c) + 1}};
	return xs_bool(xs_talkv(h, XBT_NULL, XS_INTRODUCE, iov, 3, NULL));
}

bool xs_set_target(struct xs_handle *h, unsigned int domid, unsigned int target)
{
	char a[16], b[16];
	snprintf(a, sizeof(a), "%u", domid);
	snprintf(b, sizeof(b), "%u", target);
	struct iovec iov[2] = {{a, strlen(a) + 1}, {b, strlen(b) + 1}};
	return xs_bool(xs_talkv(h, XBT_NULL, XS_SET_TARGET, iov, 2, NULL));
}

static void *xs_domid_op(struct xs_handle *h, uint32_t type, unsigned int domid)
{
	char a[16];
	snprintf(a, sizeof(a), "%u", domid);
	return xs_single(h, XBT_NULL, type, a, NULL);
}

bool xs_resume_domain(struct xs_handle *h, unsigned int domid)
{
	return xs_bool(xs_domid_op(h, XS_RESUME, domid));
}

bool xs_release_domain(struct xs_handle *h, unsigned int domid)
{
	return xs_bool(xs_domid_op(h, XS_RELEASE, domid));
}

char *xs_get_domain_path(struct xs_handle *h, unsigned int domid)
{
	return xs_domid_op(h, XS_GET_DOMAIN_PATH, domid);
}

bool xs_is_domain_introduced(struct xs_handle *h, unsigned int domid)
{
	char *r = xs_domid_op(h, XS_IS_DOMAIN_INTRODUCED, domid);
	bool yes = r && strcmp(r, "T") == 0;
	free(r);
	return yes;
}

char *xs_control_command(struct xs_handle *h, const char *cmd, void *data, unsigned int len)
{
	struct iovec iov[2] = {{(void *)cmd, strlen(cmd) + 1}, {data, len}};
	return xs_talkv(h, XBT_NULL, XS_CONTROL, iov, len ? 2 : 1, NULL);
}

char *xs_debug_command(struct xs_handle *h, const char *cmd, void *data, unsigned int len)
{
	return xs_control_command(h, cmd, data, len);
}

int xs_suspend_evtchn_port(int domid)
{
	(void)domid;
	return -1;
}
