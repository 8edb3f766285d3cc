// SPDX-License-Identifier: MIT
// drvdom's extension keys of the xenbus handshake (docs/recovery.md, "Fast
// reconnect" and "Failover (network)"), shared by the frontends and the
// backends that speak it: a backend instance's name (drvdom-instance), the
// frontend's echo of the instance its rings are for
// (drvdom-backend-instance: "I", or "!D" after instance D died), and the
// combined keys (drvdom-rings, drvdom-connect) that say what many single
// keys say in one "name=value name=v,v,v" string. Every string here comes
// from another domain: the functions only read it, never trust it.
#ifndef DRVDOM_COMMON_XBKEY_H
#define DRVDOM_COMMON_XBKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An instance name: 1..XBKEY_INSTANCE_LEN - 1 lowercase hex digits. */
#define XBKEY_INSTANCE_LEN 24u

/* Name this instance: the monotonic clock now, in hex (no two instances of
 * one domain take over at the same nanosecond). Call once, when the
 * instance becomes the domain (after its first DOMAIN_INFO). */
void xbkey_instance_make(char out[XBKEY_INSTANCE_LEN]);

/* s is a well-formed instance name (not NULL, hex, short enough). */
bool xbkey_instance_valid(const char *s);

/* Copy instance name s (read from another domain) into out if it is
 * well-formed (xbkey_instance_valid); true if so, out untouched if not. */
bool xbkey_instance_copy(const char *s, char out[XBKEY_INSTANCE_LEN]);

/* May backend instance `self` take the rings a frontend published, given
 * the frontend's drvdom-backend-instance `echo`? NULL (no key: a frontend
 * without the extension) yes; "self" yes; "!D" with D not self yes;
 * anything else (rings for another instance, or junk) no. */
bool xbkey_echo_allows(const char *echo, const char *self);

/* One name of a combined key. The caller sets name, max (each value at
 * most this) and max_vals (1: a scalar; more: a comma-separated list of 1
 * to max_vals values), and vals (room for max_vals values); xbkey_parse
 * fills vals and nvals. */
struct xbkey_field {
	const char *name;
	uint64_t max;
	unsigned max_vals;
	uint64_t *vals;
	unsigned nvals;
};

/* Parse a combined key "name=v[,v...] name=v ..." (single spaces, no
 * leading or trailing space; names of [a-z0-9-]; values decimal digits
 * only). Every one of the nf (at most 32) fields must appear exactly once
 * within its bounds; names not in f are skipped if well-formed (a newer
 * peer). true if so; false otherwise, and then the caller reads the single
 * keys instead. Does not block. */
bool xbkey_parse(const char *s, struct xbkey_field *f, unsigned nf);

/* Write the combined key xbkey_parse reads: "name=v[,v...] name=v ...",
 * the nf fields in the order given, each with its nvals (at least 1)
 * values from vals, in decimal; max and max_vals are not looked at. For
 * the side that publishes a key; 0, or -EINVAL (nf 0 or a field without a
 * value) or -ENOSPC (it does not fit in size bytes with its NUL: buf then
 * holds a truncated string that must not be published). Does not block. */
int xbkey_format(char *buf, size_t size, const struct xbkey_field *f, unsigned nf);

/* A field of one value v for xbkey_format (v lives as long as the block
 * the field is made in). */
/* clang-format off */
#define XBKEY_SCALAR(n, v) {.name = (n), .vals = &(uint64_t){(v)}, .nvals = 1}
/* clang-format on */

#endif
