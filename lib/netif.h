/* SPDX-License-Identifier: GPL-2.0-or-later */
/* This machine's network interfaces (getifaddrs(3)). */
#ifndef NETFLASH_NETIF_H
#define NETFLASH_NETIF_H

#include <netinet/in.h>
#include <stddef.h>

/* The name of the interface that holds the IPv4 address a, into name
 * (cap bytes, at least IF_NAMESIZE). Returns 0, -ENOENT (no interface holds
 * it) or -errno (the interfaces cannot be listed). */
int nf_iface_with_addr(struct in_addr a, char *name, size_t cap);

#endif
