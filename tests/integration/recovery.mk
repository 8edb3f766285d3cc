# tests/integration/recovery.mk: the crash-recovery suites of issue 6 —
# recovery_blk (blkdom killed under a verified NBD load, crash points, guest
# crash, crash loop) and recovery_net (netdom killed under TCP, guest crash).
INTEG_SUITES += recovery_blk recovery_net
recovery_blk_TEST_SRCS := tests/integration/tooltest.c tests/integration/recovery_common.c \
	tools/bench/recovery_load.c
recovery_blk_TEST_DEPLIBS := drvtools drvdom
recovery_blk_TEST_LIBS := -lpthread
recovery_net_TEST_SRCS := tests/integration/tooltest.c tests/integration/recovery_common.c
