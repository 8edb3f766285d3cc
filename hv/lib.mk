# hv/lib.mk: the domain-side library in libdrvdom.a (hypercall client, event
# channels, event loop) and its unit suites. The daemon has its own fragment.
drvdom_SRCS += hv/hvc.c hv/evtchn.c hv/evloop.c

UNIT_SUITES += hvc evtchn
hvc_TEST_DEPLIBS := drvdom
evtchn_TEST_SRCS := tests/unit/hdr_evloop.c
evtchn_TEST_DEPLIBS := drvdom
