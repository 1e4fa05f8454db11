/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The project's parsers for untrusted text: numbers, sizes, hex digests, MACs. */
#ifndef NETFLASH_PARSE_H
#define NETFLASH_PARSE_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

/* Parses decimal digits only (no sign, no spaces, no trailing junk) into
 * *out within [min, max]. Returns 0, -EINVAL (empty, junk) or -ERANGE. */
int nf_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Parses a byte size: digits with an optional binary suffix K, M, G, T
 * (KiB.. TiB; "KiB" spellings accepted). Returns 0, -EINVAL or -ERANGE. */
int nf_parse_size(const char *s, uint64_t max, uint64_t *out);

/* The value of one hex digit (either case), or -1. */
int nf_hex_digit(char c);

/* A decimal from the wire in [0, max]: digits (at most 12), then
 * optionally '.' and digits; no sign, exponent, nan or inf. Returns 0 or
 * -EINVAL. */
int nf_parse_decimal(const char *s, double max, double *out);

/* Parses exactly 2*len hex digits (either case) into out[len].
 * Returns 0, -EINVAL (bad digit) or -EMSGSIZE (wrong length). */
int nf_parse_hex(const char *s, uint8_t *out, size_t len);

/* Formats len bytes as lower-case hex into out (capacity >= 2*len+1). */
void nf_format_hex(const uint8_t *in, size_t len, char *out);

/* A MAC address: its 6 bytes and its one canonical spelling, the TFTP
 * directory form "b8-27-eb-d3-85-78" that dnsmasq's tftp-unique-root=mac
 * looks for (../shared/DESIGN.md). A MAC becomes text, a path component or
 * a database key only as s. */
struct nf_mac {
	uint8_t b[6];
	char s[18];
};

/* Parses a MAC address in any common spelling (aa:bb:.., aa-bb-..,
 * aabb.ccdd.eeff, aabbccddeeff; either case) into *m. Returns 0 or -EINVAL
 * (m is then zeroed). */
int nf_mac_parse(const char *s, struct nf_mac *m);

/* *m from 6 bytes. */
void nf_mac_set(struct nf_mac *m, const uint8_t b[6]);

/* The colon spelling, "b8:27:eb:d3:85:78" (the kernel's and dnsmasq's
 * logs), into out. */
void nf_mac_colon(const struct nf_mac *m, char out[18]);

/* 1 if s is a MAC in its canonical spelling (a TFTP dir, an intent's or
 * an NFS root's file name), else 0. */
int nf_mac_is_canonical(const char *s);

/* Parses "A.B.C.D:PORT" (an IPv4 address, a port 1..65535) into *out
 * (AF_INET, network order). Returns 0 or -EINVAL. */
int nf_parse_ipv4_port(const char *spec, struct sockaddr_in *out);


/* A worker's board as it reports it in HELLO: the model, 1..80 bytes of
 * printable ASCII without blanks at either end ("Raspberry Pi 4 Model B
 * Rev 1.4"), and the serial, 1..32 of [A-Za-z0-9._-]. Return 1 if valid. */
#define NF_BOARD_MODEL_MAX 80
#define NF_BOARD_SERIAL_MAX 32
int nf_board_model_valid(const char *s);
int nf_board_serial_valid(const char *s);

#endif
