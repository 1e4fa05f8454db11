/* The catalog's worker copy: any image (raw, gzip, xz, and what the worker
 * cannot decode at all: zip, 7z, bzip2, lz4, lzip, lzma, .Z, tar-wrapped or
 * doubly compressed images, gzip with trailing data) re-encoded as zstd,
 * which a worker decodes fastest: libarchive reads, libzstd writes, on the
 * master only, so libarchive never goes into the static flasher. */
#ifndef NETFLASH_CONVERT_H
#define NETFLASH_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"

struct nf_convert {
	char origin[32];        /* what it was, container then filters from the
				 * outermost: "zip", "tar.gzip", "bzip2", "xz.bzip2" */
	char member[256];       /* the archive member taken, printable ("" for a bare compressed stream) */
	uint64_t in_size;       /* bytes of the file given */
	uint64_t image_size;    /* decoded image bytes */
	uint8_t sha256[32];     /* of the decoded image */
	uint8_t head[NF_FORMAT_PROBE_LEN]; /* its first bytes */
	size_t head_len;
	char detail[400];       /* on failure: one line, what and why */
};

/* The worker copy's zstd window: 8 MiB, which the smallest worker budget
 * (40 MiB, decode.h) affords with room to spare. */
#define NF_CONVERT_WINDOW_LOG 23

/* Progress: input bytes consumed of the total, image bytes produced. */
typedef void (*nf_convert_progress_fn)(uint64_t in_done, uint64_t in_total, uint64_t out_done, void *ctx);

/* Decodes src (every compression layer; tar, zip and 7z must hold exactly
 * one regular file, directories aside) and writes the image as zstd at
 * `level` (window 2^NF_CONVERT_WINDOW_LOG, checksummed frames) with
 * `threads` compression threads (0: one per CPU) to dst
 * (created with mode 0644, fsynced). The image's first bytes are checked
 * with nf_head_check() before anything is written: compressed data inside
 * the member is refused, and so is an image that is not a disk unless
 * not_a_disk. Returns 0, or a negative errno with res->detail set:
 * -EBADMSG (corrupt, truncated, not one member, not a disk image), -EIO or
 * the system's error for dst, -ENOMEM. dst is left for the caller to
 * remove on failure. */
int nf_convert_to_zstd(const char *src, const char *dst, int level, unsigned threads, int not_a_disk,
		       nf_convert_progress_fn progress, void *ctx, struct nf_convert *res);

#endif
