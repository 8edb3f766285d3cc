# frontends/netfront/: netfront, linked into drvdom-guest (docs/netfront.md),
# and drvdom-netfront-dom, a guest kernel for tests that runs netfront only.
LIBS_A += netfront
netfront_SRCS := frontends/netfront/netfront.c

TEST_BINS += netfront_dom
netfront_dom_SRCS := tests/integration/netfront_dom.c
netfront_dom_DEPLIBS := netfront xenstore drvdom
