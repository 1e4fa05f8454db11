/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A worker's lifecycle: every change of an enrolled worker's state goes
 * through worker_transition() over one {from, event, to} table, and is
 * told in one place ("b8-27-eb-..: enrolled -> failed (tries-out)").
 * OpenBSD dhcpleased's state_transition() is the model. Enrolling (a new
 * row, or one replaced with --force) is not a transition: store_put()
 * writes the whole row. */
#ifndef NETFLASH_LIFECYCLE_H
#define NETFLASH_LIFECYCLE_H

#include "store.h"

struct master;

/* What happens to a worker. */
enum nf_worker_event {
	NF_WEV_RELEASE,    /* a verified DONE, netflash release, recovery: boots its card */
	NF_WEV_TRIES_OUT,  /* its last allowed attempt failed */
	NF_WEV_CARD_FINAL, /* its card failed in a way no retry helps (probe, read-only) */
	NF_WEV_CONTEST,    /* a second host claimed its job: nothing it says releases it */
	NF_WEV_FORCE_RELEASE, /* the admin's release --force: from any state, contested too */
};
const char *nf_worker_event_name(enum nf_worker_event ev);
int nf_worker_event_parse(const char *name, enum nf_worker_event *out);

/* Moves mac's state by ev along the table and sets its last error (error
 * may be NULL: none), telling m (if it has a tell callback) "MAC: FROM ->
 * TO (EVENT)". Returns 0, -EPERM when the table has no move from the
 * worker's state on ev (nothing changes), -ENOENT (no such worker) or
 * -EIO. */
int worker_transition(struct master *m, struct store *st, const char *mac, enum nf_worker_event ev,
		      const char *error);

#endif
