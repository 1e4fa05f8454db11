/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A worker's lifecycle as one table (lifecycle.h). */
#include "lifecycle.h"

#include <errno.h>
#include <stdlib.h>

#include "master.h"
#include "strtable.h"

static const char *const event_names[] = {
	[NF_WEV_RELEASE] = "release", [NF_WEV_TRIES_OUT] = "tries-out", [NF_WEV_CARD_FINAL] = "card-final",
	[NF_WEV_CONTEST] = "contest", [NF_WEV_FORCE_RELEASE] = "force-release",
};
NF_DEFINE_STRING_TABLE(nf_worker_event_name, nf_worker_event_parse, enum nf_worker_event, event_names, "event")

/* Every move a worker's state may make. A diskless worker runs no jobs:
 * it fails neither way. Releasing a released worker again is allowed (an
 * admin's release after a crash, recovery completing one). A contested
 * worker leaves that state only by the admin: release --force, or a new
 * enroll (which writes a new row, not a transition). */
static const struct {
	enum nf_worker_state from;
	enum nf_worker_event ev;
	enum nf_worker_state to;
} transitions[] = {
	{ NF_WORKER_ENROLLED, NF_WEV_RELEASE, NF_WORKER_RELEASED },
	{ NF_WORKER_DISKLESS, NF_WEV_RELEASE, NF_WORKER_RELEASED },
	{ NF_WORKER_FAILED, NF_WEV_RELEASE, NF_WORKER_RELEASED },
	{ NF_WORKER_RELEASED, NF_WEV_RELEASE, NF_WORKER_RELEASED },
	{ NF_WORKER_ENROLLED, NF_WEV_TRIES_OUT, NF_WORKER_FAILED },
	{ NF_WORKER_FAILED, NF_WEV_TRIES_OUT, NF_WORKER_FAILED },
	{ NF_WORKER_ENROLLED, NF_WEV_CARD_FINAL, NF_WORKER_FAILED },
	{ NF_WORKER_FAILED, NF_WEV_CARD_FINAL, NF_WORKER_FAILED },
	{ NF_WORKER_ENROLLED, NF_WEV_CONTEST, NF_WORKER_CONTESTED },
	{ NF_WORKER_FAILED, NF_WEV_CONTEST, NF_WORKER_CONTESTED },
	{ NF_WORKER_CONTESTED, NF_WEV_CONTEST, NF_WORKER_CONTESTED },
	{ NF_WORKER_ENROLLED, NF_WEV_FORCE_RELEASE, NF_WORKER_RELEASED },
	{ NF_WORKER_DISKLESS, NF_WEV_FORCE_RELEASE, NF_WORKER_RELEASED },
	{ NF_WORKER_FAILED, NF_WEV_FORCE_RELEASE, NF_WORKER_RELEASED },
	{ NF_WORKER_RELEASED, NF_WEV_FORCE_RELEASE, NF_WORKER_RELEASED },
	{ NF_WORKER_CONTESTED, NF_WEV_FORCE_RELEASE, NF_WORKER_RELEASED },
};

int worker_transition(struct master *m, struct store *st, const char *mac, enum nf_worker_event ev,
		      const char *error)
{
	struct enrollment *e = calloc(1, sizeof(*e));
	enum nf_worker_state from;
	int r;

	if (!e)
		return -ENOMEM;
	r = store_get(st, mac, e);
	from = e->state;
	free(e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < sizeof(transitions) / sizeof(transitions[0]); i++) {
		if (transitions[i].from != from || transitions[i].ev != ev)
			continue;
		if ((r = store_set_state(st, mac, transitions[i].to, error)) < 0)
			return r;
		if (from != transitions[i].to)
			master_tell(m, 0, "%s: %s -> %s (%s)", mac, nf_worker_state_name(from),
				    nf_worker_state_name(transitions[i].to), nf_worker_event_name(ev));
		return 0;
	}
	return -EPERM;
}
