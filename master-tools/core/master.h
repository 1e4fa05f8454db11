/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What every `netflash` subcommand shares: the state tree, its config, the
 * lock, and the store. One file per subcommand implements cmd_*(). */
#ifndef NETFLASH_MASTER_H
#define NETFLASH_MASTER_H

#include <limits.h>
#include <net/if.h>
#include <stddef.h>
#include <sys/types.h>

#include "store.h"

#define NF_DEFAULT_ROOT "/srv/netflash"
#define NF_DEFAULT_PORT 7070

struct master_conf {
	char server_ip[64];     /* address workers reach the master at */
	unsigned port;          /* netflashd's TCP port */
	char iface[IF_NAMESIZE];
	char broadcast[64];     /* proxy-DHCP range: dhcp-range=<broadcast>,proxy */
	char subnet[64];        /* for the NFS export; empty: any host */
	char tftp_user[33];     /* dnsmasq's user: owns the per-worker TFTP files
				 * that hold a token (mode 0400); empty: nobody */
	unsigned hook_timeout;  /* seconds a hook may run (hooks.h); 0: the default */
};

struct master {
	char root[1024];        /* bounded so every generated file fits its buffer */
	struct master_conf conf;
	int have_conf;
	char conf_error[160];   /* which line of netflash.conf master_load_conf() refused */
	int lock_fd;
	/* Where what the library says while it works goes (library code never
	 * logs): that master_lock() waits for another holder (warning 0), and
	 * each repair master_recover() makes (warning 1). NULL: nothing. */
	void (*tell)(int warning, const char *line);
};

/* Formats a line and hands it to m->tell, if set. */
void master_tell(const struct master *m, int warning, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* What a library call has to tell, for its caller to log: library code
 * fills it and never prints (docs/hacking.md "Errors"). */
struct master_report {
	char error[700];          /* why it failed: one line */
	char warnings[4][400];    /* what went wrong but was carried on with */
	unsigned nwarnings;       /* more than 4: the last ones are dropped */
	char out[1600];           /* lines a command prints on success */
};
void master_report_error(struct master_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void master_report_warn(struct master_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a line (its newline included in fmt) to r->out. */
void master_report_out(struct master_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Formats ROOT/rel into out. Returns 0 or -ENAMETOOLONG. */
int master_path(const struct master *m, char *out, size_t cap, const char *rel);

/* Reads ROOT/netflash.conf (written by init). Returns 0, -ENOENT, -EBADMSG. */
int master_load_conf(struct master *m);
/* Writes ROOT/netflash.conf atomically. */
int master_save_conf(const struct master *m);

/* Takes the exclusive state lock (ROOT/state/lock), waiting for other
 * netflash commands and the daemon (after a second, m->tell hears for
 * whom), then completes or undoes what a killed holder left half done
 * (master_recover(), recover.h). Returns 0 or -errno; master_lock_error()
 * says why. */
int master_lock(struct master *m);
/* A run that must be alone on a root (name "mass-flash"): takes
 * ROOT/state/NAME.lock without waiting, for the life of the process (the
 * fd stays open, close-on-exec), with "PID COMMAND" in it. Returns 0,
 * -EWOULDBLOCK with *holder the running one's PID (0: unknown), or
 * -errno. */
int master_run_lock(const struct master *m, const char *name, pid_t *holder);
/* The PID holding ROOT/state/NAME.lock, or 0 when nobody does. */
pid_t master_run_lock_holder(const struct master *m, const char *name);
/* "cannot take the state lock in ROOT/state: ..." for master_lock's r. */
void master_lock_error(const struct master *m, int r, char *why, size_t cap);
/* The same without waiting (the daemon's loop must never block): 0, -EBUSY
 * while another holds it, or -errno. */
int master_trylock(struct master *m);
void master_unlock(struct master *m);

struct nf_manifest;
/* ROOT/images/NAME.manifest into out. Returns 0 or -ENAMETOOLONG. */
int master_manifest_path(const struct master *m, const char *name, char *out, size_t cap);
/* Reads catalog image NAME's manifest. Returns 0, -EINVAL (not a valid
 * image name), -ENOENT (no such image), -EBADMSG (damaged) or -errno. */
int master_read_manifest(const struct master *m, const char *name, struct nf_manifest *man);
/* Calls fn for each NAME.manifest in ROOT/images, by name: path, and the
 * manifest (NULL when it cannot be read). Stops at fn's first non-zero
 * return and returns it; -errno when the catalog cannot be listed. */
int master_each_manifest(const struct master *m, int (*fn)(const char *path, const struct nf_manifest *man, void *ctx),
			 void *ctx);
/* ROOT/images/FILE (a file of the catalog: an image file, a copy) into
 * out. Returns 0 or -ENAMETOOLONG. */
int master_catalog_path(const struct master *m, const char *file, char *out, size_t cap);
/* ROOT/images/<the manifest's image file> into out. Returns 0 or -ENAMETOOLONG. */
int master_image_path(const struct master *m, const struct nf_manifest *man, char *out, size_t cap);

/* Opens ROOT/state/netflash.db. Returns 0 or -errno. */
int master_open_store(const struct master *m, struct store **st);

/* Loads ROOT's netflash.conf: 0, or -errno with why saying what to do
 * (-ENOENT: ROOT is not a netflash root; run init). */
int master_check_init(struct master *m, char *why, size_t cap);

/* Reads a small file that must hold one line (a trailing newline, LF or
 * CRLF, is dropped) into out: 0, -EBADMSG (more than one line), -EFBIG
 * (too long) or the read's -errno. */
int master_read_one_line(const char *file, char *out, size_t cap);

/* A running job whose worker has not reported for this long is shown as
 * stalled (no rate, no ETA): a worker reports about once a second and
 * reconnects every 3 s, so a minute is about 60 missed reports (and covers
 * a multicast member's wait for its session, 30 s by default plus 10 s).
 * netflashd abandons it after NF_JOB_ABANDONED_S: an attempt counted, the
 * worker back to waiting for its next boot (docs/operator-guide.md). */
#define NF_JOB_STALLED_S 60
#define NF_JOB_ABANDONED_S 300

/* What `status` shows of a worker: state (its job's stage while running,
 * "stalled" when its worker went quiet), percent done, MB/s and ETA as
 * text, and its newest job. */
struct worker_view {
	char state[16], pct[8], rate[16], eta[16];
	double eta_s;                /* seconds left writing; -1: not known */
	int have_job, running, stalled;
	long silent_s;               /* running: seconds since its last report */
	struct job job;
};
void worker_view(struct store *st, const struct enrollment *e, struct worker_view *v);

#endif
