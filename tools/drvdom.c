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
	const char *usage;
};

static const struct command commands[] = {
    {"up", tool_cmd_up, "up                      start drvdom-hv and drvdom-xenstored"},
    {"down", tool_cmd_down, "down                    stop them and every domain"},
    {"create", tool_cmd_create, "create FILE.cfg [k=v …] start a domain from an xl.cfg file"},
    {"list", tool_cmd_list, "list                    domains: id, name, role, state, devices"},
    {"destroy", tool_cmd_destroy, "destroy NAME|ID         stop a domain and remove its devices"},
    {"kill", tool_cmd_kill, "kill NAME|ID            SIGKILL a domain (fault injection)"},
    {"exec", tool_cmd_exec, "exec DOMAIN -- CMD …     run CMD in the domain's network namespace"},
    {"bench", tool_cmd_bench, "bench ring|xenstore|…   run a benchmark (see --help of each)"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: drvdom COMMAND [ARGS…]\n\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  drvdom %s\n", commands[i].usage);
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
