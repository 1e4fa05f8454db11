/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The worker's job (docs/protocol.md): HELLO and its JOB with the
 * provisioning patch, PROGRESS, DONE and FAIL, reconnecting with the job id
 * when the master went away. The connection itself is client.c's. */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_internal.h"
#include "parse.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void nf_job_free(struct nf_job *job)
{
	nf_patch_free(&job->patch);
}

/* The PATCH lines after a JOB with patch=: exactly that many data bytes,
 * whose digest must be the JOB's patch_sha256. Returns 0 or -EPROTO/-errno. */
static int recv_patch(struct nf_client *c, struct nf_job *job)
{
	uint8_t data[NF_PATCH_LINE], digest[32];
	struct nf_patch_msg pm;
	struct nf_msg m;
	int r;

	while (job->patch.bytes < job->msg.patch) {
		size_t len;

		if ((r = nf_client_recv(c, &m)) < 0)
			return r;
		if (nf_msg_read(&m, &nf_patch_vspec, &pm) < 0 || pm.id != job->msg.id ||
		    (len = strlen(pm.data) / 2) == 0 || len > sizeof(data) || nf_parse_hex(pm.data, data, len) < 0 ||
		    len > job->msg.patch - job->patch.bytes || nf_patch_add(&job->patch, pm.off, data, len) < 0) {
			snprintf(c->detail, sizeof(c->detail), "bad PATCH message from the master");
			return -EPROTO;
		}
	}
	nf_patch_digest(&job->patch, digest);
	if (memcmp(digest, job->msg.patch_sha256, 32) != 0) {
		snprintf(c->detail, sizeof(c->detail), "the provisioning patch does not match the JOB's digest");
		return -EPROTO;
	}
	return 0;
}

/* A JOB, by its table; a patch comes with its digest. */
static int parse_job(const struct nf_msg *m, struct nf_job *job)
{
	static const uint8_t none[32];

	if (nf_msg_read(m, &nf_job_vspec, &job->msg) < 0)
		return -EPROTO;
	if (job->msg.patch && memcmp(job->msg.patch_sha256, none, sizeof(none)) == 0)
		return -EPROTO;
	return 0;
}

/* Connects if needed and says HELLO; handles the answer. */
int nf_client_hello(struct nf_client *c, const char *target, uint64_t target_bytes, struct nf_job *job)
{
	struct nf_msg m;
	const char *reason;
	int r;

	if ((r = nf_client_start(c, &m, "HELLO")) < 0)
		return r;
	if (c->job_id)
		nf_msg_addf(&m, "job", "%llu", (unsigned long long)c->job_id);
	if (target)
		nf_msg_add(&m, "target", target);
	if (target_bytes)
		nf_msg_addf(&m, "target_bytes", "%llu", (unsigned long long)target_bytes);
	if (c->model[0])
		nf_msg_add(&m, "model", c->model);
	if (c->serial[0])
		nf_msg_add(&m, "serial", c->serial);
	if ((r = nf_client_send(c, &m)) < 0 || (r = nf_client_recv(c, &m)) < 0)
		return r;
	reason = nf_msg_get(&m, "reason");
	snprintf(c->detail, sizeof(c->detail), "%s", reason ? reason : m.verb);
	if (strcmp(m.verb, "JOB") == 0) {
		struct nf_job tmp;
		struct nf_job *j = job ? job : &tmp;

		nf_patch_init(&j->patch);
		r = parse_job(&m, j);
		if (r == 0 && j->msg.patch)
			r = recv_patch(c, j);
		if (r == 0)
			c->job_id = j->msg.id;
		if (r < 0 || !job)
			nf_job_free(j);
		if (r < 0)
			nf_client_close(c);
		return r;
	}
	nf_client_close(c);
	return nf_client_refusal(&m);
}

int nf_client_progress(struct nf_client *c, enum nf_stage stage, uint64_t done, uint64_t total, double mbps)
{
	struct nf_msg m;

	if (c->fd < 0) {
		/* The master is gone: try again every 3 s, never block the flash long. */
		if (now_s() - c->last_try < 3)
			return -ENOTCONN;
		c->last_try = now_s();
		unsigned saved = c->timeout_ms;

		c->timeout_ms = 1000;
		int r = nf_client_hello(c, NULL, 0, NULL);

		c->timeout_ms = saved;
		if (r < 0)
			return r;
	}
	struct nf_progress_msg p = { .id = c->job_id, .done = done, .total = total, .mbps = mbps };

	snprintf(p.stage, sizeof(p.stage), "%s", nf_stage_name(stage));
	if (nf_msg_write(&m, &nf_progress_vspec, &p) < 0)
		return -EMSGSIZE;
	return nf_client_send(c, &m);
}

int nf_client_done(struct nf_client *c, const uint8_t sha256[32], uint64_t bytes, double seconds,
		   const uint8_t *patch_sha256, unsigned deadline_s)
{
	double deadline = now_s() + deadline_s;
	struct nf_done_msg done = { .bytes = bytes, .seconds = seconds };
	int r = -ENOTCONN;

	memcpy(done.sha256, sha256, 32);
	if (patch_sha256) {
		memcpy(done.patch, patch_sha256, 32);
		done.has_patch = 1;
	}
	while (now_s() < deadline) {
		struct nf_msg m;

		if (c->fd < 0 && (r = nf_client_hello(c, NULL, 0, NULL)) < 0) {
			/* The master released us and crashed before it could say so:
			 * on reconnect it answers NOJOB released (or done). */
			if (r == -ENOENT && (strcmp(c->detail, "released") == 0 || strcmp(c->detail, "done") == 0))
				return 0;
			if (r == -ENOENT || r == -EACCES || r == -EPROTO)
				return r;
			sleep(1);
			continue;
		}
		done.id = c->job_id;
		if (nf_msg_write(&m, &nf_done_vspec, &done) < 0)
			return -EMSGSIZE;
		if ((r = nf_client_send(c, &m)) < 0 || (r = nf_client_recv(c, &m)) < 0)
			continue;
		const char *reason = nf_msg_get(&m, "reason");

		snprintf(c->detail, sizeof(c->detail), "%s", reason ? reason : m.verb);
		if (strcmp(m.verb, "RELEASED") == 0)
			return 0;
		if (strcmp(m.verb, "KEPT") == 0)
			return -EBADMSG;
		return -EPROTO;
	}
	return r;
}

int nf_client_fail(struct nf_client *c, enum nf_stage stage, const char *reason)
{
	struct nf_fail_msg f = { 0 };
	struct nf_msg m;
	int r;

	if (c->fd < 0 && (r = nf_client_hello(c, NULL, 0, NULL)) < 0)
		return r;
	f.id = c->job_id;
	snprintf(f.stage, sizeof(f.stage), "%s", nf_stage_name(stage));
	snprintf(f.reason, sizeof(f.reason), "%s", reason);
	if (nf_msg_write(&m, &nf_fail_vspec, &f) < 0)
		return -EMSGSIZE;
	r = nf_client_send(c, &m);
	if (r == 0)
		nf_client_recv(c, &m); /* KEPT or NOJOB: the verdict is the master's to record */
	return r;
}
