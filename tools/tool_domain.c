// SPDX-License-Identifier: MIT
// Domain commands of the toolstack: create (from an xl.cfg file), list,
// destroy, kill. The toolstack is domain 0: it talks to drvdom-hv on
// RUN/hv/socket and to xenstored on RUN/xenstored/socket, and writes the
// xenstore layout of docs/devices.md.
#include "common/log.h"
#include "hv/hvc.h"
#include "tools/tool.h"
#include "tools/xlcfg.h"
#include "xenstore/include/xenstore.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int tool_connect_hv(struct hvc **out)
{
	char path[PATH_MAX];
	if (tool_path(path, sizeof(path), "hv/socket"))
		return -ENAMETOOLONG;
	int r = hvc_open_dom0(path, out);
	if (r)
		fprintf(stderr, "drvdom: cannot reach drvdom-hv at %s: %s (is `drvdom up` done?)\n",
			path, strerror(-r));
	return r;
}

struct xs_handle *tool_connect_xs(void)
{
	char path[PATH_MAX];
	if (tool_path(path, sizeof(path), "xenstored/socket"))
		return NULL;
	setenv("XENSTORED_PATH", path, 1);
	struct xs_handle *xs = xs_open(0);
	if (!xs)
		fprintf(stderr, "drvdom: cannot reach xenstored at %s: %s (is `drvdom up` done?)\n",
			path, strerror(errno));
	return xs;
}

int tool_find_domain(struct hvc *h, const char *name, struct hv_domain_info *out)
{
	static struct hv_domain_info list[1024];
	uint32_t n = 0;
	int r = hvc_domctl_list(h, list, 1024, &n);
	if (r)
		return r;
	char *end;
	long id = strtol(name, &end, 10);
	bool numeric = *name && !*end;
	for (uint32_t i = 0; i < n; i++) {
		if ((numeric && list[i].domid == id) ||
		    (!numeric && !strncmp(list[i].name, name, HV_NAME_MAX))) {
			*out = list[i];
			return 0;
		}
	}
	return -ESRCH;
}

bool tool_xs_write(struct xs_handle *xs, xs_transaction_t t, const char *path, const char *val)
{
	if (xs_write(xs, t, path, val, (unsigned)strlen(val)))
		return true;
	fprintf(stderr, "drvdom: xenstore write %s: %s\n", path, strerror(errno));
	return false;
}

bool tool_xs_perms(struct xs_handle *xs, xs_transaction_t t, const char *path, unsigned owner,
		   unsigned reader)
{
	struct xs_permissions p[2] = {{.id = owner, .perms = XS_PERM_NONE},
				      {.id = reader, .perms = XS_PERM_READ}};
	if (xs_set_permissions(xs, t, path, p, reader == owner ? 1 : 2))
		return true;
	fprintf(stderr, "drvdom: xenstore set-perms %s: %s\n", path, strerror(errno));
	return false;
}

/* Write one directory's keys, owned by owner and readable by reader. */
static bool xs_write_dir(struct xs_handle *xs, xs_transaction_t t, const char *dir,
			 const struct tool_kv *kv, size_t n, unsigned owner, unsigned reader)
{
	char p[512];
	bool ok = tool_xs_write(xs, t, dir, "") && tool_xs_perms(xs, t, dir, owner, reader);
	for (size_t i = 0; ok && i < n; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, kv[i].key);
		ok = tool_xs_write(xs, t, p, kv[i].val) && tool_xs_perms(xs, t, p, owner, reader);
	}
	return ok;
}

int tool_xs_write_device(struct xs_handle *xs, const char *be, const struct tool_kv *bekv,
			 size_t nbe, unsigned backend, const char *fe, const struct tool_kv *fekv,
			 size_t nfe, unsigned frontend)
{
	for (int tries = 0; tries < 10; tries++) {
		xs_transaction_t t = xs_transaction_start(xs);
		if (!t)
			return -errno;
		if (!xs_write_dir(xs, t, be, bekv, nbe, backend, frontend) ||
		    !xs_write_dir(xs, t, fe, fekv, nfe, frontend, backend)) {
			xs_transaction_end(xs, t, true);
			return -EIO;
		}
		if (xs_transaction_end(xs, t, false))
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
	return -EAGAIN;
}

/* The per-domain xenstore entries of docs/devices.md. */
static int domain_xs_setup(struct xs_handle *xs, const struct hv_domain_info *di,
			   const struct hv_create_rep *cr, bool driver)
{
	char base[64], p[128], v[32];
	snprintf(base, sizeof(base), "/local/domain/%u", di->domid);
	for (int tries = 0; tries < 10; tries++) {
		xs_transaction_t t = xs_transaction_start(xs);
		if (!t)
			return -errno;
		bool ok =
		    tool_xs_write(xs, t, base, "") && tool_xs_perms(xs, t, base, 0, di->domid);
		snprintf(p, sizeof(p), "%s/name", base);
		ok = ok && tool_xs_write(xs, t, p, di->name) &&
		     tool_xs_perms(xs, t, p, 0, di->domid);
		snprintf(p, sizeof(p), "%s/domid", base);
		snprintf(v, sizeof(v), "%u", di->domid);
		ok = ok && tool_xs_write(xs, t, p, v) && tool_xs_perms(xs, t, p, 0, di->domid);
		snprintf(p, sizeof(p), "%s/drvdom/role", base);
		ok = ok && tool_xs_write(xs, t, p, driver ? "driver" : "guest") &&
		     tool_xs_perms(xs, t, p, 0, di->domid);
		static const char *const owned[] = {"device", "backend", "data"};
		for (size_t i = 0; ok && i < 3; i++) {
			snprintf(p, sizeof(p), "%s/%s", base, owned[i]);
			ok = xs_mkdir(xs, t, p) && tool_xs_perms(xs, t, p, di->domid, di->domid);
		}
		if (!ok) {
			xs_transaction_end(xs, t, true);
			return -EIO;
		}
		if (xs_transaction_end(xs, t, false))
			break;
		if (errno != EAGAIN)
			return -errno;
	}
	if (!xs_introduce_domain(xs, di->domid, cr->store_frame, cr->store_port)) {
		fprintf(stderr, "drvdom: xenstore introduce of domain %u: %s\n", di->domid,
			strerror(errno));
		return -errno;
	}
	return 0;
}

static const char *const known_keys[] = {
    "name", "kernel",	  "memory",  "on_crash",    "driver_domain", "disk", "vif",
    "nic",  "extra_args", "standby", "watchdog_ms", "crash_limit",   "cpus",
};

/* cpus = (xl.cfg's vCPU affinity; here the CPUs the domain's processes run
 * on): the hv keeps it and places this instance and every later one (a
 * restart, a spare) there. 0 or -errno. */
static int domain_set_cpus(struct hvc *h, domid_t domid, const cpu_set_t *set, uint16_t flags)
{
	struct hv_affinity_req q = {.domid = domid, .flags = flags};
	for (unsigned c = 0; c < HV_AFFINITY_WORDS * 64 && c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, set))
			q.mask[c / 64] |= 1ull << (c % 64);
	return hvc_domctl_set_affinity(h, &q);
}

/* A CPU set as xl prints one: "1", "0-3,6". */
static void cpus_format(const cpu_set_t *set, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = 0;
	for (int c = 0; c < CPU_SETSIZE && o < len; c++) {
		if (!CPU_ISSET(c, set))
			continue;
		int e = c;
		while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set))
			e++;
		o += (size_t)(e > c ? snprintf(buf + o, len - o, "%s%d-%d", o ? "," : "", c, e)
				    : snprintf(buf + o, len - o, "%s%d", o ? "," : "", c));
		c = e;
	}
}

/* Where a domain without cpus = runs (docs/netback.md "Placement"). A
 * network round trip hands a packet between four processes (the
 * application, netfront, netback, netfront again); a hand-off to another CPU
 * that sleeps costs tens of microseconds where one on the waker's own CPU
 * costs a few. So, like xl's default of one vCPU per domain: a driver
 * domain with a NIC runs on one CPU, of those the toolstack may use the one
 * the fewest running domains are placed on alone (the last on a tie: CPU 0
 * takes most of a host's interrupts); a guest with a vif runs where its
 * first vif's backend runs, and so does what `drvdom exec` starts in it.
 * Anything else runs where the scheduler puts it. The placement yields
 * (HV_AFFINITY_YIELDING): while its threads queue for those CPUs the hv lets the
 * domain run anywhere, so a stream that needs two CPUs gets them. true
 * when *out is set. */
static bool auto_place(struct hvc *h, bool nic, const struct hv_domain_info *vback, cpu_set_t *out)
{
	cpu_set_t allowed, one;
	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		return false;
	if (vback) /* a backend that runs everywhere places nothing */
		return vback->pid > 0 && !sched_getaffinity(vback->pid, sizeof(*out), out) &&
		       !CPU_EQUAL(out, &allowed);
	if (!nic || CPU_COUNT(&allowed) < 2)
		return false;
	static struct hv_domain_info doms[1024];
	static unsigned placed[CPU_SETSIZE];
	uint32_t n = 0;
	if (hvc_domctl_list(h, doms, 1024, &n))
		return false;
	memset(placed, 0, sizeof(placed));
	for (uint32_t i = 0; i < n; i++) {
		if (doms[i].pid <= 0 || sched_getaffinity(doms[i].pid, sizeof(one), &one) ||
		    CPU_COUNT(&one) != 1)
			continue;
		for (unsigned c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &one))
				placed[c]++;
	}
	int best = -1;
	for (int c = CPU_SETSIZE - 1; c >= 0; c--)
		if (CPU_ISSET(c, &allowed) && (best < 0 || placed[c] < placed[best]))
			best = c;
	CPU_ZERO(out);
	CPU_SET(best, out);
	return true;
}

/* The crash-recovery keys (docs/recovery.md): on_crash, standby = 0|1,
 * watchdog_ms = N, crash_limit = "N/SECONDS". Prints why and returns
 * -EINVAL on a bad value. */
static int cfg_policy(const struct xlcfg *cfg, const char *on_crash, struct hv_policy_req *p)
{
	memset(p, 0, sizeof(*p));
	p->on_crash = !strcmp(on_crash, "restart")    ? HV_ON_CRASH_RESTART
		      : !strcmp(on_crash, "preserve") ? HV_ON_CRASH_PRESERVE
						      : HV_ON_CRASH_DESTROY;
	const struct xlcfg_entry *e = xlcfg_get(cfg, "standby");
	if (e) {
		if (e->val.type != XLCFG_INT || (e->val.num != 0 && e->val.num != 1)) {
			fprintf(stderr, "drvdom: line %d: standby must be 0 or 1\n", e->line);
			return -EINVAL;
		}
		if (e->val.num && p->on_crash != HV_ON_CRASH_RESTART) {
			fprintf(stderr,
				"drvdom: line %d: standby = 1 needs on_crash = "
				"\"restart\"\n",
				e->line);
			return -EINVAL;
		}
		p->standby = (uint8_t)e->val.num;
	}
	e = xlcfg_get(cfg, "watchdog_ms");
	if (e) {
		if (e->val.type != XLCFG_INT || e->val.num < 0 || e->val.num > 3600000 ||
		    (e->val.num > 0 && e->val.num < 10)) {
			fprintf(stderr,
				"drvdom: line %d: watchdog_ms must be 0 (off) or 10..3600000\n",
				e->line);
			return -EINVAL;
		}
		p->watchdog_ms = (uint32_t)e->val.num;
	}
	e = xlcfg_get(cfg, "crash_limit");
	if (e) {
		unsigned n, secs;
		char extra;
		if (e->val.type != XLCFG_STRING ||
		    sscanf(e->val.str, "%u/%u%c", &n, &secs, &extra) != 2 || n < 1 || n > 1000 ||
		    secs < 1 || secs > 86400) {
			fprintf(stderr,
				"drvdom: line %d: crash_limit must be \"CRASHES/SECONDS\", e.g. "
				"\"5/60\"\n",
				e->line);
			return -EINVAL;
		}
		p->max_restarts = n;
		p->window_ms = secs * 1000u;
	}
	return 0;
}

static int cfg_string(const struct xlcfg *cfg, const char *key, const char **out)
{
	const struct xlcfg_entry *e = xlcfg_get(cfg, key);
	if (!e)
		return 0;
	if (e->val.type == XLCFG_LIST) {
		fprintf(stderr, "drvdom: line %d: %s must be a string\n", e->line, key);
		return -EINVAL;
	}
	*out = e->val.str;
	return 0;
}

int tool_cmd_create(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: drvdom create FILE.cfg [key=value …]\n");
		return 2;
	}
	struct xlcfg cfg;
	char err[512];
	if (xlcfg_parse_file(argv[1], &cfg, err, sizeof(err))) {
		fprintf(stderr, "drvdom: %s\n", err);
		return 1;
	}
	int rc = 1;
	struct hvc *h = NULL;
	struct xs_handle *xs = NULL;
	struct xlcfg_disk *disks = NULL;
	struct tool_vif *vifs = NULL;
	struct hv_domain_info *backs = NULL, *vbacks = NULL;
	for (int i = 2; i < argc; i++) {
		if (xlcfg_set(&cfg, argv[i], err, sizeof(err))) {
			fprintf(stderr, "drvdom: %s\n", err);
			goto out;
		}
	}
	for (size_t i = 0; i < cfg.n; i++) {
		size_t k;
		for (k = 0; k < sizeof(known_keys) / sizeof(known_keys[0]); k++)
			if (!strcmp(cfg.entries[i].key, known_keys[k]))
				break;
		if (k == sizeof(known_keys) / sizeof(known_keys[0])) {
			fprintf(stderr, "drvdom: %s: line %d: unknown key '%s'\n", argv[1],
				cfg.entries[i].line, cfg.entries[i].key);
			goto out;
		}
	}
	const char *name = NULL, *kernel = NULL, *on_crash = "destroy";
	if (cfg_string(&cfg, "name", &name) || cfg_string(&cfg, "kernel", &kernel) ||
	    cfg_string(&cfg, "on_crash", &on_crash))
		goto out;
	if (!name || !*name) {
		fprintf(stderr, "drvdom: %s: 'name' is required\n", argv[1]);
		goto out;
	}
	const struct xlcfg_entry *e = xlcfg_get(&cfg, "driver_domain");
	bool driver = e && e->val.type == XLCFG_INT && e->val.num != 0;
	if (e && (e->val.type != XLCFG_INT || (e->val.num != 0 && e->val.num != 1))) {
		fprintf(stderr, "drvdom: line %d: driver_domain must be 0 or 1\n", e->line);
		goto out;
	}
	uint64_t memory = 0;
	e = xlcfg_get(&cfg, "memory");
	if (e) {
		if (e->val.type != XLCFG_INT || e->val.num <= 0 || e->val.num > (64 << 10)) {
			fprintf(stderr,
				"drvdom: line %d: memory must be a size in MiB (1..65536)\n",
				e->line);
			goto out;
		}
		memory = (uint64_t)e->val.num << 20;
	}
	if (strcmp(on_crash, "destroy") && strcmp(on_crash, "restart") &&
	    strcmp(on_crash, "preserve")) {
		fprintf(stderr, "drvdom: on_crash must be 'destroy', 'restart' or 'preserve'\n");
		goto out;
	}
	struct hv_policy_req policy;
	if (cfg_policy(&cfg, on_crash, &policy))
		goto out;
	cpu_set_t cpus;
	bool pin = false;
	e = xlcfg_get(&cfg, "cpus");
	if (e) {
		char num[24];
		const char *txt = e->val.str;
		if (e->val.type == XLCFG_INT) {
			snprintf(num, sizeof(num), "%lld", (long long)e->val.num);
			txt = num;
		}
		if (e->val.type == XLCFG_LIST || xlcfg_cpus_parse(txt, &cpus, err, sizeof(err))) {
			fprintf(stderr, "drvdom: line %d: %s\n", e->line,
				e->val.type == XLCFG_LIST ? "cpus must be a string (\"1\", \"0-3\")"
							  : err);
			goto out;
		}
		pin = true;
	}
	e = xlcfg_get(&cfg, "disk");
	if (e && e->val.type != XLCFG_LIST) {
		fprintf(stderr, "drvdom: line %d: disk must be a list: disk = [ '…' ]\n", e->line);
		goto out;
	}
	size_t ndisks = e ? e->val.nitems : 0;
	disks = ndisks ? calloc(ndisks, sizeof(*disks)) : NULL;
	if (ndisks && !disks)
		goto out;
	for (size_t i = 0; i < ndisks; i++) {
		if (xlcfg_disk_parse(e->val.items[i], &disks[i], err, sizeof(err))) {
			fprintf(stderr, "drvdom: %s\n", err);
			goto out;
		}
		if (!disks[i].backend[0]) {
			fprintf(stderr, "drvdom: disk '%s': backend= names no driver domain\n",
				e->val.items[i]);
			goto out;
		}
	}
	if (driver && ndisks) {
		fprintf(stderr, "drvdom: a driver domain cannot have disks of its own here\n");
		goto out;
	}

	const struct xlcfg_entry *ve = xlcfg_get(&cfg, "vif");
	if (ve && ve->val.type != XLCFG_LIST) {
		fprintf(stderr, "drvdom: line %d: vif must be a list: vif = [ '…' ]\n", ve->line);
		goto out;
	}
	size_t nvifs = ve ? ve->val.nitems : 0;
	vifs = nvifs ? calloc(nvifs, sizeof(*vifs)) : NULL;
	for (size_t i = 0; i < nvifs; i++) {
		if (!vifs || tool_vif_parse(ve->val.items[i], &vifs[i]))
			goto out;
	}
	const char *nic = NULL;
	if (cfg_string(&cfg, "nic", &nic) || (nic && !driver) || (driver && nvifs)) {
		if (nic && !driver)
			fprintf(stderr,
				"drvdom: nic = is for driver domains (driver_domain = 1)\n");
		if (driver && nvifs)
			fprintf(stderr,
				"drvdom: a driver domain cannot have vifs of its own here\n");
		goto out;
	}

	char kpath[PATH_MAX];
	if (!kernel)
		kernel = driver ? NULL : "drvdom-guest";
	if (!kernel) {
		fprintf(stderr,
			"drvdom: %s: a driver domain needs kernel = \"drvdom-blkback\" or "
			"similar\n",
			argv[1]);
		goto out;
	}
	if (strchr(kernel, '/'))
		snprintf(kpath, sizeof(kpath), "%s", kernel);
	else
		snprintf(kpath, sizeof(kpath), "%s/%s", tool_bin_dir(), kernel);
	if (access(kpath, X_OK)) {
		fprintf(stderr, "drvdom: kernel %s: %s\n", kpath, strerror(errno));
		goto out;
	}

	if (tool_connect_hv(&h) || !(xs = tool_connect_xs()))
		goto out;
	/* Resolve every backend before creating anything. */
	backs = ndisks ? calloc(ndisks, sizeof(*backs)) : NULL;
	vbacks = nvifs ? calloc(nvifs, sizeof(*vbacks)) : NULL;
	if ((ndisks && !backs) || (nvifs && !vbacks))
		goto out;
	for (size_t i = 0; i < ndisks; i++) {
		int r = tool_find_domain(h, disks[i].backend, &backs[i]);
		if (r || !(backs[i].flags & HV_DOMF_DRIVER) || backs[i].state != HV_DOM_RUNNING) {
			fprintf(stderr,
				"drvdom: disk %s: backend '%s' is not a running driver "
				"domain\n",
				disks[i].vdev, disks[i].backend);
			goto out;
		}
	}
	for (size_t i = 0; i < nvifs; i++) {
		int r = tool_find_domain(h, vifs[i].backend, &vbacks[i]);
		if (r || !(vbacks[i].flags & HV_DOMF_DRIVER) || vbacks[i].state != HV_DOM_RUNNING) {
			fprintf(stderr,
				"drvdom: vif %zu: backend '%s' is not a running driver "
				"domain\n",
				i, vifs[i].backend);
			goto out;
		}
	}

	bool placed = false; /* by auto_place, said when created */
	if (!pin)
		pin = placed = auto_place(h, nic != NULL, nvifs ? &vbacks[0] : NULL, &cpus);

	const char *args[64];
	size_t nargs = 0;
	e = xlcfg_get(&cfg, "extra_args");
	if (e && e->val.type == XLCFG_LIST)
		for (size_t i = 0; i < e->val.nitems && nargs < 63; i++)
			args[nargs++] = e->val.items[i];
	args[nargs] = NULL;
	struct hvc_create_args ca = {.kernel = kpath,
				     .argv = args,
				     .name = name,
				     .memory = memory,
				     .flags = driver ? HV_DOMF_DRIVER : 0,
				     .policy = &policy};
	struct hv_create_rep cr;
	int r = hvc_domctl_create(h, &ca, &cr);
	if (r) {
		fprintf(stderr, "drvdom: create %s: %s\n", name,
			r == -EEXIST ? "a domain of that name exists" : strerror(-r));
		goto out;
	}
	struct hv_domain_info di;
	r = hvc_domain_info(h, cr.domid, &di);
	if (!r && pin &&
	    (r = domain_set_cpus(h, di.domid, &cpus, placed ? HV_AFFINITY_YIELDING : 0)))
		fprintf(stderr, "drvdom: cpus: cannot pin domain %u: %s\n", di.domid, strerror(-r));
	if (!r)
		r = domain_xs_setup(xs, &di, &cr, driver);
	if (!r) {
		char p[128];
		snprintf(p, sizeof(p), "/local/domain/%u/drvdom/on_crash", di.domid);
		r = tool_xs_write(xs, XBT_NULL, p, on_crash) ? 0 : -EIO;
	}
	for (size_t i = 0; !r && i < ndisks; i++)
		r = tool_vbd_attach(h, xs, &di, &backs[i], &disks[i]);
	for (size_t i = 0; !r && i < nvifs; i++)
		r = tool_vif_attach(h, xs, &di, &vbacks[i], &vifs[i], (int)i);
	if (!r && nic)
		r = tool_nic_setup(h, xs, &di, nic);
	if (r) {
		fprintf(stderr, "drvdom: create %s failed; destroying it\n", name);
		tool_domain_teardown(h, xs, cr.domid, name);
		goto out;
	}
	char where[128] = "";
	if (placed)
		cpus_format(&cpus, where, sizeof(where));
	printf("created domain %u (%s)%s%s%s\n", di.domid, name, driver ? ", a driver domain" : "",
	       !placed		      ? ""
	       : CPU_COUNT(&cpus) > 1 ? ", on CPUs "
				      : ", on CPU ",
	       where);
	rc = 0;
out:
	free(vbacks);
	free(vifs);
	free(backs);
	free(disks);
	if (xs)
		xs_close(xs);
	hvc_close(h);
	xlcfg_free(&cfg);
	return rc;
}

/* Remove what the toolstack wrote for a domain and every device it had on
 * either end, then destroy it in the hv. */
void tool_domain_teardown(struct hvc *h, struct xs_handle *xs, domid_t domid, const char *name)
{
	char p[256];
	/* Backend directories that serve this domain, in any driver domain. */
	unsigned nd = 0;
	char **doms = xs_directory(xs, XBT_NULL, "/local/domain", &nd);
	for (unsigned i = 0; doms && i < nd; i++) {
		snprintf(p, sizeof(p), "/local/domain/%s/backend/vbd/%u", doms[i], domid);
		tool_vbd_revoke_all(h, xs, p, (domid_t)atoi(doms[i]));
		xs_rm(xs, XBT_NULL, p);
		snprintf(p, sizeof(p), "/local/domain/%s/backend/vif/%u", doms[i], domid);
		xs_rm(xs, XBT_NULL, p);
	}
	free(doms);
	hvc_domctl_destroy(h, domid);
	xs_release_domain(xs, domid);
	snprintf(p, sizeof(p), "/local/domain/%u", domid);
	xs_rm(xs, XBT_NULL, p);
	char dir[PATH_MAX];
	if (name && *name && !tool_path(dir, sizeof(dir), name))
		tool_rm_guest_dir(dir);
}

static const char *state_name(uint16_t s)
{
	switch (s) {
	case HV_DOM_RUNNING:
		return "running";
	case HV_DOM_PAUSED:
		return "paused";
	case HV_DOM_DYING:
		return "dying";
	case HV_DOM_DEAD:
		return "dead";
	case HV_DOM_RESTARTING:
		return "restarting";
	case HV_DOM_FAILED:
		return "failed";
	}
	return "?";
}

int tool_cmd_list(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct hvc *h;
	if (tool_connect_hv(&h))
		return 1;
	static struct hv_domain_info list[1024];
	uint32_t n = 0;
	int r = hvc_domctl_list(h, list, 1024, &n);
	if (r) {
		fprintf(stderr, "drvdom: list: %s\n", strerror(-r));
		hvc_close(h);
		return 1;
	}
	struct xs_handle *xs = tool_connect_xs();
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	cpu_set_t online, set;
	if (sched_getaffinity(0, sizeof(online), &online))
		CPU_ZERO(&online);
	printf("%-5s %-16s %-7s %-8s %10s %8s %-7s %s\n", "ID", "Name", "Role", "State",
	       "Uptime(s)", "Restarts", "CPUs", "Devices");
	for (uint32_t i = 0; i < n; i++) {
		const struct hv_domain_info *d = &list[i];
		char devs[256] = "";
		if (xs)
			tool_describe_devices(xs, d->domid, devs, sizeof(devs));
		double up = d->start_ns && now_ns > d->start_ns ? (now_ns - d->start_ns) / 1e9 : 0;
		char cpus[64] = "-"; /* where its process may run (cpus =, or placed) */
		if (d->pid > 0 && !sched_getaffinity(d->pid, sizeof(set), &set)) {
			if (CPU_EQUAL(&set, &online))
				snprintf(cpus, sizeof(cpus), "all");
			else
				cpus_format(&set, cpus, sizeof(cpus));
		}
		printf("%-5u %-16.*s %-7s %-8s %10.1f %8u %-7s %s\n", d->domid, (int)HV_NAME_MAX,
		       d->name,
		       d->domid == 0 ? "dom0" : (d->flags & HV_DOMF_DRIVER ? "driver" : "guest"),
		       state_name(d->state), up, d->restarts, cpus, devs[0] ? devs : "-");
	}
	if (xs)
		xs_close(xs);
	hvc_close(h);
	return 0;
}

static int destroy_or_kill(int argc, char **argv, bool kill)
{
	if (argc != 2) {
		fprintf(stderr, "usage: drvdom %s NAME|ID\n", kill ? "kill" : "destroy");
		return 2;
	}
	struct hvc *h;
	if (tool_connect_hv(&h))
		return 1;
	struct hv_domain_info d;
	int r = tool_find_domain(h, argv[1], &d);
	if (r || d.domid == 0) {
		fprintf(stderr, "drvdom: no domain '%s'\n", argv[1]);
		hvc_close(h);
		return 1;
	}
	if (kill) {
		r = hvc_domctl_kill(h, d.domid);
		if (r)
			fprintf(stderr, "drvdom: kill %s: %s\n", argv[1], strerror(-r));
		else
			printf("killed domain %u (%.*s)\n", d.domid, (int)HV_NAME_MAX, d.name);
	} else {
		struct xs_handle *xs = tool_connect_xs();
		if (!xs) {
			hvc_close(h);
			return 1;
		}
		char name[HV_NAME_MAX + 1];
		snprintf(name, sizeof(name), "%.*s", (int)HV_NAME_MAX, d.name);
		tool_domain_teardown(h, xs, d.domid, name);
		xs_close(xs);
		printf("destroyed domain %u (%s)\n", d.domid, name);
	}
	hvc_close(h);
	return r ? 1 : 0;
}

int tool_cmd_destroy(int argc, char **argv)
{
	return destroy_or_kill(argc, argv, false);
}

int tool_cmd_kill(int argc, char **argv)
{
	return destroy_or_kill(argc, argv, true);
}
