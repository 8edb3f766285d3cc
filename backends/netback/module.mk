# backends/netback/: drvdom-netback, the network driver domain kernel
# (docs/netback.md).
STATIC_BINS += drvdom-netback
drvdom-netback_SRCS := backends/netback/netback_main.c backends/netback/netback_xenbus.c \
	backends/netback/netback_tx.c backends/netback/netback_rx.c \
	backends/netback/netback_nic.c backends/netback/netback_bridge.c
drvdom-netback_DEPLIBS := xenstore drvdom
