/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Releasing a worker in one place (release.h): the steps, in order, for
 * the CLI, netflashd's DONE and recovery. */
#include "release.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lifecycle.h"
#include "log.h"
#include "master.h"
#include "nfsroot.h"
#include "provision.h"
#include "recover.h"
#include "store.h"
#include "tftpdir.h"

static int take_lock(struct master *m, enum release_lock how, char *why, size_t cap)
{
	int r;

	switch (how) {
	case RELEASE_LOCK_HELD:
		return 0;
	case RELEASE_LOCK_TRY:
		/* Any failure is "not now": the worker's DONE comes again. */
		if ((r = master_trylock(m)) == -EBUSY)
			snprintf(why, cap, "the state lock is held by a netflash command");
		else if (r < 0)
			master_lock_error(m, r, why, cap);
		return r < 0 ? -EBUSY : 0;
	case RELEASE_LOCK_WAIT:
		if ((r = master_lock(m)) < 0)
			master_lock_error(m, r, why, cap);
		return r;
	}
	return -EINVAL;
}

/* The state of mac's row into *state. Returns 0, -ENOENT (no row),
 * -ENOMEM or -EIO. */
static int row_state(struct store *st, const char *mac, enum nf_worker_state *state)
{
	struct enrollment *e = calloc(1, sizeof(*e));
	int r = e ? store_get(st, mac, e) : -ENOMEM;

	if (r == 0)
		*state = e->state;
	free(e);
	return r;
}

/* A contested worker is released by the admin alone (RELEASE_FORCE): no
 * DONE, whoever sent it, and no plain release. Returns 0 or -EPERM. */
static int check_contest(struct store *st, const struct release *rel, char *why, size_t cap)
{
	enum nf_worker_state s = NF_WORKER_ENROLLED;

	if (row_state(st, rel->mac, &s) < 0 || s != NF_WORKER_CONTESTED || (rel->flags & RELEASE_FORCE))
		return 0;
	snprintf(why, cap, "%s is contested (a second host claimed its job: netflash status); check its card, then "
		 "release --force, or enroll it again", rel->mac);
	return -EPERM;
}

/* RELEASE_CHECK: something netflash enrolled, by its row or its marked dir. */
static int check_releasable(struct store *st, const char *tftp, const char *mac, char *why, size_t cap)
{
	char gen[32];
	enum nf_worker_state s = NF_WORKER_ENROLLED;
	int known = row_state(st, mac, &s) == 0, dir = tftpdir_exists(tftp, mac);

	if (!known && dir == 0) {
		snprintf(why, cap, "%s is not enrolled (see netflash ls); nothing to release", mac);
		return -ENOENT;
	}
	if (dir == 1 && tftpdir_generation(tftp, mac, gen, sizeof(gen)) == -ENOENT) {
		snprintf(why, cap, "tftp/%s was not made by netflash (no marker); remove it by hand", mac);
		return -EPERM;
	}
	return 0;
}

/* RELEASE_RESUME: the interrupted run may have ended the job already. */
static int end_job(struct store *st, const struct release *rel)
{
	struct job j;

	if (!(rel->flags & RELEASE_RESUME))
		return store_job_end(st, rel->job, NF_JOB_DONE, NULL, rel->bytes, rel->seconds);
	if (store_job_get(st, rel->job, &j) < 0 || j.state != NF_JOB_RUNNING)
		return 0;
	return store_job_end(st, rel->job, NF_JOB_DONE, NULL, j.done, 0);
}

/* 1 if mac has a row that is not released yet, 0 if not, or -ENOMEM. */
static int row_unreleased(struct store *st, const char *mac)
{
	enum nf_worker_state s = NF_WORKER_ENROLLED;
	int r = row_state(st, mac, &s);

	return r == -ENOMEM ? r : r == 0 && s != NF_WORKER_RELEASED;
}

/* The commit point (recover.h). Returns 1 when the history is to hear of
 * the release (RELEASE_RESUME: only when this call released the row), 0
 * when not, or -EAGAIN with why set. */
static int commit(struct master *m, struct store *st, const struct release *rel, char *why, size_t cap)
{
	int r = rel->job ? end_job(st, rel) : 0, tell = 1;

	if (r == 0 && (rel->flags & RELEASE_RESUME))
		r = tell = row_unreleased(st, rel->mac);
	/* No row (a stray marked dir the admin names) is nothing to mark. */
	if (r >= 0 && tell &&
	    (r = worker_transition(m, st, rel->mac, rel->flags & RELEASE_FORCE ? NF_WEV_FORCE_RELEASE : NF_WEV_RELEASE,
				   NULL)) == -ENOENT)
		r = 0;
	if (r == -EPERM) {
		/* Contested since the intent was written (lifecycle.h): an
		 * interrupted release does not go on; the admin decides. */
		snprintf(why, cap, "%s is contested; release --force it after checking its card", rel->mac);
		return -EPERM;
	}
	if (r < 0) {
		snprintf(why, cap, "the state database did not take the release; it is completed later");
		return -EAGAIN;
	}
	return tell;
}

/* The per-worker files: the patch (and the old one an interrupted enroll
 * --force left aside), and with RELEASE_NFSROOT the NFS root export; a
 * failure there is why's warning, never the release's. */
static void drop_files(struct master *m, const struct release *rel, char *why, size_t cap)
{
	char cur[PATH_MAX], old[PATH_MAX + 8], detail[1400];

	if (provision_patch_path(m, rel->mac, cur, sizeof(cur)) == 0) {
		snprintf(old, sizeof(old), "%s.old", cur);
		unlink(cur);
		unlink(old);
		snprintf(old, sizeof(old), "%s.sent", cur);
		unlink(old);
	}
	if ((rel->flags & RELEASE_NFSROOT) && nfsroot_set(m, rel->mac, NULL, detail, sizeof(detail)) < 0)
		snprintf(why, cap, "%s, ignoring", detail);
}

/* Steps 2 to 8 of release_worker(), under the lock. */
static int release_steps(struct master *m, struct store *st, const struct release *rel, char *why, size_t cap)
{
	const struct intent in = { .kind = INTENT_RELEASE, .job = rel->job };
	int resume = rel->flags & RELEASE_RESUME, r, tell;
	char tftp[PATH_MAX], detail[512] = "";

	master_path(m, tftp, sizeof(tftp), "tftp");
	if ((rel->flags & RELEASE_CHECK) && (r = check_releasable(st, tftp, rel->mac, why, cap)) < 0)
		return r;
	if (!resume && (r = check_contest(st, rel, why, cap)) < 0)
		return r;
	/* From here the release is completed whatever interrupts it. */
	if (!resume && (r = intent_write(m, rel->mac, &in)) < 0) {
		snprintf(why, cap, "cannot record the release: %s", nf_strerror(r));
		return r;
	}
	if ((tell = commit(m, st, rel, why, cap)) < 0)
		return tell;
	r = tftpdir_remove(tftp, rel->mac, detail, sizeof(detail));
	if (tell)
		store_event(st, rel->mac, NF_EVENT_RELEASE, rel->event[r == -ENOENT]);
	if (r < 0 && r != -ENOENT) {
		snprintf(why, cap, "%s", detail);
		return r; /* the intent stays: recovery tries again */
	}
	drop_files(m, rel, why, cap);
	if (!resume)
		intent_clear(m, rel->mac);
	return r != -ENOENT;
}

int release_worker(struct master *m, struct store *st, const struct release *rel, char *why, size_t cap)
{
	struct store *own = NULL;
	int r;

	why[0] = '\0';
	if ((r = take_lock(m, rel->lock, why, cap)) < 0)
		return r;
	if (!st && (r = master_open_store(m, &own)) < 0)
		snprintf(why, cap, "cannot open the state database: %s", nf_strerror(r));
	else
		r = release_steps(m, st ? st : own, rel, why, cap);
	store_close(own);
	if (rel->lock != RELEASE_LOCK_HELD)
		master_unlock(m);
	return r;
}

int master_release(struct master *m, const char *mac, int force, char *why, size_t cap)
{
	const struct release rel = {
		.mac = mac, .lock = RELEASE_LOCK_WAIT,
		.flags = RELEASE_CHECK | RELEASE_NFSROOT | (force ? RELEASE_FORCE : 0),
		.event = { "by netflash release", "no tftp dir" },
	};

	return release_worker(m, NULL, &rel, why, cap);
}
