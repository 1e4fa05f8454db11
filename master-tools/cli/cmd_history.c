/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash history: past jobs and, for one worker, what the daemon kept of
 * its boots (board, card health, provisioning, TFTP, console). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "log.h"
#include "cli.h"
#include "master.h"
#include "parse.h"
#include "store.h"

static const char history_usage[] =
"Usage: netflash [--root DIR] history [MAC] [--json | --csv]\n"
"\n"
"Past jobs, newest first: when, worker, image, result, duration, MB/s, bytes,\n"
"target and the reason of a failure. With a MAC, also its model (when its\n"
"bootloader sent one), its card's identity and health findings, what its\n"
"hooks did, the files dnsmasq sent it over TFTP and the last 100\n"
"lines of its console (its boot log, as flasher-init sent it).\n"
"  --json    one job object a line (docs/api.md)\n"
"  --csv     a report: RFC 4180 CSV with a header line, the jobs only;\n"
"            control characters are written as \\xHH, and a field that a\n"
"            spreadsheet would run as a formula (=, +, -, @, TAB, CR)\n"
"            starts with a quote\n";

struct history_ctx {
	int out; /* HISTORY_* */
	int n;
};

enum { HISTORY_TEXT, HISTORY_JSON, HISTORY_CSV };

/* --json or --csv into *out (last wins); returns 0, -1 after --help, or 2. */
static int parse_flags(int argc, char **argv, int *out, int *positional)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, { "csv", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'j': *out = HISTORY_JSON; break;
		case 'c': *out = HISTORY_CSV; break;
		case 'h': fputs(history_usage, stdout); return -1;
		default: return cli_bad_option(argv, opts);
		}
	}
	*positional = optind;
	return 0;
}

/* One CSV field (RFC 4180), quoted when it holds a comma or a quote. A
 * worker's text reaches the admin's terminal and spreadsheet: control
 * characters (ESC, BEL, CR, ...) are written as \xHH, and a field that
 * starts with =, +, -, @, TAB or CR (OWASP's CSV injection list) gets a '
 * first. */
static void csv_field(const char *s, int last)
{
	int quote = strpbrk(s, ",\"") != NULL || (s[0] && strchr("=+-@\t\r", s[0]) != NULL);

	if (quote)
		putchar('"');
	if (s[0] && strchr("=+-@\t\r", s[0]))
		putchar('\'');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"')
			putchar('"');
		if (ch < 0x20 || ch == 0x7f)
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
	if (quote)
		putchar('"');
	putchar(last ? '\n' : ',');
}

static int history_row(const struct job *j, void *ctx)
{
	struct history_ctx *c = ctx;
	char when[32], a[600], b[200], mc[18];
	time_t t = (time_t)j->started_at;
	double rate = j->seconds > 0 ? (double)j->bytes / 1e6 / j->seconds : 0;

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
	if (c->out == HISTORY_CSV) {
		char num[64];

		snprintf(num, sizeof(num), "%llu", (unsigned long long)j->id);
		csv_field(num, 0);
		csv_field(when, 0);
		csv_field(j->mac, 0);
		csv_field(j->image, 0);
		csv_field(nf_job_state_name(j->state), 0);
		snprintf(num, sizeof(num), "%.1f", j->seconds);
		csv_field(num, 0);
		snprintf(num, sizeof(num), "%.1f", rate);
		csv_field(num, 0);
		snprintf(num, sizeof(num), "%llu", (unsigned long long)j->bytes);
		csv_field(num, 0);
		csv_field(j->target, 0);
		csv_field(j->reason, 1);
	} else if (c->out == HISTORY_JSON) {
		api_job_json(stdout, j);
		putchar('\n');
	}
	else
		printf("%-6llu %s  %-17s %-16.16s %-9s %7.1f %6.1f %12llu  %s\n", (unsigned long long)j->id, when,
		       cli_mac(j->mac, mc), nf_printable(b, sizeof(b), j->image), nf_job_state_name(j->state), j->seconds, rate, (unsigned long long)j->bytes,
		       nf_printable(a, sizeof(a), j->reason[0] ? j->reason : "-"));
	c->n++;
	return 0;
}

static int log_row(int64_t at, enum nf_event_kind kind, const char *line, void *ctx)
{
	char when[32], p[2048];
	time_t t = (time_t)at;

	(void)kind;
	(void)ctx;
	strftime(when, sizeof(when), "%H:%M:%S", localtime(&t));
	printf("  %s %s\n", when, nf_printable(p, sizeof(p), line));
	return 0;
}

/* What history MAC shows of a worker's events, in this order. */
static const struct {
	const char *title;
	enum nf_event_kind kind;
	unsigned limit;
} sections[] = {
	{ "enrolled (enroll, reimage, mass-flash, the API and the page; last 5)", NF_EVENT_ENROLL, 5 },
	{ "released (release, a verified job; last 5)", NF_EVENT_RELEASE, 5 },
	{ "contested (a second host claimed its job: docs/security.md; last 10)", NF_EVENT_CONTEST, 10 },
	{ "board (as the worker reported it at each job's start, last 3)", NF_EVENT_BOARD, 3 },
	{ "provisioning (written to the boot partition at flash time, last 5)", NF_EVENT_PROVISION, 5 },
	{ "card health (last 20)", NF_EVENT_CARD, 20 },
	{ "hooks (ROOT/hooks/*.d: exit status and output; last 20)", NF_EVENT_HOOK, 20 },
	{ "power (netflash power cycle, mass-flash retries; last 10)", NF_EVENT_POWER, 10 },
	{ "network boot (files dnsmasq sent, last 20)", NF_EVENT_TFTP, 20 },
	{ "worker console (last 100 lines)", NF_EVENT_LOG, 100 },
};

static int count_row(int64_t at, enum nf_event_kind kind, const char *line, void *ctx)
{
	(void)at;
	(void)kind;
	(void)line;
	++*(unsigned *)ctx;
	return 0;
}

/* 1 when the store knows mac: enrolled, a job, or any event. */
static int known(struct store *st, const char *mac)
{
	struct enrollment e;
	struct job j;
	unsigned n = 0;

	if (store_get(st, mac, &e) == 0 || store_job_latest(st, mac, &j) == 0)
		return 1;
	store_event_list(st, mac, NULL, 1, count_row, &n);
	return n > 0;
}

int cmd_history(struct master *m, int argc, char **argv)
{
	struct history_ctx c = { 0 };
	struct store *st = NULL;
	struct nf_mac mac = { 0 };
	int pos = 0, r = parse_flags(argc, argv, &c.out, &pos);

	if (r)
		return r < 0 ? 0 : r;
	if (argc - pos > 1) {
		nf_err("history takes at most one MAC (see netflash history --help)");
		return 2;
	}
	if (argc - pos == 1) {
		if (nf_mac_parse(argv[pos], &mac) < 0)
			return cli_bad_mac(argv[pos]);
	}
	if (cli_require_init(m) || cli_open_store(m, &st) < 0)
		return 1;
	if (argc - pos == 1 && !known(st, mac.s)) {
		nf_err("no history for %s: this master never enrolled it or saw it netboot (netflash ls lists the "
		       "workers)", mac.s);
		store_close(st);
		return 1;
	}
	if (c.out == HISTORY_CSV)
		printf("job,started,mac,image,result,seconds,mbps,bytes,target,reason\n");
	if (c.out == HISTORY_TEXT)
		printf("%-6s %-19s  %-17s %-16s %-9s %7s %6s %12s  %s\n", "JOB", "STARTED", "MAC", "IMAGE", "RESULT",
		       "SECONDS", "MB/s", "BYTES", "REASON");
	store_job_each(st, argc - pos == 1 ? mac.s : NULL, history_row, &c);
	if (!c.n && c.out == HISTORY_TEXT)
		printf("(no jobs yet)\n");
	if (argc - pos == 1 && c.out == HISTORY_TEXT) {
		char model[48];

		if (store_model(st, mac.s, model, sizeof(model)) == 0)
			printf("model (from its DHCP client GUID): %s\n", model);
		for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
			printf("%s:\n", sections[i].title);
			store_event_list(st, mac.s, &sections[i].kind, sections[i].limit, log_row, NULL);
		}
	}
	store_close(st);
	return 0;
}
