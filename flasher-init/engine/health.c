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
};

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
		 * one. The smallest such distance is the best guess of its size. */
		buf[63] = '\0';
		if (got == (ssize_t)NF_PROBE_BLOCK &&
		    sscanf((const char *)buf, "netflash capacity probe @%llu", &other) == 1 && other > p[i].off &&
		    (!v->alias_from || other - p[i].off < v->alias_from - v->alias_to)) {
			v->alias_from = other;
			v->alias_to = p[i].off;
		}
	}
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
		nf_format_bytes(v->alias_from - v->alias_to, s4, sizeof(s4));
		nf_format_bytes(v->alias_to, s2, sizeof(s2));
		snprintf(detail, cap,
			 "fake card: it claims %s, but data written at %s lands at %s (it wraps: about %s real); "
			 "%zu of %zu probe markers did not read back", s1, s3, s2, s4, v->nbad, n);
	} else {
		nf_format_bytes(p[v->first_bad].off, s2, sizeof(s2));
		snprintf(detail, cap,
			 "fake or failing card: it claims %s, but data written at %s %s; "
			 "%zu of %zu probe markers did not read back", s1, s2, v->how, v->nbad, n);
	}
}

int nf_probe_capacity(struct nf_target *t, uint64_t size, char *detail, size_t cap)
{
	struct probe p[MAX_PROBES];
	struct probe_verdict v;
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
		describe_verdict(&v, p, n, size, detail, cap);
		r = v.nbad ? -EIO : 0;
	}
	/* Put back what was there, high to low (on a wrapping card the low
	 * blocks are the real ones, written last). */
	for (size_t i = n; i-- > 0;) {
		int w = nf_target_write(t, p[i].saved, NF_PROBE_BLOCK, p[i].off);

		if (w < 0 && r == 0)
			r = w;
	}
	nf_target_flush(t, 0, size);
	free(mem);
	return r;
}
