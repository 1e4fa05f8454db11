/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Preflight: everything the engine decides before the target is written:
 * the source's format against its name, that it decodes to a disk image,
 * its size, and the decoder's memory plan (xz threads, zstd window). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "engine_int.h"
#include "format.h"
#include "log.h"
#include "xzinfo.h"

static ssize_t source_pread(void *ctx, void *buf, size_t len, uint64_t off)
{
	return nf_source_pread(ctx, buf, len, off);
}

/* The refusal for a stream the worker's decoder cannot take: what it is and
 * where it can go instead. */
static int refuse_format(struct flash *f, const struct nf_sniff *s)
{
	if (s->archive)
		flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' is %s: netflash-write takes raw, gzip, xz and zstd images; "
			   "netflash image add converts %s for workers (or unpack it first)", f->o->source, s->why,
			   strcmp(s->family, "tar") == 0 || strcmp(s->family, "zip") == 0 || strcmp(s->family, "7z") == 0
				   ? "the image inside" : "it");
	else
		flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' is %s, which netflash cannot decode", f->o->source, s->why);
	return -EBADMSG;
}

/* A name ending in .xz (.gz, .zip ...) is a claim the bytes must bear out. */
static int check_claim(struct flash *f, const struct nf_sniff *s, const uint8_t *head, size_t n, int whole)
{
	char why[300];

	if (nf_format_check_claim(f->o->source, s, head, n, whole, why, sizeof(why)) == 0)
		return 0;
	flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' is %s", f->o->source, why);
	return -EBADMSG;
}

/* Decodes the image's first bytes and refuses what is not a disk image
 * (unless the user said --not-a-disk) and what is compressed again. */
static int check_head(struct flash *f, enum nf_format fmt, const char *outer)
{
	uint8_t head[NF_FORMAT_PROBE_LEN];
	char detail[200], why[160];
	const char *inner = NULL;
	ssize_t n = nf_decode_head(fmt, source_pread, f->src, fmt == NF_FMT_ZSTD ? f->budget : 0, head, sizeof(head),
				   detail, sizeof(detail));

	if (n < 0) {
		flash_fail(f, (int)n, NF_STAGE_DECODE, "'%s': %s", f->o->source, detail);
		return (int)n;
	}
	switch (nf_head_check(head, (size_t)n, (size_t)n < sizeof(head), &inner, why, sizeof(why))) {
	case NF_HEAD_DISK:
		return 0;
	case NF_HEAD_NESTED:
		flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' is %s data holding %s%s: netflash image add %s; "
			   "netflash-write needs the image itself", f->o->source, outer, why,
			   strcmp(inner, "tar") == 0 ? "" : " (compressed twice)",
			   strcmp(inner, "tar") == 0 ? "extracts its image" : "decodes every layer");
		return -EBADMSG;
	case NF_HEAD_NOT_DISK:
	default:
		if (f->o->not_a_disk)
			return 0;
		flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' is not a disk image: %s (--not-a-disk writes it anyway)",
			   f->o->source, why);
		return -EBADMSG;
	}
}

/* The decoder's memory budget: --xz-memlimit, else a share of the
 * machine's MemAvailable now (nf_decode_budget). Sets f->budget and
 * writes where it came from into why. */
static void decode_budget(struct flash *f, char *why, size_t cap)
{
	char b[32], a[32];
	uint64_t avail = 0;

	if (f->o->xz_memlimit) {
		f->budget = f->o->xz_memlimit;
		nf_format_bytes(f->budget, b, sizeof(b));
		snprintf(why, cap, "budget %s from --xz-memlimit", b);
		return;
	}
	if (nf_mem_available(&avail) < 0)
		avail = 0;
	f->budget = nf_decode_budget(avail);
	nf_format_bytes(f->budget, b, sizeof(b));
	nf_format_bytes(avail, a, sizeof(a));
	snprintf(why, cap, "budget %s: a quarter of MemAvailable %s, at least %llu MiB", b, avail ? a : "(unknown)",
		 (unsigned long long)(NF_DECODE_BUDGET_MIN >> 20));
}

/* xz: as many threads as cores while each fits the budget (liblzma's
 * memlimit_threading enforces the same; this says what to expect). */
static void plan_xz(struct flash *f, const struct nf_xz_index *x)
{
	unsigned cpus = f->o->threads ? f->o->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t per = nf_xz_thread_mem(x), fit;
	char why[160], blk[32], need[32];

	decode_budget(f, why, sizeof(why));
	fit = per ? f->budget / per : cpus;
	f->res->xz_threads = x->blocks <= 1 ? 1 : fit < 1 ? 1 : fit < cpus ? (unsigned)fit : cpus;
	f->res->decode_budget = f->budget;
	nf_format_bytes(x->max_block, blk, sizeof(blk));
	nf_format_bytes(per, need, sizeof(need));
	if (x->blocks <= 1)
		snprintf(f->res->decode_plan, sizeof(f->res->decode_plan),
			 "xz: 1 thread (one block: xz decodes a block on one core); %s", why);
	else
		snprintf(f->res->decode_plan, sizeof(f->res->decode_plan),
			 "xz: %u thread(s) of %u CPU(s): %llu blocks of up to %s need about %s each; %s",
			 f->res->xz_threads, cpus, (unsigned long long)x->blocks, blk, need, why);
}

/* zstd: the window the budget affords; an image that needs more is refused
 * before the target is opened. Returns 0 or -ENOMEM after flash_fail(). */
static int plan_zstd(struct flash *f, const uint8_t *head, size_t n)
{
	char why[160], w[32], max[32];
	uint64_t window = 0;

	decode_budget(f, why, sizeof(why));
	f->res->decode_budget = f->budget;
	nf_format_bytes(nf_zstd_window_max(f->budget), max, sizeof(max));
	if (nf_zstd_first_window(head, n, &window) == 0 && window > nf_zstd_window_max(f->budget)) {
		nf_format_bytes(window, w, sizeof(w));
		flash_fail(f, -ENOMEM, NF_STAGE_DECODE, "'%s' needs a zstd window of %s; this machine affords %s (%s): "
			   "re-encode it (netflash image add does) or raise --xz-memlimit", f->o->source, w, max, why);
		return -ENOMEM;
	}
	nf_format_bytes(window, w, sizeof(w));
	snprintf(f->res->decode_plan, sizeof(f->res->decode_plan), "zstd: window %s of at most %s; %s",
		 window ? w : "(unknown)", max, why);
	return 0;
}

int flash_probe(struct flash *f, enum nf_format *fmt)
{
	uint8_t head[NF_FORMAT_PROBE_LEN];
	ssize_t n = nf_source_pread(f->src, head, sizeof(head), 0);
	struct nf_sniff sn;
	uint64_t size = 0;
	int r;

	if (n < 0) {
		flash_fail(f, (int)n, NF_STAGE_SOURCE, "cannot read '%s': %s", f->o->source, nf_source_detail(f->src));
		return (int)n;
	}
	if (n == 0) {
		flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' is empty", f->o->source);
		return -EBADMSG;
	}
	nf_format_sniff(head, (size_t)n, (size_t)n < sizeof(head), &sn);
	if ((r = check_claim(f, &sn, head, (size_t)n, (size_t)n < sizeof(head))) < 0)
		return r;
	*fmt = sn.format;
	if (*fmt == NF_FMT_UNKNOWN)
		return refuse_format(f, &sn);
	if (f->o->format != NF_FMT_UNKNOWN && f->o->format != *fmt) {
		flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' is %s data, not %s as --format says",
			   f->o->source, nf_format_name(*fmt), nf_format_name(f->o->format));
		return -EBADMSG;
	}
	/* zstd: the window against the budget first, so that a window over it
	 * is refused with both named, not by the head check's decoder. */
	if (*fmt == NF_FMT_ZSTD && (r = plan_zstd(f, head, (size_t)n)) < 0)
		return r;
	if ((r = check_head(f, *fmt, nf_format_name(*fmt))) < 0)
		return r;
	if (*fmt == NF_FMT_RAW) {
		size = nf_source_size(f->src);
	} else if (*fmt == NF_FMT_XZ && nf_source_is_stream(f->src)) {
		flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' is xz, whose index is at its end: a stream must be zstd, "
			   "gzip or raw (netflash image add makes a zstd worker copy)", f->o->source);
		return -EBADMSG;
	} else if (*fmt == NF_FMT_XZ) {
		/* The index gives the exact size before the target is touched;
		 * a damaged or truncated file fails here. */
		struct nf_xz_index x;

		r = nf_xz_info(source_pread, f->src, nf_source_size(f->src), &x);
		if (r < 0) {
			flash_fail(f, r, NF_STAGE_DECODE, "'%s': %s", f->o->source, r == -EBADMSG
				   ? "xz index is corrupt or the file is truncated" : nf_source_detail(f->src));
			return r;
		}
		size = x.size;
		plan_xz(f, &x);
	} else if (*fmt == NF_FMT_ZSTD) {
		unsigned long long fs = ZSTD_getFrameContentSize(head, (size_t)n);

		/* Only a lower bound: more frames may follow. */
		if (fs != ZSTD_CONTENTSIZE_UNKNOWN && fs != ZSTD_CONTENTSIZE_ERROR)
			f->min_size = fs;
	}
	if (size && f->o->expect_size && size != f->o->expect_size) {
		flash_fail(f, -EBADMSG, NF_STAGE_SOURCE, "'%s' decodes to %llu bytes, expected %llu",
			   f->o->source, (unsigned long long)size, (unsigned long long)f->o->expect_size);
		return -EBADMSG;
	}
	f->known_size = size ? size : f->o->expect_size;
	return 0;
}

int flash_check_size(struct flash *f)
{
	uint64_t need = f->known_size > f->min_size ? f->known_size : f->min_size;

	if (need > f->tgt.size) {
		flash_fail(f, -ENOSPC, NF_STAGE_TARGET, "the image does not fit: '%s' has %llu bytes, the image %s%llu",
			   f->tgt.path, (unsigned long long)f->tgt.size, f->known_size ? "" : "at least ",
			   (unsigned long long)need);
		return -ENOSPC;
	}
	return 0;
}
