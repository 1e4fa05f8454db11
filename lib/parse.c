/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "parse.h"
#include "strtable.h"

#include <arpa/inet.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nf_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
	}
	for (; *s; s++) {
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
			return -ERANGE;
	}
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int nf_parse_size(const char *s, uint64_t max, uint64_t *out)
{
	static const struct { const char *suffix; unsigned shift; } units[] = {
		{ "", 0 }, { "K", 10 }, { "KiB", 10 }, { "M", 20 }, { "MiB", 20 },
		{ "G", 30 }, { "GiB", 30 }, { "T", 40 }, { "TiB", 40 },
	};
	char digits[32];
	size_t n = strspn(s, "0123456789");
	uint64_t v;
	int r;

	if (n == 0 || n >= sizeof(digits))
		return n == 0 ? -EINVAL : -ERANGE;
	memcpy(digits, s, n);
	digits[n] = '\0';
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s + n, units[i].suffix) != 0)
			continue;
		r = nf_parse_u64(digits, 0, UINT64_MAX >> units[i].shift, &v);
		if (r < 0)
			return r;
		v <<= units[i].shift;
		if (v > max)
			return -ERANGE;
		*out = v;
		return 0;
	}
	return -EINVAL;
}

int nf_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int nf_parse_hex(const char *s, uint8_t *out, size_t len)
{
	if (strlen(s) != 2 * len)
		return -EMSGSIZE;
	for (size_t i = 0; i < len; i++) {
		int hi = nf_hex_digit(s[2 * i]), lo = nf_hex_digit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void nf_format_hex(const uint8_t *in, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * len] = '\0';
}

/* The bytes of a MAC in any common spelling. Returns 0 or -EINVAL. */
static int parse_mac(const char *s, uint8_t mac[6])
{
	char sep = 0;
	size_t len = strlen(s), ndig = 0, group = 0;
	uint8_t nib[12];

	/* Accepted shapes: 6 groups of 2 (':' or '-'), 3 groups of 4 ('.'), or 12 digits. */
	if (len != 17 && len != 14 && len != 12)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int v = nf_hex_digit(s[i]);

		if (v >= 0) {
			if (ndig == 12)
				return -EINVAL;
			nib[ndig++] = (uint8_t)v;
			group++;
			continue;
		}
		if (s[i] != ':' && s[i] != '-' && s[i] != '.')
			return -EINVAL;
		if (sep && s[i] != sep)
			return -EINVAL;
		sep = s[i];
		if (group != (sep == '.' ? 4u : 2u))
			return -EINVAL;
		group = 0;
	}
	if (ndig != 12)
		return -EINVAL;
	if (sep && group != (sep == '.' ? 4u : 2u))
		return -EINVAL;
	if ((len == 17 && (sep == '.' || !sep)) || (len == 14 && sep != '.') || (len == 12 && sep))
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)(nib[2 * i] << 4 | nib[2 * i + 1]);
	return 0;
}

/* The canonical TFTP-dir spelling "b8-27-eb-d3-85-78". */
static void format_mac(const uint8_t mac[6], char out[18])
{
	snprintf(out, 18, "%02x-%02x-%02x-%02x-%02x-%02x",
		 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

int nf_parse_decimal(const char *s, double max, double *out)
{
	size_t digits = strspn(s, "0123456789"), frac = 0;
	char *end;

	if (s[digits] == '.')
		frac = strspn(s + digits + 1, "0123456789") + 1;
	if (digits == 0 || digits + frac != strlen(s) || digits > 12)
		return -EINVAL;
	*out = strtod(s, &end);
	return *end == '\0' && isfinite(*out) && *out >= 0 && *out <= max ? 0 : -EINVAL;
}

int nf_mac_parse(const char *s, struct nf_mac *m)
{
	memset(m, 0, sizeof(*m));
	if (parse_mac(s, m->b) < 0)
		return -EINVAL;
	format_mac(m->b, m->s);
	return 0;
}

void nf_mac_set(struct nf_mac *m, const uint8_t b[6])
{
	memcpy(m->b, b, 6);
	format_mac(m->b, m->s);
}

int nf_mac_is_canonical(const char *s)
{
	struct nf_mac m;

	return nf_mac_parse(s, &m) == 0 && strcmp(m.s, s) == 0;
}

void nf_mac_colon(const struct nf_mac *m, char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m->b[0], m->b[1], m->b[2], m->b[3], m->b[4], m->b[5]);
}

int nf_board_model_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NF_BOARD_MODEL_MAX || s[0] == ' ' || s[n - 1] == ' ')
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

int nf_board_serial_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NF_BOARD_SERIAL_MAX)
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

int nf_parse_ipv4_port(const char *spec, struct sockaddr_in *out)
{
	const char *colon = strrchr(spec, ':');
	char host[INET_ADDRSTRLEN];
	uint64_t port;

	if (!colon || (size_t)(colon - spec) >= sizeof(host) || nf_parse_u64(colon + 1, 1, 65535, &port) < 0)
		return -EINVAL;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
		return -EINVAL;
	out->sin_port = htons((uint16_t)port);
	return 0;
}

int nf_string_table_index(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}
