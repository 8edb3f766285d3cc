# tools/bench/net.mk: `drvdom bench net` (drvdom-bench-net): iperf3 TCP
# (1 and 4 streams, both ways), UDP small-packet rate and ping from a guest
# through netback to the wire, beside a direct veth pair in the same run
# (docs/bench-net.md). Root only. Records: tools/bench/benchjson.c.
BINS += drvdom-bench-net
drvdom-bench-net_SRCS := tools/bench/bench_net.c tools/bench/benchjson.c
drvdom-bench-net_LIBS := -lm
BENCH_CMDS += $(BUILD)/bin/drvdom-bench-net
