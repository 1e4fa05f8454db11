/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "format.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Magic numbers, from each format's specification: RFC 1952 (gzip), the
 * .xz file format 1.1.0, RFC 8878 (zstd; skippable frames 0x184D2A5?), the
 * LZ4 frame format (legacy frames 0x184C2102), bzip2's "BZh[1-9]", PKWARE's
 * APPNOTE (zip), 7-Zip's 7zFormat.txt, lzip's manual, POSIX ustar (magic at
 * 257), ncompress (.Z 1f 9d) and pack (1f 1e); disk containers from QEMU's
 * docs (qcow2, VMDK, VDI) and Android's sparse_format.h. */
struct magic {
	const char *family;
	enum nf_format fmt;  /* NF_FMT_UNKNOWN: the worker cannot decode it */
	int archive;         /* libarchive reads it */
	size_t off, len;
	const uint8_t bytes[8];
	const char *what;    /* for refusals: "bzip2 data" */
};

static const struct magic magics[] = {
	{ "xz", NF_FMT_XZ, 1, 0, 6, { 0xfd, '7', 'z', 'X', 'Z', 0x00 }, "xz data" },
	{ "zstd", NF_FMT_ZSTD, 1, 0, 4, { 0x28, 0xb5, 0x2f, 0xfd }, "zstd data" },
	{ "bzip2", NF_FMT_UNKNOWN, 1, 0, 3, { 'B', 'Z', 'h' }, "bzip2 data" },
	{ "lz4", NF_FMT_UNKNOWN, 1, 0, 4, { 0x04, 0x22, 0x4d, 0x18 }, "lz4 data" },
	{ "lz4", NF_FMT_UNKNOWN, 1, 0, 4, { 0x02, 0x21, 0x4c, 0x18 }, "lz4 data (legacy frames)" },
	{ "zip", NF_FMT_UNKNOWN, 1, 0, 4, { 'P', 'K', 0x03, 0x04 }, "a zip archive" },
	{ "zip", NF_FMT_UNKNOWN, 1, 0, 4, { 'P', 'K', 0x05, 0x06 }, "an empty zip archive" },
	{ "zip", NF_FMT_UNKNOWN, 1, 0, 4, { 'P', 'K', 0x07, 0x08 }, "a split zip archive" },
	{ "7z", NF_FMT_UNKNOWN, 1, 0, 6, { '7', 'z', 0xbc, 0xaf, 0x27, 0x1c }, "a 7z archive" },
	{ "lzip", NF_FMT_UNKNOWN, 1, 0, 4, { 'L', 'Z', 'I', 'P' }, "lzip data" },
	{ "compress", NF_FMT_UNKNOWN, 1, 0, 2, { 0x1f, 0x9d }, "compress (.Z) data" },
	{ "pack", NF_FMT_UNKNOWN, 0, 0, 2, { 0x1f, 0x1e }, "pack (.z) data" },
	{ "pack", NF_FMT_UNKNOWN, 0, 0, 2, { 0x1f, 0x1f }, "old pack data" },
	{ "compact", NF_FMT_UNKNOWN, 0, 0, 2, { 0x1f, 0xff }, "compact data" },
	{ "lzop", NF_FMT_UNKNOWN, 0, 0, 4, { 0x89, 'L', 'Z', 'O' }, "lzop data" },
	{ "tar", NF_FMT_UNKNOWN, 1, 257, 5, { 'u', 's', 't', 'a', 'r' }, "a tar archive" },
	{ "qcow2", NF_FMT_UNKNOWN, 0, 0, 4, { 'Q', 'F', 'I', 0xfb }, "a QEMU qcow2 disk (qemu-img convert -O raw makes an image)" },
	{ "vmdk", NF_FMT_UNKNOWN, 0, 0, 4, { 'K', 'D', 'M', 'V' }, "a VMDK disk (qemu-img convert -O raw makes an image)" },
	{ "vhd", NF_FMT_UNKNOWN, 0, 0, 8, { 'c', 'o', 'n', 'e', 'c', 't', 'i', 'x' }, "a VHD disk (qemu-img convert -O raw makes an image)" },
	{ "android-sparse", NF_FMT_UNKNOWN, 0, 0, 4, { 0x3a, 0xff, 0x26, 0xed }, "an Android sparse image (simg2img makes an image)" },
};

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void set(struct nf_sniff *s, const char *family, enum nf_format fmt, int archive, const char *fmtstr, ...)
	__attribute__((format(printf, 5, 6)));
static void set(struct nf_sniff *s, const char *family, enum nf_format fmt, int archive, const char *fmtstr, ...)
{
	va_list ap;

	s->family = family;
	s->format = fmt;
	s->archive = archive;
	va_start(ap, fmtstr);
	vsnprintf(s->why, sizeof(s->why), fmtstr, ap);
	va_end(ap);
}

/* gzip, RFC 1952 2.3.1: ID1 ID2 CM FLG MTIME(4) XFL OS; CM 8 is deflate,
 * the only method defined; FLG bits 5-7 are reserved and must be zero. */
static void sniff_gzip(const uint8_t *buf, size_t len, int whole, struct nf_sniff *s)
{
	if (len < 10 && whole) {
		set(s, "gzip", NF_FMT_UNKNOWN, 0, "a gzip header cut short (%zu bytes; truncated)", len);
	} else if (len >= 3 && buf[2] != 8) {
		set(s, "gzip", NF_FMT_UNKNOWN, 0, "gzip data with unknown gzip method %u", buf[2]);
	} else if (len >= 4 && (buf[3] & 0xe0)) {
		set(s, "gzip", NF_FMT_UNKNOWN, 0, "gzip data with reserved header flags 0x%02x", buf[3]);
	} else {
		set(s, "gzip", NF_FMT_GZIP, 1, "gzip data");
	}
}

/* zstd and lz4 frames may be preceded by skippable frames (magic
 * 0x184D2A50..5F, then a 32-bit little-endian length); pzstd writes one
 * before every frame. The first real frame decides. */
static void sniff_skippable(const uint8_t *buf, size_t len, int whole, struct nf_sniff *s)
{
	uint64_t pos = 0;

	while (pos + 8 <= len && (le32(buf + pos) & 0xfffffff0u) == 0x184d2a50u)
		pos += 8 + (uint64_t)le32(buf + pos + 4);
	if (pos >= len) {
		/* The next frame lies past the probe: zstd's decoder reads
		 * skippable frames itself and refuses anything else. */
		if (whole)
			set(s, "zstd", NF_FMT_UNKNOWN, 0, "only zstd skippable frames, no image data (truncated?)");
		else
			set(s, "zstd", NF_FMT_ZSTD, 1, "zstd data");
		return;
	}
	if (pos + 4 <= len && le32(buf + pos) == 0xfd2fb528u) {
		set(s, "zstd", NF_FMT_ZSTD, 1, "zstd data");
	} else if (pos + 4 <= len && (le32(buf + pos) == 0x184d2204u || le32(buf + pos) == 0x184c2102u)) {
		set(s, "lz4", NF_FMT_UNKNOWN, 1, "lz4 data");
	} else if (pos + 4 > len && !whole) {
		set(s, "zstd", NF_FMT_ZSTD, 1, "zstd data");
	} else {
		set(s, "zstd", NF_FMT_UNKNOWN, 0, "skippable frames followed by neither a zstd nor an lz4 frame "
		    "(at byte %llu)", (unsigned long long)pos);
	}
}

/* LZMA-alone (.lzma) has no magic: a properties byte (0x5d for every
 * preset of xz --format=lzma and of lzma-utils), a power-of-two-ish
 * dictionary size and a size that is -1 or plausible (xz's
 * lzma_alone_decoder checks the same). */
static int is_lzma_alone(const uint8_t *buf, size_t len)
{
	uint32_t dict, third;
	uint64_t size = 0;

	if (len < 13 || buf[0] != 0x5d)
		return 0;
	dict = le32(buf + 1);
	third = dict / 3;
	if (dict < 4096 || !(dict == UINT32_MAX || (dict & (dict - 1)) == 0 ||
			     (dict % 3 == 0 && (third & (third - 1)) == 0)))
		return 0;
	for (int i = 0; i < 8; i++)
		size |= (uint64_t)buf[5 + i] << (8 * i);
	return size == UINT64_MAX || size < (1ull << 48);
}

void nf_format_sniff(const uint8_t *buf, size_t len, int whole, struct nf_sniff *s)
{
	static const uint8_t xz_magic[6] = { 0xfd, '7', 'z', 'X', 'Z', 0x00 };

	memset(s, 0, sizeof(*s));
	s->format = NF_FMT_RAW;
	if (len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
		sniff_gzip(buf, len, whole, s);
		return;
	}
	if (len >= 8 && (le32(buf) & 0xfffffff0u) == 0x184d2a50u) {
		sniff_skippable(buf, len, whole, s);
		return;
	}
	if (len >= 4 && le32(buf) >= 0xfd2fb51eu && le32(buf) <= 0xfd2fb527u) {
		set(s, "zstd", NF_FMT_UNKNOWN, 0, "legacy zstd (v0.x) data");
		return;
	}
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
		const struct magic *m = &magics[i];

		if (len < m->off + m->len || memcmp(buf + m->off, m->bytes, m->len) != 0)
			continue;
		if (strcmp(m->family, "bzip2") == 0 && (len < 4 || buf[3] < '1' || buf[3] > '9'))
			continue;
		set(s, m->family, m->fmt, m->archive, "%s", m->what);
		return;
	}
	if (is_lzma_alone(buf, len)) {
		set(s, "lzma", NF_FMT_UNKNOWN, 1, "lzma (LZMA-alone) data");
		return;
	}
	/* One damaged byte in xz's six-byte magic: xz itself refuses it. */
	if (len >= 6) {
		int same = 0;

		for (int i = 0; i < 6; i++)
			same += buf[i] == xz_magic[i];
		if (same == 5) {
			set(s, "xz", NF_FMT_UNKNOWN, 0, "xz data with a damaged header magic");
			return;
		}
	}
	if (len > 0 && len < 6 && whole && memcmp(buf, xz_magic, len) == 0)
		set(s, "xz", NF_FMT_UNKNOWN, 0, "an xz header cut short (%zu bytes; truncated)", len);
}

/* ---- names -------------------------------------------------------------- */

static const struct { const char *ext; const char *family; int exact_case; } claims[] = {
	{ "gz", "gzip", 0 }, { "tgz", "gzip", 0 }, { "xz", "xz", 0 }, { "txz", "xz", 0 },
	{ "zst", "zstd", 0 }, { "zstd", "zstd", 0 }, { "tzst", "zstd", 0 }, { "bz2", "bzip2", 0 },
	{ "tbz", "bzip2", 0 }, { "tbz2", "bzip2", 0 }, { "lz4", "lz4", 0 }, { "zip", "zip", 0 },
	{ "7z", "7z", 0 }, { "lz", "lzip", 0 }, { "lzma", "lzma", 0 }, { "Z", "compress", 1 },
	{ "z", "pack", 1 }, { "tar", "tar", 0 }, { "lzo", "lzop", 0 }, { "qcow2", "qcow2", 0 },
	{ "vmdk", "vmdk", 0 }, { "vhd", "vhd", 0 },
};

const char *nf_format_claim(const char *name)
{
	const char *base = strrchr(name, '/'), *dot, *end = strchr(name, '?');
	size_t n;

	base = base ? base + 1 : name;
	if (end && end < base)
		end = NULL;
	n = end ? (size_t)(end - base) : strlen(base);
	dot = NULL;
	for (size_t i = 0; i < n; i++)
		if (base[i] == '.')
			dot = base + i;
	if (!dot || dot == base)
		return NULL;
	n -= (size_t)(dot + 1 - base);
	for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
		if (strlen(claims[i].ext) != n)
			continue;
		if (claims[i].exact_case ? strncmp(dot + 1, claims[i].ext, n) == 0
					 : strncasecmp(dot + 1, claims[i].ext, n) == 0)
			return claims[i].family;
	}
	return NULL;
}

const char *nf_format_claim_ext(const char *name)
{
	const char *base = strrchr(name, '/'), *dot;

	base = base ? base + 1 : name;
	dot = strrchr(base, '.');
	return dot && dot != base ? dot : "";
}

int nf_format_check_claim(const char *name, const struct nf_sniff *s, const uint8_t *head, size_t n, int whole,
			  char *why, size_t cap)
{
	const char *claim = nf_format_claim(name);
	char what[160];

	if (!claim || (s->family && strcmp(claim, s->family) == 0))
		return 0;
	if (s->family) {
		snprintf(why, cap, "named %s but holds %s", nf_format_claim_ext(name), s->why);
	} else {
		nf_head_check(head, n, whole, NULL, what, sizeof(what));
		snprintf(why, cap, "named %s but holds no %s data: %s", nf_format_claim_ext(name), claim, what);
	}
	return -EBADMSG;
}

/* ---- decoded heads ------------------------------------------------------ */

static int looks_html(const uint8_t *buf, size_t len)
{
	size_t i = 0;

	if (len >= 3 && buf[0] == 0xef && buf[1] == 0xbb && buf[2] == 0xbf)
		i = 3;
	while (i < len && isspace(buf[i]))
		i++;
	return (len - i >= 9 && strncasecmp((const char *)buf + i, "<!doctype", 9) == 0) ||
	       (len - i >= 5 && strncasecmp((const char *)buf + i, "<html", 5) == 0) ||
	       (len - i >= 5 && strncasecmp((const char *)buf + i, "<?xml", 5) == 0);
}

static int looks_text(const uint8_t *buf, size_t len)
{
	size_t n = len < 512 ? len : 512;

	for (size_t i = 0; i < n; i++) {
		if (buf[i] < 0x20 && buf[i] != '\n' && buf[i] != '\r' && buf[i] != '\t')
			return 0;
		if (buf[i] == 0x7f)
			return 0;
	}
	return n > 0;
}

/* "an HTML page ('<!DOCTYPE...'...)", "text ('Not Found')": what bytes that
 * are no disk look like, for people; 0 when they are neither (binary). */
static int describe(const uint8_t *buf, size_t len, char *why, size_t cap)
{
	char peek[28];
	size_t k = 0;

	for (size_t i = 0; i < len && k < sizeof(peek) - 4; i++) {
		if (buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')
			peek[k++] = ' ';
		else if (buf[i] >= 0x20 && buf[i] < 0x7f && buf[i] != '\'')
			peek[k++] = (char)buf[i];
		else
			peek[k++] = '?';
	}
	if (k < len && k == sizeof(peek) - 4) {
		memcpy(peek + k, "...", 3);
		k += 3;
	}
	peek[k] = '\0';
	if (looks_html(buf, len))
		snprintf(why, cap, "an HTML page ('%s'; a download error page?)", peek);
	else if (looks_text(buf, len))
		snprintf(why, cap, "text ('%s')", peek);
	else
		return 0;
	return 1;
}

/* A FAT or ext boot sector where an MBR should be: a bare filesystem. */
static const char *bare_filesystem(const uint8_t *buf, size_t len)
{
	if (len >= 0x5a && (memcmp(buf + 0x36, "FAT", 3) == 0 || memcmp(buf + 0x52, "FAT32", 5) == 0))
		return "a FAT filesystem without a partition table";
	if (len >= 0x43a && buf[0x438] == 0x53 && buf[0x439] == 0xef)
		return "an ext2/3/4 filesystem without a partition table";
	return NULL;
}

static enum nf_head not_disk(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum nf_head not_disk(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
	return NF_HEAD_NOT_DISK;
}

static enum nf_head check_mbr(const uint8_t *buf, size_t len, int whole, char *why, size_t cap)
{
	int used = 0, protective = 0;

	for (int i = 0; i < 4; i++) {
		const uint8_t *e = buf + 446 + 16 * i;

		if (e[0] != 0x00 && e[0] != 0x80)
			return not_disk(why, cap, "no valid partition table (entry %d has status byte 0x%02x)", i + 1, e[0]);
		if (e[4] != 0 && le32(e + 12) != 0)
			used++;
		if (e[4] == 0xee)
			protective = 1;
	}
	if (!used)
		return not_disk(why, cap, "an empty partition table (no partition)");
	if (!protective)
		return NF_HEAD_DISK;
	/* A protective MBR: the GPT header at LBA 1, in 512- or 4096-byte sectors. */
	if (len >= 520 && memcmp(buf + 512, "EFI PART", 8) == 0)
		return NF_HEAD_DISK;
	if (len >= 4104 && memcmp(buf + 4096, "EFI PART", 8) == 0)
		return NF_HEAD_DISK;
	if (!whole && len < 4104)
		return not_disk(why, cap, "a protective MBR whose GPT header could not be read");
	return not_disk(why, cap, "a protective MBR (GPT) without a GPT header at LBA 1");
}

enum nf_head nf_head_check(const uint8_t *buf, size_t len, int whole, const char **family, char *why,
			   size_t cap)
{
	struct nf_sniff s;
	const char *bare;

	if (family)
		*family = NULL;
	nf_format_sniff(buf, len, whole, &s);
	if (s.family && strcmp(s.family, "qcow2") != 0 && strcmp(s.family, "vmdk") != 0 &&
	    strcmp(s.family, "vhd") != 0 && strcmp(s.family, "android-sparse") != 0) {
		if (family)
			*family = s.family;
		snprintf(why, cap, "%s", s.why);
		return NF_HEAD_NESTED;
	}
	if (s.family)
		return not_disk(why, cap, "%s", s.why);
	if (len == 0)
		return not_disk(why, cap, "an empty image");
	if (len < 512) {
		char what[120];

		if (!describe(buf, len, what, sizeof(what)))
			snprintf(what, sizeof(what), "binary data");
		return not_disk(why, cap, "only %zu bytes, too short for a disk image: %s", len, what);
	}
	if (buf[510] != 0x55 || buf[511] != 0xaa) {
		if ((bare = bare_filesystem(buf, len)))
			return not_disk(why, cap, "%s", bare);
		if (!describe(buf, len, why, cap))
			snprintf(why, cap, "no partition table (no boot signature 55 aa at byte 510)");
		return NF_HEAD_NOT_DISK;
	}
	if ((bare = bare_filesystem(buf, len)) && check_mbr(buf, len, whole, why, cap) != NF_HEAD_DISK)
		return not_disk(why, cap, "%s", bare);
	return check_mbr(buf, len, whole, why, cap);
}

/* ---- names of the worker formats ---------------------------------------- */

const char *nf_format_name(enum nf_format f)
{
	switch (f) {
	case NF_FMT_RAW:
		return "raw";
	case NF_FMT_GZIP:
		return "gzip";
	case NF_FMT_XZ:
		return "xz";
	case NF_FMT_ZSTD:
		return "zstd";
	default:
		return "unknown";
	}
}

enum nf_format nf_format_parse(const char *name)
{
	static const struct { const char *name; enum nf_format fmt; } names[] = {
		{ "raw", NF_FMT_RAW }, { "img", NF_FMT_RAW }, { "gzip", NF_FMT_GZIP },
		{ "gz", NF_FMT_GZIP }, { "xz", NF_FMT_XZ }, { "zstd", NF_FMT_ZSTD },
		{ "zst", NF_FMT_ZSTD },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i].name) == 0)
			return names[i].fmt;
	}
	return NF_FMT_UNKNOWN;
}

void nf_format_bytes(uint64_t b, char *out, size_t cap)
{
	if (b >= (1ull << 30))
		snprintf(out, cap, "%.2f GiB", (double)b / (1ull << 30));
	else if (b >= (1ull << 20))
		snprintf(out, cap, "%.1f MiB", (double)b / (1ull << 20));
	else
		snprintf(out, cap, "%llu B", (unsigned long long)b);
}
