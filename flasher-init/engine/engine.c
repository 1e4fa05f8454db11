/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The flash engine's driver and its first two stages: nf_flash() opens the
 * source, runs preflight (preflight.c), opens and probes the target, starts
 * the reader, decoder, writer (writer.c) and verifier (verify.c) threads,
 * reports progress while they run, finishes (finish.c) and collects what
 * they recorded into the result. */
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

#include "decode.h"
#include "log.h"
#include "ring.h"
#include "target.h"

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
	if (!f->locked.err) {
		f->locked.err = err;
		f->locked.stage = stage;
		va_start(ap, fmt);
		vsnprintf(f->locked.detail, sizeof(f->locked.detail), fmt, ap);
		va_end(ap);
		/* Names in it come from the user or the server: keep it one
		 * printable line whatever they hold. */
		for (char *c = f->locked.detail; *c; c++) {
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

void flash_bad_offset(struct flash *f, uint64_t off)
{
	pthread_mutex_lock(&f->lock);
	if (!f->locked.have_bad_offset) {
		f->locked.have_bad_offset = 1;
		f->locked.bad_offset = off;
	}
	pthread_mutex_unlock(&f->lock);
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

	f->reader.t = flash_now() - t0;
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

	f->decoder.t_wait += flash_now() - t0;
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

	if (!f->decoder.before_buf && !(f->decoder.before_buf = aligned_alloc(4096, rlen < 4096 ? 4096 : rlen)))
		return 0;
	if (nf_target_read(&f->tgt, f->decoder.before_buf, rlen, off) < (ssize_t)len)
		return 0;
	*h = XXH3_64bits(f->decoder.before_buf, len);
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
	f->decoder.t = flash_now() - t0 - wait - f->decoder.t_wait;
	return NULL;
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
	f->writer.head = aligned_alloc(4096, NF_BLOCK);
	f->writer.head_check = aligned_alloc(4096, NF_BLOCK);
	/* Aligned, so zeros go through the direct descriptor like the image:
	 * a buffered write of the head wipe sat in the page cache until the
	 * first 64 MiB flush, behind image data already on the card. */
	f->writer.zeros = aligned_alloc(4096, NF_BLOCK);
	f->writer.sha = EVP_MD_CTX_new();
	if (!f->writer.head || !f->writer.head_check || !f->writer.zeros || !f->writer.sha ||
	    !EVP_DigestInit_ex(f->writer.sha, EVP_sha256(), NULL))
		return -ENOMEM;
	memset(f->writer.zeros, 0, NF_BLOCK);
	f->decoder.input.peek = input_peek;
	f->decoder.input.consume = input_consume;
	f->decoder.input.ctx = f;
	return nf_decoder_new(&f->dec, &dopts, &f->decoder.input);
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

	if (since && p.elapsed > 0 && flash_now() - (double)since / 1e6 >= flash_stall_limit(f)) {
		p.stall_s = flash_now() - (double)since / 1e6;
		p.stall_at = atomic_load(&f->write_at);
	}
	pthread_mutex_lock(&f->lock);
	wdone = f->locked.writer_done;
	vdone = f->locked.verifier_done;
	pthread_mutex_unlock(&f->lock);
	p.stage = atomic_load(&f->finalizing) ? NF_STAGE_FINALIZE : vdone || wdone ? NF_STAGE_VERIFY : NF_STAGE_WRITE;
	if (f->o->progress)
		f->o->progress(&p, f->o->progress_ctx);
}

/* Runs the four stages (reader, decoder, writer, verifier) and reports
 * progress until they have all stopped. */
static void run_pipeline(struct flash *f, double t0)
{
	void *(*mains[4])(void *) = { reader_main, decoder_main, flash_writer_main, flash_verifier_main };
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
		over = f->locked.err || f->locked.verifier_done;
		if (!over)
			pthread_cond_timedwait(&f->cond, &f->lock, &ts);
		over = f->locked.err || f->locked.verifier_done;
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

/* Once every stage is joined: what they recorded into res. Returns the
 * first failure (0: none). */
static int collect(struct flash *f, double t0)
{
	struct nf_flash_result *res = f->res;

	res->stage = f->locked.stage;
	memcpy(res->detail, f->locked.detail, sizeof(res->detail));
	res->have_bad_offset = f->locked.have_bad_offset;
	res->bad_offset = f->locked.bad_offset;
	res->zero_rewrites = f->locked.zero_rewrites;
	res->zero_rewrite_at = f->locked.zero_rewrite_at;
	if (res->zero_rewrites)
		snprintf(res->zero_plan, sizeof(res->zero_plan), "zero runs: %u block(s) made without writing did not "
			 "read back as zeros (the first at offset %llu): rewritten with zeros, and zeros written from then "
			 "on", res->zero_rewrites, (unsigned long long)res->zero_rewrite_at);
	else
		snprintf(res->zero_plan, sizeof(res->zero_plan), "%s", f->tgt.zero_note);
	res->stalls = f->writer.stalls;
	res->max_stall_s = f->writer.max_stall_s;
	res->max_stall_at = f->writer.max_stall_at;
	res->touched = f->writer.touched;
	res->source_bytes = atomic_load(&f->src_read);
	res->skipped_bytes = atomic_load(&f->skipped);
	res->written_bytes = atomic_load(&f->written) - res->skipped_bytes;
	res->reconnects = f->src ? nf_source_reconnects(f->src) : 0;
	res->t_read = f->reader.t;
	res->t_decode = f->decoder.t;
	res->t_write = f->writer.t;
	res->t_verify = f->verifier.t;
	res->t_total = flash_now() - t0;
	return f->locked.err;
}

static void teardown(struct flash *f)
{
	nf_decoder_free(f->dec);
	nf_ring_destroy(&f->ring);
	for (unsigned i = 0; i < NCHUNKS; i++)
		free(f->chunks[i].buf);
	free(f->writer.head);
	free(f->writer.head_check);
	free(f->writer.zeros);
	free(f->locked.sums);
	free(f->decoder.before_buf);
	EVP_MD_CTX_free(f->writer.sha);
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
	r = flash_probe(&f, &res->format);
	if (r < 0)
		goto out;
	r = nf_target_open(&f.tgt, o->target, o->allow_partition, detail, sizeof(detail));
	if (r < 0) {
		/* A card that cannot be written stays so: its own stage, which the
		 * master treats as final (no retries, like a failed probe). */
		flash_fail(&f, r, r == -EROFS || r == -EACCES ? NF_STAGE_READ_ONLY : NF_STAGE_TARGET, "%s", detail);
		goto out;
	}
	r = flash_check_size(&f);
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
	res->stall_limit_s = flash_stall_limit(&f);
	run_pipeline(&f, t0);
	if (!f.locked.err)
		flash_finalize(&f);
	report(&f, t0);
out:
	r = collect(&f, t0);
	teardown(&f);
	return r;
}
