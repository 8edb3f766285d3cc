# tools/: the drvdom toolstack CLI.
LIBS_A += drvtools
drvtools_SRCS := tools/xlcfg.c
UNIT_SUITES += xlcfg
xlcfg_TEST_DEPLIBS := drvtools drvdom
