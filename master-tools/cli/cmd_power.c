/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash power: power-cycle workers through ROOT/power.conf (GPIO relays
 * via libgpiod, or a command per worker). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "cli.h"
#include "master.h"
#include "parse.h"
#include "power.h"
#include "store.h"

static const char usage[] =
"Usage: netflash [--root DIR] power cycle [--off-time SECONDS] MAC...\n"
"       netflash [--root DIR] power ls\n"
"\n"
"Switch workers off and on again: a Pi stuck in a boot loop, or a Pi 4/5\n"
"that should try the network boot now. How each worker's power is switched\n"
"is written in ROOT/power.conf, one line per worker:\n"
"\n"
"  # MAC              how\n"
"  b8:27:eb:d3:85:78  gpio gpiochip0:17:active-low\n"
"  dc:a6:32:01:02:03  exec /usr/local/bin/poe-port-cycle switch1 7\n"
"\n"
"gpio CHIP:LINE[:FLAG]...  a relay on this GPIO line of the master (libgpiod;\n"
"    CHIP is gpiochipN or a chip label, LINE an offset or a line name; FLAGs:\n"
"    active-low, open-drain, pull-up, pull-down, bias-off). The line is driven\n"
"    active for the off time, then inactive, then released. Wire the relay so\n"
"    that the worker has power while the line is inactive (the normally\n"
"    closed contacts): a master that stops never leaves a worker dark.\n"
"exec /PATH [ARG]...  a command that power-cycles the worker itself (a PoE\n"
"    switch port, a smart PDU); no shell, at most 15 arguments. It gets\n"
"    NETFLASH_MAC and NETFLASH_OFF_SECONDS; exit status 0 means done.\n"
"\n"
"mass-flash uses the same file to retry a Pi that does not ask for its job\n"
"(see netflash mass-flash --help: --boot-timeout, --power-retries).\n"
"\n"
"  -t, --off-time SECONDS   how long the power stays off (default 5, 1..600)\n"
"  -h, --help               this help\n"
"\n"
"Each cycle is recorded in the worker's history. Exit status: 0 when every\n"
"MAC was cycled, 1 when one failed, 2 on a usage error.\n";

/* ctx: the rows shown so far (int); the header comes with the first. */
static int list_one(const struct power_entry *e, void *ctx)
{
	char spec[NF_GPIO_SPEC_MAX + 1], mc[18];
	int *shown = ctx;

	if (!(*shown)++)
		printf("%-17s  %-4s  %s\n", "MAC", "KIND", "TARGET");
	if (e->is_exec) {
		printf("%-17s  exec  %s\n", cli_mac(e->mac, mc), e->cmd);
	} else {
		nf_gpio_format(&e->gpio, spec, sizeof(spec));
		printf("%-17s  gpio  %s\n", cli_mac(e->mac, mc), spec);
	}
	return 0;
}

static int power_ls(struct master *m)
{
	char detail[1400], conf[PATH_MAX];
	int r, shown = 0;

	/* No power.conf is no power control, not a fault. */
	if (master_path(m, conf, sizeof(conf), "power.conf") == 0 && access(conf, F_OK) < 0 && errno == ENOENT) {
		printf("(no power control: %s does not exist; netflash power --help shows its format)\n", conf);
		return 0;
	}
	r = power_each(m, list_one, &shown, detail, sizeof(detail));
	if (r < 0) {
		nf_err("%s", detail);
		return 1;
	}
	if (!shown)
		printf("(%s lists no worker)\n", conf);
	return 0;
}

/* Cycles one MAC; logs. Returns 0 or 1. */
static int cycle_one(struct master *m, struct store *st, const char *arg, unsigned off_s)
{
	struct power_entry e;
	char q[64], detail[1400], what[NF_GPIO_SPEC_MAX + 64];
	struct nf_mac mac;
	int r;

	if (nf_mac_parse(arg, &mac) < 0) {
		nf_err("invalid MAC %s: expected six hex bytes like b8:27:eb:d3:85:78", nf_quote(q, sizeof(q), arg));
		return 1;
	}
	if ((r = power_find(m, mac.s, &e, detail, sizeof(detail))) < 0) {
		nf_err("%s", detail);
		return 1;
	}
	if (e.is_exec) {
		snprintf(what, sizeof(what), "exec, %u s", off_s);
	} else {
		char spec[NF_GPIO_SPEC_MAX + 1];

		nf_gpio_format(&e.gpio, spec, sizeof(spec));
		snprintf(what, sizeof(what), "gpio %s, off %u s", spec, off_s);
	}
	nf_info("power-cycling %s (%s)", mac.s, what);
	if ((r = power_cycle(&e, off_s * 1000, detail, sizeof(detail))) < 0) {
		nf_err("%s: power cycle failed: %s", mac.s, detail);
		if (st)
			store_event(st, mac.s, NF_EVENT_POWER, "power cycle failed");
		return 1;
	}
	if (st)
		store_event(st, mac.s, NF_EVENT_POWER, what);
	printf("power-cycled %s (%s)\n", mac.s, what);
	return 0;
}

int cmd_power(struct master *m, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "off-time", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	struct store *st = NULL;
	uint64_t off_s = 5;
	int opt, rc = 0;

	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "ls") == 0 && argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(argv[1], "ls") == 0 && argc == 2)
		return cli_require_init(m) ? 1 : power_ls(m);
	if (strcmp(argv[1], "cycle") != 0) {
		nf_err("unknown power command '%s' (expected cycle or ls; see netflash power --help)", argv[1]);
		return 2;
	}
	argc--;
	argv++;
	while ((opt = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			if (nf_parse_u64(optarg, 1, 600, &off_s) < 0) {
				nf_err("invalid --off-time '%s': seconds, 1 to 600", optarg);
				return 2;
			}
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return cli_bad_option(argv, opts);
		}
	}
	if (optind == argc) {
		nf_err("power cycle needs at least one MAC (see netflash power --help)");
		return 2;
	}
	if (cli_require_init(m))
		return 1;
	if (cli_open_store(m, &st) < 0)
		st = NULL; /* the cycle matters more than its history line */
	for (int i = optind; i < argc; i++)
		rc |= cycle_one(m, st, argv[i], (unsigned)off_s);
	store_close(st);
	return rc;
}
