/* netflash status | history: the fleet as the daemon recorded it. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "json.h"
#include "log.h"
#include "master.h"
#include "parse.h"
#include "store.h"

static const char status_usage[] =
"Usage: netflash [--root DIR] status [--json] [--watch]\n"
"\n"
"One line a worker: MAC, hostname, image, state, progress of its current or\n"
"last job, MB/s, ETA, failed attempts and the last error.\n"
"  --json    one JSON object a worker, one a line\n"
"  --watch   redraw every second until interrupted\n";

static const char history_usage[] =
"Usage: netflash [--root DIR] history [MAC] [--json | --csv]\n"
"\n"
"Past jobs, newest first: when, worker, image, result, duration, MB/s, bytes,\n"
"target and the reason of a failure. With a MAC, also its model (when its\n"
"bootloader sent one), its card's identity and health findings, the files dnsmasq sent it over TFTP and the last 100\n"
"lines of its console (its boot log, as flasher-init sent it).\n"
"  --json    one job object a line (docs/api.md)\n"
"  --csv     a report: RFC 4180 CSV with a header line, the jobs only; a\n"
"            field that a spreadsheet would run as a formula (=, +, -, @)\n"
"            starts with a quote\n";

struct status_ctx {
	struct store *st;
	int json;
	int n;
};

static int status_row(const struct enrollment *e, void *ctx)
{
	struct status_ctx *c = ctx;
	struct worker_view v;
	char err[300];

	worker_view(c->st, e, &v);
	nf_printable(err, sizeof(err), e->last_error[0] ? e->last_error : "-");
	if (c->json) {
		api_worker_json(stdout, c->st, e);
		putchar('\n');
	} else {
		char h[200], im[200];

		printf("%-17s  %-12.12s %-16.16s %-9.9s %5s %6s %6s %3u  %.40s\n", e->mac,
		       nf_printable(h, sizeof(h), e->hostname[0] ? e->hostname : "-"), nf_printable(im, sizeof(im), e->image),
		       v.state, v.pct, v.rate, v.eta, e->attempts, err);
	}
	c->n++;
	return 0;
}

static int parse_flags(int argc, char **argv, int *json, int *watch, const char *help, int *positional)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, { "watch", no_argument, NULL, 'w' },
		{ "csv", no_argument, NULL, 'c' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "jwh", opts, NULL)) != -1) {
		switch (opt) {
		case 'j': *json = 1; break;
		case 'c':
			if (watch) { /* only history has a CSV report */
				nf_err("status has no --csv (see netflash status --help)");
				return 2;
			}
			*json = 2;
			break;
		case 'w':
			if (!watch) {
				fputs(help, stderr);
				return 2;
			}
			*watch = 1;
			break;
		case 'h': fputs(help, stdout); return -1;
		default: master_usage_hint(argv[0]); return 2;
		}
	}
	*positional = optind;
	return 0;
}

int cmd_status(struct master *m, int argc, char **argv)
{
	struct status_ctx c = { .json = 0 };
	int watch = 0, pos, r = parse_flags(argc, argv, &c.json, &watch, status_usage, &pos);

	if (r)
		return r < 0 ? 0 : r;
	if (pos != argc) {
		nf_err("status takes no arguments (see netflash status --help)");
		return 2;
	}
	if (master_require_init(m) || master_open_store(m, &c.st) < 0)
		return 1;
	do {
		if (watch)
			printf("\033[H\033[2J");
		if (!c.json)
			printf("%-17s  %-12s %-16s %-9s %5s %6s %6s %3s  %s\n", "MAC", "HOSTNAME", "IMAGE", "STATE",
			       "DONE", "MB/s", "ETA", "TRY", "LAST ERROR");
		c.n = 0;
		store_each(c.st, status_row, &c);
		if (!c.n && !c.json)
			printf("(no workers)\n");
		fflush(stdout);
	} while (watch && sleep(1) == 0);
	store_close(c.st);
	return 0;
}

struct history_ctx {
	int json, n; /* json: 1 JSON lines, 2 CSV */
};

/* One CSV field (RFC 4180): quoted when it holds a comma, quote or line
 * break; a leading =, +, - or @ gets a ' first (OWASP's CSV injection). */
static void csv_field(const char *s, int last)
{
	int quote = strpbrk(s, ",\"\r\n") != NULL || strchr("=+-@", s[0]) != NULL;

	if (quote)
		putchar('"');
	if (s[0] && strchr("=+-@", s[0]))
		putchar('\'');
	for (; *s; s++) {
		if (*s == '"')
			putchar('"');
		putchar(*s);
	}
	if (quote)
		putchar('"');
	putchar(last ? '\n' : ',');
}

static int history_row(const struct job *j, void *ctx)
{
	struct history_ctx *c = ctx;
	char when[32], a[600], b[200];
	time_t t = (time_t)j->started_at;
	double rate = j->seconds > 0 ? (double)j->bytes / 1e6 / j->seconds : 0;

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
	if (c->json == 2) {
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
	} else if (c->json) {
		api_job_json(stdout, j);
		putchar('\n');
	}
	else
		printf("%-6llu %s  %-17s %-16.16s %-9s %7.1f %6.1f %12llu  %s\n", (unsigned long long)j->id, when,
		       j->mac, nf_printable(b, sizeof(b), j->image), nf_job_state_name(j->state), j->seconds, rate, (unsigned long long)j->bytes,
		       nf_printable(a, sizeof(a), j->reason[0] ? j->reason : "-"));
	c->n++;
	return 0;
}

static int log_row(int64_t at, const char *line, void *ctx)
{
	char when[32], p[2048];
	time_t t = (time_t)at;

	(void)ctx;
	strftime(when, sizeof(when), "%H:%M:%S", localtime(&t));
	printf("  %s %s\n", when, nf_printable(p, sizeof(p), line));
	return 0;
}

int cmd_history(struct master *m, int argc, char **argv)
{
	struct history_ctx c = { 0 };
	struct store *st = NULL;
	char macs[18];
	uint8_t mac[6];
	int pos, r = parse_flags(argc, argv, &c.json, NULL, history_usage, &pos);

	if (r)
		return r < 0 ? 0 : r;
	if (argc - pos > 1) {
		nf_err("history takes at most one MAC (see netflash history --help)");
		return 2;
	}
	if (argc - pos == 1) {
		if (nf_parse_mac(argv[pos], mac) < 0) {
			char q[128];

			nf_err("invalid MAC %s", nf_quote(q, sizeof(q), argv[pos]));
			return 2;
		}
		nf_format_mac(mac, macs);
	}
	if (master_require_init(m) || master_open_store(m, &st) < 0)
		return 1;
	if (c.json == 2)
		printf("job,started,mac,image,result,seconds,mbps,bytes,target,reason\n");
	if (!c.json)
		printf("%-6s %-19s  %-17s %-16s %-9s %7s %6s %12s  %s\n", "JOB", "STARTED", "MAC", "IMAGE", "RESULT",
		       "SECONDS", "MB/s", "BYTES", "REASON");
	store_job_each(st, argc - pos == 1 ? macs : NULL, history_row, &c);
	if (!c.n && !c.json)
		printf("(no jobs yet)\n");
	if (argc - pos == 1 && !c.json) {
		char model[48];

		if (store_model(st, macs, model, sizeof(model)) == 0)
			printf("model (from its DHCP client GUID): %s\n", model);
		printf("board (as the worker reported it at each job's start, last 3):\n");
		store_events(st, macs, "board", 3, log_row, NULL);
		printf("provisioning (written to the boot partition at flash time, last 5):\n");
		store_events(st, macs, "provision", 5, log_row, NULL);
		printf("card health (last 20):\n");
		store_events(st, macs, "card", 20, log_row, NULL);
		printf("power (netflash power cycle, mass-flash retries; last 10):\n");
		store_events(st, macs, "power", 10, log_row, NULL);
		printf("network boot (files dnsmasq sent, last 20):\n");
		store_events(st, macs, "tftp", 20, log_row, NULL);
		printf("worker console (last 100 lines):\n");
		store_events(st, macs, "log", 100, log_row, NULL);
	}
	store_close(st);
	return 0;
}
