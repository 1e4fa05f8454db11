/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "imgfinish.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileutil.h"
#include "json.h"
#include "manifest.h"
#include "master.h"
#include "parse.h"

int nf_fast_file(const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s.fast.img.zst", name);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int rec_path(const struct master *m, const char *name, char *out, size_t cap)
{
	char rel[NF_NAME_MAX + 32];

	snprintf(rel, sizeof(rel), "state/finish/%s.json", name);
	return master_path(m, out, cap, rel);
}

/* The record is rewritten every second while a copy is made: in place,
 * with no rename or fsync (a torn record reads as none: it only informs,
 * the manifest decides). Returns 0 or -errno. */
static int write_in_place(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644), r = 0;

	if (fd < 0)
		return -errno;
	if ((r = nf_write_full(fd, text, len)) == 0 && ftruncate(fd, (off_t)len) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

int nf_finish_rec_write(const struct master *m, const char *name, const struct nf_finish_rec *r)
{
	char path[PATH_MAX], dir[PATH_MAX];
	struct json_object *o = json_object_new_object();
	const char *s;
	int rc;

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "state", json_object_new_string(r->state));
	json_object_object_add(o, "level", json_object_new_int(r->level));
	json_object_object_add(o, "done", json_object_new_int64((int64_t)r->done));
	json_object_object_add(o, "total", json_object_new_int64((int64_t)r->total));
	json_object_object_add(o, "stored", json_object_new_int64((int64_t)r->stored));
	json_object_object_add(o, "pid", json_object_new_int64(r->pid));
	json_object_object_add(o, "started", json_object_new_int64(r->started));
	json_object_object_add(o, "updated", json_object_new_int64(r->updated));
	json_object_object_add(o, "sha256", json_object_new_string(r->sha256));
	json_object_object_add(o, "error", json_object_new_string(r->error));
	json_object_object_add(o, "retry", json_object_new_boolean(r->retry));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (master_path(m, dir, sizeof(dir), "state/finish") < 0 || rec_path(m, name, path, sizeof(path)) < 0)
		rc = -ENAMETOOLONG;
	else if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		rc = -errno;
	else
		rc = write_in_place(path, s, strlen(s));
	json_object_put(o);
	return rc;
}

static int64_t get_i64(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int) ?
		       json_object_get_int64(v) : 0;
}

static void get_str(struct json_object *o, const char *key, char *out, size_t cap)
{
	struct json_object *v;

	snprintf(out, cap, "%s",
		 json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ?
			 json_object_get_string(v) : "");
}

int nf_finish_rec_read(const struct master *m, const char *name, struct nf_finish_rec *r)
{
	char path[PATH_MAX], body[4096];
	struct json_object *o, *v;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	if (rec_path(m, name, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	if ((n = nf_read_file(path, body, sizeof(body) - 1)) < 0)
		return n == -ENOENT ? -ENOENT : -EBADMSG;
	body[n] = '\0';
	if (!(o = json_tokener_parse(body)) || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -EBADMSG;
	}
	get_str(o, "state", r->state, sizeof(r->state));
	get_str(o, "sha256", r->sha256, sizeof(r->sha256));
	get_str(o, "error", r->error, sizeof(r->error));
	r->level = (int)get_i64(o, "level");
	r->done = (uint64_t)get_i64(o, "done");
	r->total = (uint64_t)get_i64(o, "total");
	r->stored = (uint64_t)get_i64(o, "stored");
	r->pid = (long)get_i64(o, "pid");
	r->started = get_i64(o, "started");
	r->updated = get_i64(o, "updated");
	r->retry = json_object_object_get_ex(o, "retry", &v) && json_object_get_boolean(v);
	json_object_put(o);
	return 0;
}

void nf_finish_rec_remove(const struct master *m, const char *name)
{
	char path[PATH_MAX];

	if (rec_path(m, name, path, sizeof(path)) == 0)
		unlink(path);
}

/* 1 if man names its final copy and a fast one is still beside it (its
 * jobs, or a killed finisher, kept it). */
static int fast_left(const struct master *m, const struct nf_manifest *man)
{
	char fast[NF_NAME_MAX + 16], path[PATH_MAX];

	return nf_fast_file(man->name, fast, sizeof(fast)) == 0 && strcmp(man->file, fast) != 0 &&
	       master_catalog_path(m, fast, path, sizeof(path)) == 0 && access(path, F_OK) == 0;
}

int nf_finish_pending(const struct master *m, const struct nf_manifest *man)
{
	char sha[65];
	struct nf_finish_rec rec;

	if (man->finish_level) {
		nf_format_hex(man->sha256, 32, sha);
		return !(nf_finish_rec_read(m, man->name, &rec) == 0 && strcmp(rec.state, "failed") == 0 &&
			 strcmp(rec.sha256, sha) == 0 && !(rec.retry && time(NULL) - rec.updated >= NF_FINISH_RETRY_S));
	}
	return fast_left(m, man);
}

/* The state of man's background copy into rec: NULL when it has none. */
static const char *finish_state(const struct master *m, const struct nf_manifest *man, struct nf_finish_rec *rec)
{
	char sha[65];
	int have;

	nf_format_hex(man->sha256, 32, sha);
	have = nf_finish_rec_read(m, man->name, rec) == 0 && strcmp(rec->sha256, sha) == 0;
	if (!have)
		memset(rec, 0, sizeof(*rec));
	if (man->finish_level) {
		if (!have)
			return "queued";
		if (strcmp(rec->state, "failed") == 0)
			return "failed";
		if (strcmp(rec->state, "running") == 0)
			return rec->pid > 0 && kill((pid_t)rec->pid, 0) == 0 ? "running" : "interrupted";
		return "queued";
	}
	return fast_left(m, man) ? "retiring" : NULL;
}

void nf_finish_describe(const struct master *m, const struct nf_manifest *man, char *out, size_t cap)
{
	struct nf_finish_rec rec;
	const char *st = finish_state(m, man, &rec);
	char lv[16];

	snprintf(lv, sizeof(lv), "%d", man->zstd_level);
	if (!st)
		snprintf(out, cap, "%s", man->zstd_level ? lv : "-");
	else if (strcmp(st, "retiring") == 0)
		snprintf(out, cap, "%s, retiring the fast copy", lv);
	else if (strcmp(st, "running") == 0)
		snprintf(out, cap, "%s, %d at %u%%", lv, man->finish_level,
			 rec.total ? (unsigned)(rec.done * 100 / rec.total) : 0);
	else if (strcmp(st, "failed") == 0)
		snprintf(out, cap, "%s, %d failed: %s%s", lv, man->finish_level, rec.error,
			 rec.retry ? " (netflashd tries again)" : "");
	else
		snprintf(out, cap, "%s, %d %s", lv, man->finish_level, st);
}

void nf_finish_json(FILE *out, const struct master *m, const struct nf_manifest *man)
{
	struct nf_finish_rec rec;
	const char *st = finish_state(m, man, &rec);
	char e[sizeof(rec.error) * 6 + 8];

	if (man->zstd_level)
		fprintf(out, "\"zstd_level\":%d,", man->zstd_level);
	else
		fputs("\"zstd_level\":null,", out);
	if (!st) {
		fputs("\"finish\":null", out);
		return;
	}
	fprintf(out, "\"finish\":{\"level\":%d,\"state\":\"%s\",\"done\":%llu,\"total\":%llu,\"error\":%s}",
		man->finish_level ? man->finish_level : rec.level, st, (unsigned long long)rec.done,
		(unsigned long long)(rec.total ? rec.total : man->image_size), nf_json_str(e, sizeof(e), rec.error));
}

void nf_catalog_drop_stale(const struct master *m)
{
	char dir[PATH_MAX], path[PATH_MAX * 2];
	struct dirent *de;
	DIR *d;

	if (master_path(m, dir, sizeof(dir), "images") < 0 || !(d = opendir(dir)))
		return;
	while ((de = readdir(d))) {
		const char *dot = strrchr(de->d_name, '.');
		char *end;
		long pid;

		if (strncmp(de->d_name, ".add-", 5) != 0 && strncmp(de->d_name, ".finish-", 8) != 0)
			continue;
		pid = dot ? strtol(dot + 1, &end, 10) : 0;
		if (pid <= 0 || *end || (kill((pid_t)pid, 0) < 0 && errno == ESRCH)) {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
	}
	closedir(d);
}
