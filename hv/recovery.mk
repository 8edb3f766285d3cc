# hv/recovery.mk: crash recovery on the hv side (docs/recovery.md): the
# integration suite recovery_hv and its static test driver domain kernel.
# The hv's recovery code itself (hv/hv_recovery.c) is built by hv/hv.mk.
TEST_BINS += dom_recover
dom_recover_SRCS := tests/integration/dom_recover.c
dom_recover_DEPLIBS := xenstore drvdom

INTEG_SUITES += recovery_hv
recovery_hv_TEST_SRCS := tests/integration/hvtest_hv.c tests/integration/hvtest_msg.c
recovery_hv_TEST_DEPLIBS := xenstore drvdom
recovery_hv_TEST_LIBS := $(URCU_LIBS)
