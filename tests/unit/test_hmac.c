/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tables: SHA-256 (FIPS 180-2 examples), HMAC-SHA256 (RFC 4231 cases 1, 2,
 * 6), and agreement with OpenSSL at every length around the block size. */
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <string.h>

#include "check.h"
#include "hmac.h"
#include "parse.h"

static void hex_of(const uint8_t *md, char *out)
{
	nf_format_hex(md, 32, out);
}

static void test_sha(void)
{
	static const struct { const char *in, *want; } t[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};
	uint8_t md[32];
	char hex[65];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		nf_sha256(t[i].in, strlen(t[i].in), md);
		hex_of(md, hex);
		CHECK(strcmp(hex, t[i].want) == 0, "sha256 #%zu: %s", i, hex);
	}
}

static void test_hmac(void)
{
	uint8_t k1[20], k6[131], md[32];
	char hex[65];

	memset(k1, 0x0b, sizeof(k1));
	memset(k6, 0xaa, sizeof(k6));
	nf_hmac_sha256(k1, sizeof(k1), "Hi There", 8, md);
	hex_of(md, hex);
	CHECK(strcmp(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7") == 0, "rfc4231 1: %s", hex);
	nf_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, md);
	hex_of(md, hex);
	CHECK(strcmp(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843") == 0, "rfc4231 2: %s", hex);
	nf_hmac_sha256(k6, sizeof(k6), "Test Using Larger Than Block-Size Key - Hash Key First", 54, md);
	hex_of(md, hex);
	CHECK(strcmp(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54") == 0, "rfc4231 6: %s", hex);
}

/* Every length 0..200 of message and 0..140 of key, against OpenSSL. */
static void test_openssl(void)
{
	uint8_t buf[200], a[32], b[32];
	unsigned int blen = 0;
	int bad = 0;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	for (size_t n = 0; n <= sizeof(buf); n++) {
		nf_sha256(buf, n, a);
		SHA256(buf, n, b);
		bad += memcmp(a, b, 32) != 0;
	}
	for (size_t k = 0; k <= 140; k++) {
		nf_hmac_sha256(buf, k, buf + 13, 77, a);
		HMAC(EVP_sha256(), buf, (int)k, buf + 13, 77, b, &blen);
		bad += memcmp(a, b, 32) != 0;
	}
	CHECK(bad == 0, "%d lengths differ from OpenSSL", bad);
}

static void test_proof(void)
{
	char p1[65], p2[65], p3[65];

	CHECK(nf_query_proof("tok", "master", "b8-27-eb-00-00-01", "aa", "bb", "", p1) == 0, "proof");
	nf_query_proof("tok", "worker", "b8-27-eb-00-00-01", "aa", "bb", "", p2);
	nf_query_proof("tok2", "master", "b8-27-eb-00-00-01", "aa", "bb", "", p3);
	CHECK(strlen(p1) == 64 && strcmp(p1, p2) != 0 && strcmp(p1, p3) != 0, "proofs differ by role and token");
	CHECK(nf_equal_ct("abc", "abc") && !nf_equal_ct("abc", "abd") && !nf_equal_ct("abc", "ab") &&
	      !nf_equal_ct("", "a") && nf_equal_ct("", ""), "constant-time compare");
}

int main(void)
{
	test_sha();
	test_hmac();
	test_openssl();
	test_proof();
	return CHECK_DONE();
}
