/* Child processes of the master's commands (mtools, dnsmasq helpers,
 * power-control programs). */
#include "run.h"

#include <errno.h>
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
