/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "hooks.h"
#include "run.h"
#include "strtable.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const event_names[] = {
	[NF_HOOK_DONE] = "done", [NF_HOOK_FAILED] = "failed", [NF_HOOK_ENROLLED] = "enrolled",
	[NF_HOOK_CONTESTED] = "contested",
};

NF_DEFINE_STRING_TABLE(nf_hook_event_name, nf_hook_event_parse, enum nf_hook_event, event_names, "done")

int master_netflash_path(char *out, size_t cap)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n < 0)
		return -errno;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	n = snprintf(out, cap, "%s/netflash", self);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* The facts as "KEY=value" strings in buf (rows of 600), pointers in env. */
#define FACTS_MAX 14
#define FACT_LEN 1100

static size_t facts_env(const struct master *m, enum nf_hook_event ev, const struct hook_facts *f,
			char buf[FACTS_MAX][FACT_LEN], char *env[FACTS_MAX + 1])
{
	size_t n = 0;

#define PUT(...) do { snprintf(buf[n], FACT_LEN, __VA_ARGS__); env[n] = buf[n]; n++; } while (0)
	PUT("%s", NF_HOOK_PATH);
	PUT("NETFLASH_ROOT=%s", m->root);
	PUT("NETFLASH_EVENT=%s", nf_hook_event_name(ev));
	if (f->mac)
		PUT("NETFLASH_MAC=%s", f->mac);
	if (f->hostname && f->hostname[0])
		PUT("NETFLASH_HOSTNAME=%s", f->hostname);
	if (f->image && f->image[0])
		PUT("NETFLASH_IMAGE=%s", f->image);
	if (f->result)
		PUT("NETFLASH_RESULT=%s", f->result);
	if (f->reason && f->reason[0])
		PUT("NETFLASH_REASON=%.500s", f->reason);
	if (f->worker_state)
		PUT("NETFLASH_WORKER_STATE=%s", f->worker_state);
	if (f->job)
		PUT("NETFLASH_JOB=%llu", (unsigned long long)f->job);
	if (f->bytes)
		PUT("NETFLASH_BYTES=%llu", (unsigned long long)f->bytes);
	if (f->seconds > 0)
		PUT("NETFLASH_SECONDS=%.1f", f->seconds);
	if (f->attempts)
		PUT("NETFLASH_ATTEMPTS=%u", f->attempts);
#undef PUT
	env[n] = NULL;
	return n;
}

int master_hooks_start(const struct master *m, const char *netflash_bin, enum nf_hook_event ev,
		       const struct hook_facts *f, int log_fd)
{
	char dir[PATH_MAX], rel[32], buf[FACTS_MAX][FACT_LEN], *env[FACTS_MAX + 1];
	char *argv[] = { (char *)netflash_bin, "--root", (char *)m->root, "hook-run", (char *)nf_hook_event_name(ev),
			 NULL };
	struct stat sb;
	pid_t pid;
	int status;

	snprintf(rel, sizeof(rel), "hooks/%s.d", nf_hook_event_name(ev));
	if (master_path(m, dir, sizeof(dir), rel) < 0)
		return -ENAMETOOLONG;
	if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return 0;
	facts_env(m, ev, f, buf, env);
	/* Between fork and exec only async-signal-safe calls: the daemon has
	 * threads (its HTTP server). */
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		pid_t runner;

		setsid();
		runner = fork();
		if (runner == 0)
			master_child_exec(argv, env, -1, log_fd);
		_exit(runner < 0 ? 1 : 0);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 1 : -EAGAIN;
}

/* run-parts' names: letters, digits, '-' and '_'. */
static int hook_name(const struct dirent *d)
{
	const char *s = d->d_name;

	if (!s[0] || strlen(s) >= sizeof(((struct hook_result *)0)->name))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_'))
			return 0;
	return 1;
}

/* Owned by root or by us, and only the owner may write it. */
static int trusted(const struct stat *sb)
{
	return (sb->st_uid == 0 || sb->st_uid == geteuid()) && !(sb->st_mode & (S_IWGRP | S_IWOTH));
}

/* Runs one hook into h. */
static void run_one(const char *path, char *const env[], unsigned timeout_s, struct hook_result *h)
{
	char *const argv[] = { (char *)path, NULL };
	int r = master_run_bounded(argv, env, timeout_s, &h->run);

	if (r < 0)
		snprintf(h->skipped, sizeof(h->skipped), "cannot start it: %s", strerror(-r));
}

int master_hooks_run(const char *dir, char *const env[], unsigned timeout_s,
		     void (*fn)(const struct hook_result *h, void *ctx), void *ctx)
{
	char parent[PATH_MAX + 4];
	struct dirent **names;
	struct stat sb;
	int n;

	if (stat(dir, &sb) < 0)
		return -errno;
	if (!S_ISDIR(sb.st_mode))
		return -ENOTDIR;
	if (!trusted(&sb))
		return -EPERM;
	/* ROOT/hooks too: whoever may write it may swap EVENT.d. */
	snprintf(parent, sizeof(parent), "%s/..", dir);
	if (stat(parent, &sb) < 0 || !trusted(&sb))
		return -EPERM;
	n = scandir(dir, &names, hook_name, alphasort);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		struct hook_result h = { .skipped = "" };
		char path[PATH_MAX];

		snprintf(h.name, sizeof(h.name), "%.63s", names[i]->d_name); /* hook_name() bounds it */
		if (snprintf(path, sizeof(path), "%s/%s", dir, h.name) >= (int)sizeof(path))
			snprintf(h.skipped, sizeof(h.skipped), "its path is too long");
		else if (stat(path, &sb) < 0)
			snprintf(h.skipped, sizeof(h.skipped), "%s", strerror(errno));
		else if (!S_ISREG(sb.st_mode))
			snprintf(h.skipped, sizeof(h.skipped), "not a regular file");
		else if (!(sb.st_mode & S_IXUSR))
			snprintf(h.skipped, sizeof(h.skipped), "not executable");
		else if (!trusted(&sb))
			snprintf(h.skipped, sizeof(h.skipped),
				 "not owned by root, or its group or others may write it (it would run as root)");
		else
			run_one(path, env, timeout_s, &h);
		fn(&h, ctx);
		free(names[i]);
	}
	free(names);
	return n;
}
