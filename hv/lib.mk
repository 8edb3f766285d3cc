# hv/lib.mk: the domain-side library in libdrvdom.a (hypercall client, event
# channels, event loop) and its unit suites. The daemon has its own fragment.
drvdom_SRCS += hv/hvc.c hv/evtchn.c hv/evloop.c

