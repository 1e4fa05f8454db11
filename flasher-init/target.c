#include "target.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define MAX_DEVS 256

void nf_target_init(struct nf_target *t)
{
	memset(t, 0, sizeof(*t));
	t->wfd = t->bfd = t->rfd = -1;
	t->align = 4096;
}

void nf_target_close(struct nf_target *t)
{
	if (t->wfd >= 0)
		close(t->wfd);
	if (t->bfd >= 0)
		close(t->bfd);
	if (t->rfd >= 0)
		close(t->rfd);
	t->wfd = t->bfd = t->rfd = -1;
}

dev_t nf_whole_disk(dev_t dev, int *is_partition)
{
	char p[128], real[PATH_MAX];
	unsigned ma, mi;
	FILE *f;

	*is_partition = 0;
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/partition", major(dev), minor(dev));
	if (access(p, F_OK) != 0)
		return dev;
	*is_partition = 1;
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/../dev", major(dev), minor(dev));
	if (!realpath(p, real))
		return dev;
	f = fopen(real, "re");
	if (!f)
		return dev;
	if (fscanf(f, "%u:%u", &ma, &mi) != 2)
		ma = major(dev), mi = minor(dev);
	fclose(f);
	return makedev(ma, mi);
}

/* The disk and its partitions. Returns the count (at least 1). */
static size_t disk_devs(dev_t disk, dev_t *out, size_t cap)
{
	char p[128];
	size_t n = 0;
	DIR *d;
	struct dirent *e;

	out[n++] = disk;
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u", major(disk), minor(disk));
	d = opendir(p);
	if (!d)
		return n;
	while ((e = readdir(d)) && n < cap) {
		char q[512];
		unsigned ma, mi;
		FILE *f;

		snprintf(q, sizeof(q), "%s/%s/partition", p, e->d_name);
		if (e->d_name[0] == '.' || access(q, F_OK) != 0)
			continue;
		snprintf(q, sizeof(q), "%s/%s/dev", p, e->d_name);
		f = fopen(q, "re");
		if (f && fscanf(f, "%u:%u", &ma, &mi) == 2)
			out[n++] = makedev(ma, mi);
		if (f)
			fclose(f);
	}
	closedir(d);
	return n;
}

static int dev_in(dev_t d, const dev_t *devs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (devs[i] == d)
			return 1;
	}
	return 0;
}

/* Finds a mount of any of devs; on a hit copies its mount point. */
static int find_mount(const dev_t *devs, size_t n, char *where, size_t cap)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned ma, mi;
		char mnt[2048];

		if (sscanf(line, "%*u %*u %u:%u %*s %2047s", &ma, &mi, mnt) != 3)
			continue;
		if (dev_in(makedev(ma, mi), devs, n)) {
			snprintf(where, cap, "%s", mnt);
			found = 1;
		}
	}
	fclose(f);
	return found;
}

static int used_as_swap(const dev_t *devs, size_t n)
{
	char line[1024], path[1024];
	FILE *f = fopen("/proc/swaps", "re");
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		struct stat st;

		if (sscanf(line, "%1023s", path) == 1 && stat(path, &st) == 0 &&
		    S_ISBLK(st.st_mode) && dev_in(st.st_rdev, devs, n))
			found = 1;
	}
	fclose(f);
	return found;
}

static int has_holders(dev_t dev)
{
	char p[128];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/holders", major(dev), minor(dev));
	d = opendir(p);
	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n > 0;
}

static int check_blockdev(const char *path, dev_t dev, int allow_partition,
			  char *detail, size_t cap)
{
	dev_t devs[MAX_DEVS], root_disk, disk;
	struct stat root;
	char where[2048];
	int part, root_part;
	size_t n;

	disk = nf_whole_disk(dev, &part);
	if (part && !allow_partition) {
		snprintf(detail, cap, "'%s' is a partition, not a whole disk (use --force to write it anyway)", path);
		return -EINVAL;
	}
	if (stat("/", &root) == 0 && major(root.st_dev) != 0) {
		root_disk = nf_whole_disk(root.st_dev, &root_part);
		if (root_disk == disk) {
			snprintf(detail, cap, "'%s' holds the running root filesystem", path);
			return -EBUSY;
		}
	}
	/* A partition target is checked on its own; a disk with all its partitions. */
	if (part) {
		devs[0] = dev;
		n = 1;
	} else {
		n = disk_devs(disk, devs, MAX_DEVS);
	}
	if (find_mount(devs, n, where, sizeof(where))) {
		snprintf(detail, cap, "'%s' is mounted (at %s); unmount it first", path, where);
		return -EBUSY;
	}
	if (used_as_swap(devs, n)) {
		snprintf(detail, cap, "'%s' is in use as swap", path);
		return -EBUSY;
	}
	for (size_t i = 0; i < n; i++) {
		if (has_holders(devs[i])) {
			snprintf(detail, cap, "'%s' is in use by another device (device-mapper, RAID)", path);
			return -EBUSY;
		}
	}
	return 0;
}

static int open_blockdev(struct nf_target *t, char *detail, size_t cap)
{
	int ro = 0;
	unsigned lbs = 512;

	/* O_EXCL on a block device fails with EBUSY while anyone else claims it. */
	t->wfd = open(t->path, O_WRONLY | O_EXCL | O_DIRECT | O_CLOEXEC);
	if (t->wfd < 0) {
		int e = errno;

		if (e == EROFS || e == EACCES)
			snprintf(detail, cap, "'%s' is read-only", t->path);
		else if (e == EBUSY)
			snprintf(detail, cap, "'%s' is busy (mounted or opened exclusively by another program)", t->path);
		else if (e == ENXIO || e == ENODEV || e == ENOMEDIUM)
			snprintf(detail, cap, "'%s': no medium (is a card inserted?)", t->path);
		else
			snprintf(detail, cap, "cannot open '%s': %s", t->path, strerror(e));
		return -e;
	}
	if (ioctl(t->wfd, BLKROGET, &ro) == 0 && ro) {
		snprintf(detail, cap, "'%s' is read-only", t->path);
		return -EROFS;
	}
	if (ioctl(t->wfd, BLKGETSIZE64, &t->size) < 0) {
		snprintf(detail, cap, "cannot get the size of '%s': %s", t->path, strerror(errno));
		return -errno;
	}
	if (ioctl(t->wfd, BLKSSZGET, &lbs) == 0 && lbs > t->align)
		t->align = lbs;
	t->direct_w = t->direct_r = 1;
	t->zero = NF_ZERO_ZEROOUT;
	t->bfd = open(t->path, O_WRONLY | O_CLOEXEC);
	t->rfd = open(t->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (t->bfd < 0 || t->rfd < 0) {
		snprintf(detail, cap, "cannot open '%s': %s", t->path, strerror(errno));
		return -errno;
	}
	return 0;
}

static int open_file(struct nf_target *t, char *detail, size_t cap)
{
	struct stat st;

	t->bfd = open(t->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (t->bfd < 0) {
		int e = errno;

		if (e == EROFS || e == EACCES)
			snprintf(detail, cap, "'%s' is read-only", t->path);
		else
			snprintf(detail, cap, "cannot open '%s': %s", t->path, strerror(e));
		return -e;
	}
	if (fstat(t->bfd, &st) < 0)
		return -errno;
	t->initial_size = (uint64_t)st.st_size;
	t->size = UINT64_MAX;
	/* Not every filesystem takes O_DIRECT (tmpfs before 6.6): fall back to
	 * buffered I/O with fdatasync and dropped pages. */
	t->wfd = open(t->path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	t->direct_w = t->wfd >= 0;
	if (t->wfd < 0)
		t->wfd = dup(t->bfd);
	t->rfd = open(t->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	t->direct_r = t->rfd >= 0;
	if (t->rfd < 0)
		t->rfd = open(t->path, O_RDONLY | O_CLOEXEC);
	if (t->wfd < 0 || t->rfd < 0) {
		snprintf(detail, cap, "cannot open '%s': %s", t->path, strerror(errno));
		return -errno;
	}
	t->zero = NF_ZERO_PUNCH;
	return 0;
}

int nf_target_open(struct nf_target *t, const char *path, int allow_partition,
		   char *detail, size_t cap)
{
	struct stat st;
	int r;

	if (strlen(path) >= sizeof(t->path)) {
		snprintf(detail, cap, "target path too long");
		return -ENAMETOOLONG;
	}
	strcpy(t->path, path);
	if (stat(path, &st) < 0) {
		if (errno == ENOENT && strncmp(path, "/dev/", 5) == 0) {
			snprintf(detail, cap, "'%s': no such device (is a card inserted?)", path);
			return -ENODEV;
		}
		if (errno != ENOENT) {
			snprintf(detail, cap, "cannot access '%s': %s", path, strerror(errno));
			return -errno;
		}
		return open_file(t, detail, cap);
	}
	if (S_ISBLK(st.st_mode)) {
		t->is_blk = 1;
		r = check_blockdev(path, st.st_rdev, allow_partition, detail, cap);
		return r < 0 ? r : open_blockdev(t, detail, cap);
	}
	if (S_ISREG(st.st_mode))
		return open_file(t, detail, cap);
	snprintf(detail, cap, "'%s' is neither a block device nor a regular file", path);
	return -EINVAL;
}

static int write_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENOSPC;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int nf_target_write(struct nf_target *t, const void *buf, size_t len, uint64_t off)
{
	int direct = t->direct_w && off % t->align == 0 && len % t->align == 0 &&
		     (uintptr_t)buf % t->align == 0;

	return write_full(direct ? t->wfd : t->bfd, buf, len, off);
}

int nf_target_zero(struct nf_target *t, uint64_t off, size_t len, const void *zeros)
{
	if (t->zero == NF_ZERO_PUNCH) {
		/* Past the file's old end there is nothing to clear: the file is
		 * extended with holes (nf_target_extend) or written past. */
		if (off >= t->initial_size)
			return 0;
		uint64_t n = len < t->initial_size - off ? len : t->initial_size - off;

		if (fallocate(t->bfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)n) == 0)
			return 0;
		if (errno != EOPNOTSUPP)
			return -errno;
		t->zero = NF_ZERO_WRITE;
	} else if (t->zero == NF_ZERO_ZEROOUT && off % 512 == 0 && len % 512 == 0) {
		uint64_t range[2] = { off, len };

		if (ioctl(t->wfd, BLKZEROOUT, range) == 0)
			return 0;
		if (errno != EOPNOTSUPP && errno != ENOTTY && errno != EINVAL)
			return -errno;
		t->zero = NF_ZERO_WRITE;
	}
	return nf_target_write(t, zeros, len, off);
}

int nf_target_flush(struct nf_target *t, uint64_t off, uint64_t len)
{
	if (fdatasync(t->bfd) < 0 || (t->wfd != t->bfd && fdatasync(t->wfd) < 0))
		return -errno;
	/* Clean pages can now be dropped, so the readback comes from the device. */
	if (!t->direct_r)
		posix_fadvise(t->rfd, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED);
	if (t->is_blk)
		posix_fadvise(t->bfd, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED);
	return 0;
}

ssize_t nf_target_read(struct nf_target *t, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(t->rfd, (uint8_t *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
		if (t->direct_r && done % t->align)
			break; /* short direct read: the end of the file */
	}
	return (ssize_t)done;
}

int nf_target_extend(struct nf_target *t, uint64_t size)
{
	struct stat st;

	if (t->is_blk)
		return 0;
	if (fstat(t->bfd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size < size && ftruncate(t->bfd, (off_t)size) < 0)
		return -errno;
	return 0;
}
