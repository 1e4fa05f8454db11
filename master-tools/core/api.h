/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The fleet as JSON objects and Prometheus metrics: one writer for each
 * object, shared by the CLI's --json output (one object a line) and the
 * HTTP API (docs/api.md). Writers take a FILE (stdout, or a memory stream)
 * and never log. */
#ifndef NETFLASH_API_H
#define NETFLASH_API_H

#include <stdio.h>

#include "master.h"
#include "store.h"

/* A worker: {"mac", "hostname", "image", "state" (enrolled, released,
 * failed, diskless, or the running job's stage), "enrollment" (the stored
 * state), "job", "stage", "done", "total" (bytes), "mbps", "eta_s" (-1:
 * unknown), "attempts", "last_error", "updated_at" (Unix seconds)}. */
void api_worker_json(FILE *out, struct store *st, const struct enrollment *e);

/* A job: {"job", "mac", "image", "state", "stage", "started_at",
 * "ended_at", "seconds", "bytes", "done", "total", "mbps", "target",
 * "target_bytes", "reason"}. */
void api_job_json(FILE *out, const struct job *j);

/* The arrays: every worker; jobs (of mac, or all when NULL), newest first,
 * at most limit; every catalog image, each {"name", "file", "format",
 * "stored_bytes", "image_bytes", "sha256", "zero_share" (0..1), "origin",
 * "origin_bytes", "disk", "zstd_level", "finish" (nf_finish_json()),
 * "users" (the MACs enrolled with it; absent when the state database
 * cannot be read)}. Return 0 or -EIO. */
int api_workers_json(FILE *out, struct store *st);
int api_jobs_json(FILE *out, struct store *st, const char *mac, unsigned limit);
int api_images_json(FILE *out, const struct master *m);

/* One worker with its jobs, boot log lines, card findings, provisioning
 * and hooks: {"worker": {...}, "jobs": [...], "log": [{"at", "line"}],
 * "card": [...], "provision": [...], "hooks": [...]}. Returns 0, -ENOENT,
 * -EIO. */
int api_worker_detail_json(FILE *out, struct store *st, const char *mac);

/* mac's history: the last limit events of one kind (kind non-NULL) or of
 * all, oldest first, as [{"at", "kind", "line"}]. Returns 0 or -EIO. */
int api_events_json(FILE *out, struct store *st, const char *mac, const enum nf_event_kind *kind, unsigned limit);

/* Prometheus text exposition format (version 0.0.4): workers by state,
 * jobs by state, bytes written by verified jobs, and histograms of flash
 * duration and card write speed over the stored jobs. connections: the
 * daemon's open worker connections (-1: not known). Returns 0 or -EIO. */
int api_metrics(FILE *out, struct store *st, int connections);

#endif
