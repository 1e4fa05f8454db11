/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The flasher's initramfs as boot-files import takes it: what a Pi's
 * kernel can start (Linux Documentation/driver-api/early-userspace/
 * buffer-format.rst: a newc cpio, possibly compressed, whose /init runs as
 * PID 1) and that our worker is (a static aarch64 program). */
#ifndef NETFLASH_INITRAMFS_H
#define NETFLASH_INITRAMFS_H

#include <stddef.h>

/* The largest file a Pi's network boot fetches whole over TFTP: 65535
 * blocks of 1024 bytes (its block counter does not roll over:
 * rpi-eeprom#375, #720). */
#define NF_PI_TFTP_MAX (65535ull * 1024)

/* Checks path: at most NF_PI_TFTP_MAX bytes (-EFBIG); raw, gzip, xz or zstd; a newc cpio (magic 070701/070702)
 * holding a regular /init that is a 64-bit little-endian aarch64 ELF with
 * no PT_INTERP (static). Decodes at most 256 MiB. Returns 0, or -EBADMSG
 * (or -errno reading it) with why (capacity cap): one phrase, e.g. "its
 * /init is a x86-64 ELF; ...". */
int initramfs_check(const char *path, char *why, size_t cap);

#endif
