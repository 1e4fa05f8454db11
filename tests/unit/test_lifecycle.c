/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A worker's lifecycle (core/lifecycle.c) on a real state database: every
 * {state, event} pair, one line each, and what it is told. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "lifecycle.h"
#include "master.h"
#include "store.h"

static char told[256];

static void tell(int warning, const char *line)
{
	(void)warning;
	snprintf(told, sizeof(told), "%s", line);
}

int main(void)
{
	static const struct {
		enum nf_worker_state from;
		enum nf_worker_event ev;
		int ret;
		enum nf_worker_state to;
		const char *said;
	} t[] = {
		{ NF_WORKER_ENROLLED, NF_WEV_RELEASE, 0, NF_WORKER_RELEASED, "enrolled -> released (release)" },
		{ NF_WORKER_DISKLESS, NF_WEV_RELEASE, 0, NF_WORKER_RELEASED, "diskless -> released (release)" },
		{ NF_WORKER_FAILED, NF_WEV_RELEASE, 0, NF_WORKER_RELEASED, "failed -> released (release)" },
		{ NF_WORKER_RELEASED, NF_WEV_RELEASE, 0, NF_WORKER_RELEASED, "" },
		{ NF_WORKER_ENROLLED, NF_WEV_TRIES_OUT, 0, NF_WORKER_FAILED, "enrolled -> failed (tries-out)" },
		{ NF_WORKER_FAILED, NF_WEV_TRIES_OUT, 0, NF_WORKER_FAILED, "" },
		{ NF_WORKER_DISKLESS, NF_WEV_TRIES_OUT, -EPERM, NF_WORKER_DISKLESS, "" },
		{ NF_WORKER_RELEASED, NF_WEV_TRIES_OUT, -EPERM, NF_WORKER_RELEASED, "" },
		{ NF_WORKER_ENROLLED, NF_WEV_CARD_FINAL, 0, NF_WORKER_FAILED, "enrolled -> failed (card-final)" },
		{ NF_WORKER_RELEASED, NF_WEV_CARD_FINAL, -EPERM, NF_WORKER_RELEASED, "" },
		{ NF_WORKER_DISKLESS, NF_WEV_CARD_FINAL, -EPERM, NF_WORKER_DISKLESS, "" },
	};
	char dir[] = "/tmp/test_lifecycle.XXXXXX", db[64];
	struct master m = { .tell = tell };
	struct store *st = NULL;
	struct enrollment e;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(db, sizeof(db), "%s/netflash.db", dir);
	CHECK(store_open(&st, db) == 0, "store_open %s", db);
	if (!st)
		return CHECK_DONE();
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r;

		memset(&e, 0, sizeof(e));
		snprintf(e.mac, sizeof(e.mac), "b8-27-eb-00-00-%02zx", i);
		snprintf(e.image, sizeof(e.image), "pios");
		e.state = t[i].from;
		told[0] = '\0';
		CHECK(store_put(st, &e) == 0, "#%zu: put", i);
		r = worker_transition(&m, st, e.mac, t[i].ev, "why");
		CHECK(r == t[i].ret, "#%zu: got %d want %d", i, r, t[i].ret);
		CHECK(store_get(st, e.mac, &e) == 0 && e.state == t[i].to, "#%zu: state %s want %s", i,
		      nf_worker_state_name(e.state), nf_worker_state_name(t[i].to));
		CHECK(t[i].said[0] ? strstr(told, t[i].said) != NULL : told[0] == '\0', "#%zu: told '%s'", i, told);
	}
	CHECK(worker_transition(&m, st, "b8-27-eb-ff-ff-ff", NF_WEV_RELEASE, NULL) == -ENOENT, "unknown worker");
	store_close(st);
	unlink(db);
	rmdir(dir);
	return CHECK_DONE();
}
