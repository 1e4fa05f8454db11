/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Child processes of the master's commands (mtools, dnsmasq helpers,
 * power-control programs). */
#include "run.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int master_run_input(char *const argv[], const char *out_path, int quiet, const char *input)
{
	posix_spawn_file_actions_t fa;
	int status, r, in[2] = { -1, -1 };
	size_t len = input ? strlen(input) : 0;
	pid_t pid = -1;

	if (len > 4096)
		return -EMSGSIZE;
	if (input && pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	setenv("MTOOLS_SKIP_CHECK", "1", 1);
	posix_spawn_file_actions_init(&fa);
	if (input)
		posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
	if (out_path)
		posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (quiet)
		posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (in[0] >= 0)
		close(in[0]);
	if (r == 0 && input) {
		struct sigaction ign = { .sa_handler = SIG_IGN }, old;

		/* A program that exits without reading must not kill us with
		 * SIGPIPE: its exit status says what went wrong. */
		sigaction(SIGPIPE, &ign, &old);
		if (write(in[1], input, len) < 0)
			(void)0;
		sigaction(SIGPIPE, &old, NULL);
	}
	if (in[1] >= 0)
		close(in[1]);
	if (r != 0)
		return -r;
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int master_run(char *const argv[], const char *out_path, int quiet)
{
	return master_run_input(argv, out_path, quiet, NULL);
}

#define KILL_GRACE_MS 2000

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Appends n bytes of buf to h->output as one printable line: a newline
 * becomes a space once more text follows it (*nl holds one that has not
 * yet: the last line's own ends nothing), other controls and non-ASCII
 * '?'. Lines that come in separate reads stay apart. */
static void take_output(struct run_capture *h, size_t *len, int *nl, const char *buf, ssize_t n)
{
	for (ssize_t i = 0; i < n && *len + 1 < sizeof(h->output); i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '\n') {
			*nl = *len > 0;
			continue;
		}
		if (*nl) {
			h->output[(*len)++] = ' ';
			*nl = 0;
			if (*len + 1 >= sizeof(h->output))
				break;
		}
		h->output[(*len)++] = c == '\t' ? ' ' : c < 0x20 || c > 0x7e ? '?' : (char)c;
	}
	h->output[*len] = '\0';
}

void master_child_exec(char *const argv[], char *const env[], int out_fd, int err_fd)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	sigaction(SIGPIPE, &dfl, NULL);
	if (null >= 0)
		dup2(null, STDIN_FILENO);
	dup2(out_fd >= 0 ? out_fd : null, STDOUT_FILENO);
	dup2(err_fd >= 0 ? err_fd : null, STDERR_FILENO);
	close_range(3, ~0U, 0);
	execve(argv[0], argv, env);
	_exit(127);
}

int master_run_bounded(char *const argv[], char *const env[], unsigned timeout_s, struct run_capture *h)
{
	double t0 = now_s(), deadline = t0 + timeout_s, kill_at = 0;
	int out[2], status = 0, open_out = 1, nl = 0;
	size_t len = 0;
	pid_t pid;

	memset(h, 0, sizeof(*h));
	h->status = -1;
	if (pipe2(out, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(out[0]);
		close(out[1]);
		return -e;
	}
	if (pid == 0) {
		setpgid(0, 0);
		master_child_exec(argv, env, out[1], out[1]);
	}
	setpgid(pid, pid); /* also here: no race with the kill below */
	close(out[1]);
	for (;;) {
		struct pollfd p = { .fd = out[0], .events = POLLIN };
		double now = now_s();
		char buf[512];
		pid_t w;

		if (!kill_at && now >= deadline) {
			h->timed_out = 1;
			kill(-pid, SIGTERM);
			kill_at = now + KILL_GRACE_MS / 1000.0;
		} else if (kill_at && now >= kill_at) {
			kill(-pid, SIGKILL);
			kill_at = now + 3600;
		}
		if (open_out && poll(&p, 1, 100) > 0) {
			ssize_t n = read(out[0], buf, sizeof(buf));

			if (n > 0)
				take_output(h, &len, &nl, buf, n);
			else if (n == 0 || errno != EINTR)
				open_out = 0;
		} else if (!open_out) {
			usleep(50 * 1000);
		}
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			break;
	}
	/* What it left behind in its group does not outlive a killed hook. */
	if (h->timed_out)
		kill(-pid, SIGKILL);
	close(out[0]);
	h->seconds = now_s() - t0;
	h->status = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? -WTERMSIG(status) : -1;
	h->len = len;
	return 0;
}
