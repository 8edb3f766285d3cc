// SPDX-License-Identifier: MIT
// See nbdc.h. Protocol constants come from the server's frontends/nbd/
// nbd_proto.h; the protocol is described in docs/nbd.md.
#include "tools/nbdc.h"

#include "frontends/nbd/nbd_proto.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int negotiate(struct nbdc *c)
{
	unsigned char g[18];
	int r = read_full(c->fd, g, sizeof(g));
	if (r)
		return r;
	uint64_t m1, m2;
	uint16_t hflags;
	memcpy(&m1, g, 8);
	memcpy(&m2, g + 8, 8);
	memcpy(&hflags, g + 16, 2);
	if (be64toh(m1) != NBD_MAGIC || be64toh(m2) != NBD_OPTS_MAGIC ||
	    !(be16toh(hflags) & NBD_FLAG_FIXED_NEWSTYLE))
		return -EPROTO;
	uint32_t cflags =
	    htobe32(NBD_FLAG_C_FIXED_NEWSTYLE |
		    (be16toh(hflags) & NBD_FLAG_NO_ZEROES ? NBD_FLAG_C_NO_ZEROES : 0));
	/* NBD_OPT_GO for the default export "", no info requests. */
	unsigned char opt[8 + 4 + 4 + 4 + 2];
	uint64_t om = htobe64(NBD_OPTS_MAGIC);
	uint32_t ot = htobe32(NBD_OPT_GO), ol = htobe32(6), nl = 0;
	uint16_t ni = 0;
	memcpy(opt, &om, 8);
	memcpy(opt + 8, &ot, 4);
	memcpy(opt + 12, &ol, 4);
	memcpy(opt + 16, &nl, 4);
	memcpy(opt + 20, &ni, 2);
	if ((r = write_full(c->fd, &cflags, 4)) || (r = write_full(c->fd, opt, sizeof(opt))))
		return r;
	for (;;) {
		unsigned char rh[20];
		if ((r = read_full(c->fd, rh, sizeof(rh))))
			return r;
		uint64_t rm;
		uint32_t rtype, rlen;
		memcpy(&rm, rh, 8);
		memcpy(&rtype, rh + 12, 4);
		memcpy(&rlen, rh + 16, 4);
		rtype = be32toh(rtype);
		rlen = be32toh(rlen);
		if (be64toh(rm) != NBD_REP_MAGIC || rlen > 65536)
			return -EPROTO;
		unsigned char buf[65536];
		if (rlen && (r = read_full(c->fd, buf, rlen)))
			return r;
		if (rtype == NBD_REP_ACK)
			return c->size ? 0 : -EPROTO;
		if (rtype & NBD_REP_FLAG_ERROR)
			return -ENOENT;
		if (rtype == NBD_REP_INFO && rlen >= 12) {
			uint16_t itype;
			memcpy(&itype, buf, 2);
			if (be16toh(itype) == NBD_INFO_EXPORT) {
				uint64_t sz;
				uint16_t tf;
				memcpy(&sz, buf + 2, 8);
				memcpy(&tf, buf + 10, 2);
				c->size = be64toh(sz);
				c->flags = be16toh(tf);
			}
		}
	}
}

int nbdc_connect(const char *path, unsigned qd, struct nbdc *c)
{
	memset(c, 0, sizeof(*c));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path) || qd == 0 || qd > 1024)
		return -EINVAL;
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	int r = connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : negotiate(c);
	if (!r) {
		c->slots = calloc(qd, sizeof(*c->slots));
		c->nslots = qd;
		if (!c->slots)
			r = -ENOMEM;
	}
	if (r) {
		close(c->fd);
		free(c->slots);
		memset(c, 0, sizeof(*c));
		c->fd = -1;
	}
	return r;
}

int nbdc_connect_wait(const char *path, unsigned qd, int timeout_ms, struct nbdc *c)
{
	int r = -ETIMEDOUT;
	for (int t = 0; t <= timeout_ms; t += 20) {
		r = nbdc_connect(path, qd, c);
		if (r != -ENOENT && r != -ECONNREFUSED && r != -ECONNRESET)
			return r;
		struct timespec ts = {0, 20 * 1000000};
		nanosleep(&ts, NULL);
	}
	return r;
}

void nbdc_close(struct nbdc *c)
{
	if (c->fd >= 0) {
		unsigned char req[28] = {0};
		uint32_t m = htobe32(NBD_REQUEST_MAGIC);
		uint16_t t = htobe16(NBD_CMD_DISC);
		memcpy(req, &m, 4);
		memcpy(req + 6, &t, 2);
		write_full(c->fd, req, sizeof(req));
		close(c->fd);
	}
	free(c->slots);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

int nbdc_submit(struct nbdc *c, uint16_t cmd, uint16_t flags, uint64_t off, uint32_t len, void *buf)
{
	if (c->inflight == c->nslots)
		return -EBUSY;
	unsigned s = 0;
	while (c->slots[s].busy)
		s++;
	unsigned char req[28];
	uint32_t m = htobe32(NBD_REQUEST_MAGIC), l = htobe32(len);
	uint16_t f = htobe16(flags), t = htobe16(cmd);
	uint64_t cookie = htobe64(s), o = htobe64(off);
	memcpy(req, &m, 4);
	memcpy(req + 4, &f, 2);
	memcpy(req + 6, &t, 2);
	memcpy(req + 8, &cookie, 8);
	memcpy(req + 16, &o, 8);
	memcpy(req + 24, &l, 4);
	int r = write_full(c->fd, req, sizeof(req));
	if (!r && cmd == NBD_CMD_WRITE)
		r = write_full(c->fd, buf, len);
	if (r)
		return r;
	c->slots[s] = (struct nbdc_slot){.rbuf = cmd == NBD_CMD_READ ? buf : NULL,
					 .len = cmd == NBD_CMD_READ ? len : 0,
					 .busy = true};
	c->inflight++;
	return (int)s;
}

int nbdc_reap(struct nbdc *c, int *slot, uint32_t *nbd_err)
{
	unsigned char rep[16];
	int r = read_full(c->fd, rep, sizeof(rep));
	if (r)
		return r;
	uint32_t m, e;
	uint64_t cookie;
	memcpy(&m, rep, 4);
	memcpy(&e, rep + 4, 4);
	memcpy(&cookie, rep + 8, 8);
	cookie = be64toh(cookie);
	if (be32toh(m) != NBD_SIMPLE_REPLY_MAGIC || cookie >= c->nslots || !c->slots[cookie].busy)
		return -EPROTO;
	struct nbdc_slot *s = &c->slots[cookie];
	*nbd_err = be32toh(e);
	if (!*nbd_err && s->rbuf && (r = read_full(c->fd, s->rbuf, s->len)))
		return r;
	s->busy = false;
	c->inflight--;
	*slot = (int)cookie;
	return 0;
}

static int sync_io(struct nbdc *c, uint16_t cmd, void *buf, uint32_t len, uint64_t off)
{
	int s = nbdc_submit(c, cmd, 0, off, len, buf);
	if (s < 0)
		return s;
	int got;
	uint32_t err;
	int r = nbdc_reap(c, &got, &err);
	if (r)
		return r;
	return err ? -EIO : 0;
}

int nbdc_pread(struct nbdc *c, void *buf, uint32_t len, uint64_t off)
{
	return sync_io(c, NBD_CMD_READ, buf, len, off);
}

int nbdc_pwrite(struct nbdc *c, const void *buf, uint32_t len, uint64_t off)
{
	return sync_io(c, NBD_CMD_WRITE, (void *)buf, len, off);
}

int nbdc_flush(struct nbdc *c)
{
	return sync_io(c, NBD_CMD_FLUSH, NULL, 0, 0);
}
