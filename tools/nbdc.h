// SPDX-License-Identifier: MIT
// A small NBD client (fixed newstyle, NBD_OPT_GO, simple replies) for the
// toolstack's demo and benchmarks: it drives a guest's disk the way any NBD
// client would, with requests pipelined up to a queue depth. Blocking I/O on
// one Unix socket; one thread per connection.
#ifndef DRVDOM_TOOLS_NBDC_H
#define DRVDOM_TOOLS_NBDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nbdc {
	int fd;
	uint64_t size;
	uint16_t flags; /* NBD transmission flags */
	/* Outstanding requests: cookie → read buffer. */
	struct nbdc_slot {
		void *rbuf;
		uint32_t len;
		bool busy;
	} * slots;
	unsigned nslots, inflight;
};

/* Connect to a Unix socket and negotiate the default export. qd: most
 * requests in flight. 0 or -errno (-EPROTO: not an NBD server we speak). */
int nbdc_connect(const char *path, unsigned qd, struct nbdc *c);
/* Wait up to timeout_ms for the socket to accept and negotiate. */
int nbdc_connect_wait(const char *path, unsigned qd, int timeout_ms, struct nbdc *c);
void nbdc_close(struct nbdc *c);

/* Send one request (blocks while the socket is full). For a write, buf's
 * len bytes are sent now; for a read, buf receives the data at reap time.
 * cmd is NBD_CMD_*; returns the slot used (its cookie) or -errno; -EBUSY
 * when qd requests are already in flight. */
int nbdc_submit(struct nbdc *c, uint16_t cmd, uint16_t flags, uint64_t off, uint32_t len,
		void *buf);
/* Wait for one reply: *slot gets its cookie, *nbd_err the server's error
 * (0 = success). Returns 0 or -errno (transport). */
int nbdc_reap(struct nbdc *c, int *slot, uint32_t *nbd_err);

/* Synchronous helpers: 0, -EIO for an NBD error, or -errno. */
int nbdc_pread(struct nbdc *c, void *buf, uint32_t len, uint64_t off);
int nbdc_pwrite(struct nbdc *c, const void *buf, uint32_t len, uint64_t off);
int nbdc_flush(struct nbdc *c);

#endif
