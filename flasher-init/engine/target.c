/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "target.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fileutil.h"

#define MAX_DEVS 256

void nf_target_init(struct nf_target *t)
{
	memset(t, 0, sizeof(*t));
	t->wfd = t->bfd = t->rfd = -1;
	atomic_store(&t->zero_failed_at, UINT64_MAX);
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
	free(t->check_buf);
	t->check_buf = NULL;
	t->check_cap = 0;
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

/* A queue limit of block device dev's whole disk from sysfs
 * (Documentation/ABI/stable/sysfs-block), or 0. */
static uint64_t queue_limit(dev_t dev, const char *name)
{
	char path[128], buf[32];
	int part;
	dev_t disk = nf_whole_disk(dev, &part);
	ssize_t n;
	uint64_t v = 0;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/%s", major(disk), minor(disk), name);
	n = nf_read_file(path, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		v = strtoull(buf, NULL, 10);
	}
	return v;
}

static void choose_zero_method(struct nf_target *t, dev_t dev)
{
	if (queue_limit(dev, "write_zeroes_max_bytes")) {
		t->zero = NF_ZERO_WRITE_ZEROES;
	} else if (queue_limit(dev, "discard_max_bytes")) {
		t->zero = NF_ZERO_DISCARD;
		t->discard_granularity = queue_limit(dev, "discard_granularity");
		if (t->discard_granularity < 512)
			t->discard_granularity = 512;
	} else {
		t->zero = NF_ZERO_WRITE;
		snprintf(t->zero_note, sizeof(t->zero_note),
			 "zero runs are written: the device offers neither write-zeroes nor discard");
	}
}

static int open_blockdev(struct nf_target *t, dev_t dev, char *detail, size_t cap)
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
	choose_zero_method(t, dev);
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
		return r < 0 ? r : open_blockdev(t, st.st_rdev, detail, cap);
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

static const char *zero_method_name(enum nf_zero_method m)
{
	return m == NF_ZERO_WRITE_ZEROES ? "write-zeroes" : m == NF_ZERO_DISCARD ? "discard" : "hole";
}

/* Makes [off, off+len) zero without writing, the target's way. Returns 1
 * (done), 0 (the device refused: t->zero is now NF_ZERO_WRITE; a refused
 * write-zeroes does not fall back to discard), or a negative errno. */
static int zero_without_writing(struct nf_target *t, uint64_t off, uint64_t len)
{
	int r;

	if (t->zero == NF_ZERO_WRITE_ZEROES) {
		r = fallocate(t->wfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
	} else {
		uint64_t range[2] = { off, len };

		r = ioctl(t->wfd, BLKDISCARD, range);
	}
	if (r == 0)
		return 1;
	if (errno != EOPNOTSUPP && errno != ENOTTY && errno != EINVAL && errno != EIO)
		return -errno;
	snprintf(t->zero_note, sizeof(t->zero_note), "zero runs are written: %s failed (%s)",
		 zero_method_name(t->zero), strerror(errno));
	t->zero = NF_ZERO_WRITE;
	return 0;
}


/* The marker written before the zero method is tried: bytes no card
 * erases to (neither 0x00 nor 0xFF) and that differ with the offset. */
static void fill_marker(uint8_t *buf, size_t len, uint64_t off)
{
	uint64_t x = off * 0x9e3779b97f4a7c15ull | 1;

	for (size_t i = 0; i < len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, len - i < 8 ? len - i : 8);
	}
}

/* Tries the zero method on [off, off+len) (whole granules of the first run
 * to be made without writing): writes a marker there as data and flushes
 * it, zeros the range the target's way and reads it back. Returns 1 (it
 * reads as zeros: the method stays), 0 (it does not, or the device refused
 * the method: t->zero is now NF_ZERO_WRITE and the range still holds the
 * marker; the caller writes the zeros) or a negative errno. */
static int try_zero_method(struct nf_target *t, uint64_t off, size_t len)
{
	size_t i;
	ssize_t n;
	int r;

	if (len > t->check_cap) {
		free(t->check_buf);
		t->check_cap = 0;
		/* 8 bytes over: try_zero_method keeps a word read back there. */
		if (!(t->check_buf = aligned_alloc(4096, (len + 8 + 4095) / 4096 * 4096)))
			return -ENOMEM;
		t->check_cap = len;
	}
	fill_marker(t->check_buf, len, off);
	if ((r = nf_target_write(t, t->check_buf, len, off)) < 0 || (r = nf_target_flush(t, off, len)) < 0)
		return r;
	if ((r = zero_without_writing(t, off, len)) <= 0)
		return r;
	if ((n = nf_target_read(t, t->check_buf, len, off)) < (ssize_t)len)
		return n < 0 ? (int)n : -EIO;
	for (i = 0; i < len && t->check_buf[i] == 0; i++)
		;
	if (i == len) {
		t->zero_checked = 1;
		snprintf(t->zero_note, sizeof(t->zero_note), "zero runs are made with %s (tried on a marker: %zu bytes "
			 "at %llu written, made with %s, read back as zeros)", zero_method_name(t->zero), len,
			 (unsigned long long)off, zero_method_name(t->zero));
		return 1;
	}
	/* What the marker held there: the range was read back into the
	 * buffer it was made in, so make it again and compare that word. */
	size_t w = i / 8 * 8, wl = len - w < 8 ? len - w : 8;
	int kept;

	memcpy(t->check_buf + len, t->check_buf + w, wl); /* the word read back, aside */
	fill_marker(t->check_buf, len, off);
	kept = memcmp(t->check_buf + w, t->check_buf + len, wl) == 0;
	snprintf(t->zero_note, sizeof(t->zero_note), "zero runs are written: after %s the card read back %s at "
		 "offset %llu", zero_method_name(t->zero),
		 t->check_buf[len + (i - w)] == 0xff ? "0xFF (it erases to ones)" :
		 kept ? "old data (the marker written there)" : "neither zeros nor the old data",
		 (unsigned long long)(off + i));
	t->zero = NF_ZERO_WRITE;
	return 0;
}

/* How much of [a, b) (whole granules of g) the zero method is tried on: up
 * to 1 MiB (written once per flash as the marker), in units both the
 * granule and direct I/O allow. 0: the run is too short or misaligned for
 * a trial. */
static uint64_t trial_len(const struct nf_target *t, uint64_t a, uint64_t b, uint64_t g)
{
	uint64_t unit = g > t->align ? g : t->align, want;

	if (unit % g || unit % t->align || a % unit)
		return 0;
	want = (1u << 20) / unit * unit;
	if (want < unit)
		want = unit;
	if (want > b - a)
		want = (b - a) / unit * unit;
	return want;
}

void nf_target_zero_failed(struct nf_target *t, uint64_t off)
{
	uint64_t none = UINT64_MAX;

	atomic_compare_exchange_strong(&t->zero_failed_at, &none, off);
}

/* A block made without writing did not read back as zeros (the verifier
 * said so): write zeros from now on. */
static void take_zero_failure(struct nf_target *t)
{
	uint64_t at = atomic_load(&t->zero_failed_at);

	if (at == UINT64_MAX || t->zero == NF_ZERO_WRITE)
		return;
	snprintf(t->zero_note, sizeof(t->zero_note), "zero runs are written: the block at %llu made with %s did not "
		 "read back as zeros (rewritten with zeros)", (unsigned long long)at, zero_method_name(t->zero));
	t->zero = NF_ZERO_WRITE;
}

int nf_target_zero(struct nf_target *t, uint64_t off, size_t len, const void *zeros, uint64_t *skipped)
{
	*skipped = 0;
	take_zero_failure(t);
	if (t->zero == NF_ZERO_PUNCH) {
		/* Past the file's old end there is nothing to clear: the file is
		 * extended with holes (nf_target_extend) or written past. */
		if (off >= t->initial_size) {
			*skipped = len;
			return 0;
		}
		uint64_t n = len < t->initial_size - off ? len : t->initial_size - off;

		if (fallocate(t->bfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)n) == 0) {
			*skipped = len;
			return 0;
		}
		if (errno != EOPNOTSUPP)
			return -errno;
		t->zero = NF_ZERO_WRITE;
	} else if (t->zero != NF_ZERO_WRITE && off % 512 == 0 && len % 512 == 0) {
		/* Discard: only whole granules; the ends are written. */
		uint64_t g = t->zero == NF_ZERO_DISCARD ? t->discard_granularity : 512;
		uint64_t a = (off + g - 1) / g * g, b = (off + len) / g * g;
		int r;

		if (b > a) {
			uint64_t tried = 0;

			if (!t->zero_checked) {
				tried = trial_len(t, a, b, g);
				/* A run too short to try the method on is written. */
				if (!tried)
					return nf_target_write(t, zeros, len, off);
				if ((r = try_zero_method(t, a, (size_t)tried)) < 0)
					return r;
				if (r == 0)
					return nf_target_write(t, zeros, len, off);
			}
			r = a + tried < b ? zero_without_writing(t, a + tried, b - a - tried) : 1;
			if (r < 0)
				return r;
			if (r > 0) {
				*skipped = b - a;
				if (a > off && (r = nf_target_write(t, zeros, (size_t)(a - off), off)) < 0)
					return r;
				if (off + len > b)
					r = nf_target_write(t, zeros, (size_t)(off + len - b), b);
				return r < 0 ? r : 0;
			}
		}
	}
	return nf_target_write(t, zeros, len, off);
}

int nf_target_write_zeros(struct nf_target *t, uint64_t off, size_t len, const void *zeros)
{
	int r = nf_target_write(t, zeros, len, off);

	return r < 0 ? r : nf_target_flush(t, off, len);
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
