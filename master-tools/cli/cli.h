/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the netflash command's subcommands share: their entry points
 * (argc/argv start at the subcommand's own name; they return the exit
 * status) and the helpers that log for them. Library code (core/) never
 * logs; these do. */
#ifndef NETFLASH_CLI_H
#define NETFLASH_CLI_H

#include "master.h"

/* A usage error's second line (getopt or the command said the first): a
 * pointer to the command's --help, not the whole text. */
void cli_usage_hint(const char *cmd);
struct option;
/* After getopt_long() returned '?' (netflash sets opterr to 0, so getopt
 * itself says nothing): one line naming the option argv held and why
 * (unknown, with "did you mean --X?" when one of opts is close; or it
 * needs a value), and the command's --help. Logs; returns 2. */
int cli_bad_option(char **argv, const struct option *opts);
/* " (run netflash as root)" when err (a negative errno) is a refused
 * permission and this process is not root, else "": to end a message
 * that names the file. */
const char *cli_root_hint(int err);

/* A MAC as the state keeps it ("b8-27-eb-d3-85-78", the TFTP dir's name)
 * in the spelling people type and tables print ("b8:27:eb:d3:85:78");
 * anything else unchanged. out: 18 bytes. Returns out. */
const char *cli_mac(const char *mac, char out[18]);
/* Says s is not a MAC, with the spellings expected. Logs; returns 2. */
int cli_bad_mac(const char *s);
/* Logs what a library call reported: its output lines (stdout, unless
 * quiet), its warnings, its error. */
void cli_print_report(const struct master_report *r, int quiet);
/* Fails with a hint when ROOT has not been initialised. Logs; returns 0 or 1. */
int cli_require_init(struct master *m);
/* master_lock(), saying why not. Returns 0 or -errno. */
int cli_lock(struct master *m);
/* master_read_one_line(), saying "what FILE" is wrong. Returns 0 or -1. */
int cli_read_line_file(const char *what, const char *file, char *out, size_t cap);
/* Reads one OpenSSH public key line from file into out. Logs why not;
 * returns 0 or 1. */
int cli_read_ssh_key(const char *file, char *out, size_t cap);
struct provision;
/* What enroll and reimage share once their options are parsed: checks the
 * image name and hostname, puts them into e and the ssh key (read from key)
 * into prov, and completes and checks prov. Logs why not; returns 0, 1 (a
 * file cannot be read, ROOT not initialised) or 2 (invalid settings). */
int cli_enroll_settings(struct master *m, struct enrollment *e, struct provision *prov, const char *image,
			const char *hostname, const char *key);
/* master_open_store(), saying why not. Returns 0 or -errno. */
int cli_open_store(const struct master *m, struct store **st);

int cmd_init(struct master *m, int argc, char **argv);
int cmd_hook_run(struct master *m, int argc, char **argv);
int cmd_image(struct master *m, int argc, char **argv);
int cmd_boot_files(struct master *m, int argc, char **argv);
int cmd_enroll(struct master *m, int argc, char **argv);
int cmd_release(struct master *m, int argc, char **argv);
int cmd_ls(struct master *m, int argc, char **argv);
int cmd_status(struct master *m, int argc, char **argv);
int cmd_history(struct master *m, int argc, char **argv);
int cmd_dhcp_event(struct master *m, int argc, char **argv);
int cmd_mass_flash(struct master *m, int argc, char **argv);
int cmd_reimage(struct master *m, int argc, char **argv);
int cmd_power(struct master *m, int argc, char **argv);
int cmd_recover(struct master *m, int argc, char **argv);

#endif
