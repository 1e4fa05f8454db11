/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash recover: finish or undo what a killed command or daemon left
 * half done (recover.h), then check the state tree's invariants. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "cli.h"
#include "master.h"
#include "provision.h"
#include "recover.h"
#include "store.h"
#include "tftpdir.h"

static const char recover_usage[] =
"Usage: netflash [--root DIR] recover\n"
"\n"
"Completes or undoes changes that a kill or power loss interrupted (every\n"
"command that takes the state lock, and netflashd at start, do this too),\n"
"removes what they left (half-built TFTP dirs, old provisioning patches,\n"
"patches of released workers), then checks: each enrolled worker has its\n"
"TFTP dir with the database's token, a released one has neither dir nor\n"
"patch. Exit status 0 when all holds, 1 with one line per problem.\n";

struct check {
	struct master *m;
	char tftp[PATH_MAX];
	int problems, workers;
};

static void problem(struct check *c, const char *mac, const char *what)
{
	printf("%s: %s\n", mac, what);
	c->problems++;
}

static int check_worker(const struct enrollment *e, void *ctx)
{
	struct check *c = ctx;
	char gen[17], have[32], patch[PATH_MAX];
	int dir = tftpdir_exists(c->tftp, e->mac), r;

	c->workers++;
	provision_patch_path(c->m, e->mac, patch, sizeof(patch));
	if (e->state == NF_WORKER_ENROLLED || e->state == NF_WORKER_DISKLESS) {
		master_generation(e->token, gen);
		r = dir == 1 ? tftpdir_generation(c->tftp, e->mac, have, sizeof(have)) : -ENOENT;
		if (dir != 1)
			problem(c, e->mac, "enrolled, but it has no TFTP dir");
		else if (r == 0 && strcmp(have, gen) != 0)
			problem(c, e->mac, "its TFTP dir holds another token than the database");
		else if (r < 0 && r != -ENODATA)
			problem(c, e->mac, "its TFTP dir has no netflash marker");
	} else if (e->state == NF_WORKER_RELEASED) {
		if (dir != 0)
			problem(c, e->mac, "released, but its TFTP dir is still there");
		if (access(patch, F_OK) == 0)
			problem(c, e->mac, "released, but its provisioning patch (secrets) is still there");
	}
	return 0;
}

/* Names under dir that only an interrupted change leaves. */
static void check_leftovers(struct check *c, const char *rel, const char *const *prefixes, const char *suffix)
{
	char dir[PATH_MAX], what[400];
	struct dirent **names = NULL;
	int n;

	master_path(c->m, dir, sizeof(dir), rel);
	n = scandir(dir, &names, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		const char *d = names[i]->d_name;
		size_t len = strlen(d), sl = suffix ? strlen(suffix) : 0;
		int dots = strcmp(d, ".") == 0 || strcmp(d, "..") == 0;
		int bad = !dots && suffix && len > sl && strcmp(d + len - sl, suffix) == 0;

		for (const char *const *p = prefixes; *p && !bad && !dots; p++)
			bad = strncmp(d, *p, strlen(*p)) == 0;
		if (bad) {
			snprintf(what, sizeof(what), "%s/%.200s is left from an interrupted change", rel, d);
			problem(c, "state", what);
		}
		free(names[i]);
	}
	free(names);
}

int cmd_recover(struct master *m, int argc, char **argv)
{
	static const char *const tftp_prefixes[] = { NF_TFTP_SWAP_PREFIX, ".new-", ".del-", NULL };
	static const char *const none[] = { NULL };
	static const char *const any[] = { "", NULL };
	struct check c = { .m = m };
	struct store *st = NULL;

	if (argc > 1) {
		fputs(recover_usage, strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ? stdout : stderr);
		return strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ? 0 : 2;
	}
	if (cli_require_init(m) || cli_lock(m) < 0 || cli_open_store(m, &st) < 0)
		return 1;
	master_path(m, c.tftp, sizeof(c.tftp), "tftp");
	store_each(st, check_worker, &c);
	check_leftovers(&c, "tftp", tftp_prefixes, NULL);
	check_leftovers(&c, "state/provision", none, ".old");
	check_leftovers(&c, "state/intent", any, NULL);
	store_close(st);
	master_unlock(m);
	if (c.problems)
		return 1;
	printf("consistent: %d worker(s)\n", c.workers);
	return 0;
}
