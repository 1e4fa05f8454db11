/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "scan.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "decode.h"
#include "fileutil.h"
#include "xzinfo.h"

#define SCAN_BUF (1u << 20)
#define SCAN_BLOCK (1u << 20)

int nf_is_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static int detect(int fd, struct nf_scan *res)
{
	uint8_t head[NF_FORMAT_PROBE_LEN];
	struct nf_sniff sn;
	ssize_t n = pread(fd, head, sizeof(head), 0);

	if (n < 0)
		return -errno;
	if (n == 0) {
		snprintf(res->detail, sizeof(res->detail), "the file is empty");
		return -EBADMSG;
	}
	nf_format_sniff(head, (size_t)n, (size_t)n < sizeof(head), &sn);
	res->format = sn.format;
	if (res->format == NF_FMT_UNKNOWN) {
		snprintf(res->detail, sizeof(res->detail), "it is %s, which the worker cannot decode", sn.why);
		return -EBADMSG;
	}
	if (res->format == NF_FMT_XZ) {
		struct nf_xz_index x;

		if (nf_xz_info(nf_pread_fd, &fd, res->file_size, &x) < 0) {
			snprintf(res->detail, sizeof(res->detail), "xz index is corrupt or the file is truncated");
			return -EBADMSG;
		}
		res->image_size = x.size;
		res->xz_blocks = x.blocks;
		res->xz_thread_mem = nf_xz_thread_mem(&x);
	}
	if (res->format == NF_FMT_ZSTD && nf_zstd_first_window(head, (size_t)n, &res->zstd_window) < 0)
		res->zstd_window = 0; /* unknown: the decode below judges */
	return 0;
}

static int decode_all(struct nf_scan *res, struct nf_decoder *d, EVP_MD_CTX *sha, uint8_t *block,
		      const struct nf_file_input *in, nf_range_sink_fn sink, void *sink_ctx,
		      nf_scan_progress_fn progress, void *ctx)
{
	uint64_t total = 0;
	int r;

	for (;;) {
		size_t got = 0;
		ssize_t n = 1;

		while (got < SCAN_BLOCK && (n = nf_decoder_read(d, block + got, SCAN_BLOCK - got)) > 0)
			got += (size_t)n;
		if (n < 0) {
			snprintf(res->detail, sizeof(res->detail), "%s at compressed offset %llu (image offset %llu)",
				 nf_decoder_detail(d), (unsigned long long)nf_decoder_in_offset(d),
				 (unsigned long long)(total + got));
			res->trailing = nf_decoder_trailing(d);
			return (int)n;
		}
		if (total == 0) {
			res->head_len = got < sizeof(res->head) ? got : sizeof(res->head);
			memcpy(res->head, block, res->head_len);
		}
		if (got) {
			EVP_DigestUpdate(sha, block, got);
			res->blocks++;
			res->zero_blocks += nf_is_zero(block, got);
			total += got;
			if (sink && (r = sink(sink_ctx, block, got)) < 0) {
				snprintf(res->detail, sizeof(res->detail), "cannot write the copy at image offset %llu: %s",
					 (unsigned long long)(total - got), strerror(-r));
				res->sink_failed = 1;
				return r;
			}
		}
		if (progress)
			progress(in->off, res->file_size, total, ctx);
		if (n == 0)
			break;
	}
	if (total == 0) {
		snprintf(res->detail, sizeof(res->detail), "it decodes to an empty image");
		return -EBADMSG;
	}
	if (res->format == NF_FMT_XZ && total != res->image_size) {
		snprintf(res->detail, sizeof(res->detail), "decoded %llu bytes but the xz index says %llu",
			 (unsigned long long)total, (unsigned long long)res->image_size);
		return -EBADMSG;
	}
	res->image_size = total;
	return 0;
}

/* An image file opened for decoding: what scan and range reading share. */
struct reader {
	struct nf_file_input in;
	struct nf_input input;
	struct nf_decoder *dec;
	uint8_t *block;
};

static void reader_close(struct reader *rd)
{
	nf_decoder_free(rd->dec);
	free(rd->block);
	free(rd->in.buf);
	if (rd->in.fd >= 0)
		close(rd->in.fd);
}

/* Opens path (a regular file), detects its format into res and sets up a
 * decoder with `threads` xz threads. Returns 0, or a negative errno with
 * res->detail set; rd is always safe to close. */
static int reader_open(struct reader *rd, const char *path, unsigned threads, uint64_t zstd_window_max,
		       uint64_t xz_mem, struct nf_scan *res)
{
	struct nf_decoder_opts o = { .threads = threads };
	uint64_t avail = 0;
	struct stat st;
	int r;

	/* xz threads within the budget a worker of this machine's memory would
	 * have (a quarter of MemAvailable): pi-gen's 24 MiB blocks take about
	 * 33 MiB a thread, so the flasher's floor (40 MiB) would leave the
	 * master's decode on one core. */
	o.memlimit_threading = xz_mem ? xz_mem : nf_decode_budget(nf_mem_available(&avail) == 0 ? avail : 0);

	if (zstd_window_max > (160ull << 20))
		o.memlimit = o.zstd_window_max = zstd_window_max;
	memset(rd, 0, sizeof(*rd));
	rd->in.cap = SCAN_BUF;
	rd->input = nf_file_input(&rd->in);
	rd->in.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (rd->in.fd < 0) {
		r = -errno;
		snprintf(res->detail, sizeof(res->detail), "%s", strerror(errno));
		return r;
	}
	posix_fadvise(rd->in.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (fstat(rd->in.fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(res->detail, sizeof(res->detail), "not a regular file");
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	res->file_size = (uint64_t)st.st_size;
	if ((r = detect(rd->in.fd, res)) < 0)
		return r;
	o.format = res->format;
	rd->in.buf = malloc(SCAN_BUF);
	rd->block = malloc(SCAN_BLOCK);
	if (!rd->in.buf || !rd->block || nf_decoder_new(&rd->dec, &o, &rd->input) < 0) {
		snprintf(res->detail, sizeof(res->detail), "out of memory");
		return -ENOMEM;
	}
	return 0;
}

int nf_scan_file(const char *path, unsigned threads, uint64_t zstd_window_max, nf_scan_progress_fn progress,
		 void *ctx, struct nf_scan *res)
{
	return nf_scan_file_to(path, threads, zstd_window_max, 0, NULL, NULL, progress, ctx, res);
}

int nf_scan_file_to(const char *path, unsigned threads, uint64_t zstd_window_max, uint64_t xz_mem,
		    nf_range_sink_fn sink, void *sink_ctx, nf_scan_progress_fn progress, void *ctx, struct nf_scan *res)
{
	EVP_MD_CTX *sha = NULL;
	struct reader rd;
	unsigned int mdlen;
	int r;

	memset(res, 0, sizeof(*res));
	r = reader_open(&rd, path, threads ? threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN), zstd_window_max,
			xz_mem, res);
	if (r < 0)
		goto out;
	sha = EVP_MD_CTX_new();
	if (!sha || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL)) {
		r = -ENOMEM;
		snprintf(res->detail, sizeof(res->detail), "out of memory");
		goto out;
	}
	r = decode_all(res, rd.dec, sha, rd.block, &rd.in, sink, sink_ctx, progress, ctx);
	if (r == 0)
		EVP_DigestFinal_ex(sha, res->sha256, &mdlen);
out:
	EVP_MD_CTX_free(sha);
	reader_close(&rd);
	return r;
}

int nf_image_range(const char *path, uint64_t off, uint64_t len, nf_range_sink_fn sink, void *ctx,
		   char *detail, size_t cap)
{
	struct nf_scan res = { 0 };
	struct reader rd;
	uint64_t pos = 0, end = off + len;
	int r = reader_open(&rd, path, 1, 0, 0, &res);

	if (r < 0) {
		snprintf(detail, cap, "%s", res.detail);
		goto out;
	}
	while (pos < end) {
		ssize_t n = nf_decoder_read(rd.dec, rd.block, SCAN_BLOCK);

		if (n < 0) {
			r = (int)n;
			snprintf(detail, cap, "%s at compressed offset %llu", nf_decoder_detail(rd.dec),
				 (unsigned long long)nf_decoder_in_offset(rd.dec));
			goto out;
		}
		if (n == 0) {
			r = -ENODATA;
			snprintf(detail, cap, "the image ends at %llu, before %llu", (unsigned long long)pos,
				 (unsigned long long)end);
			goto out;
		}
		/* The overlap of [pos, pos+n) with [off, end). */
		uint64_t a = pos > off ? pos : off, b = pos + (uint64_t)n < end ? pos + (uint64_t)n : end;

		if (a < b && (r = sink(ctx, rd.block + (a - pos), (size_t)(b - a))) < 0) {
			snprintf(detail, cap, "%s", strerror(-r));
			goto out;
		}
		pos += (uint64_t)n;
	}
	r = 0;
out:
	reader_close(&rd);
	return r;
}
