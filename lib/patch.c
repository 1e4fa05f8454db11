/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "patch.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "fileutil.h"

static const char magic[8] = "NFPATCH1";

void nf_patch_init(struct nf_patch *p)
{
	memset(p, 0, sizeof(*p));
}

void nf_patch_free(struct nf_patch *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->ext[i].data);
	free(p->ext);
	nf_patch_init(p);
}

int nf_patch_add(struct nf_patch *p, uint64_t off, const void *data, size_t len)
{
	struct nf_patch_extent *last = p->n ? &p->ext[p->n - 1] : NULL;
	uint64_t end;

	if (len == 0)
		return -EINVAL;
	if (__builtin_add_overflow(off, (uint64_t)len, &end))
		return -EOVERFLOW;
	if (len > NF_PATCH_MAX - p->bytes)
		return -EFBIG;
	if (last && off < last->off + last->len)
		return -EINVAL;
	if (last && off == last->off + last->len) {
		uint8_t *d = realloc(last->data, last->len + len);

		if (!d)
			return -ENOMEM;
		memcpy(d + last->len, data, len);
		last->data = d;
		last->len += (uint32_t)len;
	} else {
		if (p->n == NF_PATCH_EXTENTS_MAX)
			return -EFBIG;
		if (p->n == p->cap) {
			size_t cap = p->cap ? p->cap * 2 : 16;
			struct nf_patch_extent *e = realloc(p->ext, cap * sizeof(*e));

			if (!e)
				return -ENOMEM;
			p->ext = e;
			p->cap = cap;
		}
		struct nf_patch_extent *e = &p->ext[p->n];

		e->data = malloc(len);
		if (!e->data)
			return -ENOMEM;
		memcpy(e->data, data, len);
		e->off = off;
		e->len = (uint32_t)len;
		p->n++;
	}
	p->bytes += len;
	return 0;
}

static void put_le(uint8_t *b, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *b, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

void nf_patch_digest(const struct nf_patch *p, uint8_t out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 0;

	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (size_t i = 0; i < p->n; i++) {
		uint8_t h[12];

		put_le(h, p->ext[i].off, 8);
		put_le(h + 8, p->ext[i].len, 4);
		EVP_DigestUpdate(md, h, sizeof(h));
		EVP_DigestUpdate(md, p->ext[i].data, p->ext[i].len);
	}
	EVP_DigestFinal_ex(md, out, &len);
	EVP_MD_CTX_free(md);
}

int nf_patch_save(const struct nf_patch *p, const char *path)
{
	size_t size = sizeof(magic) + 32 + 4 + p->n * 12 + p->bytes, o = 0;
	uint8_t *buf = malloc(size);
	int r;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, magic, sizeof(magic));
	o += sizeof(magic);
	memcpy(buf + o, p->base_sha256, 32);
	o += 32;
	put_le(buf + o, p->n, 4);
	o += 4;
	for (size_t i = 0; i < p->n; i++) {
		put_le(buf + o, p->ext[i].off, 8);
		put_le(buf + o + 8, p->ext[i].len, 4);
		memcpy(buf + o + 12, p->ext[i].data, p->ext[i].len);
		o += 12 + p->ext[i].len;
	}
	r = nf_write_file_atomic(path, buf, size, 0600);
	free(buf);
	return r;
}

int nf_patch_load(struct nf_patch *p, const char *path)
{
	size_t max = sizeof(magic) + 32 + 4 + (size_t)NF_PATCH_EXTENTS_MAX * 12 + NF_PATCH_MAX;
	char *buf = malloc(max + 1);
	const uint8_t *b = (const uint8_t *)buf;
	ssize_t n;
	size_t o, rem;
	uint32_t count;
	int r = -EBADMSG;

	nf_patch_init(p);
	if (!buf)
		return -ENOMEM;
	n = nf_read_file(path, buf, max);
	if (n < 0) {
		free(buf);
		return n == -EFBIG ? -EBADMSG : (int)n;
	}
	rem = (size_t)n;
	if (rem < sizeof(magic) + 36 || memcmp(buf, magic, sizeof(magic)) != 0)
		goto out;
	memcpy(p->base_sha256, b + sizeof(magic), 32);
	count = (uint32_t)get_le(b + sizeof(magic) + 32, 4);
	o = sizeof(magic) + 36;
	rem -= o;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t off;
		uint32_t len;

		if (rem < 12)
			goto out;
		off = get_le(b + o, 8);
		len = (uint32_t)get_le(b + o + 8, 4);
		o += 12;
		rem -= 12;
		if (len > rem || nf_patch_add(p, off, b + o, len) < 0)
			goto out;
		o += len;
		rem -= len;
	}
	if (rem == 0 && p->n == count)
		r = 0;
out:
	free(buf);
	if (r < 0)
		nf_patch_free(p);
	return r;
}
