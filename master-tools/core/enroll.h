/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Enrolling workers (enroll.c): what the CLI, mass-flash and the daemon's
 * API share. Releasing them is release.h. */
#ifndef NETFLASH_ENROLL_H
#define NETFLASH_ENROLL_H

#include <stddef.h>

#include "master.h"
#include "store.h"

struct provision;
/* Enrolls e->mac (e->image, hostname set; token and state are filled in):
 * builds its provisioning patch (prov may be NULL: none) and its TFTP dir
 * and records it, under the state lock, and starts the enrolled hooks.
 * force replaces an enrollment in state "enrolled". Returns 0 or -errno,
 * with rep's error, warnings and the lines a command shows (rep->out)
 * filled. */
int master_enroll(struct master *m, struct enrollment *e, const struct provision *prov, int force,
		  struct master_report *rep);
/* 0 if canon (a MAC in struct nf_mac's canonical form) can be a Pi's: not all
 * zeros, not a group address (IEEE 802 I/G bit); else -EINVAL with why. */
int master_station_mac(const char *canon, char *why, size_t cap);
/* 1 if h is an RFC 1123 host label (letters, digits, '-', up to 63). */
int master_hostname_valid(const char *h);
/* enroll --nfsroot: enrolls e->mac diskless, its root nfsroot (checked by
 * the caller with nfsroot_check(), and the subnet it is exported to set),
 * under the state lock. Returns 0 or -errno with rep filled, as
 * master_enroll. */
int master_enroll_diskless(struct master *m, struct enrollment *e, const char *nfsroot, int force,
			   struct master_report *rep);

#endif
