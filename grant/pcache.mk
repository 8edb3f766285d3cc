# grant/pcache.mk: the persistent-grant cache (grant/gnt_pcache.[ch]), in
# libdrvdom.a. A fragment of its own so grant/module.mk stays its owner's;
# it may move there.
drvdom_SRCS += grant/gnt_pcache.c
