/* Running a program from a master command and waiting for it. */
#ifndef NETFLASH_RUN_H
#define NETFLASH_RUN_H

/* Runs argv (PATH lookup) and waits. out_path: its stdout goes there (NULL:
 * inherited); stderr is inherited unless quiet. Returns 0 when it exited
 * 0, -EIO when it failed, or -errno when it could not start. */
int master_run(char *const argv[], const char *out_path, int quiet);

/* master_run() with input (a NUL-terminated text, at most 4 KiB, so it fits
 * a pipe's buffer) on the program's stdin: for secrets that must not be on
 * its command line, where every local user sees them in ps. */
int master_run_input(char *const argv[], const char *out_path, int quiet, const char *input);

#endif
