// SPDX-License-Identifier: MIT
// drvdom's xenbus extension keys (common/xbkey.h): instance names, the
// frontend's echo, and the parser and writer of the combined "name=value"
// keys.
#include "common/xbkey.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void xbkey_instance_make(char out[XBKEY_INSTANCE_LEN])
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	snprintf(out, XBKEY_INSTANCE_LEN, "%llx",
		 (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec);
}

bool xbkey_instance_valid(const char *s)
{
	if (!s || !s[0])
		return false;
	size_t n = 0;
	for (; s[n]; n++)
		if (n + 1 >= XBKEY_INSTANCE_LEN ||
		    !((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return true;
}

bool xbkey_instance_copy(const char *s, char out[XBKEY_INSTANCE_LEN])
{
	if (!xbkey_instance_valid(s))
		return false;
	memcpy(out, s, strlen(s) + 1);
	return true;
}

bool xbkey_echo_allows(const char *echo, const char *self)
{
	if (!echo)
		return true;
	if (!strcmp(echo, self))
		return true;
	return echo[0] == '!' && xbkey_instance_valid(echo + 1) && strcmp(echo + 1, self) != 0;
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

bool xbkey_parse(const char *s, struct xbkey_field *f, unsigned nf)
{
	if (!s || !*s || nf == 0 || nf > 32)
		return false;
	uint32_t seen = 0;
	for (unsigned i = 0; i < nf; i++)
		f[i].nvals = 0;
	const char *p = s;
	for (;;) {
		const char *name = p;
		while (name_char(*p))
			p++;
		if (*p != '=' || p == name)
			return false;
		size_t nl = (size_t)(p - name);
		p++;
		unsigned i = 0;
		while (i < nf && (strlen(f[i].name) != nl || memcmp(f[i].name, name, nl)))
			i++;
		unsigned n = 0;
		for (;;) {
			if (*p < '0' || *p > '9')
				return false;
			uint64_t v = 0;
			for (; *p >= '0' && *p <= '9'; p++) {
				unsigned d = (unsigned)(*p - '0');
				if (v > (UINT64_MAX - d) / 10)
					return false;
				v = v * 10 + d;
			}
			if (i < nf) {
				if (v > f[i].max || n >= f[i].max_vals)
					return false;
				f[i].vals[n] = v;
			}
			n++;
			if (*p != ',')
				break;
			p++;
		}
		if (i < nf) {
			if (seen & (1u << i))
				return false;
			seen |= 1u << i;
			f[i].nvals = n;
		}
		if (!*p)
			break;
		if (*p != ' ')
			return false;
		p++;
	}
	return seen == (nf == 32 ? UINT32_MAX : (1u << nf) - 1);
}

int xbkey_format(char *buf, size_t size, const struct xbkey_field *f, unsigned nf)
{
	if (!size || nf == 0)
		return -EINVAL;
	buf[0] = 0;
	size_t n = 0;
	for (unsigned i = 0; i < nf; i++) {
		if (f[i].nvals == 0)
			return -EINVAL;
		for (unsigned k = 0; k < f[i].nvals; k++) {
			int w;
			if (k)
				w = snprintf(buf + n, size - n, ",%" PRIu64, f[i].vals[k]);
			else
				w = snprintf(buf + n, size - n, "%s%s=%" PRIu64, i ? " " : "",
					     f[i].name, f[i].vals[k]);
			if (w < 0 || (size_t)w >= size - n)
				return -ENOSPC;
			n += (size_t)w;
		}
	}
	return 0;
}
