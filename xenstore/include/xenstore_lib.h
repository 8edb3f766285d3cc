// SPDX-License-Identifier: MIT
// drvdom's libxenstore-compatible client library: the helpers Xen's
// xenstore_lib.h declares (permissions, socket paths, write loop), with the
// same names and types, so code written for libxenstore builds unchanged.
// The wire format itself comes from Xen's <xen/io/xs_wire.h> (libxen-dev).
#ifndef XENSTORE_LIB_H
#define XENSTORE_LIB_H

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

/* A (domain, permissions) pair; the first of a node's list is its owner and
 * the permissions of every domain not listed. */
struct xs_permissions {
	unsigned int id;
	unsigned int perms; /* bitmask of XS_PERM_* */
#define XS_PERM_NONE 0x00
#define XS_PERM_READ 0x01
#define XS_PERM_WRITE 0x02
	/* Internal use (Xen's values, kept for compatibility). */
#define XS_PERM_ENOENT_OK 0x04
#define XS_PERM_OWNER 0x08
#define XS_PERM_IGNORE 0x10
};

/* Room for an unsigned integer of type x in decimal, with its NUL. */
#define MAX_STRLEN(x) ((sizeof(x) * CHAR_BIT + CHAR_BIT - 1) / 10 * 3 + 2)

/* The daemon's run directory ($XENSTORED_RUNDIR, else /var/run/xenstored)
 * and socket ($XENSTORED_PATH, else RUNDIR/socket). Never fail. */
const char *xs_daemon_rundir(void);
const char *xs_daemon_socket(void);
const char *xs_daemon_socket_ro(void);

/* Write all len bytes to fd, retrying short writes; false with errno set. */
bool xs_write_all(int fd, const void *data, unsigned int len);

/* Parse num NUL-separated permission strings ("r0", "b5", ...) from
 * strings into perms; false (errno EINVAL) on a malformed one. */
bool xs_strings_to_perms(struct xs_permissions *perms, unsigned int num, const char *strings);

/* Format one permission as a string ("w3") into buffer; false if it does
 * not fit or the permission bits are invalid. */
bool xs_perm_to_string(const struct xs_permissions *perm, char *buffer, size_t buf_len);

/* Number of NUL-terminated strings in a buffer of len bytes. */
unsigned int xs_count_strings(const char *strings, unsigned int len);

#endif
