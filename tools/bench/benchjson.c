// SPDX-License-Identifier: MIT
// Benchmark records, their table and their JSON file (see benchjson.h).
#include "tools/bench/benchjson.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void bench_report_init(struct bench_report *r, const char *title)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->title, sizeof(r->title), "%s", title);
}

int bench_report_add(struct bench_report *r, const char *name, const char *unit, double value,
		     const char *baseline, double baseline_value, enum bench_better better,
		     double target)
{
	if (r->nr == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 32;
		struct bench_rec *n = realloc(r->recs, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		r->recs = n;
		r->cap = cap;
	}
	struct bench_rec *e = &r->recs[r->nr++];
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", name);
	snprintf(e->unit, sizeof(e->unit), "%s", unit);
	e->value = value;
	e->ratio = NAN;
	e->target = target;
	if (baseline) {
		snprintf(e->baseline, sizeof(e->baseline), "%s", baseline);
		e->baseline_value = baseline_value;
		if (value > 0 && baseline_value > 0)
			e->ratio = better == BENCH_HIGHER_BETTER ? value / baseline_value
								 : baseline_value / value;
	}
	return 0;
}

/* Numbers readable at a glance: 3 significant digits, SI suffix. */
static void fmt_num(char *buf, size_t len, double v)
{
	static const char *const sfx[] = {"", "k", "M", "G"};
	int i = 0;
	if (isnan(v)) {
		snprintf(buf, len, "-");
		return;
	}
	double a = fabs(v);
	while (a >= 1000 && i < 3) {
		a /= 1000;
		v /= 1000;
		i++;
	}
	if (a >= 100 || a == 0)
		snprintf(buf, len, "%.0f%s", v, sfx[i]);
	else if (a >= 10)
		snprintf(buf, len, "%.1f%s", v, sfx[i]);
	else if (a >= 0.01)
		snprintf(buf, len, "%.2f%s", v, sfx[i]);
	else
		snprintf(buf, len, "%.2g%s", v, sfx[i]);
}

void bench_report_print(const struct bench_report *r, FILE *out)
{
	fprintf(out, "\n%s\n", r->title);
	fprintf(out, "%-36s %9s %-10s %-26s %9s %8s  %s\n", "case", "value", "unit", "baseline",
		"base", "ratio", "target");
	for (size_t i = 0; i < r->nr; i++) {
		const struct bench_rec *e = &r->recs[i];
		char v[32], b[32], ratio[32], target[48] = "";
		fmt_num(v, sizeof(v), e->value);
		if (e->baseline[0])
			fmt_num(b, sizeof(b), e->baseline_value);
		else
			snprintf(b, sizeof(b), "%s", "");
		if (isnan(e->ratio))
			snprintf(ratio, sizeof(ratio), "%s", e->baseline[0] ? "-" : "");
		else
			snprintf(ratio, sizeof(ratio), "%.2fx", e->ratio);
		if (e->target > 0)
			snprintf(target, sizeof(target), ">= %.3gx %s", e->target,
				 !isnan(e->ratio) && e->ratio >= e->target ? "pass" : "MISS");
		fprintf(out, "%-36s %9s %-10s %-26s %9s %8s  %s\n", e->name, v, e->unit,
			e->baseline, b, ratio, target);
	}
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

int bench_report_write_json(const struct bench_report *r, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fputs("{\"benchmark\": ", f);
	json_str(f, r->title);
	fputs(", \"records\": [", f);
	for (size_t i = 0; i < r->nr; i++) {
		const struct bench_rec *e = &r->recs[i];
		fputs(i ? ",\n  {" : "\n  {", f);
		fputs("\"name\": ", f);
		json_str(f, e->name);
		fputs(", \"unit\": ", f);
		json_str(f, e->unit);
		fputs(", \"value\": ", f);
		json_num(f, e->value);
		if (e->baseline[0]) {
			fputs(", \"baseline\": ", f);
			json_str(f, e->baseline);
			fputs(", \"baseline_value\": ", f);
			json_num(f, e->baseline_value);
			fputs(", \"ratio\": ", f);
			json_num(f, e->ratio);
		} else {
			fputs(", \"baseline\": null, \"baseline_value\": null, \"ratio\": null", f);
		}
		if (e->target > 0) {
			fputs(", \"target\": ", f);
			json_num(f, e->target);
			fprintf(f, ", \"met\": %s",
				!isnan(e->ratio) && e->ratio >= e->target ? "true" : "false");
		}
		fputc('}', f);
	}
	fputs("\n]}\n", f);
	int rc = ferror(f) ? -EIO : 0;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

void bench_report_free(struct bench_report *r)
{
	free(r->recs);
	r->recs = NULL;
	r->nr = r->cap = 0;
}
