/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The worker's end of a multicast session: udpcast's udp-receiver (Debian
 * package udpcast, the engine FOG and Clonezilla use), run as a child whose
 * standard output is the image's bytes in order. The master runs
 * udp-sender on the same port base (docs/multicast.md). */
#ifndef NETFLASH_UDPCAST_H
#define NETFLASH_UDPCAST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NF_UDPCAST_SCHEME "udpcast://"

struct nf_udpcast_url {
	char host[16];      /* the sender's IPv4 address, dotted */
	unsigned portbase;  /* udpcast's --portbase: it uses this port and the next */
	char ifname[16];    /* --interface; "" until nf_udpcast_pick_interface() */
	unsigned start_s;   /* how long to wait for the sender; 0: the caller's */
};

/* Parses "udpcast://A.B.C.D:PORTBASE[?if=IFNAME][&start=SECONDS]" (PORTBASE
 * 1024..65534, even, as udpcast takes two ports; start: how long the
 * receiver waits for the session to begin, which the master knows).
 * Returns 0, or -EINVAL with the reason in why (capacity cap). */
int nf_udpcast_parse(const char *url, struct nf_udpcast_url *u, char *why, size_t cap);

/* Sets u->ifname, when empty, to the interface that holds the route to
 * u->host (where udp-receiver must listen). Returns 0 or -errno with the
 * reason in why. */
int nf_udpcast_pick_interface(struct nf_udpcast_url *u, char *why, size_t cap);

/* Starts udp-receiver (found on PATH) for u: its standard output into
 * *out_fd, its standard error (udpcast's messages) into *err_fd, both
 * non-blocking and close-on-exec. start_s: seconds it waits for the sender
 * to start; idle_s: seconds without data during the transfer before it
 * gives up. Returns the child's pid, or -errno with the reason in why. */
pid_t nf_udpcast_receive(const struct nf_udpcast_url *u, unsigned start_s, unsigned idle_s, int *out_fd,
			 int *err_fd, char *why, size_t cap);

#endif
