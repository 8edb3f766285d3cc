# hv/lib.mk: the domain-side library in libdrvdom.a (hypercall client, event
# channels, event loop) and its unit suites. The daemon has its own fragment.
drvdom_SRCS += hv/hvc.c hv/evtchn.c hv/evloop.c

UNIT_SUITES += hvc evtchn
hvc_TEST_DEPLIBS := drvdom
evtchn_TEST_SRCS := tests/unit/hdr_evloop.c
evtchn_TEST_DEPLIBS := drvdom

# The two-domain integration suite: the real hv, two static test kernels.
INTEG_SUITES += twodom
twodom_TEST_DEPLIBS := drvdom
TEST_BINS += twodom_producer twodom_consumer
twodom_producer_SRCS := tests/integration/twodom_producer.c
twodom_producer_DEPLIBS := drvdom
twodom_consumer_SRCS := tests/integration/twodom_consumer.c
twodom_consumer_DEPLIBS := drvdom
