#include "engine.h"
#include "health.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "decode.h"
#include "log.h"
#include "ring.h"
#include "scan.h"
#include "target.h"
#include "xzinfo.h"

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
};

struct chunk {
	uint8_t *buf;
	size_t len;
	uint64_t off;
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

	pthread_mutex_t lock;         /* everything below up to the atomics */
	pthread_cond_t cond;
	struct chunk chunks[NCHUNKS];
	unsigned full[NCHUNKS], full_first, full_n;
	unsigned free_[NCHUNKS], free_first, free_n;
	int decode_done, writer_done, verifier_done;
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
	uint8_t *zeros;               /* NF_BLOCK zero bytes, for wiping the head */
	uint8_t *before_buf;          /* the writer's SAMPLE-byte read buffer */
	EVP_MD_CTX *sha;
	double t_read, t_decode, t_write, t_verify;
	double t_decode_wait;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Records the first failure, with its stage and one-line detail, and stops
 * every stage. Later failures (usually consequences) are dropped. */
static void __attribute__((format(printf, 4, 5)))
flash_fail(struct flash *f, int err, const char *stage, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&f->lock);
	if (!f->err) {
		f->err = err;
		f->res->stage = stage;
		va_start(ap, fmt);
		vsnprintf(f->res->detail, sizeof(f->res->detail), fmt, ap);
		va_end(ap);
		/* Names in it come from the user or the server: keep it one
		 * printable line whatever they hold. */
		for (char *c = f->res->detail; *c; c++) {
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
		}
	}
	atomic_store(&f->cancel, 1);
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	nf_ring_fail(&f->ring, -ECANCELED);
}

static int failed(struct flash *f)
{
	return atomic_load(&f->cancel);
}

/* ---- reader ------------------------------------------------------------- */

static int ring_sink(void *ctx, const void *buf, size_t len)
{
	struct flash *f = ctx;
	int r = nf_ring_write(&f->ring, buf, len);

	if (r == 0)
		atomic_fetch_add(&f->src_read, len);
	return r;
}

static void *reader_main(void *arg)
{
	struct flash *f = arg;
	double t0 = now_s();
	int r = nf_source_stream(f->src, 0, ring_sink, f);

	f->t_read = now_s() - t0;
	if (r < 0 && r != -ECANCELED && !failed(f))
		flash_fail(f, r, "source", "reading '%s' failed at offset %llu: %s%s",
			   f->o->source, (unsigned long long)atomic_load(&f->src_read),
			   nf_source_detail(f->src),
			   nf_source_is_nfs(f->src) && f->o->src.retry_seconds
				   ? " (server did not come back in time)" : "");
	nf_ring_finish(&f->ring, r < 0 ? r : 0);
	return NULL;
}

/* ---- decoder ------------------------------------------------------------ */

static ssize_t input_peek(void *ctx, const uint8_t **p)
{
	struct flash *f = ctx;
	double t0 = now_s();
	ssize_t n = nf_ring_peek(&f->ring, p);

	f->t_decode_wait += now_s() - t0;
	return n;
}

static void input_consume(void *ctx, size_t n)
{
	struct flash *f = ctx;

	nf_ring_consume(&f->ring, n);
}

/* Takes a free chunk, waiting for the writer. Returns its index or -1 on failure. */
static int take_free(struct flash *f)
{
	int i = -1;

	pthread_mutex_lock(&f->lock);
	while (f->free_n == 0 && !f->err)
		pthread_cond_wait(&f->cond, &f->lock);
	if (!f->err) {
		i = (int)f->free_[f->free_first];
		f->free_first = (f->free_first + 1) % NCHUNKS;
		f->free_n--;
	}
	pthread_mutex_unlock(&f->lock);
	return i;
}

static void put_full(struct flash *f, int i, int last)
{
	pthread_mutex_lock(&f->lock);
	if (i >= 0) {
		f->full[(f->full_first + f->full_n) % NCHUNKS] = (unsigned)i;
		f->full_n++;
	}
	if (last)
		f->decode_done = 1;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static void decode_failed(struct flash *f, ssize_t n, uint64_t image_off)
{
	if (n != -EBADMSG && n != -ENOMEM) {
		/* The input failed: the reader has said why. */
		flash_fail(f, (int)n, "source", "reading '%s' failed", f->o->source);
		return;
	}
	flash_fail(f, (int)n, "decode", "%s: %s at compressed offset %llu (image offset %llu)%s",
		   f->o->source, nf_decoder_detail(f->dec),
		   (unsigned long long)nf_decoder_in_offset(f->dec), (unsigned long long)image_off,
		   nf_decoder_trailing(f->dec) ? "; gzip -dc ignores such data, and netflash image add stores such an "
						 "image as zstd" : "");
}

static void *decoder_main(void *arg)
{
	struct flash *f = arg;
	double t0 = now_s(), wait = 0;
	uint64_t off = 0;

	for (;;) {
		double w0 = now_s();
		int i = take_free(f);
		struct chunk *c;
		ssize_t n = 1;

		wait += now_s() - w0;
		if (i < 0)
			break;
		c = &f->chunks[i];
		c->off = off;
		c->len = 0;
		while (c->len < CHUNK && (n = nf_decoder_read(f->dec, c->buf + c->len, CHUNK - c->len)) > 0)
			c->len += (size_t)n;
		if (n < 0) {
			decode_failed(f, n, off + c->len);
			break;
		}
		off += c->len;
		put_full(f, c->len ? i : -1, n == 0);
		if (c->len == 0) {
			/* Give the unused chunk back. */
			pthread_mutex_lock(&f->lock);
			f->free_[(f->free_first + f->free_n) % NCHUNKS] = (unsigned)i;
			f->free_n++;
			pthread_mutex_unlock(&f->lock);
		}
		if (n == 0)
			break;
	}
	f->t_decode = now_s() - t0 - wait - f->t_decode_wait;
	return NULL;
}

/* ---- writer ------------------------------------------------------------- */

/* Records block index's hashes (full, sample) and, if have_before, the
 * sample hash of what the card held there before. Returns 0 or -ENOMEM. */
static int store_hash(struct flash *f, size_t index, XXH128_hash_t h, uint64_t sample, int have_before,
		      uint64_t before)
{
	int r = 0;

	pthread_mutex_lock(&f->lock);
	if (index >= f->hcap) {
		size_t cap = f->hcap ? f->hcap * 2 : 1024;
		struct block_sum *p;

		while (cap <= index)
			cap *= 2;
		if ((p = realloc(f->sums, cap * sizeof(*p)))) {
			f->sums = p;
			f->hcap = cap;
		} else {
			r = -ENOMEM;
		}
	}
	if (r == 0) {
		f->sums[index] = (struct block_sum){ .full = h, .sample = sample, .before = before,
						     .has_before = have_before };
		if (index >= f->nhashes)
			f->nhashes = index + 1;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

/* The sample hash of what the card holds at off now (before it is
 * written), so a block that later reads back this can be called a dropped
 * write. Returns 1 with *h set, or 0 when it cannot be read (a file
 * target's end, an error: the write itself will tell). */
static int sample_before(struct flash *f, uint64_t off, size_t len, uint64_t *h)
{
	size_t rlen = (SAMPLE + f->tgt.align - 1) / f->tgt.align * f->tgt.align;

	if (!f->before_buf && !(f->before_buf = aligned_alloc(4096, rlen < 4096 ? 4096 : rlen)))
		return 0;
	if (nf_target_read(&f->tgt, f->before_buf, rlen, off) < (ssize_t)len)
		return 0;
	*h = XXH3_64bits(f->before_buf, len);
	return 1;
}

static double stall_limit(const struct flash *f)
{
	return f->o->stall_s > 0 ? f->o->stall_s : NF_STALL_DEFAULT_S;
}

/* Writes [from, to) of chunk c: runs of data blocks as one write each, runs
 * of zero blocks as one zero operation each (when zero-skip is on). */
static int write_runs(struct flash *f, const struct chunk *c, size_t from, size_t to)
{
	size_t i = from;

	while (i < to) {
		size_t blen = to - i < NF_BLOCK ? to - i : NF_BLOCK;
		int zero = f->o->zero_skip && nf_is_zero(c->buf + i, blen);
		size_t j = i + blen;
		int r;

		while (j < to) {
			size_t l = to - j < NF_BLOCK ? to - j : NF_BLOCK;

			if ((f->o->zero_skip && nf_is_zero(c->buf + j, l)) != zero)
				break;
			j += l;
		}
		double t0 = now_s(), dt;

		atomic_store(&f->write_at, c->off + i);
		atomic_store(&f->write_since_us, (uint64_t)(t0 * 1e6) | 1);
		if (zero) {
			uint64_t skipped = 0;

			r = nf_target_zero(&f->tgt, c->off + i, j - i, c->buf + i, &skipped);
			if (r == 0)
				atomic_fetch_add(&f->skipped, skipped);
		} else {
			r = nf_target_write(&f->tgt, c->buf + i, j - i, c->off + i);
		}
		atomic_store(&f->write_since_us, 0);
		/* The stall watchdog's record; res is the writer's until it ends. */
		dt = now_s() - t0;
		if (dt > f->res->max_stall_s) {
			f->res->max_stall_s = dt;
			f->res->max_stall_at = c->off + i;
		}
		if (dt >= stall_limit(f))
			f->res->stalls++;
		if (r < 0) {
			flash_fail(f, r, "write", "cannot write to '%s' at offset %llu: %s",
				   f->tgt.path, (unsigned long long)(c->off + i), strerror(-r));
			return r;
		}
		i = j;
	}
	return 0;
}

/* Before the first byte of the image lands, make the card unbootable: if the
 * flash does not finish, the Pi netboots into the flasher again. */
static int wipe_head(struct flash *f, const uint8_t *zeros)
{
	uint64_t len = NF_BLOCK, skipped;
	int r;

	if (f->tgt.size < len)
		len = f->tgt.size & ~511ull;
	r = len ? nf_target_zero(&f->tgt, 0, len, zeros, &skipped) : 0;
	if (r < 0)
		flash_fail(f, r, "write", "cannot write to '%s': %s", f->tgt.path, strerror(-r));
	return r;
}

static int process_chunk(struct flash *f, struct chunk *c)
{
	uint64_t end = c->off + c->len;
	size_t from = 0;

	if (end > f->tgt.size || end > MAX_IMAGE) {
		flash_fail(f, -ENOSPC, "target", "the image does not fit: '%s' has %llu bytes and the image is larger",
			   f->tgt.path, (unsigned long long)(end > f->tgt.size ? f->tgt.size : MAX_IMAGE));
		return -ENOSPC;
	}
	EVP_DigestUpdate(f->sha, c->buf, c->len);
	for (size_t i = 0; i < c->len; i += NF_BLOCK) {
		size_t blen = c->len - i < NF_BLOCK ? c->len - i : NF_BLOCK, slen = blen < SAMPLE ? blen : SAMPLE;
		uint64_t before = 0;
		/* Not the head: it is wiped first, then written last. */
		int have_before = c->off + i > 0 && sample_before(f, c->off + i, slen, &before);

		if (store_hash(f, (size_t)((c->off + i) / NF_BLOCK), XXH3_128bits(c->buf + i, blen),
			       XXH3_64bits(c->buf + i, slen), have_before, before) < 0) {
			flash_fail(f, -ENOMEM, "write", "out of memory for block hashes");
			return -ENOMEM;
		}
	}
	if (c->off == 0) {
		char why[160];
		const char *inner;
		enum nf_head h = nf_head_check(c->buf, c->len, c->len < CHUNK, &inner, why, sizeof(why));

		/* probe() checked the same bytes; a source that changed since
		 * must not reach the card either. */
		if (h == NF_HEAD_NESTED || (h == NF_HEAD_NOT_DISK && !f->o->not_a_disk)) {
			flash_fail(f, -EBADMSG, "source", "'%s' changed while it was read: its image now starts with %s",
				   f->o->source, why);
			return -EBADMSG;
		}
		/* CHUNK is a multiple of NF_BLOCK: the first block is in the first chunk. */
		f->head_len = c->len < NF_BLOCK ? c->len : NF_BLOCK;
		memcpy(f->head, c->buf, f->head_len);
		f->res->touched = 1;
		if (wipe_head(f, f->zeros) < 0)
			return -EIO;
		from = f->head_len;
	}
	return write_runs(f, c, from, c->len);
}

static int flush_to(struct flash *f, uint64_t *last_flush, uint64_t end)
{
	/* Zero blocks past a regular file's end were skipped as future holes:
	 * extend the file first, or the verifier would read past its end. */
	int r = nf_target_extend(&f->tgt, end);

	if (r == 0)
		r = nf_target_flush(&f->tgt, *last_flush, end - *last_flush);
	if (r < 0) {
		flash_fail(f, r, "write", "cannot flush or extend '%s': %s", f->tgt.path, strerror(-r));
		return r;
	}
	pthread_mutex_lock(&f->lock);
	f->flushed = end;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	*last_flush = end;
	return 0;
}

/* Pops the next full chunk. Returns its index, -1 at the end, -2 on failure. */
static int take_full(struct flash *f, double *wait)
{
	double t0 = now_s();
	int i;

	pthread_mutex_lock(&f->lock);
	while (f->full_n == 0 && !f->decode_done && !f->err)
		pthread_cond_wait(&f->cond, &f->lock);
	if (f->err) {
		i = -2;
	} else if (f->full_n == 0) {
		i = -1;
	} else {
		i = (int)f->full[f->full_first];
		f->full_first = (f->full_first + 1) % NCHUNKS;
		f->full_n--;
	}
	pthread_mutex_unlock(&f->lock);
	*wait += now_s() - t0;
	return i;
}

static void *writer_main(void *arg)
{
	struct flash *f = arg;
	double t0 = now_s(), wait = 0;
	uint64_t end = 0, last_flush = 0;
	int i, r = 0;

	while ((i = take_full(f, &wait)) >= 0) {
		struct chunk *c = &f->chunks[i];

		r = process_chunk(f, c);
		end = c->off + c->len;
		atomic_store(&f->written, end);
		pthread_mutex_lock(&f->lock);
		f->free_[(f->free_first + f->free_n) % NCHUNKS] = (unsigned)i;
		f->free_n++;
		pthread_cond_broadcast(&f->cond);
		pthread_mutex_unlock(&f->lock);
		if (r < 0)
			break;
		if (end - last_flush >= FLUSH_EVERY && flush_to(f, &last_flush, end) < 0)
			break;
	}
	if (i == -1 && end == 0)
		flash_fail(f, -EBADMSG, "decode", "'%s' holds an empty image", f->o->source);
	if (i == -1 && end > 0) {
		if (flush_to(f, &last_flush, end) == 0) {
			pthread_mutex_lock(&f->lock);
			f->image_size = end;
			f->writer_done = 1;
			pthread_cond_broadcast(&f->cond);
			pthread_mutex_unlock(&f->lock);
		}
	}
	f->t_write = now_s() - t0 - wait;
	return NULL;
}

/* ---- verifier ----------------------------------------------------------- */

static int all_bytes(const uint8_t *buf, size_t len, uint8_t v)
{
	return len > 0 && buf[0] == v && memcmp(buf, buf + 1, len - 1) == 0;
}

/* What block idx holds instead of the image, read back as buf (len > 0
 * bytes from the block's start): a phrase for the failure message, as the
 * capacity probe words its findings. A dropped write is told by the sample
 * of the card's old content taken before the write. */
static void describe_readback(struct flash *f, size_t idx, const uint8_t *buf, size_t len, char *out,
			      size_t cap)
{
	size_t slen = len < SAMPLE ? len : SAMPLE, n;
	uint64_t got = XXH3_64bits(buf, slen);
	struct block_sum b;

	pthread_mutex_lock(&f->lock);
	b = f->sums[idx];
	n = f->nhashes;
	pthread_mutex_unlock(&f->lock);
	if (got == b.sample) {
		snprintf(out, cap, "its first %zu bytes are right, the rest reads back different", slen);
		return;
	}
	if (b.has_before && got == b.before) {
		snprintf(out, cap, "it reads back its previous content: the card acknowledged the write and kept "
			 "the old data (a failing or counterfeit card)");
		return;
	}
	if (all_bytes(buf, len, 0x00) || all_bytes(buf, len, 0xff)) {
		snprintf(out, cap, "it reads back all 0x%02X bytes, as if erased", buf[0]);
		return;
	}
	for (size_t j = 1; j < n; j++) {
		pthread_mutex_lock(&f->lock);
		int same = j != idx && f->sums[j].sample == got;
		pthread_mutex_unlock(&f->lock);
		if (same) {
			snprintf(out, cap, "it reads back the image's block at offset %llu: writes land at other "
				 "addresses, as on a fake-capacity card", (unsigned long long)j * NF_BLOCK);
			return;
		}
	}
	snprintf(out, cap, "it reads back data that is neither the image nor what the card held there before");
}

/* Reads back one block at off and compares it with the writer's hash.
 * Returns 0, or a negative errno after flash_fail(). */
static int verify_block(struct flash *f, uint8_t *buf, uint64_t off, size_t len)
{
	size_t rlen = (len + f->tgt.align - 1) / f->tgt.align * f->tgt.align;
	ssize_t n = nf_target_read(&f->tgt, buf, rlen, off);
	XXH128_hash_t want, got;

	if (n < 0) {
		flash_fail(f, (int)n, "verify", "cannot read back '%s' at offset %llu: %s",
			   f->tgt.path, (unsigned long long)off, strerror((int)-n));
		return (int)n;
	}
	pthread_mutex_lock(&f->lock);
	want = f->sums[off / NF_BLOCK].full;
	pthread_mutex_unlock(&f->lock);
	if ((size_t)n < len) {
		f->res->have_bad_offset = 1;
		f->res->bad_offset = off + (uint64_t)n;
		flash_fail(f, -EIO, "verify", "verification failed: '%s' ends at offset %llu, inside the image",
			   f->tgt.path, (unsigned long long)(off + (uint64_t)n));
		return -EIO;
	}
	got = XXH3_128bits(buf, len);
	if (!XXH128_isEqual(want, got)) {
		char what[200];

		describe_readback(f, (size_t)(off / NF_BLOCK), buf, len, what, sizeof(what));
		f->res->have_bad_offset = 1;
		f->res->bad_offset = off;
		flash_fail(f, -EIO, "verify", "verification failed: '%s' does not hold the image's 1 MiB block at "
			   "offset %llu: %s", f->tgt.path, (unsigned long long)off, what);
		return -EIO;
	}
	return 0;
}

static void *verifier_main(void *arg)
{
	struct flash *f = arg;
	uint8_t *buf = aligned_alloc(4096, NF_BLOCK + 4096);
	uint64_t pos = NF_BLOCK; /* the head is verified when it is written, last */
	double busy = 0;

	if (!buf) {
		flash_fail(f, -ENOMEM, "verify", "out of memory");
		return NULL;
	}
	for (;;) {
		uint64_t limit;
		int done;

		pthread_mutex_lock(&f->lock);
		while (!f->err && f->flushed <= pos && !f->writer_done)
			pthread_cond_wait(&f->cond, &f->lock);
		limit = f->flushed;
		done = f->writer_done;
		pthread_mutex_unlock(&f->lock);
		if (failed(f))
			break;
		double t0 = now_s();
		for (; pos < limit; pos += NF_BLOCK) {
			size_t len = limit - pos < NF_BLOCK ? (size_t)(limit - pos) : NF_BLOCK;

			if (failed(f) || verify_block(f, buf, pos, len) < 0)
				break;
			atomic_store(&f->verified, pos + len);
		}
		busy += now_s() - t0;
		if (failed(f) || (done && pos >= limit))
			break;
	}
	f->t_verify = busy;
	pthread_mutex_lock(&f->lock);
	f->verifier_done = 1;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	free(buf);
	return NULL;
}

/* ---- before anything is written: format and size -------------------------- */

static ssize_t source_pread(void *ctx, void *buf, size_t len, uint64_t off)
{
	return nf_source_pread(ctx, buf, len, off);
}

/* The refusal for a stream the worker's decoder cannot take: what it is and
 * where it can go instead. */
static int refuse_format(struct flash *f, const struct nf_sniff *s)
{
	if (s->archive)
		flash_fail(f, -EBADMSG, "source", "'%s' is %s: netflash-write takes raw, gzip, xz and zstd images; "
			   "netflash image add converts %s for workers (or unpack it first)", f->o->source, s->why,
			   strcmp(s->family, "tar") == 0 || strcmp(s->family, "zip") == 0 || strcmp(s->family, "7z") == 0
				   ? "the image inside" : "it");
	else
		flash_fail(f, -EBADMSG, "source", "'%s' is %s, which netflash cannot decode", f->o->source, s->why);
	return -EBADMSG;
}

/* A name ending in .xz (.gz, .zip ...) is a claim the bytes must bear out. */
static int check_claim(struct flash *f, const struct nf_sniff *s, const uint8_t *head, size_t n, int whole)
{
	char why[300];

	if (nf_format_check_claim(f->o->source, s, head, n, whole, why, sizeof(why)) == 0)
		return 0;
	flash_fail(f, -EBADMSG, "source", "'%s' is %s", f->o->source, why);
	return -EBADMSG;
}

/* Decodes the image's first bytes and refuses what is not a disk image
 * (unless the user said --not-a-disk) and what is compressed again. */
static int check_head(struct flash *f, enum nf_format fmt, const char *outer)
{
	uint8_t head[NF_FORMAT_PROBE_LEN];
	char detail[200], why[160];
	const char *inner = NULL;
	ssize_t n = nf_decode_head(fmt, source_pread, f->src, 0, head, sizeof(head), detail, sizeof(detail));

	if (n < 0) {
		flash_fail(f, (int)n, "decode", "'%s': %s", f->o->source, detail);
		return (int)n;
	}
	switch (nf_head_check(head, (size_t)n, (size_t)n < sizeof(head), &inner, why, sizeof(why))) {
	case NF_HEAD_DISK:
		return 0;
	case NF_HEAD_NESTED:
		flash_fail(f, -EBADMSG, "source", "'%s' is %s data holding %s%s: netflash image add %s; "
			   "netflash-write needs the image itself", f->o->source, outer, why,
			   strcmp(inner, "tar") == 0 ? "" : " (compressed twice)",
			   strcmp(inner, "tar") == 0 ? "extracts its image" : "decodes every layer");
		return -EBADMSG;
	case NF_HEAD_NOT_DISK:
	default:
		if (f->o->not_a_disk)
			return 0;
		flash_fail(f, -EBADMSG, "source", "'%s' is not a disk image: %s (--not-a-disk writes it anyway)",
			   f->o->source, why);
		return -EBADMSG;
	}
}

/* The decoder's memory budget: --xz-memlimit, else a share of the
 * machine's MemAvailable now (nf_decode_budget). Sets f->budget and
 * writes where it came from into why. */
static void decode_budget(struct flash *f, char *why, size_t cap)
{
	char b[32], a[32];
	uint64_t avail = 0;

	if (f->o->xz_memlimit) {
		f->budget = f->o->xz_memlimit;
		nf_format_bytes(f->budget, b, sizeof(b));
		snprintf(why, cap, "budget %s from --xz-memlimit", b);
		return;
	}
	if (nf_mem_available(&avail) < 0)
		avail = 0;
	f->budget = nf_decode_budget(avail);
	nf_format_bytes(f->budget, b, sizeof(b));
	nf_format_bytes(avail, a, sizeof(a));
	snprintf(why, cap, "budget %s: a quarter of MemAvailable %s, at least %llu MiB", b, avail ? a : "(unknown)",
		 (unsigned long long)(NF_DECODE_BUDGET_MIN >> 20));
}

/* xz: as many threads as cores while each fits the budget (liblzma's
 * memlimit_threading enforces the same; this says what to expect). */
static void plan_xz(struct flash *f, const struct nf_xz_index *x)
{
	unsigned cpus = f->o->threads ? f->o->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t per = nf_xz_thread_mem(x), fit;
	char why[160], blk[32], need[32];

	decode_budget(f, why, sizeof(why));
	fit = per ? f->budget / per : cpus;
	f->res->xz_threads = x->blocks <= 1 ? 1 : fit < 1 ? 1 : fit < cpus ? (unsigned)fit : cpus;
	f->res->decode_budget = f->budget;
	nf_format_bytes(x->max_block, blk, sizeof(blk));
	nf_format_bytes(per, need, sizeof(need));
	if (x->blocks <= 1)
		snprintf(f->res->decode_plan, sizeof(f->res->decode_plan),
			 "xz: 1 thread (one block: xz decodes a block on one core); %s", why);
	else
		snprintf(f->res->decode_plan, sizeof(f->res->decode_plan),
			 "xz: %u thread(s) of %u CPU(s): %llu blocks of up to %s need about %s each; %s",
			 f->res->xz_threads, cpus, (unsigned long long)x->blocks, blk, need, why);
}

/* zstd: the window the budget affords; an image that needs more is refused
 * before the target is opened. Returns 0 or -ENOMEM after flash_fail(). */
static int plan_zstd(struct flash *f, const uint8_t *head, size_t n)
{
	char why[160], w[32], max[32];
	uint64_t window = 0;

	decode_budget(f, why, sizeof(why));
	f->res->decode_budget = f->budget;
	nf_format_bytes(nf_zstd_window_max(f->budget), max, sizeof(max));
	if (nf_zstd_first_window(head, n, &window) == 0 && window > nf_zstd_window_max(f->budget)) {
		nf_format_bytes(window, w, sizeof(w));
		flash_fail(f, -ENOMEM, "decode", "'%s' needs a zstd window of %s; this machine affords %s (%s): "
			   "re-encode it (netflash image add does) or raise --xz-memlimit", f->o->source, w, max, why);
		return -ENOMEM;
	}
	nf_format_bytes(window, w, sizeof(w));
	snprintf(f->res->decode_plan, sizeof(f->res->decode_plan), "zstd: window %s of at most %s; %s",
		 window ? w : "(unknown)", max, why);
	return 0;
}

static int probe(struct flash *f, enum nf_format *fmt)
{
	uint8_t head[NF_FORMAT_PROBE_LEN];
	ssize_t n = nf_source_pread(f->src, head, sizeof(head), 0);
	struct nf_sniff sn;
	uint64_t size = 0;
	int r;

	if (n < 0) {
		flash_fail(f, (int)n, "source", "cannot read '%s': %s", f->o->source, nf_source_detail(f->src));
		return (int)n;
	}
	if (n == 0) {
		flash_fail(f, -EBADMSG, "source", "'%s' is empty", f->o->source);
		return -EBADMSG;
	}
	nf_format_sniff(head, (size_t)n, (size_t)n < sizeof(head), &sn);
	if ((r = check_claim(f, &sn, head, (size_t)n, (size_t)n < sizeof(head))) < 0)
		return r;
	*fmt = sn.format;
	if (*fmt == NF_FMT_UNKNOWN)
		return refuse_format(f, &sn);
	if (f->o->format != NF_FMT_UNKNOWN && f->o->format != *fmt) {
		flash_fail(f, -EBADMSG, "source", "'%s' is %s data, not %s as --format says",
			   f->o->source, nf_format_name(*fmt), nf_format_name(f->o->format));
		return -EBADMSG;
	}
	if ((r = check_head(f, *fmt, nf_format_name(*fmt))) < 0)
		return r;
	if (*fmt == NF_FMT_RAW) {
		size = nf_source_size(f->src);
	} else if (*fmt == NF_FMT_XZ) {
		/* The index gives the exact size before the target is touched;
		 * a damaged or truncated file fails here. */
		struct nf_xz_index x;

		r = nf_xz_info(source_pread, f->src, nf_source_size(f->src), &x);
		if (r < 0) {
			flash_fail(f, r, "decode", "'%s': %s", f->o->source, r == -EBADMSG
				   ? "xz index is corrupt or the file is truncated" : nf_source_detail(f->src));
			return r;
		}
		size = x.size;
		plan_xz(f, &x);
	} else if (*fmt == NF_FMT_ZSTD) {
		unsigned long long fs = ZSTD_getFrameContentSize(head, (size_t)n);

		/* Only a lower bound: more frames may follow. */
		if (fs != ZSTD_CONTENTSIZE_UNKNOWN && fs != ZSTD_CONTENTSIZE_ERROR)
			f->min_size = fs;
		if ((r = plan_zstd(f, head, (size_t)n)) < 0)
			return r;
	}
	if (size && f->o->expect_size && size != f->o->expect_size) {
		flash_fail(f, -EBADMSG, "source", "'%s' decodes to %llu bytes, expected %llu",
			   f->o->source, (unsigned long long)size, (unsigned long long)f->o->expect_size);
		return -EBADMSG;
	}
	f->known_size = size ? size : f->o->expect_size;
	return 0;
}

/* With the target open: refuse an image known to be larger, before writing. */
static int check_size(struct flash *f)
{
	uint64_t need = f->known_size > f->min_size ? f->known_size : f->min_size;

	if (need > f->tgt.size) {
		flash_fail(f, -ENOSPC, "target", "the image does not fit: '%s' has %llu bytes, the image %s%llu",
			   f->tgt.path, (unsigned long long)f->tgt.size, f->known_size ? "" : "at least ",
			   (unsigned long long)need);
		return -ENOSPC;
	}
	return 0;
}

/* ---- the end: digest, provisioning patch, then the first MiB -------------- */

/* Writes the provisioning patch (read-modify-write in the target's
 * alignment), flushes, and reads every extent back. The patch never touches
 * the first MiB: that is written last, as always. Returns 0 or -errno after
 * flash_fail(). */
static int apply_patch(struct flash *f)
{
	const struct nf_patch *p = f->o->patch;
	uint64_t align = f->tgt.align ? f->tgt.align : 512;
	int r = 0;

	for (int pass = 0; pass < 2 && r == 0; pass++) {
		for (size_t i = 0; i < p->n && r == 0; i++) {
			const struct nf_patch_extent *e = &p->ext[i];
			uint64_t a = e->off / align * align, b = (e->off + e->len + align - 1) / align * align;
			uint8_t *buf;
			ssize_t n;

			if (e->off < NF_BLOCK || e->off + e->len > f->image_size) {
				flash_fail(f, -EINVAL, "patch", "the provisioning patch writes %u bytes at offset %llu, "
					   "outside the image's %llu bytes past its first MiB", e->len,
					   (unsigned long long)e->off, (unsigned long long)f->image_size);
				return -EINVAL;
			}
			buf = aligned_alloc(4096, (size_t)(b - a));
			if (!buf) {
				flash_fail(f, -ENOMEM, "patch", "out of memory");
				return -ENOMEM;
			}
			n = nf_target_read(&f->tgt, buf, (size_t)(b - a), a);
			if (n >= 0 && (uint64_t)n < e->off - a + e->len)
				n = -EIO;
			if (n < 0) {
				r = (int)n;
				flash_fail(f, r, "patch", "cannot read '%s' at offset %llu for the provisioning patch: %s",
					   f->tgt.path, (unsigned long long)a, strerror(-r));
			} else if (pass == 0) {
				memcpy(buf + (e->off - a), e->data, e->len);
				/* n, not b - a: never extend a regular file past its end. */
				r = nf_target_write(&f->tgt, buf, (size_t)n, a);
				if (r < 0)
					flash_fail(f, r, "patch", "cannot write the provisioning patch to '%s' at offset %llu: %s",
						   f->tgt.path, (unsigned long long)e->off, strerror(-r));
			} else if (memcmp(buf + (e->off - a), e->data, e->len) != 0) {
				r = -EIO;
				f->res->have_bad_offset = 1;
				f->res->bad_offset = e->off;
				flash_fail(f, r, "patch", "the provisioning patch does not read back from '%s' at offset %llu",
					   f->tgt.path, (unsigned long long)e->off);
			}
			free(buf);
		}
		if (r == 0 && pass == 0 && (r = nf_target_flush(&f->tgt, NF_BLOCK, f->image_size - NF_BLOCK)) < 0)
			flash_fail(f, r, "patch", "cannot flush the provisioning patch to '%s': %s", f->tgt.path,
				   strerror(-r));
	}
	if (r == 0) {
		nf_patch_digest(p, f->res->patch_sha256);
		f->res->patched = 1;
	}
	return r;
}

/* Each block was read back soon after it was written. A card that keeps
 * less than it claims (or remaps blocks) can let a later write land on an
 * earlier, already verified block. So once every block is written, read
 * the first SAMPLE bytes of every block again: a block a later write
 * overwrote no longer matches. The head (block 0) is written and verified
 * after this. Returns 0 or -EIO after flash_fail(). */
static int recheck_samples(struct flash *f)
{
	uint8_t *buf = aligned_alloc(4096, SAMPLE + 4096);
	size_t rlen = (SAMPLE + f->tgt.align - 1) / f->tgt.align * f->tgt.align;
	double t0 = now_s();
	int r = 0;

	if (!buf) {
		flash_fail(f, -ENOMEM, "verify", "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 1; i < f->nhashes && r == 0; i++) {
		uint64_t off = (uint64_t)i * NF_BLOCK;
		size_t len = f->image_size - off < SAMPLE ? (size_t)(f->image_size - off) : SAMPLE;
		ssize_t n = nf_target_read(&f->tgt, buf, rlen, off);

		if (n < (ssize_t)len) {
			r = n < 0 ? (int)n : -EIO;
			flash_fail(f, r, "verify", "cannot read back '%s' at offset %llu after the last write: %s",
				   f->tgt.path, (unsigned long long)off, n < 0 ? strerror((int)-n) : "it ends there");
		} else if (XXH3_64bits(buf, len) != f->sums[i].sample) {
			char what[200];

			describe_readback(f, i, buf, len, what, sizeof(what));
			r = -EIO;
			f->res->have_bad_offset = 1;
			f->res->bad_offset = off;
			flash_fail(f, r, "verify", "verification failed: '%s' no longer holds the image at offset %llu "
				   "once everything was written (it did when that block was written): %s",
				   f->tgt.path, (unsigned long long)off, what);
		}
	}
	free(buf);
	f->t_verify += now_s() - t0;
	f->res->t_recheck = now_s() - t0;
	return r;
}

static int finalize(struct flash *f)
{
	struct nf_flash_result *res = f->res;
	unsigned int mdlen = 0;
	uint8_t *buf = NULL;
	int r;

	EVP_DigestFinal_ex(f->sha, res->sha256, &mdlen);
	res->image_bytes = f->image_size;
	if (f->o->have_expect_sha256 && memcmp(res->sha256, f->o->expect_sha256, 32) != 0) {
		flash_fail(f, -EBADMSG, "verify", "'%s' is not the expected image: its SHA-256 differs from --expect-sha256",
			   f->o->source);
		return -EBADMSG;
	}
	if (f->o->expect_size && f->image_size != f->o->expect_size) {
		flash_fail(f, -EBADMSG, "verify", "'%s' decoded to %llu bytes, expected %llu", f->o->source,
			   (unsigned long long)f->image_size, (unsigned long long)f->o->expect_size);
		return -EBADMSG;
	}
	atomic_store(&f->finalizing, 1);
	if ((r = recheck_samples(f)) < 0)
		return r;
	if (f->o->patch && f->o->patch->n && (r = apply_patch(f)) < 0)
		return r;
	r = nf_target_write(&f->tgt, f->head, f->head_len, 0);
	if (r == 0)
		r = nf_target_flush(&f->tgt, 0, f->head_len);
	if (r < 0) {
		flash_fail(f, r, "write", "cannot write the first MiB of '%s': %s", f->tgt.path, strerror(-r));
		return r;
	}
	buf = aligned_alloc(4096, NF_BLOCK + 4096);
	if (!buf) {
		flash_fail(f, -ENOMEM, "verify", "out of memory");
		return -ENOMEM;
	}
	double t0 = now_s();
	r = verify_block(f, buf, 0, f->head_len);
	f->t_verify += now_s() - t0;
	free(buf);
	if (r == 0)
		atomic_store(&f->verified, f->image_size);
	return r;
}

/* ---- setup, monitor ------------------------------------------------------- */

static int setup(struct flash *f)
{
	struct nf_decoder_opts dopts = {
		.format = f->res->format,
		.threads = f->o->threads ? f->o->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN),
		.memlimit_threading = f->budget ? f->budget : NF_DECODE_BUDGET_MIN,
		.memlimit = f->budget > (160ull << 20) ? f->budget : 0, /* 0: decode.c's 160 MiB */
		.zstd_window_max = nf_zstd_window_max(f->budget ? f->budget : NF_DECODE_BUDGET_MIN),
	};
	if (nf_ring_init(&f->ring, RING_SIZE) < 0)
		return -ENOMEM;
	for (unsigned i = 0; i < NCHUNKS; i++) {
		f->chunks[i].buf = aligned_alloc(4096, CHUNK);
		if (!f->chunks[i].buf)
			return -ENOMEM;
		f->free_[i] = i;
	}
	f->free_n = NCHUNKS;
	f->head = aligned_alloc(4096, NF_BLOCK);
	/* A fresh calloc of this size is untouched zero pages: no resident
	 * memory unless the write fallback actually reads them. */
	f->zeros = calloc(1, NF_BLOCK);
	f->sha = EVP_MD_CTX_new();
	if (!f->head || !f->zeros || !f->sha || !EVP_DigestInit_ex(f->sha, EVP_sha256(), NULL))
		return -ENOMEM;
	f->input.peek = input_peek;
	f->input.consume = input_consume;
	f->input.ctx = f;
	return nf_decoder_new(&f->dec, &dopts, &f->input);
}

static void report(struct flash *f, double t0)
{
	struct nf_progress p = {
		.written = atomic_load(&f->written),
		.total = f->known_size,
		.skipped = atomic_load(&f->skipped),
		.verified = atomic_load(&f->verified),
		.src_read = atomic_load(&f->src_read),
		.src_total = nf_source_size(f->src),
		.elapsed = now_s() - t0,
		.reconnects = nf_source_reconnects(f->src),
		.reconnecting = nf_source_reconnecting(f->src),
	};
	uint64_t since = atomic_load(&f->write_since_us);
	int wdone, vdone;

	if (since && p.elapsed > 0 && now_s() - (double)since / 1e6 >= stall_limit(f)) {
		p.stall_s = now_s() - (double)since / 1e6;
		p.stall_at = atomic_load(&f->write_at);
	}
	pthread_mutex_lock(&f->lock);
	wdone = f->writer_done;
	vdone = f->verifier_done;
	pthread_mutex_unlock(&f->lock);
	p.stage = atomic_load(&f->finalizing) ? "finalize" : vdone || wdone ? "verify" : "write";
	if (f->o->progress)
		f->o->progress(&p, f->o->progress_ctx);
}

/* Runs the four stages and reports progress until they have all stopped. */
static void run_pipeline(struct flash *f, double t0)
{
	void *(*mains[4])(void *) = { reader_main, decoder_main, writer_main, verifier_main };
	pthread_t th[4];
	int started = 0;
	unsigned ms = f->o->progress_ms ? f->o->progress_ms : 250;
	double last = now_s();

	for (; started < 4; started++) {
		if (pthread_create(&th[started], NULL, mains[started], f) != 0) {
			flash_fail(f, -EAGAIN, "setup", "cannot start a thread");
			break;
		}
	}
	for (;;) {
		struct timespec ts;
		int over;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(ms % 1000) * 1000000L;
		ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_mutex_lock(&f->lock);
		over = f->err || f->verifier_done;
		if (!over)
			pthread_cond_timedwait(&f->cond, &f->lock, &ts);
		over = f->err || f->verifier_done;
		pthread_mutex_unlock(&f->lock);
		if (f->o->interrupt && atomic_load(f->o->interrupt) && !failed(f))
			flash_fail(f, -EINTR, "interrupted", "interrupted; the first MiB of '%s' was not written, so it will not boot",
				   f->tgt.path);
		if (over)
			break;
		/* The condition variable also wakes us on every queue operation. */
		if (now_s() - last >= ms / 1000.0) {
			report(f, t0);
			last = now_s();
		}
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
}

static void teardown(struct flash *f)
{
	nf_decoder_free(f->dec);
	nf_ring_destroy(&f->ring);
	for (unsigned i = 0; i < NCHUNKS; i++)
		free(f->chunks[i].buf);
	free(f->head);
	free(f->zeros);
	free(f->sums);
	free(f->before_buf);
	EVP_MD_CTX_free(f->sha);
	snprintf(f->res->zero_plan, sizeof(f->res->zero_plan), "%s", f->tgt.zero_note);
	nf_target_close(&f->tgt);
	nf_source_close(f->src);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
}

int nf_flash(const struct nf_flash_opts *o, struct nf_flash_result *res)
{
	struct flash f = { .o = o, .res = res };
	struct nf_source_opts sopts = o->src;
	double t0 = now_s();
	char detail[256];
	int r;

	memset(res, 0, sizeof(*res));
	res->format = NF_FMT_UNKNOWN;
	pthread_mutex_init(&f.lock, NULL);
	pthread_cond_init(&f.cond, NULL);
	nf_target_init(&f.tgt);
	sopts.cancel = &f.cancel;
	r = nf_source_open(&f.src, o->source, &sopts, detail, sizeof(detail));
	if (r < 0) {
		flash_fail(&f, r, "source", "cannot open '%s': %s", o->source, detail);
		goto out;
	}
	/* The target is not even opened (or created) until the source proved
	 * to be an image we can decode. */
	r = probe(&f, &res->format);
	if (r < 0)
		goto out;
	r = nf_target_open(&f.tgt, o->target, o->allow_partition, detail, sizeof(detail));
	if (r < 0) {
		/* A card that cannot be written stays so: its own stage, which the
		 * master treats as final (no retries, like a failed probe). */
		flash_fail(&f, r, r == -EROFS || r == -EACCES ? "read-only" : "target", "%s", detail);
		goto out;
	}
	r = check_size(&f);
	if (r < 0)
		goto out;
	if (o->probe_capacity) {
		uint64_t claimed = f.tgt.is_blk ? f.tgt.size : f.tgt.initial_size;

		r = nf_probe_capacity(&f.tgt, claimed, res->probe_detail, sizeof(res->probe_detail));
		if (r < 0) {
			flash_fail(&f, r, "probe", "'%s': %s", f.tgt.path, res->probe_detail);
			goto out;
		}
	}
	r = setup(&f);
	if (r < 0) {
		flash_fail(&f, r, "setup", "cannot set up the pipeline: %s", strerror(-r));
		goto out;
	}
	res->stall_limit_s = stall_limit(&f);
	run_pipeline(&f, t0);
	if (!f.err)
		finalize(&f);
	report(&f, t0);
out:
	r = f.err;
	res->source_bytes = atomic_load(&f.src_read);
	res->skipped_bytes = atomic_load(&f.skipped);
	res->written_bytes = atomic_load(&f.written) - res->skipped_bytes;
	res->reconnects = f.src ? nf_source_reconnects(f.src) : 0;
	res->t_read = f.t_read;
	res->t_decode = f.t_decode;
	res->t_write = f.t_write;
	res->t_verify = f.t_verify;
	res->t_total = now_s() - t0;
	teardown(&f);
	return r;
}
