# grant/pcache.mk: the persistent-grant cache (grant/gnt_pcache.[ch]), in
# libdrvdom.a. A fragment of its own so grant/module.mk stays its owner's;
# it may move there.
drvdom_SRCS += grant/gnt_pcache.c

UNIT_SUITES += gnt_pcache
gnt_pcache_TEST_DEPLIBS := drvdom
