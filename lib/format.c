#include "format.h"

#include <stdio.h>
#include <string.h>

struct magic {
	const char *name;
	enum nf_format fmt;
	size_t len;
	const uint8_t bytes[8];
};

static const struct magic magics[] = {
	{ "gzip", NF_FMT_GZIP, 3, { 0x1f, 0x8b, 0x08 } },
	{ "xz", NF_FMT_XZ, 6, { 0xfd, '7', 'z', 'X', 'Z', 0x00 } },
	{ "zstd", NF_FMT_ZSTD, 4, { 0x28, 0xb5, 0x2f, 0xfd } },
	/* Formats we do not decode: refuse rather than write them raw. */
	{ "bzip2", NF_FMT_UNKNOWN, 3, { 'B', 'Z', 'h' } },
	{ "lz4", NF_FMT_UNKNOWN, 4, { 0x04, 0x22, 0x4d, 0x18 } },
	{ "zip", NF_FMT_UNKNOWN, 4, { 'P', 'K', 0x03, 0x04 } },
	{ "lzip", NF_FMT_UNKNOWN, 4, { 'L', 'Z', 'I', 'P' } },
	{ "7z", NF_FMT_UNKNOWN, 6, { '7', 'z', 0xbc, 0xaf, 0x27, 0x1c } },
};

enum nf_format nf_format_detect(const uint8_t *buf, size_t len, const char **other)
{
	if (other)
		*other = NULL;
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
		const struct magic *m = &magics[i];

		if (len < m->len || memcmp(buf, m->bytes, m->len) != 0)
			continue;
		if (m->fmt == NF_FMT_UNKNOWN && other)
			*other = m->name;
		return m->fmt;
	}
	return NF_FMT_RAW;
}

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
