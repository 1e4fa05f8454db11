/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The flash engine: streams an image from a source (file or NFS) through the
 * decoder onto a target (card or file) as a pipeline of threads, verifies
 * what landed by reading it back, and writes the first MiB last.
 *
 *   reader --ring--> decoder --chunks--> writer --flushed range--> verifier
 *
 * The writer hashes the decoded stream (SHA-256, checked against the
 * catalog's digest) and each 1 MiB block (XXH3-128, compared with the
 * readback, which names the first bad block). All-zero blocks are not
 * written where the target can be made to read zeros cheaply. The first MiB
 * (partition table, boot sector) is wiped before the first write and written
 * only after everything else is written and verified, so a failed or
 * interrupted flash leaves a card that does not boot. */
#ifndef NETFLASH_ENGINE_H
#define NETFLASH_ENGINE_H

#include <stdatomic.h>
#include <stdint.h>

#include "format.h"
#include "patch.h"
#include "proto.h"
#include "source.h"

#define NF_BLOCK (1u << 20) /* hash, zero-skip and head granularity */

struct nf_progress {
	enum nf_stage stage;   /* NF_STAGE_WRITE, _VERIFY or _FINALIZE */
	uint64_t written;      /* image bytes handled by the writer */
	uint64_t total;        /* image size if known, else 0 */
	uint64_t skipped;      /* zero bytes not written */
	uint64_t verified;     /* bytes read back and compared */
	uint64_t src_read;     /* source (compressed) bytes read */
	uint64_t src_total;
	double elapsed;
	unsigned reconnects;
	int reconnecting;      /* the NFS server is gone; retrying */
	double stall_s;        /* > 0: the write in progress has taken this long */
	uint64_t stall_at;     /* and is at this offset (stall watchdog) */
};

typedef void (*nf_progress_fn)(const struct nf_progress *p, void *ctx);

struct nf_flash_opts {
	const char *source;
	const char *target;
	enum nf_format format;     /* NF_FMT_UNKNOWN: detect */
	int zero_skip;
	int allow_partition;
	int have_expect_sha256;
	uint8_t expect_sha256[32];
	uint64_t expect_size;      /* 0: unknown */
	unsigned threads;          /* xz decoder threads; 0: one per CPU */
	uint64_t xz_memlimit;      /* decoder memory budget (xz threads, zstd
				    * window); 0: nf_decode_budget(MemAvailable) */
	struct nf_source_opts src;
	atomic_int *interrupt;     /* set non-zero to abort (Ctrl-C) */
	nf_progress_fn progress;
	void *progress_ctx;
	unsigned progress_ms;      /* 0: 250 */
	int probe_capacity;        /* fake-capacity probe before writing */
	int not_a_disk;            /* write an image that does not start like a
				    * disk (no MBR/GPT); compressed-again data
				    * is refused even so */
	double stall_s;            /* a write this slow is a stall; 0: NF_STALL_DEFAULT_S */
	const struct nf_patch *patch; /* provisioning: written after the image is
				       * verified, before the first MiB; NULL: none */
};

#define NF_STALL_DEFAULT_S 5.0

struct nf_flash_result {
	enum nf_format format;
	uint64_t image_bytes;      /* decoded image size */
	uint64_t source_bytes;
	uint64_t written_bytes;    /* bytes written as data */
	uint64_t skipped_bytes;    /* zero bytes made zero without writing */
	uint8_t sha256[32];        /* of the decoded image */
	unsigned xz_threads;       /* xz: threads the budget allows (1: one block) */
	uint64_t decode_budget;    /* decoder memory budget, bytes */
	char zero_plan[200];       /* one line: how zero runs were made (target.h) */
	char decode_plan[384];     /* one line: the decoder's threads or window,
				    * and the budget they come from */
	unsigned reconnects;
	double t_total, t_read, t_decode, t_write, t_verify;
	double t_recheck;          /* of t_verify: re-reading every block's first
				    * 4 KiB after the last write (aliasing) */
	int have_bad_offset;
	uint64_t bad_offset;       /* first offset that failed verification */
	enum nf_stage stage;       /* where it failed (NF_STAGE_SOURCE, _DECODE, ...); NONE: it did not */
	char detail[512];          /* one line: what failed and why */
	char probe_detail[256];    /* the capacity probe's verdict, if it ran */
	unsigned stalls;           /* writes that took stall_limit_s or longer */
	double stall_limit_s;
	double max_stall_s;        /* the slowest single write */
	uint64_t max_stall_at;
	int touched;               /* the card's first MiB was wiped: its old
				    * contents are gone (the probe restores
				    * what it writes, so it does not count) */
	unsigned zero_rewrites;    /* blocks made without writing that did not
				    * read back as zeros, rewritten with zeros
				    * (the zero method was then given up) */
	uint64_t zero_rewrite_at;  /* the first of them */
	int patched;               /* the patch was written and read back */
	uint8_t patch_sha256[32];  /* its digest (nf_patch_digest) */
};

/* Runs one flash. Returns 0 when the image was written and verified in full,
 * else a negative errno with res->detail naming the object and the reason:
 * -EBADMSG (corrupt/truncated/trailing data, a format the worker cannot
 * decode, a name whose extension the bytes contradict, an image that is not
 * a disk or is compressed twice: checked before the target is opened), -ENOSPC (image larger than
 * target), -EBUSY (mounted, root disk), -EIO (verification or device
 * failure; stage "probe": the capacity probe found a fake card; stage
 * "patch": the provisioning patch did not fit or read back), -EINTR
 * (interrupted), the source's errors, ... */
int nf_flash(const struct nf_flash_opts *o, struct nf_flash_result *res);


#endif
