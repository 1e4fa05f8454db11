/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Scans an image file once: detects its format, decodes it in constant
 * memory and measures what the catalog manifest records (decoded size,
 * SHA-256, zero blocks, xz blocks). */
#ifndef NETFLASH_SCAN_H
#define NETFLASH_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"

struct nf_scan {
	enum nf_format format;
	uint64_t file_size;     /* compressed bytes */
	uint64_t image_size;    /* decoded bytes */
	uint64_t blocks, zero_blocks; /* 1 MiB blocks, all-zero ones */
	uint64_t xz_blocks;
	uint64_t xz_thread_mem; /* xz: decoder memory a thread needs (nf_xz_thread_mem) */
	uint64_t zstd_window;   /* zstd: the first frame's window */
	uint8_t sha256[32];
	uint8_t head[NF_FORMAT_PROBE_LEN]; /* the decoded image's first bytes */
	size_t head_len;        /* < sizeof(head) only when the image is that short */
	int trailing;           /* on -EBADMSG: the damage is data after the end
				 * of the stream (gzip's trailing garbage) */
	int sink_failed;        /* on failure: nf_scan_file_to()'s sink refused */
	char detail[256];       /* on failure: what and where, one line */
};

/* Progress: compressed bytes consumed of the total, decoded bytes so far. */
typedef void (*nf_scan_progress_fn)(uint64_t in_done, uint64_t in_total, uint64_t out_done, void *ctx);

/* Receives decoded bytes; returns 0 or a negative errno to stop. */
typedef int (*nf_range_sink_fn)(void *ctx, const void *buf, size_t len);

/* Scans path. threads: xz decoder threads (0: one per CPU); zstd_window_max:
 * the largest zstd window taken (0: the decoder's default, 128 MiB; image
 * add's own for zstd --long files). Returns 0, or a
 * negative errno with res->detail set: -EBADMSG (corrupt, truncated, trailing
 * data, or a format we cannot decode; the detail names the offset),
 * -ENOENT, -ENOMEM ... */
int nf_scan_file(const char *path, unsigned threads, uint64_t zstd_window_max, nf_scan_progress_fn progress,
		 void *ctx, struct nf_scan *res);

/* nf_scan_file(), handing every decoded byte, in order, to sink as well
 * (image add's one pass: decode, measure and compress the worker copy),
 * with xz threads within xz_mem bytes (0: a quarter of MemAvailable,
 * nf_decode_budget()).
 * A sink's error stops the scan: its negative errno is returned with
 * res->sink_failed set and the detail naming the image offset. */
int nf_scan_file_to(const char *path, unsigned threads, uint64_t zstd_window_max, uint64_t xz_mem,
		    nf_range_sink_fn sink, void *sink_ctx, nf_scan_progress_fn progress, void *ctx, struct nf_scan *res);

/* 1 if the n bytes at p are all zero (n == 0 counts as zero). */
int nf_is_zero(const uint8_t *p, size_t n);


/* Decodes image file path and hands bytes [off, off+len) of the decoded
 * image to sink, stopping right after them. Returns 0, -ENODATA if the
 * image ends before off+len, or a negative errno with detail set. */
int nf_image_range(const char *path, uint64_t off, uint64_t len, nf_range_sink_fn sink, void *ctx,
		   char *detail, size_t cap);

#endif
