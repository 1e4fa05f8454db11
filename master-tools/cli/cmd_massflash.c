/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash mass-flash: enroll every Raspberry Pi that netboots while it runs,
 * watch them flash, and sum up. The Pis are found through dnsmasq's
 * dhcp-script (netflash dhcp-event records them in the state database). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "manifest.h"
#include "enroll.h"
#include "cli.h"
#include "master.h"
#include "parse.h"
#include "power.h"
#include "provision_opts.h"
#include "store.h"

static const char usage[] =
"Usage: netflash [--root DIR] mass-flash --image NAME [OPTIONS]\n"
"\n"
"Flash every Raspberry Pi that netboots on this LAN while the command runs.\n"
"Each new Pi that dnsmasq sees (it ARPs for the master before its first TFTP\n"
"request; dnsmasq reports it through ROOT/etc/dhcp-event) is enrolled with\n"
"image NAME; its next TFTP attempt finds its files, it netboots into the\n"
"flasher, writes and verifies its card and is released by netflashd. A live\n"
"table shows each Pi; at the end a summary lists what was flashed, what\n"
"failed and why, how long it took and each card's throughput.\n"
"\n"
"Needs dnsmasq running with ROOT/etc/dnsmasq.conf and netflashd running.\n"
"\n"
"  -i, --image NAME            catalog image to write (required)\n"
"  -o, --oui LIST              MAC prefixes to accept, comma-separated (default:\n"
"                              the Raspberry Pi OUIs b8:27:eb,dc:a6:32,e4:5f:01,\n"
"                              d8:3a:dd,2c:cf:67); other MACs are ignored\n"
"  -H, --hostname-pattern P    hostname per Pi: {n} is its number in this run\n"
"                              (1, 2, ...), {mac} the last 3 MAC bytes in hex\n"
"  -n, --limit N               enroll at most N Pis, end when they are done\n"
"  -s, --since SECONDS         also take Pis seen up to SECONDS before the start\n"
"                              (default 600: dnsmasq reports a MAC only when it\n"
"                              first appears, so a Pi already retrying counts)\n"
"  -t, --stale SECONDS         a job silent this long no longer counts as\n"
"                              running when stopping (default 120)\n"
"  -b, --boot-timeout SECONDS  a Pi with no sign of life this long (it has not\n"
"                              asked for its job since it was enrolled or\n"
"                              power-cycled, its job sent no progress, or it\n"
"                              did not come back after a failed try) is\n"
"                              power-cycled when it has an entry in\n"
"                              ROOT/power.conf (see netflash power --help; off\n"
"                              for 5 s), else it counts as failed (default 300)\n"
"  -r, --power-retries N       power cycles per Pi before it counts as failed\n"
"                              (default 2; 0: never cycle)\n"
"  -k, --ssh-key FILE          an SSH public key to authorise on every Pi\n"
"      --include-failed        also enroll Pis marked failed (their card failed a\n"
"                              check, or they ran out of attempts)\n"
"  and the provisioning options of 'netflash enroll' (see its --help): each\n"
"  Pi's card gets them, with its hostname from --hostname-pattern; and its\n"
"  delivery options: --multicast (one udpcast stream for the Pis that ask\n"
"  for the image together: docs/multicast.md), --min-workers N, --max-wait S\n"
"  (a session starts when N Pis have asked or S seconds after the first:\n"
"  default 30), --late wait|nfs.\n"
"\n"
"A Pi already flashed in this run, or enrolled by someone else, is ignored,\n"
"and so are Pis marked failed (their card failed a check: --include-failed\n"
"enrolls them again) and contested ones (never by a run); each is named\n"
"with the reason.\n"
"Ctrl-C stops enrolling new Pis and waits for the running jobs to end; a\n"
"second Ctrl-C leaves at once (enrolled Pis stay enrolled). The exit status\n"
"is 0 when every enrolled Pi was flashed, 1 otherwise.\n";

#define MAX_MEMBERS 4096
#define MAX_OUIS 32
#define MAX_IGNORED 4096

static const char default_ouis[] = "b8:27:eb,dc:a6:32,e4:5f:01,d8:3a:dd,2c:cf:67";

static volatile sig_atomic_t stop_requests;

static void on_signal(int sig)
{
	(void)sig;
	stop_requests++;
}

struct member {
	char mac[18];
	char host[NF_HOSTNAME_MAX + 1];
	char model[48];
	char state[16], pct[8], rate[16]; /* its worker_view, as of the last supervise() */
	char last_error[256];
	char shown[16];   /* last state printed (non-TTY mode) */
	time_t enrolled;
	time_t waited_from;  /* enrolled, or powered on again */
	unsigned cycles;     /* power cycles so far */
	pid_t cycling;       /* the power cycle child, or 0 */
	int final;        /* 1 flashed, -1 failed */
	char why[200];    /* why it failed, when the store does not say */
};

struct run {
	struct master *m;
	int include_failed;          /* --include-failed: re-enroll workers marked failed */
	struct store *st;
	const char *image;
	const char *pattern;
	struct provision prov;       /* hostname set per Pi */
	uint8_t ouis[MAX_OUIS][3];
	size_t n_ouis;
	unsigned limit;
	unsigned stale;
	unsigned boot_timeout, power_retries;
	time_t started, since;
	uint64_t last_sighting;
	struct member *members;
	size_t n;
	char (*ignored)[18];
	size_t n_ignored;
	int tty;
	int stopping;
};

static int parse_ouis(struct run *r, const char *list)
{
	char buf[512], *tok, *save = NULL;

	if (strlen(list) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint8_t b[3];
		size_t n = 0;
		const char *p = tok;

		while (*p && n < 3) {
			int hi = nf_hex_digit(p[0]), lo = hi < 0 ? -1 : nf_hex_digit(p[1]);

			if (hi < 0 || lo < 0)
				return -EINVAL;
			b[n++] = (uint8_t)(hi << 4 | lo);
			p += 2;
			if (*p == ':' || *p == '-' || *p == '.')
				p++;
		}
		if (n != 3 || *p || r->n_ouis == MAX_OUIS)
			return -EINVAL;
		memcpy(r->ouis[r->n_ouis++], b, 3);
	}
	return r->n_ouis ? 0 : -EINVAL;
}

static int oui_ok(const struct run *r, const char *mac)
{
	struct nf_mac m;

	if (nf_mac_parse(mac, &m) < 0)
		return 0;
	for (size_t i = 0; i < r->n_ouis; i++)
		if (memcmp(r->ouis[i], m.b, 3) == 0)
			return 1;
	return 0;
}

/* Expands the pattern for Pi number n. Returns 0, or -EINVAL if the result
 * is not a valid hostname. */
static int expand_hostname(const char *pat, unsigned n, const char *mac, char *out, size_t cap)
{
	size_t o = 0;

	for (const char *p = pat; *p; ) {
		char piece[16];
		const char *add;
		size_t len;

		if (strncmp(p, "{n}", 3) == 0) {
			snprintf(piece, sizeof(piece), "%u", n);
			add = piece;
			p += 3;
		} else if (strncmp(p, "{mac}", 5) == 0) {
			snprintf(piece, sizeof(piece), "%.2s%.2s%.2s", mac + 9, mac + 12, mac + 15);
			add = piece;
			p += 5;
		} else {
			piece[0] = *p++;
			piece[1] = '\0';
			add = piece;
		}
		len = strlen(add);
		if (o + len >= cap)
			return -EINVAL;
		memcpy(out + o, add, len);
		o += len;
	}
	out[o] = '\0';
	return master_hostname_valid(out) ? 0 : -EINVAL;
}

static struct member *find_member(struct run *r, const char *mac)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->members[i].mac, mac) == 0)
			return &r->members[i];
	return NULL;
}

static void note(const struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const struct run *r, const char *fmt, ...)
{
	char when[16];
	time_t t = time(NULL);
	va_list ap;

	if (r->tty)
		return; /* the table shows it */
	strftime(when, sizeof(when), "%H:%M:%S", localtime(&t));
	printf("%s ", when);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* Prints "ignored MAC: why" once per MAC. */
static void ignore(struct run *r, const char *mac, const char *why)
{
	for (size_t i = 0; i < r->n_ignored; i++)
		if (strcmp(r->ignored[i], mac) == 0)
			return;
	if (r->n_ignored < MAX_IGNORED)
		snprintf(r->ignored[r->n_ignored++], 18, "%s", mac);
	note(r, "ignored %s: %s", mac, why);
}

static int on_sighting(const struct sighting *g, void *ctx)
{
	struct master_report rep = { .nwarnings = 0 };
	struct run *r = ctx;
	struct enrollment e, old;
	struct member *mb;
	char why[128];
	int rc;

	r->last_sighting = g->id;
	if (g->at < r->since || r->stopping || find_member(r, g->mac))
		return 0;
	if (!oui_ok(r, g->mac)) {
		ignore(r, g->mac, "not in the OUI list (not a Raspberry Pi?)");
		return 0;
	}
	if (r->limit && r->n >= r->limit) {
		ignore(r, g->mac, "the --limit is reached");
		return 0;
	}
	if (r->n == MAX_MEMBERS) {
		ignore(r, g->mac, "too many Pis in one run");
		return 0;
	}
	if (store_get(r->st, g->mac, &old) == 0 && old.state == NF_WORKER_DISKLESS) {
		ignore(r, g->mac, "a diskless worker (enroll --nfsroot); release it first to flash it");
		return 0;
	}
	if (store_get(r->st, g->mac, &old) == 0 && old.state == NF_WORKER_FAILED && !r->include_failed) {
		snprintf(why, sizeof(why), "marked failed (%.60s): check its card; --include-failed enrolls it again",
			 old.last_error[0] ? old.last_error : "out of attempts");
		ignore(r, g->mac, why);
		return 0;
	}
	if (store_get(r->st, g->mac, &old) == 0 && old.state == NF_WORKER_CONTESTED) {
		/* Never by a run: another host claimed its job (docs/security.md). */
		ignore(r, g->mac, "contested: 'netflash status' says by whom; release --force or enroll it by hand");
		return 0;
	}
	if (store_get(r->st, g->mac, &old) == 0 && old.state == NF_WORKER_ENROLLED) {
		snprintf(why, sizeof(why), "already enrolled outside this run (image '%.60s')", old.image);
		ignore(r, g->mac, why);
		return 0;
	}
	memset(&e, 0, sizeof(e));
	snprintf(e.mac, sizeof(e.mac), "%s", g->mac);
	snprintf(e.image, sizeof(e.image), "%s", r->image);
	if (r->pattern && expand_hostname(r->pattern, (unsigned)r->n + 1, g->mac, e.hostname, sizeof(e.hostname)) < 0) {
		ignore(r, g->mac, "the hostname pattern gives no valid hostname");
		return 0;
	}
	r->prov.hostname = e.hostname[0] ? e.hostname : NULL;
	rc = master_enroll(r->m, &e, &r->prov, 1, &rep);
	r->prov.hostname = NULL; /* e is this call's */
	for (unsigned i = 0; i < rep.nwarnings; i++)
		note(r, "%s: %s", g->mac, rep.warnings[i]);
	if (rc != 0) {
		snprintf(why, sizeof(why), "could not be enrolled: %.100s", rep.error);
		ignore(r, g->mac, why);
		return 0;
	}
	mb = &r->members[r->n++];
	memset(mb, 0, sizeof(*mb));
	snprintf(mb->mac, sizeof(mb->mac), "%s", g->mac);
	snprintf(mb->host, sizeof(mb->host), "%s", e.hostname);
	if (store_model(r->st, g->mac, mb->model, sizeof(mb->model)) < 0)
		mb->model[0] = '\0';
	mb->enrolled = mb->waited_from = time(NULL);
	store_event(r->st, g->mac, NF_EVENT_MASS_FLASH, mb->model[0] ? mb->model : "model unknown");
	note(r, "enrolled %s%s%s%s%s%s (seen at %s; boot files %s)", mb->mac, mb->model[0] ? " (" : "", mb->model,
	     mb->model[0] ? ")" : "", mb->host[0] ? " as " : "", mb->host, g->ip, e.boot_set);
	return 0;
}

/* Updates mb->final from the store; fills v. */
static void look(struct run *r, struct member *mb, struct worker_view *v, struct enrollment *e)
{
	if (mb->why[0]) {
		/* Failed in this run (no netboot); it stays enrolled. */
		memset(v, 0, sizeof(*v));
		memset(e, 0, sizeof(*e));
		snprintf(v->state, sizeof(v->state), "no boot");
		snprintf(e->last_error, sizeof(e->last_error), "%s", mb->why);
		return;
	}
	if (store_get(r->st, mb->mac, e) < 0) {
		memset(v, 0, sizeof(*v));
		snprintf(v->state, sizeof(v->state), "unknown");
		return;
	}
	worker_view(r->st, e, v);
	if (e->state == NF_WORKER_RELEASED)
		mb->final = 1;
	else if (e->state == NF_WORKER_FAILED)
		mb->final = -1;
}

/* Starts a power cycle of mb in a child, so the table keeps going; what
 * says why ("did not ask for its job within 300 s"). */
static void start_cycle(struct run *r, struct member *mb, const char *what)
{
	struct power_entry pe;
	char detail[1400], ev[300];
	int e = power_find(r->m, mb->mac, &pe, detail, sizeof(detail));
	pid_t pid;

	if (e < 0) {
		if (e != -ENOENT)
			nf_warn("%s: %s, ignoring", mb->mac, detail); /* a broken power.conf */
		snprintf(mb->why, sizeof(mb->why), "%s%s", what,
			 mb->cycles ? " after a power cycle" : "; no power control for it");
		mb->final = -1;
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		signal(SIGINT, SIG_IGN); /* Ctrl-C of the run must not cut a cycle short */
		_exit(power_cycle(&pe, 5000, detail, sizeof(detail)) < 0 ? (nf_err("%s: %s", mb->mac, detail), 1) : 0);
	}
	if (pid < 0) {
		nf_warn("cannot start a power cycle of %s: %s, ignoring", mb->mac, strerror(errno));
		mb->waited_from = time(NULL);
		return;
	}
	mb->cycling = pid;
	mb->cycles++;
	snprintf(ev, sizeof(ev), "mass-flash: power cycle (%s)", what);
	store_event(r->st, mb->mac, NF_EVENT_POWER, ev);
	note(r, "%s %s: power cycle %u of %u", mb->mac, what, mb->cycles, r->power_retries);
}

/* A Pi with no sign of life for --boot-timeout: it never asked for its job
 * (a boot loop, a dead netboot), its job went silent (a hung worker), or
 * it did not come back for another try after a failed one. Cycle it, or
 * give up. The last sign of life is the enrollment or the end of the last
 * cycle, or the job's latest report. */
static void check_boot(struct run *r, struct member *mb, const struct worker_view *v)
{
	int status = 0, asked;
	time_t last, now = time(NULL);
	char what[160];

	if (mb->cycling) {
		pid_t w = waitpid(mb->cycling, &status, WNOHANG);

		if (w == 0)
			return;
		mb->cycling = 0;
		mb->waited_from = time(NULL);
		if (w < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			store_event(r->st, mb->mac, NF_EVENT_POWER, "mass-flash: power cycle failed");
		return;
	}
	if (r->stopping || mb->final)
		return;
	asked = v->have_job && v->job.started_at >= (int64_t)mb->enrolled;
	last = mb->waited_from;
	if (asked && (time_t)v->job.updated_at > last)
		last = (time_t)v->job.updated_at;
	if (now - last < (time_t)r->boot_timeout)
		return;
	if (!asked)
		snprintf(what, sizeof(what), "did not ask for its job within %u s", r->boot_timeout);
	else if (v->running)
		snprintf(what, sizeof(what), "job %llu has been silent for %u s", (unsigned long long)v->job.id,
			 r->boot_timeout);
	else
		snprintf(what, sizeof(what), "did not ask again within %u s after job %llu %s", r->boot_timeout,
			 (unsigned long long)v->job.id, nf_job_state_name(v->job.state));
	if (mb->cycles < r->power_retries) {
		start_cycle(r, mb, what);
		return;
	}
	snprintf(mb->why, sizeof(mb->why), "%s%s", what, mb->cycles ? " after a power cycle" : "");
	mb->final = -1;
}

static int job_is_live(const struct run *r, const struct worker_view *v)
{
	return v->running && time(NULL) - v->job.updated_at < (time_t)r->stale;
}

static void fmt_duration(char *out, size_t cap, double s)
{
	if (s < 60)
		snprintf(out, cap, "%.1fs", s);
	else
		snprintf(out, cap, "%um%02us", (unsigned)s / 60, (unsigned)s % 60);
}

/* One pass over the members: the live table (TTY) or state-change lines.
 * Returns how many still have a live job, and sets *open to those not final. */
/* Brings each Pi's view up to date from the store and power-cycles those
 * that stopped showing signs of life (check_boot). Sets *open to the Pis
 * not yet flashed or failed; returns how many have a live job or a power
 * cycle running. */
static size_t supervise(struct run *r, size_t *open)
{
	struct enrollment e;
	size_t live = 0;

	*open = 0;
	for (size_t i = 0; i < r->n; i++) {
		struct member *mb = &r->members[i];
		struct worker_view v;

		look(r, mb, &v, &e);
		check_boot(r, mb, &v);
		if (job_is_live(r, &v) || mb->cycling)
			live++;
		if (!mb->final)
			(*open)++;
		snprintf(mb->state, sizeof(mb->state), "%s", v.state);
		snprintf(mb->pct, sizeof(mb->pct), "%s", v.pct);
		snprintf(mb->rate, sizeof(mb->rate), "%s", v.rate);
		snprintf(mb->last_error, sizeof(mb->last_error), "%s", e.last_error);
	}
	return live;
}

/* On a terminal, the live table; otherwise a line for each Pi whose state
 * changed since the last call. */
static void draw(struct run *r)
{
	char el[32];

	if (r->tty) {
		fmt_duration(el, sizeof(el), difftime(time(NULL), r->started));
		printf("\033[H\033[2Jnetflash mass-flash: image '%s', %zu Pi(s), %s%s\n\n", r->image, r->n, el,
		       r->stopping ? "  [stopping: no new Pis; Ctrl-C again to leave now]" : "");
		printf("%-17s  %-14s %-14s %-9s %5s %6s  %s\n", "MAC", "HOSTNAME", "MODEL", "STATE", "DONE", "MB/s",
		       "LAST ERROR");
	}
	for (size_t i = 0; i < r->n; i++) {
		struct member *mb = &r->members[i];
		char mc[18];

		if (r->tty) {
			printf("%-17s  %-14.14s %-14.14s %-9.9s %5s %6s  %.60s\n", cli_mac(mb->mac, mc), mb->host[0] ? mb->host : "-",
			       mb->model[0] ? mb->model : "-", mb->state, mb->pct, mb->rate, mb->last_error);
			continue;
		}
		if (strcmp(mb->state, mb->shown) == 0)
			continue;
		snprintf(mb->shown, sizeof(mb->shown), "%s", mb->state);
		if (mb->final < 0)
			note(r, "%s failed: %s", mb->mac, mb->last_error[0] ? mb->last_error : "(no reason recorded)");
		else if (mb->final > 0)
			note(r, "%s flashed and released", mb->mac);
		else
			note(r, "%s %s", mb->mac, mb->state);
	}
	fflush(stdout);
}

static int summary(struct run *r)
{
	struct enrollment e;
	unsigned ok = 0, bad = 0, open = 0;
	double sum_mbps = 0;
	char el[32];

	for (size_t i = 0; i < r->n; i++) {
		struct worker_view v;

		look(r, &r->members[i], &v, &e);
		if (r->members[i].final > 0)
			ok++;
		else if (r->members[i].final < 0)
			bad++;
		else
			open++;
	}
	fmt_duration(el, sizeof(el), difftime(time(NULL), r->started));
	printf("\nmass-flash summary: image '%s', %zu Pi(s) in %s: %u flashed, %u failed, %u not finished\n", r->image,
	       r->n, el, ok, bad, open);
	if (r->n)
		printf("%-17s  %-14s %-14s %-12s %9s %7s  %s\n", "MAC", "HOSTNAME", "MODEL", "RESULT", "DURATION",
		       "MB/s", "REASON");
	for (size_t i = 0; i < r->n; i++) {
		struct member *mb = &r->members[i];
		char mc[18];
		struct worker_view v;
		char dur[32] = "-", rate[16] = "-";
		const char *res = mb->final > 0 ? "flashed" : mb->final < 0 ? "failed" : "not finished";

		look(r, mb, &v, &e);
		if (v.have_job && v.job.state == NF_JOB_DONE && v.job.seconds > 0) {
			double mbps = (double)v.job.bytes / 1e6 / v.job.seconds;

			fmt_duration(dur, sizeof(dur), v.job.seconds);
			snprintf(rate, sizeof(rate), "%.1f", mbps);
			sum_mbps += mbps;
		}
		printf("%-17s  %-14.14s %-14.14s %-12s %9s %7s  %s\n", cli_mac(mb->mac, mc), mb->host[0] ? mb->host : "-",
		       mb->model[0] ? mb->model : "-", res, dur, rate,
		       mb->final < 0 ? e.last_error
		       : !mb->final ? (v.running ? "job still running" : "enrolled, never started: 'netflash release MAC' to undo")
				    : "");
	}
	if (ok)
		printf("mean card throughput: %.1f MB/s over %u card(s)\n", sum_mbps / ok, ok);
	fflush(stdout);
	return bad || open ? 1 : 0;
}

/* Settings of a run from the command line, before they are checked. */
struct run_args {
	const char *ouis, *key;
	uint64_t since;              /* seconds before the start */
};

/* A count or seconds option in min..max into *out. Logs why not; returns 0 or 2. */
static int number_option(const char *name, const char *arg, uint64_t min, uint64_t max, const char *what,
			 unsigned *out)
{
	uint64_t v;

	if (nf_parse_u64(arg, min, max, &v) < 0) {
		nf_err("invalid --%s '%s': %s", name, arg, what);
		return 2;
	}
	*out = (unsigned)v;
	return 0;
}

/* The options into r and a. Returns 0, -1 after --help, or 2 after saying
 * what is wrong. */
static int parse_run_options(struct run *r, struct run_args *a, int argc, char **argv)
{
	static const struct option own[] = {
		{ "image", required_argument, NULL, 'i' }, { "oui", required_argument, NULL, 'o' },
		{ "hostname-pattern", required_argument, NULL, 'H' }, { "limit", required_argument, NULL, 'n' },
		{ "since", required_argument, NULL, 's' }, { "stale", required_argument, NULL, 't' },
		{ "ssh-key", required_argument, NULL, 'k' }, { "help", no_argument, NULL, 'h' },
		{ "boot-timeout", required_argument, NULL, 'b' }, { "power-retries", required_argument, NULL, 'r' },
		{ "include-failed", no_argument, NULL, 'F' },
	};
	struct option opts[64];
	unsigned since = (unsigned)a->since;
	int opt, bad = 0;

	provision_merge_options(own, sizeof(own) / sizeof(own[0]), opts, sizeof(opts) / sizeof(opts[0]));
	if (provision_spelled_out(argc, argv))
		return 2;
	while (!bad && (opt = getopt_long(argc, argv, "i:o:H:n:s:t:k:b:r:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'k': a->key = optarg; break;
		case 'i': r->image = optarg; break;
		case 'o': a->ouis = optarg; break;
		case 'H': r->pattern = optarg; break;
		case 'n': bad = number_option("limit", optarg, 1, MAX_MEMBERS, "a count from 1 to 4096", &r->limit); break;
		case 's': bad = number_option("since", optarg, 0, 86400, "seconds, at most 86400", &since); break;
		case 't': bad = number_option("stale", optarg, 1, 86400, "seconds, 1 to 86400", &r->stale); break;
		case 'b':
			bad = number_option("boot-timeout", optarg, 1, 86400, "seconds, 1 to 86400", &r->boot_timeout);
			break;
		case 'r':
			bad = number_option("power-retries", optarg, 0, 20, "a count from 0 to 20", &r->power_retries);
			break;
		case 'F': r->include_failed = 1; break;
		case 'h': fputs(usage, stdout); return -1;
		case '?': return cli_bad_option(argv, opts);
		default: bad = provision_option(&r->prov, opt, optarg);
		}
	}
	a->since = since;
	if (bad)
		return 2;
	if (optind != argc || !r->image) {
		nf_err("mass-flash needs --image NAME and no other arguments (see netflash mass-flash --help)");
		return 2;
	}
	return 0;
}

/* The image exists, and (with settings to write) its boot partition is
 * extracted now: settings an image cannot take fail before any Pi is
 * enrolled, not once per Pi. Logs why not; returns 0 or 1. */
static int prepare_image(struct master *m, struct run *r)
{
	struct nf_manifest man;
	char why[600];
	int rc;

	if (cli_require_init(m))
		return 1;
	if ((rc = master_read_manifest(m, r->image, &man)) < 0) {
		nf_err(rc == -ENOENT ? "no image '%s' in the catalog (see netflash image ls)"
				     : "image '%s': invalid name or damaged manifest", r->image);
		return 1;
	}
	if (provision_wanted(&r->prov) && (rc = provision_prepare(m, r->image, r->prov.user, why, sizeof(why))) < 0) {
		nf_err("%s", why);
		return 1;
	}
	return 0;
}

/* Checks the settings against each other, the image and the state tree,
 * and opens the store. Logs why not; returns 0, 1 or 2. */
static int prepare_run(struct master *m, struct run *r, const struct run_args *a)
{
	char probe[NF_HOSTNAME_MAX + 1];
	int rc;

	if (parse_ouis(r, a->ouis) < 0) {
		nf_err("invalid --oui '%s': expected comma-separated 3-byte prefixes like b8:27:eb", a->ouis);
		return 2;
	}
	if (r->pattern && expand_hostname(r->pattern, 1, "00:00:00:00:00:00", probe, sizeof(probe)) < 0) {
		nf_err("invalid --hostname-pattern '%s': it must give a hostname (letters, digits, '-', up to 63)",
		       r->pattern);
		return 2;
	}
	if (a->key && cli_read_ssh_key(a->key, r->prov.ssh_key_line, sizeof(r->prov.ssh_key_line)))
		return 1;
	r->prov.ssh_key = a->key ? r->prov.ssh_key_line : NULL;
	r->prov.hostname = r->pattern ? probe : NULL;
	if (provision_check(&r->prov))
		return 2;
	rc = prepare_image(m, r);
	r->prov.hostname = NULL; /* probe is this function's: each Pi gets its own */
	if (rc)
		return rc;
	return cli_open_store(m, &r->st) < 0 ? 1 : 0;
}

/* Enrolls new Pis as they are seen and supervises them until the limit
 * is flashed, or a Ctrl-C's running jobs are over (a second leaves now). */
static void run_loop(struct run *r)
{
	for (;;) {
		size_t open, live;

		if (stop_requests >= 2)
			break;
		if (stop_requests == 1 && !r->stopping) {
			r->stopping = 1;
			note(r, "stopping: no new Pis are enrolled; waiting for running jobs (Ctrl-C again to leave now)");
		}
		if (!r->stopping && store_sightings_after(r->st, r->last_sighting, on_sighting, r) < 0)
			nf_warn("cannot read new sightings from the state database; retrying");
		live = supervise(r, &open);
		draw(r);
		if (r->limit && r->n == r->limit && open == 0)
			break;
		if (r->stopping && live == 0)
			break;
		usleep(500 * 1000);
	}
}

/* One mass-flash a root (master_run_lock). Logs why not; returns 0 or 1. */
static int take_run_lock(struct master *m)
{
	pid_t holder;
	int r = master_run_lock(m, "mass-flash", &holder);

	if (r == -EWOULDBLOCK)
		nf_err("another mass-flash is running on %s (pid %d); stop it first (Ctrl-C there, or DELETE "
		       "/api/mass-flash)", m->root, (int)holder);
	else if (r < 0)
		nf_err("cannot take %s/state/mass-flash.lock: %s", m->root, nf_strerror(r));
	return r < 0;
}

int cmd_mass_flash(struct master *m, int argc, char **argv)
{
	static struct run r; /* large (the members table, an ssh key line); one per process */
	struct run_args a = { .ouis = default_ouis, .since = 600 };
	struct sigaction sa;
	int rc;

	memset(&r, 0, sizeof(r));
	r.m = m;
	r.stale = 120;
	r.boot_timeout = 300;
	r.power_retries = 2;
	provision_init(&r.prov);
	if ((rc = parse_run_options(&r, &a, argc, argv)))
		return rc < 0 ? 0 : rc;
	if ((rc = prepare_run(m, &r, &a)))
		return rc;
	if (take_run_lock(m)) {
		store_close(r.st);
		return 1;
	}
	r.members = calloc(MAX_MEMBERS, sizeof(*r.members));
	r.ignored = calloc(MAX_IGNORED, sizeof(*r.ignored));
	if (!r.members || !r.ignored) {
		nf_err("out of memory");
		rc = 1;
		goto out;
	}
	r.tty = isatty(STDOUT_FILENO);
	r.started = time(NULL);
	r.since = r.started - (time_t)a.since;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	note(&r, "mass-flash: enrolling Raspberry Pis (OUIs %s) with image '%s'%s; Ctrl-C to stop", a.ouis, r.image,
	     r.limit ? "" : ", no limit");
	run_loop(&r);
	rc = summary(&r);
out:
	free(r.members);
	free(r.ignored);
	store_close(r.st);
	return rc;
}
