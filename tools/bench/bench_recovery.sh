#!/bin/sh
# make bench: run `drvdom bench recovery`; the JSON and its plot
# (bench-recovery.svg) next to the build.
set -e
build=${BUILD:-build}
exec "$build/bin/drvdom-bench-recovery" --json "$build/bench-recovery.json" "$@"
