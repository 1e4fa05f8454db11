/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The flash engine's insides, shared by its files: engine.c (reader,
 * decoder and writer stages, setup, the driver) and verify.c (the readback
 * verifier). Not for use outside the engine. */
#ifndef NETFLASH_ENGINE_INT_H
#define NETFLASH_ENGINE_INT_H

#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <xxhash.h>

#include "chunkq.h"
#include "decode.h"
#include "engine.h"
#include "ring.h"
#include "target.h"

#define CHUNK (4u << 20)       /* decoder to writer unit; 4 MiB direct writes */
#define NCHUNKS 3              /* chunks in the pool: 12 MiB */
#define RING_SIZE (2u << 20)   /* compressed bytes between reader and decoder */
#define FLUSH_EVERY (64ull << 20) /* the verifier trails the writer by at most this */
#define MAX_IMAGE (1ull << 40) /* 1 TiB: bounds the per-block table (40 MiB) */
#define SAMPLE 4096u           /* bytes of each block read again after the last write */

/* What the engine knows of one NF_BLOCK of the image. */
struct block_sum {
	XXH128_hash_t full;           /* XXH3-128 of the image's block */
	uint64_t sample;              /* XXH3-64 of its first SAMPLE bytes */
	uint64_t before;              /* XXH3-64 of the card's first SAMPLE bytes there
				       * before the write (valid if has_before) */
	int has_before;
	int zeroed;                   /* made without writing (the zero method) */
};

struct chunk {
	uint8_t *buf;
	size_t len;
	uint64_t off;
	/* What the card held at each block's start before this chunk is
	 * written (sampled by the decoder, ahead of the writer). */
	uint64_t before[CHUNK / NF_BLOCK];
	int has_before[CHUNK / NF_BLOCK];
};

/* One flash. Grouped by owner: who may touch a field, and when. */
struct flash {
	/* Set by the driver before the stages start; read-only while they
	 * run. res is written by the driver alone: by preflight before the
	 * stages start, and from the fields below once they are joined. */
	const struct nf_flash_opts *o;
	struct nf_flash_result *res;
	struct nf_source *src;
	struct nf_target tgt;         /* the writer's; the verifier reads through
				       * it (pread) and may flag the zero method
				       * (nf_target_zero_failed, atomic) */
	struct nf_decoder *dec;
	struct nf_ring ring;
	uint64_t known_size;          /* 0: unknown until the end */
	uint64_t budget;              /* decoder memory (xz threads, zstd window) */
	uint64_t min_size;            /* a lower bound (zstd's first frame) */

	/* The hand-over between decoder and writer (their own locks). */
	struct chunk chunks[NCHUNKS];
	struct nf_chunkq free_q;      /* decoder takes empty chunks, writer gives them back */
	struct nf_chunkq full_q;      /* decoder puts decoded chunks, closes it at the end */

	/* Shared between the stages: only with lock held; cond announces
	 * every change. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct {
		int writer_done, verifier_done;
		int err;                      /* the first failure, -errno */
		enum nf_stage stage;          /* its stage */
		char detail[512];             /* its one line */
		int have_bad_offset;
		uint64_t bad_offset;          /* first offset that failed verification */
		unsigned zero_rewrites;       /* see nf_flash_result */
		uint64_t zero_rewrite_at;
		struct block_sum *sums;       /* one per NF_BLOCK of the image */
		size_t nhashes, hcap;
		uint64_t flushed;             /* written and flushed: the verifier may read below */
		uint64_t image_size;          /* final, once writer_done */
	} locked;

	/* Progress any thread may read at any time. */
	atomic_int cancel;
	atomic_uint_fast64_t src_read, written, skipped, verified;
	atomic_int finalizing;
	atomic_uint_fast64_t write_since_us; /* start of the write in progress; 0: none */
	atomic_uint_fast64_t write_at;       /* its offset */

	/* Each stage's own: only its thread touches them while it runs, the
	 * driver once it is joined. */
	struct {
		double t;                     /* seconds reading */
	} reader;
	struct {
		struct nf_input input;        /* the decoder's view of the ring */
		uint8_t *before_buf;          /* SAMPLE-byte read buffer */
		double t, t_wait;             /* seconds decoding; waiting for input */
	} decoder;
	struct {
		uint8_t *head;                /* the image's first block, written last */
		size_t head_len;
		uint8_t *head_check;          /* NF_BLOCK: the head wipe read back */
		uint8_t *zeros;               /* NF_BLOCK zero bytes, aligned: the head
					       * wipe, zero runs written as data */
		EVP_MD_CTX *sha;
		double t;                     /* seconds writing */
		unsigned stalls;              /* writes of flash_stall_limit() or more */
		double max_stall_s;
		uint64_t max_stall_at;
		int touched;                  /* the head was wiped */
	} writer;
	struct {
		double t;                     /* seconds reading back */
	} verifier;
};

/* Monotonic seconds. */
double flash_now(void);

/* Records the first failure, with its stage and one-line detail, and stops
 * every stage (queues failed, ring failed). Later failures (usually
 * consequences) are dropped. */
void __attribute__((format(printf, 4, 5)))
flash_fail(struct flash *f, int err, enum nf_stage stage, const char *fmt, ...);

/* 1 once any stage has failed. */
int flash_failed(struct flash *f);

/* Records the first offset found not to hold the image (thread-safe). */
void flash_bad_offset(struct flash *f, uint64_t off);

/* The stall watchdog's limit, seconds (--stall or NF_STALL_DEFAULT_S). */
double flash_stall_limit(const struct flash *f);

/* preflight.c, before the target is opened: reads the source's head, checks
 * its format against its name and --format, that it decodes to a disk image
 * (or --not-a-disk) and not to another compressed stream, and plans the
 * decoder (xz threads from the index, zstd window) within the memory budget.
 * Sets *fmt and f->known_size (0: unknown until the end) and f->min_size.
 * Returns 0 or a negative errno after flash_fail(). */
int flash_probe(struct flash *f, enum nf_format *fmt);

/* preflight.c, with the target open: refuses an image known to be larger
 * than the target, before anything is written. Returns 0 or -ENOSPC after
 * flash_fail(). */
int flash_check_size(struct flash *f);

/* writer.c: the writer stage's thread (see writer.c). */
void *flash_writer_main(void *arg);

/* finish.c, after the stages have joined without a failure: checks the
 * stream's SHA-256 and size against the expected ones, re-reads every
 * block's first 4 KiB, applies the provisioning patch, writes the first MiB
 * (tail first, then the boot sector) and verifies it. Returns 0 or a
 * negative errno after flash_fail(). */
int flash_finalize(struct flash *f);

/* verify.c: reads back one block at off (len bytes) into buf (NF_BLOCK +
 * 4096, aligned) and compares it with the writer's hash. Returns 0 or a
 * negative errno after flash_fail(), the message saying what the block
 * holds instead. */
int flash_verify_block(struct flash *f, uint8_t *buf, uint64_t off, size_t len);

/* verify.c: the verifier stage's thread: reads back every flushed block
 * (but the head, verified last) behind the writer. */
void *flash_verifier_main(void *arg);

/* verify.c: once every block is written, re-reads each block's first
 * SAMPLE bytes (a later write landing on an earlier block). Returns 0 or
 * -EIO/-errno after flash_fail(). */
int flash_recheck_samples(struct flash *f);

#endif
