/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The readback verifier: a stage that reads back every block behind the
 * writer and compares it with the hash the writer recorded, the final
 * re-read of each block's first 4 KiB, and what a bad block holds instead. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

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
	b = f->locked.sums[idx];
	n = f->locked.nhashes;
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
		int same = j != idx && f->locked.sums[j].sample == got;
		pthread_mutex_unlock(&f->lock);
		if (same) {
			snprintf(out, cap, "it reads back the image's block at offset %llu: writes land at other "
				 "addresses, as on a fake-capacity card", (unsigned long long)j * NF_BLOCK);
			return;
		}
	}
	snprintf(out, cap, "it reads back data that is neither the image nor what the card held there before");
}

/* Block off (len bytes) was made without writing and did not read back as
 * zeros: a card whose DISCARD or erase keeps old data for some ranges
 * (bmaptool saw it: intel/bmap-tools#128). That is no bad block: write its
 * zeros as data, read it back into buf and *got, and make the target write
 * zeros from now on (once per card; said in the result). A block not made
 * that way is left alone. Returns 0, or -errno after flash_fail() when the
 * rewrite itself fails. */
static int rewrite_zeroed(struct flash *f, uint8_t *buf, uint64_t off, size_t len, XXH128_hash_t *got)
{
	size_t rlen = (len + f->tgt.align - 1) / f->tgt.align * f->tgt.align;
	ssize_t n;
	int zeroed, r;

	pthread_mutex_lock(&f->lock);
	zeroed = f->locked.sums[off / NF_BLOCK].zeroed;
	pthread_mutex_unlock(&f->lock);
	if (!zeroed)
		return 0;
	nf_target_zero_failed(&f->tgt, off);
	if ((r = nf_target_write_zeros(&f->tgt, off, len, f->writer.zeros)) < 0) {
		flash_fail(f, r, NF_STAGE_WRITE, "cannot write zeros to '%s' at offset %llu: %s", f->tgt.path,
			   (unsigned long long)off, strerror(-r));
		return r;
	}
	if ((n = nf_target_read(&f->tgt, buf, rlen, off)) < (ssize_t)len) {
		r = n < 0 ? (int)n : -EIO;
		flash_fail(f, r, NF_STAGE_VERIFY, "cannot read back '%s' at offset %llu: %s", f->tgt.path,
			   (unsigned long long)off, n < 0 ? strerror(-r) : "it ends there");
		return r;
	}
	*got = XXH3_128bits(buf, len);
	pthread_mutex_lock(&f->lock);
	if (f->locked.zero_rewrites++ == 0)
		f->locked.zero_rewrite_at = off;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* Reads back one block at off and compares it with the writer's hash.
 * Returns 0, or a negative errno after flash_fail(). */
int flash_verify_block(struct flash *f, uint8_t *buf, uint64_t off, size_t len)
{
	size_t rlen = (len + f->tgt.align - 1) / f->tgt.align * f->tgt.align;
	ssize_t n = nf_target_read(&f->tgt, buf, rlen, off);
	XXH128_hash_t want, got;

	if (n < 0) {
		flash_fail(f, (int)n, NF_STAGE_VERIFY, "cannot read back '%s' at offset %llu: %s",
			   f->tgt.path, (unsigned long long)off, strerror((int)-n));
		return (int)n;
	}
	pthread_mutex_lock(&f->lock);
	want = f->locked.sums[off / NF_BLOCK].full;
	pthread_mutex_unlock(&f->lock);
	if ((size_t)n < len) {
		flash_bad_offset(f, off + (uint64_t)n);
		flash_fail(f, -EIO, NF_STAGE_VERIFY, "verification failed: '%s' ends at offset %llu, inside the image",
			   f->tgt.path, (unsigned long long)(off + (uint64_t)n));
		return -EIO;
	}
	got = XXH3_128bits(buf, len);
	if (!XXH128_isEqual(want, got) && rewrite_zeroed(f, buf, off, len, &got) < 0)
		return -EIO;
	if (!XXH128_isEqual(want, got)) {
		char what[200];

		describe_readback(f, (size_t)(off / NF_BLOCK), buf, len, what, sizeof(what));
		flash_bad_offset(f, off);
		flash_fail(f, -EIO, NF_STAGE_VERIFY, "verification failed: '%s' does not hold the image's 1 MiB block at "
			   "offset %llu: %s", f->tgt.path, (unsigned long long)off, what);
		return -EIO;
	}
	return 0;
}

void *flash_verifier_main(void *arg)
{
	struct flash *f = arg;
	uint8_t *buf = aligned_alloc(4096, NF_BLOCK + 4096);
	uint64_t pos = NF_BLOCK; /* the head is verified when it is written, last */
	double busy = 0;

	if (!buf) {
		flash_fail(f, -ENOMEM, NF_STAGE_VERIFY, "out of memory");
		return NULL;
	}
	for (;;) {
		uint64_t limit;
		int done;

		pthread_mutex_lock(&f->lock);
		while (!f->locked.err && f->locked.flushed <= pos && !f->locked.writer_done)
			pthread_cond_wait(&f->cond, &f->lock);
		limit = f->locked.flushed;
		done = f->locked.writer_done;
		pthread_mutex_unlock(&f->lock);
		if (flash_failed(f))
			break;
		double t0 = flash_now();
		for (; pos < limit; pos += NF_BLOCK) {
			size_t len = limit - pos < NF_BLOCK ? (size_t)(limit - pos) : NF_BLOCK;

			if (flash_failed(f) || flash_verify_block(f, buf, pos, len) < 0)
				break;
			atomic_store(&f->verified, pos + len);
		}
		busy += flash_now() - t0;
		if (flash_failed(f) || (done && pos >= limit))
			break;
	}
	f->verifier.t = busy;
	pthread_mutex_lock(&f->lock);
	f->locked.verifier_done = 1;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	free(buf);
	return NULL;
}

/* Each block was read back soon after it was written. A card that keeps
 * less than it claims (or remaps blocks) can let a later write land on an
 * earlier, already verified block. So once every block is written, read
 * the first SAMPLE bytes of every block again: a block a later write
 * overwrote no longer matches. The head (block 0) is written and verified
 * after this. Returns 0 or -EIO after flash_fail(). */
int flash_recheck_samples(struct flash *f)
{
	uint8_t *buf = aligned_alloc(4096, SAMPLE + 4096);
	size_t rlen = (SAMPLE + f->tgt.align - 1) / f->tgt.align * f->tgt.align;
	double t0 = flash_now();
	int r = 0;

	if (!buf) {
		flash_fail(f, -ENOMEM, NF_STAGE_VERIFY, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 1; i < f->locked.nhashes && r == 0; i++) {
		uint64_t off = (uint64_t)i * NF_BLOCK;
		size_t len = f->locked.image_size - off < SAMPLE ? (size_t)(f->locked.image_size - off) : SAMPLE;
		ssize_t n = nf_target_read(&f->tgt, buf, rlen, off);

		if (n < (ssize_t)len) {
			r = n < 0 ? (int)n : -EIO;
			flash_fail(f, r, NF_STAGE_VERIFY, "cannot read back '%s' at offset %llu after the last write: %s",
				   f->tgt.path, (unsigned long long)off, n < 0 ? strerror((int)-n) : "it ends there");
		} else if (XXH3_64bits(buf, len) != f->locked.sums[i].sample) {
			char what[200];

			describe_readback(f, i, buf, len, what, sizeof(what));
			r = -EIO;
			flash_bad_offset(f, off);
			flash_fail(f, r, NF_STAGE_VERIFY, "verification failed: '%s' no longer holds the image at offset %llu "
				   "once everything was written (it did when that block was written): %s",
				   f->tgt.path, (unsigned long long)off, what);
		}
	}
	free(buf);
	f->verifier.t += flash_now() - t0;
	f->res->t_recheck = flash_now() - t0;
	return r;
}
