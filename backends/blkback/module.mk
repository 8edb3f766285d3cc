# backends/blkback/: drvdom-blkback, the block driver domain kernel
# (docs/blkback.md), its malicious/good test frontend and its integration
# suite.
STATIC_BINS += drvdom-blkback
drvdom-blkback_SRCS := backends/blkback/blkback_main.c backends/blkback/blkback_xenbus.c \
	backends/blkback/blkback_ring.c backends/blkback/blkback_io.c \
	backends/blkback/blkback_pool.c
drvdom-blkback_DEPLIBS := xenstore drvdom
drvdom-blkback_LIBS := -luring

# The test frontend (a guest domain kernel doing the handshake itself, good
# and malicious) and the suite that drives blkdom with it.
TEST_BINS += blkback_evilfront
blkback_evilfront_SRCS := tests/integration/blkback_evilfront.c
blkback_evilfront_DEPLIBS := xenstore drvdom

INTEG_SUITES += blkback
blkback_TEST_SRCS := tests/integration/xstest.c
blkback_TEST_DEPLIBS := xenstore drvdom
