/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash reimage: enroll a running worker and make it netboot into the
 * flasher, through netflash-agent on the worker (over ssh). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"
#include "fileutil.h"
#include "log.h"
#include "manifest.h"
#include "enroll.h"
#include "cli.h"
#include "master.h"
#include "parse.h"
#include "provision_opts.h"
#include "store.h"

#define RSH_WORDS 24

static const char usage[] =
"Usage: netflash [--root DIR] reimage HOST|MAC --image NAME [--rsh CMD] [--agent PATH]\n"
"                [--keep-boot-files] [--no-reboot] [PROVISIONING OPTIONS]\n"
"\n"
"Reimage a running worker: enroll it (a fresh enrollment, replacing any\n"
"other) and make it netboot into the flasher.\n"
"\n"
"With HOST (a name or address the master can ssh to as root), the master\n"
"asks netflash-agent on the worker for its MAC, enrolls that MAC, then runs\n"
"'netflash-agent reimage' there: the agent checks with netflashd that this\n"
"enrollment is current, moves the Pi firmware on the card's boot partition\n"
"aside (bootcode.bin, start*.elf into netflash-disabled/), syncs and\n"
"reboots. The Pi finds no firmware on its card, netboots, and the flasher\n"
"writes the image; if it gives up before writing anything, it moves the\n"
"firmware back and the Pi boots its old system. With MAC, the master only\n"
"enrolls and prints the agent command to run on the worker.\n"
"\n"
"  -i, --image NAME      catalog image to write (required)\n"
"      --rsh CMD         how to run a command on HOST; HOST and the command\n"
"                        are appended (default: ssh -o BatchMode=yes\n"
"                        -o ConnectTimeout=10 -l root)\n"
"      --agent PATH      netflash-agent on the worker (default: netflash-agent)\n"
"      --keep-boot-files for a Pi 4/5 whose BOOT_ORDER tries the network\n"
"                        before the SD card: only check and reboot\n"
"      --no-reboot       the agent disables the card but does not reboot\n"
"  -H, --hostname H, -k, --ssh-key FILE, and the other provisioning options\n"
"                        of 'netflash enroll' (see its --help)\n"
"\n"
"If anything fails, the worker's card is left as it was; it may stay\n"
"enrolled ('netflash release MAC' undoes that).\n";

/* HOST as the master may pass it to ssh: never an option, no shell syntax. */
static int host_valid(const char *h)
{
	size_t n = strlen(h);

	return n > 0 && n <= 253 && h[0] != '-' &&
	       strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:_") == n;
}

/* Runs RSH HOST AGENT ARGS... (out: stdout into this file, or NULL). */
static int run_agent(const char *rsh, const char *host, const char *agent, const char *const *args,
		     const char *out, const char *input)
{
	char buf[1024], *argv[RSH_WORDS + 16], *tok, *save = NULL;
	size_t n = 0;

	snprintf(buf, sizeof(buf), "%s", rsh);
	for (tok = strtok_r(buf, " \t", &save); tok && n < RSH_WORDS; tok = strtok_r(NULL, " \t", &save))
		argv[n++] = tok;
	argv[n++] = (char *)host;
	argv[n++] = (char *)agent;
	for (size_t i = 0; args[i] && n < RSH_WORDS + 15; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	return master_run_input(argv, out, 0, input);
}

/* The worker's MAC, as netflash-agent on HOST reports it. */
static int ask_mac(struct master *m, const char *rsh, const char *host, const char *agent, char mac[18])
{
	char out[PATH_MAX], buf[128];
	const char *args[] = { "mac", NULL };
	struct nf_mac got;
	ssize_t n;
	int r, fd;

	/* A file of its own: two reimages may run at once. */
	master_path(m, out, sizeof(out), "state/.agent-mac-XXXXXX");
	if ((fd = mkstemp(out)) < 0) {
		nf_err("cannot create a temporary file in %s/state: %s", m->root, strerror(errno));
		return 1;
	}
	close(fd);
	r = run_agent(rsh, host, agent, args, out, NULL);
	n = nf_read_file(out, buf, sizeof(buf) - 1);
	unlink(out);
	if (r < 0) {
		nf_err("cannot run '%s mac' on %s (is netflash-agent installed there, and ssh as root set up?)", agent,
		       host);
		return 1;
	}
	if (n <= 0 || (buf[strcspn(buf, "\r\n")] = '\0', nf_mac_parse(buf, &got) < 0)) {
		nf_err("netflash-agent on %s did not answer with a MAC", host);
		return 1;
	}
	memcpy(mac, got.s, sizeof(got.s));
	return 0;
}

/* Without --hostname, the worker keeps the hostname it was enrolled with:
 * the card is written anew, so it is provisioned again. Says so. */
static void keep_hostname(struct master *m, struct enrollment *e, struct provision *prov)
{
	struct enrollment *old = calloc(1, sizeof(*old));
	struct store *st = NULL;

	if (old && master_open_store(m, &st) == 0 && store_get(st, e->mac, old) == 0 && old->hostname[0]) {
		snprintf(e->hostname, sizeof(e->hostname), "%s", old->hostname);
		prov->hostname = e->hostname;
		char mc[18];

		nf_info("%s keeps its hostname %s (--hostname sets another)", cli_mac(e->mac, mc), e->hostname);
	}
	store_close(st);
	free(old);
}

int cmd_reimage(struct master *m, int argc, char **argv)
{
	enum { O_RSH = 1, O_AGENT, O_KEEP, O_NOREBOOT };
	static const struct option own[] = {
		{ "image", required_argument, NULL, 'i' }, { "hostname", required_argument, NULL, 'H' },
		{ "ssh-key", required_argument, NULL, 'k' }, { "rsh", required_argument, NULL, O_RSH },
		{ "agent", required_argument, NULL, O_AGENT }, { "keep-boot-files", no_argument, NULL, O_KEEP },
		{ "no-reboot", no_argument, NULL, O_NOREBOOT }, { "help", no_argument, NULL, 'h' },
	};
	struct option opts[64];
	struct master_report rep = { .nwarnings = 0 };
	struct enrollment e;
	struct provision prov;
	const char *image = NULL, *host = NULL, *key = NULL, *hostname = NULL, *target;
	const char *rsh = "ssh -o BatchMode=yes -o ConnectTimeout=10 -l root", *agent = "netflash-agent";
	int keep = 0, no_reboot = 0, opt, r;
	char master_at[96];
	struct nf_mac mac;

	memset(&e, 0, sizeof(e));
	provision_init(&prov);
	provision_merge_options(own, sizeof(own) / sizeof(own[0]), opts, sizeof(opts) / sizeof(opts[0]));
	if (provision_spelled_out(argc, argv))
		return 2;
	while ((opt = getopt_long(argc, argv, "i:H:k:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'i': image = optarg; break;
		case 'H': hostname = optarg; break;
		case 'k': key = optarg; break;
		case O_RSH: rsh = optarg; break;
		case O_AGENT: agent = optarg; break;
		case O_KEEP: keep = 1; break;
		case O_NOREBOOT: no_reboot = 1; break;
		case 'h': printf("%s\n%s", usage, provision_usage); return 0;
		case '?': return cli_bad_option(argv, opts);
		default:
			if (provision_option(&prov, opt, optarg))
				return 2;
		}
	}
	if (optind + 1 != argc || !image) {
		nf_err("reimage needs HOST or MAC and --image NAME (see netflash reimage --help)");
		return 2;
	}
	target = argv[optind];
	if (nf_mac_parse(target, &mac) == 0) {
		memcpy(e.mac, mac.s, sizeof(mac.s));
	} else if (host_valid(target)) {
		host = target;
	} else {
		char q[300];

		nf_err("invalid HOST or MAC %s", nf_quote(q, sizeof(q), target));
		return 2;
	}
	if ((r = cli_enroll_settings(m, &e, &prov, image, hostname, key)))
		return r;
	if (host && ask_mac(m, rsh, host, agent, e.mac))
		return 1;
	if (!hostname)
		keep_hostname(m, &e, &prov);
	r = master_enroll(m, &e, &prov, 1, &rep);
	cli_print_report(&rep, 0);
	if (r < 0)
		return 1;
	snprintf(master_at, sizeof(master_at), "%s:%u", m->conf.server_ip, m->conf.port);
	if (!host) {
		/* printf is a shell builtin: the token is in no process's argv. */
		printf("now, on the worker, run as root:\n  printf '%%s\\n' %s | netflash-agent reimage --master %s "
		       "--token-file -%s\n", e.token, master_at, keep ? " --keep-boot-files" : "");
		return 0;
	}
	/* The token goes on the agent's stdin (through ssh), never on a command
	 * line where ps shows it to every local user, here and on the worker. */
	const char *args[] = { "reimage", "--master", master_at, "--token-file", "-", "--mac", e.mac,
			       keep ? "--keep-boot-files" : NULL, NULL, NULL };
	char input[80];

	if (no_reboot)
		args[keep ? 8 : 7] = "--no-reboot";
	snprintf(input, sizeof(input), "%s\n", e.token);
	r = run_agent(rsh, host, agent, args, NULL, input);
	if (r < 0) {
		nf_err("netflash-agent on %s did not make %s netboot (see its message above); the card is as it was, "
		       "and %s stays enrolled ('netflash release %s' undoes that)", host, e.mac, e.mac, e.mac);
		return 1;
	}
	printf("%s (%s): %s; it netboots into the flasher next (follow it with 'netflash status')\n", host, e.mac,
	       keep ? "rebooting" : no_reboot ? "its card no longer boots; reboot it when ready"
					  : "its card no longer boots, and it is rebooting");
	return 0;
}
