/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers that log for the subcommands (cli.h). */
#include "cli.h"

#include <getopt.h>
#include <unistd.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "enroll.h"
#include "parse.h"
#include "log.h"
#include "provision_opts.h"
#include "parse.h"

void cli_usage_hint(const char *cmd)
{
	fprintf(stderr, "netflash: see 'netflash %s --help' for its usage\n", cmd);
}

/* The edit distance of a and b (at most 32 characters each), or 99. */
static unsigned distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned d[33][33];

	if (la > 32 || lb > 32)
		return 99;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			unsigned sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]), del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;

			d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
	return d[la][lb];
}

int cli_bad_option(char **argv, const struct option *opts)
{
	const char *tok = optind > 0 ? argv[optind - 1] : "";
	char name[64], q[96];
	const char *best = NULL;
	unsigned bd = 3;

	if (strncmp(tok, "--", 2) != 0 && optopt) {
		/* A short option: unknown, or missing its value. */
		for (const struct option *o = opts; o->name; o++)
			if (o->val == optopt) {
				nf_err("option '-%c' (--%s) needs a value; see 'netflash %s --help'", optopt, o->name, argv[0]);
				return 2;
			}
		nf_err("unknown option '-%c'; see 'netflash %s --help'", optopt, argv[0]);
		return 2;
	}
	snprintf(name, sizeof(name), "%s", tok + (strncmp(tok, "--", 2) == 0 ? 2 : 0));
	name[strcspn(name, "=")] = '\0';
	for (const struct option *o = opts; o->name; o++) {
		unsigned dist = distance(name, o->name);

		if (strcmp(name, o->name) == 0) {
			nf_err("option '--%s' %s; see 'netflash %s --help'", o->name,
			       o->has_arg == no_argument ? "takes no value" : "needs a value", argv[0]);
			return 2;
		}
		if (dist < bd || (!best && strncmp(o->name, name, strlen(name)) == 0 && name[0])) {
			bd = dist < bd ? dist : bd;
			best = o->name;
		}
	}
	nf_quote(q, sizeof(q), tok);
	if (best)
		nf_err("unknown option %s: did you mean --%s? (see 'netflash %s --help')", q, best, argv[0]);
	else
		nf_err("unknown option %s; see 'netflash %s --help'", q, argv[0]);
	return 2;
}

const char *cli_root_hint(int err)
{
	return (err == -EACCES || err == -EPERM) && geteuid() != 0 ? " (the state tree is root's: run netflash as root)" : "";
}

int cli_bad_mac(const char *s)
{
	char q[128];

	nf_err("invalid MAC %s: expected six hex bytes like b8:27:eb:d3:85:78", nf_quote(q, sizeof(q), s));
	return 2;
}

void cli_print_report(const struct master_report *r, int quiet)
{
	if (!quiet && r->out[0])
		fputs(r->out, stdout);
	for (unsigned i = 0; i < r->nwarnings; i++)
		nf_warn("%s", r->warnings[i]);
	if (r->error[0])
		nf_err("%s", r->error);
}

int cli_open_store(const struct master *m, struct store **st)
{
	int r = master_open_store(m, st);

	if (r < 0)
		nf_err("cannot open the state database %s/state/netflash.db: %s%s", m->root, nf_strerror(r),
		       cli_root_hint(r));
	return r;
}

int cli_read_ssh_key(const char *file, char *out, size_t cap)
{
	char q[PATH_MAX + 8];

	if (cli_read_line_file("ssh key", file, out, cap) < 0)
		return 1;
	if (strncmp(out, "ssh-", 4) != 0 && strncmp(out, "ecdsa-", 6) != 0 && strncmp(out, "sk-", 3) != 0) {
		nf_err("ssh key %s does not look like an OpenSSH public key", nf_quote(q, sizeof(q), file));
		return 1;
	}
	return 0;
}

int cli_enroll_settings(struct master *m, struct enrollment *e, struct provision *prov, const char *image,
			   const char *hostname, const char *key)
{
	char q[200];

	if (nf_name_valid(image) < 0) {
		nf_err("invalid image name %s", nf_quote(q, sizeof(q), image));
		return 2;
	}
	if (hostname && !master_hostname_valid(hostname)) {
		nf_err("invalid --hostname %s: letters, digits and '-', up to 63", nf_quote(q, sizeof(q), hostname));
		return 2;
	}
	snprintf(e->image, sizeof(e->image), "%s", image);
	if (hostname)
		snprintf(e->hostname, sizeof(e->hostname), "%s", hostname);
	if (cli_require_init(m) || (key && cli_read_ssh_key(key, prov->ssh_key_line, sizeof(prov->ssh_key_line))))
		return 1;
	prov->hostname = hostname;
	prov->ssh_key = key ? prov->ssh_key_line : NULL;
	return provision_check(prov);
}

int cli_read_line_file(const char *what, const char *file, char *out, size_t cap)
{
	char q[PATH_MAX + 8];
	int r = master_read_one_line(file, out, cap);

	if (r == -EBADMSG)
		nf_err("%s %s must hold exactly one line", what, nf_quote(q, sizeof(q), file));
	else if (r < 0)
		nf_err("cannot read %s %s: %s", what, nf_quote(q, sizeof(q), file),
		       r == -EFBIG ? "too long" : nf_strerror(r));
	return r < 0 ? -1 : 0;
}

int cli_require_init(struct master *m)
{
	char why[PATH_MAX + 100];

	if (master_check_init(m, why, sizeof(why)) == 0)
		return 0;
	nf_err("%s", why);
	return 1;
}

int cli_lock(struct master *m)
{
	char why[PATH_MAX + 100];
	int r = master_lock(m);

	if (r < 0) {
		master_lock_error(m, r, why, sizeof(why));
		nf_err("%s", why);
	}
	return r;
}

const char *cli_mac(const char *mac, char out[18])
{
	struct nf_mac m;

	if (nf_mac_parse(mac, &m) == 0)
		nf_mac_colon(&m, out);
	else
		snprintf(out, 18, "%s", mac);
	return out;
}
