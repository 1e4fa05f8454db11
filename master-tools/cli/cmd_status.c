/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash status: the fleet now, as the daemon recorded it. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "json.h"
#include "log.h"
#include "cli.h"
#include "master.h"
#include "parse.h"
#include "store.h"

static const char status_usage[] =
"Usage: netflash [--root DIR] status [--json] [--watch]\n"
"\n"
"One line a worker: MAC, hostname, image, state, progress of its current or\n"
"last job, MB/s, ETA, failed attempts and the last error; then the multicast\n"
"sessions netflashd holds (state/sessions.json; the API's /api/sessions):\n"
"image, state, members, and who left and why.\n"
"  --json    one JSON object a worker, one a line\n"
"  --watch   redraw every second until interrupted\n";

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
	/* The column holds 40: a longer reason says it goes on (status --json
	 * and history have it whole). */
	if (strlen(err) > 40)
		memcpy(err + 37, "...", 4);
	if (c->json) {
		api_worker_json(stdout, c->st, e);
		putchar('\n');
	} else {
		char h[200], im[200], mc[18];

		printf("%-17s  %-12.12s %-16.16s %-9.9s %5s %6s %6s %3u  %.40s\n", cli_mac(e->mac, mc),
		       nf_printable(h, sizeof(h), e->hostname[0] ? e->hostname : "-"), nf_printable(im, sizeof(im), e->image),
		       v.state, v.pct, v.rate, v.eta, e->attempts, err);
	}
	c->n++;
	return 0;
}

/* Member key of a JSON object, as a number (0 when absent) or a string
 * (def when absent or null). */
static int64_t jint(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static const char *jstr(json_object *o, const char *key, const char *def)
{
	json_object *v;
	const char *t = json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;

	return t ? t : def;
}

/* The multicast sessions netflashd wrote to ROOT/state/sessions.json. */
static void print_sessions(const struct master *m)
{
	char path[PATH_MAX], q[200], when[240], w[240];
	json_object *all, *s, *ms;
	time_t now = time(NULL);

	if (master_path(m, path, sizeof(path), "state/sessions.json") < 0 || access(path, F_OK) < 0)
		return;
	if (!(all = json_object_from_file(path)) || !json_object_is_type(all, json_type_array)) {
		nf_warn("%s is not netflashd's session list, ignoring", path);
		json_object_put(all);
		return;
	}
	for (size_t i = 0; i < json_object_array_length(all); i++) {
		unsigned n, done = 0, failed = 0;
		const char *state;

		s = json_object_array_get_idx(all, i);
		ms = json_object_object_get_ex(s, "members", &ms) ? ms : NULL;
		n = ms ? (unsigned)json_object_array_length(ms) : 0;
		for (unsigned k = 0; k < n; k++) {
			done += strcmp(jstr(json_object_array_get_idx(ms, k), "state", ""), "done") == 0;
			failed += strcmp(jstr(json_object_array_get_idx(ms, k), "state", ""), "failed") == 0;
		}
		state = jstr(s, "state", "?");
		if (strcmp(state, "ended") == 0)
			snprintf(when, sizeof(when), "ended %llds ago: %s", (long long)(now - jint(s, "ended_at")),
				 jstr(s, "end", ""));
		else if (strcmp(state, "sending") == 0)
			snprintf(when, sizeof(when), "sending for %llds", (long long)(now - jint(s, "started_at")));
		else
			snprintf(when, sizeof(when), "gathering for %llds", (long long)(now - jint(s, "first_at")));
		printf("multicast session %lld: image '%s', %s, port base %lld, %u member(s): %u done, %u failed, "
		       "%u running\n",
		       (long long)jint(s, "id"), nf_printable(q, sizeof(q), jstr(s, "image", "?")),
		       nf_printable(w, sizeof(w), when), (long long)jint(s, "portbase"), n, done, failed,
		       n - done - failed);
		for (unsigned k = 0; k < n; k++) {
			json_object *mb = json_object_array_get_idx(ms, k);

			if (strcmp(jstr(mb, "state", ""), "failed") == 0)
				printf("  %s left it: %s\n", jstr(mb, "mac", "?"),
				       nf_printable(q, sizeof(q), jstr(mb, "reason", "")));
		}
	}
	json_object_put(all);
}

static int parse_flags(int argc, char **argv, int *json, int *watch, int *positional)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, { "watch", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "jwh", opts, NULL)) != -1) {
		switch (opt) {
		case 'j': *json = 1; break;
		case 'w': *watch = 1; break;
		case 'h': fputs(status_usage, stdout); return -1;
		default: return cli_bad_option(argv, opts);
		}
	}
	*positional = optind;
	return 0;
}

int cmd_status(struct master *m, int argc, char **argv)
{
	struct status_ctx c = { .json = 0 };
	int watch = 0, pos = 0, r = parse_flags(argc, argv, &c.json, &watch, &pos);

	if (r)
		return r < 0 ? 0 : r;
	if (pos != argc) {
		nf_err("status takes no arguments (see netflash status --help)");
		return 2;
	}
	if (cli_require_init(m) || cli_open_store(m, &c.st) < 0)
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
		if (!c.json)
			print_sessions(m);
		fflush(stdout);
	} while (watch && sleep(1) == 0);
	store_close(c.st);
	return 0;
}
