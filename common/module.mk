# common/: logging and die(), linked into every program through libdrvdom.
LIBS_A += drvdom
drvdom_SRCS += common/log.c
# The public headers of the domain-side library, installed as drvdom/<dir>/.
INSTALL_HEADERS += common/log.h hv/hv_abi.h hv/hvc.h hv/evtchn.h hv/evloop.h grant/gnt.h \
	ring/ring.h ring/blkif.h ring/netif.h ring/xenbus.h
