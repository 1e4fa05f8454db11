/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The Pi model from revision codes, client GUIDs and dnsmasq's log. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "pimodel.h"

static void test_revisions(void)
{
	static const struct { uint32_t rev; int ret; const char *model; } t[] = {
		{ 0xa02082, 0, "Pi 3B 1GB" },   { 0xa020d3, 0, "Pi 3B+ 1GB" }, { 0xc03111, 0, "Pi 4B 4GB" },
		{ 0xd03114, 0, "Pi 4B 8GB" },   { 0xd04170, 0, "Pi 5 8GB" },   { 0x9000c1, 0, "Pi Zero W 512MB" },
		{ 0xc03130, 0, "Pi 400 4GB" },  { 0xb03140, 0, "CM4 2GB" },
		{ 0x000010, -EINVAL, NULL },    /* old-style code (Pi 1 B+) */
		{ 0x8000f0, -EINVAL, NULL },    /* unknown type */
		{ 0x800050, -EINVAL, NULL },    /* a hole in the table */
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char out[48] = "";
		int r = pi_revision_model(t[i].rev, out, sizeof(out));

		CHECK(r == t[i].ret, "rev %#x: ret %d", t[i].rev, r);
		if (t[i].model)
			CHECK(strcmp(out, t[i].model) == 0, "rev %#x: '%s', expected '%s'", t[i].rev, out, t[i].model);
	}
}

static void test_families(void)
{
	static const struct { const char *model, *family; } t[] = {
		{ "Pi 4B 4GB", "pi4" }, { "Pi 400 4GB", "pi4" }, { "CM4 2GB", "pi4" }, { "CM4S 1GB", "pi4" },
		{ "Pi 5 8GB", "pi5" },  { "Pi 500 8GB", "pi5" }, { "CM5 Lite 4GB", "pi5" }, { "CM5", "pi5" },
		{ "Pi 3B+ 1GB", "pi3" }, { "Pi Zero 2 W 512MB", "pi3" }, { "Pi Zero W 512MB", "pi1" },
		{ "Pi 2B 1GB", "pi2" }, { "Pi 4", NULL }, { "Pi 4Bx 4GB", NULL }, { "", NULL }, { "pi4", NULL },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *f = pi_model_family(t[i].model);

		CHECK(t[i].family ? f && strcmp(f, t[i].family) == 0 : f == NULL, "family of '%s': %s", t[i].model,
		      f ? f : "(none)");
	}
}

static void test_guids(void)
{
	const uint8_t pi4[] = { 0, 'R', 'P', 'i', '4', 0x11, 0x31, 0xc0, 0x00, 0x32, 0, 0, 2, 0x12 };
	const uint8_t pi5[] = { 0, 'R', 'P', 'i', '5', 0x70, 0x41, 0xd0, 0x00 };
	const uint8_t serial4x[] = { 0, 0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x56, 0x78, 0x12 }; /* old format */
	const uint8_t type1[] = { 1, 'R', 'P', 'i', '4', 0x11, 0x31, 0xc0, 0x00 };
	char out[48] = "";

	CHECK(pi_guid_model(pi4, sizeof(pi4), out, sizeof(out)) == 0 && strcmp(out, "Pi 4B 4GB") == 0, "pi4: %s", out);
	CHECK(pi_guid_model(pi5, sizeof(pi5), out, sizeof(out)) == 0 && strcmp(out, "Pi 5 8GB") == 0, "pi5: %s", out);
	CHECK(pi_guid_model(serial4x, sizeof(serial4x), out, sizeof(out)) == -EINVAL, "old-format GUID accepted");
	CHECK(pi_guid_model(type1, sizeof(type1), out, sizeof(out)) == -EINVAL, "GUID type 1 accepted");
	CHECK(pi_guid_model(pi4, 8, out, sizeof(out)) == -EINVAL, "8 bytes accepted");
}

static void test_log(void)
{
	char path[] = "/tmp/test_pimodel.XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	uint8_t g[32];
	int n;

	fputs("Nov 25 09:03:31 dnsmasq-dhcp[1]: 11 PXE(eth0) dc:a6:32:00:00:02 proxy\n"
	      "Nov 25 09:03:31 dnsmasq-dhcp[1]: 11 sent size: 17 option: 97 client-machine-id  "
	      "00:52:50:69:34:11:31:c0:00:32:00:00:02:12...\n"
	      "Nov 25 09:03:32 dnsmasq-dhcp[1]: 12 PXE(eth0) b8:27:eb:00:00:01 proxy\n"
	      "Nov 25 09:03:32 dnsmasq-dhcp[1]: 11 sent size: 17 option: 97 client-machine-id  00:52:50:69:35:70\n"
	      "Nov 25 09:03:33 dnsmasq-dhcp[1]: 13 PXE(eth0) e4:5f:01:00:00:03 proxy\n"
	      "Nov 25 09:03:33 dnsmasq-dhcp[1]: 13 sent size: 17 option: 97 client-machine-id  00:52:50:69:35:70:41:d0:00\n"
	      "Nov 25 09:03:34 dnsmasq-dhcp[1]: 14 PXE(eth0) e4:5f:01:00:00:03 proxy\n"
	      "Nov 25 09:03:34 dnsmasq-dhcp[1]: 14 sent size: 17 option: 97 client-machine-id  zz:52\n"
	      "garbage line without an xid\n"
	      "Nov 25 09:03:35 dnsmasq-dhcp[1]: 99999999999999999999 PXE(eth0) dc:a6:32:00:00:02 proxy\n",
	      f);
	fclose(f);
	n = pi_guid_from_log(path, "dc-a6-32-00-00-02", g, sizeof(g));
	CHECK(n == 14 && g[4] == '4' && g[5] == 0x11, "dc:a6:32: n=%d", n);
	n = pi_guid_from_log(path, "b8:27:eb:00:00:01", g, sizeof(g));
	CHECK(n == 0, "a Pi without option 97 (a later line of another xid): n=%d", n);
	n = pi_guid_from_log(path, "e4-5f-01-00-00-03", g, sizeof(g));
	CHECK(n == 0, "the newest exchange has a malformed GUID: n=%d", n);
	n = pi_guid_from_log(path, "02:00:00:00:00:0a", g, sizeof(g));
	CHECK(n == 0, "an unknown MAC: n=%d", n);
	CHECK(pi_guid_from_log("/nonexistent/log", "dc:a6:32:00:00:02", g, sizeof(g)) == -ENOENT, "missing log");
	unlink(path);
}

int main(void)
{
	test_revisions();
	test_families();
	test_guids();
	test_log();
	return CHECK_DONE();
}
