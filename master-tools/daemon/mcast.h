/* Multicast sessions (docs/multicast.md): the workers that ask for the same
 * image with multicast set (core/multicast.h) gather into a session; once
 * it starts, netflashd runs udpcast's udp-sender on the image's worker copy
 * and each member's udp-receiver takes the stream (lib/udpcast.h). A
 * session is only a way to move bytes: each member's DONE is checked
 * against the catalog's digest as any other. */
#ifndef NETFLASH_MCAST_H
#define NETFLASH_MCAST_H

#include <stddef.h>
#include <stdint.h>

#include "manifest.h"

struct daemon;
struct mc_table;

/* The table, with sessions on even port bases from port_base on, udp-sender
 * on interface iface. Returns NULL when out of memory. */
struct mc_table *mcast_new(unsigned port_base, const char *iface);
void mcast_free(struct mc_table *t);

/* Worker mac (its enrollment's token: a failed session is remembered per
 * enrollment) asks for job job_id of image man. When mac is set to
 * multicast and its last session did not fail, it joins the gathering
 * session of that image (a new one if none gathers) and url (cap bytes)
 * gets the session's udpcast:// URL. Returns 1 (joined), 0 (take NFS:
 * not multicast, a failed session before, a late worker with late=nfs,
 * an image that cannot stream) or -errno (logged). */
int mcast_join(struct daemon *d, const char *mac, const char *token, uint64_t job_id, const struct nf_manifest *man,
	       char *url, size_t cap);

/* mac's job job_id ended: ok, or failed with why. A member whose session
 * failed takes NFS on its next job (same enrollment). */
void mcast_job_ended(struct daemon *d, const char *mac, const char *token, uint64_t job_id, int ok, const char *why);

/* Starts the sessions whose gathering is over, reaps senders that ended,
 * stops a sender whose members have all ended; writes ROOT/state/
 * sessions.json when anything changed. Call about once a second. */
void mcast_tick(struct daemon *d);

#endif
