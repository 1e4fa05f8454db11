/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The catalog's background copy (issue 28): image add stores a fast zstd
 * copy (level NF_FAST_ZSTD_LEVEL) that workers can flash at once, and
 * `netflash image finish NAME`, which netflashd runs, makes the copy at the
 * manifest's finish_level from it, checks that it decodes to the manifest's
 * SHA-256 and swaps it in. Its progress is ROOT/state/finish/NAME.json. */
#ifndef NETFLASH_IMGFINISH_H
#define NETFLASH_IMGFINISH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct master;
struct nf_manifest;

/* image add's first copy: zstd level 1 on all cores. Measured on the
 * 1 GiB pi-gen-style bench image (tests/bench/image_add_bench.sh). */
#define NF_FAST_ZSTD_LEVEL 1

struct nf_finish_rec {
	char state[16];         /* "running", "retiring" (the final copy is in;
				 * the fast one waits for its jobs), "done",
				 * "failed" */
	int level;              /* the zstd level being made */
	uint64_t done, total;   /* image bytes compressed, of the image's */
	uint64_t stored;        /* "done": the final copy's bytes */
	long pid;               /* the finisher ("running", "retiring") */
	int64_t started, updated; /* Unix seconds */
	char sha256[65];        /* the image it is for (hex) */
	char error[240];        /* "failed": why, one line */
	int retry;              /* "failed" for this master's reason (a full
				 * disk): netflashd tries again NF_FINISH_RETRY_S
				 * after it */
};

#define NF_FINISH_RETRY_S 600

/* The fast copy's file name in images/ for image name: "NAME.fast.img.zst"
 * (the final one is NAME.img.zst). Returns 0 or -ENAMETOOLONG. */
int nf_fast_file(const char *name, char *out, size_t cap);

/* Writes NAME's record atomically (state/finish/NAME.json, the directory
 * made as needed). Returns 0 or -errno. */
int nf_finish_rec_write(const struct master *m, const char *name, const struct nf_finish_rec *r);

/* Reads NAME's record. Returns 0, -ENOENT (none) or -EBADMSG. */
int nf_finish_rec_read(const struct master *m, const char *name, struct nf_finish_rec *r);

/* Removes NAME's record (image add --force, image rm). */
void nf_finish_rec_remove(const struct master *m, const char *name);

/* What the catalog still owes for man: 1 if `image finish` has work (a
 * finish_level not yet reached and no failure recorded for this image's
 * SHA-256, unless a retryable one NF_FINISH_RETRY_S ago, or a fast copy
 * left beside the final one), else 0. */
int nf_finish_pending(const struct master *m, const struct nf_manifest *man);

/* Removes what killed image adds and finishes left in ROOT/images: the
 * temp files .add-NAME.PID and .finish-NAME.PID whose process is gone. */
void nf_catalog_drop_stale(const struct master *m);

/* What the catalog's copy of man is, for people: "19" (its zstd level),
 * "1, 19 at 43%", "1, 19 queued", "1, 19 failed: WHY", "19, retiring 1"
 * (the fast copy waits for its jobs), "-" (not a copy netflash made). */
void nf_finish_describe(const struct master *m, const struct nf_manifest *man, char *out, size_t cap);

/* The same as JSON object members, written into out without braces:
 * "zstd_level": N|null, "finish": null | {"level", "state": "queued"|
 * "running"|"retiring"|"failed"|"interrupted", "done", "total", "error"}. */
void nf_finish_json(FILE *out, const struct master *m, const struct nf_manifest *man);

#endif
