# xenstore/: drvdom-xenstored (the daemon), its store as a library for the
# unit tests, and libxenstore.a, the libxenstore-compatible client library.
LIBS_A += xsd xenstore
xsd_SRCS := xenstore/xsd_store.c xenstore/xsd_watch.c xenstore/xsd_conn.c
xenstore_SRCS := xenstore/xs.c xenstore/xs_ring.c

INSTALL_HEADERS_FLAT += xenstore/include/xenstore.h xenstore/include/xenstore_lib.h

BINS += drvdom-xenstored
drvdom-xenstored_SRCS := xenstore/xsd_main.c xenstore/xsd_ring.c
drvdom-xenstored_DEPLIBS := xsd drvdom
drvdom-xenstored_LIBS := $(URCU_LIBS)

UNIT_SUITES += xenstore
xenstore_TEST_SRCS := tests/unit/check_xenstore_hdr_lib.c tests/unit/check_xenstore_hdr_xs.c
xenstore_TEST_DEPLIBS := xsd drvdom
xenstore_TEST_LIBS := $(URCU_LIBS)

INTEG_SUITES += xenstore_daemon
xenstore_daemon_TEST_SRCS := tests/integration/xstest.c
xenstore_daemon_TEST_DEPLIBS := xenstore drvdom

# A static test domain kernel using libxenstore over its ring.
TEST_BINS += xs_dom
xs_dom_SRCS := tests/integration/check_xenstore_dom.c
xs_dom_DEPLIBS := xenstore drvdom

# Stress of the client inside domains: many starts of a kernel that cycles
# handles and reads from two threads while its own event loop runs.
INTEG_SUITES += xs_stress
xs_stress_TEST_SRCS := tests/integration/xstest.c
xs_stress_TEST_DEPLIBS := xenstore drvdom
TEST_BINS += xs_stress_dom
xs_stress_dom_SRCS := tests/integration/xs_stress_dom.c
xs_stress_dom_DEPLIBS := xenstore drvdom
