/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The decoder stage: pulls compressed bytes from an input and produces the
 * image's bytes. Strict: a stream that ends early, corrupt data and any
 * bytes after the end of the compressed data are errors (-EBADMSG). */
#ifndef NETFLASH_DECODE_H
#define NETFLASH_DECODE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "format.h"
#include "xzinfo.h"

/* Where a decoder pulls compressed bytes from (a ring, a memory buffer). */
struct nf_input {
	/* Points *p at available bytes; returns their count, 0 at the end of
	 * the input, or a negative errno (passed through by the decoder). */
	ssize_t (*peek)(void *ctx, const uint8_t **p);
	/* Marks n of the peeked bytes as used. */
	void (*consume)(void *ctx, size_t n);
	void *ctx;
};

/* An nf_input over the file open as fd, read in order from offset 0 with
 * nf_pread_fd() into buf (cap bytes). off: the bytes read so far (for
 * progress). */
struct nf_file_input {
	int fd;
	uint8_t *buf;
	size_t cap, len, pos;
	uint64_t off;
};

/* The nf_input that reads in (set up as above; len, pos and off 0). */
struct nf_input nf_file_input(struct nf_file_input *in);

struct nf_decoder_opts {
	enum nf_format format;
	unsigned threads;            /* xz: decoder threads (1 = single-threaded) */
	uint64_t memlimit_threading; /* xz: fewer threads beyond this many bytes */
	uint64_t memlimit;           /* xz, zstd: hard cap; beyond it the image is refused */
	uint64_t zstd_window_max;    /* zstd: largest window accepted (0: from memlimit) */
};

/* The decoder's memory budget on a machine with mem_available bytes
 * available (MemAvailable): a quarter of it, never below
 * NF_DECODE_BUDGET_MIN (what fits a flasher of under 64 MiB) nor above
 * NF_DECODE_BUDGET_MAX. A quarter: on a 512 MiB Pi Zero 2 W-class board
 * (about 400 MiB available in the initramfs) that is 100 MiB, two or three
 * threads on pi-gen's 24 MiB xz blocks; on a 1 GiB Pi 3, all four. */
#define NF_DECODE_BUDGET_MIN (40ull << 20)
#define NF_DECODE_BUDGET_MAX (1ull << 30)
uint64_t nf_decode_budget(uint64_t mem_available);

/* MemAvailable from /proc/meminfo (proc(5)), in bytes, into *bytes.
 * Returns 0 or -errno (-ENODATA: no such line, a kernel before 3.14). */
int nf_mem_available(uint64_t *bytes);

/* The machine's MemTotal (/proc/meminfo) in bytes. Returns 0 or -errno
 * (-ENODATA: no such line). */
int nf_mem_total(uint64_t *bytes);

/* The largest zstd window accepted within budget bytes: a power of two,
 * from 8 MiB to 128 MiB (zstd's default limit, windowLog 27). */
uint64_t nf_zstd_window_max(uint64_t budget);

/* The window the first zstd frame in the n bytes at p declares (skippable
 * frames, as pzstd writes, skipped). Returns 0 with *window set, or
 * -EAGAIN when n bytes do not reach the frame header, -EBADMSG. */
int nf_zstd_first_window(const uint8_t *p, size_t n, uint64_t *window);

/* The smallest zstd window the budget of a 512 MiB worker affords
 * (nf_zstd_window_max(nf_decode_budget(400 MiB))): image add refuses to
 * store a zstd image with a larger window as it is. */
#define NF_WORKER_ZSTD_WINDOW_MAX (64ull << 20)

struct nf_decoder;

/* Creates a decoder reading from in (borrowed, must outlive the decoder).
 * Returns 0 or -ENOMEM / -EINVAL (unsupported format). */
int nf_decoder_new(struct nf_decoder **out, const struct nf_decoder_opts *opts,
		   const struct nf_input *in);

/* Fills buf with up to len decoded bytes; short counts happen only at the end.
 * Returns bytes produced, 0 once the stream ended cleanly, -EBADMSG for
 * corrupt, truncated or trailing data, -ENOMEM when the stream needs more
 * memory than allowed, or the input's own negative errno. */
ssize_t nf_decoder_read(struct nf_decoder *d, void *buf, size_t len);

/* Compressed bytes consumed so far (the offset to name in an error). */
uint64_t nf_decoder_in_offset(const struct nf_decoder *d);

/* A static description of the last error, e.g. "xz: compressed data is corrupt". */
const char *nf_decoder_detail(const struct nf_decoder *d);

/* 1 if the last error was data after the end of the stream (gzip: bytes
 * after the last member that are not a member, as OpenWrt's images have). */
int nf_decoder_trailing(const struct nf_decoder *d);

/* Decodes the first cap bytes (or fewer, if the image is shorter) of a
 * stream in format fmt, read with pread_fn(ctx) from offset 0, with one
 * thread and memlimit bytes (0: the default). For checks before a card is
 * touched. Returns the bytes decoded into out, or a negative errno with a
 * one-line detail: -EBADMSG (corrupt or truncated), -ENOMEM, -EFBIG (no
 * output within the first 64 MiB of input), or pread's error. */
ssize_t nf_decode_head(enum nf_format fmt, nf_pread_fn pread_fn, void *ctx, uint64_t memlimit, uint8_t *out,
		       size_t cap, char *detail, size_t detail_cap);

/* Frees the decoder; accepts NULL. */
void nf_decoder_free(struct nf_decoder *d);

#endif
