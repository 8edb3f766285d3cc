#!/bin/sh
# SPDX-License-Identifier: MIT
# The `make bench` step of the ring benchmark: drvdom-bench-ring with its
# JSON records in $BUILD/bench-ring.json (a script because the Makefile runs
# each word of BENCH_CMDS as its own command). `make bench` has already
# installed DPDK for the rte_ring baseline (scripts/install-deps.sh bench).
# Run from the repository root; extra arguments go to the benchmark.
set -e
BUILD=${BUILD:-build}
exec "$BUILD/bin/drvdom-bench-ring" --json "$BUILD/bench-ring.json" "$@"
