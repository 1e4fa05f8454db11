/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Reads an xz file's index (from its end, with positioned reads): the exact
 * decoded size and the number of blocks, without decoding anything. */
#ifndef NETFLASH_XZINFO_H
#define NETFLASH_XZINFO_H

#include <stdint.h>
#include <sys/types.h>

/* Positioned read callback: up to len bytes at off; count, 0 at end, -errno. */
typedef ssize_t (*nf_pread_fn)(void *ctx, void *buf, size_t len, uint64_t off);

struct nf_xz_index {
	uint64_t size;            /* decoded bytes */
	uint64_t blocks;          /* blocks in the index (>1: decodes in parallel) */
	uint64_t max_block;       /* the largest block, decoded bytes */
	uint64_t max_block_in;    /* the largest block's stored bytes (with its header) */
};

/* Fills *out from the file's index. Returns 0, -EBADMSG when the index is
 * corrupt or the file truncated, -ENOMEM, or pread's error. */
int nf_xz_info(nf_pread_fn pread_fn, void *ctx, uint64_t file_size, struct nf_xz_index *out);

/* Roughly what liblzma's threaded decoder holds per thread for the largest
 * block of x (its input and output buffers and an LZMA2 dictionary, taken
 * as min(block, 8 MiB), xz -6's): bytes. For choosing and explaining the
 * thread count; liblzma itself enforces the limit. */
uint64_t nf_xz_thread_mem(const struct nf_xz_index *x);

#endif
