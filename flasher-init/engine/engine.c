#include "engine.h"
#include "engine_int.h"
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

double flash_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void flash_fail(struct flash *f, int err, enum nf_stage stage, const char *fmt, ...)
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
	nf_chunkq_fail(&f->free_q, -ECANCELED);
	nf_chunkq_fail(&f->full_q, -ECANCELED);
}

int flash_failed(struct flash *f)
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
	double t0 = flash_now();
	int r = nf_source_stream(f->src, 0, ring_sink, f);

	f->t_read = flash_now() - t0;
	if (r < 0 && r != -ECANCELED && !flash_failed(f))
		flash_fail(f, r, NF_STAGE_SOURCE, "reading '%s' failed at offset %llu: %s%s",
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
	double t0 = flash_now();
	ssize_t n = nf_ring_peek(&f->ring, p);

	f->t_decode_wait += flash_now() - t0;
	return n;
}

static void input_consume(void *ctx, size_t n)
{
	struct flash *f = ctx;

	nf_ring_consume(&f->ring, n);
}

static void decode_failed(struct flash *f, ssize_t n, uint64_t image_off)
{
	if (n != -EBADMSG && n != -ENOMEM) {
		/* The input failed: the reader has said why. */
		flash_fail(f, (int)n, NF_STAGE_SOURCE, "reading '%s' failed", f->o->source);
		return;
	}
	flash_fail(f, (int)n, NF_STAGE_DECODE, "%s: %s at compressed offset %llu (image offset %llu)%s",
		   f->o->source, nf_decoder_detail(f->dec),
		   (unsigned long long)nf_decoder_in_offset(f->dec), (unsigned long long)image_off,
		   nf_decoder_trailing(f->dec) ? "; gzip -dc ignores such data, and netflash image add stores such an "
						 "image as zstd" : "");
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

/* Samples what the card holds at the start of each block of c but the
 * head (wiped first, written last); zero blocks too: zeros a card drops
 * are as much a lost write. On the decoder's thread: the writer has not
 * reached c's range yet. Costs one 4 KiB read per MiB: on a loop device
 * here 8-15% of a 1 GiB flash (1.40 -> 1.63 s), on a card's shared bus
 * about 1% of its read time. */
static void sample_chunk_before(struct flash *f, struct chunk *c)
{
	for (size_t i = 0; i < c->len; i += NF_BLOCK) {
		size_t blen = c->len - i < NF_BLOCK ? c->len - i : NF_BLOCK;

		c->has_before[i / NF_BLOCK] = c->off + i > 0 &&
			sample_before(f, c->off + i, blen < SAMPLE ? blen : SAMPLE, &c->before[i / NF_BLOCK]);
	}
}

static void *decoder_main(void *arg)
{
	struct flash *f = arg;
	double t0 = flash_now(), wait = 0;
	uint64_t off = 0;
	void *p;

	while (nf_chunkq_take(&f->free_q, &p, &wait) > 0) {
		struct chunk *c = p;
		ssize_t n = 1;

		c->off = off;
		c->len = 0;
		while (c->len < CHUNK && (n = nf_decoder_read(f->dec, c->buf + c->len, CHUNK - c->len)) > 0)
			c->len += (size_t)n;
		if (n < 0) {
			decode_failed(f, n, off + c->len);
			break;
		}
		sample_chunk_before(f, c);
		off += c->len;
		/* An empty last chunk goes back unused. */
		nf_chunkq_put(c->len ? &f->full_q : &f->free_q, c);
		if (n == 0) {
			nf_chunkq_close(&f->full_q);
			break;
		}
	}
	f->t_decode = flash_now() - t0 - wait - f->t_decode_wait;
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

/* The blocks of [off, off+len) were made without writing (the zero
 * method): one that does not read back as zeros is rewritten with zeros
 * before the card is blamed (verify.c). */
static void mark_zeroed(struct flash *f, uint64_t off, uint64_t len)
{
	pthread_mutex_lock(&f->lock);
	for (uint64_t b = off / NF_BLOCK; b < (off + len + NF_BLOCK - 1) / NF_BLOCK && b < f->nhashes; b++)
		f->sums[b].zeroed = 1;
	pthread_mutex_unlock(&f->lock);
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
		double t0 = flash_now(), dt;

		atomic_store(&f->write_at, c->off + i);
		atomic_store(&f->write_since_us, (uint64_t)(t0 * 1e6) | 1);
		if (zero) {
			uint64_t skipped = 0;

			r = nf_target_zero(&f->tgt, c->off + i, j - i, c->buf + i, &skipped);
			if (r == 0 && skipped) {
				atomic_fetch_add(&f->skipped, skipped);
				mark_zeroed(f, c->off + i, j - i);
			}
		} else {
			r = nf_target_write(&f->tgt, c->buf + i, j - i, c->off + i);
		}
		atomic_store(&f->write_since_us, 0);
		/* The stall watchdog's record; res is the writer's until it ends. */
		dt = flash_now() - t0;
		if (dt > f->res->max_stall_s) {
			f->res->max_stall_s = dt;
			f->res->max_stall_at = c->off + i;
		}
		if (dt >= stall_limit(f))
			f->res->stalls++;
		if (r < 0) {
			flash_fail(f, r, NF_STAGE_WRITE, "cannot write to '%s' at offset %llu: %s",
				   f->tgt.path, (unsigned long long)(c->off + i), strerror(-r));
			return r;
		}
		i = j;
	}
	return 0;
}

/* Before the first byte of the image lands, make the card unbootable: if the
 * flash does not finish, the Pi netboots into the flasher again. The wipe is
 * written as data (never the zero method: DISCARD may keep the old boot
 * sector) from an aligned buffer, so it goes through the direct descriptor
 * like the image, flushed and read back before anything else is written: a
 * card pulled at any later point holds zeros there, never its old partition
 * table over the new image's data. */
static int wipe_head(struct flash *f)
{
	uint64_t len = NF_BLOCK;
	ssize_t n;
	int r;

	if (f->tgt.size < len)
		len = f->tgt.size & ~511ull;
	if (!len)
		return 0;
	r = nf_target_write_zeros(&f->tgt, 0, (size_t)len, f->zeros);
	if (r < 0) {
		flash_fail(f, r, NF_STAGE_WRITE, "cannot wipe the first MiB of '%s': %s", f->tgt.path, strerror(-r));
		return r;
	}
	n = nf_target_read(&f->tgt, f->head_check, (size_t)len, 0);
	if (n < (ssize_t)len || !nf_is_zero(f->head_check, (size_t)len)) {
		flash_fail(f, n < 0 ? (int)n : -EIO, NF_STAGE_WRITE, "the first MiB of '%s' %s after it was wiped; "
			   "nothing of the image was written", f->tgt.path,
			   n < 0 ? strerror((int)-n) : n < (ssize_t)len ? "cannot be read back" : "does not read back as zeros");
		return n < 0 ? (int)n : -EIO;
	}
	return 0;
}

static int process_chunk(struct flash *f, struct chunk *c)
{
	uint64_t end = c->off + c->len;
	size_t from = 0;

	if (end > f->tgt.size || end > MAX_IMAGE) {
		flash_fail(f, -ENOSPC, NF_STAGE_TARGET, "the image does not fit: '%s' has %llu bytes and the image is larger",
			   f->tgt.path, (unsigned long long)(end > f->tgt.size ? f->tgt.size : MAX_IMAGE));
		return -ENOSPC;
	}
	EVP_DigestUpdate(f->sha, c->buf, c->len);
	for (size_t i = 0; i < c->len; i += NF_BLOCK) {
		size_t blen = c->len - i < NF_BLOCK ? c->len - i : NF_BLOCK, slen = blen < SAMPLE ? blen : SAMPLE;

		if (store_hash(f, (size_t)((c->off + i) / NF_BLOCK), XXH3_128bits(c->buf + i, blen),
			       XXH3_64bits(c->buf + i, slen), c->has_before[i / NF_BLOCK], c->before[i / NF_BLOCK]) < 0) {
			flash_fail(f, -ENOMEM, NF_STAGE_WRITE, "out of memory for block hashes");
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
			flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' changed while it was read: its image now starts with %s",
				   f->o->source, why);
			return -EBADMSG;
		}
		/* CHUNK is a multiple of NF_BLOCK: the first block is in the first chunk. */
		f->head_len = c->len < NF_BLOCK ? c->len : NF_BLOCK;
		memcpy(f->head, c->buf, f->head_len);
		f->res->touched = 1;
		if (wipe_head(f) < 0)
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
		flash_fail(f, r, NF_STAGE_WRITE, "cannot flush or extend '%s': %s", f->tgt.path, strerror(-r));
		return r;
	}
	pthread_mutex_lock(&f->lock);
	f->flushed = end;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	*last_flush = end;
	return 0;
}

static void *writer_main(void *arg)
{
	struct flash *f = arg;
	double t0 = flash_now(), wait = 0;
	uint64_t end = 0, last_flush = 0;
	void *p;
	int got, r = 0;

	while ((got = nf_chunkq_take(&f->full_q, &p, &wait)) > 0) {
		struct chunk *c = p;

		r = process_chunk(f, c);
		end = c->off + c->len;
		atomic_store(&f->written, end);
		nf_chunkq_put(&f->free_q, c);
		if (r < 0)
			break;
		if (end - last_flush >= FLUSH_EVERY && flush_to(f, &last_flush, end) < 0)
			break;
	}
	/* got == 0: the decoder closed the queue after the last chunk. */
	if (got == 0 && end == 0)
		flash_fail(f, -EBADMSG, NF_STAGE_DECODE, "'%s' holds an empty image", f->o->source);
	if (got == 0 && end > 0 && flush_to(f, &last_flush, end) == 0) {
		pthread_mutex_lock(&f->lock);
		f->image_size = end;
		f->writer_done = 1;
		pthread_cond_broadcast(&f->cond);
		pthread_mutex_unlock(&f->lock);
	}
	f->t_write = flash_now() - t0 - wait;
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
		flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' is %s: netflash-write takes raw, gzip, xz and zstd images; "
			   "netflash image add converts %s for workers (or unpack it first)", f->o->source, s->why,
			   strcmp(s->family, "tar") == 0 || strcmp(s->family, "zip") == 0 || strcmp(s->family, "7z") == 0
				   ? "the image inside" : "it");
	else
		flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' is %s, which netflash cannot decode", f->o->source, s->why);
	return -EBADMSG;
}

/* A name ending in .xz (.gz, .zip ...) is a claim the bytes must bear out. */
static int check_claim(struct flash *f, const struct nf_sniff *s, const uint8_t *head, size_t n, int whole)
{
	char why[300];

	if (nf_format_check_claim(f->o->source, s, head, n, whole, why, sizeof(why)) == 0)
		return 0;
	flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' is %s", f->o->source, why);
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
		flash_fail(f, (int)n, NF_STAGE_DECODE, "'%s': %s", f->o->source, detail);
		return (int)n;
	}
	switch (nf_head_check(head, (size_t)n, (size_t)n < sizeof(head), &inner, why, sizeof(why))) {
	case NF_HEAD_DISK:
		return 0;
	case NF_HEAD_NESTED:
		flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' is %s data holding %s%s: netflash image add %s; "
			   "netflash-write needs the image itself", f->o->source, outer, why,
			   strcmp(inner, "tar") == 0 ? "" : " (compressed twice)",
			   strcmp(inner, "tar") == 0 ? "extracts its image" : "decodes every layer");
		return -EBADMSG;
	case NF_HEAD_NOT_DISK:
	default:
		if (f->o->not_a_disk)
			return 0;
		flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' is not a disk image: %s (--not-a-disk writes it anyway)",
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
		flash_fail(f, -ENOMEM, NF_STAGE_DECODE, "'%s' needs a zstd window of %s; this machine affords %s (%s): "
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
		flash_fail(f, (int)n, NF_STAGE_SOURCE, "cannot read '%s': %s", f->o->source, nf_source_detail(f->src));
		return (int)n;
	}
	if (n == 0) {
		flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' is empty", f->o->source);
		return -EBADMSG;
	}
	nf_format_sniff(head, (size_t)n, (size_t)n < sizeof(head), &sn);
	if ((r = check_claim(f, &sn, head, (size_t)n, (size_t)n < sizeof(head))) < 0)
		return r;
	*fmt = sn.format;
	if (*fmt == NF_FMT_UNKNOWN)
		return refuse_format(f, &sn);
	if (f->o->format != NF_FMT_UNKNOWN && f->o->format != *fmt) {
		flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' is %s data, not %s as --format says",
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
			flash_fail(f, r, NF_STAGE_DECODE, "'%s': %s", f->o->source, r == -EBADMSG
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
		flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' decodes to %llu bytes, expected %llu",
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
		flash_fail(f, -ENOSPC, NF_STAGE_TARGET, "the image does not fit: '%s' has %llu bytes, the image %s%llu",
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
				flash_fail(f, -EINVAL, NF_STAGE_PATCH, "the provisioning patch writes %u bytes at offset %llu, "
					   "outside the image's %llu bytes past its first MiB", e->len,
					   (unsigned long long)e->off, (unsigned long long)f->image_size);
				return -EINVAL;
			}
			buf = aligned_alloc(4096, (size_t)(b - a));
			if (!buf) {
				flash_fail(f, -ENOMEM, NF_STAGE_PATCH, "out of memory");
				return -ENOMEM;
			}
			n = nf_target_read(&f->tgt, buf, (size_t)(b - a), a);
			if (n >= 0 && (uint64_t)n < e->off - a + e->len)
				n = -EIO;
			if (n < 0) {
				r = (int)n;
				flash_fail(f, r, NF_STAGE_PATCH, "cannot read '%s' at offset %llu for the provisioning patch: %s",
					   f->tgt.path, (unsigned long long)a, strerror(-r));
			} else if (pass == 0) {
				memcpy(buf + (e->off - a), e->data, e->len);
				/* n, not b - a: never extend a regular file past its end. */
				r = nf_target_write(&f->tgt, buf, (size_t)n, a);
				if (r < 0)
					flash_fail(f, r, NF_STAGE_PATCH, "cannot write the provisioning patch to '%s' at offset %llu: %s",
						   f->tgt.path, (unsigned long long)e->off, strerror(-r));
			} else if (memcmp(buf + (e->off - a), e->data, e->len) != 0) {
				r = -EIO;
				f->res->have_bad_offset = 1;
				f->res->bad_offset = e->off;
				flash_fail(f, r, NF_STAGE_PATCH, "the provisioning patch does not read back from '%s' at offset %llu",
					   f->tgt.path, (unsigned long long)e->off);
			}
			free(buf);
		}
		if (r == 0 && pass == 0 && (r = nf_target_flush(&f->tgt, NF_BLOCK, f->image_size - NF_BLOCK)) < 0)
			flash_fail(f, r, NF_STAGE_PATCH, "cannot flush the provisioning patch to '%s': %s", f->tgt.path,
				   strerror(-r));
	}
	if (r == 0) {
		nf_patch_digest(p, f->res->patch_sha256);
		f->res->patched = 1;
	}
	return r;
}

/* The first MiB, last: its tail first, flushed, then the first 4 KiB (the
 * MBR, or the protective MBR and the GPT header), flushed. A card pulled
 * during this keeps a zero boot sector until the image is whole, and a
 * device that splits the write (a USB reader, FUSE, the loop driver) cannot
 * land the partition table before the rest. Returns 0 or -errno. */
static int write_head(struct flash *f)
{
	size_t first = f->tgt.align > 4096 ? f->tgt.align : 4096;
	int r;

	if (f->head_len <= first || f->head_len % f->tgt.align) {
		r = nf_target_write(&f->tgt, f->head, f->head_len, 0);
		return r < 0 ? r : nf_target_flush(&f->tgt, 0, f->head_len);
	}
	r = nf_target_write(&f->tgt, f->head + first, f->head_len - first, first);
	if (r == 0)
		r = nf_target_flush(&f->tgt, first, f->head_len - first);
	if (r == 0)
		r = nf_target_write(&f->tgt, f->head, first, 0);
	return r < 0 ? r : nf_target_flush(&f->tgt, 0, first);
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
		flash_fail(f, -EBADMSG, NF_STAGE_VERIFY, "'%s' is not the expected image: its SHA-256 differs from --expect-sha256",
			   f->o->source);
		return -EBADMSG;
	}
	if (f->o->expect_size && f->image_size != f->o->expect_size) {
		flash_fail(f, -EBADMSG, NF_STAGE_VERIFY, "'%s' decoded to %llu bytes, expected %llu", f->o->source,
			   (unsigned long long)f->image_size, (unsigned long long)f->o->expect_size);
		return -EBADMSG;
	}
	atomic_store(&f->finalizing, 1);
	if ((r = flash_recheck_samples(f)) < 0)
		return r;
	if (f->o->patch && f->o->patch->n && (r = apply_patch(f)) < 0)
		return r;
	r = write_head(f);
	if (r < 0) {
		flash_fail(f, r, NF_STAGE_WRITE, "cannot write the first MiB of '%s': %s", f->tgt.path, strerror(-r));
		return r;
	}
	buf = aligned_alloc(4096, NF_BLOCK + 4096);
	if (!buf) {
		flash_fail(f, -ENOMEM, NF_STAGE_VERIFY, "out of memory");
		return -ENOMEM;
	}
	double t0 = flash_now();
	r = flash_verify_block(f, buf, 0, f->head_len);
	f->t_verify += flash_now() - t0;
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
		if (!f->chunks[i].buf || nf_chunkq_put(&f->free_q, &f->chunks[i]) < 0)
			return -ENOMEM;
	}
	f->head = aligned_alloc(4096, NF_BLOCK);
	f->head_check = aligned_alloc(4096, NF_BLOCK);
	/* Aligned, so zeros go through the direct descriptor like the image:
	 * a buffered write of the head wipe sat in the page cache until the
	 * first 64 MiB flush, behind image data already on the card. */
	f->zeros = aligned_alloc(4096, NF_BLOCK);
	f->sha = EVP_MD_CTX_new();
	if (!f->head || !f->head_check || !f->zeros || !f->sha || !EVP_DigestInit_ex(f->sha, EVP_sha256(), NULL))
		return -ENOMEM;
	memset(f->zeros, 0, NF_BLOCK);
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
		.elapsed = flash_now() - t0,
		.reconnects = nf_source_reconnects(f->src),
		.reconnecting = nf_source_reconnecting(f->src),
	};
	uint64_t since = atomic_load(&f->write_since_us);
	int wdone, vdone;

	if (since && p.elapsed > 0 && flash_now() - (double)since / 1e6 >= stall_limit(f)) {
		p.stall_s = flash_now() - (double)since / 1e6;
		p.stall_at = atomic_load(&f->write_at);
	}
	pthread_mutex_lock(&f->lock);
	wdone = f->writer_done;
	vdone = f->verifier_done;
	pthread_mutex_unlock(&f->lock);
	p.stage = atomic_load(&f->finalizing) ? NF_STAGE_FINALIZE : vdone || wdone ? NF_STAGE_VERIFY : NF_STAGE_WRITE;
	if (f->o->progress)
		f->o->progress(&p, f->o->progress_ctx);
}

/* Runs the four stages (reader, decoder, writer, verifier) and reports
 * progress until they have all stopped. */
static void run_pipeline(struct flash *f, double t0)
{
	void *(*mains[4])(void *) = { reader_main, decoder_main, writer_main, flash_verifier_main };
	pthread_t th[4];
	int started = 0;
	unsigned ms = f->o->progress_ms ? f->o->progress_ms : 250;
	double last = flash_now();

	for (; started < 4; started++) {
		if (pthread_create(&th[started], NULL, mains[started], f) != 0) {
			flash_fail(f, -EAGAIN, NF_STAGE_SETUP, "cannot start a thread");
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
		if (f->o->interrupt && atomic_load(f->o->interrupt) && !flash_failed(f))
			flash_fail(f, -EINTR, NF_STAGE_INTERRUPTED, "interrupted; the first MiB of '%s' was not written, so it will not boot",
				   f->tgt.path);
		if (over)
			break;
		if (flash_now() - last >= ms / 1000.0) {
			report(f, t0);
			last = flash_now();
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
	free(f->head_check);
	free(f->zeros);
	free(f->sums);
	free(f->before_buf);
	EVP_MD_CTX_free(f->sha);
	if (f->res->zero_rewrites)
		snprintf(f->res->zero_plan, sizeof(f->res->zero_plan), "zero runs: %u block(s) made without writing "
			 "did not read back as zeros (the first at offset %llu): rewritten with zeros, and zeros written "
			 "from then on", f->res->zero_rewrites, (unsigned long long)f->res->zero_rewrite_at);
	else
		snprintf(f->res->zero_plan, sizeof(f->res->zero_plan), "%s", f->tgt.zero_note);
	nf_target_close(&f->tgt);
	nf_source_close(f->src);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	nf_chunkq_destroy(&f->free_q);
	nf_chunkq_destroy(&f->full_q);
}

int nf_flash(const struct nf_flash_opts *o, struct nf_flash_result *res)
{
	struct flash f = { .o = o, .res = res };
	struct nf_source_opts sopts = o->src;
	double t0 = flash_now();
	char detail[256];
	int r;

	memset(res, 0, sizeof(*res));
	res->format = NF_FMT_UNKNOWN;
	pthread_mutex_init(&f.lock, NULL);
	pthread_cond_init(&f.cond, NULL);
	nf_chunkq_init(&f.free_q);
	nf_chunkq_init(&f.full_q);
	nf_target_init(&f.tgt);
	sopts.cancel = &f.cancel;
	r = nf_source_open(&f.src, o->source, &sopts, detail, sizeof(detail));
	if (r < 0) {
		flash_fail(&f, r, NF_STAGE_SOURCE, "cannot open '%s': %s", o->source, detail);
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
		flash_fail(&f, r, r == -EROFS || r == -EACCES ? NF_STAGE_READ_ONLY : NF_STAGE_TARGET, "%s", detail);
		goto out;
	}
	r = check_size(&f);
	if (r < 0)
		goto out;
	if (o->probe_capacity) {
		uint64_t claimed = f.tgt.is_blk ? f.tgt.size : f.tgt.initial_size;

		r = nf_probe_capacity(&f.tgt, claimed, res->probe_detail, sizeof(res->probe_detail));
		if (r < 0) {
			flash_fail(&f, r, NF_STAGE_PROBE, "'%s': %s", f.tgt.path, res->probe_detail);
			goto out;
		}
	}
	r = setup(&f);
	if (r < 0) {
		flash_fail(&f, r, NF_STAGE_SETUP, "cannot set up the pipeline: %s", strerror(-r));
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
	res->t_total = flash_now() - t0;
	teardown(&f);
	return r;
}
