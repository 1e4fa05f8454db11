/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "neigh.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

#define ATF_COM_FLAG 0x2 /* <net/if_arp.h>: the entry is complete */

/* One table line: "10.0.0.5  0x1  0x2  b8:27:eb:00:00:01  *  eth0". */
static int parse_line(const char *line, struct in_addr *ip, unsigned *flags, uint8_t mac[6], char *dev,
		      size_t devcap)
{
	char ips[64], type[16], fl[16], hw[40], mask[16], ifn[32];
	struct nf_mac m;
	unsigned long f;
	char *end;

	if (sscanf(line, "%63s %15s %15s %39s %15s %31s", ips, type, fl, hw, mask, ifn) != 6)
		return -EBADMSG;
	if (inet_pton(AF_INET, ips, ip) != 1)
		return -EBADMSG;
	errno = 0;
	f = strtoul(fl, &end, 16);
	if (errno || *end || end == fl)
		return -EBADMSG;
	*flags = (unsigned)f;
	if (nf_mac_parse(hw, &m) < 0)
		return -EBADMSG;
	memcpy(mac, m.b, 6);
	snprintf(dev, devcap, "%s", ifn);
	return 0;
}

int neigh_lookup(const char *table, struct in_addr ip, uint8_t mac[6], char *dev, size_t devcap)
{
	FILE *f = fopen(table, "re");
	char line[256];
	int r = -ENOENT, first = 1;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		struct in_addr a;
		unsigned flags = 0;
		uint8_t m[6];
		char ifn[32];

		if (first) { /* the header */
			first = 0;
			continue;
		}
		if (!strchr(line, '\n') && !feof(f)) {
			r = -EBADMSG;
			break;
		}
		if (parse_line(line, &a, &flags, m, ifn, sizeof(ifn)) < 0) {
			r = -EBADMSG;
			break;
		}
		if (a.s_addr == ip.s_addr && (flags & ATF_COM_FLAG)) {
			memcpy(mac, m, 6);
			if (dev)
				snprintf(dev, devcap, "%s", ifn);
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}
