/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What netflashd's files share (private to master-tools/daemon/): the
 * daemon's state, a worker connection and its one state, the connection
 * handling conn.c gives (accept, read, answer, refuse, sweep) and the
 * worker protocol worker_proto.c gives (dispatch). netflashd.c holds main,
 * the arguments and the dashboard's start. */
#ifndef NETFLASH_DAEMON_INT_H
#define NETFLASH_DAEMON_INT_H

#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "manifest.h"
#include "master.h"
#include "parse.h"
#include "proto.h"
#include "store.h"

#define MAX_CONNS 4096
#define HTTP_NAMES_MAX 16
#define ACCEPT_PAUSE_MS 250    /* out of fds: stop accepting this long instead of spinning */

/* Where a connection is in the protocol (docs/protocol.md); it only moves
 * up. The verb table (worker_proto.c) says in which states each verb is
 * taken. An agent's QUERY v=2 makes it CHALLENGED; a HELLO (or QUERY v=1)
 * with a current token AUTHED, from NEW or CHALLENGED; a JOB sent, or a
 * finished job named again, IN_JOB. */
enum conn_state {
	CONN_NEW,
	CONN_CHALLENGED,        /* QUERY v=2 answered with CHALLENGE: PROVE may follow */
	CONN_AUTHED,            /* HELLO proved the token; no job on this connection */
	CONN_IN_JOB,            /* speaks for job `job` */
};

struct conn {
	int fd;
	struct in_addr addr;
	char peer[48];
	char buf[NF_PROTO_LINE_MAX];
	size_t len;
	time_t opened, last_msg, partial_since;
	enum conn_state state;
	struct nf_mac mac;      /* from CHALLENGED on: the MAC it named */
	char token[65];         /* from CHALLENGED on: the enrollment's generation it speaks for */
	char cnonce[33], snonce[33]; /* CHALLENGED: the nonces PROVE's proof covers */
	uint64_t job;           /* IN_JOB: its job's id; 0 before */
	time_t progress_saved;
	time_t progress_sec;    /* the second PROGRESS lines are counted in */
	unsigned progress_n;    /* and how many came in it */
	unsigned log_lines;
};

struct nf_actions;
struct nf_http;

/* The first host to prove an enrollment's token claims its job: the
 * address it came from and the MAC its neighbour entry held. Another
 * address with the same token is a second claimant (docs/security.md). */
struct claim {
	char mac[18];
	char token[65];
	struct in_addr addr;
	uint8_t seen[6];        /* its neighbour entry's MAC (have_seen) */
	int have_seen;
	int contested;          /* a second claimant was seen: said once, and its
				 * DONE is refused even if the state database did
				 * not take the contest */
};
#define CLAIMS_MAX 4096

struct daemon {
	struct master m;
	struct store *st;
	int epfd, lfd;
	unsigned max_attempts;
	unsigned slow_timeout;  /* s: half a line older than this is slow loris; HELLO by 1.5x */
	char nfs_prefix[512], nfs_query[512];
	struct conn *conns[MAX_CONNS];
	unsigned nconns, max_conns;
	int peer_check;         /* 1: HELLO's MAC must be the peer's neighbour entry */
	const char *neigh_table;
	uint64_t accept_resume_ms; /* > 0: the listener is paused until then */
	time_t refusal_sec, last_recovery;
	unsigned refusals, refusals_dropped;
	struct enrollment e; /* the row authenticate(), still_current() or a QUERY loaded, for the verb handlers */
	const char *http_spec;  /* NULL: the default, "off": none */
	const char *http_names[HTTP_NAMES_MAX + 1]; /* --http-name, NULL-terminated */
	unsigned n_http_names;
	char netflash_bin[PATH_MAX]; /* runs the hooks and the API's actions; empty: cannot */
	struct nf_actions *actions;  /* the API's actions; NULL: none */
	struct claim *claims;        /* CLAIMS_MAX, a worker's slot reused for its next enrollment */
	unsigned nclaims;
	struct nf_http *http;
	struct mc_table *mc;         /* multicast sessions (mcast.h); NULL: none */
	time_t started_at, last_sweep; /* jobs_sweep() */
	unsigned abandon_after;      /* s: --abandon-after (NF_JOB_ABANDONED_S) */
	unsigned mc_port_base;       /* --multicast-port-base */
	pid_t fin_pid;               /* the running `image finish` (finisher.h); 0: none */
	char fin_image[NF_NAME_MAX + 1];
	time_t fin_scan;             /* the last look at the catalog for work */
};

/* What a verb handler returns, and so worker_dispatch() and the refusal
 * helpers below: 0 keeps the connection for the next line; -errno closes
 * it (conn_readable() does), the peer having been told what it is to hear
 * and whatever needs logging logged. The codes say why:
 *   -EPROTO      refused: an ERR went out (conn_refuse()): a malformed
 *                message, a verb in the wrong state, a wrong or stale token;
 *   -ESHUTDOWN   the exchange is over: QUERY and PROVE are answered once;
 *   -EAGAIN      DONE could not be settled now (the state lock was busy, or
 *                an intent stays for recovery): closed unanswered, so the
 *                worker reconnects and sends DONE again;
 *   other        the master's failure (-ENOENT image manifest missing, a
 *                store error, a damaged provisioning patch, after NOJOB or
 *                ERR master-error or nothing), or -EIO: an answer could not
 *                be sent. */

/* conn.c: connection handling. */

/* Listens on spec (IPv4 ADDR:PORT) into d->lfd. Returns 0 or -errno
 * (-EINVAL: not an address). */
int conn_listen(struct daemon *d, const char *spec);

/* Sizes d->max_conns for the fd limit, raised to the hard one first
 * (warns when it cannot). */
void conn_size_for_fds(struct daemon *d);

/* Accepts what the listener holds, within the caps. */
void conn_accept(struct daemon *d);

/* Puts the listener back into the loop once a pause for want of fds is over. */
void conn_resume_accept(struct daemon *d);

/* Reads what c's peer sent and dispatches each whole line; closes c (frees
 * it) on end of stream, a read error, a handler's -errno or an overlong line. */
void conn_readable(struct daemon *d, struct conn *c);

/* Closes connections past their deadline: no HELLO, idle, or half a line
 * for too long. */
void conn_sweep(struct daemon *d);

/* Closes c's socket and frees c. */
void conn_close(struct daemon *d, struct conn *c);

/* Sends m in one send; a peer that does not take a few hundred bytes is
 * dropped. Returns 0, -EIO or nf_msg_format()'s -errno. */
int conn_reply(struct conn *c, const struct nf_msg *m);

/* Sends VERB [id=JOB when IN_JOB] [reason=REASON]; reason may be NULL.
 * Returns as conn_reply(). */
int conn_reply_simple(struct conn *c, const char *verb, const char *reason);

/* Whether one more refusal may be logged this second (the rest are counted
 * and the count logged). */
int conn_refusal_loggable(struct daemon *d);

/* Answers ERR reason; logs "refused 'WHAT' from PEER: DETAIL" (rate-limited;
 * WHAT quoted, NULL: "message"). Returns -EPROTO. */
int conn_refuse_because(struct daemon *d, struct conn *c, const char *reason, const char *what, const char *fmt,
			...) __attribute__((format(printf, 5, 6)));

/* conn_refuse_because() with the reason as the detail. Returns -EPROTO. */
int conn_refuse(struct daemon *d, struct conn *c, const char *reason, const char *what);

/* worker_proto.c: the worker protocol. */

/* Handles one line (len bytes, no newline) from c by the verb table.
 * Returns as a verb handler (above). */
int worker_dispatch(struct daemon *d, struct conn *c, const char *line, size_t len);

/* Abandons running jobs whose worker has not reported for
 * d->abandon_after (NF_JOB_ABANDONED_S, master.h) and that no connection or live multicast
 * session speaks for: an attempt counted, as if the worker had failed.
 * Runs every 10 s, not before netflashd itself has been up that long (a
 * restart reconciles the jobs it finds running the same way). */
void jobs_sweep(struct daemon *d);

#endif
