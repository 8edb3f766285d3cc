// SPDX-License-Identifier: MIT
// See xlcfg.h. A small recursive-descent parser for xl.cfg syntax; it never
// trusts its input (config files come from users) and reports the line of
// the first error.
#include "tools/xlcfg.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	const char *p;
	int line;
	char *err;
	size_t errlen;
};

static int perr(struct parser *ps, const char *what)
{
	snprintf(ps->err, ps->errlen, "line %d: %s", ps->line, what);
	return -EINVAL;
}

/* Skip blanks and comments; newlines and ';' too when nl is true. */
static void skip(struct parser *ps, bool nl)
{
	for (;;) {
		char c = *ps->p;
		if (c == '#') {
			while (*ps->p && *ps->p != '\n')
				ps->p++;
		} else if (c == '\n' && nl) {
			ps->line++;
			ps->p++;
		} else if (c == ' ' || c == '\t' || c == '\r' || (nl && c == ';')) {
			ps->p++;
		} else {
			return;
		}
	}
}

static int parse_string(struct parser *ps, char **out)
{
	char q = *ps->p++;
	const char *start = ps->p;
	while (*ps->p && *ps->p != q && *ps->p != '\n')
		ps->p++;
	if (*ps->p != q)
		return perr(ps, "unterminated string");
	size_t len = (size_t)(ps->p - start);
	ps->p++;
	*out = strndup(start, len);
	return *out ? 0 : -ENOMEM;
}

static void value_free(struct xlcfg_value *v)
{
	free(v->str);
	for (size_t i = 0; i < v->nitems; i++)
		free(v->items[i]);
	free(v->items);
	memset(v, 0, sizeof(*v));
}

static int parse_value(struct parser *ps, struct xlcfg_value *v)
{
	memset(v, 0, sizeof(*v));
	char c = *ps->p;
	if (c == '"' || c == '\'') {
		v->type = XLCFG_STRING;
		return parse_string(ps, &v->str);
	}
	if (c == '[') {
		v->type = XLCFG_LIST;
		ps->p++;
		for (;;) {
			skip(ps, true);
			if (*ps->p == ']') {
				ps->p++;
				return 0;
			}
			if (*ps->p != '"' && *ps->p != '\'') {
				value_free(v);
				return perr(ps, "list items must be quoted strings");
			}
			char *item;
			int r = parse_string(ps, &item);
			if (r) {
				value_free(v);
				return r;
			}
			char **n = realloc(v->items, (v->nitems + 1) * sizeof(*n));
			if (!n) {
				free(item);
				value_free(v);
				return -ENOMEM;
			}
			v->items = n;
			v->items[v->nitems++] = item;
			skip(ps, true);
			if (*ps->p == ',')
				ps->p++;
			else if (*ps->p != ']') {
				value_free(v);
				return perr(ps, "expected ',' or ']' in list");
			}
		}
	}
	if (c == '-' || isdigit((unsigned char)c)) {
		const char *start = ps->p;
		errno = 0;
		char *end;
		long long num = strtoll(ps->p, &end, 0);
		if (errno || end == ps->p)
			return perr(ps, "bad number");
		ps->p = end;
		v->type = XLCFG_INT;
		v->num = num;
		v->str = strndup(start, (size_t)(end - start));
		return v->str ? 0 : -ENOMEM;
	}
	return perr(ps, "expected a string, a number or a list");
}

static int cfg_put(struct xlcfg *cfg, char *key, struct xlcfg_value *val, int line)
{
	for (size_t i = 0; i < cfg->n; i++) {
		if (!strcmp(cfg->entries[i].key, key)) {
			free(key);
			value_free(&cfg->entries[i].val);
			cfg->entries[i].val = *val;
			cfg->entries[i].line = line;
			return 0;
		}
	}
	struct xlcfg_entry *n = realloc(cfg->entries, (cfg->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	cfg->entries = n;
	cfg->entries[cfg->n++] = (struct xlcfg_entry){.key = key, .val = *val, .line = line};
	return 0;
}

static int parse_assignment(struct parser *ps, struct xlcfg *cfg)
{
	const char *start = ps->p;
	if (!isalpha((unsigned char)*ps->p) && *ps->p != '_')
		return perr(ps, "expected a key");
	while (isalnum((unsigned char)*ps->p) || *ps->p == '_')
		ps->p++;
	char *key = strndup(start, (size_t)(ps->p - start));
	if (!key)
		return -ENOMEM;
	skip(ps, false);
	if (*ps->p != '=') {
		free(key);
		return perr(ps, "expected '='");
	}
	ps->p++;
	skip(ps, false);
	struct xlcfg_value v;
	int line = ps->line;
	int r = parse_value(ps, &v);
	if (r) {
		free(key);
		return r;
	}
	skip(ps, false);
	if (*ps->p && *ps->p != '\n' && *ps->p != ';') {
		free(key);
		value_free(&v);
		return perr(ps, "unexpected text after value");
	}
	r = cfg_put(cfg, key, &v, line);
	if (r) {
		free(key);
		value_free(&v);
	}
	return r;
}

int xlcfg_parse(const char *text, struct xlcfg *cfg, char *err, size_t errlen)
{
	struct parser ps = {.p = text, .line = 1, .err = err, .errlen = errlen};
	memset(cfg, 0, sizeof(*cfg));
	for (;;) {
		skip(&ps, true);
		if (!*ps.p)
			return 0;
		int r = parse_assignment(&ps, cfg);
		if (r) {
			xlcfg_free(cfg);
			return r;
		}
	}
}

int xlcfg_parse_file(const char *path, struct xlcfg *cfg, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	char *buf = NULL;
	size_t cap = 0, len = 0;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			if (cap > (1u << 20)) {
				free(buf);
				fclose(f);
				snprintf(err, errlen, "%s: file too large", path);
				return -EFBIG;
			}
			char *n = realloc(buf, cap);
			if (!n) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = n;
		}
		size_t got = fread(buf + len, 1, 4096, f);
		len += got;
		if (got < 4096)
			break;
	}
	fclose(f);
	buf[len] = 0;
	if (strlen(buf) != len) {
		free(buf);
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		return -EINVAL;
	}
	char inner[256];
	int r = xlcfg_parse(buf, cfg, inner, sizeof(inner));
	free(buf);
	if (r)
		snprintf(err, errlen, "%s: %s", path, inner);
	return r;
}

int xlcfg_set(struct xlcfg *cfg, const char *assignment, char *err, size_t errlen)
{
	const char *eq = strchr(assignment, '=');
	if (!eq || eq == assignment) {
		snprintf(err, errlen, "'%s': expected key=value", assignment);
		return -EINVAL;
	}
	const char *v = eq + 1;
	while (*v == ' ')
		v++;
	/* A bare word is a string, as on xl's command line. */
	bool structured =
	    *v == '"' || *v == '\'' || *v == '[' || *v == '-' || isdigit((unsigned char)*v);
	size_t klen = (size_t)(eq - assignment);
	while (klen && assignment[klen - 1] == ' ')
		klen--;
	char *text;
	if (structured)
		text = strdup(assignment);
	else if (asprintf(&text, "%.*s = \"%s\"", (int)klen, assignment, v) < 0)
		text = NULL;
	if (!text)
		return -ENOMEM;
	if (!structured && strchr(v, '"')) {
		free(text);
		snprintf(err, errlen, "'%s': quote the value", assignment);
		return -EINVAL;
	}
	struct parser ps = {.p = text, .line = 1, .err = err, .errlen = errlen};
	skip(&ps, false);
	int r = parse_assignment(&ps, cfg);
	if (!r && *ps.p) {
		snprintf(err, errlen, "'%s': unexpected text", assignment);
		r = -EINVAL;
	}
	free(text);
	return r;
}

const struct xlcfg_entry *xlcfg_get(const struct xlcfg *cfg, const char *key)
{
	for (size_t i = 0; i < cfg->n; i++)
		if (!strcmp(cfg->entries[i].key, key))
			return &cfg->entries[i];
	return NULL;
}

void xlcfg_free(struct xlcfg *cfg)
{
	for (size_t i = 0; i < cfg->n; i++) {
		free(cfg->entries[i].key);
		value_free(&cfg->entries[i].val);
	}
	free(cfg->entries);
	memset(cfg, 0, sizeof(*cfg));
}

static char *trim_dup(const char *s, size_t len)
{
	while (len && isspace((unsigned char)*s))
		s++, len--;
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	return strndup(s, len);
}

int xlcfg_spec_parse(const char *text, struct xlcfg_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	const char *p = text;
	while (*p) {
		while (isspace((unsigned char)*p))
			p++;
		const char *start = p;
		const char *eq = NULL;
		const char *q = p;
		while (*q && *q != ',') {
			if (*q == '=' && !eq)
				eq = q;
			q++;
		}
		struct xlcfg_kv kv = {0};
		if (eq) {
			kv.key = trim_dup(start, (size_t)(eq - start));
			kv.val = trim_dup(eq + 1, (size_t)(q - eq - 1));
		} else {
			kv.val = trim_dup(start, (size_t)(q - start));
		}
		if ((eq && !kv.key) || !kv.val) {
			free(kv.key);
			free(kv.val);
			xlcfg_spec_free(spec);
			return -ENOMEM;
		}
		if (!kv.key && !*kv.val) { /* empty item ("a,,b" or trailing ',') */
			free(kv.val);
		} else {
			struct xlcfg_kv *n = realloc(spec->kv, (spec->n + 1) * sizeof(*n));
			if (!n) {
				free(kv.key);
				free(kv.val);
				xlcfg_spec_free(spec);
				return -ENOMEM;
			}
			spec->kv = n;
			spec->kv[spec->n++] = kv;
		}
		p = *q ? q + 1 : q;
	}
	return 0;
}

const char *xlcfg_spec_get(const struct xlcfg_spec *spec, const char *key)
{
	const char *v = NULL;
	for (size_t i = 0; i < spec->n; i++)
		if (spec->kv[i].key && !strcmp(spec->kv[i].key, key))
			v = spec->kv[i].val;
	return v;
}

void xlcfg_spec_free(struct xlcfg_spec *spec)
{
	for (size_t i = 0; i < spec->n; i++) {
		free(spec->kv[i].key);
		free(spec->kv[i].val);
	}
	free(spec->kv);
	memset(spec, 0, sizeof(*spec));
}

int xlcfg_vdev_to_devid(const char *vdev)
{
	/* xen-vbd-interface: xvd<letters>, letters base 26 ("a".."z", "aa"…). */
	if (strncmp(vdev, "xvd", 3) || !vdev[3])
		return -EINVAL;
	int disk = 0;
	const char *p = vdev + 3;
	for (; *p; p++) {
		if (*p < 'a' || *p > 'z')
			return -EINVAL;
		disk = disk * 26 + (*p - 'a' + 1);
		if (disk > 26 * 26 + 26)
			return -EINVAL;
	}
	disk -= 1;
	if (disk < 16)
		return (202 << 8) | (disk << 4);
	return (1 << 28) | (disk << 8);
}

static int copy_field(char *dst, size_t cap, const char *src, const char *what, char *err,
		      size_t errlen)
{
	if (strlen(src) >= cap) {
		snprintf(err, errlen, "%s too long: '%s'", what, src);
		return -EINVAL;
	}
	strcpy(dst, src);
	return 0;
}

int xlcfg_disk_parse(const char *text, struct xlcfg_disk *disk, char *err, size_t errlen)
{
	static const char *const positional[] = {"target", "format", "vdev", "access"};
	static const char *const known[] = {"target",  "format",  "vdev",  "access",
					    "backend", "devtype", "script"};
	struct xlcfg_spec spec;
	memset(disk, 0, sizeof(*disk));
	strcpy(disk->format, "raw");
	int r = xlcfg_spec_parse(text, &spec);
	if (r)
		return r;
	const char *vals[4] = {0};
	size_t npos = 0;
	for (size_t i = 0; i < spec.n && !r; i++) {
		const struct xlcfg_kv *kv = &spec.kv[i];
		if (!kv->key) {
			if (npos >= 4) {
				snprintf(err, errlen, "disk '%s': too many positional fields",
					 text);
				r = -EINVAL;
			} else {
				vals[npos++] = kv->val;
			}
			continue;
		}
		size_t k;
		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (!strcmp(kv->key, known[k]))
				break;
		if (k == sizeof(known) / sizeof(known[0])) {
			snprintf(err, errlen, "disk '%s': unknown key '%s'", text, kv->key);
			r = -EINVAL;
		}
	}
	for (size_t i = 0; i < 4 && !r; i++) {
		const char *v = xlcfg_spec_get(&spec, positional[i]);
		if (!v)
			v = vals[i];
		vals[i] = v;
	}
	if (!r && (!vals[0] || !*vals[0])) {
		snprintf(err, errlen, "disk '%s': missing target", text);
		r = -EINVAL;
	}
	if (!r)
		r = copy_field(disk->target, sizeof(disk->target), vals[0], "target", err, errlen);
	if (!r && vals[1]) {
		if (strcmp(vals[1], "raw")) {
			snprintf(err, errlen, "disk '%s': format '%s' not supported (raw only)",
				 text, vals[1]);
			r = -EINVAL;
		}
	}
	if (!r && !vals[2]) {
		snprintf(err, errlen, "disk '%s': missing vdev", text);
		r = -EINVAL;
	}
	if (!r)
		r = copy_field(disk->vdev, sizeof(disk->vdev), vals[2], "vdev", err, errlen);
	if (!r) {
		disk->devid = xlcfg_vdev_to_devid(disk->vdev);
		if (disk->devid < 0) {
			snprintf(err, errlen,
				 "disk '%s': bad vdev name '%s' (expected xvda, xvdb, …)", text,
				 disk->vdev);
			r = -EINVAL;
		}
	}
	if (!r && vals[3]) {
		const char *a = vals[3];
		if (!strcmp(a, "ro") || !strcmp(a, "r"))
			disk->readonly = true;
		else if (strcmp(a, "rw") && strcmp(a, "w")) {
			snprintf(err, errlen, "disk '%s': bad access '%s' (ro or rw)", text, a);
			r = -EINVAL;
		}
	}
	const char *be = r ? NULL : xlcfg_spec_get(&spec, "backend");
	if (be)
		r = copy_field(disk->backend, sizeof(disk->backend), be, "backend", err, errlen);
	const char *dt = r ? NULL : xlcfg_spec_get(&spec, "devtype");
	if (dt && strcmp(dt, "disk")) {
		snprintf(err, errlen, "disk '%s': devtype '%s' not supported", text, dt);
		r = -EINVAL;
	}
	xlcfg_spec_free(&spec);
	return r;
}

/* One CPU number at *p (decimal, below CPU_SETSIZE). */
static int cpus_num(const char **p, unsigned *out)
{
	if (!isdigit((unsigned char)**p))
		return -EINVAL;
	unsigned long v = 0;
	while (isdigit((unsigned char)**p)) {
		v = v * 10 + (unsigned long)(**p - '0');
		if (v >= CPU_SETSIZE)
			return -EINVAL;
		(*p)++;
	}
	*out = (unsigned)v;
	return 0;
}

int xlcfg_cpus_parse(const char *text, cpu_set_t *set, char *err, size_t errlen)
{
	CPU_ZERO(set);
	const char *p = text;
	while (*p == ' ')
		p++;
	if (!strcmp(p, "all")) {
		for (unsigned i = 0; i < CPU_SETSIZE; i++)
			CPU_SET(i, set);
		return 0;
	}
	for (;;) {
		while (*p == ' ')
			p++;
		bool neg = *p == '^';
		unsigned a, b;
		if (neg)
			p++;
		if (cpus_num(&p, &a))
			goto bad;
		b = a;
		if (*p == '-') {
			p++;
			if (cpus_num(&p, &b) || b < a)
				goto bad;
		}
		for (unsigned i = a; i <= b; i++) {
			if (neg)
				CPU_CLR(i, set);
			else
				CPU_SET(i, set);
		}
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		if (*p++ != ',')
			goto bad;
	}
	if (CPU_COUNT(set) == 0) {
		snprintf(err, errlen, "cpus '%s': no CPU left", text);
		return -EINVAL;
	}
	return 0;
bad:
	snprintf(err, errlen, "cpus '%s': expected all, or CPU numbers and ranges (1, 0-3,^2)",
		 text);
	return -EINVAL;
}
