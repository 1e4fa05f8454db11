/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tables: the magics of every compression and archive family, what names
 * claim, and what a decoded image's head must look like to be a disk. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "format.h"

#define B(s) (const uint8_t *)(s), sizeof(s) - 1

static void test_sniff(void)
{
	static const struct {
		const uint8_t *bytes;
		size_t len;
		int whole;
		enum nf_format f;
		const char *family; /* NULL: none */
		int archive;
		const char *why;    /* a substring of why, or NULL */
	} t[] = {
		{ B("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03xx"), 1, NF_FMT_GZIP, "gzip", 1, NULL },
		{ B("\x1f\x8b\x07\x00\x00\x00\x00\x00\x00\x03xx"), 1, NF_FMT_UNKNOWN, "gzip", 0, "unknown gzip method 7" },
		{ B("\x1f\x8b\x08\xe0\x00\x00\x00\x00\x00\x03xx"), 1, NF_FMT_UNKNOWN, "gzip", 0, "reserved header flags" },
		{ B("\x1f\x8b"), 1, NF_FMT_UNKNOWN, "gzip", 0, "truncated" },
		{ B("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00"), 1, NF_FMT_UNKNOWN, "gzip", 0, "cut short (9 bytes" },
		{ B("\x1f\x9d\x90xx"), 1, NF_FMT_UNKNOWN, "compress", 1, ".Z" },
		{ B("\x1f\x1e\x00\x00"), 1, NF_FMT_UNKNOWN, "pack", 0, "pack" },
		{ B("\x1f\x1f\x00\x00"), 1, NF_FMT_UNKNOWN, "pack", 0, "pack" },
		{ B("\xfd" "7zXZ\0\0\x04"), 1, NF_FMT_XZ, "xz", 1, NULL },
		{ B("\xfd" "7zXZ\x01\0\x04"), 1, NF_FMT_UNKNOWN, "xz", 0, "damaged header magic" },
		{ B("\x00" "7zXZ\0\0\x04"), 1, NF_FMT_UNKNOWN, "xz", 0, "damaged" },
		{ B("\xfd" "7zX"), 1, NF_FMT_UNKNOWN, "xz", 0, "cut short" },
		{ B("\xfd" "7zX"), 0, NF_FMT_RAW, NULL, 0, NULL },
		{ B("\x28\xb5\x2f\xfd\x00"), 1, NF_FMT_ZSTD, "zstd", 1, NULL },
		/* pzstd: a 12-byte skippable frame (magic 0x184D2A50, length 4), then a frame */
		{ B("\x50\x2a\x4d\x18\x04\x00\x00\x00\x10\x00\x00\x00\x28\xb5\x2f\xfd"), 1, NF_FMT_ZSTD, "zstd", 1, NULL },
		/* any of the 16 skippable magics, two in a row, then zstd */
		{ B("\x5f\x2a\x4d\x18\x00\x00\x00\x00\x53\x2a\x4d\x18\x01\x00\x00\x00\xaa\x28\xb5\x2f\xfd"), 1, NF_FMT_ZSTD,
		  "zstd", 1, NULL },
		/* a skippable frame, then lz4 */
		{ B("\x50\x2a\x4d\x18\x00\x00\x00\x00\x04\x22\x4d\x18"), 1, NF_FMT_UNKNOWN, "lz4", 1, "lz4" },
		/* skippable frames only */
		{ B("\x50\x2a\x4d\x18\x02\x00\x00\x00\xaa\xbb"), 1, NF_FMT_UNKNOWN, "zstd", 0, "only zstd skippable" },
		/* a skippable frame longer than the probe: the zstd decoder decides */
		{ B("\x50\x2a\x4d\x18\x00\x00\x01\x00\xaa\xbb"), 0, NF_FMT_ZSTD, "zstd", 1, NULL },
		{ B("\x50\x2a\x4d\x18\x00\x00\x00\x00" "abcd"), 1, NF_FMT_UNKNOWN, "zstd", 0, "neither a zstd nor an lz4" },
		{ B("\x1e\xb5\x2f\xfd\x00"), 1, NF_FMT_UNKNOWN, "zstd", 0, "legacy zstd" },
		{ B("BZh91AY&SY"), 1, NF_FMT_UNKNOWN, "bzip2", 1, "bzip2" },
		{ B("BZh01AY&SY"), 1, NF_FMT_RAW, NULL, 0, NULL },
		{ B("\x04\x22\x4d\x18\x64\x40"), 1, NF_FMT_UNKNOWN, "lz4", 1, "lz4" },
		{ B("\x02\x21\x4c\x18\x00\x00"), 1, NF_FMT_UNKNOWN, "lz4", 1, "legacy" },
		{ B("PK\x03\x04\x14\x00"), 1, NF_FMT_UNKNOWN, "zip", 1, "zip archive" },
		{ B("PK\x05\x06\x00\x00"), 1, NF_FMT_UNKNOWN, "zip", 1, "empty zip" },
		{ B("7z\xbc\xaf\x27\x1c\x00\x04"), 1, NF_FMT_UNKNOWN, "7z", 1, "7z" },
		{ B("LZIP\x01\x0c"), 1, NF_FMT_UNKNOWN, "lzip", 1, "lzip" },
		/* xz --format=lzma: 0x5d, 8 MiB dictionary, unknown size */
		{ B("\x5d\x00\x00\x80\x00\xff\xff\xff\xff\xff\xff\xff\xff\x00"), 1, NF_FMT_UNKNOWN, "lzma", 1, "LZMA-alone" },
		/* 3 MiB = 2^21 + 2^20, known size */
		{ B("\x5d\x00\x00\x30\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00"), 1, NF_FMT_UNKNOWN, "lzma", 1, NULL },
		/* 5 MiB dictionaries do not exist: raw */
		{ B("\x5d\x00\x00\x50\x00\xff\xff\xff\xff\xff\xff\xff\xff\x00"), 1, NF_FMT_RAW, NULL, 0, NULL },
		{ B("\x89LZO\x00\x0d\x0a\x1a\x0a"), 1, NF_FMT_UNKNOWN, "lzop", 0, "lzop" },
		{ B("QFI\xfb\x00\x00\x00\x03"), 1, NF_FMT_UNKNOWN, "qcow2", 0, "qemu-img convert" },
		{ B("\x3a\xff\x26\xed\x01\x00"), 1, NF_FMT_UNKNOWN, "android-sparse", 0, "simg2img" },
		{ B("\xfa\xb8\x00\x10\x8e\xd0"), 1, NF_FMT_RAW, NULL, 0, NULL }, /* MBR boot code */
		{ B("<!DOCTYPE html>"), 1, NF_FMT_RAW, NULL, 0, NULL },
		{ B(""), 1, NF_FMT_RAW, NULL, 0, NULL },
	};
	uint8_t tar[512] = { 'x', '.', 'i', 'm', 'g' };
	struct nf_sniff s;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		nf_format_sniff(t[i].bytes, t[i].len, t[i].whole, &s);
		CHECK(s.format == t[i].f, "sniff #%zu: format %d, want %d", i, s.format, t[i].f);
		CHECK((!s.family && !t[i].family) || (s.family && t[i].family && strcmp(s.family, t[i].family) == 0),
		      "sniff #%zu: family %s", i, s.family ? s.family : "(none)");
		CHECK(s.archive == t[i].archive, "sniff #%zu: archive %d", i, s.archive);
		CHECK(!t[i].why || strstr(s.why, t[i].why), "sniff #%zu: why '%s'", i, s.why);
		CHECK(!s.family || s.why[0], "sniff #%zu: a family without a why", i);
	}
	/* tar: "ustar" at 257, whatever the member's name */
	memcpy(tar + 257, "ustar\0" "00", 8);
	nf_format_sniff(tar, sizeof(tar), 1, &s);
	CHECK(s.format == NF_FMT_UNKNOWN && s.family && strcmp(s.family, "tar") == 0 && s.archive, "tar");
	nf_format_sniff(tar, 261, 1, &s);
	CHECK(s.format == NF_FMT_RAW, "tar magic cut at 261 bytes is no tar");
}

static void test_claim(void)
{
	static const struct { const char *name; const char *family; } t[] = {
		{ "raspios.img.xz", "xz" }, { "/a/b/x.img.gz", "gzip" }, { "x.tgz", "gzip" },
		{ "x.img.zst", "zstd" }, { "x.zstd", "zstd" }, { "x.img.bz2", "bzip2" }, { "x.img.lz4", "lz4" },
		{ "x.zip", "zip" }, { "x.ZIP", "zip" }, { "x.7z", "7z" }, { "x.lz", "lzip" },
		{ "x.lzma", "lzma" }, { "x.Z", "compress" }, { "x.z", "pack" }, { "x.tar", "tar" },
		{ "x.img.tar.xz", "xz" }, { "x.img", NULL }, { "x", NULL }, { ".xz", NULL },
		{ "dir.xz/x.img", NULL }, { "nfs://h/e/x.img.xz?version=3", "xz" },
		{ "nfs://h/e/x.img?a=b.xz", NULL }, { "x.img.", NULL },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *c = nf_format_claim(t[i].name);

		CHECK((!c && !t[i].family) || (c && t[i].family && strcmp(c, t[i].family) == 0),
		      "claim '%s': %s", t[i].name, c ? c : "(none)");
	}
	CHECK(strcmp(nf_format_claim_ext("a/x.img.xz"), ".xz") == 0, "claim ext");
}

/* A disk head: an MBR with one partition (type, start, sectors), 55 aa. */
static void mbr(uint8_t *d, uint8_t type, uint8_t status)
{
	memset(d, 0, 8192);
	d[446] = status;
	d[446 + 4] = type;
	d[446 + 8] = 0x00, d[446 + 9] = 0x20;  /* LBA 8192 */
	d[446 + 12] = 0x00, d[446 + 13] = 0x00, d[446 + 14] = 0x04; /* 262144 sectors */
	d[510] = 0x55;
	d[511] = 0xaa;
}

static void test_head(void)
{
	static uint8_t d[8192];
	char why[160];
	const char *inner;

	mbr(d, 0x0c, 0x00);
	CHECK(nf_head_check(d, sizeof(d), 0, &inner, why, sizeof(why)) == NF_HEAD_DISK, "MBR: %s", why);
	mbr(d, 0x0c, 0x80);
	CHECK(nf_head_check(d, 512, 1, &inner, why, sizeof(why)) == NF_HEAD_DISK, "512-byte MBR image: %s", why);
	mbr(d, 0x0c, 0x42);
	CHECK(nf_head_check(d, sizeof(d), 0, &inner, why, sizeof(why)) == NF_HEAD_NOT_DISK && strstr(why, "status byte 0x42"),
	      "bad status: %s", why);
	mbr(d, 0x00, 0x00);
	CHECK(nf_head_check(d, sizeof(d), 0, &inner, why, sizeof(why)) == NF_HEAD_NOT_DISK && strstr(why, "empty partition table"),
	      "no partition: %s", why);
	mbr(d, 0x0c, 0x00);
	d[511] = 0x00;
	CHECK(nf_head_check(d, sizeof(d), 0, &inner, why, sizeof(why)) == NF_HEAD_NOT_DISK && strstr(why, "55 aa at byte 510"),
	      "no signature: %s", why);
	/* protective MBR: GPT header at LBA 1 (512-byte sectors), or at 4096 */
	mbr(d, 0xee, 0x00);
	CHECK(nf_head_check(d, sizeof(d), 0, &inner, why, sizeof(why)) == NF_HEAD_NOT_DISK && strstr(why, "without a GPT header"),
	      "protective MBR alone: %s", why);
	memcpy(d + 512, "EFI PART", 8);
	CHECK(nf_head_check(d, sizeof(d), 0, &inner, why, sizeof(why)) == NF_HEAD_DISK, "GPT 512: %s", why);
	mbr(d, 0xee, 0x00);
	memcpy(d + 4096, "EFI PART", 8);
	CHECK(nf_head_check(d, sizeof(d), 0, &inner, why, sizeof(why)) == NF_HEAD_DISK, "GPT 4096: %s", why);
	CHECK(nf_head_check(d, 600, 1, &inner, why, sizeof(why)) == NF_HEAD_NOT_DISK, "GPT header past a short image");
	/* a bare FAT filesystem has 55 aa too, and no partition table */
	mbr(d, 0x00, 0x00);
	memcpy(d, "\xeb\x58\x90mkfs.fat", 11);
	memcpy(d + 0x52, "FAT32   ", 8);
	memset(d + 446, 0x41, 64);
	CHECK(nf_head_check(d, sizeof(d), 0, &inner, why, sizeof(why)) == NF_HEAD_NOT_DISK && strstr(why, "FAT filesystem"),
	      "bare FAT: %s", why);
	/* text, HTML, short */
	CHECK(nf_head_check(B("<!DOCTYPE html><html>404</html>"), 1, &inner, why, sizeof(why)) == NF_HEAD_NOT_DISK &&
	      strstr(why, "HTML page"), "html: %s", why);
	CHECK(nf_head_check(B("hello\n"), 1, &inner, why, sizeof(why)) == NF_HEAD_NOT_DISK && strstr(why, "only 6 bytes"),
	      "6 bytes: %s", why);
	CHECK(nf_head_check(B(""), 1, &inner, why, sizeof(why)) == NF_HEAD_NOT_DISK, "empty");
	/* compressed again, or a tar inside */
	CHECK(nf_head_check(B("BZh91AY&SY"), 1, &inner, why, sizeof(why)) == NF_HEAD_NESTED && strcmp(inner, "bzip2") == 0,
	      "bzip2 inside: %s", why);
	CHECK(nf_head_check(B("\xfd" "7zXZ\0\0\x04"), 1, &inner, why, sizeof(why)) == NF_HEAD_NESTED && strcmp(inner, "xz") == 0,
	      "xz inside: %s", why);
	memset(d, 0, sizeof(d));
	memcpy(d + 257, "ustar  ", 8);
	CHECK(nf_head_check(d, sizeof(d), 0, &inner, why, sizeof(why)) == NF_HEAD_NESTED && strcmp(inner, "tar") == 0,
	      "tar inside: %s", why);
}

int main(void)
{
	test_sniff();
	test_claim();
	test_head();
	return CHECK_DONE();
}
