/* Image formats and their detection from magic bytes (never from names). */
#ifndef NETFLASH_FORMAT_H
#define NETFLASH_FORMAT_H

#include <stddef.h>
#include <stdint.h>

enum nf_format { NF_FMT_UNKNOWN = -1, NF_FMT_RAW, NF_FMT_GZIP, NF_FMT_XZ, NF_FMT_ZSTD };

/* Bytes of the stream's head that nf_format_detect() looks at, at most. */
#define NF_FORMAT_PROBE_LEN 512

/* Detects the format of a stream from its first len bytes. Compressed formats
 * are recognised by their magic; anything else is raw, except data that
 * starts like another compressor (bzip2, lz4, zip, lzip, 7z), which is
 * NF_FMT_UNKNOWN: writing such a file raw would put garbage on a card.
 * *other names that format when it returns NF_FMT_UNKNOWN (may be NULL). */
enum nf_format nf_format_detect(const uint8_t *buf, size_t len, const char **other);

/* "raw", "gzip", "xz", "zstd". */
const char *nf_format_name(enum nf_format f);

/* Parses a format name (also "gz", "zst", "img"). Returns NF_FMT_UNKNOWN if none. */
enum nf_format nf_format_parse(const char *name);

/* A byte count for people: "1.50 GiB", "12.0 MiB", "512 B". */
void nf_format_bytes(uint64_t b, char *out, size_t cap);

#endif
