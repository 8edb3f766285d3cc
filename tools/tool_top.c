// SPDX-License-Identifier: MIT
// `drvdom top`: live per-domain, per-device counters, refreshed in place
// like xentop. Counters come from each backend's `drvdom-stats` key
// (docs/devices.md); rates are computed from two samples. `--once` prints one
// snapshot (with rates over a short interval) and exits.
#include "hv/hvc.h"
#include "ring/xenbus.h"
#include "tools/tool.h"
#include "xenstore/include/xenstore.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOP_MAX_ROWS 256
#define TOP_MAX_KEYS 16

struct top_row {
	char key[256]; /* backend device path: identifies the row */
	char dom[HV_NAME_MAX + 1], peer[HV_NAME_MAX + 1], dev[32], cls[8];
	int state;
	unsigned nkv;
	char k[TOP_MAX_KEYS][16];
	unsigned long long v[TOP_MAX_KEYS];
};

struct top_sample {
	struct top_row rows[TOP_MAX_ROWS];
	unsigned n;
	double t;
};

static volatile sig_atomic_t top_stop;
static void on_sigint(int sig)
{
	(void)sig;
	top_stop = 1;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *xs_get(struct xs_handle *xs, const char *fmt, const char *a, const char *b)
{
	char p[256];
	unsigned len;
	snprintf(p, sizeof(p), fmt, a, b);
	return xs_read(xs, XBT_NULL, p, &len);
}

static void name_of(const struct hv_domain_info *list, uint32_t n, const char *id, char *out,
		    size_t len)
{
	long d = strtol(id, NULL, 10);
	for (uint32_t i = 0; i < n; i++)
		if (list[i].domid == d) {
			snprintf(out, len, "%.*s", (int)HV_NAME_MAX, list[i].name);
			return;
		}
	snprintf(out, len, "dom%s", id);
}

static void sample(struct hvc *h, struct xs_handle *xs, struct top_sample *s)
{
	static struct hv_domain_info list[1024];
	uint32_t n = 0;
	s->n = 0;
	s->t = mono_s();
	if (hvc_domctl_list(h, list, 1024, &n))
		return;
	static const char *const classes[] = {"vbd", "vif"};
	for (uint32_t d = 0; d < n; d++) {
		if (!(list[d].flags & HV_DOMF_DRIVER))
			continue;
		for (int c = 0; c < 2; c++) {
			char base[128], did[16];
			snprintf(did, sizeof(did), "%u", list[d].domid);
			snprintf(base, sizeof(base), "/local/domain/%u/backend/%s", list[d].domid,
				 classes[c]);
			unsigned ng = 0;
			char **guests = xs_directory(xs, XBT_NULL, base, &ng);
			for (unsigned g = 0; guests && g < ng; g++) {
				char gdir[192];
				snprintf(gdir, sizeof(gdir), "%s/%s", base, guests[g]);
				unsigned nd = 0;
				char **devs = xs_directory(xs, XBT_NULL, gdir, &nd);
				for (unsigned i = 0; devs && i < nd && s->n < TOP_MAX_ROWS; i++) {
					struct top_row *r = &s->rows[s->n++];
					memset(r, 0, sizeof(*r));
					snprintf(r->key, sizeof(r->key), "%s/%s", gdir, devs[i]);
					snprintf(r->dom, sizeof(r->dom), "%.*s", (int)HV_NAME_MAX,
						 list[d].name);
					name_of(list, n, guests[g], r->peer, sizeof(r->peer));
					snprintf(r->cls, sizeof(r->cls), "%s", classes[c]);
					char *v = xs_get(xs, "%s/%s", r->key, "dev");
					snprintf(r->dev, sizeof(r->dev), "%s", v ? v : devs[i]);
					free(v);
					v = xs_get(xs, "%s/%s", r->key, "state");
					r->state = v ? atoi(v) : 0;
					free(v);
					v = xs_get(xs, "%s/%s", r->key, "drvdom-stats");
					for (char *tok = v ? strtok(v, " ") : NULL;
					     tok && r->nkv < TOP_MAX_KEYS;
					     tok = strtok(NULL, " ")) {
						char *eq = strchr(tok, '=');
						if (!eq || eq - tok >= 16)
							continue;
						*eq = 0;
						snprintf(r->k[r->nkv], 16, "%s", tok);
						r->v[r->nkv++] = strtoull(eq + 1, NULL, 10);
					}
					free(v);
				}
				free(devs);
			}
			free(guests);
		}
	}
}

static const struct top_row *find_row(const struct top_sample *s, const char *key)
{
	for (unsigned i = 0; i < s->n; i++)
		if (!strcmp(s->rows[i].key, key))
			return &s->rows[i];
	return NULL;
}

static unsigned long long kv(const struct top_row *r, const char *k, bool *found)
{
	for (unsigned i = 0; r && i < r->nkv; i++)
		if (!strcmp(r->k[i], k)) {
			*found = true;
			return r->v[i];
		}
	*found = false;
	return 0;
}

static void render(const struct top_sample *prev, const struct top_sample *cur, bool clear)
{
	if (clear)
		printf("\033[H\033[2J");
	time_t now = time(NULL);
	char ts[32];
	strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&now));
	printf("drvdom top - %s - run dir %s - %u devices\n\n", ts, tool_run_dir(), cur->n);
	printf("%-12s %-12s %-5s %-6s %-11s %9s %9s  %s\n", "DRIVER", "GUEST", "TYPE", "DEV",
	       "STATE", "REQ/s", "MB/s", "COUNTERS");
	double dt = cur->t - prev->t;
	for (unsigned i = 0; i < cur->n; i++) {
		const struct top_row *r = &cur->rows[i], *p = find_row(prev, r->key);
		bool f1, f2, f3, f4;
		unsigned long long reqs = kv(r, "reqs", &f1), preqs = kv(p, "reqs", &f2);
		unsigned long long bytes = kv(r, "bytes", &f3), pbytes = kv(p, "bytes", &f4);
		char rq[16] = "-", mb[16] = "-";
		if (f1 && f2 && dt > 0 && reqs >= preqs)
			snprintf(rq, sizeof(rq), "%.0f", (reqs - preqs) / dt);
		if (f3 && f4 && dt > 0 && bytes >= pbytes)
			snprintf(mb, sizeof(mb), "%.1f", (bytes - pbytes) / dt / 1e6);
		printf("%-12s %-12s %-5s %-6s %-11s %9s %9s  ", r->dom, r->peer, r->cls, r->dev,
		       xenbus_st_name(r->state), rq, mb);
		for (unsigned k = 0; k < r->nkv; k++)
			printf("%s%s=%llu", k ? " " : "", r->k[k], r->v[k]);
		printf("%s\n", r->nkv ? "" : "(no counters yet)");
	}
	fflush(stdout);
}

int tool_cmd_top(int argc, char **argv)
{
	bool once = argc > 1 && !strcmp(argv[1], "--once");
	double delay = 1.0;
	if (argc > 2 && !strcmp(argv[1], "-d"))
		delay = atof(argv[2]);
	if (delay < 0.1)
		delay = 0.1;
	struct hvc *h;
	if (tool_connect_hv(&h))
		return 1;
	struct xs_handle *xs = tool_connect_xs();
	if (!xs) {
		hvc_close(h);
		return 1;
	}
	static struct top_sample a, b;
	struct top_sample *prev = &a, *cur = &b;
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	sample(h, xs, prev);
	while (!top_stop) {
		double d = once ? 0.5 : delay;
		struct timespec ts = {(time_t)d, (long)((d - (time_t)d) * 1e9)};
		nanosleep(&ts, NULL);
		sample(h, xs, cur);
		render(prev, cur, !once && isatty(STDOUT_FILENO));
		if (once)
			break;
		struct top_sample *t = prev;
		prev = cur;
		cur = t;
	}
	xs_close(xs);
	hvc_close(h);
	return 0;
}
