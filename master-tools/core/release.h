/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Releasing a worker: ending its enrollment so that its next boot comes
 * from its card. Three callers, one list of steps (release_worker()):
 * `netflash release` (master_release()), netflashd on a verified DONE, and
 * master_recover() completing a release a kill interrupted. Where they
 * differ is an argument, never a copy of the steps. */
#ifndef NETFLASH_RELEASE_H
#define NETFLASH_RELEASE_H

#include <stddef.h>
#include <stdint.h>

struct master;
struct store;

/* How release_worker() takes the state lock. */
enum release_lock {
	RELEASE_LOCK_WAIT, /* master_lock(): a command waits for another holder */
	RELEASE_LOCK_TRY,  /* master_trylock(): netflashd's loop never waits; the
			    * worker sends its DONE again when the lock is taken */
	RELEASE_LOCK_HELD, /* the caller holds it (master_recover() runs under it) */
};

/* Refuse what the admin may name but netflash never enrolled: a MAC with
 * no row and no TFTP dir (-ENOENT), a TFTP dir without netflash's marker
 * (-EPERM). A DONE or an intent names a worker that was enrolled. */
#define RELEASE_CHECK (1u << 0)
/* Also forget a diskless worker's NFS root and rewrite the export files.
 * Left out on a DONE: a worker that flashed is not diskless (enroll drops
 * the old root when a diskless worker is enrolled to flash), so netflashd
 * spares the exports a rewrite per flashed worker. */
#define RELEASE_NFSROOT (1u << 1)
/* Completing an interrupted release (master_recover()): its intent is
 * there already and stays the caller's to clear; what the interrupted run
 * committed is not done twice (the job ends only if still running, with
 * the bytes it counted; the row and its history line only if not yet
 * released). */
#define RELEASE_RESUME (1u << 2)
/* The admin's release --force: also a contested worker (lifecycle.h). */
#define RELEASE_FORCE (1u << 3)

struct release {
	const char *mac;        /* canonical, "b8-27-eb-d3-85-78" */
	enum release_lock lock;
	unsigned flags;         /* RELEASE_* */
	uint64_t job;           /* the job that ends done; 0: none (the admin's release) */
	uint64_t bytes;         /* what the job wrote, and in how long (not with RESUME) */
	double seconds;
	const char *event[2];   /* the history's line: [0] the TFTP dir went, [1] there was none */
};

/* Releases rel->mac, in this order (recover.h: the intent first, the
 * database row is the commit point, so a kill at any step is completed by
 * the next recovery):
 *   1. take the state lock (rel->lock)
 *   2. RELEASE_CHECK: refuse what netflash did not enroll
 *   3. write the intent "release JOB" (not with RELEASE_RESUME)
 *   4. commit: the job ends done, the row says released
 *   5. remove the TFTP dir; record the release in the history
 *   6. remove the provisioning patch (secrets the card has now) and any
 *      old one an interrupted enroll left aside
 *   7. RELEASE_NFSROOT: forget the NFS root export
 *   8. clear the intent (not with RELEASE_RESUME); release the lock
 * st is the caller's open state database, or NULL: one is opened under the
 * lock. Does not log. Returns 1 when the TFTP dir was removed, 0 when it
 * had none, or -errno with why set (why may also hold a warning on
 * success): -EBUSY (RELEASE_LOCK_TRY) the lock could not be taken now;
 * -EAGAIN the database did not take the release (the intent stays, a
 * retry or the next recovery completes it); -ENOENT / -EPERM
 * (RELEASE_CHECK); -EPERM also for a contested worker without
 * RELEASE_FORCE (before anything is written); else the failing step's
 * error, the intent staying once it was written. */
int release_worker(struct master *m, struct store *st, const struct release *rel, char *why, size_t cap);

/* `netflash release [--force] MAC` (mac canonical): release_worker()
 * waiting for the lock, with RELEASE_CHECK and RELEASE_NFSROOT (and
 * RELEASE_FORCE when force). Returns as release_worker(). */
int master_release(struct master *m, const char *mac, int force, char *why, size_t cap);

#endif
