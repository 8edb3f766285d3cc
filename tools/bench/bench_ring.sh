#!/bin/sh
# SPDX-License-Identifier: MIT
# `make bench` step for the ring benchmark: install the benchmark-only
# dependencies on demand (DPDK for the rte_ring baseline), build the DPDK
# baseline if it is now possible, then run drvdom-bench-ring with its JSON
# records in $BUILD/bench-ring.json. Run from the repository root.
set -e
BUILD=${BUILD:-build}
if ! pkg-config --exists libdpdk 2>/dev/null; then
	scripts/install-deps.sh bench || echo "bench_ring.sh: could not install DPDK; rte_ring baseline skipped" >&2
fi
if pkg-config --exists libdpdk 2>/dev/null; then
	${MAKE:-make} -s "$BUILD/bin/drvdom-bench-ring-dpdk"
fi
exec "$BUILD/bin/drvdom-bench-ring" --json "$BUILD/bench-ring.json" "$@"
