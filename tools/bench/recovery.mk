# tools/bench/recovery.mk: `drvdom bench recovery` (drvdom-bench-recovery):
# blkdom and netdom killed under load, cold and with standby; kill -> first
# I/O, the dip (SVG next to the JSON), client errors.
BINS += drvdom-bench-recovery
drvdom-bench-recovery_SRCS := tools/bench/bench_recovery.c tools/bench/benchjson.c \
	tools/bench/recovery_load.c
drvdom-bench-recovery_DEPLIBS := drvtools xenstore drvdom
drvdom-bench-recovery_LIBS := -lpthread -lm
BENCH_CMDS += tools/bench/bench_recovery.sh
