# ring/: Xen-layout shared rings, header-only (ring.h, blkif.h, netif.h,
# xenbus.h). Nothing to build but the Check suite: the layout comparison
# against Xen's headers, one unit per header built alone, and the API tests.
UNIT_SUITES += ring
ring_TEST_SRCS := tests/unit/check_ring_xen.c tests/unit/check_ring_ours.c \
	tests/unit/check_ring_coexist.c tests/unit/check_ring_hdr_ring.c \
	tests/unit/check_ring_hdr_blkif.c tests/unit/check_ring_hdr_netif.c \
	tests/unit/check_ring_hdr_xenbus.c
