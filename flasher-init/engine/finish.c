/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Finishing, once every block is written and verified: the stream's digest
 * against the catalog's, the re-read of every block's first 4 KiB, the
 * provisioning patch, then the first MiB, last. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

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

			if (e->off < NF_BLOCK || e->off + e->len > f->locked.image_size) {
				flash_fail(f, -EINVAL, NF_STAGE_PATCH, "the provisioning patch writes %u bytes at offset %llu, "
					   "outside the image's %llu bytes past its first MiB", e->len,
					   (unsigned long long)e->off, (unsigned long long)f->locked.image_size);
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
				flash_bad_offset(f, e->off);
				flash_fail(f, r, NF_STAGE_PATCH, "the provisioning patch does not read back from '%s' at offset %llu",
					   f->tgt.path, (unsigned long long)e->off);
			}
			free(buf);
		}
		if (r == 0 && pass == 0 && (r = nf_target_flush(&f->tgt, NF_BLOCK, f->locked.image_size - NF_BLOCK)) < 0)
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

	if (f->writer.head_len <= first || f->writer.head_len % f->tgt.align) {
		r = nf_target_write(&f->tgt, f->writer.head, f->writer.head_len, 0);
		return r < 0 ? r : nf_target_flush(&f->tgt, 0, f->writer.head_len);
	}
	r = nf_target_write(&f->tgt, f->writer.head + first, f->writer.head_len - first, first);
	if (r == 0)
		r = nf_target_flush(&f->tgt, first, f->writer.head_len - first);
	if (r == 0)
		r = nf_target_write(&f->tgt, f->writer.head, first, 0);
	return r < 0 ? r : nf_target_flush(&f->tgt, 0, first);
}

int flash_finalize(struct flash *f)
{
	struct nf_flash_result *res = f->res;
	unsigned int mdlen = 0;
	uint8_t *buf = NULL;
	int r;

	EVP_DigestFinal_ex(f->writer.sha, res->sha256, &mdlen);
	res->image_bytes = f->locked.image_size;
	if (f->o->have_expect_sha256 && memcmp(res->sha256, f->o->expect_sha256, 32) != 0) {
		flash_fail(f, -EBADMSG, NF_STAGE_VERIFY, "'%s' is not the expected image: its SHA-256 differs from --expect-sha256",
			   f->o->source);
		return -EBADMSG;
	}
	if (f->o->expect_size && f->locked.image_size != f->o->expect_size) {
		flash_fail(f, -EBADMSG, NF_STAGE_VERIFY, "'%s' decoded to %llu bytes, expected %llu", f->o->source,
			   (unsigned long long)f->locked.image_size, (unsigned long long)f->o->expect_size);
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
	r = flash_verify_block(f, buf, 0, f->writer.head_len);
	f->verifier.t += flash_now() - t0;
	free(buf);
	if (r == 0)
		atomic_store(&f->verified, f->locked.image_size);
	return r;
}
