/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The kernel's neighbour (ARP) table: which MAC the master last heard from
 * an IPv4 address on the LAN. It is the evidence dnsmasq itself goes by
 * when it picks a worker's TFTP dir, so netflashd holds a HELLO to it: the
 * MAC a HELLO names must be the MAC behind the connection's address. */
#ifndef NETFLASH_NEIGH_H
#define NETFLASH_NEIGH_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define NF_NEIGH_TABLE "/proc/net/arp" /* proc(5): "IP address HW type Flags HW address Mask Device" */

/* Looks ip up in table (NF_NEIGH_TABLE, or a file of that format for
 * tests). On success fills mac (6 bytes) and dev (the interface, capacity
 * devcap, may be NULL). Only complete entries count (flag ATF_COM, 0x2,
 * from <net/if_arp.h>): an incomplete one has no MAC yet. Returns 0,
 * -ENOENT (no complete entry: the address is not a neighbour, e.g.
 * loopback or routed), -EBADMSG (a line that does not parse), or -errno
 * from reading the table. */
int neigh_lookup(const char *table, struct in_addr ip, uint8_t mac[6], char *dev, size_t devcap);

#endif
