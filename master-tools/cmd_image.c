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
#include "master.h"
#include "parse.h"
#include "provision.h"
#include "scan.h"
#include "store.h"

static const char image_usage[] =
"Usage: netflash [--root DIR] image add FILE [--name NAME] [--os-list-entry JSON] [--force]\n"
"       netflash [--root DIR] image ls\n"
"       netflash [--root DIR] image rm NAME [--force]\n"
"       netflash [--root DIR] image check NAME\n"
"\n"
"The catalog: images in ROOT/images, each with NAME.manifest (format, sizes,\n"
"SHA-256 of the decoded image, xz blocks, share of all-zero 1 MiB blocks).\n"
"\n"
"add    copies FILE (raw, gzip, xz or zstd, detected from its bytes) into the\n"
"       catalog, decoding it once to validate it and fill the manifest; a\n"
"       corrupt image is refused with the offset of the damage. FILE.bmap, if\n"
"       present, is imported too. NAME defaults to FILE's name without\n"
"       extensions; names are [A-Za-z0-9._-], up to 64. --force replaces.\n"
"       --os-list-entry: a file holding the image's entry from an rpi-imager\n"
"       os_list JSON; its extract_size, extract_sha256 and image_download_size\n"
"       must match what decoding found, or the image is refused.\n"
"ls     lists the catalog.\n"
"rm     removes an image; refused while enrolled workers use it (--force).\n"
"       add --force and rm also drop the boot partitions cached for\n"
"       provisioning (ROOT/state/cache) of versions no longer in the catalog.\n"
"check  decodes the stored image again and compares it with its manifest.\n"
"\n"
"Tip: xz with 4 MiB blocks (xz -T0 --block-size=4MiB) decodes on all cores\n"
"of a worker within the flasher's 64 MiB memory budget.\n";

static const char *ext_of(enum nf_format f)
{
	switch (f) {
	case NF_FMT_GZIP: return ".img.gz";
	case NF_FMT_XZ: return ".img.xz";
	case NF_FMT_ZSTD: return ".img.zst";
	default: return ".img";
	}
}

static void progress(uint64_t in_done, uint64_t in_total, uint64_t out_done, void *ctx)
{
	(void)ctx;
	if (!isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\rdecoding: %3u%%  %llu MiB decoded\033[K",
		in_total ? (unsigned)(in_done * 100 / in_total) : 0, (unsigned long long)(out_done >> 20));
}

static void default_name(const char *file, char *out, size_t cap)
{
	char copy[PATH_MAX], *b, *dot;

	snprintf(copy, sizeof(copy), "%s", file);
	b = basename(copy);
	/* Strip known extensions: pios.img.xz -> pios */
	while ((dot = strrchr(b, '.')) && (strcmp(dot, ".xz") == 0 || strcmp(dot, ".gz") == 0 ||
					   strcmp(dot, ".zst") == 0 || strcmp(dot, ".img") == 0 ||
					   strcmp(dot, ".raw") == 0))
		*dot = '\0';
	snprintf(out, cap, "%s", b);
}

static int copy_into(const char *src, const char *dst)
{
	return nf_copy_at(AT_FDCWD, src, AT_FDCWD, dst, 0, 0644);
}

#define OS_LIST_MAX (1 << 20)

/* Compares the scan with an rpi-imager os_list entry. Logs; returns 0 or 1. */
static int check_os_list(const char *json_file, const struct nf_scan *sc)
{
	static char body[OS_LIST_MAX + 1];
	struct json_object *root = NULL, *v;
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
	if (json_object_object_get_ex(root, "extract_size", &v)) {
		if (!json_object_is_type(v, json_type_int) || (uint64_t)json_object_get_int64(v) != sc->image_size) {
			nf_err("the image decodes to %llu bytes, but os_list says extract_size %s",
			       (unsigned long long)sc->image_size, json_object_get_string(v));
			goto out;
		}
		checked++;
	}
	if (json_object_object_get_ex(root, "image_download_size", &v)) {
		if (!json_object_is_type(v, json_type_int) || (uint64_t)json_object_get_int64(v) != sc->file_size) {
			nf_err("the file has %llu bytes, but os_list says image_download_size %s",
			       (unsigned long long)sc->file_size, json_object_get_string(v));
			goto out;
		}
		checked++;
	}
	if (json_object_object_get_ex(root, "extract_sha256", &v)) {
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

static int image_add(struct master *m, const char *file, const char *name, const char *os_list, int force)
{
	char mpath[PATH_MAX], tmp[PATH_MAX], dst[PATH_MAX], rel[160], q[PATH_MAX + 8], sha[65];
	struct nf_manifest man = { 0 };
	struct nf_scan sc;
	struct stat st;
	int r;

	if (master_manifest_path(m, name, mpath, sizeof(mpath)) < 0)
		return 1;
	if (!force && stat(mpath, &st) == 0) {
		nf_err("image '%s' is already in the catalog (use --force to replace it)", name);
		return 1;
	}
	/* Scan the copy, not the original: the catalog holds what was checked. */
	snprintf(rel, sizeof(rel), "images/.add-%s.%d", name, (int)getpid());
	master_path(m, tmp, sizeof(tmp), rel);
	r = copy_into(file, tmp);
	if (r < 0) {
		nf_err("cannot copy %s into the catalog: %s", nf_quote(q, sizeof(q), file), nf_strerror(r));
		unlink(tmp);
		return 1;
	}
	r = nf_scan_file(tmp, 0, progress, NULL, &sc);
	if (isatty(STDERR_FILENO))
		fputc('\n', stderr);
	if (r < 0) {
		nf_err("refusing %s: %s", nf_quote(q, sizeof(q), file), sc.detail);
		unlink(tmp);
		return 1;
	}
	if (os_list && check_os_list(os_list, &sc)) {
		unlink(tmp);
		return 1;
	}
	snprintf(man.name, sizeof(man.name), "%s", name);
	snprintf(man.file, sizeof(man.file), "%s%s", name, ext_of(sc.format));
	man.format = sc.format;
	man.compressed_size = sc.file_size;
	man.image_size = sc.image_size;
	memcpy(man.sha256, sc.sha256, 32);
	man.xz_blocks = sc.xz_blocks;
	man.blocks = sc.blocks;
	man.zero_blocks = sc.zero_blocks;
	master_image_path(m, &man, dst, sizeof(dst));
	snprintf(q, sizeof(q), "%s.bmap", file);
	if (access(q, R_OK) == 0) {
		char bdst[PATH_MAX];

		snprintf(rel, sizeof(rel), "images/%s.bmap", name);
		master_path(m, bdst, sizeof(bdst), rel);
		man.has_bmap = copy_into(q, bdst) == 0;
	}
	if (rename(tmp, dst) < 0 || (r = nf_manifest_write(mpath, &man)) < 0) {
		nf_err("cannot store image '%s': %s", name, r < 0 ? nf_strerror(r) : strerror(errno));
		unlink(tmp);
		return 1;
	}
	nf_format_hex(man.sha256, 32, sha);
	printf("added '%s': %s, %llu bytes stored, %llu bytes decoded, %u%% zero blocks%s, sha256 %s\n",
	       name, nf_format_name(man.format), (unsigned long long)man.compressed_size,
	       (unsigned long long)man.image_size,
	       man.blocks ? (unsigned)(man.zero_blocks * 100 / man.blocks) : 0,
	       man.format == NF_FMT_XZ ? (man.xz_blocks > 1 ? ", multi-block xz" : ", single-block xz (decodes on one core)") : "",
	       sha);
	return 0;
}

static int ls_row(const char *path, const struct nf_manifest *man, void *ctx)
{
	char sha[65];

	if (!man) {
		nf_warn("%s is not a valid manifest, ignoring", path);
		return 0;
	}
	nf_format_hex(man->sha256, 32, sha);
	printf("%-24s %-5s %12llu %12llu %4u%%  %.16s\n", man->name, nf_format_name(man->format),
	       (unsigned long long)man->compressed_size, (unsigned long long)man->image_size,
	       man->blocks ? (unsigned)(man->zero_blocks * 100 / man->blocks) : 0, sha);
	++*(int *)ctx;
	return 0;
}

static int image_ls(struct master *m)
{
	char dir[PATH_MAX];
	int shown = 0, r;

	printf("%-24s %-5s %12s %12s %5s  %s\n", "NAME", "FMT", "STORED", "IMAGE", "ZERO", "SHA256");
	if ((r = master_each_manifest(m, ls_row, &shown)) < 0) {
		master_path(m, dir, sizeof(dir), "images");
		nf_err("cannot list %s: %s", dir, strerror(-r));
		return 1;
	}
	if (!shown)
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

static int image_rm(struct master *m, const char *name, int force)
{
	char mpath[PATH_MAX], path[PATH_MAX], rel[200];
	struct nf_manifest man;
	struct store *st = NULL;
	int users = 0;

	if (load(m, name, &man) < 0)
		return 1;
	if (master_open_store(m, &st) == 0) {
		users = store_image_users(st, name);
		store_close(st);
	}
	if (users > 0 && !force) {
		nf_err("image '%s' is used by %d enrolled worker(s); release them or use --force", name, users);
		return 1;
	}
	master_manifest_path(m, name, mpath, sizeof(mpath));
	unlink(mpath);
	master_image_path(m, &man, path, sizeof(path));
	unlink(path);
	snprintf(rel, sizeof(rel), "images/%s.bmap", name);
	master_path(m, path, sizeof(path), rel);
	unlink(path);
	printf("removed '%s'\n", name);
	return 0;
}

static int image_check(struct master *m, const char *name)
{
	char path[PATH_MAX];
	struct nf_manifest man;
	struct nf_scan sc;
	int r;

	if (load(m, name, &man) < 0)
		return 1;
	master_image_path(m, &man, path, sizeof(path));
	r = nf_scan_file(path, 0, progress, NULL, &sc);
	if (isatty(STDERR_FILENO))
		fputc('\n', stderr);
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
		{ "os-list-entry", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *name = NULL, *os_list = NULL, *verb;
	char defname[NF_NAME_MAX * 2];
	int force = 0, opt, r, pruned;

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
		case 'h': fputs(image_usage, stdout); return 0;
		default: fputs(image_usage, stderr); return 2;
		}
	}
	if (master_require_init(m))
		return 1;
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
		if (master_lock(m) < 0)
			return 1;
		r = image_add(m, argv[optind], name, os_list, force);
	} else if (strcmp(verb, "rm") == 0) {
		if (master_lock(m) < 0)
			return 1;
		r = image_rm(m, argv[optind], force);
	} else if (strcmp(verb, "check") == 0) {
		return image_check(m, argv[optind]);
	} else {
		nf_err("unknown image command '%s' (add, ls, rm, check)", verb);
		return 2;
	}
	/* add --force may have replaced a version; rm removed one. */
	if (r == 0 && (pruned = provision_cache_prune(m)) > 0)
		printf("dropped %d cached boot partition(s) of image versions no longer in the catalog\n", pruned);
	master_unlock(m);
	return r;
}
