#include "bootpart.h"
#include "run.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int sink_mem(void *ctx, const void *buf, size_t len)
{
	memcpy(ctx, buf, len);
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

int master_boot_partition(const struct master *m, const struct nf_manifest *man, const char *out_path,
			  uint64_t *off, uint64_t *len, char *detail, size_t cap)
{
	char img[PATH_MAX], why[300];
	struct sparse_out o = { .fd = -1 };
	uint8_t mbr[512];
	int r;

	master_image_path(m, man, img, sizeof(img));
	if ((r = nf_image_range(img, 0, 512, sink_mem, mbr, why, sizeof(why))) < 0) {
		snprintf(detail, cap, "cannot read the partition table of '%s': %s", man->name, why);
		return r;
	}
	if (find_fat(mbr, man->image_size, off, len) < 0) {
		snprintf(detail, cap, "image '%s' has no MBR with a FAT boot partition", man->name);
		return -EBADMSG;
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
