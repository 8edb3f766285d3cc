// SPDX-License-Identifier: MIT
// Internal header of the drvdom toolstack CLI, prototypes grouped by the
// file that defines them.
#ifndef DRVDOM_TOOLS_TOOL_H
#define DRVDOM_TOOLS_TOOL_H

#include <stdbool.h>
#include <stddef.h>

/* tools/tool_rundir.c */
/* The run dir: $DRVDOM_RUN_DIR, else /run/drvdom as root, else
 * $XDG_RUNTIME_DIR/drvdom (else /tmp/drvdom-UID). Never fails. */
const char *tool_run_dir(void);
/* Directory holding drvdom's programs (that of the running binary). */
const char *tool_bin_dir(void);
/* Write "RUN/rel" into buf; -ENAMETOOLONG if it does not fit. */
int tool_path(char *buf, size_t len, const char *rel);

/* tools/tool_daemons.c */
int tool_cmd_up(int argc, char **argv);
int tool_cmd_down(int argc, char **argv);
/* true when drvdom-hv answers on RUN/hv/socket. */
bool tool_hv_running(void);

/* tools/drvdom.c */
int tool_cmd_bench(int argc, char **argv);

#endif
