# frontends/nbd/: the NBD server the guest exposes each virtual disk with
# (libnbdsrv.a, prefix nbd_), its file backend, and drvdom-nbd-file, a
# static program serving a file with it (tests, debugging). See docs/nbd.md.
LIBS_A += nbdsrv
nbdsrv_SRCS := frontends/nbd/nbd_server.c frontends/nbd/nbd_proto.c frontends/nbd/nbd_file.c

STATIC_BINS += drvdom-nbd-file
drvdom-nbd-file_SRCS := frontends/nbd/nbd_file_main.c
drvdom-nbd-file_DEPLIBS := nbdsrv drvdom

UNIT_SUITES += nbd_proto
nbd_proto_TEST_DEPLIBS := nbdsrv drvdom

INTEG_SUITES += nbd
nbd_TEST_DEPLIBS := nbdsrv drvdom
