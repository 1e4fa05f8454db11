/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Hooks: executables an admin puts in ROOT/hooks/EVENT.d/ (done, failed,
 * enrolled), run with the facts of what happened in their environment
 * (docs/operator-guide.md "Hooks"). The daemon and the CLI only start a
 * runner (`netflash hook-run EVENT`, detached) and go on; the runner runs
 * the hooks one by one, each for a bounded time, and keeps what they said
 * in the worker's history. A hung or failing hook never blocks anything
 * but the hooks after it. */
#ifndef NETFLASH_HOOKS_H
#define NETFLASH_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "master.h"
#include "run.h"

enum nf_hook_event {
	NF_HOOK_DONE,     /* a worker's card was flashed and verified: it is released */
	NF_HOOK_FAILED,   /* a worker's job failed (or its DONE did not match) */
	NF_HOOK_ENROLLED, /* a worker was enrolled (enroll, mass-flash, reimage) */
	NF_HOOK_CONTESTED, /* a second host claimed a worker's job (docs/security.md) */
};

/* "done", "failed", "enrolled". Never NULL. */
const char *nf_hook_event_name(enum nf_hook_event ev);
/* Parses one of those. Returns 0 or -EINVAL. */
int nf_hook_event_parse(const char *name, enum nf_hook_event *out);

/* What a hook is told, as NETFLASH_* variables (NULL or 0: left out). */
struct hook_facts {
	const char *mac, *hostname, *image;
	const char *result;        /* done, failed, kept, enrolled */
	const char *reason;        /* why it failed: from the worker, untrusted */
	const char *worker_state;  /* enrolled, released, failed */
	uint64_t job, bytes;
	double seconds;
	unsigned attempts;
};

/* The PATH a hook gets (nothing else of its starter's environment). */
#define NF_HOOK_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The seconds each hook may run before it is killed: netflash.conf's
 * hook_timeout, default 30. */
#define NF_HOOK_TIMEOUT_DEFAULT 30

/* Starts the runner for ev when ROOT/hooks/EV.d exists: netflash_bin
 * hook-run EV with --root ROOT and the facts in its environment, in a
 * session of its own, detached (double fork: nothing to reap). Safe to
 * call from a threaded process. The runner's stdin and stdout are
 * /dev/null, its stderr (a line per hook) log_fd, or /dev/null for -1: it
 * holds no pipe of the caller's open (a CLI's $(...), an API action's
 * capture). Returns 1 when started, 0 when there is no such directory, or
 * -errno. */
int master_hooks_start(const struct master *m, const char *netflash_bin, enum nf_hook_event ev,
		       const struct hook_facts *f, int log_fd);

/* The netflash program next to the running one (/proc/self/exe's
 * directory), into out. Returns 0 or -errno. */
int master_netflash_path(char *out, size_t cap);

/* One hook's outcome, for the history. */
struct hook_result {
	char name[64];          /* the file's name */
	char skipped[128];      /* non-empty: not run, and why */
	struct run_capture run; /* how it ran: exit status, time, output; not if skipped */
};

/* Runs every hook of dir in name order (run-parts' rule: names of letters,
 * digits, '-' and '_' only, so foo.dpkg-old and README.md are ignored),
 * each with env (NULL-terminated "KEY=value" strings; no shell), stdin
 * /dev/null, for at most timeout_s seconds (then its process group gets
 * SIGTERM, and SIGKILL 2 s later). A hook that is not a regular executable
 * owned by root (or by this user), or that its group or others may write,
 * is skipped with the reason. Calls fn for each. Returns the number of
 * hooks seen, or -errno when dir cannot be read (-ENOENT: none). dir and
 * its parent must be owned by root or this user and not group- or
 * world-writable (-EPERM). */
int master_hooks_run(const char *dir, char *const env[], unsigned timeout_s,
		     void (*fn)(const struct hook_result *h, void *ctx), void *ctx);

#endif
