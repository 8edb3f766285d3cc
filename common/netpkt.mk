# common/netpkt.mk: frame header parsing shared by netback and netfront.
drvdom_SRCS += common/netpkt.c

UNIT_SUITES += netpkt
netpkt_TEST_SRCS := tests/unit/hdr_netpkt.c tests/unit/hdr_netfront.c
netpkt_TEST_DEPLIBS := drvdom
