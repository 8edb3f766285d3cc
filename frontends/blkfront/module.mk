# frontends/blkfront/: the blkif frontend (prefix blkfront_, internal bf_):
# XenbusState machine, rings, shadow, persistent grant pool, and its NBD
# export. Domain-side code, linked into libdrvdom.a like the NBD server.
# See docs/blkfront.md.
drvdom_SRCS += frontends/blkfront/blkfront_xenbus.c frontends/blkfront/blkfront_ring.c \
	frontends/blkfront/blkfront_nbd.c


# End to end with the real processes (drvdom up, blkdom, a guest, qemu-io).
# It needs drvdom-blkback: registered once backends/blkback/ is in the tree.
ifneq ($(wildcard backends/blkback/module.mk),)
INTEG_SUITES += blk_e2e
blk_e2e_TEST_SRCS := tests/unit/hdr_blkfront.c
endif

# A misbehaving test backend for blk_e2e (restart, bad responses, index jump).
TEST_BINS += blkfront_evilback
blkfront_evilback_SRCS := tests/integration/blkfront_evilback.c
blkfront_evilback_DEPLIBS := xenstore drvdom
