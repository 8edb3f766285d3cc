# SPDX-License-Identifier: MIT
# drvdom: one non-recursive Makefile. Each directory adds itself through a
# `module.mk` fragment (see docs/build.md for the variables it may set).
#
#   make            build everything into build/
#   make check      build and run every test (Check)
#   make bench      run the benchmarks (drvdom bench …)
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean
#   V=1             show full commands;  SANITIZE=1  ASan + UBSan

.DEFAULT_GOAL := all
BUILD   ?= build
PREFIX  ?= /usr/local
CC      ?= cc
AR      ?= ar
PKG_CONFIG ?= pkg-config

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-6s %s\n' '$(1)' '$(2)'
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -I. -I$(BUILD)/gen -MMD -MP
ALL_LDFLAGS := $(LDFLAGS)
# Domain kernels run in an empty root with no dynamic loader: they are static.
STATIC_CFLAGS :=
STATIC_LDFLAGS := -static
ifeq ($(SANITIZE),1)
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
ALL_LDFLAGS += -fsanitize=address,undefined
# The ASan runtime cannot be linked statically: domain kernels get UBSan in
# trap mode only, which needs no runtime.
STATIC_CFLAGS := -fno-sanitize=all -fsanitize=undefined -fsanitize-undefined-trap-on-error
STATIC_LDFLAGS := -static -fno-sanitize=all
endif

CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell $(PKG_CONFIG) --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt -lpthread)
URCU_LIBS    := -lurcu-cds -lurcu -lurcu-common
SECCOMP_LIBS := -lseccomp

# --- what the module fragments fill in --------------------------------------
LIBS_A :=          # static libraries: build/lib/lib$(name).a from $(name)_SRCS
BINS :=            # programs: build/bin/$(name) from $(name)_SRCS, $(name)_LIBS
STATIC_BINS :=     # domain kernels (static) in build/bin
TEST_BINS :=       # helper programs for tests in build/tests/bin (static)
UNIT_SUITES :=     # tests/unit/check_$(s).c defines Suite *$(s)_suite(void)
INTEG_SUITES :=    # tests/integration/check_$(s).c, same convention
BENCH_CMDS :=      # commands `make bench` runs, in order
INSTALL_LIBS := drvdom xenstore # the libraries other programs may link
INSTALL_HEADERS := # headers installed under include/drvdom/, keeping their dir
INSTALL_HEADERS_FLAT := # headers installed in include/drvdom/ itself

include $(sort $(wildcard */*.mk */*/*.mk))

# --- rules ------------------------------------------------------------------
objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
sobjs = $(patsubst %.c,$(BUILD)/sobj/%.o,$(1))

$(BUILD)/obj/%.o: %.c
	$(call msg,CC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

# Objects for static domain kernels (may differ under SANITIZE=1).
$(BUILD)/sobj/%.o: %.c
	$(call msg,CC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(filter-out -fsanitize=%,$(ALL_CFLAGS)) $(STATIC_CFLAGS) -c $< -o $@

define lib_rule
$(BUILD)/lib/lib$(1).a: $(call objs,$($(1)_SRCS))
	$$(call msg,AR,$$@)
	@mkdir -p $$(dir $$@)
	$(Q)rm -f $$@ && $(AR) rcs $$@ $$^
$(BUILD)/slib/lib$(1).a: $(call sobjs,$($(1)_SRCS))
	$$(call msg,AR,$$@)
	@mkdir -p $$(dir $$@)
	$(Q)rm -f $$@ && $(AR) rcs $$@ $$^
endef
$(foreach l,$(LIBS_A),$(eval $(call lib_rule,$(l))))

# A program is named after its variable prefix, or $(name)_OUT if set.
binout = $(or $($(1)_OUT),$(1))
define bin_rule
$(BUILD)/bin/$(call binout,$(1)): $(call objs,$($(1)_SRCS)) $(foreach l,$($(1)_DEPLIBS),$(BUILD)/lib/lib$(l).a)
	$$(call msg,LD,$$@)
	@mkdir -p $$(dir $$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $$@ $$(filter %.o,$$^) $(foreach l,$($(1)_DEPLIBS),$(BUILD)/lib/lib$(l).a) $($(1)_LIBS) -lpthread
endef
$(foreach b,$(BINS),$(eval $(call bin_rule,$(b))))

define static_bin_rule
$(2)/$(1): $(call sobjs,$($(1)_SRCS)) $(foreach l,$($(1)_DEPLIBS),$(BUILD)/slib/lib$(l).a)
	$$(call msg,LD,$$@)
	@mkdir -p $$(dir $$@)
	$(Q)$(CC) $(STATIC_LDFLAGS) -o $$@ $$(filter %.o,$$^) $(foreach l,$($(1)_DEPLIBS),$(BUILD)/slib/lib$(l).a) $($(1)_LIBS) -lpthread
endef
$(foreach b,$(STATIC_BINS),$(eval $(call static_bin_rule,$(b),$(BUILD)/bin)))
$(foreach b,$(TEST_BINS),$(eval $(call static_bin_rule,$(b),$(BUILD)/tests/bin)))

# One Check runner holds every suite; each suite also gets a runner of its
# own (make check-NAME) so a module can be tested alone.
ALL_SUITES := $(UNIT_SUITES) $(INTEG_SUITES)
suite_src = $(firstword $(wildcard tests/unit/check_$(1).c tests/integration/check_$(1).c))
SUITE_OBJS := $(foreach s,$(ALL_SUITES),$(call objs,$(call suite_src,$(s)) $($(s)_TEST_SRCS)))
SUITE_LIBS := $(sort $(foreach s,$(ALL_SUITES),$($(s)_TEST_LIBS)))
SUITE_DEPLIBS := $(foreach l,$(sort $(foreach s,$(ALL_SUITES),$($(s)_TEST_DEPLIBS))),$(BUILD)/lib/lib$(l).a)

$(BUILD)/gen/suites.inc: Makefile $(wildcard */*.mk */*/*.mk)
	@mkdir -p $(dir $@)
	$(Q)printf '%s\n' $(foreach s,$(ALL_SUITES),'DRVDOM_SUITE($(s))') > $@.tmp && \
	  (cmp -s $@.tmp $@ || mv $@.tmp $@); rm -f $@.tmp

$(BUILD)/obj/tests/runner.o: $(BUILD)/gen/suites.inc

$(BUILD)/tests/check_drvdom: $(BUILD)/obj/tests/runner.o $(SUITE_OBJS) $(SUITE_DEPLIBS)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(SUITE_DEPLIBS) $(SUITE_LIBS) $(CHECK_LIBS) -lpthread

define suite_rule
$(BUILD)/tests/check_$(1): $(BUILD)/obj/tests/runner1_$(1).o $(call objs,$(call suite_src,$(1)) $($(1)_TEST_SRCS)) $(foreach l,$($(1)_TEST_DEPLIBS),$(BUILD)/lib/lib$(l).a)
	$$(call msg,LD,$$@)
	@mkdir -p $$(dir $$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $$@ $$(filter %.o,$$^) $(foreach l,$($(1)_TEST_DEPLIBS),$(BUILD)/lib/lib$(l).a) $($(1)_TEST_LIBS) $(CHECK_LIBS) -lpthread
$(BUILD)/obj/tests/runner1_$(1).o: tests/runner.c
	$$(call msg,CC,$$< [$(1)])
	@mkdir -p $$(dir $$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -DDRVDOM_ONE_SUITE=$(1) -c $$< -o $$@
.PHONY: check-$(1)
check-$(1): $(BUILD)/tests/check_$(1) all
	DRVDOM_BUILD=$(abspath $(BUILD)) $(BUILD)/tests/check_$(1)
endef
$(foreach s,$(ALL_SUITES),$(eval $(call suite_rule,$(s))))

ALL_TARGETS := $(foreach l,$(LIBS_A),$(BUILD)/lib/lib$(l).a) \
	$(foreach b,$(BINS) $(STATIC_BINS),$(BUILD)/bin/$(call binout,$(b))) \
	$(foreach b,$(TEST_BINS),$(BUILD)/tests/bin/$(b)) $(EXTRA_TARGETS)

.PHONY: all check bench install clean format demo
# The README's first command: install what is missing, build, run the demo.
demo:
	scripts/install-deps.sh
	$(MAKE) all
	$(BUILD)/bin/drvdom demo

all: $(ALL_TARGETS)

check: all $(BUILD)/tests/check_drvdom
	DRVDOM_BUILD=$(abspath $(BUILD)) $(BUILD)/tests/check_drvdom

bench: all
	scripts/install-deps.sh bench
	$(MAKE) all
	@set -e; $(foreach c,$(BENCH_CMDS),echo "== $(c)"; $(c);)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/drvdom
	install -m 0755 $(foreach b,$(BINS) $(STATIC_BINS),$(BUILD)/bin/$(call binout,$(b))) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(foreach l,$(INSTALL_LIBS),$(BUILD)/lib/lib$(l).a) $(DESTDIR)$(PREFIX)/lib/
	$(foreach h,$(INSTALL_HEADERS),install -D -m 0644 $(h) $(DESTDIR)$(PREFIX)/include/drvdom/$(h);)
	$(if $(INSTALL_HEADERS_FLAT),install -m 0644 $(INSTALL_HEADERS_FLAT) $(DESTDIR)$(PREFIX)/include/drvdom/)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
