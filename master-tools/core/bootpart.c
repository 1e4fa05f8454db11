/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bootpart.h"
#include "run.h"

#include <errno.h>
#include <libfdisk/libfdisk.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "manifest.h"
#include "master.h"
#include "scan.h"

#define MAX_BOOT_PART (2ull << 30)
#define HOLE_BLOCK 65536

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Finds the first FAT partition in an MBR. Returns 0 or -EBADMSG. */
static int find_fat(const uint8_t mbr[512], uint64_t image_size, uint64_t *off, uint64_t *len)
{
	if (mbr[510] != 0x55 || mbr[511] != 0xaa)
		return -EBADMSG;
	for (int i = 0; i < 4; i++) {
		const uint8_t *e = mbr + 446 + 16 * i;
		uint8_t type = e[4];
		uint64_t start = (uint64_t)le32(e + 8) * 512, size = (uint64_t)le32(e + 12) * 512;

		if (type != 0x0b && type != 0x0c && type != 0x0e && type != 0x06 && type != 0x04 && type != 0x01)
			continue;
		if (size == 0 || size > MAX_BOOT_PART || start > image_size || size > image_size - start)
			return -EBADMSG;
		*off = start;
		*len = size;
		return 0;
	}
	return -EBADMSG;
}

/* 1 when the 512 bytes at p are a FAT boot sector (0x55aa, and "FAT" where
 * FAT12/16 or FAT32 name their type). */
static int fat_boot_sector(const uint8_t *p)
{
	return p[510] == 0x55 && p[511] == 0xaa && (memcmp(p + 0x36, "FAT", 3) == 0 || memcmp(p + 0x52, "FAT", 3) == 0);
}

/* GPT types a Pi's FAT boot partition has: EFI System and Microsoft basic
 * data (osbuild/bootc-image-builder#701 writes the former). */
static int fat_gpt_type(const char *guid)
{
	return guid && (strcasecmp(guid, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B") == 0 ||
			strcasecmp(guid, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7") == 0);
}

/* A range read into memory: the decoder may hand it over in pieces. */
struct mem_out {
	uint8_t *p;
	size_t pos;
};

static int sink_mem(void *ctx, const void *buf, size_t len)
{
	struct mem_out *o = ctx;

	memcpy(o->p + o->pos, buf, len);
	o->pos += len;
	return 0;
}

struct sparse_out {
	int fd;
	uint64_t pos;
};

/* Writes data, leaving whole zero blocks as holes. */
static int sink_sparse(void *ctx, const void *buf, size_t len)
{
	static const uint8_t zero[HOLE_BLOCK];
	struct sparse_out *o = ctx;
	const uint8_t *p = buf;

	while (len) {
		size_t n = len < HOLE_BLOCK ? len : HOLE_BLOCK;

		if (n < HOLE_BLOCK || memcmp(p, zero, n) != 0) {
			if (pwrite(o->fd, p, n, (off_t)o->pos) != (ssize_t)n)
				return -EIO;
		}
		o->pos += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* The image's first MiB, decoded into tmp: a sparse file of the image's
 * size, which libfdisk (util-linux) reads as a disk. A GPT's backup table
 * is not there; libfdisk takes the primary when it is whole. Returns 0 or
 * -errno. */
static int head_file(const char *img, const struct nf_manifest *man, const char *tmp)
{
	const uint64_t head = 1u << 20;
	struct sparse_out o = { .fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) };
	char why[300];

	if (o.fd < 0)
		return -errno;
	if (nf_image_range(img, 0, man->image_size < head ? man->image_size : head, sink_sparse, &o, why, sizeof(why)) < 0 ||
	    ftruncate(o.fd, (off_t)man->image_size) < 0) {
		close(o.fd);
		unlink(tmp);
		return -EIO;
	}
	close(o.fd);
	return 0;
}

/* Whether a partition (its table entry, byte offset and length inside
 * the image) is the one looked for: 1 or 0. */
typedef int (*part_match_fn)(const char *img, struct fdisk_partition *pa, uint64_t start, uint64_t size, void *ctx);

/* The first partition in the image's table (read by libfdisk from its
 * first MiB, decoded into tmp; gpt_only: only a GPT's) that lies inside
 * the image and that match (given ctx) takes. Logical partitions, whose
 * tables lie past the first MiB, are not seen. Returns 0 with its byte offset and
 * length, -ENOENT, or -errno. */
static int first_partition(const char *img, const struct nf_manifest *man, const char *tmp, int gpt_only,
			   part_match_fn match, void *ctx, uint64_t *off, uint64_t *len)
{
	struct fdisk_context *cxt = NULL;
	struct fdisk_table *tb = NULL;
	int r;

	if ((r = head_file(img, man, tmp)) < 0)
		return r;
	r = -ENOENT;
	if ((cxt = fdisk_new_context()) && fdisk_assign_device(cxt, tmp, 1) == 0 &&
	    (gpt_only ? fdisk_is_labeltype(cxt, FDISK_DISKLABEL_GPT) : fdisk_has_label(cxt)) &&
	    fdisk_get_partitions(cxt, &tb) == 0) {
		struct fdisk_iter *it = fdisk_new_iter(FDISK_ITER_FORWARD);
		struct fdisk_partition *pa;
		unsigned long ss = fdisk_get_sector_size(cxt);

		while (it && r == -ENOENT && fdisk_table_next_partition(tb, it, &pa) == 0) {
			uint64_t start = (uint64_t)fdisk_partition_get_start(pa) * ss;
			uint64_t size = (uint64_t)fdisk_partition_get_size(pa) * ss;

			if (size == 0 || start > man->image_size || size > man->image_size - start ||
			    !match(img, pa, start, size, ctx))
				continue;
			*off = start;
			*len = size;
			r = 0;
		}
		fdisk_free_iter(it);
	}
	fdisk_unref_table(tb);
	fdisk_unref_context(cxt);
	unlink(tmp);
	return r;
}

/* A FAT boot partition in a GPT: a FAT type, and a FAT boot sector first. */
static int fat_in_gpt(const char *img, struct fdisk_partition *pa, uint64_t start, uint64_t size, void *ctx)
{
	struct fdisk_parttype *t = fdisk_partition_get_type(pa);
	uint8_t bs[512];
	struct mem_out mo = { bs, 0 };
	char why[300];

	(void)ctx;
	return t && fat_gpt_type(fdisk_parttype_get_string(t)) && size <= MAX_BOOT_PART &&
	       nf_image_range(img, start, sizeof(bs), sink_mem, &mo, why, sizeof(why)) == 0 && fat_boot_sector(bs);
}

/* The ext2/3/4 file system after *ctx others (counted down): 0xEF53 at
 * byte 56 of its superblock, which starts 1024 bytes in. */
static int ext_fs(const char *img, struct fdisk_partition *pa, uint64_t start, uint64_t size, void *ctx)
{
	int *skip = ctx;
	uint8_t sb[512];
	struct mem_out mo = { sb, 0 };
	char why[300];

	(void)pa;
	if (size < 4096 || nf_image_range(img, start + 1024, sizeof(sb), sink_mem, &mo, why, sizeof(why)) < 0 ||
	    sb[56] != 0x53 || sb[57] != 0xef)
		return 0;
	return (*skip)-- == 0;
}

int master_boot_partition(const struct master *m, const struct nf_manifest *man, const char *out_path,
			  uint64_t *off, uint64_t *len, char *detail, size_t cap)
{
	char img[PATH_MAX], why[300];
	struct sparse_out o = { .fd = -1 };
	uint8_t mbr[512];
	struct mem_out mo = { mbr, 0 };
	int r;

	master_image_path(m, man, img, sizeof(img));
	if ((r = nf_image_range(img, 0, 512, sink_mem, &mo, why, sizeof(why))) < 0) {
		snprintf(detail, cap, "cannot read the partition table of '%s': %s", man->name, why);
		return r;
	}
	if (find_fat(mbr, man->image_size, off, len) < 0) {
		char gpt[PATH_MAX + 8];

		/* A GPT image: its protective MBR names no FAT partition. */
		snprintf(gpt, sizeof(gpt), "%s.gpt", out_path);
		if (first_partition(img, man, gpt, 1, fat_in_gpt, NULL, off, len) < 0) {
			snprintf(detail, cap, "image '%s' has no FAT boot partition in its MBR or GPT", man->name);
			return -EBADMSG;
		}
	}
	o.fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (o.fd < 0) {
		r = -errno;
		snprintf(detail, cap, "cannot create %s: %s", out_path, strerror(-r));
		return r;
	}
	r = nf_image_range(img, *off, *len, sink_sparse, &o, why, sizeof(why));
	if (r == 0 && ftruncate(o.fd, (off_t)*len) < 0)
		r = -errno;
	if (r < 0)
		snprintf(detail, cap, "cannot read the boot partition of '%s': %s", man->name, why);
	close(o.fd);
	return r;
}

/* debugfs's answer for one ext file system at off, len of img: 0 with
 * out_path written, -ENOENT (no /etc/passwd there), or -EIO/-ENOSPC/
 * -errno with detail. The partition's sparse copy is part, removed after. */
static int dump_passwd(const struct nf_manifest *man, const char *img, const char *work, const char *part,
		       const char *out_path, uint64_t off, uint64_t len, char *detail, size_t cap)
{
	char cmd[PATH_MAX + 32], why[300];
	struct sparse_out o = { .fd = -1 };
	struct run_capture h;
	struct statvfs fs;
	struct stat st;
	int r;

	/* Its sparse copy takes what the file system holds, at most all of it. */
	if (statvfs(work, &fs) == 0 && (uint64_t)fs.f_bavail * fs.f_frsize < len) {
		snprintf(detail, cap, "%s has less free space than the root partition of '%s' (%llu MiB) may take",
			 work, man->name, (unsigned long long)(len >> 20));
		return -ENOSPC;
	}
	if ((o.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		r = -errno;
		snprintf(detail, cap, "cannot create %s: %s", part, strerror(-r));
		return r;
	}
	r = nf_image_range(img, off, len, sink_sparse, &o, why, sizeof(why));
	if (r == 0 && ftruncate(o.fd, (off_t)len) < 0)
		r = -errno;
	close(o.fd);
	if (r < 0) {
		snprintf(detail, cap, "cannot read the root partition of '%s': %s", man->name, why);
		unlink(part);
		return r;
	}
	/* debugfs (e2fsprogs) reads the file system without mounting it;
	 * "dump" copies one file out. It exits 0 whatever happened: a missing
	 * file is "File not found by ext2_lookup" in its output, a damaged
	 * file system another message, which is kept as the reason. */
	snprintf(cmd, sizeof(cmd), "dump /etc/passwd \"%s\"", out_path);
	char *const argv[] = { "/sbin/debugfs", "-R", cmd, (char *)part, NULL };
	char *const env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL };
	unlink(out_path);
	r = master_run_bounded(argv, env, 600, &h);
	unlink(part);
	if (r < 0) {
		snprintf(detail, cap, "cannot run debugfs (e2fsprogs): %s", strerror(-r));
		return -EIO;
	}
	if (stat(out_path, &st) == 0 && S_ISREG(st.st_mode))
		return 0;
	if (strstr(h.output, "File not found by ext2_lookup"))
		return -ENOENT;
	/* Its first line is its version banner: "debugfs 1.47.0 (5-Feb-2023)". */
	const char *msg = strncmp(h.output, "debugfs ", 8) == 0 && strstr(h.output, ") ") ? strstr(h.output, ") ") + 2
											 : h.output;
	snprintf(detail, cap, "debugfs cannot read the ext file system at byte %llu of '%s': %.200s",
		 (unsigned long long)off, man->name, msg);
	return -EIO;
}

int master_image_passwd(const struct master *m, const struct nf_manifest *man, const char *work, const char *out_path,
			char *detail, size_t cap)
{
	char img[PATH_MAX], part[PATH_MAX];
	uint64_t off, len;
	int r, n;

	master_image_path(m, man, img, sizeof(img));
	/* debugfs splits its request at spaces, and takes "..." as one word. */
	if (strchr(out_path, '"') || snprintf(part, sizeof(part), "%s.root", out_path) >= (int)sizeof(part) ||
	    strlen(out_path) > PATH_MAX - 32) {
		snprintf(detail, cap, "the state path %s is too long or holds a '\"'", out_path);
		return -ENAMETOOLONG;
	}
	/* Each ext file system in turn (a data partition may come first),
	 * until one has /etc/passwd. */
	for (n = 0; n < 8; n++) {
		int skip = n;

		if ((r = first_partition(img, man, part, 0, ext_fs, &skip, &off, &len)) == -ENOENT)
			break;
		if (r < 0) {
			snprintf(detail, cap, "cannot read the partition table of '%s': %s", man->name, strerror(-r));
			return r;
		}
		if ((r = dump_passwd(man, img, work, part, out_path, off, len, detail, cap)) != -ENOENT)
			return r;
	}
	if (n == 0)
		snprintf(detail, cap, "image '%s' has no ext2/3/4 partition in its partition table", man->name);
	else
		snprintf(detail, cap, "image '%s' has no /etc/passwd in its ext2/3/4 partition%s", man->name,
			 n > 1 ? "s" : "");
	return -ENOENT;
}
