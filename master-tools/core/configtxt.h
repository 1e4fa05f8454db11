/* SPDX-License-Identifier: GPL-2.0-or-later */
/* config.txt as the Pi's network-boot firmware reads it: only its first
 * 4096 bytes; a setting whose line ends past byte 4096 is ignored
 * (raspberrypi/firmware#1575, #1012; a Pi 5 does not boot with a longer
 * one, #1848; ../shared/DESIGN.md). */
#ifndef NETFLASH_CONFIGTXT_H
#define NETFLASH_CONFIGTXT_H

#include <stddef.h>

#define NF_CONFIG_TXT_NETBOOT_MAX 4096

/* Called for a line left out (1-based line number in the input, the line
 * without its newline, why). */
typedef void (*nf_config_said_fn)(unsigned lineno, const char *line, const char *why, void *ctx);

/* Returns why a line with this key must not be served, or NULL. */
typedef const char *(*nf_config_skip_fn)(const char *key);

/* The key of one config.txt line ("kernel" of "kernel=x", "initramfs" of
 * "initramfs f followkernel") into key (cap bytes); "" for a blank line, a
 * comment or a [section] filter. */
void nf_config_key(const char *line, char *key, size_t cap);

/* Writes head (NULL: none; whole lines, in the implicit [all] context the
 * file starts in, so first where the firmware reads them) then `in` made
 * compact: comment lines, blank lines, trailing blanks and CRs dropped;
 * [section] filters and every setting kept in order, so conditional
 * sections mean what they meant; a line whose key skip() names (skip may be
 * NULL) is left out and passed to said(). out gets a NUL-terminated text
 * of at most cap - 1 bytes. Returns its length, or -EMSGSIZE when it does
 * not fit in cap - 1 bytes. */
long nf_config_compact(const char *in, const char *head, nf_config_skip_fn skip, nf_config_said_fn said, void *ctx,
		       char *out, size_t cap);

#endif
