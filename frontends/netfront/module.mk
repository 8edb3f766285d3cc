# frontends/netfront/: netfront, linked into drvdom-guest (docs/netfront.md),
# and drvdom-netfront-dom, a guest kernel for tests that runs netfront only.
LIBS_A += netfront
netfront_SRCS := frontends/netfront/netfront.c

TEST_BINS += netfront_dom
netfront_dom_SRCS := tests/integration/netfront_dom.c
netfront_dom_DEPLIBS := netfront xenstore drvdom

# The net integration suite (tests/integration/check_net.c) and its
# malicious frontend kernel.
INTEG_SUITES += net
net_TEST_SRCS := tests/integration/tooltest.c
TEST_BINS += netevil_dom
netevil_dom_SRCS := tests/integration/netevil_dom.c tests/integration/netevil_common.c
netevil_dom_DEPLIBS := xenstore drvdom
TEST_BINS += netevil_back
netevil_back_SRCS := tests/integration/netevil_back.c tests/integration/netevil_common.c
netevil_back_DEPLIBS := xenstore drvdom
