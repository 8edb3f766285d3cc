// SPDX-License-Identifier: MIT
// drvdom: the toolstack CLI (domain 0), in the manner of Xen's xl. This file
// parses the command line and dispatches; each command lives in a tool_*.c
// file. `drvdom bench NAME` runs the program drvdom-bench-NAME.
#include "common/log.h"
#include "tools/tool.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *args;
	const char *help;
};

static const struct command commands[] = {
    {"demo", tool_cmd_demo, "", "the whole system on an embedded default"},
    {"up", tool_cmd_up, "", "start drvdom-hv and drvdom-xenstored"},
    {"down", tool_cmd_down, "", "stop them and every domain"},
    {"create", tool_cmd_create, "FILE.cfg [k=v ...]", "start a domain from an xl.cfg file"},
    {"list", tool_cmd_list, "", "domains: id, name, role, state, devices"},
    {"destroy", tool_cmd_destroy, "NAME|ID", "stop a domain and remove its devices"},
    {"kill", tool_cmd_kill, "NAME|ID", "SIGKILL a domain (the fault injector)"},
    {"block-attach", tool_cmd_block_attach, "GUEST SPEC", "add a disk while running"},
    {"block-detach", tool_cmd_block_detach, "GUEST VDEV", "remove a disk"},
    {"network-attach", tool_cmd_network_attach, "GUEST SPEC", "add a vif while running"},
    {"network-detach", tool_cmd_network_detach, "GUEST DEVID", "remove a vif"},
    {"exec", tool_cmd_exec, "DOMAIN|wire -- CMD", "run CMD in that network namespace"},
    {"bench", tool_cmd_bench, "ring|xenstore|... [ARGS]", "run a benchmark (--help for each)"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: drvdom COMMAND [ARGS…]\n\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		char left[64];
		snprintf(left, sizeof(left), "%s %s", commands[i].name, commands[i].args);
		fprintf(f, "  drvdom %-32s %s\n", left, commands[i].help);
	}
	fprintf(f, "\nrun dir: %s (DRVDOM_RUN_DIR overrides)\n", tool_run_dir());
}

int tool_cmd_bench(int argc, char **argv)
{
	if (argc < 2 || strchr(argv[1], '/')) {
		fprintf(stderr, "usage: drvdom bench NAME [ARGS…]\n");
		return 2;
	}
	char prog[PATH_MAX];
	snprintf(prog, sizeof(prog), "%s/drvdom-bench-%s", tool_bin_dir(), argv[1]);
	if (access(prog, X_OK)) {
		fprintf(stderr, "drvdom: no benchmark '%s' (%s: %s)\n", argv[1], prog,
			strerror(errno));
		return 2;
	}
	argv[1] = prog;
	execv(prog, argv + 1);
	fprintf(stderr, "drvdom: %s: %s\n", prog, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	log_init("drvdom");
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "drvdom: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
