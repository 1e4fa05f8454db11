/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The provisioning options of enroll, reimage and mass-flash
 * (provision_opts.c): they fill a struct provision (core/provision.h). */
#ifndef NETFLASH_PROVISION_OPTS_H
#define NETFLASH_PROVISION_OPTS_H

#include <getopt.h>
#include <stddef.h>

#include "provision.h"

/* The long options every provisioning command takes (enroll, mass-flash),
 * ending in an empty entry; option values start at PROVISION_OPT. */
#define PROVISION_OPT 0x1000
extern const struct option provision_options[];
extern const char provision_usage[];

/* own (n entries, no terminator) followed by provision_options into out
 * (cap entries, terminated). */
void provision_merge_options(const struct option *own, size_t n, struct option *out, size_t cap);

/* Refuses an abbreviation of an option that leads to a secret
 * (--password-hash-file, --wifi-psk-file): getopt would take '--password
 * S3cret!' as --password-hash-file and an error would echo it. Call before
 * getopt_long. Logs without the value; returns 0 or 2. */
int provision_spelled_out(int argc, char **argv);

void provision_init(struct provision *p);
/* Handles one provisioning option. Returns 0, or 2 after logging a usage
 * error naming the option and the reason. */
int provision_option(struct provision *p, int opt, const char *arg);
/* Checks the options against each other (after parsing). Logs; returns 0 or 2. */
int provision_check(struct provision *p);

#endif
