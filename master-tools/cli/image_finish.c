/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash image finish NAME: the catalog's best copy, made in the
 * background from image add's fast one (imgfinish.h). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "convert.h"
#include "fileutil.h"
#include "image_int.h"
#include "imgfinish.h"
#include "log.h"
#include "manifest.h"
#include "master.h"
#include "parse.h"
#include "scan.h"
#include "store.h"

/* How often a finisher waiting for jobs on the fast copy asks again. */
#define RETIRE_POLL_S 2

struct fin {
	const struct master *m;
	const char *name;
	struct nf_finish_rec rec;
	time_t written;
	int retry;              /* a failure of this master's (disk, memory): netflashd tries again later */
};

static void rec_save(struct fin *f, const char *state)
{
	snprintf(f->rec.state, sizeof(f->rec.state), "%s", state);
	f->rec.updated = time(NULL);
	f->written = (time_t)f->rec.updated;
	if (nf_finish_rec_write(f->m, f->name, &f->rec) < 0)
		nf_warn("cannot record the progress of '%s' in state/finish", f->name);
}

/* Records the failure and says it; returns the exit status. */
static int __attribute__((format(printf, 2, 3))) rec_fail(struct fin *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->rec.error, sizeof(f->rec.error), fmt, ap);
	va_end(ap);
	f->rec.retry = f->retry;
	rec_save(f, "failed");
	nf_err("cannot finish '%s': %s", f->name, f->rec.error);
	return 1;
}

/* The compressor's progress (image bytes it has compressed: libzstd
 * takes input well ahead of its workers): the record, at most once a
 * second. */
static void on_compressed(uint64_t done, void *ctx)
{
	struct fin *f = ctx;

	f->rec.done = done;
	if (time(NULL) != f->written)
		rec_save(f, "running");
}

/* The temp file a signal would otherwise leave (SIGTERM: netflashd stops). */
static char temp_path[PATH_MAX];

static void on_term(int sig)
{
	if (temp_path[0])
		unlink(temp_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Makes the copy at man->finish_level into images/NAME.img.zst and swaps
 * it into the manifest under the state lock. Returns the exit status. */
static int make_final(struct master *m, struct fin *f, const struct nf_manifest *man, uint64_t max_memory)
{
	char src[PATH_MAX], tmp[PATH_MAX], dst[PATH_MAX], rel[NF_NAME_MAX + 40], mpath[PATH_MAX];
	struct nf_convert_plan plan;
	struct nf_manifest now;
	struct nf_zwriter *w;
	struct nf_scan *sc = calloc(1, sizeof(*sc));
	uint64_t size = 0;
	int r, rc = 1;

	if (!sc)
		return rec_fail(f, "out of memory");
	/* The master keeps serving workers meanwhile: this is the background. */
	if (nice(10) < 0 && errno)
		nf_warn("cannot lower the priority of image finish: %s", strerror(errno));
	image_plan_conversion(man->finish_level, 0, max_memory, 0, &plan);
	f->rec.level = plan.level;
	f->rec.total = man->image_size;
	f->rec.started = time(NULL);
	rec_save(f, "running");
	master_catalog_path(m, man->file, src, sizeof(src));
	snprintf(rel, sizeof(rel), "images/.finish-%s.%d", man->name, (int)getpid());
	master_path(m, tmp, sizeof(tmp), rel);
	snprintf(temp_path, sizeof(temp_path), "%s", tmp);
	if ((r = nf_zwriter_open(&w, tmp, plan.level, plan.threads)) < 0) {
		f->retry = 1;
		rc = rec_fail(f, "cannot create %s: %s", tmp, strerror(-r));
		goto out;
	}
	nf_zwriter_progress(w, on_compressed, f);
	r = nf_scan_file_to(src, 1, 0, 0, nf_zwriter_write, w, NULL, NULL, sc);
	if (r == 0) {
		r = nf_zwriter_finish(w, &size);
		w = NULL;
		if (r < 0) {
			snprintf(sc->detail, sizeof(sc->detail), "cannot write the copy: %s", strerror(-r));
			sc->sink_failed = 1;
		}
	}
	nf_zwriter_free(w);
	if (r < 0 && sc->sink_failed) { /* this master's fault (a full disk): tried again later */
		f->retry = 1;
		rc = rec_fail(f, "%s", sc->detail);
		goto out;
	}
	if (r < 0) {
		rc = rec_fail(f, "its fast copy does not decode: %s", sc->detail);
		goto out;
	}
	if (sc->image_size != man->image_size || memcmp(sc->sha256, man->sha256, 32) != 0) {
		rc = rec_fail(f, "its fast copy %s decodes to another image than its manifest says (%llu bytes): add "
			      "the image again", man->file, (unsigned long long)sc->image_size);
		goto out;
	}
	/* What was written is what goes in: the new copy, decoded again. */
	if ((r = nf_scan_file(tmp, 0, 0, NULL, NULL, sc)) < 0 || sc->image_size != man->image_size ||
	    memcmp(sc->sha256, man->sha256, 32) != 0) {
		f->retry = 1;
		rc = rec_fail(f, "the level %d copy does not decode to the image (%s); the fast copy stays", plan.level,
			      r < 0 ? sc->detail : "another SHA-256");
		goto out;
	}
	/* The swap: under the state lock, and only onto the version it was
	 * made from (add --force may have replaced it meanwhile). */
	if (cli_lock(m) < 0) {
		rc = rec_fail(f, "cannot take the state lock");
		goto out;
	}
	master_manifest_path(m, man->name, mpath, sizeof(mpath));
	if (nf_manifest_read(mpath, &now) < 0 || memcmp(now.sha256, man->sha256, 32) != 0 ||
	    strcmp(now.file, man->file) != 0 || !now.finish_level) {
		master_unlock(m);
		printf("'%s' changed while its copy was made: discarding the copy\n", man->name);
		/* The record was this version's: the new one has its own, or none. */
		struct nf_finish_rec cur;

		if (nf_finish_rec_read(m, man->name, &cur) == 0 && strcmp(cur.sha256, f->rec.sha256) == 0)
			nf_finish_rec_remove(m, man->name);
		rc = 2;
		goto out;
	}
	snprintf(now.file, sizeof(now.file), "%s.img.zst", man->name);
	master_catalog_path(m, now.file, dst, sizeof(dst));
	now.format = NF_FMT_ZSTD;
	now.compressed_size = size;
	now.zstd_level = plan.level;
	now.finish_level = 0;
	if (rename(tmp, dst) < 0 || (r = nf_manifest_write(mpath, &now)) < 0) {
		r = r < 0 ? r : -errno;
		unlink(dst); /* the manifest still names the fast copy */
		master_unlock(m);
		rc = rec_fail(f, "cannot store the level %d copy: %s", plan.level, strerror(-r));
		goto out;
	}
	tmp[0] = '\0';
	master_unlock(m);
	f->rec.stored = size;
	f->rec.done = man->image_size;
	rec_save(f, "retiring");
	printf("finished '%s': zstd level %d, %llu bytes (%.1f%% of the fast copy's %llu); its SHA-256 matches\n",
	       man->name, plan.level, (unsigned long long)size,
	       man->compressed_size ? 100.0 * (double)size / (double)man->compressed_size : 0.0,
	       (unsigned long long)man->compressed_size);
	rc = 0;
out:
	if (tmp[0])
		unlink(tmp);
	temp_path[0] = '\0';
	free(sc);
	return rc;
}

/* Removes the fast copy once no running job reads it (a worker that
 * started on it finishes on it). Returns the exit status. */
static int retire_fast(struct master *m, struct fin *f, const char *name)
{
	char fast[NF_NAME_MAX + 16], path[PATH_MAX], mpath[PATH_MAX], sha[65] = "";
	struct nf_manifest now;
	int told = 0;

	nf_fast_file(name, fast, sizeof(fast));
	master_catalog_path(m, fast, path, sizeof(path));
	for (;;) {
		struct store *st = NULL;
		int n;

		if (cli_open_store(m, &st) < 0)
			return 1;
		n = store_image_running_jobs(st, name);
		store_close(st);
		if (n < 0) {
			nf_err("cannot read the jobs of '%s' from the state database", name);
			return 1;
		}
		if (n == 0)
			break;
		if (!told++)
			printf("keeping %s while %d running job(s) read it\n", fast, n);
		sleep(RETIRE_POLL_S);
	}
	if (cli_lock(m) < 0)
		return 1;
	master_manifest_path(m, name, mpath, sizeof(mpath));
	if (nf_manifest_read(mpath, &now) == 0) {
		nf_format_hex(now.sha256, 32, sha);
		if (strcmp(now.file, fast) != 0 && unlink(path) == 0)
			printf("removed the fast copy %s\n", fast);
	}
	master_unlock(m);
	/* A record for the version in the catalog only (image rm, add --force
	 * meanwhile: none, or the new version's own). */
	if (strcmp(sha, f->rec.sha256) == 0)
		rec_save(f, "done");
	return 0;
}

int image_finish(struct master *m, const char *name, uint64_t max_memory)
{
	struct fin f = { .m = m, .name = name };
	struct nf_manifest man;
	pid_t holder = 0;
	int r = master_read_manifest(m, name, &man);

	setvbuf(stdout, NULL, _IOLBF, 0); /* its log is read while it runs */
	if (r == -EINVAL || r == -ENOENT) {
		nf_err("no image '%s' in the catalog (see netflash image ls)", name);
		return 1;
	}
	if (r < 0) {
		nf_err("the manifest of '%s' is damaged: %s", name, nf_strerror(r));
		return 1;
	}
	if (!nf_finish_pending(m, &man) && !man.finish_level) {
		printf("'%s' has nothing to finish (stored at zstd level %d)\n", name, man.zstd_level);
		return 0;
	}
	/* One finisher at a time: level 19 takes most of a Pi's memory. */
	if ((r = master_run_lock(m, "image-finish", &holder)) == -EWOULDBLOCK) {
		nf_err("another image finish is running (PID %d): run this again when it is done (netflashd starts "
		       "the next one itself)", (int)holder);
		return 1;
	}
	if (r < 0) {
		nf_err("cannot take the finisher's lock in %s/state: %s%s", m->root, nf_strerror(r), cli_root_hint(r));
		return 1;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	nf_catalog_drop_stale(m);
	if (nf_finish_rec_read(m, name, &f.rec) < 0)
		memset(&f.rec, 0, sizeof(f.rec));
	f.rec.pid = (long)getpid();
	f.rec.error[0] = '\0';
	nf_format_hex(man.sha256, 32, f.rec.sha256);
	if (man.finish_level && (r = make_final(m, &f, &man, max_memory)) != 0)
		return r == 2 ? 0 : r;
	return retire_fast(m, &f, name);
}
