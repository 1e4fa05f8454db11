/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The FAT boot partition of a catalog image, as the master reads it with
 * mtools (nothing is mounted). */
#ifndef NETFLASH_BOOTPART_H
#define NETFLASH_BOOTPART_H

#include <stddef.h>
#include <stdint.h>

#include "run.h"

struct master;
struct nf_manifest;

/* Finds the first FAT partition of the image and writes its bytes to
 * out_path (sparse: zero blocks become holes; mode 0600), with its byte
 * offset and length in the image. Returns 0, or -errno with a one-line
 * reason in detail: -EBADMSG (no MBR with a FAT partition), the decoder's
 * errors. */
int master_boot_partition(const struct master *m, const struct nf_manifest *man, const char *out_path,
			  uint64_t *off, uint64_t *len, char *detail, size_t cap);

/* Copies /etc/passwd out of the image's root file system to out_path:
 * from each ext2/3/4 partition of its MBR or GPT in turn (found with
 * libfdisk; logical partitions are not seen) until one has it. A
 * partition's sparse copy is out_path.root, in work (the directory whose
 * free space is checked), removed after; debugfs (e2fsprogs) reads it
 * unmounted, and a killed run leaves it for the next. Returns 0, or -errno
 * with a one-line reason in detail: -ENOENT (no ext partition, or none
 * with /etc/passwd), -EIO (debugfs cannot read a file system: its words),
 * -ENOSPC (work has less free space than a partition's size), the
 * decoder's errors. */
int master_image_passwd(const struct master *m, const struct nf_manifest *man, const char *work, const char *out_path,
			char *detail, size_t cap);

#endif
