# grant/: segments, the grant table, map/unmap and copy (in libdrvdom.a).
drvdom_SRCS += grant/gnt_seg.c grant/gnt_table.c grant/gnt_map.c

UNIT_SUITES += grant
grant_TEST_DEPLIBS := drvdom
