/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The worker's network for PID 1: find the Ethernet interface, bring it up,
 * and get an address with a small DHCP client (Debian kernels have no
 * CONFIG_IP_PNP, so ip=dhcp on the command line does nothing there). */
#ifndef NETFLASH_NET_H
#define NETFLASH_NET_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>

struct nf_lease {
	struct in_addr addr, mask, router, server;
};

/* Waits up to timeout_s for a non-loopback interface (drivers may still be
 * probing) and copies its name. preferred: a name to wait for, or NULL.
 * Returns 0 or -ENODEV. */
int nf_net_find(const char *preferred, unsigned timeout_s, char ifname[IF_NAMESIZE]);

/* The interface's MAC as "aa:bb:cc:dd:ee:ff". Returns 0 or -errno. */
int nf_net_mac(const char *ifname, uint8_t mac[6]);

/* 1 if the interface already has an IPv4 address (kernel ip=dhcp), else 0. */
int nf_net_configured(const char *ifname);

/* Sets the interface up. Returns 0 or -errno. */
int nf_net_up(const char *ifname);

/* DHCP DISCOVER/OFFER/REQUEST/ACK on ifname (RFC 2131), bounded by timeout_s.
 * Returns 0 with *lease filled, -ETIMEDOUT, or -errno. */
int nf_dhcp(const char *ifname, const uint8_t mac[6], unsigned timeout_s, struct nf_lease *lease);

/* Parses a DHCP reply of len bytes at b for transaction xid (as sent, in
 * network order): returns its message type (2 OFFER, 5 ACK, 6 NAK) and
 * fills l, or -EPROTO for anything that is not a well-formed BOOTREPLY
 * (an option it uses with a length RFC 2132 does not allow included). */
int nf_dhcp_parse_reply(const uint8_t *b, size_t len, uint32_t xid, struct nf_lease *l);

/* Configures the lease's address, mask, broadcast address and default route
 * (without a router: a route for multicast, 224.0.0.0/4, on ifname).
 * Returns 0 or -errno. */
int nf_net_apply(const char *ifname, const struct nf_lease *lease);

#endif
