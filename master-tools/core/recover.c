/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "recover.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileutil.h"
#include "log.h"
#include "master.h"
#include "nfsroot.h"
#include "parse.h"
#include "provision.h"
#include "release.h"
#include "store.h"
#include "tftpdir.h"

#define INTENT_MAX 1400 /* "enroll G nfsroot=DIR" with the longest DIR */

void master_generation(const char *token, char out[17])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)token, strlen(token), md);
	nf_format_hex(md, 8, out);
}

static int intent_path(const struct master *m, const char *mac, char *out, size_t cap)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "state/intent/%s", mac);
	return master_path(m, out, cap, rel);
}

#define HEX_DIGITS "0123456789abcdef"
#define GEN_LEN 16

int intent_format(const struct intent *in, char *out, size_t cap)
{
	int n;

	if (in->kind == INTENT_RELEASE)
		n = snprintf(out, cap, "release %llu", (unsigned long long)in->job);
	else if (strlen(in->gen) == GEN_LEN && strspn(in->gen, HEX_DIGITS) == GEN_LEN)
		n = snprintf(out, cap, "enroll %s patch=%d%s%s", in->gen, in->patch_aside ? 1 : 0,
			     in->nfsroot[0] ? " nfsroot=" : "", in->nfsroot);
	else
		return -EINVAL;
	return n < 0 || (size_t)n >= cap ? -EMSGSIZE : n;
}

/* Moves the cursor past w if the rest starts with it. Returns 1 if it did. */
static int take(const char **s, size_t *rem, const char *w)
{
	size_t n = strlen(w);

	if (*rem < n || memcmp(*s, w, n) != 0)
		return 0;
	*s += n;
	*rem -= n;
	return 1;
}

static int parse_release(const char *s, size_t rem, struct intent *out)
{
	char num[21]; /* UINT64_MAX has 20 digits */

	if (rem == 0 || rem >= sizeof(num))
		return -EBADMSG;
	memcpy(num, s, rem);
	num[rem] = '\0';
	out->kind = INTENT_RELEASE;
	return nf_parse_u64(num, 0, UINT64_MAX, &out->job) < 0 ? -EBADMSG : 0;
}

static int parse_enroll(const char *s, size_t rem, struct intent *out)
{
	if (rem < GEN_LEN || strspn(s, HEX_DIGITS) < GEN_LEN)
		return -EBADMSG;
	out->kind = INTENT_ENROLL;
	memcpy(out->gen, s, GEN_LEN);
	out->gen[GEN_LEN] = '\0';
	s += GEN_LEN;
	rem -= GEN_LEN;
	if (take(&s, &rem, " patch=1"))
		out->patch_aside = 1;
	else if (!take(&s, &rem, " patch=0"))
		return -EBADMSG;
	if (rem == 0)
		return 0;
	if (!take(&s, &rem, " nfsroot=") || rem == 0 || rem >= sizeof(out->nfsroot))
		return -EBADMSG;
	memcpy(out->nfsroot, s, rem);
	out->nfsroot[rem] = '\0';
	return 0;
}

int intent_parse(const char *line, struct intent *out)
{
	const char *s = line;
	size_t rem = strlen(line);

	memset(out, 0, sizeof(*out));
	if (rem > 0 && line[rem - 1] == '\n')
		rem--;
	if (memchr(line, '\n', rem))
		return -EBADMSG;
	if (take(&s, &rem, "release "))
		return parse_release(s, rem, out);
	if (take(&s, &rem, "enroll "))
		return parse_enroll(s, rem, out);
	return -EBADMSG;
}

int intent_write(const struct master *m, const char *mac, const struct intent *in)
{
	char path[PATH_MAX], body[INTENT_MAX + 2];
	int n;

	if (master_path(m, path, sizeof(path), "state/intent") < 0)
		return -ENAMETOOLONG;
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((n = intent_format(in, body, sizeof(body) - 1)) < 0)
		return n;
	body[n++] = '\n';
	if (intent_path(m, mac, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	return nf_write_file_atomic(path, body, (size_t)n, 0600);
}

int intent_clear(const struct master *m, const char *mac)
{
	char path[PATH_MAX];

	if (intent_path(m, mac, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

/* ---- what the steps leave behind ------------------------------------------ */

/* Calls fn for each .swap- dir of mac under tftp (a copy of the names
 * first: fn may remove them). */
static void each_swap(const char *tftp, const char *mac, void (*fn)(const char *tftp, const char *name, void *ctx),
		      void *ctx)
{
	char prefix[64];
	struct dirent **names = NULL;
	int n = scandir(tftp, &names, NULL, alphasort);

	snprintf(prefix, sizeof(prefix), "%s%s-", NF_TFTP_SWAP_PREFIX, mac);
	for (int i = 0; i < n; i++) {
		if (strncmp(names[i]->d_name, prefix, strlen(prefix)) == 0)
			fn(tftp, names[i]->d_name, ctx);
		free(names[i]);
	}
	free(names);
}

static void drop_swap(const char *tftp, const char *name, void *ctx)
{
	int *repairs = ctx;

	if (tftpdir_remove_aside(tftp, name) == 0)
		++*repairs;
}

struct find_gen {
	const char *want;
	char found[128];
};

static void find_swap(const char *tftp, const char *name, void *ctx)
{
	struct find_gen *f = ctx;
	char gen[32];

	if (!f->found[0] && tftpdir_generation(tftp, name, gen, sizeof(gen)) == 0 && strcmp(gen, f->want) == 0)
		snprintf(f->found, sizeof(f->found), "%s", name);
}

/* The patch's two names: MAC.patch (current) and MAC.patch.old (the old
 * enrollment's, moved aside by an enroll that has not committed). */
static void patch_paths(const struct master *m, const char *mac, char *cur, char *old, size_t cap)
{
	provision_patch_path(m, mac, cur, cap);
	snprintf(old, cap, "%.*s.old", (int)(cap - 5), cur);
}

/* ---- completing or undoing one intent ------------------------------------- */

/* An enroll committed once the row holds its generation's token. */
static int recover_enroll(struct master *m, struct store *st, const char *mac, const char *gen, int had_patch,
			  const char *old_nfsroot)
{
	char tftp[PATH_MAX], cur[PATH_MAX], old[PATH_MAX], detail[1400], now[32];
	struct enrollment *e = calloc(1, sizeof(*e));
	char rowgen[17] = "";
	int repairs = 0, have;

	if (!e)
		return -ENOMEM;
	have = store_get(st, mac, e) == 0;
	if (have)
		master_generation(e->token, rowgen);
	master_path(m, tftp, sizeof(tftp), "tftp");
	patch_paths(m, mac, cur, old, sizeof(cur));
	if (have && strcmp(rowgen, gen) == 0) {
		/* Committed: only the cleanup was cut short. */
		each_swap(tftp, mac, drop_swap, &repairs);
		unlink(old);
		if (e->state != NF_WORKER_DISKLESS && old_nfsroot[0])
			nfsroot_set(m, mac, NULL, detail, sizeof(detail));
		master_tell(m, 1, "recovered %s: its interrupted enroll had committed; finished its cleanup", mac);
	} else {
		/* Not committed: back to the enrollment the database holds (or none). */
		if (tftpdir_generation(tftp, mac, now, sizeof(now)) == 0 && strcmp(now, gen) == 0) {
			struct find_gen f = { .want = rowgen };

			if (have)
				each_swap(tftp, mac, find_swap, &f);
			if (f.found[0] && tftpdir_exchange(tftp, f.found, mac) == 0)
				tftpdir_remove_aside(tftp, f.found);
			else
				tftpdir_remove(tftp, mac, detail, sizeof(detail));
		}
		each_swap(tftp, mac, drop_swap, &repairs);
		/* The old patch: still aside (put it back over any new one), or
		 * already back (had_patch), or there was none (drop the new one). */
		if (rename(old, cur) < 0 && errno == ENOENT && !had_patch)
			unlink(cur);
		if (nfsroot_set(m, mac, old_nfsroot[0] ? old_nfsroot : NULL, detail, sizeof(detail)) < 0)
			master_tell(m, 1, "%s, ignoring", detail);
		master_tell(m, 1, "recovered %s: its interrupted enroll had not committed; %s", mac,
			have ? "its previous enrollment stands" : "it is not enrolled");
	}
	free(e);
	return repairs + 1;
}

/* A release is completed whatever step it reached: it was decided (a
 * verified DONE, or the admin's command) before its intent was written.
 * A step that fails keeps the intent for the next recovery, except a TFTP
 * dir netflash did not make (-EPERM: a symlink, no marker), which no retry
 * removes: the admin does (release says so). */
static int recover_release(struct master *m, struct store *st, const char *mac, uint64_t job)
{
	const struct release rel = {
		.mac = mac, .lock = RELEASE_LOCK_HELD, .flags = RELEASE_RESUME | RELEASE_NFSROOT, .job = job,
		.event = { "completed after an interruption", "completed after an interruption" },
	};
	char why[1400];
	int r = release_worker(m, st, &rel, why, sizeof(why));

	if (r < 0) {
		master_tell(m, 1, "cannot finish releasing %s: %s; %s", mac, why,
			    r == -EPERM ? "its intent is dropped" : "left for the next recovery");
		return r == -EPERM ? 0 : r;
	}
	master_tell(m, 1, "recovered %s: finished its interrupted release", mac);
	return 1;
}

static int recover_intent(struct master *m, struct store *st, const char *mac, const char *path)
{
	char line[INTENT_MAX + 2];
	ssize_t n = nf_read_file(path, line, sizeof(line) - 1);
	struct intent in;
	int r;

	if (n <= 0 || strlen(line) != (size_t)n || intent_parse(line, &in) < 0) {
		master_tell(m, 1, "unreadable intent %s, removing it", path);
		intent_clear(m, mac);
		return 1;
	}
	if (in.kind == INTENT_ENROLL)
		r = recover_enroll(m, st, mac, in.gen, in.patch_aside, in.nfsroot);
	else
		r = recover_release(m, st, mac, in.job);
	if (r >= 0)
		intent_clear(m, mac);
	return r;
}

/* ---- leftovers no intent owns -------------------------------------------- */

static int tftp_leftovers(const struct master *m, const char *tftp)
{
	struct dirent **names = NULL;
	int n = scandir(tftp, &names, NULL, alphasort), repairs = 0;

	for (int i = 0; i < n; i++) {
		const char *d = names[i]->d_name;

		if ((strncmp(d, NF_TFTP_SWAP_PREFIX, strlen(NF_TFTP_SWAP_PREFIX)) == 0 || strncmp(d, ".new-", 5) == 0 ||
		     strncmp(d, ".del-", 5) == 0) && tftpdir_remove_aside(tftp, d) == 0) {
			master_tell(m, 1, "recovered: removed tftp/%s, left by an interrupted change", d);
			repairs++;
		}
		free(names[i]);
	}
	free(names);
	return repairs;
}

/* Patches of workers that are released or gone hold secrets for nobody. */
static int patch_leftovers(struct master *m, struct store *st)
{
	char dir[PATH_MAX], path[PATH_MAX + 300], mac[18], cur[PATH_MAX + 32];
	struct enrollment *e = calloc(1, sizeof(*e));
	struct dirent **names = NULL;
	int n, repairs = 0;

	if (!e)
		return 0;
	master_path(m, dir, sizeof(dir), "state/provision");
	n = scandir(dir, &names, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		const char *d = names[i]->d_name;
		size_t len = strlen(d);
		int tmp = strstr(d, ".tmp.") != NULL, old = len == 27 && strcmp(d + 17, ".patch.old") == 0;
		int patch = len == 23 && strcmp(d + 17, ".patch") == 0;
		int gone = 0;

		if (d[0] == '.' || !(tmp || old || patch)) {
			free(names[i]);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, d);
		snprintf(mac, sizeof(mac), "%.17s", d);
		if (!tmp)
			gone = store_get(st, mac, e) < 0 || e->state == NF_WORKER_RELEASED;
		if (old && !gone) {
			/* Moved aside by an enroll cut short before its intent: put back. */
			snprintf(cur, sizeof(cur), "%s/%s.patch", dir, mac);
			if (access(cur, F_OK) < 0 && rename(path, cur) == 0) {
				master_tell(m, 1, "recovered %s: put its provisioning patch back", mac);
				repairs++;
				free(names[i]);
				continue;
			}
		}
		if ((tmp || old || gone) && unlink(path) == 0) {
			master_tell(m, 1, "recovered: removed %s (%s)", path, tmp ? "a half-written file" : old ? "an old patch"
												   : "secrets of a worker that is not enrolled");
			repairs++;
		}
		free(names[i]);
	}
	free(names);
	free(e);
	return repairs;
}

int master_recover(struct master *m)
{
	char dir[PATH_MAX], path[PATH_MAX + 300], tftp[PATH_MAX];
	struct dirent **names = NULL;
	struct store *st = NULL;
	int n, repairs = 0, r;

	master_path(m, dir, sizeof(dir), "state/intent");
	master_path(m, tftp, sizeof(tftp), "tftp");
	if (master_open_store(m, &st) < 0) /* the caller's next step says why */
		return -EIO;
	n = scandir(dir, &names, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		const char *d = names[i]->d_name;

		snprintf(path, sizeof(path), "%s/%s", dir, d);
		if (d[0] != '.' && nf_mac_is_canonical(d)) {
			r = recover_intent(m, st, d, path);
			repairs += r > 0 ? r : 0;
		} else if (d[0] != '.' || strstr(d, ".tmp.")) {
			unlink(path); /* a half-written intent: its change never started */
		}
		free(names[i]);
	}
	free(names);
	repairs += tftp_leftovers(m, tftp);
	repairs += patch_leftovers(m, st);
	store_close(st);
	return repairs;
}
