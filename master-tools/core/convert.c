/* SPDX-License-Identifier: GPL-2.0-or-later */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_estimateCCtxSize_usingCParams: exported by libzstd.so */
#include "convert.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "decode.h"
#include "fileutil.h"
#include "format.h"

#define BUF (1u << 20)

struct conv {
	struct archive *a;
	/* A zstd stream whose window libarchive's decoder does not take (it
	 * keeps libzstd's default limit, 128 MiB): the file read by dec. */
	struct nf_decoder *dec;
	struct nf_file_input fin;
	struct nf_input input;
	struct nf_zwriter *zw;
	EVP_MD_CTX *sha;
	uint8_t *in;
	struct nf_convert *res;
	nf_convert_progress_fn progress;
	void *ctx;
};

static int __attribute__((format(printf, 3, 4))) fail(struct conv *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->res->detail, sizeof(c->res->detail), fmt, ap);
	va_end(ap);
	return err;
}

/* A member name from the archive (hostile) as one printable line: control
 * bytes and quotes become '?', cut at cap - 1 bytes. */
static const char *printable(char *out, size_t cap, const char *name)
{
	size_t i = 0;

	for (; name && name[i] && i + 1 < cap; i++)
		out[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f || name[i] == '\'' ? '?' : name[i];
	out[i] = '\0';
	return out;
}

static int archive_fail(struct conv *c, const char *what)
{
	const char *e = archive_error_string(c->a);
	int err = archive_errno(c->a);

	snprintf(c->res->detail, sizeof(c->res->detail), "%s: %s", what, e ? e : "unknown libarchive error");
	return err == ENOMEM ? -ENOMEM : -EBADMSG;
}

/* netflash's family names (lib/format.c) for libarchive's filters; NULL
 * for none. */
static const char *filter_family(int code)
{
	switch (code) {
	case ARCHIVE_FILTER_NONE: return NULL;
	case ARCHIVE_FILTER_GZIP: return "gzip";
	case ARCHIVE_FILTER_BZIP2: return "bzip2";
	case ARCHIVE_FILTER_COMPRESS: return "compress";
	case ARCHIVE_FILTER_LZMA: return "lzma";
	case ARCHIVE_FILTER_XZ: return "xz";
	case ARCHIVE_FILTER_LZIP: return "lzip";
	case ARCHIVE_FILTER_LZ4: return "lz4";
	case ARCHIVE_FILTER_ZSTD: return "zstd";
	default: return "other";
	}
}

/* "tar.gzip", "zip", "xz.bzip2": the container, then the filters from the
 * outermost (applied to the file's bytes first) in. libarchive numbers its
 * filters from the one next to the format reader (0) out to the file
 * ("none", the last). */
static void describe_origin(struct conv *c)
{
	struct nf_convert *res = c->res;
	int n = archive_filter_count(c->a), fmt = archive_format(c->a) & ARCHIVE_FORMAT_BASE_MASK;
	size_t len = 0;

	res->origin[0] = '\0';
	if (fmt == ARCHIVE_FORMAT_TAR)
		len = (size_t)snprintf(res->origin, sizeof(res->origin), "tar");
	else if (fmt == ARCHIVE_FORMAT_ZIP)
		len = (size_t)snprintf(res->origin, sizeof(res->origin), "zip");
	else if (fmt == ARCHIVE_FORMAT_7ZIP)
		len = (size_t)snprintf(res->origin, sizeof(res->origin), "7z");
	/* A tar's filters follow it (tar.gz); a bare stream's are its name. */
	for (int i = n - 1; i >= 0 && len < sizeof(res->origin); i--) {
		const char *name = filter_family(archive_filter_code(c->a, i));

		if (!name)
			continue;
		len += (size_t)snprintf(res->origin + len, sizeof(res->origin) - len, "%s%s", len ? "." : "", name);
	}
	if (!res->origin[0])
		snprintf(res->origin, sizeof(res->origin), "raw");
}

/* Moves to the next regular file, past directories. Returns 1 with *e set,
 * 0 at the end of the archive, or a negative errno with the detail set. */
static int next_file(struct conv *c, struct archive_entry **e)
{
	for (;;) {
		int r = archive_read_next_header(c->a, e);

		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return archive_fail(c, "cannot read it");
		if (archive_entry_filetype(*e) == AE_IFDIR)
			continue;
		if (archive_entry_filetype(*e) != AE_IFREG) {
			char name[128];

			return fail(c, -EBADMSG, "it holds '%s', which is not a regular file",
				    printable(name, sizeof(name), archive_entry_pathname(*e)));
		}
		return 1;
	}
}

struct nf_zwriter {
	ZSTD_CCtx *z;
	int fd;
	uint8_t *out;
	uint64_t written;
	nf_zwriter_progress_fn progress;
	void *pctx;
};

void nf_zwriter_progress(struct nf_zwriter *w, nf_zwriter_progress_fn fn, void *ctx)
{
	w->progress = fn;
	w->pctx = ctx;
}

void nf_zwriter_free(struct nf_zwriter *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	ZSTD_freeCCtx(w->z);
	free(w->out);
	free(w);
}

int nf_zwriter_open(struct nf_zwriter **wp, const char *dst, int level, unsigned threads)
{
	struct nf_zwriter *w = calloc(1, sizeof(*w));
	int r;

	*wp = NULL;
	if (!w)
		return -ENOMEM;
	w->fd = -1;
	w->z = ZSTD_createCCtx();
	w->out = malloc(BUF);
	if (!w->z || !w->out) {
		nf_zwriter_free(w);
		return -ENOMEM;
	}
	if (ZSTD_isError(ZSTD_CCtx_setParameter(w->z, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(w->z, ZSTD_c_checksumFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(w->z, ZSTD_c_windowLog, NF_CONVERT_WINDOW_LOG))) {
		nf_zwriter_free(w);
		return -EINVAL;
	}
	/* Worker threads where libzstd was built for them (0: this thread). */
	ZSTD_CCtx_setParameter(w->z, ZSTD_c_nbWorkers, (int)threads);
	w->fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		r = -errno;
		nf_zwriter_free(w);
		return r;
	}
	*wp = w;
	return 0;
}

/* Compresses n bytes (n == 0: ends the frame) and writes what comes out.
 * 0, -ENOMEM (libzstd) or the write's -errno. */
static int zw_put(struct nf_zwriter *w, const uint8_t *p, size_t n)
{
	ZSTD_inBuffer in = { p, n, 0 };
	ZSTD_EndDirective mode = n ? ZSTD_e_continue : ZSTD_e_end;

	for (;;) {
		ZSTD_outBuffer out = { w->out, BUF, 0 };
		size_t left = ZSTD_compressStream2(w->z, &out, &in, mode);
		int r;

		if (ZSTD_isError(left))
			return -ENOMEM;
		if (out.pos && (r = nf_write_full(w->fd, w->out, out.pos)) < 0)
			return r;
		w->written += out.pos;
		if (w->progress)
			w->progress(ZSTD_getFrameProgression(w->z).consumed, w->pctx);
		if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
			return 0;
	}
}

int nf_zwriter_write(void *wp, const void *buf, size_t len)
{
	return len ? zw_put(wp, buf, len) : 0;
}

int nf_zwriter_finish(struct nf_zwriter *w, uint64_t *size)
{
	int r = zw_put(w, NULL, 0);

	if (r == 0 && fsync(w->fd) < 0)
		r = -errno;
	if (close(w->fd) < 0 && r == 0)
		r = -errno;
	w->fd = -1;
	if (size)
		*size = w->written;
	nf_zwriter_free(w);
	return r;
}

/* Compresses n bytes into c's copy (n == 0: ends the frame). */
static int compress(struct conv *c, const uint8_t *p, size_t n)
{
	int r = zw_put(c->zw, p, n);

	if (r == -ENOMEM)
		return fail(c, r, "zstd ran out of memory");
	if (r < 0)
		return fail(c, r, "cannot write the converted image: %s", strerror(-r));
	return 0;
}

/* Reads the member's first MiB (or all of a shorter one) into c->in.
 * Returns its length or a negative errno. */
/* Up to len decoded bytes (0 at the end), by libarchive or our decoder;
 * -errno after fail(). */
static ssize_t read_data(struct conv *c, uint8_t *buf, size_t len)
{
	ssize_t n;

	if (!c->dec) {
		n = archive_read_data(c->a, buf, len);
		return n < 0 ? archive_fail(c, "cannot decode it") : n;
	}
	n = nf_decoder_read(c->dec, buf, len);
	if (n < 0)
		return fail(c, (int)n, "%s at compressed offset %llu", nf_decoder_detail(c->dec),
			    (unsigned long long)nf_decoder_in_offset(c->dec));
	return n;
}

static ssize_t read_first(struct conv *c)
{
	size_t got = 0;

	while (got < BUF) {
		ssize_t n = read_data(c, c->in + got, BUF - got);

		if (n < 0)
			return n;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int check_head(struct conv *c, size_t len, int whole, int not_a_disk)
{
	struct nf_convert *res = c->res;
	const char *inner = NULL;
	char why[120], what[140];

	res->head_len = len < sizeof(res->head) ? len : sizeof(res->head);
	memcpy(res->head, c->in, res->head_len);
	switch (nf_head_check(c->in, len, whole, &inner, why, sizeof(why))) {
	case NF_HEAD_DISK:
		return 0;
	case NF_HEAD_NESTED:
		snprintf(what, sizeof(what), "%s%.100s%s", res->member[0] ? "'" : "", res->member,
			 res->member[0] ? "'" : "its data");
		snprintf(res->detail, sizeof(res->detail), "%s inside the %s is itself %s: unpack it and add the image it holds",
			 what, res->origin, why);
		return -EBADMSG;
	default:
		if (not_a_disk)
			return 0;
		snprintf(res->detail, sizeof(res->detail), "%s%.100s%snot a disk image: %s (--not-a-disk adds it anyway)",
			 res->member[0] ? "'" : "", res->member, res->member[0] ? "' is " : "it is ", why);
		return -EBADMSG;
	}
}

static int pump(struct conv *c, int not_a_disk)
{
	struct nf_convert *res = c->res;
	ssize_t n = read_first(c);
	uint64_t total = 0;
	int r;

	if (n < 0)
		return (int)n;
	if (n == 0)
		return fail(c, -EBADMSG, "%s", "it holds an empty image");
	if ((r = check_head(c, (size_t)n, (size_t)n < BUF, not_a_disk)) < 0)
		return r;
	while (n > 0) {
		EVP_DigestUpdate(c->sha, c->in, (size_t)n);
		if ((r = compress(c, c->in, (size_t)n)) < 0)
			return r;
		total += (uint64_t)n;
		if (c->progress)
			c->progress(c->dec ? c->fin.off : (uint64_t)archive_filter_bytes(c->a, -1), res->in_size, total,
				    c->ctx);
		n = read_data(c, c->in, BUF);
		if (n < 0)
			return (int)n;
	}
	res->image_size = total;
	return compress(c, NULL, 0);
}

/* Fitted to peak RSS measured here (256 MiB pi-gen-style image from xz -6,
 * levels 3, 18 and 19, 1 and 2 workers): 114 MiB that do not grow with
 * the workers (libarchive and its xz decoder, our buffers, libzstd's input
 * buffer) and, per worker, its context and about one and a third jobs of
 * buffers. The fixed part is rounded up to 170 MiB for an xz -9 input's
 * 64 MiB dictionary (xz -6: 8 MiB). */
#define CONVERT_BASE_BYTES (170ull << 20)
/* Without worker threads: the reader (up to xz -9's 64 MiB dictionary) and
 * our buffers. */
#define CONVERT_SOLO_BYTES (88ull << 20)

uint64_t nf_convert_memory(int level, unsigned threads)
{
	ZSTD_compressionParameters cp = ZSTD_getCParams(level, 0, 0);
	uint64_t job = 4ull << NF_CONVERT_WINDOW_LOG;

	cp.windowLog = NF_CONVERT_WINDOW_LOG;
	cp = ZSTD_adjustCParams(cp, 0, 0);
	/* No worker thread: one context, no job buffers and no input buffer of
	 * libzstd's (measured: 62 MiB at level 16), plus the reader. */
	if (!threads)
		return CONVERT_SOLO_BYTES + ZSTD_estimateCCtxSize_usingCParams(cp);
	return CONVERT_BASE_BYTES + (uint64_t)threads * (ZSTD_estimateCCtxSize_usingCParams(cp) + job * 3 / 2);
}

void nf_convert_plan(uint64_t budget, unsigned cores, int level, int forced, struct nf_convert_plan *p)
{
	memset(p, 0, sizeof(*p));
	if (cores < 1)
		cores = 1;
	/* The level asked for first, with as many workers as fit (none: the
	 * calling thread compresses); then lower levels, unless forced. */
	for (p->level = level; p->level >= 1; p->level--) {
		for (p->threads = cores; p->threads > 0 && nf_convert_memory(p->level, p->threads) > budget; p->threads--)
			;
		if (nf_convert_memory(p->level, p->threads) <= budget || forced || p->level == 1)
			break;
	}
	p->lowered = p->level < level;
	p->bytes = nf_convert_memory(p->level, p->threads);
	p->over = p->bytes > budget;
}

/* What src holds, by magic: 'z' a zip, '7' a 7z (raw: its first n bytes),
 * 't' a tar (after any compression layers: "ustar" at byte 257 of the
 * decoded data), 0 anything else (a bare compressed stream or a raw
 * image). */
static int container_of(const char *src, const uint8_t *raw, size_t n)
{
	static const uint8_t zip[] = { 'P', 'K', 3, 4 }, sevenz[] = { '7', 'z', 0xbc, 0xaf, 0x27, 0x1c };
	uint8_t head[512];
	struct archive *a;
	struct archive_entry *e;
	la_ssize_t got_n;
	int kind = 0;

	if (n >= sizeof(zip) && memcmp(raw, zip, sizeof(zip)) == 0)
		return 'z';
	if (n >= sizeof(sevenz) && memcmp(raw, sevenz, sizeof(sevenz)) == 0)
		return '7';
	if (!(a = archive_read_new()))
		return 0;
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_filename(a, src, BUF) == ARCHIVE_OK && archive_read_next_header(a, &e) == ARCHIVE_OK) {
		size_t got = 0;

		while (got < sizeof(head) && (got_n = archive_read_data(a, head + got, sizeof(head) - got)) > 0)
			got += (size_t)got_n;
		if (got >= 262 && memcmp(head + 257, "ustar", 5) == 0)
			kind = 't';
	}
	archive_read_free(a);
	return kind;
}

/* A plain zstd stream (its first n bytes: head; open as c->fin.fd) whose
 * first window is over libarchive's 128 MiB: read by our decoder, with
 * windows up to window_max. Returns 1 (set up), 0 (not such a stream:
 * libarchive reads it) or -errno after fail(). */
static int setup_direct(struct conv *c, const uint8_t *head, size_t n, uint64_t window_max)
{
	struct nf_decoder_opts o = { .format = NF_FMT_ZSTD, .threads = 1 };
	uint64_t window = 0;
	char w[32], max[32];
	int r;

	if (nf_zstd_first_window(head, n, &window) < 0 || window <= (1ull << 27))
		return 0;
	nf_format_bytes(window, w, sizeof(w));
	nf_format_bytes(window_max, max, sizeof(max));
	if (window > window_max)
		return fail(c, -ENOMEM, "its zstd window is %s, over the %s this master affords to decode it (half of "
			    "its MemAvailable, at most zstd's own 2 GiB)", w, max);
	o.memlimit = o.zstd_window_max = window_max;
	if (!(c->fin.buf = malloc(BUF)))
		return fail(c, -ENOMEM, "%s", "out of memory");
	c->fin.cap = BUF;
	c->input = nf_file_input(&c->fin);
	if ((r = nf_decoder_new(&c->dec, &o, &c->input)) < 0)
		return fail(c, r, "cannot decode its %s zstd window: %s", w, strerror(-r));
	snprintf(c->res->origin, sizeof(c->res->origin), "zstd");
	return 1;
}

static int setup(struct conv *c, const char *src, const char *dst, int level, unsigned threads,
		 uint64_t window_max)
{
	uint8_t head[512];
	struct stat st;
	ssize_t n;
	int r;

	c->a = archive_read_new();
	c->sha = EVP_MD_CTX_new();
	c->in = malloc(BUF);
	if (!c->a || !c->sha || !c->in || !EVP_DigestInit_ex(c->sha, EVP_sha256(), NULL))
		return fail(c, -ENOMEM, "%s", "out of memory");
	if (stat(src, &st) < 0)
		return fail(c, -errno, "%s", strerror(errno));
	c->res->in_size = (uint64_t)st.st_size;
	/* The file's first bytes, once, for what it is. */
	if ((c->fin.fd = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return fail(c, -errno, "%s", strerror(errno));
	if ((n = pread(c->fin.fd, head, sizeof(head), 0)) < 0)
		return fail(c, -errno, "%s", strerror(errno));
	if ((r = setup_direct(c, head, (size_t)n, window_max)) < 0)
		return r;
	if (r == 1)
		goto codec;
	close(c->fin.fd); /* libarchive opens the file itself */
	c->fin.fd = -1;
	/* Every filter; of the formats, the one the file's own magic names
	 * (zip, 7z, a tar's "ustar" at 257 after the filters), else raw: a bare
	 * compressed stream is the image itself, never libarchive's guess (it
	 * takes data that starts with 1 KiB of zeros for an empty tar). */
	archive_read_support_filter_all(c->a);
	switch (container_of(src, head, (size_t)n)) {
	case 'z':
		archive_read_support_format_zip(c->a);
		break;
	case '7':
		archive_read_support_format_7zip(c->a);
		break;
	case 't':
		archive_read_support_format_tar(c->a);
		break;
	default:
		archive_read_support_format_raw(c->a);
	}
	if (archive_read_open_filename(c->a, src, BUF) != ARCHIVE_OK)
		return archive_fail(c, "cannot open it");
codec:
	if ((r = nf_zwriter_open(&c->zw, dst, level, threads)) == -EINVAL)
		return fail(c, r, "zstd refused the compression level %d", level);
	if (r < 0)
		return fail(c, r, "cannot create the converted image: %s", strerror(-r));
	return 0;
}

int nf_convert_to_zstd(const char *src, const char *dst, int level, unsigned threads, int not_a_disk,
		       uint64_t window_max, nf_convert_progress_fn progress, void *ctx, struct nf_convert *res)
{
	struct conv c = { .res = res, .progress = progress, .ctx = ctx, .fin = { .fd = -1 } };
	struct archive_entry *e = NULL;
	unsigned int mdlen;
	int r;

	memset(res, 0, sizeof(*res));
	if ((r = setup(&c, src, dst, level, threads, window_max)) < 0)
		goto out;
	if (c.dec) { /* one zstd stream: no archive around it */
		if ((r = pump(&c, not_a_disk)) < 0)
			goto out;
		goto done;
	}
	if ((r = next_file(&c, &e)) <= 0) {
		if (r == 0)
			r = fail(&c, -EBADMSG, "%s", "the archive holds no file");
		goto out;
	}
	describe_origin(&c);
	if ((archive_format(c.a) & ARCHIVE_FORMAT_BASE_MASK) != ARCHIVE_FORMAT_RAW)
		printable(res->member, sizeof(res->member), archive_entry_pathname(e));
	if ((r = pump(&c, not_a_disk)) < 0)
		goto out;
	if ((r = next_file(&c, &e)) != 0) {
		if (r > 0) {
			char second[101];

			snprintf(res->detail, sizeof(res->detail), "the %s holds more than one file ('%.100s', '%s'): "
				 "netflash takes an archive with one image in it", res->origin, res->member,
				 printable(second, sizeof(second), archive_entry_pathname(e)));
			r = -EBADMSG;
		}
		goto out;
	}
done:
	r = nf_zwriter_finish(c.zw, NULL);
	c.zw = NULL;
	if (r < 0) {
		r = fail(&c, r, "cannot write the converted image: %s", strerror(-r));
		goto out;
	}
	EVP_DigestFinal_ex(c.sha, res->sha256, &mdlen);
out:
	nf_zwriter_free(c.zw);
	archive_read_free(c.a);
	nf_decoder_free(c.dec);
	if (c.fin.fd >= 0)
		close(c.fin.fd);
	free(c.fin.buf);
	EVP_MD_CTX_free(c.sha);
	free(c.in);
	return r;
}
