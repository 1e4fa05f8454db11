/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A provisioning patch: the sectors of an image's FAT boot partition that
 * differ once the per-worker files (firstrun.sh, userconf.txt, user-data,
 * ...) are in it. The master makes it at enroll time with mtools, the worker
 * writes it after the image is verified and reads it back; neither side
 * parses FAT at flash time.
 *
 * Extents are kept in ascending order and maximal (adjacent ones merge), so
 * the digest of a patch does not depend on how it was sent. The digest is
 * SHA-256 over, per extent: offset (u64 LE), length (u32 LE), the bytes. */
#ifndef NETFLASH_PATCH_H
#define NETFLASH_PATCH_H

#include <stddef.h>
#include <stdint.h>

#define NF_PATCH_MAX (128u << 10)   /* bytes of data in one patch */
#define NF_PATCH_EXTENTS_MAX 4096
#define NF_PATCH_LINE 256           /* data bytes per PATCH message */

struct nf_patch_extent {
	uint64_t off;
	uint32_t len;
	uint8_t *data;
};

struct nf_patch {
	struct nf_patch_extent *ext;
	size_t n, cap;
	uint64_t bytes;                 /* sum of the extents' lengths */
	uint8_t base_sha256[32];        /* the image it applies to (files only) */
};

void nf_patch_init(struct nf_patch *p);
void nf_patch_free(struct nf_patch *p);

/* Appends len bytes at off. off must not be below the end of the last
 * extent; a run that starts where the last ends extends it. Returns 0,
 * -EINVAL (out of order, empty), -EOVERFLOW, -EFBIG (over NF_PATCH_MAX or
 * too many extents) or -ENOMEM. */
int nf_patch_add(struct nf_patch *p, uint64_t off, const void *data, size_t len);

/* The digest described above; an empty patch has the digest of no bytes. */
void nf_patch_digest(const struct nf_patch *p, uint8_t out[32]);

/* The file form (master side, netflash-write --patch): "NFPATCH1", the base
 * image's SHA-256, the extent count (u32 LE), the extents as in the digest.
 * Save is atomic with mode 0600 (a patch may hold password hashes and Wi-Fi
 * keys). Load checks every bound and rejects trailing bytes: -EBADMSG. */
int nf_patch_save(const struct nf_patch *p, const char *path);
int nf_patch_load(struct nf_patch *p, const char *path);

#endif
