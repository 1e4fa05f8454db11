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

/* The image's /etc/passwd, copied out of its root partition once per
 * image digest into ROOT/state/cache/users-<hex>.passwd; an empty file
 * there when the image has none (no ext partition, or no such file).
 * Returns 0 with path set, or -errno with why: then only the built-in
 * list of system accounts is known (not enough space for the partition's
 * copy, a decode error). */
static int cached_passwd(const struct master *m, const struct nf_manifest *man, char *path, size_t cap, char *why,
			 size_t why_cap)
{
	char rel[128], hex[65], tmp[PATH_MAX + 8], work[PATH_MAX];
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
		if (r == -ENOENT)
			r = nf_write_file_atomic(tmp, "", 0, 0600);
		if (r == 0 && rename(tmp, path) < 0)
			r = -errno;
		unlink(tmp);
	}
	close(lock);
	return r;
}

/* "name:x:uid:..." lines: the uid of name, or -1. */
static long passwd_uid(const char *passwd, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = passwd; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *uid;

		if (strncmp(l, name, n) != 0 || l[n] != ':' || !(uid = strchr(l + n + 1, ':')))
			continue;
		return strtol(uid + 1, NULL, 10);
	}
	return -1;
}

int provision_check_user(const struct master *m, const struct nf_manifest *man, const char *user, char *why,
			 size_t cap)
{
	const size_t max = 256 << 10;
	char path[PATH_MAX], detail[400], q[64], *passwd;
	long uid = -1;

	if (cached_passwd(m, man, path, sizeof(path), detail, sizeof(detail)) < 0) {
		nf_warn("cannot read the accounts in image '%s' (%s); --user is checked against Debian's system "
			"accounts only", man->name, detail);
		return 0;
	}
	if (!(passwd = malloc(max + 1)))
		return 0;
	/* Debian's policy (9.2.2): uids below 1000 and from 60000 are the
	 * system's; 65534 is nobody. */
	if (nf_read_file(path, passwd, max) >= 0)
		uid = passwd_uid(passwd, user);
	free(passwd);
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
