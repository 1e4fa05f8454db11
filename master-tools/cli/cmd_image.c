/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash image add|ls|rm|check: the image catalog in ROOT/images. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileutil.h"
#include "log.h"
#include "manifest.h"
#include "cli.h"
#include "master.h"
#include "parse.h"
#include "provision.h"
#include "scan.h"
#include "api.h"
#include "convert.h"
#include "decode.h"
#include "store.h"
#include "imgfinish.h"
#include "image_int.h"

/* zstd level of the worker copy (docs/netflash-write.md "Image formats" has the
 * measurements behind it); its window is 16 MiB (NF_CONVERT_WINDOW_LOG). */
#define WORKER_ZSTD_LEVEL 19
#define NF_STR_(x) #x
#define NF_STR(x) NF_STR_(x)

static const char image_usage[] =
"Usage: netflash [--root DIR] image add FILE [--name NAME] [--os-list-entry JSON [--os-list-name NAME]]\n"
"                                [--not-a-disk] [--keep-format] [--zstd-level N] [--max-memory SIZE] [--force]\n"
"       netflash [--root DIR] image ls [--json]\n"
"       netflash [--root DIR] image rm NAME [--force]\n"
"       netflash [--root DIR] image check NAME\n"
"       netflash [--root DIR] image finish NAME [--max-memory SIZE]\n"
"\n"
"The catalog: images in ROOT/images, each with NAME.manifest (format, sizes,\n"
"SHA-256 of the decoded image, xz blocks, share of all-zero 1 MiB blocks).\n"
"\n"
"add    takes FILE in any format Raspberry Pi Imager takes, detected from its\n"
"       bytes (a name ending in .xz, .zip ... must match them), and stores a\n"
"       worker copy in zstd (16 MiB window: a worker decodes it several\n"
"       times faster per core than xz). It stores a fast copy first (level\n"
"       " NF_STR(NF_FAST_ZSTD_LEVEL) " on half the cores: a 1 GiB Pi OS image is flashable in about the time\n"
"       xz takes to decode it), and netflashd then makes the level " NF_STR(WORKER_ZSTD_LEVEL) " copy in\n"
"       the background (image finish) and swaps it in; --zstd-level 1..19\n"
"       makes one copy at that level instead. Converting takes at most half of the\n"
"       machine's MemTotal (or --max-memory SIZE): as many threads as CPUs\n"
"       that fit, and a lower level when even one thread at level 19 does\n"
"       not (a 1 GiB Pi 3B+: level 19, one worker thread, about 350 MiB); a zstd file whose window a\n"
"       512 MiB worker affords is stored as it is. --keep-format stores raw,\n"
"       gzip and xz as given too; zip, 7z, bzip2, lz4, lzip, lzma, .Z,\n"
"       tar-wrapped (one member) and doubly compressed images, and gzip with\n"
"       data after its end, are always converted. The\n"
"       image is decoded once to validate it and fill the manifest: a corrupt\n"
"       image is refused with the offset of the damage, and one that does not\n"
"       start like a disk (MBR, or protective MBR and GPT header) is refused\n"
"       unless --not-a-disk. A .bmap beside it is not imported: netflash finds\n"
"       zero ranges itself. NAME defaults to FILE's name without extensions;\n"
"       names are [A-Za-z0-9._-], up to 64. --force replaces.\n"
"       --os-list-entry: an rpi-imager os_list JSON (the whole file, as\n"
"       rpi-imager fetches it, or one entry); the entry whose url ends in\n"
"       FILE's name (or named --os-list-name NAME; subitems searched too)\n"
"       must match what decoding found (extract_size, extract_sha256,\n"
"       image_download_size), or the image is refused.\n"
"ls     lists the catalog: the stored format and size, and for a worker\n"
"       copy the format and size of the file given (FROM, GIVEN). --json: one\n"
"       JSON array of image objects (docs/api.md), as /api/images.\n"
"rm     removes an image; refused while enrolled workers use it (--force).\n"
"       add --force and rm also drop the boot partitions cached for\n"
"       provisioning (ROOT/state/cache) of versions no longer in the catalog.\n"
"check  decodes the stored image again and compares it with its manifest.\n"
"finish makes the level " NF_STR(WORKER_ZSTD_LEVEL) " copy of an image stored by add's fast path,\n"
"       checks that it decodes to the manifest's SHA-256 and swaps it in;\n"
"       the fast copy is removed once no running job reads it. netflashd\n"
"       runs it for each such image, one at a time, at low priority;\n"
"       progress is in ls (COPY), /api/images and ROOT/state/finish.\n"
"\n"
"Tip: xz with 4 MiB blocks (xz -T0 --block-size=4MiB) decodes on all cores\n"
"of a worker even within the flasher's smallest memory budget (40 MiB).\n";

static const char *ext_of(enum nf_format f)
{
	switch (f) {
	case NF_FMT_GZIP: return ".img.gz";
	case NF_FMT_XZ: return ".img.xz";
	case NF_FMT_ZSTD: return ".img.zst";
	default: return ".img";
	}
}

/* Progress of a long decode, on stderr: a line redrawn every 16 MiB on a
 * terminal, else a line every 10% (logs, systemd, the API's log). The
 * share is of the image when its size is known ahead (xz's index: sc),
 * else of the file read. */
struct progress_ctx {
	const char *what;           /* "decoding", "converting to zstd" */
	const struct nf_scan *sc;   /* may be NULL */
	uint64_t last_step;         /* 16 MiB steps (terminal) or tenths shown */
	int tty, shown;
};

static void progress(uint64_t in_done, uint64_t in_total, uint64_t out_done, void *ctx)
{
	struct progress_ctx *p = ctx;
	uint64_t expect = p && p->sc && p->sc->format == NF_FMT_XZ ? p->sc->image_size : 0;
	unsigned pct = expect ? (unsigned)(out_done * 100 / expect) : in_total ? (unsigned)(in_done * 100 / in_total) : 0;

	if (!p)
		return;
	if (pct > 100)
		pct = 100;
	if (p->tty) {
		if ((out_done >> 24) == p->last_step && p->shown)
			return;
		p->last_step = out_done >> 24;
		fprintf(stderr, "\r%s: %3u%%  %llu MiB decoded\033[K", p->what, pct, (unsigned long long)(out_done >> 20));
	} else {
		if (pct / 10 <= p->last_step && p->shown)
			return;
		p->last_step = pct / 10;
		fprintf(stderr, "netflash: %s: %u%%, %llu MiB decoded\n", p->what, pct, (unsigned long long)(out_done >> 20));
	}
	p->shown = 1;
}

static void progress_init(struct progress_ctx *p, const char *what, const struct nf_scan *sc)
{
	memset(p, 0, sizeof(*p));
	p->what = what;
	p->sc = sc;
	p->tty = isatty(STDERR_FILENO);
}

static void progress_end(const struct progress_ctx *p)
{
	if (p->tty && p->shown)
		fputc('\n', stderr);
}

static void default_name(const char *file, char *out, size_t cap)
{
	char copy[PATH_MAX], *b, *dot;

	snprintf(copy, sizeof(copy), "%s", file);
	b = basename(copy);
	/* Strip known extensions: pios.img.xz -> pios, x.img.tar.gz -> x */
	while ((dot = strrchr(b, '.')) && dot != b &&
	       (nf_format_claim(b) || strcmp(dot, ".img") == 0 || strcmp(dot, ".raw") == 0))
		*dot = '\0';
	snprintf(out, cap, "%s", b);
}

static int copy_into(const char *src, const char *dst)
{
	return nf_copy_at(AT_FDCWD, src, AT_FDCWD, dst, 0, 0644);
}

#define OS_LIST_MAX (1 << 20)

/* Compares the scan (and the size of the file given, download_size) with an
 * rpi-imager os_list entry. Logs; returns 0 or 1. */
/* In an rpi-imager os_list (entries, and entries' subitems), the entry for
 * the image: named `name` if given, else whose url ends in file's name.
 * Borrowed from the tree; NULL if none. depth bounds hostile nesting. */
static struct json_object *find_entry(struct json_object *list, const char *file, const char *name, int depth)
{
	const char *base = strrchr(file, '/');
	size_t n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;

	base = base ? base + 1 : file;
	for (size_t i = 0; i < n && depth < 8; i++) {
		struct json_object *e = json_object_array_get_idx(list, i), *v, *sub;
		const char *s, *slash;

		if (!json_object_is_type(e, json_type_object))
			continue;
		if (name && json_object_object_get_ex(e, "name", &v) && (s = json_object_get_string(v)) &&
		    strcmp(s, name) == 0)
			return e;
		if (!name && json_object_object_get_ex(e, "url", &v) && (s = json_object_get_string(v)) &&
		    (slash = strrchr(s, '/')) && strcmp(slash + 1, base) == 0)
			return e;
		if (json_object_object_get_ex(e, "subitems", &sub) && (sub = find_entry(sub, file, name, depth + 1)))
			return sub;
	}
	return NULL;
}

static int check_os_list(const char *json_file, const char *file, const char *name, const struct nf_scan *sc,
			 uint64_t download_size)
{
	static char body[OS_LIST_MAX + 1];
	struct json_object *root = NULL, *v, *list, *entry;
	enum json_tokener_error jerr;
	uint8_t sha[32];
	ssize_t n = nf_read_file(json_file, body, OS_LIST_MAX);
	int rc = 1, checked = 0;

	if (n < 0) {
		nf_err("cannot read --os-list-entry '%s': %s", json_file, n == -EFBIG ? "too large" : nf_strerror((int)n));
		return 1;
	}
	root = json_tokener_parse_verbose(body, &jerr);
	if (!root || !json_object_is_type(root, json_type_object)) {
		nf_err("--os-list-entry '%s' is not a JSON object%s%s", json_file, root ? "" : ": ",
		       root ? "" : json_tokener_error_desc(jerr));
		goto out;
	}
	/* A whole os_list file, as rpi-imager users have it: pick the entry. */
	entry = root;
	if (json_object_object_get_ex(root, "os_list", &list)) {
		char q[300];

		if (!(entry = find_entry(list, file, name, 0))) {
			nf_err("the os_list %s has no entry %s%s (pick one with --os-list-name NAME)", json_file,
			       name ? "named " : "whose url ends in ", nf_quote(q, sizeof(q), name ? name : file));
			goto out;
		}
	} else if (name) {
		nf_err("--os-list-name needs a whole os_list file (with an \"os_list\" array) in --os-list-entry");
		goto out;
	}
	if (json_object_object_get_ex(entry, "extract_size", &v)) {
		if (!json_object_is_type(v, json_type_int) || (uint64_t)json_object_get_int64(v) != sc->image_size) {
			nf_err("the image decodes to %llu bytes, but os_list says extract_size %s",
			       (unsigned long long)sc->image_size, json_object_get_string(v));
			goto out;
		}
		checked++;
	}
	if (json_object_object_get_ex(entry, "image_download_size", &v)) {
		if (!json_object_is_type(v, json_type_int) || (uint64_t)json_object_get_int64(v) != download_size) {
			nf_err("the file has %llu bytes, but os_list says image_download_size %s",
			       (unsigned long long)download_size, json_object_get_string(v));
			goto out;
		}
		checked++;
	}
	if (json_object_object_get_ex(entry, "extract_sha256", &v)) {
		if (!json_object_is_type(v, json_type_string) ||
		    nf_parse_hex(json_object_get_string(v), sha, 32) < 0 || memcmp(sha, sc->sha256, 32) != 0) {
			nf_err("the decoded image's SHA-256 differs from os_list's extract_sha256");
			goto out;
		}
		checked++;
	}
	if (!checked) {
		nf_err("--os-list-entry '%s' has none of extract_size, extract_sha256, image_download_size", json_file);
		goto out;
	}
	rc = 0;
out:
	json_object_put(root);
	return rc;
}


struct add_opts {
	const char *file, *name, *os_list;
	int force, not_a_disk;
	const char *os_list_name;
	int keep_format;
	int level;              /* zstd level of the worker copy */
	int level_forced;       /* --zstd-level: never lowered to fit */
	uint64_t max_memory;    /* --max-memory; 0: half of MemTotal */
	uint64_t zstd_window;   /* the largest zstd window decoded (zstd_allowance()) */
	int fast;               /* store a level NF_FAST_ZSTD_LEVEL copy now; `image
				 * finish` (netflashd runs it) makes the one at level */
};

/* The zstd level this add compresses at. */
static int add_level(const struct add_opts *a)
{
	return a->fast ? NF_FAST_ZSTD_LEVEL : a->level;
}

void image_plan_conversion(int level, int forced, uint64_t max_memory, int half, struct nf_convert_plan *p)
{
	uint64_t total = 0, budget = max_memory;
	char b[32], e[32], t[32];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (!budget)
		budget = nf_mem_total(&total) == 0 ? total / 2 : 512ull << 20;
	nf_convert_plan(budget, cpus > 1 ? (unsigned)(half ? cpus / 2 : cpus) : 1, level, forced, p);
	nf_format_bytes(budget, b, sizeof(b));
	nf_format_bytes(p->bytes, e, sizeof(e));
	nf_format_bytes(total, t, sizeof(t));
	char th[48];

	if (p->threads)
		snprintf(th, sizeof(th), "%u thread(s) of %ld CPU(s)", p->threads, cpus);
	else
		snprintf(th, sizeof(th), "one thread (no room for a worker thread)");
	nf_info("converting at zstd level %d with %s: about %s of at most %s (%s%s%s)%s", p->level, th, e, b,
		max_memory ? "--max-memory" : total ? "half of MemTotal " : "MemTotal unknown", max_memory ? "" : t,
		"", p->lowered ? "; the level is lowered to fit" : p->over ? "; over it: --zstd-level forces the level" : "");
}

/* The largest zstd window image add decodes: half of MemAvailable, at most
 * zstd's own limit (2 GiB, ZSTD_WINDOWLOG_MAX on 64-bit), at least the
 * decoder's default. A worker copy is then re-encoded with a 16 MiB one. */
static uint64_t zstd_allowance(void)
{
	uint64_t avail = 0, a;

	if (nf_mem_available(&avail) < 0)
		avail = 0;
	a = avail / 2;
	if (a > (2ull << 30))
		a = 2ull << 30;
	return a < (160ull << 20) ? 160ull << 20 : a;
}

/* What the file is: its sniff, and whether image add must convert it
 * (a format the worker cannot decode, or one holding compressed or tar data
 * again). *window: a zstd file's first frame window (0: not zstd or
 * unknown). Logs the refusal; returns 0 or 1. */
static int classify(const char *file, uint64_t zstd_window, struct nf_sniff *sn, int *convert, uint64_t *window)
{
	uint8_t head[NF_FORMAT_PROBE_LEN], dhead[NF_FORMAT_PROBE_LEN];
	char q[PATH_MAX + 8], detail[200], why[300];
	const char *inner;
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -errno : nf_pread_fd(&fd, head, sizeof(head), 0), dn;

	nf_quote(q, sizeof(q), file);
	*convert = 0;
	*window = 0;
	if (n <= 0) {
		nf_err("cannot read %s: %s", q, n == 0 ? "the file is empty" : nf_strerror((int)n));
		goto fail;
	}
	nf_format_sniff(head, (size_t)n, (size_t)n < sizeof(head), sn);
	if (sn->format == NF_FMT_ZSTD && nf_zstd_first_window(head, (size_t)n, window) < 0)
		*window = 0;
	if (nf_format_check_claim(file, sn, head, (size_t)n, (size_t)n < sizeof(head), why, sizeof(why)) < 0) {
		nf_err("refusing %s: it is %s", q, why);
		goto fail;
	}
	if (sn->format == NF_FMT_UNKNOWN && !sn->archive) {
		nf_err("refusing %s: it is %s, which netflash cannot decode", q, sn->why);
		goto fail;
	}
	if (sn->format == NF_FMT_UNKNOWN) {
		*convert = 1;
	} else {
		/* A zstd window up to what this master affords (zstd --long). */
		dn = nf_decode_head(sn->format, nf_pread_fd, &fd, sn->format == NF_FMT_ZSTD ? zstd_window : 0, dhead,
				    sizeof(dhead), detail, sizeof(detail));
		if (dn < 0) {
			nf_err("refusing %s: %s", q, detail);
			goto fail;
		}
		*convert = nf_head_check(dhead, (size_t)dn, (size_t)dn < sizeof(dhead), &inner, why, sizeof(why)) ==
			   NF_HEAD_NESTED;
	}
	close(fd);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return 1;
}

/* How this add compresses: at add_level(), the fast copy on half the
 * cores and never lowered (image_plan_conversion()). */
static void plan_add(const struct add_opts *a, struct nf_convert_plan *p)
{
	image_plan_conversion(add_level(a), a->fast || a->level_forced, a->max_memory, a->fast, p);
}

/* Converts file into tmp (zstd) and scans the result. Logs; returns 0 or 1. */
static int add_converted(const struct add_opts *a, const char *tmp, struct nf_scan *sc, struct nf_convert *cv)
{
	char q[PATH_MAX + 8];
	struct progress_ctx pc;
	struct nf_convert_plan plan;
	int r;

	plan_add(a, &plan);
	progress_init(&pc, "converting to zstd", NULL);
	r = nf_convert_to_zstd(a->file, tmp, plan.level, plan.threads, a->not_a_disk, a->zstd_window, progress, &pc,
			       cv);
	progress_end(&pc);
	nf_quote(q, sizeof(q), a->file);
	if (r < 0) {
		nf_err("refusing %s: %s", q, cv->detail);
		return 1;
	}
	/* The catalog holds what was checked: the worker's copy, decoded again. */
	progress_init(&pc, "checking the zstd copy", NULL);
	r = nf_scan_file(tmp, 0, 0, progress, &pc, sc);
	progress_end(&pc);
	if (r < 0 || sc->image_size != cv->image_size || memcmp(sc->sha256, cv->sha256, 32) != 0) {
		nf_err("the zstd copy of %s does not decode to the image it was made from%s%s", q, r < 0 ? ": " : "",
		       r < 0 ? sc->detail : "");
		return 1;
	}
	return 0;
}

/* The decoder's share of a --max-memory budget once the compressor has
 * its estimate (bytes): at least the flasher's floor. */
static uint64_t xz_share(uint64_t budget, uint64_t compressor)
{
	uint64_t left = budget > compressor ? budget - compressor : 0;

	return left < NF_DECODE_BUDGET_MIN ? NF_DECODE_BUDGET_MIN : left;
}

/* The worker copy in one pass over a file the worker could decode (raw,
 * gzip, xz, zstd): netflash's decoder (all cores on multi-block xz)
 * measures it into sc, damage named with its offset, while a zstd writer
 * compresses the same bytes at add_level() into tmp. *retry: a gzip whose
 * only fault is data after its last member, which conversion reads as
 * gzip -dc does. Logs; returns 0 or 1. */
static int add_one_pass(const struct add_opts *a, const char *tmp, struct nf_scan *sc, int *retry)
{
	char q[PATH_MAX + 8];
	struct nf_convert_plan plan;
	struct progress_ctx pc;
	struct nf_zwriter *w;
	int r;

	nf_quote(q, sizeof(q), a->file);
	*retry = 0;
	plan_add(a, &plan);
	if ((r = nf_zwriter_open(&w, tmp, plan.level, plan.threads)) < 0) {
		nf_err("cannot create the worker copy %s: %s%s", tmp, nf_strerror(r), cli_root_hint(r));
		return 1;
	}
	progress_init(&pc, "decoding and compressing", sc);
	/* --max-memory bounds the decoder too: what the plan leaves it. */
	r = nf_scan_file_to(a->file, 0, a->zstd_window, a->max_memory ? xz_share(a->max_memory, plan.bytes) : 0,
			    nf_zwriter_write, w, progress, &pc, sc);
	progress_end(&pc);
	if (r == 0) {
		r = nf_zwriter_finish(w, NULL);
		w = NULL;
		if (r < 0) {
			nf_err("cannot write the worker copy %s: %s", tmp, nf_strerror(r));
			return 1;
		}
	}
	nf_zwriter_free(w);
	*retry = r < 0 && sc->format == NF_FMT_GZIP && sc->trailing;
	if (*retry)
		nf_info("%s has data after its last gzip member, which gzip -dc ignores", q);
	else if (r < 0 && sc->sink_failed)
		nf_err("cannot write the worker copy %s: %s", tmp, sc->detail);
	else if (r < 0)
		nf_err("refusing %s: %s", q, sc->detail);
	return r < 0;
}

/* Copies file into tmp as it is and scans the copy. *retry: a gzip whose
 * only fault is data after its last member (OpenWrt pads its images), which
 * conversion reads as gzip -dc does. Logs; returns 0 or 1. */
static int add_as_is(const struct add_opts *a, const char *tmp, struct nf_scan *sc, int *retry)
{
	char q[PATH_MAX + 8];
	struct progress_ctx pc;
	int r = copy_into(a->file, tmp);

	nf_quote(q, sizeof(q), a->file);
	*retry = 0;
	if (r < 0) {
		nf_err("cannot copy %s into the catalog as %s: %s%s", q, tmp, nf_strerror(r), cli_root_hint(r));
		return 1;
	}
	progress_init(&pc, "checking", NULL);
	r = nf_scan_file(tmp, 0, 0, progress, &pc, sc);
	progress_end(&pc);
	if (r < 0 && sc->format == NF_FMT_GZIP && sc->trailing) {
		nf_info("%s has data after its last gzip member, which gzip -dc ignores: storing the image as zstd", q);
		*retry = 1;
		return 1;
	}
	if (r < 0) {
		nf_err("refusing %s: %s", q, sc->detail);
		return 1;
	}
	return 0;
}

/* bmaptool names a bmap IMAGE.bmap next to IMAGE.xz (and FILE.bmap). */
static void note_bmap(const char *file)
{
	char b[PATH_MAX + 8], q[PATH_MAX + 8];
	const char *ext = nf_format_claim(file) ? nf_format_claim_ext(file) : "";
	int len = (int)(strlen(file) - strlen(ext));

	snprintf(b, sizeof(b), "%s.bmap", file);
	if (access(b, F_OK) != 0)
		snprintf(b, sizeof(b), "%.*s.bmap", len, file);
	if (access(b, F_OK) == 0)
		nf_info("not importing %s: netflash finds the image's zero ranges itself (it skips every all-zero "
			"MiB and verifies it reads back as zeros)", nf_quote(q, sizeof(q), b));
}

/* Whether the catalog stores the file as given or a zstd worker copy:
 * zstd whose window any worker affords stays; everything else is re-encoded
 * unless --keep-format (then raw, gzip and xz stay, and a zstd window a
 * 512 MiB worker cannot afford is refused). Sets *convert; logs a refusal
 * and returns 0, else 1. */
static int worker_format(const struct add_opts *a, const struct nf_sniff *sn, uint64_t window, int *convert)
{
	char q[PATH_MAX + 8], w[32], max[32];

	if (sn->format == NF_FMT_ZSTD && window > NF_WORKER_ZSTD_WINDOW_MAX) {
		nf_format_bytes(window, w, sizeof(w));
		nf_format_bytes(NF_WORKER_ZSTD_WINDOW_MAX, max, sizeof(max));
		if (a->keep_format) {
			nf_err("refusing %s with --keep-format: its zstd window is %s, more than a 512 MiB worker "
			       "affords (%s); without --keep-format it is re-encoded", nf_quote(q, sizeof(q), a->file),
			       w, max);
			return 0;
		}
		nf_info("%s has a zstd window of %s, more than a 512 MiB worker affords (%s): re-encoding it",
			nf_quote(q, sizeof(q), a->file), w, max);
		*convert = 1;
		return 1;
	}
	*convert = !a->keep_format && sn->format != NF_FMT_ZSTD;
	return 1;
}

/* After add --force or rm of image name: removes its files the catalog
 * no longer names (keep: the one it names, "" when none): the replaced
 * version's (old_file), its fast and final copies (a fast copy left for
 * its jobs, a final copy a killed finisher renamed in), and the record of
 * its background copy. */
static void drop_unnamed(struct master *m, const char *name, const char *old_file, const char *keep)
{
	char files[3][NF_NAME_MAX + 16], path[PATH_MAX];

	nf_finish_rec_remove(m, name);
	snprintf(files[0], sizeof(files[0]), "%s", old_file);
	nf_fast_file(name, files[1], sizeof(files[1]));
	snprintf(files[2], sizeof(files[2]), "%s.img.zst", name);
	for (size_t i = 0; i < 3; i++)
		if (files[i][0] && strcmp(files[i], keep) != 0 && master_catalog_path(m, files[i], path, sizeof(path)) == 0)
			unlink(path);
}

static int image_add(struct master *m, const struct add_opts *a)
{
	char mpath[PATH_MAX], tmp[PATH_MAX], dst[PATH_MAX], rel[160], q[PATH_MAX + 8], sha[65], why[160];
	struct nf_manifest man = { 0 }, old = { 0 };
	struct nf_convert *cv = calloc(1, sizeof(*cv));
	struct nf_scan *sc = calloc(1, sizeof(*sc));
	struct nf_sniff sn;
	enum nf_head head;
	const char *inner;
	struct stat st;
	int convert = 0, reencode = 0, retry = 0, one_pass = 0, rc = 1, r;
	uint64_t window = 0;

	tmp[0] = '\0';
	nf_quote(q, sizeof(q), a->file);
	if (!cv || !sc || master_manifest_path(m, a->name, mpath, sizeof(mpath)) < 0)
		goto out;
	if (!a->force && stat(mpath, &st) == 0) {
		nf_err("image '%s' is already in the catalog (use --force to replace it)", a->name);
		goto out;
	}
	nf_catalog_drop_stale(m);
	if (classify(a->file, a->zstd_window, &sn, &convert, &window))
		goto out;
	if (!convert && !worker_format(a, &sn, window, &reencode))
		goto out;
	snprintf(rel, sizeof(rel), "images/.add-%s.%d", a->name, (int)getpid());
	master_path(m, tmp, sizeof(tmp), rel);
	/* A file the worker could decode is decoded once, by our own decoder
	 * (damage named with its offset; libarchive names none), and
	 * compressed as it decodes. */
	if (reencode && add_one_pass(a, tmp, sc, &retry) && !retry)
		goto out;
	one_pass = reencode && !retry;
	if (!convert && !reencode && add_as_is(a, tmp, sc, &retry) && !retry)
		goto out;
	convert = convert || retry;
	if (convert && add_converted(a, tmp, sc, cv))
		goto out;
	head = nf_head_check(sc->head, sc->head_len, sc->head_len < sizeof(sc->head), &inner, why, sizeof(why));
	if (head == NF_HEAD_NESTED || (head == NF_HEAD_NOT_DISK && !a->not_a_disk)) {
		nf_err("refusing %s: it is not a disk image: %s%s", q, why,
		       head == NF_HEAD_NESTED ? "" : " (--not-a-disk adds it anyway)");
		goto out;
	}
	if (a->os_list && check_os_list(a->os_list, a->file, a->os_list_name, sc,
					(uint64_t)(convert ? cv->in_size : sc->file_size)))
		goto out;
	snprintf(man.name, sizeof(man.name), "%s", a->name);
	man.format = sc->format;
	man.compressed_size = sc->file_size;
	man.xz_blocks = sc->xz_blocks;
	snprintf(man.origin, sizeof(man.origin), "%s", convert ? cv->origin : "");
	man.origin_size = convert ? cv->in_size : 0;
	if (one_pass) { /* sc measured the file given; the copy is zstd */
		if (stat(tmp, &st) < 0) {
			nf_err("cannot read the worker copy %s: %s", tmp, strerror(errno));
			goto out;
		}
		snprintf(man.origin, sizeof(man.origin), "%s", nf_format_name(sc->format));
		man.origin_size = sc->file_size;
		man.format = NF_FMT_ZSTD;
		man.compressed_size = (uint64_t)st.st_size;
		man.xz_blocks = 0;
	}
	if (one_pass || convert) {
		man.zstd_level = add_level(a);
		man.finish_level = a->fast ? a->level : 0;
	}
	if (man.finish_level)
		nf_fast_file(a->name, man.file, sizeof(man.file));
	else
		snprintf(man.file, sizeof(man.file), "%s%s", a->name, ext_of(man.format));
	man.image_size = sc->image_size;
	memcpy(man.sha256, sc->sha256, 32);
	man.blocks = sc->blocks;
	man.zero_blocks = sc->zero_blocks;
	man.disk = head == NF_HEAD_DISK;
	master_image_path(m, &man, dst, sizeof(dst));
	note_bmap(a->file);
	/* The state lock only for the commit: the daemon and other commands
	 * must not wait while gigabytes decode. */
	if (cli_lock(m) < 0)
		goto out;
	if (!a->force && stat(mpath, &st) == 0) {
		nf_err("image '%s' was added to the catalog meanwhile (use --force to replace it)", a->name);
		goto out;
	}
	if (nf_manifest_read(mpath, &old) < 0)
		memset(&old, 0, sizeof(old));
	r = 0;
	if (rename(tmp, dst) < 0 || (r = nf_manifest_write(mpath, &man)) < 0) {
		nf_err("cannot store image '%s': %s", a->name, r < 0 ? nf_strerror(r) : strerror(errno));
		goto out;
	}
	tmp[0] = '\0';
	drop_unnamed(m, man.name, old.file, man.file);
	nf_format_hex(man.sha256, 32, sha);
	printf("added '%s': %s%s%s%s%s%s, %llu bytes stored, %llu bytes decoded, %u%% zero blocks%s, sha256 %s\n",
	       a->name, nf_format_name(man.format), man.origin[0] ? " (converted from " : "", man.origin,
	       cv->member[0] ? ", member " : "", cv->member[0] ? nf_quote(q, sizeof(q), cv->member) : "",
	       man.origin[0] ? ")" : "",
	       (unsigned long long)man.compressed_size, (unsigned long long)man.image_size,
	       man.blocks ? (unsigned)(man.zero_blocks * 100 / man.blocks) : 0,
	       man.format == NF_FMT_XZ ? (man.xz_blocks > 1 ? ", multi-block xz" : ", single-block xz (decodes on one core)") : "",
	       sha);
	if (man.finish_level)
		printf("'%s' can be flashed now (zstd level %d); netflashd makes the level %d copy in the background "
		       "and swaps it in (netflash image ls shows its progress)\n", a->name, man.zstd_level,
		       man.finish_level);
	if (!man.disk)
		nf_warn("'%s' is not a disk image (%s); added as --not-a-disk asked", a->name, why);
	if (man.image_size % 512)
		nf_info("'%s' is %llu bytes, not a whole number of 512-byte sectors: its last sector is written short",
			a->name, (unsigned long long)man.image_size);
	rc = 0;
out:
	if (tmp[0])
		unlink(tmp);
	free(cv);
	free(sc);
	return rc;
}

struct ls_ctx {
	const struct master *m;
	int shown, name_w, from_w, measure;
};

/* Two passes: the widest name and origin first, so no column breaks. */
static int ls_row(const char *path, const struct nf_manifest *man, void *ctx)
{
	struct ls_ctx *c = ctx;
	char sha[65], given[24], copy[400];

	if (c->measure) {
		if (man && (int)strlen(man->name) > c->name_w)
			c->name_w = (int)strlen(man->name);
		if (man && (int)strlen(man->origin) > c->from_w)
			c->from_w = (int)strlen(man->origin);
		return 0;
	}
	if (!man) {
		nf_warn("%s is not a valid manifest, ignoring", path);
		return 0;
	}
	nf_format_hex(man->sha256, 32, sha);
	if (man->origin_size)
		snprintf(given, sizeof(given), "%llu", (unsigned long long)man->origin_size);
	nf_finish_describe(c->m, man, copy, sizeof(copy));
	printf("%-*s %-5s %12llu %-*s %12s %12llu %4u%%  %.16s  %s\n", c->name_w, man->name,
	       nf_format_name(man->format), (unsigned long long)man->compressed_size, c->from_w,
	       man->origin[0] ? man->origin : "-", man->origin_size ? given : "-", (unsigned long long)man->image_size,
	       man->blocks ? (unsigned)(man->zero_blocks * 100 / man->blocks) : 0, sha, copy);
	c->shown++;
	return 0;
}

static int image_ls(struct master *m)
{
	char dir[PATH_MAX];
	struct ls_ctx c = { .m = m, .name_w = 4, .from_w = 4, .measure = 1 };
	int r = master_each_manifest(m, ls_row, &c);

	if (r >= 0) {
		c.measure = 0;
		printf("%-*s %-5s %12s %-*s %12s %12s %5s  %-16s  %s\n", c.name_w, "NAME", "FMT", "STORED", c.from_w,
		       "FROM", "GIVEN", "IMAGE", "ZERO", "SHA256", "COPY");
		r = master_each_manifest(m, ls_row, &c);
	}
	if (r < 0) {
		master_path(m, dir, sizeof(dir), "images");
		nf_err("cannot list %s: %s", dir, strerror(-r));
		return 1;
	}
	if (!c.shown)
		printf("(no images; add one with: netflash image add FILE)\n");
	return 0;
}

/* Loads NAME's manifest for rm and check; logs on failure. */
static int load(struct master *m, const char *name, struct nf_manifest *man)
{
	char q[200];
	int r = master_read_manifest(m, name, man);

	if (r == -EINVAL)
		nf_err("invalid image name %s", nf_quote(q, sizeof(q), name));
	else if (r == -ENOENT)
		nf_err("no image '%s' in the catalog (see netflash image ls)", name);
	else if (r < 0)
		nf_err("the manifest of '%s' is damaged: %s", name, nf_strerror(r));
	return r;
}

struct users_ctx {
	const char *image;
	char list[200];         /* "b8:27:eb:00:00:01 (rack1-01), ..." */
	unsigned n;
};

/* Names the first enrolled workers of the image, for image rm's refusal. */
static int name_user(const struct enrollment *e, void *ctx)
{
	struct users_ctx *u = ctx;
	size_t len = strlen(u->list);
	char colon[18];

	if (e->state != NF_WORKER_ENROLLED || strcmp(e->image, u->image) != 0)
		return 0;
	if (u->n++ < 3)
		snprintf(u->list + len, sizeof(u->list) - len, "%s%s%s%s%s", len ? ", " : "", cli_mac(e->mac, colon),
			 e->hostname[0] ? " (" : "", e->hostname, e->hostname[0] ? ")" : "");
	return 0;
}

static int image_rm(struct master *m, const char *name, int force)
{
	char mpath[PATH_MAX], path[PATH_MAX], rel[200];
	struct nf_manifest man;
	struct store *st = NULL;
	int users = 0;

	if (load(m, name, &man) < 0)
		return 1;
	if (cli_open_store(m, &st) < 0)
		return 1;
	users = store_image_users(st, name);
	if (users > 0 && !force) {
		struct users_ctx u = { .image = name };

		store_each(st, name_user, &u);
		nf_err("image '%s' is used by %d enrolled worker(s): %s%s; release or re-enroll them, or use --force",
		       name, users, u.list, u.n > 3 ? ", ..." : "");
		store_close(st);
		return 1;
	}
	/* Their jobs can never finish: say so rather than leave them running. */
	if (users > 0) {
		char why[160];

		snprintf(why, sizeof(why), "image '%s' was removed from the catalog (image rm --force); enroll again",
			 name);
		if (store_image_removed(st, name, why) < 0) {
			nf_err("cannot mark the workers of image '%s' failed; nothing removed", name);
			store_close(st);
			return 1;
		}
		nf_warn("%d worker(s) enrolled with '%s' are now failed: enroll them with another image", users, name);
	}
	store_close(st);
	master_manifest_path(m, name, mpath, sizeof(mpath));
	unlink(mpath);
	drop_unnamed(m, name, man.file, "");
	nf_catalog_drop_stale(m);
	snprintf(rel, sizeof(rel), "images/%s.bmap", name);
	master_path(m, path, sizeof(path), rel);
	unlink(path);
	printf("removed '%s'\n", name);
	return 0;
}

static int image_check(struct master *m, const char *name)
{
	struct progress_ctx pc;
	char path[PATH_MAX];
	struct nf_manifest man;
	struct nf_scan sc;
	int r;

	if (load(m, name, &man) < 0)
		return 1;
	master_image_path(m, &man, path, sizeof(path));
	progress_init(&pc, "checking", NULL);
	r = nf_scan_file(path, 0, 0, progress, &pc, &sc);
	progress_end(&pc);
	if (r < 0) {
		nf_err("image '%s' is damaged: %s", name, sc.detail);
		return 1;
	}
	if (sc.image_size != man.image_size || memcmp(sc.sha256, man.sha256, 32) != 0 ||
	    sc.format != man.format) {
		nf_err("image '%s' does not match its manifest (changed since it was added)", name);
		return 1;
	}
	printf("'%s' is intact: %llu bytes decode to the manifest's SHA-256\n", name,
	       (unsigned long long)sc.image_size);
	return 0;
}

int cmd_image(struct master *m, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' }, { "force", no_argument, NULL, 'f' },
		{ "os-list-entry", required_argument, NULL, 'o' }, { "not-a-disk", no_argument, NULL, 'D' },
		{ "os-list-name", required_argument, NULL, 'L' }, { "keep-format", no_argument, NULL, 'K' },
		{ "zstd-level", required_argument, NULL, 'Z' }, { "json", no_argument, NULL, 'J' },
		{ "max-memory", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *name = NULL, *os_list = NULL, *os_list_name = NULL, *verb;
	char defname[NF_NAME_MAX * 2];
	int force = 0, not_a_disk = 0, keep_format = 0, json = 0, level = WORKER_ZSTD_LEVEL, level_forced = 0, opt, r,
	    pruned;
	uint64_t v, max_memory = 0;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(image_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	verb = argv[1];
	optind = 2;
	while ((opt = getopt_long(argc, argv, "n:fh", opts, NULL)) != -1) {
		switch (opt) {
		case 'n': name = optarg; break;
		case 'f': force = 1; break;
		case 'o': os_list = optarg; break;
		case 'D': not_a_disk = 1; break;
		case 'L': os_list_name = optarg; break;
		case 'K': keep_format = 1; break;
		case 'J': json = 1; break;
		case 'Z':
			if (nf_parse_u64(optarg, 1, 19, &v) < 0) {
				nf_err("invalid --zstd-level '%s': expected 1..19", optarg);
				return 2;
			}
			level = (int)v;
			level_forced = 1;
			break;
		case 'M':
			if (nf_parse_size(optarg, 1ull << 50, &max_memory) < 0 || max_memory < (64ull << 20)) {
				nf_err("invalid --max-memory '%s': expected a size of at least 64M (e.g. 400M, 2G)", optarg);
				return 2;
			}
			break;
		case 'h': fputs(image_usage, stdout); return 0;
		default: return cli_bad_option(argv, opts);
		}
	}
	if (cli_require_init(m))
		return 1;
	if (strcmp(verb, "ls") == 0 && json && optind == argc) {
		r = api_images_json(stdout, m);
		putchar('\n');
		return r < 0 ? 1 : 0;
	}
	if (strcmp(verb, "ls") == 0)
		return optind == argc ? image_ls(m) : (nf_err("image ls takes no arguments"), 2);
	if (optind + 1 != argc) {
		nf_err("image %s needs exactly one %s (see netflash image --help)", verb,
		       strcmp(verb, "add") == 0 ? "FILE" : "NAME");
		return 2;
	}
	if (strcmp(verb, "add") == 0) {
		if (!name) {
			default_name(argv[optind], defname, sizeof(defname));
			name = defname;
		}
		if (nf_name_valid(name) < 0) {
			char q[200];

			nf_err("invalid image name %s: use letters, digits, '.', '_', '-' (up to 64, not starting with '.' or '-'); see --name",
			       nf_quote(q, sizeof(q), name));
			return 2;
		}
		/* One allowance for the whole add: the head check, the scan and
		 * the conversion take the same windows. */
		struct add_opts a = { argv[optind], name, os_list, force, not_a_disk, os_list_name, keep_format,
				      level, level_forced, max_memory, zstd_allowance(), !level_forced && !keep_format };

		r = image_add(m, &a); /* locks for its commit only; held on return */
	} else if (strcmp(verb, "rm") == 0) {
		if (cli_lock(m) < 0)
			return 1;
		r = image_rm(m, argv[optind], force);
	} else if (strcmp(verb, "check") == 0) {
		return image_check(m, argv[optind]);
	} else if (strcmp(verb, "finish") == 0) {
		return image_finish(m, argv[optind], max_memory);
	} else {
		nf_err("unknown image command '%s' (add, ls, rm, check, finish)", verb);
		return 2;
	}
	/* add --force may have replaced a version; rm removed one. */
	if (r == 0 && (pruned = provision_cache_prune(m)) > 0)
		printf("dropped %d cached boot partition(s) of image versions no longer in the catalog\n", pruned);
	master_unlock(m);
	return r;
}
