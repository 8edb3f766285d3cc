# common/netpkt.mk: frame header parsing shared by netback and netfront.
drvdom_SRCS += common/netpkt.c
