/* SPDX-License-Identifier: GPL-2.0-or-later */
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

/* The worker copy's zstd window: 16 MiB. The smallest worker budget
 * (40 MiB, decode.h) takes windows up to 32 MiB (nf_zstd_window_max), and
 * at level 19 it keeps the copy within 5% of xz -6: measured on the 1 GiB
 * pi-gen-style bench image (xz 85.6 MB), an 8 MiB window gave 90.2 MB
 * (+5.4%; level 22 no better), 16 MiB 87.4 MB (+2.1%). */
#define NF_CONVERT_WINDOW_LOG 24

/* How image add compresses on this machine (nf_convert_plan). */
struct nf_convert_plan {
	int level;          /* zstd level */
	unsigned threads;   /* compression worker threads; 0: the calling thread */
	uint64_t bytes;     /* the estimate of the whole conversion's memory */
	int lowered;        /* 1: the level is below the one asked for, to fit */
	int over;           /* 1: even level 1 with one worker is over budget */
};

/* The memory image add's conversion takes with `threads` zstd workers at
 * `level` (window 2^NF_CONVERT_WINDOW_LOG): a fixed part (libarchive and
 * its decoders, up to xz -9's 64 MiB dictionary, buffers) plus, per worker,
 * libzstd's estimate of a compression context
 * (ZSTD_estimateCCtxSize_usingCParams) and its job buffers (libzstd's
 * multi-threaded job is 4 windows); with no worker thread, one context
 * and the reader. Fitted to peak RSS measured for a 256 MiB xz -6 image at
 * level 19: no worker thread 110 MiB (estimate 169), 1 worker 237 MiB
 * (299), 2 workers 361 MiB (428). Bytes. */
uint64_t nf_convert_memory(int level, unsigned threads);

/* The plan for budget bytes and cores CPUs: `level` with as many worker
 * threads as cores while the estimate fits, else none (the calling thread
 * compresses: no job buffers); when even that does not fit, the highest
 * lower level at which it does (lowered), unless forced: then the level
 * stays, with no worker thread. over: not even level 1 fits. Fills p. */
void nf_convert_plan(uint64_t budget, unsigned cores, int level, int forced, struct nf_convert_plan *p);

/* A zstd worker copy being written: window 2^NF_CONVERT_WINDOW_LOG,
 * checksummed, one frame. */
struct nf_zwriter;

/* Creates dst (mode 0644, truncated) for a copy at zstd `level` with
 * `threads` compression worker threads (0: the calling thread). Returns 0
 * with *w set, -EINVAL (libzstd refused the level), -ENOMEM, or the
 * system's -errno for dst. */
int nf_zwriter_open(struct nf_zwriter **w, const char *dst, int level, unsigned threads);

/* Compresses len bytes of w's image (w: a struct nf_zwriter *; an
 * nf_range_sink_fn, scan.h). Returns 0, -ENOMEM or the write's -errno. */
int nf_zwriter_write(void *w, const void *buf, size_t len);

/* Progress: image bytes the compressor has consumed so far (with worker
 * threads, libzstd takes input well ahead of what it has compressed). */
typedef void (*nf_zwriter_progress_fn)(uint64_t compressed_in, void *ctx);

/* Calls fn as w's compression goes on, also while the frame ends. */
void nf_zwriter_progress(struct nf_zwriter *w, nf_zwriter_progress_fn fn, void *ctx);

/* Ends the frame, fsyncs and closes dst, frees w; *size (may be NULL): the
 * bytes written. Returns 0 or -errno; dst is the caller's to remove on
 * failure. */
int nf_zwriter_finish(struct nf_zwriter *w, uint64_t *size);

/* Abandons w (NULL is fine): closes dst as it is, frees w. */
void nf_zwriter_free(struct nf_zwriter *w);

/* Progress: input bytes consumed of the total, image bytes produced. */
typedef void (*nf_convert_progress_fn)(uint64_t in_done, uint64_t in_total, uint64_t out_done, void *ctx);

/* Decodes src (every compression layer; tar, zip and 7z must hold exactly
 * one regular file, directories aside) and writes the image as zstd at
 * `level` (window 2^NF_CONVERT_WINDOW_LOG, checksummed frames) with
 * `threads` compression worker threads (0: in the calling thread) to dst
 * (created with mode 0644, fsynced). The image's first bytes are checked
 * with nf_head_check() before anything is written: compressed data inside
 * the member is refused, and so is an image that is not a disk unless
 * not_a_disk. Returns 0, or a negative errno with res->detail set:
 * -EBADMSG (corrupt, truncated, not one member, not a disk image), -EIO or
 * the system's error for dst, -ENOMEM. dst is left for the caller to
 * remove on failure. A plain zstd stream whose window is over libarchive's
 * 128 MiB (zstd --long) is decoded by netflash's own decoder, with windows
 * up to window_max bytes (-ENOMEM naming both when it is over). */
int nf_convert_to_zstd(const char *src, const char *dst, int level, unsigned threads, int not_a_disk,
		       uint64_t window_max, nf_convert_progress_fn progress, void *ctx, struct nf_convert *res);

#endif
