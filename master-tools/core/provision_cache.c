/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The boot-partition cache: each image version's FAT partition extracted
 * once into ROOT/state/cache, pruned when the catalog drops the version. */
#include "provision_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootpart.h"
#include "fileutil.h"
#include "log.h"
#include "parse.h"

/* The image's boot partition, extracted once per image digest into
 * ROOT/state/cache (mass-flash enrolls many workers with one image). */
int provision_cached_partition(const struct master *m, const struct nf_manifest *man, char *path, size_t cap,
			       uint64_t *off, uint64_t *len, char *why, size_t why_cap)
{
	char rel[128], hex[65], tmp[PATH_MAX + 8], detail[400], meta[64];
	unsigned long long v[2];
	int r;

	nf_format_hex(man->sha256, 32, hex);
	master_path(m, tmp, sizeof(tmp), "state/cache");
	mkdir(tmp, 0700);
	snprintf(rel, sizeof(rel), "state/cache/boot-%s.part", hex);
	if (master_path(m, path, cap, rel) < 0) {
		snprintf(why, why_cap, "cannot provision: the state path under %s is too long", m->root);
		return -ENAMETOOLONG;
	}
	snprintf(tmp, sizeof(tmp), "%s.where", path);
	if (nf_read_file(tmp, meta, sizeof(meta) - 1) > 0 && sscanf(meta, "%llu %llu", &v[0], &v[1]) == 2 &&
	    access(path, R_OK) == 0) {
		*off = v[0];
		*len = v[1];
		return 0;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((r = master_boot_partition(m, man, tmp, off, len, detail, sizeof(detail))) < 0) {
		unlink(tmp);
		snprintf(why, why_cap, "cannot provision: %s", detail);
		return r;
	}
	if (rename(tmp, path) < 0) {
		r = -errno;
		snprintf(why, why_cap, "cannot keep %s: %s", path, strerror(-r));
		unlink(tmp);
		return r;
	}
	snprintf(meta, sizeof(meta), "%llu %llu\n", (unsigned long long)*off, (unsigned long long)*len);
	snprintf(tmp, sizeof(tmp), "%s.where", path);
	if ((r = nf_write_file_atomic(tmp, meta, strlen(meta), 0600)) < 0)
		snprintf(why, why_cap, "cannot write %s: %s", tmp, strerror(-r));
	return r;
}

#define NONE_MARK "# netflash: "

/* The image's /etc/passwd, copied out of its root partition once per
 * image digest into ROOT/state/cache/users-<hex>.passwd (0600). When the
 * image has none (no ext partition, or no such file in any), the file
 * holds NONE_MARK and why, one line. Returns 0 with path set, or -errno
 * with why: then nothing is cached (a damaged file system, no space for
 * the partition's copy, a decode error) and the next enroll tries again. */
static int cached_passwd(const struct master *m, const struct nf_manifest *man, char *path, size_t cap, char *why,
			 size_t why_cap)
{
	char rel[128], hex[65], tmp[PATH_MAX + 8], work[PATH_MAX], none[600];
	int r, lock = -1;

	nf_format_hex(man->sha256, 32, hex);
	snprintf(rel, sizeof(rel), "state/cache/users-%s.passwd", hex);
	if (master_path(m, path, cap, rel) < 0 || master_path(m, work, sizeof(work), "state/cache") < 0) {
		snprintf(why, why_cap, "the state path under %.300s is too long", m->root);
		return -ENAMETOOLONG;
	}
	if (access(path, R_OK) == 0)
		return 0;
	mkdir(work, 0700);
	/* One maker at a time (mass-flash and a CSV enroll prepare outside the
	 * state lock): the others wait, then find the file made. */
	snprintf(tmp, sizeof(tmp), "%s.lock", path);
	if ((lock = open(tmp, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 || flock(lock, LOCK_EX) < 0) {
		r = -errno;
		snprintf(why, why_cap, "cannot lock %.300s: %s", tmp, strerror(-r));
		if (lock >= 0)
			close(lock);
		return r;
	}
	r = 0;
	if (access(path, R_OK) != 0) {
		nf_info("reading the accounts in image '%s' (its /etc/passwd; once per image version)", man->name);
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		r = master_image_passwd(m, man, work, tmp, why, why_cap);
		if (r == -ENOENT) {
			snprintf(none, sizeof(none), NONE_MARK "%.500s\n", why);
			r = nf_write_file_atomic(tmp, none, strlen(none), 0600);
		}
		if (r == 0 && (chmod(tmp, 0600) < 0 || rename(tmp, path) < 0))
			r = -errno;
		unlink(tmp);
	}
	close(lock);
	return r;
}

/* The uid of name in passwd (len bytes, NUL-terminated; NULs inside are
 * taken as line ends), -1 when no well-formed line names it; *lines counts
 * the well-formed lines (name:password:uid:..., uid 1 to 10 digits). */
static long passwd_uid(char *passwd, size_t len, const char *name, unsigned *lines)
{
	size_t n = strlen(name);
	long found = -1;

	for (size_t i = 0; i < len; i++)
		if (passwd[i] == '\0')
			passwd[i] = '\n';
	*lines = 0;
	for (const char *l = passwd; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *pw = strchr(l, ':'), *uid = pw ? strchr(pw + 1, ':') : NULL;
		size_t digits = uid ? strspn(uid + 1, "0123456789") : 0;

		if (!uid || pw == l || memchr(l, '\n', (size_t)(uid - l)) || digits == 0 || digits > 10 ||
		    uid[1 + digits] != ':')
			continue;
		(*lines)++;
		if (found < 0 && (size_t)(pw - l) == n && strncmp(l, name, n) == 0)
			found = strtol(uid + 1, NULL, 10);
	}
	return found;
}

/* Says once per image digest in this process why the image's own accounts
 * are not known: the checks then rest on the built-in list. */
static void warn_unchecked(const struct nf_manifest *man, const char *why)
{
	static uint8_t last[32];
	static int said;

	if (said && memcmp(last, man->sha256, 32) == 0)
		return;
	memcpy(last, man->sha256, 32);
	said = 1;
	nf_warn("%s; --user is checked against Debian's system accounts only", why);
}

int provision_check_user(const struct master *m, const struct nf_manifest *man, const char *user, char *why,
			 size_t cap)
{
	const size_t max = 4u << 20;
	char path[PATH_MAX], detail[600], q[64], *passwd;
	unsigned lines = 0;
	ssize_t n;
	long uid = -1;

	if (cached_passwd(m, man, path, sizeof(path), detail, sizeof(detail)) < 0) {
		warn_unchecked(man, detail);
		return 0;
	}
	if (!(passwd = malloc(max + 1)))
		return 0;
	n = nf_read_file(path, passwd, max);
	if (n >= 0 && strncmp(passwd, NONE_MARK, strlen(NONE_MARK)) == 0) {
		passwd[strcspn(passwd, "\n")] = '\0';
		snprintf(detail, sizeof(detail), "%s", passwd + strlen(NONE_MARK));
		n = -1;
	} else if (n == -EFBIG) {
		snprintf(detail, sizeof(detail), "the /etc/passwd of image '%s' is over %zu MiB", man->name, max >> 20);
	} else if (n < 0) {
		snprintf(detail, sizeof(detail), "cannot read %.400s: %s", path, strerror((int)-n));
	} else {
		/* Debian's policy (9.2.2): uids below 1000 and from 60000 are the
		 * system's; 65534 is nobody. */
		uid = passwd_uid(passwd, (size_t)n, user, &lines);
		if (!lines) {
			snprintf(detail, sizeof(detail), "the /etc/passwd of image '%s' holds no account lines "
				 "(is it a symlink, or not text?)", man->name);
			n = -1;
		}
	}
	free(passwd);
	if (n < 0) {
		warn_unchecked(man, detail);
		return 0;
	}
	if (uid >= 0 && (uid < 1000 || uid >= 60000)) {
		snprintf(why, cap, "invalid --user %s: it is a system account of image '%s' (uid %ld in its "
			 "/etc/passwd), which has no login on first boot; choose another name",
			 nf_quote(q, sizeof(q), user), man->name, uid);
		return -EINVAL;
	}
	return 0;
}

struct digests {
	char (*hex)[65];
	size_t n;
};

static int add_digest(const char *path, const struct nf_manifest *man, void *ctx)
{
	struct digests *d = ctx;
	char(*grown)[65];

	if (!man)
		return 0;
	if (!(grown = realloc(d->hex, (d->n + 1) * sizeof(*grown))))
		return -ENOMEM;
	d->hex = grown;
	nf_format_hex(man->sha256, 32, d->hex[d->n++]);
	return 0;
}

int provision_cache_prune(const struct master *m)
{
	char dir[PATH_MAX], path[PATH_MAX + 300];
	struct digests keep = { NULL, 0 };
	struct dirent *de;
	int r, removed = 0;
	DIR *d;

	/* Without a readable catalog nothing can be known unused. */
	if ((r = master_each_manifest(m, add_digest, &keep)) < 0) {
		free(keep.hex);
		return r;
	}
	master_path(m, dir, sizeof(dir), "state/cache");
	if (!(d = opendir(dir))) {
		free(keep.hex);
		return errno == ENOENT ? 0 : -errno;
	}
	while ((de = readdir(d))) {
		int boot = strncmp(de->d_name, "boot-", 5) == 0;
		size_t i = 0, p = boot ? 5 : strncmp(de->d_name, "users-", 6) == 0 ? 6 : 0;

		/* boot-<64 hex>.part, and its .where and .tmp; users-<64
		 * hex>.passwd (cached_passwd) */
		if (!p || strlen(de->d_name) < p + 64 + 5 ||
		    (strncmp(de->d_name + p + 64, ".part", 5) != 0 && strncmp(de->d_name + p + 64, ".passwd", 7) != 0))
			continue;
		while (i < keep.n && strncmp(keep.hex[i], de->d_name + p, 64) != 0)
			i++;
		if (i < keep.n)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) == 0 && strcmp(de->d_name + p + 64, ".part") == 0)
			removed++;
	}
	closedir(d);
	free(keep.hex);
	return removed;
}

int provision_prepare(struct master *m, const char *image, const char *user, char *why, size_t cap)
{
	char cache[PATH_MAX];
	struct nf_manifest man;
	uint64_t off, len;
	int r;

	if (master_read_manifest(m, image, &man) < 0) {
		snprintf(why, cap, "no image '%s' in the catalog (see netflash image ls)", image);
		return -ENOENT;
	}
	if ((r = provision_cached_partition(m, &man, cache, sizeof(cache), &off, &len, why, cap)) < 0)
		return r;
	return user ? provision_check_user(m, &man, user, why, cap) : 0;
}
