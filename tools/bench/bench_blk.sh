#!/bin/sh
# make bench: run `drvdom bench blk` and keep its JSON next to the build.
set -e
build=${BUILD:-build}
exec "$build/bin/drvdom-bench-blk" --json "$build/bench-blk.json" "$@"
