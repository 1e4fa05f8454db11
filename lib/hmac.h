/* SPDX-License-Identifier: GPL-2.0-or-later */
/* SHA-256 and HMAC-SHA256 in plain C, for netflash-agent, which links libc
 * only (the master uses OpenSSL; tests/unit/test_hmac.c checks both agree
 * and checks the FIPS 180-2 and RFC 4231 vectors). Used for the QUERY
 * challenge (docs/protocol.md): each side proves it holds the enrollment
 * token without sending it. */
#ifndef NETFLASH_HMAC_H
#define NETFLASH_HMAC_H

#include <stddef.h>
#include <stdint.h>

/* SHA-256 of len bytes at p into out (32 bytes). FIPS 180-4. */
void nf_sha256(const void *p, size_t len, uint8_t out[32]);

/* HMAC-SHA256 (RFC 2104) of msg under key into out (32 bytes). */
void nf_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen, uint8_t out[32]);

/* The proofs of the QUERY challenge: HMAC-SHA256 under the token of
 * "netflash-<role>\n<mac>\n<cnonce>\n<snonce>\n<extra>", as 64 hex digits
 * into out (65 bytes). role: "master", "worker", "enrolled", "nojob";
 * extra: the image or the reason ("" for none). Returns 0 or -EMSGSIZE. */
int nf_query_proof(const char *token, const char *role, const char *mac, const char *cnonce, const char *snonce,
		   const char *extra, char out[65]);

/* 1 if the two NUL-terminated strings are equal, in time that depends on
 * their length only. */
int nf_equal_ct(const char *a, const char *b);

#endif
