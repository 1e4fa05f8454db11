/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "health.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/fs.h>

#include "engine.h"
#include "fileutil.h"
#include "format.h"
#include "parse.h"
#include "scan.h"

void nf_card_identify(const char *path, struct nf_card_id *id)
{
	char dir[256];
	struct stat sb;
	dev_t disk;
	int fd, is_partition;

	memset(id, 0, sizeof(*id));
	if (stat(path, &sb) < 0)
		return;
	if (!S_ISBLK(sb.st_mode)) {
		id->bytes = S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0;
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (ioctl(fd, BLKGETSIZE64, &id->bytes) < 0)
			id->bytes = 0;
		close(fd);
	}
	/* A partition's card is its disk's device. */
	disk = nf_whole_disk(sb.st_rdev, &is_partition);
	snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u/device", major(disk), minor(disk));
	nf_read_attr(dir, "cid", id->cid, sizeof(id->cid));
	if (!id->cid[0])
		return; /* not an MMC/SD card */
	id->have = 1;
	nf_read_attr(dir, "csd", id->csd, sizeof(id->csd));
	nf_read_attr(dir, "name", id->name, sizeof(id->name));
	nf_read_attr(dir, "manfid", id->manfid, sizeof(id->manfid));
	nf_read_attr(dir, "oemid", id->oemid, sizeof(id->oemid));
	nf_read_attr(dir, "serial", id->serial, sizeof(id->serial));
	nf_read_attr(dir, "date", id->date, sizeof(id->date));
	nf_read_attr(dir, "type", id->type, sizeof(id->type));
}

void nf_card_describe(const struct nf_card_id *id, const char *path, char *out, size_t cap)
{
	char size[32];

	nf_format_bytes(id->bytes, size, sizeof(size));
	if (!id->have) {
		snprintf(out, cap, "%s: not an SD/MMC card (no CID), %s", path, size);
		return;
	}
	snprintf(out, cap, "%s card %s, manfid %s, oemid %s, serial %s, date %s, %s, CID %s, CSD %s",
		 id->type[0] ? id->type : "MMC/SD", id->name[0] ? id->name : "?", id->manfid[0] ? id->manfid : "?",
		 id->oemid[0] ? id->oemid : "?", id->serial[0] ? id->serial : "?", id->date[0] ? id->date : "?", size,
		 id->cid, id->csd[0] ? id->csd : "?");
}

void nf_card_verdict(const struct nf_flash_result *res, double min_mbps, struct nf_card_verdict *v)
{
	char at[32];

	memset(v, 0, sizeof(*v));
	if (res->stalls) {
		nf_format_bytes(res->max_stall_at, at, sizeof(at));
		snprintf(v->stall, sizeof(v->stall), "%u write(s) took %.0f s or longer; the slowest %.1f s at %s",
			 res->stalls, res->stall_limit_s, res->max_stall_s, at);
	}
	if (min_mbps > 0 && res->t_write > 1 && res->written_bytes &&
	    (double)res->written_bytes / 1e6 / res->t_write < min_mbps)
		snprintf(v->slow, sizeof(v->slow), "the card wrote %.1f MB/s, below the floor of %.1f MB/s",
			 (double)res->written_bytes / 1e6 / res->t_write, min_mbps);
}

#define MAX_PROBES 80

struct probe {
	uint64_t off;
	uint8_t *saved;
};

/* The marker at off: a header naming it, then bytes derived from off and
 * the nonce, so no two probes (and no stale data) look alike. */
static void marker(uint8_t *buf, uint64_t off, uint64_t nonce)
{
	uint64_t x = off * 0x9e3779b97f4a7c15ull ^ nonce;

	memset(buf, 0, 64);
	snprintf((char *)buf, 64, "netflash capacity probe @%llu", (unsigned long long)off);
	for (size_t i = 64; i < NF_PROBE_BLOCK; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
}

static int add_probe(struct probe *p, size_t *n, uint64_t off)
{
	for (size_t i = 0; i < *n; i++)
		if (p[i].off == off)
			return 0;
	if (*n == MAX_PROBES)
		return 0;
	p[(*n)++].off = off;
	return 0;
}

static int cmp_off(const void *a, const void *b)
{
	const struct probe *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Where the probes go: a random block in the second MiB (away from the
 * partition table), that base plus every power of two from 1 MiB up to
 * the claimed end, 31 even steps (jittered by the nonce) and the last
 * block. Sorted low to high; returns how many. */
static size_t plan_probes(struct probe *p, uint64_t size, uint64_t nonce)
{
	uint64_t blocks = size / NF_PROBE_BLOCK, base = (256 + nonce % 256) * NF_PROBE_BLOCK;
	size_t n = 0;

	add_probe(p, &n, base);
	for (uint64_t step = 1u << 20; step && base + step + NF_PROBE_BLOCK <= size; step <<= 1)
		add_probe(p, &n, base + step);
	for (unsigned k = 1; k < 32; k++)
		add_probe(p, &n, (blocks * k / 32 + nonce % 97) * NF_PROBE_BLOCK % (blocks * NF_PROBE_BLOCK));
	add_probe(p, &n, (blocks - 1) * NF_PROBE_BLOCK);
	qsort(p, n, sizeof(p[0]), cmp_off);
	return n;
}

/* Reads what each probe block holds now into its saved buffer. Returns 0
 * or -errno with detail naming the offset. */
static int save_blocks(struct nf_target *t, struct probe *p, size_t n, char *detail, size_t cap)
{
	char s1[32];

	for (size_t i = 0; i < n; i++) {
		ssize_t got = nf_target_read(t, p[i].saved, NF_PROBE_BLOCK, p[i].off);

		if (got != (ssize_t)NF_PROBE_BLOCK) {
			nf_format_bytes(p[i].off, s1, sizeof(s1));
			snprintf(detail, cap, "cannot read the card at %s: %s", s1,
				 got < 0 ? strerror((int)-got) : "short read");
			return got < 0 ? (int)got : -EIO;
		}
	}
	return 0;
}

/* What reading the markers back found. */
struct probe_verdict {
	size_t nbad, first_bad;      /* markers that did not read back; the lowest */
	const char *how;             /* what the lowest one read back as */
	uint64_t alias_from, alias_to; /* a marker written at from found at to */
	uint64_t alias_gcd;          /* gcd of every such distance: a multiple of
				      * the real size on a card that wraps */
	uint64_t last_good;          /* the highest marker below the lowest bad
				      * one that read back (0: none) */
	uint64_t real;               /* the estimated real size (0: none) */
};

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* Reads every marker back (buf: one block of scratch) into v. */
static void check_markers(struct nf_target *t, const struct probe *p, size_t n, uint64_t nonce, uint8_t *buf,
			  struct probe_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->how = "reads back wrong";
	for (size_t i = 0; i < n; i++) {
		uint8_t want[NF_PROBE_BLOCK];
		ssize_t got = nf_target_read(t, buf, NF_PROBE_BLOCK, p[i].off);
		unsigned long long other;

		marker(want, p[i].off, nonce);
		if (got == (ssize_t)NF_PROBE_BLOCK && memcmp(buf, want, NF_PROBE_BLOCK) == 0)
			continue;
		if (v->nbad++ == 0) {
			v->first_bad = i;
			if (got != (ssize_t)NF_PROBE_BLOCK)
				v->how = "cannot be read back";
			else if (memcmp(buf, p[i].saved, NF_PROBE_BLOCK) == 0)
				v->how = "reads back its old content (the write was lost)";
			else if (nf_is_zero(buf, NF_PROBE_BLOCK))
				v->how = "reads back as zeros";
		}
		/* Another probe's marker here: the card maps that offset onto this
		 * one, so the distance is a multiple of what it really holds. */
		buf[63] = '\0';
		if (got != (ssize_t)NF_PROBE_BLOCK ||
		    sscanf((const char *)buf, "netflash capacity probe @%llu", &other) != 1 || other <= p[i].off)
			continue;
		if (!v->alias_from || other - p[i].off < v->alias_from - v->alias_to) {
			v->alias_from = other;
			v->alias_to = p[i].off;
		}
		v->alias_gcd = gcd64(v->alias_gcd, other - p[i].off);
	}
	for (size_t i = 0; v->nbad && i < v->first_bad; i++)
		v->last_good = p[i].off;
}

/* Scratch for the size estimate's trials: what the two blocks held, and
 * a block to read into. */
struct trial {
	struct nf_target *t;
	uint64_t nonce;
	uint8_t *saved_lo, *saved_hi, *buf;
};

/* Writes a marker at lo and one at hi (lo < hi), reads both back and puts
 * back what they held (hi first: on a card that wraps, the low block is
 * the real one). *hi_on_lo: lo now holds hi's marker (hi lands on lo);
 * *hi_kept: hi reads back its own marker. Returns 0 or -errno. */
static int trial_pair(struct trial *tr, uint64_t lo, uint64_t hi, int *hi_on_lo, int *hi_kept)
{
	uint8_t want[NF_PROBE_BLOCK];
	int r = 0, w;

	if (nf_target_read(tr->t, tr->saved_lo, NF_PROBE_BLOCK, lo) != (ssize_t)NF_PROBE_BLOCK ||
	    nf_target_read(tr->t, tr->saved_hi, NF_PROBE_BLOCK, hi) != (ssize_t)NF_PROBE_BLOCK)
		return -EIO;
	marker(tr->buf, lo, tr->nonce);
	if ((r = nf_target_write(tr->t, tr->buf, NF_PROBE_BLOCK, lo)) == 0) {
		marker(tr->buf, hi, tr->nonce);
		r = nf_target_write(tr->t, tr->buf, NF_PROBE_BLOCK, hi);
	}
	if (r == 0)
		r = nf_target_flush(tr->t, lo, hi + NF_PROBE_BLOCK - lo);
	marker(want, hi, tr->nonce);
	if (r == 0) {
		*hi_on_lo = nf_target_read(tr->t, tr->buf, NF_PROBE_BLOCK, lo) == (ssize_t)NF_PROBE_BLOCK &&
			    memcmp(tr->buf, want, NF_PROBE_BLOCK) == 0;
		*hi_kept = nf_target_read(tr->t, tr->buf, NF_PROBE_BLOCK, hi) == (ssize_t)NF_PROBE_BLOCK &&
			   memcmp(tr->buf, want, NF_PROBE_BLOCK) == 0;
	}
	w = nf_target_write(tr->t, tr->saved_hi, NF_PROBE_BLOCK, hi);
	if (w == 0)
		w = nf_target_write(tr->t, tr->saved_lo, NF_PROBE_BLOCK, lo);
	if (w == 0)
		w = nf_target_flush(tr->t, lo, hi + NF_PROBE_BLOCK - lo);
	return r < 0 ? r : w;
}

#define MAX_TRIALS 64
#define MAX_DIVISORS 1024

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* A card that wraps maps offset x onto x mod real, so every distance a
 * marker moved is a multiple of its real size, and so is their gcd. The
 * real size is the smallest divisor of that gcd at which a marker written
 * that far above a reference lands on it: tried in increasing order from
 * 1 MiB, at most MAX_TRIALS of them. Returns the size, or 0. */
static uint64_t estimate_wrap(struct trial *tr, uint64_t ref, uint64_t gcd, uint64_t size)
{
	uint64_t units = gcd / NF_PROBE_BLOCK, d[MAX_DIVISORS];
	size_t n = 0, tried = 0;

	for (uint64_t i = 1; i * i <= units && n + 2 <= MAX_DIVISORS; i++) {
		if (units % i)
			continue;
		d[n++] = i;
		if (i * i != units)
			d[n++] = units / i;
	}
	qsort(d, n, sizeof(d[0]), cmp_u64);
	for (size_t i = 0; i < n && tried < MAX_TRIALS; i++) {
		uint64_t x = d[i] * NF_PROBE_BLOCK;
		int on_lo = 0, kept = 0;

		if (x < (1u << 20) || ref + x + NF_PROBE_BLOCK > size)
			continue;
		tried++;
		if (trial_pair(tr, ref, ref + x, &on_lo, &kept) < 0)
			return 0;
		if (on_lo)
			return x;
	}
	return 0;
}

/* A card that loses writes past its real size: bisects between the
 * highest marker that read back (good) and the lowest that did not (bad)
 * with single markers, to 1/64 of the range or 4 KiB. Returns the first
 * offset found not to keep data (the real size), or 0. */
static uint64_t estimate_drop(struct trial *tr, uint64_t good, uint64_t bad)
{
	for (unsigned k = 0; k < MAX_TRIALS && bad - good > NF_PROBE_BLOCK && bad - good > bad / 64; k++) {
		uint64_t mid = (good + (bad - good) / 2) / NF_PROBE_BLOCK * NF_PROBE_BLOCK;
		int on_lo = 0, kept = 0;

		if (mid <= good)
			break;
		/* The pair's low block is the good one: a card that wraps there
		 * would show it, one that drops shows the high marker lost. */
		if (trial_pair(tr, good, mid, &on_lo, &kept) < 0)
			return 0;
		if (kept && !on_lo)
			good = mid;
		else
			bad = mid;
	}
	return bad;
}

/* Fills v->real, the card's real size, by trials after the markers were
 * put back. Leaves it 0 when the trials cannot tell. */
static void estimate_real(struct nf_target *t, const struct probe *p, uint64_t size, uint64_t nonce,
			  struct probe_verdict *v)
{
	struct trial tr = { .t = t, .nonce = nonce };
	uint8_t *mem = aligned_alloc(NF_PROBE_BLOCK, 3 * NF_PROBE_BLOCK);

	if (!mem)
		return;
	tr.saved_lo = mem;
	tr.saved_hi = mem + NF_PROBE_BLOCK;
	tr.buf = mem + 2 * NF_PROBE_BLOCK;
	if (v->alias_gcd)
		v->real = estimate_wrap(&tr, p[0].off, v->alias_gcd, size);
	else if (p[v->first_bad].off > v->last_good)
		v->real = estimate_drop(&tr, v->last_good, p[v->first_bad].off);
	free(mem);
}

/* The verdict as one line into detail. */
static void describe_verdict(const struct probe_verdict *v, const struct probe *p, size_t n, uint64_t size,
			     char *detail, size_t cap)
{
	char s1[32], s2[32], s3[32], s4[32];

	nf_format_bytes(size, s1, sizeof(s1));
	if (!v->nbad) {
		snprintf(detail, cap, "capacity probe passed: %zu markers up to %s read back", n, s1);
	} else if (v->alias_from) {
		nf_format_bytes(v->alias_from, s3, sizeof(s3));
		nf_format_bytes(v->real ? v->real : v->alias_gcd, s4, sizeof(s4));
		nf_format_bytes(v->alias_to, s2, sizeof(s2));
		snprintf(detail, cap,
			 "fake card: it claims %s, but data written at %s lands at %s (it wraps: %s %s real); "
			 "%zu of %zu probe markers did not read back", s1, s3, s2, v->real ? "about" : "at most", s4,
			 v->nbad, n);
	} else {
		nf_format_bytes(p[v->first_bad].off, s2, sizeof(s2));
		nf_format_bytes(v->real, s4, sizeof(s4));
		snprintf(detail, cap,
			 "fake or failing card: it claims %s, but data written at %s %s%s%s%s; "
			 "%zu of %zu probe markers did not read back", s1, s2, v->how, v->real ? " (about " : "",
			 v->real ? s4 : "", v->real ? " real)" : "", v->nbad, n);
	}
}

int nf_probe_capacity(struct nf_target *t, uint64_t size, char *detail, size_t cap)
{
	struct probe p[MAX_PROBES];
	struct probe_verdict v = { 0 };
	uint64_t nonce;
	uint8_t *mem, *buf;
	char hex[17];
	size_t n;
	int r = 0;

	if (size / NF_PROBE_BLOCK < 1024) {
		snprintf(detail, cap, "skipped: the target is too small to probe");
		return 0;
	}
	if (nf_random_hex(hex, 8) < 0)
		return -EIO;
	nonce = strtoull(hex, NULL, 16);
	n = plan_probes(p, size, nonce);
	mem = aligned_alloc(NF_PROBE_BLOCK, (n + 1) * NF_PROBE_BLOCK);
	if (!mem)
		return -ENOMEM;
	buf = mem + n * NF_PROBE_BLOCK;
	for (size_t i = 0; i < n; i++)
		p[i].saved = mem + i * NF_PROBE_BLOCK;
	if ((r = save_blocks(t, p, n, detail, cap)) < 0) {
		free(mem);
		return r;
	}
	/* Markers, low to high: a card that wraps overwrites low ones last. */
	for (size_t i = 0; i < n && r == 0; i++) {
		marker(buf, p[i].off, nonce);
		r = nf_target_write(t, buf, NF_PROBE_BLOCK, p[i].off);
	}
	if (r == 0)
		r = nf_target_flush(t, 0, size);
	if (r < 0) {
		snprintf(detail, cap, "cannot write probe markers: %s", strerror(-r));
	} else {
		check_markers(t, p, n, nonce, buf, &v);
		r = v.nbad ? -EIO : 0;
		if (!v.nbad)
			describe_verdict(&v, p, n, size, detail, cap);
	}
	/* Put back what was there, high to low (on a wrapping card the low
	 * blocks are the real ones, written last). */
	for (size_t i = n; i-- > 0;) {
		int w = nf_target_write(t, p[i].saved, NF_PROBE_BLOCK, p[i].off);

		if (w < 0 && r == 0)
			r = w;
	}
	nf_target_flush(t, 0, size);
	if (r == -EIO && v.nbad) {
		estimate_real(t, p, size, nonce, &v);
		describe_verdict(&v, p, n, size, detail, cap);
	}
	free(mem);
	return r;
}
