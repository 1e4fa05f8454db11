/* SPDX-License-Identifier: GPL-2.0-or-later */
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
 * on interface iface; session ids go on from those in d's last
 * state/sessions.json (whose sessions died with their netflashd: the first
 * mcast_tick() rewrites it). Returns NULL when out of memory. */
struct mc_table *mcast_new(struct daemon *d, unsigned port_base, const char *iface);

/* Stops the senders and records every live session as ended ("netflashd
 * stopped"); accepts NULL. */
void mcast_free(struct daemon *d);

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

/* 1 when job_id of mac is a running member of a session that is gathering
 * or sending (its worker may wait quietly for the stream). */
int mcast_job_live(struct daemon *d, const char *mac, uint64_t job_id);

/* mac asked for a new job (job_id): it has left the sessions of its
 * earlier jobs ("the worker started over"). */
void mcast_started_over(struct daemon *d, const char *mac, uint64_t job_id);

/* Starts the sessions whose gathering is over, reaps senders that ended,
 * stops a sender whose members have all ended; writes ROOT/state/
 * sessions.json when anything changed. Call about once a second. */
void mcast_tick(struct daemon *d);

#endif
