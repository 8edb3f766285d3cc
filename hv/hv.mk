# hv/hv.mk: drvdom-hv, the hypervisor core daemon (docs/hv.md), its
# hypercall-decoding unit suite and its integration suite with the static
# test domain kernels it starts. The domain-side library is in hv/lib.mk.
BINS += drvdom-hv
drvdom-hv_SRCS := hv/hv_main.c hv/hv_call.c hv/hv_dispatch.c hv/hv_domain.c \
	hv/hv_sandbox.c hv/hv_grant.c hv/hv_evtchn.c hv/hv_recovery.c hv/hv_affinity.c
drvdom-hv_DEPLIBS := drvdom
drvdom-hv_LIBS := $(SECCOMP_LIBS)

# Static test domain kernels the hv suite starts.
TEST_BINS += dom_sandbox dom_hcall
dom_sandbox_SRCS := tests/integration/dom_sandbox.c
dom_hcall_SRCS := tests/integration/dom_hcall.c tests/integration/hvtest_msg.c

# Hypercall decoding, without processes.
UNIT_SUITES += hv_call
hv_call_TEST_SRCS := hv/hv_call.c hv/hv_grant.c
hv_call_TEST_DEPLIBS := drvdom

# The real daemon with real domains.
INTEG_SUITES += hv
hv_TEST_SRCS := tests/integration/hvtest_hv.c tests/integration/hvtest_msg.c hv/hv_call.c
