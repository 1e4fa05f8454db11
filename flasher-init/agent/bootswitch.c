/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bootswitch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILES 32

/* What a Pi's boot ROM or EEPROM bootloader needs from the card to boot
 * it: bootcode.bin (Pi 3 and older), start*.elf (the GPU firmware of every
 * model before the Pi 5) and the kernels (a Pi 5's bootloader loads
 * kernel_2712.img or kernel8.img itself, with no start*.elf). Without all
 * of them no model finds anything to boot and goes on to the network. */
static int is_firmware(const char *name)
{
	return strcasecmp(name, "bootcode.bin") == 0 || fnmatch("start*.elf", name, FNM_CASEFOLD) == 0 ||
	       fnmatch("kernel*.img", name, FNM_CASEFOLD) == 0;
}

static void sync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Moves name between dir and dir/NF_BOOT_DISABLED_DIR (back: into dir). */
static int move(const char *dir, const char *name, int back)
{
	char a[PATH_MAX], b[PATH_MAX];

	snprintf(a, sizeof(a), "%s/%s", dir, name);
	snprintf(b, sizeof(b), "%s/%s/%s", dir, NF_BOOT_DISABLED_DIR, name);
	return rename(back ? b : a, back ? a : b) < 0 ? -errno : 0;
}

int nf_boot_disabled_count(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, NF_BOOT_DISABLED_DIR);
	if (!(d = opendir(path)))
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)))
		n += is_firmware(de->d_name);
	closedir(d);
	return n;
}

int nf_boot_disable(const char *dir, const char *why, char *detail, size_t cap)
{
	char names[MAX_FILES][256], path[PATH_MAX], note[1024];
	struct dirent *de;
	int n = 0, r = 0, fd;
	DIR *d = opendir(dir);

	if (!d) {
		r = -errno;
		snprintf(detail, cap, "cannot read the boot partition at '%s': %s", dir, strerror(-r));
		return r;
	}
	while ((de = readdir(d)) && n < MAX_FILES) {
		if (is_firmware(de->d_name) && strlen(de->d_name) < sizeof(names[0]))
			snprintf(names[n++], sizeof(names[0]), "%s", de->d_name);
	}
	closedir(d);
	if (nf_boot_disabled_count(dir) > 0) {
		snprintf(detail, cap, "'%s' is already non-bootable (its firmware is in %s/)", dir, NF_BOOT_DISABLED_DIR);
		return -EEXIST;
	}
	if (n == 0) {
		snprintf(detail, cap, "'%s' holds no bootcode.bin, start*.elf or kernel*.img: not a Raspberry Pi boot "
			 "partition", dir);
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, NF_BOOT_DISABLED_DIR);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(detail, cap, "cannot create '%s': %s", path, strerror(-r));
		return r;
	}
	snprintf(note, sizeof(note),
		 "The Raspberry Pi firmware of this card was moved here so that the Pi\n"
		 "boots from the network (%s).\n"
		 "To boot from this card again, move these files back to the partition's\n"
		 "root and remove this directory, or run: netflash-agent restore\n", why);
	snprintf(path, sizeof(path), "%s/%s/README.txt", dir, NF_BOOT_DISABLED_DIR);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		if (write(fd, note, strlen(note)) < 0)
			r = -errno;
		fsync(fd);
		close(fd);
	}
	for (int i = 0; r == 0 && i < n; i++) {
		if ((r = move(dir, names[i], 0)) < 0) {
			snprintf(detail, cap, "cannot move '%s/%s' aside: %s; the card is left as it was", dir, names[i],
				 strerror(-r));
			while (i-- > 0)
				move(dir, names[i], 1);
		}
	}
	snprintf(path, sizeof(path), "%s/%s", dir, NF_BOOT_DISABLED_DIR);
	sync_dir(path);
	sync_dir(dir);
	sync();
	return r < 0 ? r : n;
}

int nf_boot_restore(const char *dir, char *detail, size_t cap)
{
	char path[PATH_MAX], names[MAX_FILES][256];
	struct dirent *de;
	int n = 0, r = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", dir, NF_BOOT_DISABLED_DIR);
	if (!(d = opendir(path))) {
		r = -errno;
		snprintf(detail, cap, r == -ENOENT ? "'%s' was not made non-bootable (no %s/)" : "cannot read '%s': %s",
			 dir, r == -ENOENT ? NF_BOOT_DISABLED_DIR : strerror(-r));
		return r;
	}
	while ((de = readdir(d)) && n < MAX_FILES) {
		if (is_firmware(de->d_name) && strlen(de->d_name) < sizeof(names[0]))
			snprintf(names[n++], sizeof(names[0]), "%s", de->d_name);
	}
	closedir(d);
	for (int i = 0; i < n && r == 0; i++) {
		if ((r = move(dir, names[i], 1)) < 0)
			snprintf(detail, cap, "cannot move '%s' back to '%s': %s", names[i], dir, strerror(-r));
	}
	if (r == 0) {
		snprintf(path, sizeof(path), "%s/%s/README.txt", dir, NF_BOOT_DISABLED_DIR);
		unlink(path);
		snprintf(path, sizeof(path), "%s/%s", dir, NF_BOOT_DISABLED_DIR);
		if (rmdir(path) < 0 && errno != ENOENT)
			r = -errno;
		if (r < 0)
			snprintf(detail, cap, "restored the firmware, but cannot remove '%s': %s", path, strerror(-r));
	}
	sync_dir(dir);
	sync();
	if (r == 0 && n == 0) {
		snprintf(detail, cap, "'%s/%s' held no firmware", dir, NF_BOOT_DISABLED_DIR);
		return -ENOENT;
	}
	return r < 0 ? r : n;
}
