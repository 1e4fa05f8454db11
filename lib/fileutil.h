/* SPDX-License-Identifier: GPL-2.0-or-later */
/* File helpers: atomic replacement, bounded reads, random tokens. */
#ifndef NETFLASH_FILEUTIL_H
#define NETFLASH_FILEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A positioned-read callback over a file descriptor (ctx: int *), the
 * nf_pread_fn of xzinfo.h and decode.h: up to len bytes at off, across
 * EINTR. Returns the count (0 at the end) or -errno. */
ssize_t nf_pread_fd(void *ctx, void *buf, size_t len, uint64_t off);

/* Writes all len bytes of data to fd at its offset, across EINTR and short
 * writes. Returns 0 or -errno. */
int nf_write_full(int fd, const void *data, size_t len);

/* Replaces path with len bytes of data atomically: a temp file beside it,
 * fsync, rename, fsync of the directory. Returns 0 or -errno. */

int nf_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Reads a whole file of at most max bytes into buf (capacity max + 1) and
 * NUL-terminates it. Returns its length, -EFBIG if longer, or -errno. */
ssize_t nf_read_file(const char *path, char *buf, size_t max);
/* One sysfs (or /proc/device-tree) attribute dir/name into out, trimmed of
 * trailing newlines, spaces and NULs (device-tree strings end in one), with
 * bytes outside printable ASCII as '?': the text goes into protocol lines.
 * out is empty when the attribute is absent or unreadable. */
void nf_read_attr(const char *dir, const char *name, char *out, size_t cap);

#define NF_COPY_EXCL 1     /* fail if dst exists (else truncate it) */
#define NF_COPY_NOFOLLOW 2 /* refuse a symlink as src */

/* Copies the regular file sdir/src to ddir/dst (dirs may be AT_FDCWD) with
 * the given mode, handling short writes, and fsyncs it. Returns 0 or -errno. */
int nf_copy_at(int sdir, const char *src, int ddir, const char *dst, int flags, mode_t mode);

/* Fills out with 2*nbytes lower-case hex characters of kernel randomness
 * (getrandom) and a NUL. Returns 0 or -errno. */
int nf_random_hex(char *out, size_t nbytes);

#endif
