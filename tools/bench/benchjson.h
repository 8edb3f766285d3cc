// SPDX-License-Identifier: MIT
// Benchmark records shared by every `drvdom bench NAME` program: a list of
// results, each measured beside a baseline from the same run, printed as a
// readable table and written as JSON (--json FILE). A record holds name,
// unit, value, baseline (its name), baseline_value and ratio, where ratio > 1
// always means drvdom did better than the baseline, for throughput (higher
// is better) and latency or CPU cost (lower is better) alike. A record may
// carry a target ratio from the issue; the table then says pass or miss.
#ifndef DRVDOM_TOOLS_BENCH_BENCHJSON_H
#define DRVDOM_TOOLS_BENCH_BENCHJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum bench_better { BENCH_HIGHER_BETTER, BENCH_LOWER_BETTER };

struct bench_rec {
	char name[80];
	char unit[24];
	double value;
	char baseline[64]; /* "" if none */
	double baseline_value;
	double ratio;  /* > 1: drvdom better; NAN if not computable */
	double target; /* minimum ratio wanted; 0 if none */
};

struct bench_report {
	char title[64];
	struct bench_rec *recs;
	size_t nr, cap;
};

/* Start an empty report. No allocation until the first add. */
void bench_report_init(struct bench_report *r, const char *title);

/* Add a record; ratio is computed from value, baseline_value and `better`
 * (NAN when a value is 0 or negative). baseline may be NULL for a plain
 * measurement. target: minimum ratio, 0 for none. 0 or -ENOMEM. */
int bench_report_add(struct bench_report *r, const char *name, const char *unit, double value,
		     const char *baseline, double baseline_value, enum bench_better better,
		     double target);

/* Print the table (name, value, unit, baseline, its value, ratio, target). */
void bench_report_print(const struct bench_report *r, FILE *out);

/* Write {"benchmark": title, "records": [...]} to path. 0 or -errno. */
int bench_report_write_json(const struct bench_report *r, const char *path);

void bench_report_free(struct bench_report *r);

#endif
