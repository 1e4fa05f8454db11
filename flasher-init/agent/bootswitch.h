/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Making a card non-bootable for a reimage, reversibly: the Pi firmware
 * and kernels (bootcode.bin, start*.elf, kernel*.img) are moved from the
 * root of the mounted FAT boot partition into netflash-disabled/ beside a
 * README.txt that says why. A Pi 3B+ then finds no bootcode.bin on its card
 * and netboots; a Pi 4 with SD first in BOOT_ORDER finds no start4.elf, and
 * a Pi 5 (its firmware is in EEPROM) no kernel, and goes on to the network.
 * Restoring moves them back. Used by netflash-agent on the running OS and
 * by flasher-init when a reimage aborts before the card was touched. */
#ifndef NETFLASH_BOOTSWITCH_H
#define NETFLASH_BOOTSWITCH_H

#include <stddef.h>

#define NF_BOOT_DISABLED_DIR "netflash-disabled"

/* Moves the firmware of the boot partition mounted at dir aside. Returns
 * the number of files moved (> 0), or -errno with a one-line detail:
 * -ENOENT (no firmware there), -EEXIST (already disabled), or the error of
 * a move (the files moved before it are moved back). */
int nf_boot_disable(const char *dir, const char *why, char *detail, size_t cap);

/* Moves the files back. Returns the number restored (> 0), -ENOENT when
 * nothing was disabled, or -errno with detail. */
int nf_boot_restore(const char *dir, char *detail, size_t cap);

/* The count of files moved aside (0: the card is bootable), or -errno. */
int nf_boot_disabled_count(const char *dir);

#endif
