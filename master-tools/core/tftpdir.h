/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Per-worker TFTP directories under ROOT/tftp, named by canonical MAC. They
 * are built aside and renamed into place (a worker never sees half a dir),
 * hold only regular files (hard links to the boot files, or copies) and a
 * marker naming their MAC, and are removed without ever following a symlink. */
#ifndef NETFLASH_TFTPDIR_H
#define NETFLASH_TFTPDIR_H

#include <stddef.h>
#include <sys/types.h>

#define NF_TFTP_MARKER ".netflash-mac"      /* "MAC\ngeneration=G\n" */
#define NF_TFTP_SWAP_PREFIX ".swap-"         /* a dir being built, or one displaced by it */

/* Builds tftp_root/mac from the files in boot_dir (recursively; symlinks
 * and special files in boot_dir are refused) plus cmdline.txt with the given
 * content. config: NULL keeps boot_dir's config.txt; else this text is the
 * config.txt and the flasher's initramfs (netflash.cpio.gz) is left out (a
 * diskless worker boots its own system). replace: an existing dir of ours
 * is replaced atomically; else an existing dir is -EEXIST. owner: the uid
 * that alone may read cmdline.txt (it holds the worker's token; dnsmasq's
 * user), or (uid_t)-1 for a world-readable one. generation goes into the
 * marker (the enrollment's generation, master_generation(): no secret).
 * A replaced dir is not deleted: it stays as displaced (capacity dcap;
 * "" when nothing was replaced), a .swap- name, until the caller has
 * committed the enrollment and calls tftpdir_remove_aside(), or undoes
 * it with tftpdir_exchange(). Returns 0 or -errno with detail set. */
int tftpdir_create(const char *tftp_root, const char *mac, const char *boot_dir, const char *cmdline,
		   const char *config, const char *generation, int replace, uid_t owner, char *displaced,
		   size_t dcap, char *detail, size_t cap);

/* Removes tftp_root/name, a dot name (.swap-, .del-, .new- left aside), and
 * all in it, never following symlinks. Returns 0 or -errno. */
int tftpdir_remove_aside(const char *tftp_root, const char *name);

/* Swaps tftp_root/a and tftp_root/b in one step (RENAME_EXCHANGE), then
 * syncs the directory. Returns 0 or -errno. */
int tftpdir_exchange(const char *tftp_root, const char *a, const char *b);

/* The generation in tftp_root/name's marker. Returns 0, -ENODATA (a dir
 * from before generations), or -errno (-ENOENT: no dir or no marker). */
int tftpdir_generation(const char *tftp_root, const char *name, char *gen, size_t cap);

/* Removes tftp_root/mac: refuses a symlink or anything without our marker
 * (-EPERM), never follows symlinks inside. Returns 0, -ENOENT (no dir) or
 * -errno with detail set. */
int tftpdir_remove(const char *tftp_root, const char *mac, char *detail, size_t cap);

/* 1 if tftp_root/mac is a real directory, 0 if absent, -errno otherwise. */
int tftpdir_exists(const char *tftp_root, const char *mac);

#endif
