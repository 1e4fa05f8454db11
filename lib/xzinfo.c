/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "xzinfo.h"

#include <errno.h>
#include <lzma.h>
#include <stdlib.h>

#define XZINFO_BUF (64u << 10)
#define XZINFO_MEMLIMIT (64ull << 20) /* index memory: ~ 16 bytes a block */

int nf_xz_info(nf_pread_fn pread_fn, void *ctx, uint64_t file_size, struct nf_xz_index *out)
{
	lzma_index_iter it;
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_index *idx = NULL;
	uint8_t *buf = malloc(XZINFO_BUF);
	uint64_t pos = 0;
	lzma_ret ret;
	int r = -EBADMSG;

	if (!buf)
		return -ENOMEM;
	if (lzma_file_info_decoder(&s, &idx, XZINFO_MEMLIMIT, file_size) != LZMA_OK)
		goto out;
	for (;;) {
		if (s.avail_in == 0) {
			ssize_t n = pread_fn(ctx, buf, XZINFO_BUF, pos);

			if (n < 0) {
				r = (int)n;
				goto out;
			}
			s.next_in = buf;
			s.avail_in = (size_t)n;
			pos += (uint64_t)n;
		}
		/* lzma asks for the bytes it wants next (footer, index, headers). */
		ret = lzma_code(&s, LZMA_RUN);
		if (ret == LZMA_SEEK_NEEDED) {
			pos = s.seek_pos;
			s.avail_in = 0;
			continue;
		}
		if (ret == LZMA_STREAM_END)
			break;
		if (ret != LZMA_OK) {
			r = ret == LZMA_MEM_ERROR || ret == LZMA_MEMLIMIT_ERROR ? -ENOMEM : -EBADMSG;
			goto out;
		}
	}
	*out = (struct nf_xz_index){ .size = lzma_index_uncompressed_size(idx),
				     .blocks = lzma_index_block_count(idx) };
	lzma_index_iter_init(&it, idx);
	while (!lzma_index_iter_next(&it, LZMA_INDEX_ITER_BLOCK)) {
		if (it.block.uncompressed_size > out->max_block)
			out->max_block = it.block.uncompressed_size;
		if (it.block.total_size > out->max_block_in)
			out->max_block_in = it.block.total_size;
	}
	r = 0;
out:
	lzma_index_end(idx, NULL);
	lzma_end(&s);
	free(buf);
	return r;
}

uint64_t nf_xz_thread_mem(const struct nf_xz_index *x)
{
	uint64_t dict = x->max_block < (8ull << 20) ? x->max_block : (8ull << 20);

	return x->max_block + x->max_block_in + dict;
}
