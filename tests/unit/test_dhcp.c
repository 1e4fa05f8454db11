/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The worker's DHCP reply parser (flasher-init/net.c): well-formed replies,
 * and every option it uses with a length RFC 2132 does not allow. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "net.h"

#define XID 0x12345678u

/* A BOOTREPLY for XID with yiaddr 10.0.0.9 and the options given (code,
 * len, bytes ...; then 255). Returns its length. */
static size_t reply(uint8_t *b, const uint8_t *opts, size_t olen)
{
	uint32_t xid = XID, magic = htonl(0x63825363u), yi = inet_addr("10.0.0.9");

	memset(b, 0, 600);
	b[0] = 2;
	b[1] = 1;
	b[2] = 6;
	memcpy(b + 4, &xid, 4);
	memcpy(b + 16, &yi, 4);
	memcpy(b + 236, &magic, 4);
	memcpy(b + 240, opts, olen);
	return 240 + olen;
}

int main(void)
{
	static const struct {
		const char *name;
		uint8_t opts[32];
		size_t len;
		int want;
	} t[] = {
		{ "ACK with mask, router, server", { 53, 1, 5, 1, 4, 255, 255, 255, 0, 3, 4, 10, 0, 0, 1, 54, 4, 10, 0, 0, 2, 255 }, 22, 5 },
		{ "OFFER, pads, two routers", { 0, 0, 53, 1, 2, 3, 8, 10, 0, 0, 1, 10, 0, 0, 3, 255 }, 16, 2 },
		{ "message type of 2 bytes", { 53, 2, 5, 0, 255 }, 5, -EPROTO },
		{ "mask of 3 bytes", { 53, 1, 5, 1, 3, 255, 255, 0, 255 }, 9, -EPROTO },
		{ "server id of 5 bytes", { 53, 1, 5, 54, 5, 10, 0, 0, 2, 0, 255 }, 11, -EPROTO },
		{ "router of 6 bytes", { 53, 1, 5, 3, 6, 10, 0, 0, 1, 0, 0, 255 }, 12, -EPROTO },
		{ "option running past the end", { 53, 1, 5, 12, 30, 'x' }, 6, -EPROTO },
		{ "no message type", { 1, 4, 255, 255, 255, 0, 255 }, 7, -EPROTO },
	};
	uint8_t b[600];
	struct nf_lease l;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r = nf_dhcp_parse_reply(b, reply(b, t[i].opts, t[i].len), XID, &l);

		CHECK(r == t[i].want, "%s: %d, expected %d", t[i].name, r, t[i].want);
	}
	nf_dhcp_parse_reply(b, reply(b, t[0].opts, t[0].len), XID, &l);
	CHECK(l.addr.s_addr == inet_addr("10.0.0.9") && l.mask.s_addr == inet_addr("255.255.255.0") &&
	      l.router.s_addr == inet_addr("10.0.0.1") && l.server.s_addr == inet_addr("10.0.0.2"), "lease fields");
	CHECK(nf_dhcp_parse_reply(b, reply(b, t[0].opts, t[0].len), XID + 1, &l) == -EPROTO, "another xid");
	b[0] = 1;
	CHECK(nf_dhcp_parse_reply(b, 262, XID, &l) == -EPROTO, "a BOOTREQUEST");
	CHECK(nf_dhcp_parse_reply(b, 100, XID, &l) == -EPROTO, "a short packet");
	return CHECK_DONE();
}
