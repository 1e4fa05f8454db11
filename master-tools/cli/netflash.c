/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash: the master's command line (git-style subcommands). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "cli.h"
#include "master.h"

static const char main_usage[] =
"Usage: netflash [--root DIR] COMMAND [ARGS]\n"
"\n"
"Netboot-to-SD flashing for Raspberry Pi fleets: this master answers the Pis'\n"
"network boot (dnsmasq proxy-DHCP + TFTP, one dir per worker MAC), serves the\n"
"image catalog over NFS, and releases a worker (removes its TFTP dir) once it\n"
"has flashed and verified its card.\n"
"\n"
"Commands:\n"
"  init                 create the state tree and the dnsmasq/NFS/systemd configs\n"
"  image add|ls|rm|check|finish  manage the image catalog\n"
"  boot-files import    collect Pi firmware and kernels, set up our initramfs\n"
"  enroll MAC --image NAME   make a worker netboot into the flasher\n"
"  release MAC          let a worker boot from its card again\n"
"  ls                   list workers\n"
"  status [--watch]     live fleet status as netflashd records it\n"
"  history [MAC]        past jobs: duration, throughput, result\n"
"  mass-flash --image NAME   enroll and flash every Pi that netboots\n"
"  reimage HOST|MAC --image NAME   reflash a running worker (netflash-agent)\n"
"  power cycle MAC...   switch workers off and on (relays in ROOT/power.conf)\n"
"  dhcp-event ...       dnsmasq's dhcp-script (records the Pis it sees)\n"
"  recover              finish what a crash interrupted, check the state tree\n"
"  hook-run EVENT       run ROOT/hooks/EVENT.d (done, failed, enrolled) now\n"
"\n"
"Options:\n"
"  --root DIR           the state tree (default " NF_DEFAULT_ROOT ")\n"
"  -h, --help           this help; 'netflash COMMAND --help' for each command\n"
"  -V, --version        the version\n";

/* "netflash init --root R": --root given after the command is taken out
 * of its arguments (up to a "--"). *n: the count left. Returns 0 or 2. */
static int take_root(struct master *m, int argc, char **argv, int *n)
{
	int o = 1, i = 1;

	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *v = NULL;

		if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
			v = argv[++i];
		else if (strncmp(argv[i], "--root=", 7) == 0)
			v = argv[i] + 7;
		if (!v) {
			argv[o++] = argv[i];
			continue;
		}
		if (!v[0] || strlen(v) >= sizeof(m->root) - 64) {
			nf_err("--root is empty or too long");
			return 2;
		}
		snprintf(m->root, sizeof(m->root), "%s", v);
	}
	for (; i < argc; i++)
		argv[o++] = argv[i];
	argv[o] = NULL;
	*n = o;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct { const char *name; int (*fn)(struct master *, int, char **); } cmds[] = {
		{ "init", cmd_init }, { "image", cmd_image }, { "boot-files", cmd_boot_files },
		{ "enroll", cmd_enroll }, { "release", cmd_release }, { "ls", cmd_ls },
		{ "status", cmd_status }, { "history", cmd_history }, { "mass-flash", cmd_mass_flash },
		{ "dhcp-event", cmd_dhcp_event }, { "reimage", cmd_reimage }, { "power", cmd_power },
		{ "recover", cmd_recover }, { "hook-run", cmd_hook_run },
	};
	struct master m = { .root = NF_DEFAULT_ROOT, .lock_fd = -1, .tell = nf_log_tell };
	const char *env = getenv("NETFLASH_ROOT");
	int i = 1;

	nf_log_setup("netflash", NF_LOG_INFO);
	if (env && env[0] && strlen(env) < sizeof(m.root) - 64)
		snprintf(m.root, sizeof(m.root), "%s", env);
	/* Global options before the command (and --root after it, below). */
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) {
			if (strlen(argv[i + 1]) == 0 || strlen(argv[i + 1]) >= sizeof(m.root) - 64) {
				nf_err("--root is empty or too long");
				return 2;
			}
			snprintf(m.root, sizeof(m.root), "%s", argv[i + 1]);
			i += 2;
		} else if (strncmp(argv[i], "--root=", 7) == 0 && strlen(argv[i] + 7) > 0 &&
			   strlen(argv[i] + 7) < sizeof(m.root) - 64) {
			snprintf(m.root, sizeof(m.root), "%s", argv[i] + 7);
			i++;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(main_usage, stdout);
			return 0;
		} else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
			printf("netflash %s\n", NETFLASH_VERSION);
			return 0;
		} else {
			nf_err("unknown option '%s' (see netflash --help)", argv[i]);
			return 2;
		}
	}
	if (i == argc) {
		fputs(main_usage, stderr);
		return 2;
	}
	for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++) {
		if (strcmp(argv[i], cmds[c].name) == 0) {
			int n = 0, r = take_root(&m, argc - i, argv + i, &n);

			if (r)
				return r;
			optind = 1;
			/* The commands say what is wrong with an option, once
			 * (cli_bad_option), in netflash's voice. */
			opterr = 0;
			return cmds[c].fn(&m, n, argv + i);
		}
	}
	nf_err("unknown command '%s' (see netflash --help)", argv[i]);
	return 2;
}
