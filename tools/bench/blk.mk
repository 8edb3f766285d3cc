# tools/bench/blk.mk: `drvdom bench blk` (drvdom-bench-blk): NBD → blkfront →
# blkback → file, beside the file itself, qemu-nbd and nbdkit, same client.
BINS += drvdom-bench-blk
drvdom-bench-blk_SRCS := tools/bench/bench_blk.c tools/bench/benchjson.c
drvdom-bench-blk_DEPLIBS := drvtools drvdom
drvdom-bench-blk_LIBS := -luring -lm
BENCH_CMDS += tools/bench/bench_blk.sh
