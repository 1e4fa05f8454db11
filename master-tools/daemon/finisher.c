/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "finisher.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon_int.h"
#include "imgfinish.h"
#include "log.h"
#include "run.h"

/* s between looks at the catalog for work. */
#define FINISH_SCAN_S 2

extern char **environ;

static int pick(const char *path, const struct nf_manifest *man, void *ctx)
{
	struct daemon *d = ctx;

	(void)path;
	if (!man || !nf_finish_pending(&d->m, man))
		return 0;
	snprintf(d->fin_image, sizeof(d->fin_image), "%s", man->name);
	return 1;
}

static void start(struct daemon *d)
{
	char logp[PATH_MAX], *argv[] = { d->netflash_bin, "--root", d->m.root, "image", "finish", d->fin_image, NULL };
	int fd;
	pid_t pid;

	if (master_path(&d->m, logp, sizeof(logp), "log/image-finish.log") < 0 ||
	    (fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)) < 0) {
		nf_warn("cannot open log/image-finish.log: not finishing '%s'", d->fin_image);
		return;
	}
	pid = fork();
	if (pid == 0)
		master_child_exec(argv, environ, fd, fd);
	close(fd);
	if (pid < 0) {
		nf_warn("cannot start image finish for '%s': %s", d->fin_image, strerror(errno));
		return;
	}
	d->fin_pid = pid;
	nf_info("making the final copy of image '%s' in the background (PID %d, log/image-finish.log)",
		d->fin_image, (int)pid);
}

void finisher_tick(struct daemon *d)
{
	time_t now = time(NULL);
	int status;

	if (d->fin_pid > 0 && waitpid(d->fin_pid, &status, WNOHANG) == d->fin_pid) {
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			nf_warn("image finish for '%s' failed (log/image-finish.log says why)", d->fin_image);
		d->fin_pid = 0;
	}
	if (d->fin_pid > 0 || !d->netflash_bin[0] || now - d->fin_scan < FINISH_SCAN_S)
		return;
	d->fin_scan = now;
	if (master_run_lock_holder(&d->m, "image-finish") > 0)
		return;
	if (master_each_manifest(&d->m, pick, d) == 1)
		start(d);
}

void finisher_stop(struct daemon *d)
{
	if (d->fin_pid <= 0)
		return;
	kill(d->fin_pid, SIGTERM);
	waitpid(d->fin_pid, NULL, 0);
	d->fin_pid = 0;
}
