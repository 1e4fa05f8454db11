/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The decoder stage against data made by the real encoders: clean streams,
 * concatenations, truncations at every kind of boundary, trailing bytes,
 * corruption, and input errors. */
#include <errno.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "check.h"
#include "decode.h"
#include "meminput.h"

#define DATA_LEN (300 * 1024 + 17)

static uint8_t data[DATA_LEN];

static size_t enc_gzip(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	z_stream z = { 0 };

	deflateInit2(&z, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	deflate(&z, Z_FINISH);
	deflateEnd(&z);
	return z.total_out;
}

static size_t enc_xz(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t pos = 0;

	lzma_easy_buffer_encode(1, LZMA_CHECK_CRC64, NULL, in, len, out, &pos, cap);
	return pos;
}

static size_t enc_zstd(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	size_t n;

	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	n = ZSTD_compress2(c, out, cap, in, len);
	ZSTD_freeCCtx(c);
	return n;
}

/* Decodes all of in; returns the final result (bytes total or -errno). */
static ssize_t decode_all(enum nf_format f, const uint8_t *in, size_t len, size_t piece,
			  int in_err, uint8_t *out, size_t cap)
{
	struct meminput m = { in, len, 0, piece, in_err };
	struct nf_input input = { mem_peek, mem_consume, &m };
	struct nf_decoder_opts o = { .format = f, .threads = 2, .memlimit = 64 << 20 };
	struct nf_decoder *d = NULL;
	size_t total = 0;
	ssize_t n;

	if (nf_decoder_new(&d, &o, &input) < 0)
		return -999;
	while ((n = nf_decoder_read(d, out + total, cap - total < 65536 ? cap - total : 65536)) > 0)
		total += (size_t)n;
	nf_decoder_free(d);
	return n < 0 ? n : (ssize_t)total;
}

struct fmtcase {
	enum nf_format f;
	const char *name;
	size_t (*enc)(const uint8_t *, size_t, uint8_t *, size_t);
	int zero_pad_ok; /* xz: stream padding (4 zero bytes) is legal */
};

static void test_format(const struct fmtcase *fc, uint8_t *comp, uint8_t *out)
{
	size_t cap = 2 * DATA_LEN + 1024;
	size_t clen = fc->enc(data, DATA_LEN, comp, cap);
	static const size_t pieces[] = { 0, 1, 7, 4096 };
	ssize_t r;

	CHECK(clen > 0 && clen < DATA_LEN, "%s: encoder", fc->name);
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		r = decode_all(fc->f, comp, clen, pieces[i], 0, out, 3 * DATA_LEN);
		CHECK(r == DATA_LEN && memcmp(out, data, DATA_LEN) == 0, "%s piece %zu: %zd", fc->name, pieces[i], r);
	}
	/* Two streams back to back decode to the data twice. */
	memcpy(comp + clen, comp, clen);
	r = decode_all(fc->f, comp, 2 * clen, 4096, 0, out, 3 * DATA_LEN);
	CHECK(r == 2 * DATA_LEN && memcmp(out + DATA_LEN, data, DATA_LEN) == 0, "%s concatenated: %zd", fc->name, r);
	/* Truncations: header only, mid-stream, one byte short. */
	const size_t cuts[] = { 0, 1, 5, 12, clen / 2, clen - 4, clen - 1 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		r = decode_all(fc->f, comp, cuts[i], 7, 0, out, 3 * DATA_LEN);
		CHECK(r == -EBADMSG, "%s truncated at %zu: %zd", fc->name, cuts[i], r);
	}
	/* Trailing bytes. */
	memcpy(comp + clen, "junk", 4);
	r = decode_all(fc->f, comp, clen + 4, 0, 0, out, 3 * DATA_LEN);
	CHECK(r == -EBADMSG, "%s trailing junk: %zd", fc->name, r);
	memset(comp + clen, 0, 4);
	r = decode_all(fc->f, comp, clen + 4, 0, 0, out, 3 * DATA_LEN);
	CHECK(fc->zero_pad_ok ? r == DATA_LEN : r == -EBADMSG, "%s trailing zeros: %zd", fc->name, r);
	r = decode_all(fc->f, comp, clen + 1, 0, 0, out, 3 * DATA_LEN);
	CHECK(r == -EBADMSG, "%s one trailing zero: %zd", fc->name, r);
	/* Corruption in the middle: caught by the format's checksum at the latest. */
	comp[clen / 2] ^= 0x55;
	r = decode_all(fc->f, comp, clen, 0, 0, out, 3 * DATA_LEN);
	CHECK(r == -EBADMSG, "%s corrupt: %zd", fc->name, r);
	comp[clen / 2] ^= 0x55;
	/* An input error passes through unchanged. */
	r = decode_all(fc->f, comp, clen / 2, 0, -EIO, out, 3 * DATA_LEN);
	CHECK(r == -EIO, "%s input error: %zd", fc->name, r);
}

int main(void)
{
	static const struct fmtcase cases[] = {
		{ NF_FMT_GZIP, "gzip", enc_gzip, 0 },
		{ NF_FMT_XZ, "xz", enc_xz, 1 },
		{ NF_FMT_ZSTD, "zstd", enc_zstd, 0 },
	};
	uint8_t *comp = malloc(3 * DATA_LEN), *out = malloc(3 * DATA_LEN);
	uint32_t x = 1;
	ssize_t r;

	/* Compressible but not trivial: text-like runs and noise. */
	for (size_t i = 0; i < DATA_LEN; i++) {
		x = x * 1103515245u + 12345u;
		data[i] = (i / 4096) % 3 == 0 ? (uint8_t)(x >> 24) : (uint8_t)("netflash "[i % 9]);
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		test_format(&cases[i], comp, out);
	r = decode_all(NF_FMT_RAW, data, DATA_LEN, 7, 0, out, 3 * DATA_LEN);
	CHECK(r == DATA_LEN && memcmp(out, data, DATA_LEN) == 0, "raw: %zd", r);
	r = decode_all(NF_FMT_RAW, data, 0, 0, 0, out, 3 * DATA_LEN);
	CHECK(r == 0, "raw empty: %zd", r);
	free(comp);
	free(out);
	return CHECK_DONE();
}
