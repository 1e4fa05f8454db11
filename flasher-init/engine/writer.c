/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The writer stage: takes decoded chunks, hashes them (SHA-256 of the
 * stream, XXH3 per block), wipes the head before the first byte, writes
 * data runs and makes zero runs, and flushes every FLUSH_EVERY bytes so the
 * verifier can read behind it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "scan.h"

/* Records block index's hashes (full, sample) and, if have_before, the
 * sample hash of what the card held there before. Returns 0 or -ENOMEM. */
static int store_hash(struct flash *f, size_t index, XXH128_hash_t h, uint64_t sample, int have_before,
		      uint64_t before)
{
	int r = 0;

	pthread_mutex_lock(&f->lock);
	if (index >= f->locked.hcap) {
		size_t cap = f->locked.hcap ? f->locked.hcap * 2 : 1024;
		struct block_sum *p;

		while (cap <= index)
			cap *= 2;
		if ((p = realloc(f->locked.sums, cap * sizeof(*p)))) {
			f->locked.sums = p;
			f->locked.hcap = cap;
		} else {
			r = -ENOMEM;
		}
	}
	if (r == 0) {
		f->locked.sums[index] = (struct block_sum){ .full = h, .sample = sample, .before = before,
						     .has_before = have_before };
		if (index >= f->locked.nhashes)
			f->locked.nhashes = index + 1;
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
	for (uint64_t b = off / NF_BLOCK; b < (off + len + NF_BLOCK - 1) / NF_BLOCK && b < f->locked.nhashes; b++)
		f->locked.sums[b].zeroed = 1;
	pthread_mutex_unlock(&f->lock);
}

double flash_stall_limit(const struct flash *f)
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
		if (dt > f->writer.max_stall_s) {
			f->writer.max_stall_s = dt;
			f->writer.max_stall_at = c->off + i;
		}
		if (dt >= flash_stall_limit(f))
			f->writer.stalls++;
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
	size_t rlen;
	ssize_t n;
	int r;

	if (f->tgt.size < len)
		len = f->tgt.size & ~511ull;
	/* A regular file holds nothing past its old end: a new or short file
	 * is not grown by the wipe (the image's own writes grow it). */
	if (!f->tgt.is_blk && f->tgt.initial_size < len)
		len = f->tgt.initial_size;
	if (!len)
		return 0;
	rlen = (size_t)((len + f->tgt.align - 1) / f->tgt.align * f->tgt.align);
	r = nf_target_write_zeros(&f->tgt, 0, (size_t)len, f->writer.zeros);
	if (r < 0) {
		flash_fail(f, r, NF_STAGE_WRITE, "cannot wipe the first MiB of '%s': %s", f->tgt.path, strerror(-r));
		return r;
	}
	n = nf_target_read(&f->tgt, f->writer.head_check, rlen, 0);
	if (n < (ssize_t)len || !nf_is_zero(f->writer.head_check, (size_t)len)) {
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
	EVP_DigestUpdate(f->writer.sha, c->buf, c->len);
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
		f->writer.head_len = c->len < NF_BLOCK ? c->len : NF_BLOCK;
		memcpy(f->writer.head, c->buf, f->writer.head_len);
		f->writer.touched = 1;
		if (wipe_head(f) < 0)
			return -EIO;
		from = f->writer.head_len;
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
	f->locked.flushed = end;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	*last_flush = end;
	return 0;
}

void *flash_writer_main(void *arg)
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
		f->locked.image_size = end;
		f->locked.writer_done = 1;
		pthread_cond_broadcast(&f->cond);
		pthread_mutex_unlock(&f->lock);
	}
	f->writer.t = flash_now() - t0 - wait;
	return NULL;
}
