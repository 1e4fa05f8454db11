/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Which workers take their image from a multicast session (udpcast) rather
 * than by NFS, and how their sessions gather: ROOT/state/multicast/MAC,
 * written by enroll --multicast and mass-flash --multicast, read by
 * netflashd when the worker asks for its job (docs/multicast.md). */
#ifndef NETFLASH_MULTICAST_H
#define NETFLASH_MULTICAST_H

#include "master.h"

/* A session starts when min_workers have asked (0: no count) or max_wait
 * seconds after its first worker asked, whichever comes first. */
#define NF_MC_MAX_WAIT_DEFAULT 30
#define NF_MC_MAX_WAIT_MAX 3600
#define NF_MC_MIN_WORKERS_MAX 256

struct nf_mc_settings {
	unsigned min_workers;  /* 0: start on max_wait alone */
	unsigned max_wait;     /* seconds */
	int late_nfs;          /* 1: a worker that comes after its session started
				* takes NFS; 0: it waits for the next session */
};

/* The defaults: no count, NF_MC_MAX_WAIT_DEFAULT, late workers wait. */
void multicast_defaults(struct nf_mc_settings *s);

/* Records s for mac's enrollment (NULL: mac takes NFS, the file goes).
 * Returns 0 or -errno. */
int multicast_set(const struct master *m, const char *mac, const struct nf_mc_settings *s);

/* mac's settings into s. Returns 1 (multicast), 0 (NFS) or -errno
 * (-EBADMSG: a file netflash did not write). */
int multicast_get(const struct master *m, const char *mac, struct nf_mc_settings *s);

/* The text of s as stored ("min-workers=N max-wait=S late=wait|nfs"). */
void multicast_format(const struct nf_mc_settings *s, char *out, size_t cap);

#endif
