/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Image formats: what the first bytes of a stream are (never the name
 * alone), what a file name claims, and whether decoded bytes start like a
 * disk. Nothing reaches a card unless it is a stream netflash decodes
 * completely, or raw data that starts like a disk. */
#ifndef NETFLASH_FORMAT_H
#define NETFLASH_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* The formats the worker's decoder reads (lib/decode.c). */
enum nf_format { NF_FMT_UNKNOWN = -1, NF_FMT_RAW, NF_FMT_GZIP, NF_FMT_XZ, NF_FMT_ZSTD };

/* Bytes of a stream's head that nf_format_sniff() wants: the tar magic sits
 * at 257, a pzstd skippable frame takes 12, a GPT header is at 512 or 4096. */
#define NF_FORMAT_PROBE_LEN 8192

/* What a stream's first bytes are. */
struct nf_sniff {
	/* The worker decoder for it: NF_FMT_RAW when no compression or archive
	 * magic matched; NF_FMT_UNKNOWN when netflash's worker cannot decode it
	 * (then why says what it is). */
	enum nf_format format;
	/* The family whose magic matched: "gzip", "xz", "zstd", "bzip2", "lz4",
	 * "zip", "7z", "lzip", "lzma", "compress", "pack", "tar", "qcow2" ...;
	 * NULL for none (raw data). */
	const char *family;
	/* 1: libarchive reads it, so `netflash image add` converts it. */
	int archive;
	/* Whenever family is set: what it is, one phrase, e.g. "xz data",
	 * "gzip data with unknown gzip method 7", "a tar archive", "a gzip
	 * header cut short (2 bytes; truncated)". */
	char why[96];
};

/* Looks at the first len bytes of a stream (buf; len may be 0). whole: 1 if
 * those are all of the stream's bytes (a header cut short is then
 * truncation, not a short probe). Fills *s; never fails. */
void nf_format_sniff(const uint8_t *buf, size_t len, int whole, struct nf_sniff *s);

/* The family a file name claims by its last extension (".xz" -> "xz",
 * ".tgz" -> "gzip", ".zip" -> "zip", ".Z" -> "compress"), or NULL when the
 * extension names no compression or archive (".img", none). name may be a
 * path or an NFS URL (its query is ignored). */
const char *nf_format_claim(const char *name);

/* The extension netflash's claim table knows for a family: "xz" -> ".xz". */
const char *nf_format_claim_ext(const char *name);

/* Whether name's extension claim holds for the bytes sniffed into s (head:
 * their first n bytes; whole as for nf_format_sniff()). Returns 0 (holds,
 * or no claim), or -EBADMSG with why (capacity cap): "named .xz but holds
 * gzip data", "named .xz but holds no xz data: text ('...')". */
int nf_format_check_claim(const char *name, const struct nf_sniff *s, const uint8_t *head, size_t n, int whole,
			  char *why, size_t cap);

/* What decoded bytes start like. */
enum nf_head {
	NF_HEAD_DISK,     /* an MBR (or protective MBR + GPT header) */
	NF_HEAD_NESTED,   /* compressed or archive data again (x.img.bz2.xz, x.tar.gz) */
	NF_HEAD_NOT_DISK, /* anything else: text, an HTML page, a bare filesystem ... */
};

/* Checks the first len bytes of a decoded image. whole: they are the whole
 * image. Disk: the boot signature 55 aa at byte 510, partition entries with
 * a valid status byte and at least one used entry, and for a protective
 * MBR (type 0xee) the "EFI PART" header at LBA 1 (512- or 4096-byte
 * sectors). Source: the UEFI spec's MBR and GPT header layout (5.2, 5.3).
 * On anything but NF_HEAD_DISK, why (capacity cap) says what it is, one
 * phrase; *family names the inner family for NF_HEAD_NESTED (may be NULL). */
enum nf_head nf_head_check(const uint8_t *buf, size_t len, int whole, const char **family, char *why,
			   size_t cap);

/* "raw", "gzip", "xz", "zstd". */
const char *nf_format_name(enum nf_format f);

/* Parses a format name (also "gz", "zst", "img"). Returns NF_FMT_UNKNOWN if none. */
enum nf_format nf_format_parse(const char *name);

/* A byte count for people: "1.50 GiB", "12.0 MiB", "512 B". */
void nf_format_bytes(uint64_t b, char *out, size_t cap);

#endif
