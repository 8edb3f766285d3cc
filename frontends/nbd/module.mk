# frontends/nbd/: the NBD server the guest exposes each virtual disk with
# (prefix nbd_), its file backend, and drvdom-nbd-file, a static program
# serving a file with it (tests, debugging). The server is domain-side code,
# so it lives in libdrvdom.a beside the logging it uses. See docs/nbd.md.
drvdom_SRCS += frontends/nbd/nbd_server.c frontends/nbd/nbd_proto.c frontends/nbd/nbd_file.c

STATIC_BINS += drvdom-nbd-file
drvdom-nbd-file_SRCS := frontends/nbd/nbd_file_main.c
drvdom-nbd-file_DEPLIBS := drvdom

UNIT_SUITES += nbd_proto
nbd_proto_TEST_DEPLIBS := drvdom

INTEG_SUITES += nbd
nbd_TEST_DEPLIBS := drvdom
