/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The card (or a file standing in for one): opening it safely and the
 * primitive writes the flash engine needs. */
#ifndef NETFLASH_TARGET_H
#define NETFLASH_TARGET_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How a run of zero blocks is made to read back as zeros. Not BLKZEROOUT:
 * the kernel then writes the zeros itself where the device has no
 * write-zeroes (block/ioctl.c, Linux 6.1), which on an SD card is always
 * (drivers/mmc/core/queue.c offers write-zeroes only for eMMC TRIM on a
 * card that erases to 0x00). */
enum nf_zero_method {
	NF_ZERO_WRITE,        /* zeros are written like data */
	NF_ZERO_PUNCH,        /* regular file: punch a hole */
	NF_ZERO_WRITE_ZEROES, /* block device whose queue offers write-zeroes:
			       * fallocate(PUNCH_HOLE|KEEP_SIZE), which the kernel
			       * never turns into written zeros (block/fops.c) */
	NF_ZERO_DISCARD,      /* block device with discard (an SD card's ERASE or
			       * DISCARD): the granularity-aligned part of a run is
			       * discarded, the rest written */
};

struct nf_target {
	int wfd;        /* writes; O_DIRECT when direct_w */
	int bfd;        /* buffered writes of unaligned tails */
	int rfd;        /* readback; O_DIRECT when direct_r */
	int is_blk, direct_w, direct_r;
	uint64_t size;  /* device size; UINT64_MAX for a regular file (it grows) */
	uint64_t initial_size; /* regular file: size before we started */
	unsigned align; /* alignment O_DIRECT needs for offsets, lengths, buffers */
	enum nf_zero_method zero;
	int zero_checked;        /* the method was tried on a marker and read back as zeros */
	/* Set by another thread (the verifier) when a block made without
	 * writing did not read back as zeros: the next nf_target_zero()
	 * switches to NF_ZERO_WRITE. UINT64_MAX: not set; else the offset. */
	_Atomic uint64_t zero_failed_at;
	uint64_t discard_granularity; /* bytes; NF_ZERO_DISCARD only */
	uint8_t *check_buf;      /* for that read-back */
	size_t check_cap;
	char zero_note[200];     /* one line: how zero runs were made, and why */
	char path[PATH_MAX];
};

/* Initialises t to the closed state (so nf_target_close() is safe). */
void nf_target_init(struct nf_target *t);

/* Opens path for flashing after the safety checks: a block device must not
 * be mounted, used as swap, held by another device (dm, md), hold the running
 * root filesystem or be read-only, and must be a whole disk unless
 * allow_partition. A missing path under /dev is an error; elsewhere a regular
 * file is created. Returns 0, or a negative errno with a one-line reason in
 * detail: -EBUSY (mounted, root, in use), -EROFS, -ENODEV, -EINVAL
 * (partition, unsupported file type). */
int nf_target_open(struct nf_target *t, const char *path, int allow_partition,
		   char *detail, size_t cap);

/* Writes len bytes at off in full (EINTR, short writes). buf must be aligned
 * to t->align when the write is direct; unaligned lengths or offsets go
 * through the buffered descriptor. Returns 0 or a negative errno. */
int nf_target_write(struct nf_target *t, const void *buf, size_t len, uint64_t off);

/* Makes [off, off+len) read back as zeros, the cheapest way the target
 * allows (see enum nf_zero_method), decided once per target on a region
 * whose old content is known: before the first run is made without
 * writing, a marker is written (and flushed) over its first part, that part
 * is zeroed the target's way and read back. A card that erases to 0xFF or
 * keeps old data after DISCARD (data after DISCARD is indeterminate: SD
 * Physical Layer spec 4.3.5; bmaptool saw stale sectors, intel/bmap-tools
 * #128) shows the marker or ones, and zeros are written from then on
 * (t->zero_note says which and why). Reading back a run that held zeros
 * already would prove nothing, which is why the marker. zeros must point
 * at len zero bytes, aligned to t->align, for the write fallback.
 * *skipped: the bytes of the run not written as data. Returns 0 or a
 * negative errno. */
int nf_target_zero(struct nf_target *t, uint64_t off, size_t len, const void *zeros, uint64_t *skipped);

/* Another thread saw a block made without writing at off read back as
 * something other than zeros: from the next run on, zeros are written
 * (thread-safe; the first offset reported is kept). */
void nf_target_zero_failed(struct nf_target *t, uint64_t off);

/* Writes len zero bytes at off from zeros (aligned, at least len bytes) as
 * data, whatever t->zero says, and flushes them to the device, so the
 * range holds zeros on the medium before anything after it is written.
 * Returns 0 or a negative errno. */
int nf_target_write_zeros(struct nf_target *t, uint64_t off, size_t len, const void *zeros);

/* Flushes written data to stable storage and drops cached pages of
 * [off, off+len) so that readback comes from the device. Returns 0 or -errno. */
int nf_target_flush(struct nf_target *t, uint64_t off, uint64_t len);

/* Reads up to len bytes at off for verification (buf aligned to t->align).
 * Returns the count read (short at the end of the target) or -errno. */
ssize_t nf_target_read(struct nf_target *t, void *buf, size_t len, uint64_t off);

/* Regular file: extends it to size if it is shorter, so zero blocks skipped
 * past its end read back as holes. Block device: no-op. Returns 0 or -errno. */
int nf_target_extend(struct nf_target *t, uint64_t size);

/* The whole disk of block device dev: itself, or the parent of a
 * partition (*is_partition says which), from sysfs. */
dev_t nf_whole_disk(dev_t dev, int *is_partition);

/* Closes all descriptors; safe on an initialised, unopened target. */
void nf_target_close(struct nf_target *t);

#endif
