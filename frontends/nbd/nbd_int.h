// SPDX-License-Identifier: MIT
// Internal declarations shared by the NBD module's files: the limits that
// bound a client's use of server memory. Nothing outside frontends/nbd/
// includes this.
#ifndef DRVDOM_FRONTENDS_NBD_NBD_INT_H
#define DRVDOM_FRONTENDS_NBD_NBD_INT_H

/* nbd_server.c */
#define NBD_MAX_CLIENTS 256u
#define NBD_CONN_MAX_REQS 128u			 /* requests held per client (backend + replies) */
#define NBD_CONN_MAX_BYTES (64u << 20)		 /* data buffers held per client */
#define NBD_IBUF_SIZE (128u << 10)		 /* per-client input staging buffer */
#define NBD_OPT_MAX_LEN (NBD_MAX_STRING + 1024u) /* largest option we read */
#define NBD_READS_PER_WAKEUP 16			 /* fairness between clients */
#define NBD_BUF_MIN_SHIFT 12			 /* data buffers: 4 KiB ... */
#define NBD_BUF_CLASSES 19			 /* ... to 1 GiB, the largest max_payload */
#define NBD_BUF_CACHE_BYTES (32u << 20)		 /* recycled buffers kept per server */

#endif
