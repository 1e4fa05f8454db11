/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Running a program from a master command and waiting for it. */
#ifndef NETFLASH_RUN_H
#define NETFLASH_RUN_H

#include <stddef.h>

/* Runs argv (PATH lookup) and waits. out_path: its stdout goes there (NULL:
 * inherited); stderr is inherited unless quiet. Returns 0 when it exited
 * 0, -EIO when it failed, or -errno when it could not start. */
int master_run(char *const argv[], const char *out_path, int quiet);

/* master_run() with input (a NUL-terminated text, at most 4 KiB, so it fits
 * a pipe's buffer) on the program's stdin: for secrets that must not be on
 * its command line, where every local user sees them in ps. */
int master_run_input(char *const argv[], const char *out_path, int quiet, const char *input);

/* Signals restored (nothing blocked, SIGPIPE at its default: netflashd
 * ignores it, and an ignored signal stays ignored across exec), stdin
 * /dev/null, stdout out_fd and stderr err_fd (-1: /dev/null), no other
 * fd, then argv[0] (a path) with env. For a child between fork and exec:
 * only async-signal-safe calls, so threaded parents may use it. Never
 * returns (exit 127 when the exec fails). */
void master_child_exec(char *const argv[], char *const env[], int out_fd, int err_fd) __attribute__((noreturn));

/* What a bounded run saw (master_run_bounded). */
struct run_capture {
	int status;        /* exit status, or -signal (-1: unknown) */
	int timed_out;     /* it ran past timeout_s and was killed */
	double seconds;
	size_t len;
	char output[1024]; /* the start of its stdout and stderr, as one printable line */
};

/* Runs argv[0] (a path: no PATH lookup, no shell) with env (NULL-terminated
 * "KEY=value"), stdin /dev/null, stdout and stderr into out->output, in a
 * process group of its own, for at most timeout_s seconds: then the group
 * gets SIGTERM, and SIGKILL 2 s later. Only async-signal-safe calls between
 * fork and exec, so threaded callers (netflashd's HTTP server) may use it.
 * Returns 0 with out filled, or -errno when it could not start. */
int master_run_bounded(char *const argv[], char *const env[], unsigned timeout_s, struct run_capture *out);

#endif
