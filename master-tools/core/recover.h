/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Crash safety of the changes to one worker that take several steps
 * (enroll, enroll --force, release, the daemon's release on DONE).
 *
 * Each such change writes an intent first, ROOT/state/intent/MAC (one line,
 * fsynced): "enroll GENERATION patch=0|1 [nfsroot=DIR]" or "release JOB". The state
 * database is the commit point: an enrollment exists once its row holds
 * the new token, a release once its row says released. Whatever a kill
 * interrupted, master_recover() completes (committed) or undoes (not
 * committed), using what each step leaves behind: the displaced TFTP dir
 * (.swap-MAC-*), the old patch (MAC.patch.old), the generation in each
 * TFTP dir's marker. It also removes what no change owns any more: stray
 * dot dirs under tftp/, temporary files, and provisioning patches (Wi-Fi
 * PSKs, password hashes) of workers that are released or gone.
 *
 * Invariants after master_recover(): a worker is enrolled if and only if
 * its TFTP dir exists and carries the database token's generation; a
 * released worker has no TFTP dir and no patch; no intent, .swap-/.new-/
 * .del- dir or .patch.old is left. */
#ifndef NETFLASH_RECOVER_H
#define NETFLASH_RECOVER_H

#include <stddef.h>
#include <stdint.h>

#include "nfsroot.h"

struct master;

/* The generation of an enrollment token: the first 16 hex digits of its
 * SHA-256 (out: 17 bytes). It names the enrollment in TFTP markers and
 * intents without being a secret. */
void master_generation(const char *token, char out[17]);

/* One intent: the change a worker is in the middle of. */
enum intent_kind {
	INTENT_ENROLL,  /* "enroll GENERATION patch=0|1 [nfsroot=DIR]" */
	INTENT_RELEASE, /* "release JOB" */
};

struct intent {
	enum intent_kind kind;
	char gen[17];      /* enroll: the new enrollment's generation */
	int patch_aside;   /* enroll: the old patch waits as MAC.patch.old */
	char nfsroot[NFSROOT_DIR_MAX + 2]; /* enroll: the old enrollment's NFS root, "" none */
	uint64_t job;      /* release: the job that ends done, 0 none (the admin's) */
};

/* Formats in as its intent line (no newline) into out. Returns the
 * length, or -EMSGSIZE when it does not fit cap, -EINVAL for a field the
 * line cannot carry (a generation that is not 16 hex digits). */
int intent_format(const struct intent *in, char *out, size_t cap);

/* Parses an intent line (what intent_format() writes; one trailing
 * newline allowed) into out. Returns 0 or -EBADMSG. */
int intent_parse(const char *line, struct intent *out);

/* Writes MAC's intent durably. Returns 0 or -errno. */
int intent_write(const struct master *m, const char *mac, const struct intent *in);

/* Removes MAC's intent: the change is complete. Returns 0 or -errno. */
int intent_clear(const struct master *m, const char *mac);

/* Completes or undoes every interrupted change, then removes leftovers.
 * The caller holds the state lock (master_lock() runs it). Tells each
 * repair to m->tell as a warning. Returns the number of repairs, or -errno when the
 * state could not be read (then nothing is trusted to be consistent). */
int master_recover(struct master *m);

#endif
