# tools/bench/ring.mk: `drvdom bench ring` = build/bin/drvdom-bench-ring, and
# its optional rte_ring baseline drvdom-bench-ring-dpdk, built only when
# pkg-config finds libdpdk (a benchmark-only dependency:
# scripts/install-deps.sh bench). benchjson.c is the record/table/JSON
# writer other benchmarks reuse.
BINS += drvdom-bench-ring
drvdom-bench-ring_SRCS := tools/bench/bench_ring.c tools/bench/bench_ring_pair.c \
	tools/bench/benchjson.c
drvdom-bench-ring_DEPLIBS := drvdom
drvdom-bench-ring_LIBS := -lm

ifeq ($(shell $(PKG_CONFIG) --exists libdpdk 2>/dev/null && echo y),y)
BINS += drvdom-bench-ring-dpdk
drvdom-bench-ring-dpdk_SRCS := tools/bench/bench_ring_dpdk.c tools/bench/bench_ring_pair.c
drvdom-bench-ring-dpdk_DEPLIBS := drvdom
drvdom-bench-ring-dpdk_LIBS := -lrte_ring -lrte_eal
# DPDK's headers need its include path and rte_config.h; only this object.
$(BUILD)/obj/tools/bench/bench_ring_dpdk.o: ALL_CFLAGS += \
	$(filter-out -march=%,$(shell $(PKG_CONFIG) --cflags libdpdk))
endif

# make bench: a single word per command (the Makefile runs each word of
# BENCH_CMDS as a command), so the script carries the arguments.
BENCH_CMDS += tools/bench/bench_ring.sh
