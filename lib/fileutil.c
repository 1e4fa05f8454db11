/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "fileutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parse.h"

static int fsync_dir_of(const char *path)
{
	char copy[PATH_MAX];
	int fd, r = 0;

	if (strlen(path) >= sizeof(copy))
		return -ENAMETOOLONG;
	strcpy(copy, path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

ssize_t nf_pread_fd(void *ctx, void *buf, size_t len, uint64_t off)
{
	ssize_t n;

	do
		n = pread(*(int *)ctx, buf, len, (off_t)off);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

int nf_write_full(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int nf_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	int fd, r = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	/* The umask must not make served files unreadable (dnsmasq, NFS). */
	if (fchmod(fd, mode) < 0)
		r = -errno;
	if (r == 0)
		r = nf_write_full(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	return fsync_dir_of(path);
}

ssize_t nf_read_file(const char *path, char *buf, size_t max)
{
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf + got, max + 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > max) {
			close(fd);
			return -EFBIG;
		}
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

int nf_copy_at(int sdir, const char *src, int ddir, const char *dst, int flags, mode_t mode)
{
	static const size_t bufsize = 1 << 16;
	char *buf = malloc(bufsize);
	int in = -1, out = -1, r = 0;
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	in = openat(sdir, src, O_RDONLY | O_CLOEXEC | (flags & NF_COPY_NOFOLLOW ? O_NOFOLLOW : 0));
	if (in >= 0)
		out = openat(ddir, dst, O_WRONLY | O_CREAT | O_CLOEXEC | (flags & NF_COPY_EXCL ? O_EXCL : O_TRUNC), mode);
	if (in < 0 || out < 0) {
		r = -errno;
		goto out;
	}
	while ((n = read(in, buf, bufsize)) != 0) {
		size_t done = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		while (done < (size_t)n) {
			ssize_t w = write(out, buf + done, (size_t)n - done);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				r = -errno;
				goto out;
			}
			done += (size_t)w;
		}
	}
	if (fchmod(out, mode) < 0 || fsync(out) < 0)
		r = -errno;
out:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && r == 0)
		r = -errno;
	free(buf);
	return r;
}

int nf_random_hex(char *out, size_t nbytes)
{
	uint8_t raw[64];

	if (nbytes > sizeof(raw))
		return -EINVAL;
	if (getrandom(raw, nbytes, 0) != (ssize_t)nbytes)
		return -errno;
	nf_format_hex(raw, nbytes, out);
	return 0;
}

void nf_read_attr(const char *dir, const char *name, char *out, size_t cap)
{
	char p[512];
	ssize_t n;

	out[0] = '\0';
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	n = nf_read_file(p, out, cap - 1);
	if (n < 0) {
		out[0] = '\0';
		return;
	}
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ' || out[n - 1] == '\0')) /* DT strings end in NUL */
		n--;
	out[n] = '\0';
	for (ssize_t i = 0; i < n; i++) /* sysfs text goes into protocol lines */
		if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
			out[i] = '?';
}
