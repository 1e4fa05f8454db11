/* Enrolling and releasing workers (enroll.c): what the CLI, mass-flash and
 * the daemon's API share. */
#ifndef NETFLASH_ENROLL_H
#define NETFLASH_ENROLL_H

#include <stddef.h>

#include "master.h"
#include "store.h"

struct provision;
/* Enrolls e->mac (e->image, hostname, ssh key set; token and state are
 * filled in): builds its provisioning patch (prov may be NULL: none) and
 * its TFTP dir and records it, under the state lock. force replaces an
 * enrollment in state "enrolled". quiet: no stdout line.
 * Logs why on failure; returns 0 or 1. */
int master_enroll(struct master *m, struct enrollment *e, const struct provision *prov, int force, int quiet);
/* What enroll and reimage share once their options are parsed: checks the
 * image name and hostname, puts them and the ssh key (read from key) into e,
 * and completes and checks prov. Logs why not; returns 0, 1 (a file cannot
 * be read, ROOT not initialised) or 2 (invalid settings). */
int master_enroll_settings(struct master *m, struct enrollment *e, struct provision *prov, const char *image,
			   const char *hostname, const char *key);
/* Reads one OpenSSH public key line from file into out. Logs why not;
 * returns 0 or 1. */
int master_read_ssh_key(const char *file, char *out, size_t cap);
/* 0 if canon (a MAC as nf_format_mac writes it) can be a Pi's: not all
 * zeros, not a group address (IEEE 802 I/G bit). Logs why not; returns -1. */
int master_station_mac(const char *canon);
/* 1 if h is an RFC 1123 host label (letters, digits, '-', up to 63). */
int master_hostname_valid(const char *h);
/* enroll --nfsroot: checks nfsroot (a Pi OS root, on this master) and the
 * subnet it would be exported to, then enrolls e->mac diskless under the
 * state lock. settings: provisioning options were given (refused). Logs why
 * not; returns 0, 1 or 2 (invalid settings). */
int master_enroll_diskless(struct master *m, struct enrollment *e, const struct provision *prov, const char *nfsroot,
			   int settings, int force);

/* Releases mac (canonical "b8-27-eb-d3-85-78"): marks it released, removes
 * its TFTP dir (only one that netflash made), its provisioning patch and
 * any diskless export, crash-safely and under the state lock. Does not log.
 * Returns 1 when the dir was removed, 0 when it had none (already
 * released), or -errno with why set: -ENOENT not enrolled, -EPERM the dir
 * has no netflash marker, else the failing step's error. */
int master_release(struct master *m, const char *mac, char *why, size_t cap);

#endif
