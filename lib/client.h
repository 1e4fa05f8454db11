/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The worker's side of the protocol (docs/protocol.md), for flasher-init and
 * netflash-write --report-to. Blocking, with timeouts; a lost connection is
 * re-established on the next call (HELLO with the job id), so a daemon that
 * restarts mid-flash loses no report. */
#ifndef NETFLASH_CLIENT_H
#define NETFLASH_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "parse.h"
#include "patch.h"
#include "proto.h"

struct nf_job {
	struct nf_job_msg msg;    /* the JOB as it came (proto.h) */
	/* Provisioning (JOB patch= patch_sha256=, then PATCH lines): sectors to
	 * write after the image is verified. Empty when there is none. */
	struct nf_patch patch;
};

struct nf_client {
	int fd;
	char host[64];
	unsigned port;
	char mac[18];
	char token[65];
	char model[NF_BOARD_MODEL_MAX + 1];   /* the board, sent in HELLO when set */
	char serial[NF_BOARD_SERIAL_MAX + 1];
	uint64_t job_id;       /* 0 until a JOB arrived */
	unsigned timeout_ms;   /* per send/receive */
	double last_try;       /* last reconnect attempt from nf_client_progress() */
	char rbuf[NF_PROTO_LINE_MAX + 1];
	size_t rlen;
	char detail[NF_PROTO_VALUE_MAX + 64]; /* the master's reason, or ours */
};

/* Sets up c for server "IPv4:PORT" (numeric: the flasher is static), the
 * worker's canonical MAC and its token. Returns 0 or -EINVAL. */
int nf_client_init(struct nf_client *c, const char *server, const char *mac, const char *token);

/* HELLO (with target facts, and c->model and c->serial when set) and the
 * master's answer. Returns 0 with *job
 * filled (and its provisioning patch received and checked against the
 * JOB's digest; free it with nf_job_free), -ENOENT for NOJOB (c->detail
 * says why), -EACCES when refused, -EPROTO for a bad answer, or a
 * connection error. */
int nf_client_hello(struct nf_client *c, const char *target, uint64_t target_bytes, struct nf_job *job);

void nf_job_free(struct nf_job *job);

/* QUERY v=2: is this MAC's enrollment (with c's token) current? The master
 * first proves it holds the token (HMAC over both sides' nonces), then the
 * agent does, and the verdict carries a proof too; the token itself never
 * travels. Returns 0 with the image name in image, -ENOENT when it is not
 * enrolled (c->detail: its state), -EACCES when refused, -EPERM when the
 * master's proof is missing or wrong (a fake master), -EPROTO, or a
 * connection error. The connection is closed afterwards. */
int nf_client_query(struct nf_client *c, char *image, size_t cap);

/* PROGRESS, best effort: on a lost connection, reconnects at most every few
 * seconds and otherwise drops the report. Returns 0 or -errno. */
int nf_client_progress(struct nf_client *c, enum nf_stage stage, uint64_t done, uint64_t total, double mbps);

/* DONE and the master's verdict (patch_sha256: the digest of the
 * provisioning patch written and read back, or NULL); keeps reconnecting until deadline_s have
 * passed. Returns 0 for RELEASED, -EBADMSG for KEPT (c->detail: reason),
 * or a connection error. */
int nf_client_done(struct nf_client *c, const uint8_t sha256[32], uint64_t bytes, double seconds,
		   const uint8_t *patch_sha256, unsigned deadline_s);

/* FAIL with the stage and reason (sent once, best effort). Returns 0 or -errno. */
int nf_client_fail(struct nf_client *c, enum nf_stage stage, const char *reason);

/* LOG: one console line to the master, only while connected (never
 * reconnects for it). Returns 0 or -errno. */
int nf_client_log(struct nf_client *c, const char *line);

/* CARD: a card-health finding (text: one line), only while connected.
 * Returns 0 or -errno. */
int nf_client_card(struct nf_client *c, enum nf_card_finding what, const char *text);

void nf_client_close(struct nf_client *c);

#endif
