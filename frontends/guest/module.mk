# frontends/guest/: drvdom-guest, the guest domain kernel (static: a domain
# has an empty root). It runs blkfront for every vbd and exposes each over
# NBD. See docs/blkfront.md.
STATIC_BINS += drvdom-guest
drvdom-guest_SRCS := frontends/guest/guest_main.c frontends/guest/guest_loadgen.c
drvdom-guest_DEPLIBS := netfront drvdom xenstore
