/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "store.h"
#include "strtable.h"

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct store {
	sqlite3 *db;
};

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=FULL;"
	"CREATE TABLE IF NOT EXISTS workers ("
	" mac TEXT PRIMARY KEY, image TEXT NOT NULL, hostname TEXT NOT NULL DEFAULT '',"
	" token TEXT NOT NULL, state TEXT NOT NULL, ssh_key TEXT NOT NULL DEFAULT '',"
	" attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',"
	" enrolled_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS events ("
	" id INTEGER PRIMARY KEY, mac TEXT NOT NULL, at INTEGER NOT NULL,"
	" event TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX IF NOT EXISTS events_mac ON events(mac, id);"
	"CREATE TABLE IF NOT EXISTS jobs ("
	" id INTEGER PRIMARY KEY, mac TEXT NOT NULL, image TEXT NOT NULL, state TEXT NOT NULL,"
	" stage TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '', target TEXT NOT NULL DEFAULT '',"
	" target_bytes INTEGER NOT NULL DEFAULT 0, done INTEGER NOT NULL DEFAULT 0,"
	" total INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0,"
	" mbps REAL NOT NULL DEFAULT 0, seconds REAL NOT NULL DEFAULT 0,"
	" started_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, ended_at INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS jobs_mac ON jobs(mac, id);"
	"CREATE TABLE IF NOT EXISTS sightings ("
	" id INTEGER PRIMARY KEY, at INTEGER NOT NULL, mac TEXT NOT NULL, ip TEXT NOT NULL DEFAULT '',"
	" kind TEXT NOT NULL, model TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX IF NOT EXISTS sightings_mac ON sightings(mac, id);";

int store_open(struct store **out, const char *path)
{
	struct store *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	/* SQLite says only "unable to open": name the real reason. */
	if (access(path, R_OK | W_OK) < 0 && errno != ENOENT) {
		int e = errno;

		free(s);
		return -e;
	}
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(s->db, 10000) != SQLITE_OK ||
	    sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		store_close(s);
		return -EIO;
	}
	/* Tokens live here: root only (the state dir is 0700 as well). By path,
	 * never by an fd of our own: closing one would drop the POSIX locks
	 * SQLite holds on the file for every connection of this process. SQLite
	 * gives new -wal and -shm files the database's mode; older ones too. */
	for (const char *const *sfx = (const char *const[]){ "", "-wal", "-shm", NULL }; *sfx; sfx++) {
		char side[PATH_MAX];

		if (snprintf(side, sizeof(side), "%s%s", path, *sfx) < (int)sizeof(side))
			chmod(side, 0600);
	}
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	sqlite3_close(s->db);
	free(s);
}

static int64_t now(void)
{
	return (int64_t)time(NULL);
}

static void copy_col(sqlite3_stmt *st, int col, char *out, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static const char *const worker_states[] = {
	[NF_WORKER_ENROLLED] = "enrolled", [NF_WORKER_DISKLESS] = "diskless",
	[NF_WORKER_RELEASED] = "released", [NF_WORKER_FAILED] = "failed", [NF_WORKER_CONTESTED] = "contested",
};
static const char *const job_states[] = {
	[NF_JOB_RUNNING] = "running", [NF_JOB_DONE] = "done", [NF_JOB_FAILED] = "failed",
	[NF_JOB_KEPT] = "kept", [NF_JOB_ABANDONED] = "abandoned",
};
NF_DEFINE_STRING_TABLE(nf_worker_state_name, nf_worker_state_parse, enum nf_worker_state, worker_states, "unknown")
NF_DEFINE_STRING_TABLE(nf_job_state_name, nf_job_state_parse, enum nf_job_state, job_states, "unknown")

/* A state column: a name this version does not know (a newer one wrote
 * it) reads as failed (worker) or abandoned (job): never as one that
 * hands out jobs or releases. */
static enum nf_worker_state worker_state_col(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	enum nf_worker_state s;

	return t && nf_worker_state_parse((const char *)t, &s) == 0 ? s : NF_WORKER_FAILED;
}

static enum nf_job_state job_state_col(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	enum nf_job_state s;

	return t && nf_job_state_parse((const char *)t, &s) == 0 ? s : NF_JOB_ABANDONED;
}

/* A stored flash stage; an unknown name (a database from a newer netflash)
 * reads as none. */
static enum nf_stage stage_col(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	enum nf_stage s;

	return t && nf_stage_parse((const char *)t, &s) == 0 ? s : NF_STAGE_NONE;
}

static void row_to(sqlite3_stmt *st, struct enrollment *e)
{
	memset(e, 0, sizeof(*e));
	copy_col(st, 0, e->mac, sizeof(e->mac));
	copy_col(st, 1, e->image, sizeof(e->image));
	copy_col(st, 2, e->hostname, sizeof(e->hostname));
	copy_col(st, 3, e->token, sizeof(e->token));
	e->state = worker_state_col(st, 4);
	e->attempts = (unsigned)sqlite3_column_int(st, 6);
	copy_col(st, 7, e->last_error, sizeof(e->last_error));
	e->enrolled_at = sqlite3_column_int64(st, 8);
	e->updated_at = sqlite3_column_int64(st, 9);
}

#define COLS "mac, image, hostname, token, state, ssh_key, attempts, last_error, enrolled_at, updated_at"

int store_put(struct store *s, const struct enrollment *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO workers (" COLS ") VALUES (?,?,?,?,?,?,?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, e->mac, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, e->image, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, e->hostname, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, e->token, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, nf_worker_state_name(e->state), -1, SQLITE_STATIC);
	/* ssh_key: kept for older databases; the key lives only in the
	 * provisioning patch, which is built at enroll time. */
	sqlite3_bind_text(st, 6, "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, (int)e->attempts);
	sqlite3_bind_text(st, 8, e->last_error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, e->enrolled_at ? e->enrolled_at : now());
	sqlite3_bind_int64(st, 10, now());
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int store_get(struct store *s, const char *mac, struct enrollment *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT " COLS " FROM workers WHERE mac = ?", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_to(st, e);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int store_set_state(struct store *s, const char *mac, enum nf_worker_state state, const char *error)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "UPDATE workers SET state = ?, last_error = ?, updated_at = ? WHERE mac = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, nf_worker_state_name(state), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, error ? error : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now());
	sqlite3_bind_text(st, 4, mac, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -EIO;
	return sqlite3_changes(s->db) ? 0 : -ENOENT;
}

static const char *const event_kind_names[] = {
	[NF_EVENT_ENROLL] = "enroll", [NF_EVENT_PROVISION] = "provision", [NF_EVENT_RELEASE] = "release",
	[NF_EVENT_JOB] = "job", [NF_EVENT_JOB_FAILED] = "failed", [NF_EVENT_JOB_KEPT] = "kept",
	[NF_EVENT_BOARD] = "board", [NF_EVENT_CARD] = "card", [NF_EVENT_LOG] = "log", [NF_EVENT_POWER] = "power",
	[NF_EVENT_TFTP] = "tftp", [NF_EVENT_REIMAGE] = "reimage", [NF_EVENT_MASS_FLASH] = "mass-flash",
	[NF_EVENT_HOOK] = "hook", [NF_EVENT_CONTEST] = "contest",
};

NF_DEFINE_STRING_TABLE(nf_event_kind_name, nf_event_kind_parse, enum nf_event_kind, event_kind_names, "event")

int store_event(struct store *s, const char *mac, enum nf_event_kind kind, const char *detail)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "INSERT INTO events (mac, at, event, detail) VALUES (?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now());
	sqlite3_bind_text(st, 3, nf_event_kind_name(kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, detail ? detail : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int store_each(struct store *s, int (*fn)(const struct enrollment *e, void *ctx), void *ctx)
{
	sqlite3_stmt *st = NULL;
	struct enrollment *e = malloc(sizeof(*e));
	int rc, r = 0;

	if (!e)
		return -ENOMEM;
	if (sqlite3_prepare_v2(s->db, "SELECT " COLS " FROM workers ORDER BY mac", -1, &st, NULL) != SQLITE_OK) {
		free(e);
		return -EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_to(st, e);
		r = fn(e, ctx);
		if (r < 0)
			break;
	}
	sqlite3_finalize(st);
	free(e);
	if (r < 0)
		return r;
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO;
}

/* The one number `sql` (one text parameter: image) counts; -EIO. */
static int count_for_image(struct store *s, const char *sql, const char *image)
{
	sqlite3_stmt *st = NULL;
	int n = -EIO;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, image, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

int store_image_users(struct store *s, const char *image)
{
	return count_for_image(s, "SELECT COUNT(*) FROM workers WHERE image = ? AND state = 'enrolled'", image);
}

int store_image_running_jobs(struct store *s, const char *image)
{
	return count_for_image(s, "SELECT COUNT(*) FROM jobs WHERE image = ? AND state = 'running'", image);
}

int store_set_sync(struct store *s, int full)
{
	return sqlite3_exec(s->db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
			    NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

int store_set_busy_timeout(struct store *s, int ms)
{
	return sqlite3_busy_timeout(s->db, ms) == SQLITE_OK ? 0 : -EIO;
}

/* Runs a prepared statement to completion; finalizes it. */
static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int store_trim_events(struct store *s, const char *mac, enum nf_event_kind kind, unsigned keep)
{
	sqlite3_stmt *st = NULL;

	/* With fewer than keep + 1 such events the subquery is NULL and
	 * nothing matches. */
	if (sqlite3_prepare_v2(s->db, "DELETE FROM events WHERE mac = ?1 AND event = ?2 AND id <= (SELECT id FROM events"
			       " WHERE mac = ?1 AND event = ?2 ORDER BY id DESC LIMIT 1 OFFSET ?3)", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, nf_event_kind_name(kind), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, keep);
	return step_done(st);
}

int store_trim_worker(struct store *s, const char *mac, unsigned keep_jobs, unsigned keep_events)
{
	static const char *const sql[] = {
		"DELETE FROM jobs WHERE mac = ?1 AND id <= (SELECT id FROM jobs WHERE mac = ?1"
		" ORDER BY id DESC LIMIT 1 OFFSET ?2)",
		"DELETE FROM events WHERE mac = ?1 AND id <= (SELECT id FROM events WHERE mac = ?1"
		" ORDER BY id DESC LIMIT 1 OFFSET ?2)",
	};
	int r = 0;

	for (int i = 0; i < 2 && r == 0; i++) {
		sqlite3_stmt *st = NULL;

		if (sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL) != SQLITE_OK)
			return -EIO;
		sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, i == 0 ? keep_jobs : keep_events);
		r = step_done(st);
	}
	return r;
}

int store_job_new(struct store *s, const char *mac, const char *image, const char *target,
		  uint64_t target_bytes, uint64_t *id)
{
	sqlite3_stmt *st = NULL;
	int r;

	if (sqlite3_prepare_v2(s->db, "INSERT INTO jobs (mac, image, state, target, target_bytes, started_at, updated_at)"
			       " VALUES (?, ?, 'running', ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, image, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, target ? target : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)target_bytes);
	sqlite3_bind_int64(st, 5, now());
	sqlite3_bind_int64(st, 6, now());
	r = step_done(st);
	if (r == 0)
		*id = (uint64_t)sqlite3_last_insert_rowid(s->db);
	return r;
}

#define JOB_COLS "id, mac, image, state, stage, reason, target, target_bytes, done, total, bytes, mbps, seconds," \
		 " started_at, updated_at, ended_at"

static void job_row(sqlite3_stmt *st, struct job *j)
{
	memset(j, 0, sizeof(*j));
	j->id = (uint64_t)sqlite3_column_int64(st, 0);
	copy_col(st, 1, j->mac, sizeof(j->mac));
	copy_col(st, 2, j->image, sizeof(j->image));
	j->state = job_state_col(st, 3);
	j->stage = stage_col(st, 4);
	copy_col(st, 5, j->reason, sizeof(j->reason));
	copy_col(st, 6, j->target, sizeof(j->target));
	j->target_bytes = (uint64_t)sqlite3_column_int64(st, 7);
	j->done = (uint64_t)sqlite3_column_int64(st, 8);
	j->total = (uint64_t)sqlite3_column_int64(st, 9);
	j->bytes = (uint64_t)sqlite3_column_int64(st, 10);
	j->mbps = sqlite3_column_double(st, 11);
	j->seconds = sqlite3_column_double(st, 12);
	j->started_at = sqlite3_column_int64(st, 13);
	j->updated_at = sqlite3_column_int64(st, 14);
	j->ended_at = sqlite3_column_int64(st, 15);
}

static int job_query(struct store *s, const char *sql, const char *text, uint64_t num, struct job *j)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	if (text)
		sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, (sqlite3_int64)num);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		job_row(st, j);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int store_job_get(struct store *s, uint64_t id, struct job *j)
{
	return job_query(s, "SELECT " JOB_COLS " FROM jobs WHERE id = ?", NULL, id, j);
}

int store_job_latest(struct store *s, const char *mac, struct job *j)
{
	return job_query(s, "SELECT " JOB_COLS " FROM jobs WHERE mac = ? ORDER BY id DESC LIMIT 1", mac, 0, j);
}

int store_job_progress(struct store *s, uint64_t id, enum nf_stage stage, uint64_t done, uint64_t total, double mbps)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(s->db, "UPDATE jobs SET stage = ?, done = ?, total = ?, mbps = ?, updated_at = ?"
			       " WHERE id = ? AND state = 'running'", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, nf_stage_name(stage), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)done);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)total);
	sqlite3_bind_double(st, 4, mbps);
	sqlite3_bind_int64(st, 5, now());
	sqlite3_bind_int64(st, 6, (sqlite3_int64)id);
	return step_done(st);
}

int store_job_end(struct store *s, uint64_t id, enum nf_job_state state, const char *reason, uint64_t bytes,
		  double seconds)
{
	sqlite3_stmt *st = NULL;

	/* A verified job is whole: done of total is all its bytes, however
	 * few PROGRESS reports came before DONE. */
	if (sqlite3_prepare_v2(s->db, "UPDATE jobs SET state = ?1, reason = ?2, bytes = ?3, seconds = ?4,"
			       " ended_at = ?5, updated_at = ?5,"
			       " done = CASE WHEN ?1 = 'done' THEN ?3 ELSE done END,"
			       " total = CASE WHEN ?1 = 'done' THEN ?3 ELSE total END WHERE id = ?6",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, nf_job_state_name(state), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, reason ? reason : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)bytes);
	sqlite3_bind_double(st, 4, seconds);
	sqlite3_bind_int64(st, 5, now());
	sqlite3_bind_int64(st, 6, (sqlite3_int64)id);
	return step_done(st);
}

int store_job_abandon_others(struct store *s, const char *mac, uint64_t keep_id)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(s->db, "UPDATE jobs SET state = 'abandoned', reason = 'the worker started over',"
			       " ended_at = ? WHERE mac = ? AND state = 'running' AND id != ?", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, now());
	sqlite3_bind_text(st, 2, mac, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)keep_id);
	return step_done(st);
}

int store_image_removed(struct store *s, const char *image, const char *why)
{
	static const char *const sql[] = {
		"UPDATE jobs SET state = 'abandoned', reason = ?2, ended_at = ?3 WHERE image = ?1 AND state = 'running'",
		"UPDATE workers SET state = 'failed', last_error = ?2, updated_at = ?3 WHERE image = ?1 AND state = 'enrolled'",
	};
	int r = 0;

	for (int i = 0; i < 2 && r == 0; i++) {
		sqlite3_stmt *st = NULL;

		if (sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL) != SQLITE_OK)
			return -EIO;
		sqlite3_bind_text(st, 1, image, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, why, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, now());
		r = step_done(st);
	}
	return r;
}

int store_add_attempt(struct store *s, const char *mac, const char *error)
{
	sqlite3_stmt *st = NULL;
	struct enrollment *e;
	int r;

	if (sqlite3_prepare_v2(s->db, "UPDATE workers SET attempts = attempts + 1, last_error = ?, updated_at = ?"
			       " WHERE mac = ?", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, error ? error : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now());
	sqlite3_bind_text(st, 3, mac, -1, SQLITE_STATIC);
	if ((r = step_done(st)) < 0)
		return r;
	e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	r = store_get(s, mac, e);
	if (r == 0)
		r = (int)e->attempts;
	free(e);
	return r;
}

int store_jobs_silent(struct store *s, int64_t before, struct job *out, unsigned cap)
{
	sqlite3_stmt *st = NULL;
	unsigned n = 0;
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT " JOB_COLS " FROM jobs WHERE state = 'running' AND updated_at < ?"
			       " ORDER BY updated_at", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, before);
	while (n < cap && (rc = sqlite3_step(st)) == SQLITE_ROW)
		job_row(st, &out[n++]);
	sqlite3_finalize(st);
	return (int)n;
}

int store_job_each(struct store *s, const char *mac, int (*fn)(const struct job *j, void *ctx), void *ctx)
{
	sqlite3_stmt *st = NULL;
	struct job j;
	int rc, r = 0;

	if (sqlite3_prepare_v2(s->db, mac ? "SELECT " JOB_COLS " FROM jobs WHERE mac = ? ORDER BY id DESC"
					  : "SELECT " JOB_COLS " FROM jobs ORDER BY id DESC", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	if (mac)
		sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		job_row(st, &j);
		if ((r = fn(&j, ctx)) < 0)
			break;
	}
	sqlite3_finalize(st);
	return r < 0 ? r : (rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO);
}

int store_event_list(struct store *s, const char *mac, const enum nf_event_kind *kind, unsigned limit,
		     int (*fn)(int64_t at, enum nf_event_kind kind, const char *detail, void *ctx), void *ctx)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	if (sqlite3_prepare_v2(s->db, "SELECT at, event, detail FROM (SELECT id, at, event, detail FROM events"
			       " WHERE mac = ?1 AND (?2 IS NULL OR event = ?2) ORDER BY id DESC LIMIT ?3) ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	if (kind)
		sqlite3_bind_text(st, 2, nf_event_kind_name(*kind), -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_int(st, 3, (int)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *k = sqlite3_column_text(st, 1), *t = sqlite3_column_text(st, 2);
		enum nf_event_kind ek;

		if (!k || nf_event_kind_parse((const char *)k, &ek) < 0)
			continue; /* a kind this netflash does not know */
		if ((r = fn(sqlite3_column_int64(st, 0), ek, t ? (const char *)t : "", ctx)) < 0)
			break;
	}
	sqlite3_finalize(st);
	return r < 0 ? r : (rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO);
}

int store_sighting_add(struct store *s, const struct sighting *g)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(s->db, "INSERT INTO sightings (at, mac, ip, kind, model) VALUES (?,?,?,?,?)", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, now());
	sqlite3_bind_text(st, 2, g->mac, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, g->ip, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, g->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, g->model, -1, SQLITE_STATIC);
	if (step_done(st) < 0)
		return -EIO;
	/* Only the newest 10000 sightings are kept (mass-flash reads what came
	 * after its start); the newest id stays, so no id is ever reused. The
	 * sighting is recorded either way: the next one trims again. */
	sqlite3_exec(s->db, "DELETE FROM sightings WHERE id <= (SELECT MAX(id) FROM sightings) - 10000", NULL, NULL,
		     NULL);
	return 0;
}

static void sighting_row(sqlite3_stmt *st, struct sighting *g)
{
	memset(g, 0, sizeof(*g));
	g->id = (uint64_t)sqlite3_column_int64(st, 0);
	g->at = sqlite3_column_int64(st, 1);
	copy_col(st, 2, g->mac, sizeof(g->mac));
	copy_col(st, 3, g->ip, sizeof(g->ip));
	copy_col(st, 4, g->kind, sizeof(g->kind));
	copy_col(st, 5, g->model, sizeof(g->model));
}

int store_sightings_after(struct store *s, uint64_t after, int (*fn)(const struct sighting *g, void *ctx), void *ctx)
{
	sqlite3_stmt *st = NULL;
	struct sighting g;
	int rc, r = 0;

	if (sqlite3_prepare_v2(s->db, "SELECT id, at, mac, ip, kind, model FROM sightings WHERE id > ? ORDER BY id", -1,
			       &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sighting_row(st, &g);
		if ((r = fn(&g, ctx)) < 0)
			break;
	}
	sqlite3_finalize(st);
	return r < 0 ? r : (rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO);
}

int store_sighting_last_id(struct store *s, uint64_t *id)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT COALESCE(MAX(id), 0) FROM sightings", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

/* The first row's text of `sql` (one text parameter: mac) into out.
 * Returns 0, -ENOENT (no row) or -EIO. */
static int text_for_mac(struct store *s, const char *sql, const char *mac, char *out, size_t cap)
{
	sqlite3_stmt *st = NULL;
	int rc;

	out[0] = '\0';
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		copy_col(st, 0, out, cap);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int store_sighting_model(struct store *s, const char *mac, char *out, size_t cap)
{
	return text_for_mac(s, "SELECT model FROM sightings WHERE mac = ? AND model != '' ORDER BY id DESC LIMIT 1",
			    mac, out, cap);
}

int store_model(struct store *s, const char *mac, char *out, size_t cap)
{
	char *comma;

	/* The board the worker itself reported ("Raspberry Pi 4 Model B Rev
	 * 1.4, serial ..."), else what its DHCP request suggested. */
	if (text_for_mac(s, "SELECT detail FROM events WHERE mac = ? AND event = 'board' "
			 "AND detail NOT LIKE 'unknown board%' ORDER BY id DESC LIMIT 1", mac, out, cap) != 0)
		return store_sighting_model(s, mac, out, cap);
	if ((comma = strstr(out, ", serial ")))
		*comma = '\0';
	return 0;
}
