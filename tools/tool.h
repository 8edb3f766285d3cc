// SPDX-License-Identifier: MIT
// Internal header of the drvdom toolstack CLI, prototypes grouped by the
// file that defines them.
#ifndef DRVDOM_TOOLS_TOOL_H
#define DRVDOM_TOOLS_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* tools/tool_rundir.c */
/* The run dir: $DRVDOM_RUN_DIR, else /run/drvdom as root, else
 * $XDG_RUNTIME_DIR/drvdom (else /tmp/drvdom-UID). Never fails. */
const char *tool_run_dir(void);
/* Forget the cached run dir (after changing DRVDOM_RUN_DIR). */
void tool_run_dir_reset(void);
/* Directory holding drvdom's programs (that of the running binary). */
const char *tool_bin_dir(void);
/* Write "RUN/rel" into buf; -ENAMETOOLONG if it does not fit. */
int tool_path(char *buf, size_t len, const char *rel);

/* tools/tool_daemons.c */
int tool_cmd_up(int argc, char **argv);
int tool_cmd_down(int argc, char **argv);
/* true when drvdom-hv answers on RUN/hv/socket. */
bool tool_hv_running(void);

/* tools/tool_domain.c */
struct hvc;
struct xs_handle;
struct hv_domain_info;
struct xlcfg_disk;
int tool_cmd_create(int argc, char **argv);
int tool_cmd_list(int argc, char **argv);
int tool_cmd_destroy(int argc, char **argv);
int tool_cmd_kill(int argc, char **argv);
/* Connect to this run dir's hv / xenstored, printing why not on failure. */
int tool_connect_hv(struct hvc **out);
struct xs_handle *tool_connect_xs(void);
/* A domain by name or decimal id: 0 or -ESRCH. */
int tool_find_domain(struct hvc *h, const char *name, struct hv_domain_info *out);
/* xenstore helpers printing the failure: write; owner + one reader. */
bool tool_xs_write(struct xs_handle *xs, unsigned t, const char *path, const char *val);
bool tool_xs_perms(struct xs_handle *xs, unsigned t, const char *path, unsigned owner,
		   unsigned reader);
struct tool_kv {
	const char *key, *val;
};
/* Write a device's backend directory be (owned by backend, readable by
 * frontend) and frontend directory fe (the other way round) in one
 * transaction, retried on EAGAIN. 0 or -errno. */
int tool_xs_write_device(struct xs_handle *xs, const char *be, const struct tool_kv *bekv,
			 size_t nbe, unsigned backend, const char *fe, const struct tool_kv *fekv,
			 size_t nfe, unsigned frontend);
void tool_domain_teardown(struct hvc *h, struct xs_handle *xs, uint16_t domid, const char *name);

/* tools/tool_vbd.c */
int tool_vbd_attach(struct hvc *h, struct xs_handle *xs, const struct hv_domain_info *guest,
		    const struct hv_domain_info *back, const struct xlcfg_disk *disk);
/* Take back the disk assignments (not yet taken by the backend) of every
 * device under the backend directory dir of driver domain backend. */
void tool_vbd_revoke_all(struct hvc *h, struct xs_handle *xs, const char *dir, uint16_t backend);
/* "xvda,xvdb,serves 2 vbd" for drvdom list. */
void tool_describe_devices(struct xs_handle *xs, uint16_t domid, char *buf, size_t len);
/* Remove RUN/GUEST (its NBD sockets). */
void tool_rm_guest_dir(const char *dir);

/* tools/tool_exec.c */
int tool_cmd_exec(int argc, char **argv);
/* Join the network namespace of process pid (its user namespace first when
 * not root). 0 or -errno. */
int tool_enter_netns(int pid);
/* Host pid of a running domain, for joining its namespaces. */
int tool_domain_netns_pid(const char *name, int *pid);

/* tools/tool_net.c */
/* Host pid of the run dir's wire-namespace holder, started when create is
 * true. 0 or -errno (-ESRCH: none and not asked to create). */
int tool_wire_pid(bool create, int *out);
/* End the wire holder (drvdom down). */
void tool_wire_stop(void);
/* Set up a network driver domain's NIC from its `nic = "…"` spec. */
int tool_nic_setup(struct hvc *h, struct xs_handle *xs, const struct hv_domain_info *drv,
		   const char *spec);
struct tool_vif {
	char mac[18];
	char ip[64];
	char backend[64];
};
/* Parse one `vif = [ '…' ]` item, printing what is wrong. */
int tool_vif_parse(const char *text, struct tool_vif *v);
/* Give guest its TAP ethINDEX and write both xenstore directories. */
int tool_vif_attach(struct hvc *h, struct xs_handle *xs, const struct hv_domain_info *guest,
		    const struct hv_domain_info *back, const struct tool_vif *vif, int index);

/* tools/tool_attach.c */
int tool_cmd_block_attach(int argc, char **argv);
int tool_cmd_block_detach(int argc, char **argv);
int tool_cmd_network_attach(int argc, char **argv);
int tool_cmd_network_detach(int argc, char **argv);

/* tools/tool_top.c */
int tool_cmd_top(int argc, char **argv);

/* tools/tool_demo.c */
int tool_cmd_demo(int argc, char **argv);

/* tools/drvdom.c */
int tool_cmd_bench(int argc, char **argv);

#endif
