/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash enroll: make a worker netboot into the flasher (enroll.c does it). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "enroll.h"
#include "fileutil.h"
#include "log.h"
#include "manifest.h"
#include "cli.h"
#include "master.h"
#include "nfsroot.h"
#include "parse.h"
#include "provision_opts.h"
#include "release.h"
#include "store.h"

#define CSV_LINE_MAX 1024
#define CSV_ROWS_MAX 4096

static const char enroll_usage[] =
"Usage: netflash [--root DIR] enroll MAC --image NAME [--force] [--model F] [PROVISIONING OPTIONS]\n"
"       netflash [--root DIR] enroll MAC --nfsroot DIR [--force] [--model F]\n"
"       netflash [--root DIR] enroll --from-csv FILE [--force] [PROVISIONING OPTIONS]\n"
"\n"
"Make the worker with this MAC netboot into the flasher and write image NAME.\n"
"MAC may be spelled b8:27:eb:d3:85:78, B8-27-EB-D3-85-78, b827.ebd3.8578 or\n"
"b827ebd38578; its TFTP dir is ROOT/tftp/b8-27-eb-d3-85-78 (lower case,\n"
"dashes), holding the imported boot files (hard links, never symlinks) and\n"
"its own cmdline.txt with netflash.server=IP:PORT and a fresh random\n"
"netflash.token= that only this enrollment's reports may carry.\n"
"\n"
"  -i, --image NAME     catalog image to write (see netflash image ls)\n"
"  -f, --force          replace an existing enrollment (new token)\n"
"  -c, --from-csv FILE  enroll many: one worker a line, MAC,HOSTNAME,IMAGE[,MODEL]\n"
"                       (RFC 4180 CSV; a first line starting with 'mac' is a\n"
"                       header; HOSTNAME may be empty; MODEL pi3, pi4, pi5;\n"
"                       '#' lines and blank lines are skipped). All or\n"
"                       nothing: every line is checked first and each\n"
"                       problem named with its line number; if an enroll\n"
"                       still fails, those made by this run are released\n"
"                       again (one replaced with --force stays replaced).\n"
"                       Provisioning options apply to every line.\n"
"  -n, --nfsroot DIR    diskless instead of flashing: the worker netboots\n"
"                       the imported Pi OS boot files (without the flasher)\n"
"                       with root=/dev/nfs nfsroot=SERVER:DIR and runs from\n"
"                       DIR, a Pi OS root filesystem on this master, one per\n"
"                       worker (it is mounted read-write). DIR is added to\n"
"                       ROOT/etc/netflash-nfsroot.exports and\n"
"                       ROOT/etc/ganesha-nfsroot.conf; install one into your\n"
"                       NFS server. 'netflash release MAC' ends it.\n"
"  -m, --model FAMILY   use the boot files imported for pi3, pi4 or pi5\n"
"                       (boot-files import --model); default: the family of\n"
"                       the model its DHCP client GUID named (Pi 4/5 send\n"
"                       one), else ROOT/boot\n"
"\n"
"  -H, --hostname H     hostname to provision (RFC 1123 label)\n"
"  -k, --ssh-key FILE   an SSH public key to authorise for the first user (one line)\n";

/* One worker of a --from-csv file. */
struct csv_row {
	unsigned line;
	char mac[18];
	char hostname[NF_HOSTNAME_MAX + 1];
	char image[NF_NAME_MAX + 1];
	char family[8];
	int replaces;   /* it is enrolled now (--force replaces it) */
};

/* Splits one RFC 4180 line into at most cap fields (quoted fields may hold
 * commas and "" for a quote; no line breaks). Returns the field count, or
 * -1 for a stray quote or too many fields. Fields point into line. */
static int csv_split(char *line, char **f, int cap)
{
	int n = 0;
	char *r = line, *w;

	for (;;) {
		if (n == cap)
			return -1;
		f[n++] = w = r;
		if (*r == '"') {
			for (r++;; r++) {
				if (*r == '\0')
					return -1;
				if (*r == '"' && r[1] == '"')
					*w++ = *r++;
				else if (*r == '"')
					break;
				else
					*w++ = *r;
			}
			r++;
			if (*r != ',' && *r != '\0')
				return -1;
		} else {
			while (*r && *r != ',') {
				if (*r == '"')
					return -1;
				*w++ = *r++;
			}
		}
		if (*r == '\0') {
			*w = '\0';
			return n;
		}
		*w = '\0';
		r++;
	}
}

/* Checks one line's fields into row; says what is wrong with "FILE:LINE: "
 * first. Returns 0 or -1. */
static int csv_row(struct master *m, const char *file, unsigned ln, char **f, int n, struct csv_row *row)
{
	char q[200];
	struct nf_mac mac;

	row->line = ln;
	if (n < 3 || n > 4) {
		nf_err("%s:%u: expected MAC,HOSTNAME,IMAGE[,MODEL], got %d field(s)", file, ln, n);
		return -1;
	}
	if (nf_mac_parse(f[0], &mac) < 0) {
		nf_err("%s:%u: invalid MAC %s: expected six hex bytes like b8:27:eb:d3:85:78", file, ln,
		       nf_quote(q, sizeof(q), f[0]));
		return -1;
	}
	memcpy(row->mac, mac.s, sizeof(mac.s));
	if (mac.b[0] & 1 || !(mac.b[0] | mac.b[1] | mac.b[2] | mac.b[3] | mac.b[4] | mac.b[5])) {
		nf_err("%s:%u: %s is not a Pi's MAC (all zeros, or a group address)", file, ln, row->mac);
		return -1;
	}
	if (f[1][0] && !master_hostname_valid(f[1])) {
		nf_err("%s:%u: invalid hostname %s: letters, digits and '-', up to 63", file, ln,
		       nf_quote(q, sizeof(q), f[1]));
		return -1;
	}
	snprintf(row->hostname, sizeof(row->hostname), "%s", f[1]);
	if (nf_name_valid(f[2]) < 0) {
		nf_err("%s:%u: invalid image name %s", file, ln, nf_quote(q, sizeof(q), f[2]));
		return -1;
	}
	snprintf(row->image, sizeof(row->image), "%s", f[2]);
	if (n == 4 && f[3][0]) {
		if (strcmp(f[3], "pi3") != 0 && strcmp(f[3], "pi4") != 0 && strcmp(f[3], "pi5") != 0) {
			nf_err("%s:%u: invalid model %s: expected pi3, pi4 or pi5", file, ln, nf_quote(q, sizeof(q), f[3]));
			return -1;
		}
		snprintf(row->family, sizeof(row->family), "%s", f[3]);
	}
	(void)m;
	return 0;
}

/* Reads and checks every line of file into rows (malloc'd; *n of them).
 * Names each problem with its line number; returns 0, or 2 when any line
 * is wrong, 1 when the file cannot be read. */
static int csv_read(struct master *m, const char *file, int force, struct csv_row **rows, size_t *n)
{
	FILE *in = fopen(file, "re");
	char line[CSV_LINE_MAX + 3], q[PATH_MAX + 8];
	struct store *st = NULL;
	unsigned ln = 0, bad = 0;
	int content = 0; /* a line other than blank or '#' was seen */
	int known;

	*rows = NULL;
	*n = 0;
	if (!in) {
		nf_err("cannot read %s: %s", nf_quote(q, sizeof(q), file), strerror(errno));
		return 1;
	}
	if (!(*rows = calloc(CSV_ROWS_MAX, sizeof(**rows))) || cli_open_store(m, &st) < 0) {
		fclose(in);
		return 1;
	}
	while (fgets(line, sizeof(line), in)) {
		size_t len = strlen(line);
		char *f[8];
		int nf;

		ln++;
		/* Excel's "CSV UTF-8" starts with a byte order mark. */
		if (ln == 1 && strncmp(line, "\xef\xbb\xbf", 3) == 0) {
			memmove(line, line + 3, len - 2);
			len -= 3;
		}
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			if (line[0] != '#') { /* a long comment is still a comment */
				nf_err("%s:%u: line longer than %d bytes", file, ln, CSV_LINE_MAX);
				bad++;
			}
			while (len && line[len - 1] != '\n' && fgets(line, sizeof(line), in))
				len = strlen(line);
			continue;
		}
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		if (!content++ && strncasecmp(line, "mac", 3) == 0)
			continue; /* the header */
		if (*n == CSV_ROWS_MAX) {
			nf_err("%s:%u: more than %d workers in one file", file, ln, CSV_ROWS_MAX);
			bad++;
			break;
		}
		nf = csv_split(line, f, 8);
		if (nf < 0) {
			nf_err("%s:%u: not CSV (a stray quote, or more than 4 fields)", file, ln);
			bad++;
			continue;
		}
		struct csv_row *row = &(*rows)[*n];
		struct nf_manifest man;
		struct enrollment old;

		if (csv_row(m, file, ln, f, nf, row) < 0) {
			bad++;
			continue;
		}
		known = 0; /* an image an earlier line had is in the catalog */
		for (size_t i = 0; i < *n; i++) {
			known |= strcmp((*rows)[i].image, row->image) == 0;
			if (strcmp((*rows)[i].mac, row->mac) == 0) {
				nf_err("%s:%u: %s is on line %u too", file, ln, row->mac, (*rows)[i].line);
				bad++;
				goto next;
			}
			if (row->hostname[0] && strcasecmp((*rows)[i].hostname, row->hostname) == 0) {
				nf_err("%s:%u: hostname %s is on line %u too", file, ln, row->hostname, (*rows)[i].line);
				bad++;
				goto next;
			}
		}
		if (!known && master_read_manifest(m, row->image, &man) < 0) {
			nf_err("%s:%u: no image '%s' in the catalog (see netflash image ls)", file, ln, row->image);
			bad++;
			continue;
		}
		row->replaces = store_get(st, row->mac, &old) == 0 &&
				(old.state == NF_WORKER_ENROLLED || old.state == NF_WORKER_DISKLESS);
		if (!force && row->replaces) {
			nf_err("%s:%u: %s is already enrolled (%s%s%s); use --force to replace it", file, ln, row->mac,
			       old.image[0] ? "image '" : "diskless", old.image, old.image[0] ? "'" : "");
			bad++;
			continue;
		}
		(*n)++;
next:;
	}
	if (ferror(in)) {
		nf_err("cannot read %s: %s", nf_quote(q, sizeof(q), file), strerror(errno));
		bad++;
	}
	fclose(in);
	store_close(st);
	if (!bad && *n == 0) {
		nf_err("%s has no workers (expected MAC,HOSTNAME,IMAGE[,MODEL] lines)", file);
		bad++;
	}
	if (bad) {
		nf_err("%s: %u problem(s); nothing was enrolled", file, bad);
		return 2;
	}
	return 0;
}

/* enroll --from-csv: all lines checked, then enrolled; on a failure those
 * enrolled by this run are released again. */
static int enroll_csv(struct master *m, const char *file, struct provision *prov, const char *key, int force)
{
	char why[600];
	struct csv_row *rows;
	size_t n, done = 0;
	int rc;

	if (cli_require_init(m))
		return 1;
	if ((rc = csv_read(m, file, force, &rows, &n)) != 0) {
		free(rows);
		return rc;
	}
	/* An image that cannot take the settings fails now, before any enroll. */
	for (size_t i = 0; i < n; i++) {
		int seen = 0;

		if (!rows[i].hostname[0] && !provision_wanted(prov))
			continue;
		for (size_t k = 0; k < i && !seen; k++)
			seen = strcmp(rows[k].image, rows[i].image) == 0 && (rows[k].hostname[0] || provision_wanted(prov));
		if (!seen && provision_prepare(m, rows[i].image, prov->user, why, sizeof(why)) < 0) {
			nf_err("%s:%u: image '%s' cannot be provisioned (%s); nothing was enrolled", file, rows[i].line,
			       rows[i].image, why);
			free(rows);
			return 1;
		}
	}
	for (; done < n; done++) {
		struct enrollment e;

		memset(&e, 0, sizeof(e));
		snprintf(e.mac, sizeof(e.mac), "%s", rows[done].mac);
		snprintf(e.family, sizeof(e.family), "%s", rows[done].family);
		struct master_report rep = { .nwarnings = 0 };

		if ((rc = cli_enroll_settings(m, &e, prov, rows[done].image,
					      rows[done].hostname[0] ? rows[done].hostname : NULL, key)) == 0) {
			rc = master_enroll(m, &e, prov, force, &rep) < 0 ? 1 : 0;
			cli_print_report(&rep, 1);
		}
		if (rc != 0) {
			nf_err("%s:%u: %s could not be enrolled (above); releasing the workers this file enrolled "
			       "before it (any it replaced with --force stay replaced)", file, rows[done].line, rows[done].mac);
			break;
		}
	}
	if (done < n) {
		/* Replaced enrollments stay replaced: releasing them would
		 * take away more than this run gave. */
		while (done-- > 0)
			if (!rows[done].replaces && master_release(m, rows[done].mac, 0, why, sizeof(why)) < 0)
				nf_warn("cannot release %s again: %s", rows[done].mac, why);
		free(rows);
		return rc ? rc : 1;
	}
	printf("enrolled %zu worker(s) from %s (netflash ls lists them)\n", n, file);
	free(rows);
	return 0;
}

/* enroll --nfsroot: no provisioning settings (a diskless worker's live in
 * its root). */
static int enroll_diskless(struct master *m, struct enrollment *e, const struct provision *prov, const char *nfsroot,
			   int settings, int force)
{
	struct master_report rep = { .nwarnings = 0 };
	char detail[512];
	int r;

	if (settings || provision_wanted(prov)) {
		nf_err("--nfsroot does not go with provisioning options: a diskless worker's settings live in its root");
		return 2;
	}
	if ((r = nfsroot_check(nfsroot, detail, sizeof(detail))) < 0) {
		nf_err("%s", detail);
		return r == -EINVAL ? 2 : 1;
	}
	if (cli_require_init(m))
		return 1;
	if (!m->conf.subnet[0]) {
		nf_err("--nfsroot needs the workers' subnet in netflash.conf: the root is exported read-write with "
		       "root unsquashed, never to every host; run: netflash init --subnet CIDR");
		return 2;
	}
	r = master_enroll_diskless(m, e, nfsroot, force, &rep);
	cli_print_report(&rep, 0);
	return r < 0 ? 1 : 0;
}

int cmd_enroll(struct master *m, int argc, char **argv)
{
	static const struct option own[] = {
		{ "image", required_argument, NULL, 'i' }, { "hostname", required_argument, NULL, 'H' },
		{ "ssh-key", required_argument, NULL, 'k' }, { "force", no_argument, NULL, 'f' },
		{ "model", required_argument, NULL, 'm' }, { "nfsroot", required_argument, NULL, 'n' },
		{ "from-csv", required_argument, NULL, 'c' }, { "help", no_argument, NULL, 'h' },
	};
	struct master_report rep = { .nwarnings = 0 };
	char why[200];
	struct option opts[64];
	struct enrollment e;
	struct provision prov;
	const char *image = NULL, *host = NULL, *key = NULL, *nfsroot = NULL, *csv = NULL;
	struct nf_mac mac;
	int force = 0, opt, r;

	memset(&e, 0, sizeof(e));
	provision_init(&prov);
	provision_merge_options(own, sizeof(own) / sizeof(own[0]), opts, sizeof(opts) / sizeof(opts[0]));
	if (provision_spelled_out(argc, argv))
		return 2;
	while ((opt = getopt_long(argc, argv, "i:H:k:fm:n:c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			if (strcmp(optarg, "pi3") != 0 && strcmp(optarg, "pi4") != 0 && strcmp(optarg, "pi5") != 0) {
				char q[64];

				nf_err("invalid --model %s: expected pi3, pi4 or pi5", nf_quote(q, sizeof(q), optarg));
				return 2;
			}
			snprintf(e.family, sizeof(e.family), "%s", optarg);
			break;
		case 'i': image = optarg; break;
		case 'H': host = optarg; break;
		case 'k': key = optarg; break;
		case 'f': force = 1; break;
		case 'n': nfsroot = optarg; break;
		case 'c': csv = optarg; break;
		case 'h': printf("%s\n%s", enroll_usage, provision_usage); return 0;
		case '?': return cli_bad_option(argv, opts);
		default:
			if (provision_option(&prov, opt, optarg))
				return 2;
		}
	}
	if (csv) {
		if (optind != argc || image || nfsroot || host || e.family[0]) {
			nf_err("--from-csv takes no MAC, --image, --hostname, --model or --nfsroot: the file names them");
			return 2;
		}
		return enroll_csv(m, csv, &prov, key, force);
	}
	if (optind + 1 != argc || !image == !nfsroot) {
		nf_err("enroll needs a MAC and one of --image NAME or --nfsroot DIR (see netflash enroll --help)");
		return 2;
	}
	if (nf_mac_parse(argv[optind], &mac) < 0)
		return cli_bad_mac(argv[optind]);
	memcpy(e.mac, mac.s, sizeof(mac.s));
	if (master_station_mac(e.mac, why, sizeof(why)) < 0) {
		nf_err("%s", why);
		return 2;
	}
	if (nfsroot)
		return enroll_diskless(m, &e, &prov, nfsroot, host || key, force);
	if ((r = cli_enroll_settings(m, &e, &prov, image, host, key)))
		return r;
	r = master_enroll(m, &e, &prov, force, &rep);
	cli_print_report(&rep, 0);
	return r < 0 ? 1 : 0;
}
