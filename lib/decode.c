/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "decode.h"

#include <errno.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fileutil.h"

/* ZSTD_getFrameHeader: in the experimental section, exported by libzstd. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>

struct nf_decoder {
	struct nf_decoder_opts opts;
	const struct nf_input *in;
	const uint8_t *next_in; /* peeked, not yet consumed */
	size_t avail_in;
	int in_eof;
	int done;
	uint64_t in_total;
	const char *detail;
	int trailing;           /* the error is data after the end of the stream */
	z_stream z;
	int z_init, z_in_member, z_members;
	lzma_stream x;
	ZSTD_DStream *zs;
	size_t zs_last; /* last ZSTD_decompressStream hint; 0 at a frame end */
	unsigned zstd_wlog; /* the largest window it takes: 2^zstd_wlog */
	char why[160];      /* a detail made for this error */
};

static int fail(struct nf_decoder *d, int err, const char *detail)
{
	d->detail = detail;
	return err;
}

/* Makes input available unless the input ended. Returns 0 or the input's error. */
static int fill(struct nf_decoder *d)
{
	ssize_t n;

	if (d->avail_in > 0 || d->in_eof)
		return 0;
	n = d->in->peek(d->in->ctx, &d->next_in);
	if (n < 0)
		return fail(d, (int)n, "input failed");
	if (n == 0)
		d->in_eof = 1;
	d->avail_in = (size_t)n;
	return 0;
}

static void used(struct nf_decoder *d, size_t n)
{
	if (n == 0)
		return;
	d->in->consume(d->in->ctx, n);
	d->next_in += n;
	d->avail_in -= n;
	d->in_total += n;
}

static ssize_t raw_read(struct nf_decoder *d, uint8_t *buf, size_t len)
{
	size_t out = 0;

	while (out < len) {
		int r = fill(d);
		size_t n;

		if (r < 0)
			return r;
		if (d->in_eof)
			break;
		n = d->avail_in < len - out ? d->avail_in : len - out;
		memcpy(buf + out, d->next_in, n);
		used(d, n);
		out += n;
	}
	return (ssize_t)out;
}

/* gzip, RFC 1952. Members may follow each other (pigz, cat a.gz b.gz);
 * anything after the last member that is not a member is an error. */
static ssize_t gzip_read(struct nf_decoder *d, uint8_t *buf, size_t len)
{
	d->z.next_out = buf;
	d->z.avail_out = (uInt)len;
	while (d->z.avail_out > 0) {
		size_t before_out = d->z.avail_out, take;
		int r = fill(d), zr;

		if (r < 0)
			return r;
		if (d->in_eof && !d->z_in_member) {
			if (d->z_members == 0)
				return fail(d, -EBADMSG, "gzip: empty input");
			break;
		}
		if (!d->z_in_member) {
			inflateReset(&d->z);
			d->z_in_member = 1;
		}
		take = d->avail_in < (1u << 30) ? d->avail_in : (1u << 30);
		d->z.next_in = (Bytef *)d->next_in;
		d->z.avail_in = (uInt)take;
		zr = inflate(&d->z, Z_NO_FLUSH);
		used(d, take - d->z.avail_in);
		if (zr == Z_STREAM_END) {
			d->z_in_member = 0;
			d->z_members++;
			continue;
		}
		if (zr == Z_MEM_ERROR)
			return fail(d, -ENOMEM, "gzip: out of memory");
		if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT || zr == Z_STREAM_ERROR) {
			d->trailing = d->z_members > 0 && d->z.total_out == 0;
			return fail(d, -EBADMSG, d->trailing ? "gzip: trailing garbage after the last member"
							     : "gzip: corrupt data");
		}
		if (d->in_eof && before_out == d->z.avail_out)
			return fail(d, -EBADMSG, "gzip: stream ends early (truncated)");
	}
	return (ssize_t)(len - d->z.avail_out);
}

static int xz_error(struct nf_decoder *d, lzma_ret ret)
{
	switch (ret) {
	case LZMA_MEM_ERROR:
		return fail(d, -ENOMEM, "xz: out of memory");
	case LZMA_MEMLIMIT_ERROR:
		return fail(d, -ENOMEM, "xz: stream needs more memory than the limit");
	case LZMA_FORMAT_ERROR:
		return fail(d, -EBADMSG, "xz: not xz data (or trailing garbage)");
	case LZMA_OPTIONS_ERROR:
		return fail(d, -EBADMSG, "xz: unsupported options");
	case LZMA_DATA_ERROR:
		return fail(d, -EBADMSG, "xz: compressed data is corrupt");
	case LZMA_BUF_ERROR:
		return fail(d, -EBADMSG, "xz: stream ends early (truncated)");
	default:
		return fail(d, -EBADMSG, "xz: decoder error");
	}
}

static ssize_t xz_read(struct nf_decoder *d, uint8_t *buf, size_t len)
{
	d->x.next_out = buf;
	d->x.avail_out = len;
	while (d->x.avail_out > 0) {
		int r = fill(d);
		size_t take;
		lzma_ret ret;

		if (r < 0)
			return r;
		d->x.next_in = d->next_in;
		d->x.avail_in = take = d->avail_in;
		ret = lzma_code(&d->x, d->in_eof ? LZMA_FINISH : LZMA_RUN);
		used(d, take - d->x.avail_in);
		if (ret == LZMA_STREAM_END) {
			d->done = 1;
			break;
		}
		if (ret != LZMA_OK)
			return xz_error(d, ret);
	}
	return (ssize_t)(len - d->x.avail_out);
}

/* A frame whose window is over what this decoder was set up for: names
 * both. */
static ssize_t zstd_window_fail(struct nf_decoder *d, const void *src, size_t len)
{
	ZSTD_frameHeader h;
	char w[32], max[32];

	nf_format_bytes(1ull << d->zstd_wlog, max, sizeof(max));
	if (ZSTD_getFrameHeader(&h, src, len) == 0) {
		nf_format_bytes(h.windowSize, w, sizeof(w));
		snprintf(d->why, sizeof(d->why), "zstd: the frame's window is %s, over the %s this decoder affords", w,
			 max);
	} else {
		snprintf(d->why, sizeof(d->why), "zstd: the frame's window is over the %s this decoder affords", max);
	}
	return fail(d, -ENOMEM, d->why);
}

/* zstd frames may be concatenated; the input must end exactly at a frame end. */
static ssize_t zstd_read(struct nf_decoder *d, uint8_t *buf, size_t len)
{
	ZSTD_outBuffer out = { buf, len, 0 };

	while (out.pos < out.size) {
		ZSTD_inBuffer in;
		size_t before = out.pos, ret;
		int r = fill(d);

		if (r < 0)
			return r;
		if (d->in_eof && d->zs_last == 0) {
			if (d->in_total == 0)
				return fail(d, -EBADMSG, "zstd: empty input");
			break;
		}
		in.src = d->next_in;
		in.size = d->avail_in;
		in.pos = 0;
		ret = ZSTD_decompressStream(d->zs, &out, &in);
		used(d, in.pos);
		if (ZSTD_isError(ret)) {
			if (ZSTD_getErrorCode(ret) == ZSTD_error_memory_allocation)
				return fail(d, -ENOMEM, "zstd: out of memory");
			if (ZSTD_getErrorCode(ret) == ZSTD_error_frameParameter_windowTooLarge)
				return zstd_window_fail(d, in.src, in.size);
			return fail(d, -EBADMSG, "zstd: corrupt data or trailing garbage");
		}
		d->zs_last = ret;
		if (d->in_eof && in.pos == 0 && out.pos == before && ret != 0)
			return fail(d, -EBADMSG, "zstd: stream ends early (truncated)");
	}
	return (ssize_t)out.pos;
}

static int setup_codec(struct nf_decoder *d)
{
	switch (d->opts.format) {
	case NF_FMT_RAW:
		return 0;
	case NF_FMT_GZIP:
		/* 16 + 15: gzip wrapper only, 32 KiB window. */
		if (inflateInit2(&d->z, 16 + 15) != Z_OK)
			return -ENOMEM;
		d->z_init = 1;
		return 0;
	case NF_FMT_XZ: {
		lzma_mt mt = {
			.flags = LZMA_CONCATENATED | LZMA_FAIL_FAST,
			.threads = d->opts.threads ? d->opts.threads : 1,
			.timeout = 0,
			.memlimit_threading = d->opts.memlimit_threading,
			.memlimit_stop = d->opts.memlimit,
		};
		lzma_ret ret = lzma_stream_decoder_mt(&d->x, &mt);

		return ret == LZMA_OK ? 0 : (ret == LZMA_MEM_ERROR ? -ENOMEM : -EINVAL);
	}
	case NF_FMT_ZSTD: {
		unsigned wlog = 10;

		d->zs = ZSTD_createDStream();
		if (!d->zs)
			return -ENOMEM;
		if (d->opts.zstd_window_max)
			while (wlog < 31 && (2ull << wlog) <= d->opts.zstd_window_max)
				wlog++;
		else
			while (wlog < 31 && (2ull << wlog) <= d->opts.memlimit)
				wlog++;
		ZSTD_DCtx_setParameter(d->zs, ZSTD_d_windowLogMax, (int)wlog);
		d->zstd_wlog = wlog;
		return 0;
	}
	default:
		return -EINVAL;
	}
}

int nf_decoder_new(struct nf_decoder **out, const struct nf_decoder_opts *opts,
		   const struct nf_input *in)
{
	struct nf_decoder *d = calloc(1, sizeof(*d));
	lzma_stream init = LZMA_STREAM_INIT;
	int r;

	if (!d)
		return -ENOMEM;
	d->opts = *opts;
	if (d->opts.memlimit == 0)
		d->opts.memlimit = 160ull << 20;
	if (d->opts.memlimit_threading == 0 || d->opts.memlimit_threading > d->opts.memlimit)
		d->opts.memlimit_threading = d->opts.memlimit;
	d->in = in;
	d->x = init;
	r = setup_codec(d);
	if (r < 0) {
		nf_decoder_free(d);
		return r;
	}
	*out = d;
	return 0;
}

ssize_t nf_decoder_read(struct nf_decoder *d, void *buf, size_t len)
{
	ssize_t n;

	if (d->done || len == 0)
		return 0;
	switch (d->opts.format) {
	case NF_FMT_RAW:
		n = raw_read(d, buf, len);
		break;
	case NF_FMT_GZIP:
		n = gzip_read(d, buf, len);
		break;
	case NF_FMT_XZ:
		n = xz_read(d, buf, len);
		break;
	case NF_FMT_ZSTD:
		n = zstd_read(d, buf, len);
		break;
	default:
		return -EINVAL;
	}
	if (n == 0)
		d->done = 1;
	return n;
}

uint64_t nf_decoder_in_offset(const struct nf_decoder *d)
{
	return d->in_total;
}

int nf_decoder_trailing(const struct nf_decoder *d)
{
	return d->trailing;
}

const char *nf_decoder_detail(const struct nf_decoder *d)
{
	return d->detail ? d->detail : "no error";
}

void nf_decoder_free(struct nf_decoder *d)
{
	if (!d)
		return;
	if (d->z_init)
		inflateEnd(&d->z);
	lzma_end(&d->x);
	ZSTD_freeDStream(d->zs);
	free(d);
}

/* ---- the head of a stream, for checks before anything is written -------- */

#define HEAD_IN_BUF (64u << 10)
#define HEAD_IN_MAX (64ull << 20) /* compressed bytes read at most for the head */

struct head_input {
	nf_pread_fn pread;
	void *ctx;
	uint8_t buf[HEAD_IN_BUF];
	size_t len, pos;
	uint64_t off;
};

static ssize_t head_peek(void *ctx, const uint8_t **p)
{
	struct head_input *in = ctx;

	if (in->pos == in->len) {
		ssize_t n;

		if (in->off >= HEAD_IN_MAX)
			return -EFBIG;
		n = in->pread(in->ctx, in->buf, sizeof(in->buf), in->off);
		if (n <= 0)
			return n;
		in->off += (uint64_t)n;
		in->len = (size_t)n;
		in->pos = 0;
	}
	*p = in->buf + in->pos;
	return (ssize_t)(in->len - in->pos);
}

static void head_consume(void *ctx, size_t n)
{
	((struct head_input *)ctx)->pos += n;
}

ssize_t nf_decode_head(enum nf_format fmt, nf_pread_fn pread_fn, void *ctx, uint64_t memlimit, uint8_t *out,
		       size_t cap, char *detail, size_t detail_cap)
{
	struct head_input *in = calloc(1, sizeof(*in));
	struct nf_decoder_opts o = { .format = fmt, .threads = 1, .memlimit = memlimit };
	struct nf_input input = { head_peek, head_consume, in };
	struct nf_decoder *d = NULL;
	size_t got = 0;
	ssize_t n = 0;

	if (!in)
		return -ENOMEM;
	in->pread = pread_fn;
	in->ctx = ctx;
	n = nf_decoder_new(&d, &o, &input);
	while (n >= 0 && got < cap && (n = nf_decoder_read(d, out + got, cap - got)) > 0)
		got += (size_t)n;
	if (n == -EFBIG)
		snprintf(detail, detail_cap, "no image data in its first %llu MiB",
			 (unsigned long long)(HEAD_IN_MAX >> 20));
	else if (n < 0 && d && d->detail)
		snprintf(detail, detail_cap, "%s at compressed offset %llu", d->detail,
			 (unsigned long long)d->in_total);
	else if (n < 0)
		snprintf(detail, detail_cap, "%s", strerror((int)-n));
	nf_decoder_free(d);
	free(in);
	return n < 0 ? n : (ssize_t)got;
}

static ssize_t file_peek(void *ctx, const uint8_t **p)
{
	struct nf_file_input *in = ctx;

	if (in->pos == in->len) {
		ssize_t n = nf_pread_fd(&in->fd, in->buf, in->cap, in->off);

		if (n < 0)
			return n;
		in->off += (uint64_t)n;
		in->len = (size_t)n;
		in->pos = 0;
		if (n == 0)
			return 0;
	}
	*p = in->buf + in->pos;
	return (ssize_t)(in->len - in->pos);
}

static void file_consume(void *ctx, size_t n)
{
	struct nf_file_input *in = ctx;

	in->pos += n;
}

struct nf_input nf_file_input(struct nf_file_input *in)
{
	return (struct nf_input){ file_peek, file_consume, in };
}

uint64_t nf_decode_budget(uint64_t mem_available)
{
	uint64_t b = mem_available / 4;

	return b < NF_DECODE_BUDGET_MIN ? NF_DECODE_BUDGET_MIN : b > NF_DECODE_BUDGET_MAX ? NF_DECODE_BUDGET_MAX : b;
}

/* key's value (kB) in /proc/meminfo, in bytes. Returns 0, -ENODATA or -errno. */
static int meminfo(const char *key, uint64_t *bytes)
{
	char line[128];
	size_t klen = strlen(key);
	FILE *f = fopen("/proc/meminfo", "re");
	int r = -ENODATA;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long kib;

		if (strncmp(line, key, klen) == 0 && line[klen] == ':' && sscanf(line + klen + 1, "%llu kB", &kib) == 1) {
			*bytes = (uint64_t)kib << 10;
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

int nf_mem_available(uint64_t *bytes)
{
	return meminfo("MemAvailable", bytes);
}

int nf_mem_total(uint64_t *bytes)
{
	return meminfo("MemTotal", bytes);
}

uint64_t nf_zstd_window_max(uint64_t budget)
{
	uint64_t w = 8ull << 20;

	while (w < (128ull << 20) && w * 2 <= budget)
		w *= 2;
	return w;
}

int nf_zstd_first_window(const uint8_t *p, size_t n, uint64_t *window)
{
	size_t off = 0;

	for (;;) {
		ZSTD_frameHeader h;
		size_t r;

		if (n - off < 8)
			return -EAGAIN;
		/* Skippable frames: magic 0x184D2A5?, then a 32-bit length. */
		if ((p[off] & 0xf0) == 0x50 && p[off + 1] == 0x2a && p[off + 2] == 0x4d && p[off + 3] == 0x18) {
			uint64_t len = (uint64_t)p[off + 4] | (uint64_t)p[off + 5] << 8 | (uint64_t)p[off + 6] << 16 |
				       (uint64_t)p[off + 7] << 24;

			if (len > n - off - 8)
				return -EAGAIN;
			off += 8 + (size_t)len;
			continue;
		}
		r = ZSTD_getFrameHeader(&h, p + off, n - off);
		if (ZSTD_isError(r))
			return -EBADMSG;
		if (r > 0)
			return -EAGAIN;
		*window = h.windowSize;
		return 0;
	}
}
