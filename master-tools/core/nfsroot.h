/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Diskless workers (enroll --nfsroot DIR): the worker netboots the Pi OS
 * kernel from its TFTP dir with root=/dev/nfs nfsroot=SERVER:DIR instead of
 * the flasher, and runs from DIR on the master for good. This file checks
 * DIR and keeps the NFS exports of every diskless worker's root:
 *   ROOT/state/nfsroot/MAC           the worker's DIR (one line)
 *   ROOT/etc/netflash-nfsroot.exports   for /etc/exports.d/ (nfs-kernel-server)
 *   ROOT/etc/ganesha-nfsroot.conf       the same EXPORT blocks for nfs-ganesha
 * Both export files are rewritten from the state dir after every change. */
#ifndef NETFLASH_NFSROOT_H
#define NETFLASH_NFSROOT_H

#include <stddef.h>

struct master;

#define NFSROOT_DIR_MAX 200

/* Checks that dir can be a worker's NFS root: an absolute, normalised path
 * (no "." or ".." parts, no blanks, commas, quotes or other characters a
 * kernel command line or an exports file would split on), a directory
 * holding an init (sbin/init, usr/sbin/init or lib/systemd/systemd).
 * Returns 0, -EINVAL (a path that cannot be used: detail says why, a usage
 * error), or -ENOENT / -ENOTDIR (not there, or no root filesystem). */
int nfsroot_check(const char *dir, char *detail, size_t cap);

/* The root filesystem's /etc/fstab mounts / from a block device (the SD
 * card's PARTUUID=): the worker would try to remount it. Fills what. */
int nfsroot_fstab_mounts_card(const char *dir, char *what, size_t cap);

/* mac's recorded NFS root into dir. Returns 0, -ENOENT (none) or -errno. */
int nfsroot_get(const struct master *m, const char *mac, char *dir, size_t cap);

/* Records (dir) or forgets (dir NULL) mac's NFS root and rewrites the
 * export files. Returns 0 or -errno with detail. */
int nfsroot_set(const struct master *m, const char *mac, const char *dir, char *detail, size_t cap);

#endif
