// SPDX-License-Identifier: MIT
// Parser for xl.cfg-style domain configuration files (the syntax of Xen's
// xl: `key = value` lines, values are "strings", 'strings', integers or
// [ lists, of, strings ], `#` comments) and for the device specs inside them
// (xl's disk and vif syntax). Used by the drvdom toolstack only.
#ifndef DRVDOM_TOOLS_XLCFG_H
#define DRVDOM_TOOLS_XLCFG_H

#include <stdbool.h>
#include <sched.h> /* cpu_set_t */
#include <stddef.h>

enum xlcfg_type { XLCFG_STRING, XLCFG_INT, XLCFG_LIST };

struct xlcfg_value {
	enum xlcfg_type type;
	char *str;     /* XLCFG_STRING; also the text of an XLCFG_INT */
	long long num; /* XLCFG_INT */
	char **items;  /* XLCFG_LIST: strings */
	size_t nitems;
};

struct xlcfg_entry {
	char *key;
	struct xlcfg_value val;
	int line;
};

struct xlcfg {
	struct xlcfg_entry *entries;
	size_t n;
};

/* Parse text (NUL-terminated) into cfg. On a syntax error returns -EINVAL
 * and writes "line N: what" into err. A key given twice keeps the last
 * value, as xl does. */
int xlcfg_parse(const char *text, struct xlcfg *cfg, char *err, size_t errlen);

/* Read and parse a file. -errno on I/O errors. */
int xlcfg_parse_file(const char *path, struct xlcfg *cfg, char *err, size_t errlen);

/* Apply one `key=value` override from the command line (value in xl.cfg
 * syntax, or a bare word taken as a string). */
int xlcfg_set(struct xlcfg *cfg, const char *assignment, char *err, size_t errlen);

const struct xlcfg_entry *xlcfg_get(const struct xlcfg *cfg, const char *key);
void xlcfg_free(struct xlcfg *cfg);

/* The cpus = key (xl.cfg's vCPU hard affinity, here the CPUs a domain's
 * processes may run on): "all", or a comma-separated list of CPU numbers
 * N, ranges N-M and exclusions ^N, e.g. "1", "0-3,^2". Fills set (a
 * cpu_set_t) and returns 0, or -EINVAL with why in err. An empty result
 * is an error. */
int xlcfg_cpus_parse(const char *text, cpu_set_t *set, char *err, size_t errlen);

/* A device spec: comma-separated `key=value` pairs and positional words. */
struct xlcfg_kv {
	char *key; /* NULL for a positional word */
	char *val;
};
struct xlcfg_spec {
	struct xlcfg_kv *kv;
	size_t n;
};

/* Split "a=b, c=d, word" at commas (whitespace around items ignored). Unlike
 * xl, `target=` may come first (as in drvdom's examples), so a target path
 * cannot contain a comma. */
int xlcfg_spec_parse(const char *text, struct xlcfg_spec *spec);
const char *xlcfg_spec_get(const struct xlcfg_spec *spec, const char *key);
void xlcfg_spec_free(struct xlcfg_spec *spec);

/* xl disk spec → fields. Positional order: target, format, vdev, access. */
struct xlcfg_disk {
	char target[4096];
	char format[16]; /* "raw" */
	char vdev[32];	 /* xvda, xvdb, … */
	bool readonly;	 /* access=ro|r */
	char backend[64];
	int devid; /* virtual device number derived from vdev */
};
int xlcfg_disk_parse(const char *text, struct xlcfg_disk *disk, char *err, size_t errlen);

/* Xen's virtual device number for a vdev name (xvda → 51712, xvdq →
 * (202<<8)|(16<<4) style extended numbers past xvdp), or -EINVAL. */
int xlcfg_vdev_to_devid(const char *vdev);

#endif
