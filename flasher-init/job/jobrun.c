/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "jobrun.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "board.h"
#include "health.h"
#include "log.h"
#include "parse.h"
#include "udpcast.h"

static void forward_progress(const struct nf_progress *p, void *ctx)
{
	struct nf_jobrun *jr = ctx;

	/* About one report a second to the master: enough for a status table. */
	if (p->elapsed - jr->last_report >= 1.0) {
		int writing = p->stage == NF_STAGE_WRITE;

		nf_client_progress(&jr->client, p->stage, writing ? p->written : p->verified, p->total,
				   p->elapsed > 0 ? (double)p->written / 1e6 / p->elapsed : 0);
		jr->last_report = p->elapsed;
	}
	/* The stall watchdog: one report per stalled write, while it hangs. */
	if (p->stall_s > 0 && jr->stall_reported != p->stall_at + 1) {
		char line[160], at[32];

		nf_format_bytes(p->stall_at, at, sizeof(at));
		snprintf(line, sizeof(line), "a write at %s has not finished after %.1f s", at, p->stall_s);
		nf_client_card(&jr->client, NF_CARD_STALL, line);
		nf_warn("card stall: %s", line);
		jr->stall_reported = p->stall_at + 1;
	}
	if (jr->inner)
		jr->inner(p, jr->inner_ctx);
}

/* A JOB's url: nfs://, or udpcast:// whose sender is the master itself. */
static int job_url_ok(const char *url, const char *master)
{
	struct nf_udpcast_url u;
	char why[120];

	if (strncmp(url, "nfs://", 6) == 0)
		return 1;
	return nf_udpcast_parse(url, &u, why, sizeof(why)) == 0 && strcmp(u.host, master) == 0;
}

int nf_jobrun_start(struct nf_jobrun *jr, const char *server, const char *mac, const char *token,
		    const char *target, uint64_t target_bytes, struct nf_flash_opts *fo, char *detail, size_t cap)
{
	struct nf_mac m;
	int r;

	memset(jr, 0, sizeof(*jr));
	jr->client.fd = -1;
	if (nf_mac_parse(mac, &m) < 0) {
		snprintf(detail, cap, "invalid MAC '%s'", mac);
		return -EINVAL;
	}
	if (!token[0] || strlen(token) >= sizeof(jr->client.token)) {
		snprintf(detail, cap, "invalid token: expected the netflash.token of %s's cmdline.txt (1 to %zu "
			 "characters)", m.s, sizeof(jr->client.token) - 1);
		return -EINVAL;
	}
	if (nf_client_init(&jr->client, server, m.s, token) < 0) {
		snprintf(detail, cap, "invalid server '%s': expected IPv4:PORT", server);
		return -EINVAL;
	}
	nf_board_identify(jr->client.model, sizeof(jr->client.model), jr->client.serial, sizeof(jr->client.serial));
	r = nf_client_hello(&jr->client, target, target_bytes, &jr->job);
	if (r < 0) {
		if (r == -ENOENT)
			snprintf(detail, cap, "the master has no job for %s (%s)", m.s, jr->client.detail);
		else if (r == -EACCES)
			snprintf(detail, cap, "the master at %s refused %s (wrong MAC or token)", server, m.s);
		else
			snprintf(detail, cap, "cannot get a job from %s: %s", server,
				 jr->client.detail[0] ? jr->client.detail : nf_strerror(r));
		return r;
	}
	/* A JOB names an image on the master's NFS export or a multicast
	 * session the master sends, nothing else: a fake master must not make
	 * the worker copy its own files to the card. */
	if (!job_url_ok(jr->job.msg.url, jr->client.host)) {
		char q[160];

		snprintf(detail, cap, "the master at %s sent a job whose image is neither an nfs:// URL nor a udpcast:// "
			 "session of its own (%s); refusing it", server, nf_quote(q, sizeof(q), jr->job.msg.url));
		nf_job_free(&jr->job);
		return -EPROTO;
	}
	fo->source = jr->job.msg.url;
	fo->format = nf_format_parse(jr->job.msg.format);
	memcpy(fo->expect_sha256, jr->job.msg.sha256, 32);
	fo->have_expect_sha256 = 1;
	fo->expect_size = jr->job.msg.size;
	fo->not_a_disk = !jr->job.msg.disk;
	fo->patch = jr->job.patch.n ? &jr->job.patch : NULL;
	jr->inner = fo->progress;
	jr->inner_ctx = fo->progress_ctx;
	fo->progress = forward_progress;
	fo->progress_ctx = jr;
	if (target) {
		struct nf_card_id id;
		char line[400];

		nf_card_identify(target, &id);
		nf_card_describe(&id, target, line, sizeof(line));
		nf_client_card(&jr->client, NF_CARD_IDENTITY, line);
	}
	int mc = strncmp(jr->job.msg.url, NF_UDPCAST_SCHEME, strlen(NF_UDPCAST_SCHEME)) == 0;

	snprintf(detail, cap, "job %llu from %s: image '%s' (%s, %llu bytes)%s%s%s", (unsigned long long)jr->job.msg.id,
		 server, jr->job.msg.image, jr->job.msg.format, (unsigned long long)jr->job.msg.size,
		 mc ? " from multicast session " : "", mc ? jr->job.msg.url : "",
		 jr->job.patch.n ? ", with a provisioning patch" : "");
	return 0;
}

int nf_jobrun_finish(struct nf_jobrun *jr, int r, const struct nf_flash_result *res, unsigned deadline_s,
		     char *detail, size_t cap)
{
	struct nf_card_verdict v;

	if (res->probe_detail[0])
		nf_client_card(&jr->client, NF_CARD_PROBE, res->probe_detail);
	nf_card_verdict(res, jr->min_mbps, &v);
	if (v.stall[0])
		nf_client_card(&jr->client, NF_CARD_STALL, v.stall);
	if (res->zero_rewrites)
		nf_client_card(&jr->client, NF_CARD_ZERO, res->zero_plan);
	if (v.slow[0]) {
		nf_client_card(&jr->client, NF_CARD_SLOW, v.slow);
		nf_warn("slow card: %s", v.slow);
	}
	nf_job_free(&jr->job);
	if (r < 0) {
		nf_client_fail(&jr->client, res->stage != NF_STAGE_NONE ? res->stage : NF_STAGE_FLASH, res->detail);
		snprintf(detail, cap, "reported the failure to the master");
		return r;
	}
	r = nf_client_done(&jr->client, res->sha256, res->image_bytes, res->t_total,
			   res->patched ? res->patch_sha256 : NULL, deadline_s);
	if (r == 0)
		snprintf(detail, cap, "the master verified job %llu and released this worker",
			 (unsigned long long)jr->job.msg.id);
	else
		snprintf(detail, cap, "the master did not release this worker: %s",
			 r == -EBADMSG ? jr->client.detail : nf_strerror(r));
	return r;
}
