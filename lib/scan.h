/* Scans an image file once: detects its format, decodes it in constant
 * memory and measures what the catalog manifest records (decoded size,
 * SHA-256, zero blocks, xz blocks). */
#ifndef NETFLASH_SCAN_H
#define NETFLASH_SCAN_H

#include <stdint.h>

#include "format.h"

struct nf_scan {
	enum nf_format format;
	uint64_t file_size;     /* compressed bytes */
	uint64_t image_size;    /* decoded bytes */
	uint64_t blocks, zero_blocks; /* 1 MiB blocks, all-zero ones */
	uint64_t xz_blocks;
	uint8_t sha256[32];
	char detail[256];       /* on failure: what and where, one line */
};

/* Progress: compressed bytes consumed of the total, decoded bytes so far. */
typedef void (*nf_scan_progress_fn)(uint64_t in_done, uint64_t in_total, uint64_t out_done, void *ctx);

/* Scans path. threads: xz decoder threads (0: one per CPU). Returns 0, or a
 * negative errno with res->detail set: -EBADMSG (corrupt, truncated, trailing
 * data, or a format we cannot decode; the detail names the offset),
 * -ENOENT, -ENOMEM ... */
int nf_scan_file(const char *path, unsigned threads, nf_scan_progress_fn progress, void *ctx,
		 struct nf_scan *res);

#endif
