/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The master's state: enrollments and their history, in SQLite (WAL), shared
 * by the CLI and netflashd. */
#ifndef NETFLASH_STORE_H
#define NETFLASH_STORE_H

#include <stdint.h>

#include "manifest.h"
#include "proto.h"

#define NF_TOKEN_HEX 32
#define NF_HOSTNAME_MAX 63

/* A worker's state. Stored as its name (nf_worker_state_name). */
enum nf_worker_state {
	NF_WORKER_ENROLLED,          /* netboots into the flasher (its TFTP dir exists) */
	NF_WORKER_DISKLESS,          /* netboots a system over NFS (enroll --nfsroot) */
	NF_WORKER_RELEASED,          /* flashed and verified, or released: boots its card */
	NF_WORKER_FAILED,            /* out of attempts, or a permanent card fault */
	NF_WORKER_CONTESTED,         /* a second host claimed its job (docs/security.md):
				      * no release until release --force or a new enroll */
};
#define NF_WORKER_STATES (NF_WORKER_CONTESTED + 1)

/* A job's state. Stored as its name (nf_job_state_name). */
enum nf_job_state {
	NF_JOB_RUNNING,              /* handed to a worker, not ended */
	NF_JOB_DONE,                 /* verified DONE */
	NF_JOB_FAILED,               /* the worker reported FAIL */
	NF_JOB_KEPT,                 /* DONE that did not match: the worker was kept */
	NF_JOB_ABANDONED,            /* the worker started over, or the job could not start */
};
#define NF_JOB_STATES (NF_JOB_ABANDONED + 1)

/* Names for the database and the CLI: "enrolled" ... Never NULL. */
const char *nf_worker_state_name(enum nf_worker_state s);
const char *nf_job_state_name(enum nf_job_state s);
/* Parses a stored name. Returns 0 or -EINVAL. */
int nf_worker_state_parse(const char *name, enum nf_worker_state *out);
int nf_job_state_parse(const char *name, enum nf_job_state *out);

struct enrollment {
	char mac[18];
	char image[NF_NAME_MAX + 1];
	char hostname[NF_HOSTNAME_MAX + 1];
	char token[NF_TOKEN_HEX + 1];
	enum nf_worker_state state;
	unsigned attempts;
	char last_error[256];
	int64_t enrolled_at, updated_at;
	/* Not stored: for master_enroll. family in: "pi3"/"pi4"/"pi5" picks that
	 * boot-file set, "" goes by the model seen in its DHCP client GUID;
	 * boot_set out: the set used ("boot", "boot-pi4"). */
	char family[8], boot_set[16];
};

struct job {
	uint64_t id;
	char mac[18];
	char image[NF_NAME_MAX + 1];
	enum nf_job_state state;
	enum nf_stage stage;         /* last reported: write, verify, finalize */
	char reason[256];
	char target[128];
	uint64_t target_bytes, done, total, bytes;
	double mbps, seconds;
	int64_t started_at, updated_at, ended_at;
};

/* A MAC seen on the LAN by dnsmasq (netflash dhcp-event). */
struct sighting {
	uint64_t id;
	int64_t at;
	char mac[18];
	char ip[64];
	char kind[16];               /* arp-add, tftp, lease */
	char model[48];              /* from the DHCP client GUID, or empty */
};

struct store;

/* Opens (creating) the database at path. Returns 0 or -errno/-EIO. */
int store_open(struct store **out, const char *path);
void store_close(struct store *s);

/* Inserts or replaces the enrollment of e->mac. Returns 0 or -EIO. */
int store_put(struct store *s, const struct enrollment *e);
/* Looks up mac. Returns 0, -ENOENT or -EIO. */
int store_get(struct store *s, const char *mac, struct enrollment *e);
/* Sets the state (and last error, may be NULL) of mac. Returns 0, -ENOENT, -EIO. */
int store_set_state(struct store *s, const char *mac, enum nf_worker_state state, const char *error);
/* What an event in a worker's history is; stored by name ("enroll", ...). */
enum nf_event_kind {
	NF_EVENT_ENROLL,      /* enrolled: image, TFTP dir, reports */
	NF_EVENT_PROVISION,   /* the provisioning summary, without secrets */
	NF_EVENT_RELEASE,     /* released: by the CLI, a verified DONE, recovery */
	NF_EVENT_JOB,         /* a job started: its image */
	NF_EVENT_JOB_FAILED,  /* a failed attempt: stage and reason */
	NF_EVENT_JOB_KEPT,    /* a DONE that did not match: the worker was kept */
	NF_EVENT_BOARD,       /* the board the worker named in HELLO */
	NF_EVENT_CARD,        /* a card-health finding */
	NF_EVENT_LOG,         /* a line of the worker's console */
	NF_EVENT_POWER,       /* a power cycle */
	NF_EVENT_TFTP,        /* a file dnsmasq sent it */
	NF_EVENT_REIMAGE,     /* netflash-agent made its card non-bootable */
	NF_EVENT_MASS_FLASH,  /* mass-flash enrolled it */
	NF_EVENT_HOOK,        /* a hook ran for it: name, exit status, output */
	NF_EVENT_CONTEST,     /* a second host claimed its job: both peers */
};
/* The stored name ("enroll", "failed", "mass-flash", ...). Never NULL. */
const char *nf_event_kind_name(enum nf_event_kind k);
/* Parses a stored name. Returns 0 or -EINVAL. */
int nf_event_kind_parse(const char *name, enum nf_event_kind *out);
/* Appends an event to mac's history. Returns 0 or -EIO. */
int store_event(struct store *s, const char *mac, enum nf_event_kind kind, const char *detail);
/* Drops all but the newest `keep` events of kind event for mac (the TFTP
 * files a boot-looping Pi fetches would otherwise pile up forever).
 * Returns 0 or -EIO. */
int store_trim_events(struct store *s, const char *mac, enum nf_event_kind kind, unsigned keep);
/* Calls fn(at, kind, detail) for the last `limit` events of mac, of every
 * kind (kind NULL) or of one, oldest first. Returns 0 or -EIO. */
int store_event_list(struct store *s, const char *mac, const enum nf_event_kind *kind, unsigned limit,
		     int (*fn)(int64_t at, enum nf_event_kind kind, const char *detail, void *ctx), void *ctx);
/* Calls fn for each enrollment, by MAC. Returns 0 or -EIO. */
int store_each(struct store *s, int (*fn)(const struct enrollment *e, void *ctx), void *ctx);
/* Counts enrollments in state "enrolled" that use image. Returns >= 0 or -EIO. */
int store_image_users(struct store *s, const char *image);
/* Jobs of image not ended (state running: a worker may be reading its
 * file). Returns the count or -EIO. */
int store_image_running_jobs(struct store *s, const char *image);

/* Durability: 1 fsyncs every commit (CLI); 0 syncs the WAL at checkpoints
 * only: consistent after a crash of the process (daemon, for progress). */
int store_set_sync(struct store *s, int full);

/* How long a statement waits for another process's write lock before it
 * fails with -EIO (store_open sets 10 s; the daemon's loop wants less). */
int store_set_busy_timeout(struct store *s, int ms);

/* Keeps mac's newest keep_jobs jobs and keep_events events, drops older
 * ones: what one worker's token can make the database hold is bounded.
 * Returns 0 or -EIO. */
int store_trim_worker(struct store *s, const char *mac, unsigned keep_jobs, unsigned keep_events);

/* Starts a job for mac (state running). Returns 0 with *id, or -EIO. */
int store_job_new(struct store *s, const char *mac, const char *image, const char *target,
		  uint64_t target_bytes, uint64_t *id);
/* Looks up a job. Returns 0, -ENOENT, -EIO. */
int store_job_get(struct store *s, uint64_t id, struct job *j);
/* Records the progress of a running job. */
int store_job_progress(struct store *s, uint64_t id, enum nf_stage stage, uint64_t done, uint64_t total, double mbps);
/* Ends a job with state (done, failed, kept, abandoned) and reason (may be NULL). */
int store_job_end(struct store *s, uint64_t id, enum nf_job_state state, const char *reason, uint64_t bytes,
		  double seconds);
/* An image left the catalog: its running jobs are abandoned and the
 * workers enrolled with it marked failed, both with why. 0 or -EIO. */
int store_image_removed(struct store *s, const char *image, const char *why);

/* Marks mac's running jobs other than keep_id abandoned. */
int store_job_abandon_others(struct store *s, const char *mac, uint64_t keep_id);
/* Adds one failed attempt to mac; returns the new count or -EIO. */
int store_add_attempt(struct store *s, const char *mac, const char *error);
/* The newest job of mac. Returns 0, -ENOENT, -EIO. */
int store_job_latest(struct store *s, const char *mac, struct job *j);
/* Running jobs last updated before `before` (seconds since the epoch),
 * longest silent first, at most cap into out. Returns the count or -EIO. */
int store_jobs_silent(struct store *s, int64_t before, struct job *out, unsigned cap);
/* Calls fn for each job, newest first; mac NULL for all. Returns 0 or -EIO. */
int store_job_each(struct store *s, const char *mac, int (*fn)(const struct job *j, void *ctx), void *ctx);

/* Records a sighting (g->id and g->at are set by the store). Returns 0 or -EIO. */
int store_sighting_add(struct store *s, const struct sighting *g);
/* Calls fn for each sighting with id > after, oldest first. Returns 0 or -EIO. */
int store_sightings_after(struct store *s, uint64_t after, int (*fn)(const struct sighting *g, void *ctx), void *ctx);
/* The newest sighting id (0 if none). Returns 0 or -EIO. */
int store_sighting_last_id(struct store *s, uint64_t *id);
/* The newest model mac's DHCP requests named ("Pi 4B 4GB", pimodel.h:
 * what picks a boot-file set). Returns 0, -ENOENT or -EIO. */
int store_sighting_model(struct store *s, const char *mac, char *out, size_t cap);
/* The model to show for mac: the board the worker last reported in its
 * HELLO ("Raspberry Pi 4 Model B Rev 1.4", its serial cut), else
 * store_sighting_model(). Returns 0, -ENOENT or -EIO. */
int store_model(struct store *s, const char *mac, char *out, size_t cap);

#endif
