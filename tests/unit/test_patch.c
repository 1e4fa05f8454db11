/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The provisioning patch: ordering and merging rules, the digest's
 * independence from how the patch was cut into messages, limits, and the
 * file form against truncated, trailing and hostile bytes. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "patch.h"

static void write_bytes(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	fwrite(data, 1, len, f);
	fclose(f);
}

int main(void)
{
	struct nf_patch a, b, c;
	uint8_t data[2048], da[32], db[32], dc[32], want[32];
	char path[] = "/tmp/netflash-patch-XXXXXX";
	int fd = mkstemp(path);

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	close(fd);

	/* Adjacent runs merge: one 1024-byte extent equals four 256-byte adds. */
	nf_patch_init(&a);
	nf_patch_init(&b);
	CHECK(nf_patch_add(&a, 4 << 20, data, 1024) == 0, "add");
	CHECK(nf_patch_add(&a, (4 << 20) + 4096, data + 1024, 512) == 0, "second extent");
	for (int i = 0; i < 4; i++)
		CHECK(nf_patch_add(&b, (4 << 20) + 256 * i, data + 256 * i, 256) == 0, "add piece %d", i);
	CHECK(nf_patch_add(&b, (4 << 20) + 4096, data + 1024, 200) == 0, "piece");
	CHECK(nf_patch_add(&b, (4 << 20) + 4096 + 200, data + 1224, 312) == 0, "piece");
	CHECK(a.n == 2 && b.n == 2 && a.bytes == 1536 && b.bytes == 1536, "extents %zu %zu", a.n, b.n);
	nf_patch_digest(&a, da);
	nf_patch_digest(&b, db);
	CHECK(memcmp(da, db, 32) == 0, "digest depends on how the patch was cut");

	/* The digest is SHA-256 of (off u64 LE, len u32 LE, bytes) per extent. */
	{
		uint8_t buf[12 + 1024 + 12 + 512], *p = buf;
		unsigned int n = 0;
		uint64_t offs[2] = { 4 << 20, (4 << 20) + 4096 };
		uint32_t lens[2] = { 1024, 512 };
		const uint8_t *src[2] = { data, data + 1024 };

		for (int e = 0; e < 2; e++) {
			for (int i = 0; i < 8; i++)
				*p++ = (uint8_t)(offs[e] >> (8 * i));
			for (int i = 0; i < 4; i++)
				*p++ = (uint8_t)(lens[e] >> (8 * i));
			memcpy(p, src[e], lens[e]);
			p += lens[e];
		}
		EVP_Digest(buf, sizeof(buf), want, &n, EVP_sha256(), NULL);
		CHECK(memcmp(da, want, 32) == 0, "digest is not the documented one");
	}

	/* Out of order, overlapping, empty, overflowing: refused. */
	CHECK(nf_patch_add(&a, 4 << 20, data, 16) == -EINVAL, "overlap accepted");
	CHECK(nf_patch_add(&a, 1 << 20, data, 16) == -EINVAL, "out of order accepted");
	CHECK(nf_patch_add(&a, 8 << 20, data, 0) == -EINVAL, "empty accepted");
	CHECK(nf_patch_add(&a, UINT64_MAX - 4, data, 16) == -EOVERFLOW, "overflow accepted");
	nf_patch_init(&c);
	for (uint64_t off = 0; off < NF_PATCH_MAX; off += sizeof(data))
		nf_patch_add(&c, off, data, sizeof(data));
	CHECK(c.bytes == NF_PATCH_MAX, "limit not reachable: %llu", (unsigned long long)c.bytes);
	CHECK(nf_patch_add(&c, 1ull << 40, data, 1) == -EFBIG, "over NF_PATCH_MAX accepted");
	nf_patch_free(&c);

	/* File form: round trip, then damage. */
	memset(a.base_sha256, 0xab, 32);
	CHECK(nf_patch_save(&a, path) == 0, "save");
	CHECK(nf_patch_load(&c, path) == 0, "load");
	nf_patch_digest(&c, dc);
	CHECK(memcmp(dc, da, 32) == 0 && memcmp(c.base_sha256, a.base_sha256, 32) == 0, "round trip differs");
	nf_patch_free(&c);
	{
		FILE *f = fopen(path, "rb");
		static uint8_t file[8192];
		size_t n = fread(file, 1, sizeof(file), f);

		fclose(f);
		for (size_t cut = 0; cut < n; cut += 97) {
			write_bytes(path, file, cut);
			CHECK(nf_patch_load(&c, path) == -EBADMSG, "truncated at %zu accepted", cut);
		}
		file[n] = 0;
		write_bytes(path, file, n + 1);
		CHECK(nf_patch_load(&c, path) == -EBADMSG, "trailing byte accepted");
		file[8 + 32] = 3; /* three extents claimed, two present */
		write_bytes(path, file, n);
		CHECK(nf_patch_load(&c, path) == -EBADMSG, "wrong count accepted");
		file[8 + 32] = 2;
		file[8 + 36 + 8] = 0xff; /* first length 0x4ff: past the data */
		file[8 + 36 + 9] = 0xff;
		write_bytes(path, file, n);
		CHECK(nf_patch_load(&c, path) == -EBADMSG, "oversize length accepted");
	}
	unlink(path);
	nf_patch_free(&a);
	nf_patch_free(&b);
	return CHECK_DONE();
}
