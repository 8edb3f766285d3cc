# common/xbkey.mk: drvdom's xenbus extension keys (instance names, the
# frontend's echo, combined keys), shared by netback and netfront.
drvdom_SRCS += common/xbkey.c

UNIT_SUITES += xbkey
xbkey_TEST_SRCS := tests/unit/hdr_xbkey.c
xbkey_TEST_DEPLIBS := drvdom
