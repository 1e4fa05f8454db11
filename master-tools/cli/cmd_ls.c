/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash ls: the workers the master knows, one line each or as JSON. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "log.h"
#include "cli.h"
#include "master.h"
#include "store.h"
#include "tftpdir.h"

struct ls_ctx {
	char tftp[PATH_MAX];
	int n;
};

static int ls_row(const struct enrollment *e, void *ctx)
{
	struct ls_ctx *c = ctx;
	char when[32], mc[18];
	time_t t = (time_t)e->updated_at;
	int dir = tftpdir_exists(c->tftp, e->mac);

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M", localtime(&t));
	printf("%-17s  %-16s %-20s %-9s %-4s %s\n", cli_mac(e->mac, mc), e->hostname[0] ? e->hostname : "-", e->image,
	       nf_worker_state_name(e->state), dir > 0 ? "yes" : "no", when);
	c->n++;
	return 0;
}

int cmd_ls(struct master *m, int argc, char **argv)
{
	struct ls_ctx c = { .n = 0 };
	struct store *st = NULL;
	int json = argc == 2 && strcmp(argv[1], "--json") == 0;

	if (argc > 1 && !json) {
		if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
			printf("Usage: netflash [--root DIR] ls [--json]\n\nList enrolled and past workers: MAC, hostname, image, state,\n"
			       "whether a TFTP dir exists (the worker netboots) and the last change.\n"
			       "  --json    one JSON array of worker objects (docs/api.md), as /api/workers\n");
			return 0;
		}
		nf_err("ls takes only --json (see netflash ls --help)");
		return 2;
	}
	if (cli_require_init(m) || cli_open_store(m, &st) < 0)
		return 1;
	if (json) {
		int r = api_workers_json(stdout, st);

		putchar('\n');
		store_close(st);
		return r < 0 ? 1 : 0;
	}
	master_path(m, c.tftp, sizeof(c.tftp), "tftp");
	printf("%-17s  %-16s %-20s %-9s %-4s %s\n", "MAC", "HOSTNAME", "IMAGE", "STATE", "TFTP", "CHANGED");
	store_each(st, ls_row, &c);
	store_close(st);
	if (c.n == 0)
		printf("(no workers; enroll one with: netflash enroll MAC --image NAME)\n");
	return 0;
}
