/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The catalog manifest: what `netflash image add` learnt by decoding an image
 * once, stored next to it as NAME.manifest, one "key=value" a line. The
 * daemon trusts only this file's digest when a worker reports success. */
#ifndef NETFLASH_MANIFEST_H
#define NETFLASH_MANIFEST_H

#include <stdint.h>

#include "format.h"

#define NF_NAME_MAX 64          /* image names: [A-Za-z0-9._-], not starting with '.' */
#define NF_MANIFEST_MAX 4096    /* bytes; a longer file is refused */

struct nf_manifest {
	char name[NF_NAME_MAX + 1];
	char file[NF_NAME_MAX + 16]; /* the image file in images/, e.g. NAME.img.xz */
	enum nf_format format;
	uint64_t compressed_size;    /* bytes of the stored file */
	uint64_t image_size;         /* decoded bytes */
	uint8_t sha256[32];          /* of the decoded image */
	uint64_t xz_blocks;          /* xz: blocks in the index (>1: multi-block) */
	uint64_t zero_blocks;        /* all-zero 1 MiB blocks of the image */
	uint64_t blocks;             /* 1 MiB blocks of the image (last may be short) */
	int has_bmap;                /* read for old catalogs; no longer written */
	char origin[32];             /* what image add was given when it converted
				      * it ("zip", "tar.xz", "bzip2"); "" when the
				      * file was stored as given */
	uint64_t origin_size;        /* bytes of the file image add was given
				      * (with origin; 0 in older manifests) */
	int disk;                    /* 1: starts like a disk; 0: added with
				      * --not-a-disk (the JOB says disk=0) */
	int zstd_level;              /* the stored zstd copy's level (0: not
				      * recorded, or not a copy netflash made) */
	int finish_level;            /* >0: the stored copy is image add's fast
				      * one; `image finish` makes the copy at
				      * this level and swaps it in (0: done) */
};

/* Checks an image name. Returns 0 or -EINVAL. */
int nf_name_valid(const char *name);

/* Writes m to path atomically (temp file, fsync, rename, fsync of the dir).
 * Returns 0 or -errno. */
int nf_manifest_write(const char *path, const struct nf_manifest *m);

/* Reads and validates path into m. Unknown keys, missing keys, bad values,
 * over-long lines or files: -EBADMSG. Returns 0 or -errno. */
int nf_manifest_read(const char *path, struct nf_manifest *m);

#endif
