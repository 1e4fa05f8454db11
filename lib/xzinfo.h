/* Reads an xz file's index (from its end, with positioned reads): the exact
 * decoded size and the number of blocks, without decoding anything. */
#ifndef NETFLASH_XZINFO_H
#define NETFLASH_XZINFO_H

#include <stdint.h>
#include <sys/types.h>

/* Positioned read callback: up to len bytes at off; count, 0 at end, -errno. */
typedef ssize_t (*nf_pread_fn)(void *ctx, void *buf, size_t len, uint64_t off);

/* Fills *size (decoded bytes) and *blocks. Returns 0, -EBADMSG when the
 * index is corrupt or the file truncated, -ENOMEM, or pread's error. */
int nf_xz_info(nf_pread_fn pread_fn, void *ctx, uint64_t file_size,
	       uint64_t *size, uint64_t *blocks);

#endif
