/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Running a job from netflashd with the flash engine: HELLO, the job
 * becomes the flash's source and expectations, progress goes to the master
 * about once a second, and the result is reported as DONE or FAIL. Shared
 * by flasher-init (PID 1) and netflash-write --report-to. */
#ifndef NETFLASH_JOBRUN_H
#define NETFLASH_JOBRUN_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "engine.h"

struct nf_jobrun {
	struct nf_client client;
	struct nf_job job;
	double last_report;
	nf_progress_fn inner;   /* the caller's own progress display, may be NULL */
	void *inner_ctx;
	double min_mbps;        /* report a card that writes slower (0: off); set after start */
	uint64_t stall_reported; /* offset+1 of the last stall reported */
};

/* Says HELLO to server ("IPv4:PORT") for mac (any spelling) with token and
 * fills fo->source, format, expectations and provisioning patch from the
 * job (the patch lives in jr until nf_jobrun_finish); installs the
 * progress forwarder (keeping fo's previous callback as the inner one),
 * which also reports write stalls; sends the card's identity.
 * Returns 0, -ENOENT (no job: detail says why), -EINVAL (bad arguments),
 * -EACCES (refused) or a connection error, with a one-line detail. */
int nf_jobrun_start(struct nf_jobrun *jr, const char *server, const char *mac, const char *token,
		    const char *target, uint64_t target_bytes, struct nf_flash_opts *fo, char *detail, size_t cap);

/* Reports the card-health findings (probe verdict, stalls, a card slower
 * than min_mbps), then the flash's outcome: DONE (waiting up to deadline_s for the
 * master's verdict) when r == 0, else FAIL with res's stage and detail.
 * Returns 0 only when the master RELEASED this worker; detail says why not. */
int nf_jobrun_finish(struct nf_jobrun *jr, int r, const struct nf_flash_result *res, unsigned deadline_s,
		     char *detail, size_t cap);

#endif
