# tools/: the drvdom toolstack CLI. (Its variables are drvdom_cli_* because
# drvdom_* belongs to libdrvdom.)
LIBS_A += drvtools
drvtools_SRCS := tools/xlcfg.c tools/tool_rundir.c tools/tool_daemons.c \
	tools/tool_domain.c tools/tool_vbd.c tools/tool_exec.c tools/nbdc.c tools/tool_demo.c tools/tool_net.c tools/tool_attach.c tools/tool_top.c
UNIT_SUITES += xlcfg
xlcfg_TEST_DEPLIBS := drvtools drvdom

BINS += drvdom_cli
drvdom_cli_OUT := drvdom
drvdom_cli_SRCS := tools/drvdom.c
drvdom_cli_DEPLIBS := drvtools xenstore drvdom

INTEG_SUITES += nbdc
nbdc_TEST_DEPLIBS := drvtools drvdom

INTEG_SUITES += toolstack
toolstack_TEST_SRCS := tests/integration/tooltest.c
TEST_BINS += tool_sleeper
tool_sleeper_SRCS := tests/integration/tool_sleeper.c
