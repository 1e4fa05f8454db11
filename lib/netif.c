/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "netif.h"

#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <string.h>

int nf_iface_with_addr(struct in_addr a, char *name, size_t cap)
{
	struct ifaddrs *ifs, *i;
	int r = -ENOENT;

	if (getifaddrs(&ifs) < 0)
		return -errno;
	for (i = ifs; i && r < 0; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == a.s_addr && strlen(i->ifa_name) < cap) {
			snprintf(name, cap, "%s", i->ifa_name);
			r = 0;
		}
	freeifaddrs(ifs);
	return r;
}
