/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Edge-case tables for the project's parsers. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "format.h"
#include "json.h"
#include "log.h"
#include "parse.h"

static void test_u64(void)
{
	static const struct { const char *s; uint64_t min, max; int ret; uint64_t v; } t[] = {
		{ "0", 0, 10, 0, 0 },
		{ "10", 0, 10, 0, 10 },
		{ "11", 0, 10, -ERANGE, 0 },
		{ "0", 1, 10, -ERANGE, 0 },
		{ "", 0, 10, -EINVAL, 0 },
		{ "1x", 0, 10, -EINVAL, 0 },
		{ " 1", 0, 10, -EINVAL, 0 },
		{ "-1", 0, 10, -EINVAL, 0 },
		{ "+1", 0, 10, -EINVAL, 0 },
		{ "18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX },
		{ "18446744073709551616", 0, UINT64_MAX, -ERANGE, 0 },
		{ "99999999999999999999999", 0, UINT64_MAX, -ERANGE, 0 },
		{ "007", 0, 10, 0, 7 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t v = 12345;
		int r = nf_parse_u64(t[i].s, t[i].min, t[i].max, &v);

		CHECK(r == t[i].ret, "u64 '%s': got %d want %d", t[i].s, r, t[i].ret);
		CHECK(r < 0 || v == t[i].v, "u64 '%s': value %llu", t[i].s, (unsigned long long)v);
	}
}

static void test_size(void)
{
	static const struct { const char *s; int ret; uint64_t v; } t[] = {
		{ "4096", 0, 4096 }, { "4K", 0, 4096 }, { "4KiB", 0, 4096 }, { "36M", 0, 36ull << 20 },
		{ "2G", 0, 2ull << 30 }, { "1T", 0, 1ull << 40 }, { "1P", -EINVAL, 0 }, { "M", -EINVAL, 0 },
		{ "1.5G", -EINVAL, 0 }, { "", -EINVAL, 0 }, { "16777216T", -ERANGE, 0 },
		{ "2T", -ERANGE, 0 } /* above the max passed below */,
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t v = 0;
		int r = nf_parse_size(t[i].s, 1ull << 40, &v);

		CHECK(r == t[i].ret, "size '%s': got %d want %d", t[i].s, r, t[i].ret);
		CHECK(r < 0 || v == t[i].v, "size '%s': value %llu", t[i].s, (unsigned long long)v);
	}
}

static void test_hex(void)
{
	uint8_t b[4];
	char out[9];

	CHECK(nf_parse_hex("deadBEEF", b, 4) == 0 && b[0] == 0xde && b[3] == 0xef, "hex ok");
	CHECK(nf_parse_hex("deadbee", b, 4) == -EMSGSIZE, "odd length");
	CHECK(nf_parse_hex("deadbeef0", b, 4) == -EMSGSIZE, "too long");
	CHECK(nf_parse_hex("deadbeeg", b, 4) == -EINVAL, "bad digit");
	CHECK(nf_parse_hex("", b, 4) == -EMSGSIZE, "empty");
	nf_format_hex(b, 4, out);
	CHECK(strcmp(out, "deadbeef") == 0, "format hex %s", out);
}

static void test_mac(void)
{
	static const struct { const char *s; int ok, canonical; } t[] = {
		{ "b8:27:eb:d3:85:78", 1, 0 }, { "B8-27-EB-D3-85-78", 1, 0 }, { "b827.ebd3.8578", 1, 0 },
		{ "b827ebd38578", 1, 0 }, { "b8-27-eb-d3-85-78", 1, 1 }, { "b8:27:eb:d3:85", 0, 0 },
		{ "b8:27:eb:d3:85:78:00", 0, 0 }, { "b8:27-eb:d3:85:78", 0, 0 }, { "b8:27:eb:d3:85:7g", 0, 0 },
		{ "b8:27:eb:d3:857:8", 0, 0 }, { "../../etc/passwd", 0, 0 }, { "", 0, 0 },
		{ "b8:27:eb:d3:85:78\n", 0, 0 }, { "b827.ebd38.578", 0, 0 }, { "b8:27:eb:d3:85:7", 0, 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct nf_mac m;
		char colon[18];
		int r = nf_mac_parse(t[i].s, &m);

		CHECK((r == 0) == t[i].ok, "mac '%s': got %d", t[i].s, r);
		CHECK(nf_mac_is_canonical(t[i].s) == t[i].canonical, "mac '%s': canonical?", t[i].s);
		if (r == 0) {
			nf_mac_colon(&m, colon);
			CHECK(strcmp(m.s, "b8-27-eb-d3-85-78") == 0 && m.b[0] == 0xb8 && m.b[5] == 0x78 &&
				      strcmp(colon, "b8:27:eb:d3:85:78") == 0, "mac canonical %s, colon %s", m.s, colon);
		} else {
			CHECK(m.s[0] == '\0', "mac '%s': zeroed on failure", t[i].s);
		}
	}
}

static void test_quote(void)
{
	char out[64];

	CHECK(strcmp(nf_quote(out, sizeof(out), "a'b\n\x01"), "'a\\x27b\\x0a\\x01'") == 0, "quote %s", out);
	nf_quote(out, 16, "0123456789abcdefghijkl");
	CHECK(strlen(out) < 16 && strstr(out, "...") != NULL, "quote cut %s", out);
	CHECK(strcmp(nf_json_str(out, sizeof(out), "a\"b\\\n\xff"), "\"a\\\"b\\\\\\u000a\\u00ff\"") == 0, "json %s", out);
}

static void test_board(void)
{
	static const char *const good_models[] = { "Raspberry Pi 4 Model B Rev 1.4", "x", "QEMU Standard PC (Q35 + ICH9, 2009)" };
	static const char *const bad_models[] = { "", " lead", "trail ", "new\nline", "del\x7f", "\xc3\xa9t\xc3\xa9" };
	static const char *const good_serials[] = { "00000000c0ffee42", "10000000abcd1234", "VMware-56_4d.x" };
	static const char *const bad_serials[] = { "", "00 ab", "../x", "a/b", "ab%", "To be filled by O.E.M." };
	char big[NF_BOARD_MODEL_MAX + 2];

	for (size_t i = 0; i < sizeof(good_models) / sizeof(*good_models); i++)
		CHECK(nf_board_model_valid(good_models[i]), "model '%s' refused", good_models[i]);
	for (size_t i = 0; i < sizeof(bad_models) / sizeof(*bad_models); i++)
		CHECK(!nf_board_model_valid(bad_models[i]), "model #%zu taken", i);
	for (size_t i = 0; i < sizeof(good_serials) / sizeof(*good_serials); i++)
		CHECK(nf_board_serial_valid(good_serials[i]), "serial '%s' refused", good_serials[i]);
	for (size_t i = 0; i < sizeof(bad_serials) / sizeof(*bad_serials); i++)
		CHECK(!nf_board_serial_valid(bad_serials[i]), "serial '%s' taken", bad_serials[i]);
	memset(big, 'm', sizeof(big) - 1);
	big[NF_BOARD_MODEL_MAX] = '\0';
	CHECK(nf_board_model_valid(big), "a model of the longest length refused");
	big[NF_BOARD_MODEL_MAX] = 'm';
	big[NF_BOARD_MODEL_MAX + 1] = '\0';
	CHECK(!nf_board_model_valid(big), "a model one byte too long taken");
	big[NF_BOARD_SERIAL_MAX] = '\0';
	CHECK(nf_board_serial_valid(big), "a serial of the longest length refused");
	big[NF_BOARD_SERIAL_MAX] = 'm';
	big[NF_BOARD_SERIAL_MAX + 1] = '\0';
	CHECK(!nf_board_serial_valid(big), "a serial one byte too long taken");
}

static void test_ipv4_port(void)
{
	static const struct { const char *s; int ok; uint32_t ip; uint16_t port; } t[] = {
		{ "127.0.0.1:8070", 1, 0x7f000001, 8070 }, { "0.0.0.0:1", 1, 0, 1 },
		{ "192.168.1.10:65535", 1, 0xc0a8010a, 65535 }, { "127.0.0.1:0", 0, 0, 0 },
		{ "127.0.0.1:65536", 0, 0, 0 }, { "127.0.0.1", 0, 0, 0 }, { ":80", 0, 0, 0 },
		{ "localhost:80", 0, 0, 0 }, { "127.0.0.1:80x", 0, 0, 0 }, { "1.2.3.4.5:80", 0, 0, 0 },
		{ "[::1]:80", 0, 0, 0 }, { "", 0, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sockaddr_in sa;
		int r = nf_parse_ipv4_port(t[i].s, &sa);

		CHECK((r == 0) == t[i].ok, "'%s': %d", t[i].s, r);
		if (t[i].ok && r == 0)
			CHECK(sa.sin_family == AF_INET && ntohl(sa.sin_addr.s_addr) == t[i].ip &&
			      ntohs(sa.sin_port) == t[i].port, "'%s': wrong address", t[i].s);
	}
}

int main(void)
{
	test_u64();
	test_size();
	test_hex();
	test_mac();
	test_quote();
	test_board();
	test_ipv4_port();
	return CHECK_DONE();
}
