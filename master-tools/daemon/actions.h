/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The API's actions (docs/api.md "Actions"): enroll, release, reimage,
 * power cycle, mass-flash start and stop. Each runs the netflash command
 * an admin would type, as a child process (no shell, bounded time), so it
 * takes every check, the state lock and the crash safety of the CLI; the
 * answer carries the command's exit status and what it said. Only requests
 * with the admin token (ROOT/state/admin.token) get here. */
#ifndef NETFLASH_ACTIONS_H
#define NETFLASH_ACTIONS_H

#include <stddef.h>
#include <stdio.h>

struct master;
struct nf_actions;

/* netflash_bin: the netflash program the actions run. Returns NULL when
 * out of memory. */
struct nf_actions *nf_actions_new(const struct master *m, const char *netflash_bin);
void nf_actions_free(struct nf_actions *a);

/* Runs the action that method and path (below /api/) name with body (a
 * JSON object, may be empty), writing the answer (a JSON object) to out.
 * Returns the HTTP status: 200 done, 202 started (mass-flash), 400 a bad
 * request or settings the command refused as such (exit 2), 404 no such
 * action, 409 the command refused (exit 1, e.g. not enrolled, a mass-flash
 * already running), 500 it could not run. */
unsigned nf_actions_handle(struct nf_actions *a, const char *method, const char *path, const char *body,
			   FILE *out);

/* GET /api/image-add: {"running", "name", "last_exit", "last_line", "log"}
 * of the image add POST /api/images started. */
void nf_actions_image_add_status(struct nf_actions *a, FILE *out);

/* Reaps a mass-flash that ended (call now and then). */
void nf_actions_reap(struct nf_actions *a);

#endif
