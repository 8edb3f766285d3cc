# tools/bench/xenstore.mk: `drvdom bench xenstore` (drvdom-bench-xenstore):
# reads, writes and watch events per second with 1/2/8 clients, and read
# latency while a writer commits transactions. It starts its own
# drvdom-xenstored on a temp socket. The shared record format is
# tools/bench/benchjson.c.
BINS += drvdom-bench-xenstore
drvdom-bench-xenstore_SRCS := tools/bench/bench_xenstore.c tools/bench/benchjson.c
drvdom-bench-xenstore_DEPLIBS := xenstore
drvdom-bench-xenstore_LIBS := -lm
BENCH_CMDS += $(BUILD)/bin/drvdom-bench-xenstore
