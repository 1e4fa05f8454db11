/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "tftpdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileutil.h"

#define MAX_DEPTH 4

static int fill_dir(int sdir, int ddir, int depth, char *detail, size_t cap)
{
	DIR *d;
	struct dirent *e;
	int r = 0, sfd = dup(sdir);

	if (sfd < 0 || !(d = fdopendir(sfd))) {
		if (sfd >= 0)
			close(sfd);
		return -errno;
	}
	while (r == 0 && (e = readdir(d))) {
		struct stat st;

		if (e->d_name[0] == '.')
			continue; /* dot files are not boot files (and would hide our marker) */
		if (fstatat(sdir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
		} else if (S_ISREG(st.st_mode)) {
			if (linkat(sdir, e->d_name, ddir, e->d_name, 0) < 0)
				/* Another filesystem: copy instead. */
				r = errno == EXDEV || errno == EPERM
					    ? nf_copy_at(sdir, e->d_name, ddir, e->d_name, NF_COPY_EXCL | NF_COPY_NOFOLLOW, 0644)
					    : -errno;
		} else if (S_ISDIR(st.st_mode) && depth < MAX_DEPTH) {
			int ns = -1, nd = -1;

			if (mkdirat(ddir, e->d_name, 0755) < 0 ||
			    (ns = openat(sdir, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
			    (nd = openat(ddir, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
				r = -errno;
			else
				r = fill_dir(ns, nd, depth + 1, detail, cap);
			if (ns >= 0)
				close(ns);
			if (nd >= 0)
				close(nd);
		} else {
			snprintf(detail, cap, "boot files hold '%s', which is not a regular file or directory", e->d_name);
			r = -EINVAL;
		}
	}
	closedir(d);
	return r;
}

/* Deletes everything below dirfd without following symlinks (they are
 * removed as entries). */
static int empty_dir(int dirfd, int depth)
{
	DIR *d;
	struct dirent *e;
	int r = 0, fd = dup(dirfd);

	if (depth > MAX_DEPTH + 2)
		return -ELOOP;
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while (r == 0 && (e = readdir(d))) {
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0) {
				r = -errno;
				break;
			}
			r = empty_dir(sub, depth + 1);
			close(sub);
			if (r == 0 && unlinkat(dirfd, e->d_name, AT_REMOVEDIR) < 0)
				r = -errno;
		} else if (unlinkat(dirfd, e->d_name, 0) < 0) {
			r = -errno;
		}
	}
	closedir(d);
	return r;
}

/* Removes root_fd/name (a real directory) and everything in it. */
static int remove_tree(int root_fd, const char *name)
{
	int fd = openat(root_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	r = empty_dir(fd, 0);
	close(fd);
	if (r == 0 && unlinkat(root_fd, name, AT_REMOVEDIR) < 0)
		r = -errno;
	return r;
}

/* Checks that root_fd/name is a real directory carrying our marker for mac. */
static int is_ours(int root_fd, const char *name, const char *mac, char *detail, size_t cap)
{
	struct stat st;
	char marker[128];
	int fd, mfd;
	ssize_t n;

	if (fstatat(root_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode)) {
		snprintf(detail, cap, "tftp/%s is a symlink, not a directory netflash made; not following it", name);
		return -EPERM;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(detail, cap, "tftp/%s is not a directory", name);
		return -EPERM;
	}
	fd = openat(root_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	mfd = openat(fd, NF_TFTP_MARKER, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(fd);
	n = mfd >= 0 ? read(mfd, marker, sizeof(marker) - 1) : -1;
	if (mfd >= 0)
		close(mfd);
	if (n < 0 || (marker[n] = '\0', strncmp(marker, mac, 17) != 0)) {
		snprintf(detail, cap, "tftp/%s was not made by netflash (no marker); remove it by hand", name);
		return -EPERM;
	}
	return 0;
}

/* Writes text to dirfd/name; owner (uid) != (uid_t)-1: that user alone may
 * read it (0400: the file holds a token), else everyone (0644). */
static int write_at(int dirfd, const char *name, const char *text, uid_t owner)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600), r = 0;
	size_t len = strlen(text);

	errno = 0;
	if (fd < 0)
		return -errno;
	if ((owner != (uid_t)-1 && fchown(fd, owner, (gid_t)-1) < 0) ||
	    fchmod(fd, owner != (uid_t)-1 ? 0400 : 0644) < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

static int build_new(int root_fd, const char *tmp, const char *mac, const char *boot_dir,
		     const char *cmdline, const char *config, const char *generation, uid_t owner, char *detail,
		     size_t cap)
{
	int bfd = -1, nfd = -1, r;
	char marker[96];

	if (mkdirat(root_fd, tmp, 0755) < 0)
		return -errno;
	bfd = open(boot_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	nfd = openat(root_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (bfd < 0 || nfd < 0) {
		r = -errno;
		goto out;
	}
	fchmod(nfd, 0755);
	r = fill_dir(bfd, nfd, 0, detail, cap);
	/* The per-MAC cmdline.txt replaces the linked template. */
	if (r == 0 && unlinkat(nfd, "cmdline.txt", 0) < 0 && errno != ENOENT)
		r = -errno;
	if (r == 0)
		r = write_at(nfd, "cmdline.txt", cmdline, owner);
	if (r == 0 && config) {
		if ((unlinkat(nfd, "config.txt", 0) < 0 && errno != ENOENT) ||
		    (unlinkat(nfd, "netflash.cpio.gz", 0) < 0 && errno != ENOENT))
			r = -errno;
		else
			r = write_at(nfd, "config.txt", config, (uid_t)-1);
	}
	snprintf(marker, sizeof(marker), "%s\ngeneration=%s\n", mac, generation);
	if (r == 0)
		r = write_at(nfd, NF_TFTP_MARKER, marker, (uid_t)-1);
	if (r == 0 && fsync(nfd) < 0)
		r = -errno;
out:
	if (bfd >= 0)
		close(bfd);
	if (nfd >= 0)
		close(nfd);
	return r;
}

int tftpdir_create(const char *tftp_root, const char *mac, const char *boot_dir, const char *cmdline,
		   const char *config, const char *generation, int replace, uid_t owner, char *displaced,
		   size_t dcap, char *detail, size_t cap)
{
	char tmp[64];
	int root_fd = open(tftp_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;
	char rnd[17];

	if (root_fd < 0) {
		snprintf(detail, cap, "cannot open %s: %s", tftp_root, strerror(errno));
		return -errno;
	}
	if ((r = nf_random_hex(rnd, 8)) < 0)
		goto out;
	/* Dot names: never a MAC, so dnsmasq never serves a half-built dir. */
	snprintf(tmp, sizeof(tmp), "%s%s-%s", NF_TFTP_SWAP_PREFIX, mac, rnd);
	displaced[0] = '\0';
	r = build_new(root_fd, tmp, mac, boot_dir, cmdline, config, generation, owner, detail, cap);
	if (r < 0)
		goto fail;
	if (replace && faccessat(root_fd, mac, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		r = is_ours(root_fd, mac, mac, detail, cap);
		if (r < 0)
			goto fail;
		/* Swap in one step: the worker sees the old or the new dir, never none.
		 * The old one stays under tmp until the caller has committed. */
		if (renameat2(root_fd, tmp, root_fd, mac, RENAME_EXCHANGE) < 0) {
			r = -errno;
			goto fail;
		}
		snprintf(displaced, dcap, "%s", tmp);
	} else if (renameat2(root_fd, tmp, root_fd, mac, RENAME_NOREPLACE) < 0) {
		r = -errno;
		if (r == -EEXIST)
			snprintf(detail, cap, "tftp/%s already exists", mac);
		goto fail;
	}
	fsync(root_fd);
	goto out;
fail:
	if (!detail[0])
		snprintf(detail, cap, "cannot create tftp/%s: %s", mac, strerror(-r));
	remove_tree(root_fd, tmp);
out:
	close(root_fd);
	return r;
}

int tftpdir_remove(const char *tftp_root, const char *mac, char *detail, size_t cap)
{
	char trash[64], rnd[17];
	int root_fd = open(tftp_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (root_fd < 0) {
		snprintf(detail, cap, "cannot open %s: %s", tftp_root, strerror(errno));
		return -errno;
	}
	r = is_ours(root_fd, mac, mac, detail, cap);
	if (r == -ENOENT)
		snprintf(detail, cap, "tftp/%s does not exist", mac);
	if (r < 0)
		goto out;
	/* Out of dnsmasq's sight first (one rename), then deleted at leisure. */
	if ((r = nf_random_hex(rnd, 8)) < 0)
		goto out;
	snprintf(trash, sizeof(trash), ".del-%s-%s", mac, rnd);
	if (renameat(root_fd, mac, root_fd, trash) < 0) {
		r = -errno;
		snprintf(detail, cap, "cannot remove tftp/%s: %s", mac, strerror(errno));
		goto out;
	}
	fsync(root_fd);
	r = remove_tree(root_fd, trash);
	if (r < 0)
		snprintf(detail, cap, "tftp/%s is gone, but deleting its files failed: %s", mac, strerror(-r));
out:
	close(root_fd);
	return r;
}

int tftpdir_exists(const char *tftp_root, const char *mac)
{
	char path[PATH_MAX];
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/%s", tftp_root, mac) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	return S_ISDIR(st.st_mode) ? 1 : -ENOTDIR;
}

int tftpdir_remove_aside(const char *tftp_root, const char *name)
{
	int root_fd, r;

	if (name[0] != '.' || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	root_fd = open(tftp_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return -errno;
	r = remove_tree(root_fd, name);
	close(root_fd);
	return r;
}

int tftpdir_exchange(const char *tftp_root, const char *a, const char *b)
{
	int root_fd = open(tftp_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (root_fd < 0)
		return -errno;
	if (renameat2(root_fd, a, root_fd, b, RENAME_EXCHANGE) < 0 ||
	    fsync(root_fd) < 0)
		r = -errno;
	close(root_fd);
	return r;
}

int tftpdir_generation(const char *tftp_root, const char *name, char *gen, size_t cap)
{
	char path[PATH_MAX], marker[128], *g;
	int fd;
	ssize_t n;

	if (snprintf(path, sizeof(path), "%s/%s/%s", tftp_root, name, NF_TFTP_MARKER) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, marker, sizeof(marker) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	marker[n] = '\0';
	g = strstr(marker, "\ngeneration=");
	if (!g)
		return -ENODATA; /* made before generations were recorded */
	g += strlen("\ngeneration=");
	g[strcspn(g, "\n")] = '\0';
	snprintf(gen, cap, "%s", g);
	return 0;
}
