/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash hook-run EVENT: the hooks runner that netflashd and enroll
 * start, detached, when something happened to a worker (hooks.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks.h"
#include "log.h"
#include "cli.h"
#include "master.h"
#include "parse.h"
#include "store.h"

extern char **environ;

static const char usage[] =
"Usage: netflash [--root DIR] hook-run done|failed|enrolled\n"
"\n"
"Run the hooks in ROOT/hooks/EVENT.d/ one by one, in name order, with this\n"
"process's NETFLASH_* variables (the facts of the event) in their\n"
"environment, each for at most hook_timeout seconds of netflash.conf (30),\n"
"and record each one's exit status and the start of its output in the\n"
"worker's history (netflash history MAC). netflashd and enroll start this\n"
"themselves; run it by hand to try a hook.\n";

struct ctx {
	const char *event, *mac;
	struct store *st;
	unsigned timeout;
};

static void record(const struct hook_result *h, void *arg)
{
	struct ctx *c = arg;
	char line[1400];

	if (h->skipped[0])
		snprintf(line, sizeof(line), "%s.d/%s: skipped: %s", c->event, h->name, h->skipped);
	else if (h->run.timed_out)
		snprintf(line, sizeof(line), "%s.d/%s: killed after %u s%s%s", c->event, h->name, c->timeout,
			 h->run.output[0] ? ": " : "", h->run.output);
	else
		snprintf(line, sizeof(line), "%s.d/%s: %s %d in %.1f s%s%s", c->event, h->name,
			 h->run.status < 0 ? "signal" : "exit", h->run.status < 0 ? -h->run.status : h->run.status,
			 h->run.seconds, h->run.output[0] ? ": " : "", h->run.output);
	if (h->skipped[0] || h->run.timed_out || h->run.status != 0)
		nf_warn("hook %s for %s", line, c->mac ? c->mac : "-");
	else
		nf_info("hook %s for %s", line, c->mac ? c->mac : "-");
	if (c->st && c->mac)
		store_event(c->st, c->mac, NF_EVENT_HOOK, line);
}

int cmd_hook_run(struct master *m, int argc, char **argv)
{
	char dir[PATH_MAX], rel[32], *env[32], mac_var[40], ev_var[40], root_var[PATH_MAX + 16];
	const char *mac_s = getenv("NETFLASH_MAC");
	enum nf_hook_event ev;
	struct nf_mac mac;
	struct ctx c = { 0 };
	size_t n = 0;
	int r;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc != 2 || nf_hook_event_parse(argv[1], &ev) < 0) {
		nf_err("hook-run takes one event: done, failed or enrolled (see netflash hook-run --help)");
		return 2;
	}
	if (cli_require_init(m))
		return 1;
	c.event = nf_hook_event_name(ev);
	c.timeout = m->conf.hook_timeout ? m->conf.hook_timeout : NF_HOOK_TIMEOUT_DEFAULT;
	/* The worker's MAC as the history keys it (any spelling given). */
	if (mac_s) {
		if (nf_mac_parse(mac_s, &mac) < 0)
			return cli_bad_mac(mac_s);
		c.mac = mac.s;
		snprintf(mac_var, sizeof(mac_var), "NETFLASH_MAC=%s", mac.s);
		env[n++] = mac_var;
	}
	/* The hooks get the facts and a fixed PATH, nothing else of our
	 * environment; the event and root are this run's. */
	snprintf(ev_var, sizeof(ev_var), "NETFLASH_EVENT=%s", c.event);
	snprintf(root_var, sizeof(root_var), "NETFLASH_ROOT=%s", m->root);
	env[n++] = (char *)NF_HOOK_PATH;
	env[n++] = ev_var;
	env[n++] = root_var;
	for (char **e = environ; *e && n + 1 < sizeof(env) / sizeof(env[0]); e++)
		if (strncmp(*e, "NETFLASH_", 9) == 0 && strncmp(*e, "NETFLASH_MAC=", 13) != 0 &&
		    strncmp(*e, "NETFLASH_EVENT=", 15) != 0 && strncmp(*e, "NETFLASH_ROOT=", 14) != 0)
			env[n++] = *e;
	env[n] = NULL;
	snprintf(rel, sizeof(rel), "hooks/%s.d", c.event);
	if (master_path(m, dir, sizeof(dir), rel) < 0)
		return 1;
	if (cli_open_store(m, &c.st) < 0)
		c.st = NULL;
	r = master_hooks_run(dir, env, c.timeout, record, &c);
	if (r == -EPERM) {
		nf_err("hooks in %s not run: it and its parent must be owned by root and writable by their owner only",
		       dir);
		if (c.st && c.mac)
			store_event(c.st, c.mac, NF_EVENT_HOOK, "hooks not run: their directory (or ROOT/hooks) may be "
				    "written by others than root");
	}
	else if (r < 0 && r != -ENOENT)
		nf_err("cannot read %s: %s", dir, nf_strerror(r));
	store_close(c.st);
	return r < 0 && r != -ENOENT ? 1 : 0;
}
