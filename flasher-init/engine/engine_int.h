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

struct flash {
	const struct nf_flash_opts *o;
	struct nf_flash_result *res;
	struct nf_source *src;
	struct nf_target tgt;
	struct nf_decoder *dec;
	struct nf_input input;
	struct nf_ring ring;
	uint64_t known_size;          /* 0: unknown until the end */
	uint64_t budget;              /* decoder memory (xz threads, zstd window) */
	uint64_t min_size;            /* a lower bound (zstd's first frame) */

	struct chunk chunks[NCHUNKS];
	struct nf_chunkq free_q;      /* decoder takes empty chunks, writer gives them back */
	struct nf_chunkq full_q;      /* decoder puts decoded chunks, closes it at the end */

	pthread_mutex_t lock;         /* everything below up to the atomics */
	pthread_cond_t cond;
	int writer_done, verifier_done;
	int err;
	struct block_sum *sums;       /* one per NF_BLOCK of the image */
	size_t nhashes, hcap;
	uint64_t flushed;             /* written and flushed: the verifier may read below */
	uint64_t image_size;          /* final, once writer_done */

	atomic_int cancel;
	atomic_uint_fast64_t src_read, written, skipped, verified;
	atomic_int finalizing;
	atomic_uint_fast64_t write_since_us; /* start of the write in progress; 0: none */
	atomic_uint_fast64_t write_at;       /* its offset */

	uint8_t *head;                /* the image's first block, written last */
	size_t head_len;
	uint8_t *head_check;          /* NF_BLOCK: the head wipe read back */
	uint8_t *zeros;               /* NF_BLOCK zero bytes, aligned: the head
				       * wipe, zero runs written as data */
	uint8_t *before_buf;          /* the decoder's SAMPLE-byte read buffer */
	EVP_MD_CTX *sha;
	double t_read, t_decode, t_write, t_verify;
	double t_decode_wait;
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
