/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash release: end a worker's enrollment (release.c does it). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "parse.h"
#include "release.h"

static const char release_usage[] =
"Usage: netflash [--root DIR] release [--force] MAC\n"
"\n"
"Remove the worker's TFTP dir so its next boot comes from its card. Only a\n"
"real directory that netflash made is removed; symlinks are never followed.\n"
"A diskless worker's root leaves the NFS export files (ROOT/etc/netflash-\n"
"nfsroot.exports, ganesha-nfsroot.conf); its files stay where they are.\n"
"  --force   release a contested worker too (a second host claimed its job:\n"
"            check its card first; docs/security.md)\n";

int cmd_release(struct master *m, int argc, char **argv)
{
	char why[600];
	struct nf_mac mac;
	int force = argc == 3 && strcmp(argv[1], "--force") == 0, r;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(release_usage, stdout);
		return 0;
	}
	if (argc != 2 + force) {
		cli_usage_hint(argv[0]);
		return 2;
	}
	if (nf_mac_parse(argv[1 + force], &mac) < 0)
		return cli_bad_mac(argv[1 + force]);
	if (cli_require_init(m))
		return 1;
	r = master_release(m, mac.s, force, why, sizeof(why));
	if (r == -ENOENT) {
		nf_err("%s", why);
		return 1;
	}
	if (r < 0) {
		nf_err("cannot release %s: %s", mac.s, why);
		return 1;
	}
	if (why[0])
		nf_warn("%s", why);
	if (r == 0)
		printf("%s has no TFTP dir (already released); it boots from its card\n", mac.s);
	else
		printf("released %s: its TFTP dir is gone, its next boot comes from its card\n", mac.s);
	return 0;
}
