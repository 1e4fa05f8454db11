/* netflashd: the master daemon. Workers report here (docs/protocol.md); a
 * MAC's TFTP dir is removed only when its worker reports DONE with the
 * digest the catalog manifest holds for the job's image. One epoll loop, a
 * bounded buffer, a deadline and an explicit state per connection; a bad
 * message closes that connection, never the daemon. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fileutil.h"
#include "hmac.h"
#include "log.h"
#include "manifest.h"
#include "master.h"
#include "neigh.h"
#include "parse.h"
#include "patch.h"
#include "proto.h"
#include "provision.h"
#include "actions.h"
#include "hooks.h"
#include "http.h"
#include "release.h"
#include "store.h"
#include "tftpdir.h"

#define MAX_CONNS 4096
#define FD_RESERVE 64          /* fds kept for the database, manifests, TFTP dirs, logs */
#define MAX_PER_ADDR 32        /* connections from one LAN address (a worker needs one) */
#define ACCEPT_PAUSE_MS 250    /* out of fds: stop accepting this long instead of spinning */
#define REFUSALS_LOGGED 20     /* refusals logged per second at most; the rest are counted */
#define IDLE_TIMEOUT 300       /* s: a worker reports far more often */
#define LOG_LINES_MAX 1000     /* worker console lines kept per connection */
#define JOBS_KEPT 200          /* per worker: a HELLO makes a job row */
#define EVENTS_KEPT 5000       /* per worker: LOG, CARD, job events */
#define PROGRESS_SAVE 2        /* s: progress goes to the store at most this often */

static const char usage[] =
"Usage: netflashd [--root DIR] [--listen ADDR:PORT] [--nfs-url URL] [--max-attempts N]\n"
"\n"
"The netflash master daemon: answers workers' HELLO with their job (the\n"
"image's NFS URL, format, size and SHA-256), records their progress, and on\n"
"DONE with the manifest's digest removes the worker's TFTP dir (so it boots\n"
"from its card) and answers RELEASED. Anything else keeps the dir.\n"
"Runs in the foreground and logs to stderr (systemd-friendly).\n"
"\n"
"  --root DIR         the state tree shared with netflash (default " NF_DEFAULT_ROOT ")\n"
"  --listen ADDR:PORT where workers connect (default 0.0.0.0:<port from init>)\n"
"  --nfs-url URL      the NFS export of ROOT/images as workers reach it; the\n"
"                     image file name is appended to its path (default\n"
"                     nfs://<server_ip>/<root>/images?version=3)\n"
"  --max-attempts N   failed attempts before a worker is marked failed (3)\n"
"  --slow-timeout S   close a connection whose line stays unfinished S seconds,\n"
"                     or that sends no HELLO within 1.5 S (10)\n"
"  --peer-check MODE  neigh (default): a HELLO is taken only from the address\n"
"                     whose neighbour (ARP) entry holds the HELLO's MAC, the\n"
"                     evidence dnsmasq picks the worker's TFTP dir by, so a\n"
"                     host that read a token over TFTP cannot use it. off: the\n"
"                     token alone (routed workers, loopback tests); warned\n"
"                     about at start. See docs/security.md\n"
"  --http ADDR:PORT   the web dashboard, JSON API (/api/) and Prometheus\n"
"                     metrics (/metrics); docs/api.md. Default 127.0.0.1:8070\n"
"                     (loopback: open to local users; if that port is taken,\n"
"                     a warning and no dashboard). Any other address needs a\n"
"                     bearer token: ROOT/state/http.token (made at start,\n"
"                     root only). off: no dashboard\n"
"  --verbose          also log closed connections\n";

struct conn {
	int fd;
	struct in_addr addr;
	char peer[48];
	char buf[NF_PROTO_LINE_MAX];
	size_t len;
	time_t opened, last_msg, partial_since;
	int authed;
	char mac[18];
	char token[65];         /* the enrollment's generation this connection speaks for */
	int challenged;         /* QUERY v=2 answered with CHALLENGE: PROVE may follow */
	char cnonce[33], snonce[33];
	uint64_t job;
	time_t progress_saved;
	unsigned log_lines;
};

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
	char netflash_bin[PATH_MAX]; /* runs the hooks and the API's actions; empty: cannot */
	struct nf_actions *actions;  /* the API's actions; NULL: none */
	struct nf_http *http;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void conn_close(struct daemon *d, struct conn *c)
{
	for (unsigned i = 0; i < d->nconns; i++) {
		if (d->conns[i] == c) {
			d->conns[i] = d->conns[--d->nconns];
			break;
		}
	}
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/* Sends one message; a peer that does not take a few hundred bytes is dropped. */
static int reply(struct conn *c, const struct nf_msg *m)
{
	char line[NF_PROTO_LINE_MAX + 1];
	int n = nf_msg_format(m, line, sizeof(line));

	if (n < 0)
		return n;
	return send(c->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n ? 0 : -EIO;
}

static int reply_simple(struct conn *c, const char *verb, const char *reason)
{
	struct nf_msg m;

	nf_msg_init(&m, verb);
	if (c->job)
		nf_msg_addf(&m, "id", "%llu", (unsigned long long)c->job);
	if (reason)
		nf_msg_add(&m, "reason", reason);
	return reply(c, &m);
}

/* Whether one more refusal may be logged this second: a flood of bad
 * connections must not flood the log (the count is logged instead). */
static int refusal_loggable(struct daemon *d)
{
	time_t now = time(NULL);

	if (now != d->refusal_sec) {
		if (d->refusals_dropped)
			nf_warn("%u more refusal(s) in the last second(s) not logged", d->refusals_dropped);
		d->refusal_sec = now;
		d->refusals = d->refusals_dropped = 0;
	}
	if (d->refusals++ < REFUSALS_LOGGED)
		return 1;
	d->refusals_dropped++;
	return 0;
}

/* Answers ERR reason; logs "refused 'WHAT' from PEER: DETAIL" (rate-limited;
 * WHAT quoted, NULL: "message").
 * -1: the caller must close the connection. */
static int __attribute__((format(printf, 5, 6)))
refuse_because(struct daemon *d, struct conn *c, const char *reason, const char *what, const char *fmt, ...)
{
	char detail[300], q[256];
	va_list ap;

	if (refusal_loggable(d)) {
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
		nf_warn("refused %s from %s: %s", what ? nf_quote(q, sizeof(q), what) : "message", c->peer, detail);
	}
	reply_simple(c, "ERR", reason);
	return -1;
}

/* -1: the caller must close the connection. */
static int refuse(struct daemon *d, struct conn *c, const char *why, const char *log_detail)
{
	return refuse_because(d, c, why, log_detail, "%s", why);
}

/* The worker's provisioning patch: 0 with p empty when it has none, 0
 * with p loaded, or -1 after logging (damaged, or made for another image). */
static int load_patch(struct daemon *d, const char *mac, const struct nf_manifest *man, struct nf_patch *p,
		      const char **why)
{
	char path[PATH_MAX];
	int r;

	provision_patch_path(&d->m, mac, path, sizeof(path));
	r = nf_patch_load(p, path);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		nf_err("%s: its provisioning patch %s is unreadable: %s; enroll it again", mac, path, nf_strerror(r));
		*why = "provision-damaged";
		return -1;
	}
	if (memcmp(p->base_sha256, man->sha256, 32) != 0) {
		nf_err("%s: its provisioning patch was made for an earlier version of image '%s'; enroll it again", mac,
		       man->name);
		nf_patch_free(p);
		*why = "provision-stale";
		return -1;
	}
	return 0;
}

/* JOB then, for a new job, the PATCH lines: one send into a socket buffer
 * made large enough for NF_PATCH_MAX as hex. */
static int send_job_lines(struct conn *c, const struct nf_msg *job, const struct nf_patch *p)
{
	size_t cap = (NF_PROTO_LINE_MAX + 1) * (2 + p->n + p->bytes / NF_PATCH_LINE);
	char *buf = malloc(cap), hex[2 * NF_PATCH_LINE + 1];
	int n, sz = 4 << 20, r = -EMSGSIZE;
	size_t len;

	if (!buf)
		return -ENOMEM;
	if ((n = nf_msg_format(job, buf, cap)) < 0)
		goto out;
	len = (size_t)n;
	for (size_t i = 0; i < p->n; i++) {
		for (uint32_t o = 0; o < p->ext[i].len; o += NF_PATCH_LINE) {
			uint32_t chunk = p->ext[i].len - o < NF_PATCH_LINE ? p->ext[i].len - o : NF_PATCH_LINE;
			struct nf_msg m;

			nf_msg_init(&m, "PATCH");
			nf_msg_addf(&m, "id", "%llu", (unsigned long long)c->job);
			nf_msg_addf(&m, "off", "%llu", (unsigned long long)(p->ext[i].off + o));
			nf_format_hex(p->ext[i].data + o, chunk, hex);
			nf_msg_add(&m, "data", hex);
			if (cap - len < NF_PROTO_LINE_MAX + 1 || (n = nf_msg_format(&m, buf + len, cap - len)) < 0)
				goto out;
			len += (size_t)n;
		}
	}
	if (len > NF_PROTO_LINE_MAX && setsockopt(c->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	r = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len ? 0 : -EIO;
out:
	free(buf);
	return r;
}

static int send_job(struct daemon *d, struct conn *c, const struct job *j, int fresh)
{
	char sha[65];
	struct nf_manifest man;
	struct nf_patch patch;
	const char *why = NULL;
	struct nf_msg m;
	int r;

	if (master_read_manifest(&d->m, j->image, &man) < 0) {
		nf_err("job %llu: the manifest of image '%s' is missing or damaged", (unsigned long long)j->id, j->image);
		reply_simple(c, "NOJOB", "image-missing");
		return -1;
	}
	nf_patch_init(&patch);
	if (load_patch(d, c->mac, &man, &patch, &why) < 0) {
		store_job_end(d->st, j->id, NF_JOB_ABANDONED, why, 0, 0);
		reply_simple(c, "NOJOB", why);
		return -1;
	}
	nf_format_hex(man.sha256, 32, sha);
	nf_msg_init(&m, "JOB");
	nf_msg_addf(&m, "id", "%llu", (unsigned long long)j->id);
	nf_msg_addf(&m, "url", "%s/%s%s%s", d->nfs_prefix, man.file, d->nfs_query[0] ? "?" : "", d->nfs_query);
	nf_msg_add(&m, "format", nf_format_name(man.format));
	nf_msg_addf(&m, "size", "%llu", (unsigned long long)man.image_size);
	nf_msg_add(&m, "sha256", sha);
	nf_msg_add(&m, "image", man.name);
	if (!man.disk)
		nf_msg_add(&m, "disk", "0");
	c->job = j->id;
	/* A resumed job already has its patch: it came with the first JOB. */
	if (!fresh)
		nf_patch_free(&patch);
	if (patch.n) {
		uint8_t digest[32];

		nf_patch_digest(&patch, digest);
		nf_format_hex(digest, 32, sha);
		nf_msg_addf(&m, "patch", "%llu", (unsigned long long)patch.bytes);
		nf_msg_add(&m, "patch_sha256", sha);
	}
	r = send_job_lines(c, &m, &patch);
	nf_patch_free(&patch);
	if (r < 0)
		nf_warn("%s: cannot send job %llu: %s", c->mac, (unsigned long long)j->id, nf_strerror(r));
	return r < 0 ? -1 : 0;
}

/* The HELLO's MAC must be the MAC behind the connection's address in the
 * kernel's neighbour table: what a host that is not that worker cannot
 * show without taking the worker's MAC itself (docs/security.md).
 * Returns 0, or -1 after refusing. */
static int check_peer(struct daemon *d, struct conn *c)
{
	uint8_t seen[6], want[6];
	char seen_s[18], dev[32];
	int r = neigh_lookup(d->neigh_table, c->addr, seen, dev, sizeof(dev));

	if (r == -ENOENT)
		return refuse_because(d, c, "refused", c->mac, "no neighbour (ARP) entry for its address, so it is not "
				      "on the master's LAN (routed workers need --peer-check=off)");
	if (r < 0) {
		nf_err("cannot read the neighbour table %s: %s; refusing '%s'", d->neigh_table, nf_strerror(r), c->mac);
		reply_simple(c, "ERR", "master-error");
		return -1;
	}
	nf_parse_mac(c->mac, want);
	if (memcmp(seen, want, 6) != 0) {
		nf_format_mac(seen, seen_s);
		return refuse_because(d, c, "refused", c->mac, "its address belongs to %s on %s, not to the MAC it names",
				      seen_s, dev);
	}
	return 0;
}

/* Binds c to the enrollment named by m's mac and token (into d->e).
 * Returns 0, or -1 after refusing (bad: the reason for a malformed one). */
static int authenticate(struct daemon *d, struct conn *c, const struct nf_msg *m, const char *bad)
{
	const char *mac_s = nf_msg_get(m, "mac"), *token = nf_msg_get(m, "token");
	struct enrollment *e = &d->e;
	uint8_t mac[6];

	if (c->authed || !mac_s || !token || nf_parse_mac(mac_s, mac) < 0)
		return refuse(d, c, bad, mac_s);
	nf_format_mac(mac, c->mac);
	if (store_get(d->st, c->mac, e) < 0)
		return refuse_because(d, c, "refused", c->mac, "not enrolled");
	/* Constant time: a stray host learns nothing from timing. */
	if (strlen(token) != strlen(e->token) || CRYPTO_memcmp(token, e->token, strlen(e->token)) != 0)
		return refuse_because(d, c, "refused", c->mac, "wrong token (not this MAC's current enrollment)");
	if (d->peer_check && check_peer(d, c) < 0)
		return -1;
	snprintf(c->token, sizeof(c->token), "%s", e->token);
	c->authed = 1;
	return 0;
}

/* Every message after HELLO speaks for the enrollment HELLO proved: an
 * enroll --force since (a new token) or a removed enrollment ends the
 * connection, whatever it had started. */
static int still_current(struct daemon *d, struct conn *c)
{
	struct enrollment *e = &d->e;

	if (store_get(d->st, c->mac, e) < 0 || strlen(e->token) != strlen(c->token) ||
	    CRYPTO_memcmp(e->token, c->token, strlen(c->token)) != 0)
		return refuse_because(d, c, "stale-token", c->mac, "its enrollment changed since its HELLO (stale-token)");
	return 0;
}

/* QUERY v=2: the agent's nonce in; our nonce and the proof that we hold the
 * token out (CHALLENGE); the agent's proof comes in PROVE. */
static int on_query_challenge(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	const char *mac_s = nf_msg_get(m, "mac"), *cnonce = nf_msg_get(m, "cnonce");
	struct enrollment *e = &d->e;
	char proof[65];
	uint8_t mac[6];
	struct nf_msg a;

	if (c->authed || c->challenged || !mac_s || nf_parse_mac(mac_s, mac) < 0 || !cnonce || strlen(cnonce) != 32 ||
	    strspn(cnonce, "0123456789abcdef") != 32)
		return refuse(d, c, "bad-query", mac_s);
	nf_format_mac(mac, c->mac);
	if (store_get(d->st, c->mac, e) < 0)
		return refuse(d, c, "refused", c->mac);
	if (d->peer_check && check_peer(d, c) < 0)
		return -1;
	if (nf_random_hex(c->snonce, 16) < 0 ||
	    nf_query_proof(e->token, "master", c->mac, cnonce, c->snonce, "", proof) < 0) {
		reply_simple(c, "ERR", "master-error");
		return -1;
	}
	snprintf(c->cnonce, sizeof(c->cnonce), "%s", cnonce);
	snprintf(c->token, sizeof(c->token), "%s", e->token);
	c->challenged = 1;
	nf_msg_init(&a, "CHALLENGE");
	nf_msg_add(&a, "snonce", c->snonce);
	nf_msg_add(&a, "proof", proof);
	return reply(c, &a) < 0 ? -1 : 0;
}

/* PROVE: the agent's proof; answered ENROLLED or NOJOB with our proof of
 * the verdict, then the connection is closed. */
static int on_prove(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	const char *got = nf_msg_get(m, "proof");
	struct enrollment *e = &d->e;
	char want[65], proof[65];
	struct nf_msg a;
	int enrolled;

	if (!c->challenged || !got ||
	    nf_query_proof(c->token, "worker", c->mac, c->cnonce, c->snonce, "", want) < 0 || !nf_equal_ct(want, got))
		return refuse(d, c, "refused", c->mac);
	if (store_get(d->st, c->mac, e) < 0 || !nf_equal_ct(e->token, c->token))
		return refuse_because(d, c, "stale-token", c->mac, "its enrollment changed during QUERY (stale-token)");
	enrolled = e->state == NF_WORKER_ENROLLED;
	nf_query_proof(c->token, enrolled ? "enrolled" : "nojob", c->mac, c->cnonce, c->snonce,
		       enrolled ? e->image : nf_worker_state_name(e->state), proof);
	nf_msg_init(&a, enrolled ? "ENROLLED" : "NOJOB");
	nf_msg_add(&a, enrolled ? "image" : "reason", enrolled ? e->image : nf_worker_state_name(e->state));
	nf_msg_add(&a, "proof", proof);
	reply(c, &a);
	if (enrolled)
		store_event(d->st, c->mac, NF_EVENT_REIMAGE, "netflash-agent checked the enrollment; it makes the card non-bootable");
	return -1;
}

/* QUERY (netflash-agent, before it makes a card non-bootable): is this
 * enrollment current? v=2 (challenge, above); v=1 (the token sent along,
 * kept for agents from before) is answered, then the connection closed. */
static int on_query(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	const char *v = nf_msg_get(m, "v");
	struct nf_msg a;

	if (v && strcmp(v, "2") == 0)
		return on_query_challenge(d, c, m);

	if (authenticate(d, c, m, "bad-query") < 0)
		return -1;
	if (d->e.state != NF_WORKER_ENROLLED) {
		reply_simple(c, "NOJOB", nf_worker_state_name(d->e.state));
		return -1;
	}
	nf_msg_init(&a, "ENROLLED");
	nf_msg_add(&a, "image", d->e.image);
	reply(c, &a);
	store_event(d->st, c->mac, NF_EVENT_REIMAGE, "netflash-agent checked the enrollment; it makes the card non-bootable");
	return -1;
}

static int on_hello(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	struct enrollment *e = &d->e;
	const char *target = nf_msg_get(m, "target"), *model = nf_msg_get(m, "model"), *serial = nf_msg_get(m, "serial");
	uint64_t job_id = 0, tbytes = 0;
	char board[NF_BOARD_MODEL_MAX + NF_BOARD_SERIAL_MAX + 16] = "";
	struct job j;
	int r;

	if (authenticate(d, c, m, "bad-hello") < 0)
		return -1;
	if ((model && !nf_board_model_valid(model)) || (serial && !nf_board_serial_valid(serial)))
		return refuse(d, c, "bad-hello", c->mac);
	/* Every connection can add a job and 1000 lines: bound them per worker. */
	if (store_trim_worker(d->st, c->mac, JOBS_KEPT, EVENTS_KEPT) < 0)
		nf_warn("cannot trim the history of %s, ignoring", c->mac);
	if (e->state != NF_WORKER_ENROLLED)
		return reply_simple(c, "NOJOB", nf_worker_state_name(e->state));
	/* A reconnect names its job: resume it, or say it is done already. */
	if (nf_msg_get_u64(m, "job", 1, UINT64_MAX, &job_id) == 0 && store_job_get(d->st, job_id, &j) == 0 &&
	    strcmp(j.mac, c->mac) == 0) {
		if (j.state == NF_JOB_RUNNING) {
			nf_info("%s resumed job %llu from %s", c->mac, (unsigned long long)job_id, c->peer);
			return send_job(d, c, &j, 0);
		}
		if (j.state == NF_JOB_DONE) {
			c->job = job_id; /* a DONE retried after we crashed: answered in on_done */
			return reply_simple(c, "NOJOB", "done");
		}
	}
	if (e->attempts >= d->max_attempts) {
		store_set_state(d->st, c->mac, NF_WORKER_FAILED, e->last_error);
		return reply_simple(c, "NOJOB", "too-many-attempts");
	}
	nf_msg_get_u64(m, "target_bytes", 0, UINT64_MAX, &tbytes);
	if ((r = store_job_new(d->st, c->mac, e->image, target, tbytes, &job_id)) < 0 ||
	    store_job_get(d->st, job_id, &j) < 0) {
		nf_err("cannot record a job for %s: %s", c->mac, nf_strerror(r));
		return -1;
	}
	store_job_abandon_others(d->st, c->mac, job_id);
	store_event(d->st, c->mac, NF_EVENT_JOB, e->image);
	if (model || serial) {
		snprintf(board, sizeof(board), "%s%s%s", model ? model : "unknown board", serial ? ", serial " : "",
			 serial ? serial : "");
		store_event(d->st, c->mac, NF_EVENT_BOARD, board);
	}
	nf_info("%s (%s%s%s) starts job %llu: image '%s'", c->mac, c->peer, board[0] ? ", " : "", board,
		(unsigned long long)job_id, e->image);
	return send_job(d, c, &j, 1);
}

static int require_job(struct daemon *d, struct conn *c, const struct nf_msg *m, struct job *j)
{
	uint64_t id;

	if (!c->authed || nf_msg_get_u64(m, "id", 1, UINT64_MAX, &id) < 0 || id != c->job ||
	    store_job_get(d->st, id, j) < 0 || strcmp(j->mac, c->mac) != 0)
		return -1;
	return 0;
}

/* A decimal from the wire in [0, max]: finite, digits and one '.', nothing
 * else (no exponent, no nan/inf, no sign). Returns 0 or -EINVAL. */
static int parse_decimal(const char *s, double max, double *out)
{
	size_t digits = strspn(s, "0123456789"), frac = 0;
	char *end;

	if (s[digits] == '.')
		frac = strspn(s + digits + 1, "0123456789") + 1;
	if (digits == 0 || digits + frac != strlen(s) || digits > 12)
		return -EINVAL;
	*out = strtod(s, &end);
	return *end == '\0' && isfinite(*out) && *out >= 0 && *out <= max ? 0 : -EINVAL;
}

static int on_progress(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	const char *stage_s = nf_msg_get(m, "stage"), *mbps_s = nf_msg_get(m, "mbps");
	uint64_t done = 0, total = 0, id = 0;
	enum nf_stage stage = NF_STAGE_NONE;
	double mbps = 0;
	time_t now = time(NULL);

	if (!c->authed || !c->job || !stage_s || nf_stage_parse(stage_s, &stage) < 0 ||
	    (stage != NF_STAGE_WRITE && stage != NF_STAGE_VERIFY && stage != NF_STAGE_FINALIZE) ||
	    nf_msg_get_u64(m, "id", 1, UINT64_MAX, &id) < 0 || id != c->job ||
	    nf_msg_get_u64(m, "done", 0, UINT64_MAX, &done) < 0 || nf_msg_get_u64(m, "total", 0, UINT64_MAX, &total) < 0 ||
	    (mbps_s && parse_decimal(mbps_s, 100000, &mbps) < 0))
		return refuse(d, c, "bad-progress", c->mac);
	if (now - c->progress_saved >= PROGRESS_SAVE) {
		store_job_progress(d->st, c->job, stage, done, total, mbps);
		c->progress_saved = now;
	}
	return 0;
}

/* Starts the hooks of ev for c's worker (hooks.h), never waiting for
 * them. job may be NULL. */
static void run_hooks(struct daemon *d, struct conn *c, enum nf_hook_event ev, const struct job *j,
		      const char *result, const char *reason, uint64_t bytes, double seconds)
{
	struct enrollment e;
	struct hook_facts f = { .mac = c->mac, .result = result, .reason = reason, .bytes = bytes,
				.seconds = seconds, .job = j ? j->id : c->job };
	int r;

	if (!d->netflash_bin[0])
		return;
	if (store_get(d->st, c->mac, &e) == 0) {
		f.hostname = e.hostname;
		f.image = e.image;
		f.attempts = e.attempts;
		f.worker_state = nf_worker_state_name(e.state);
	}
	if ((r = master_hooks_start(&d->m, d->netflash_bin, ev, &f, STDERR_FILENO)) < 0)
		nf_warn("%s: cannot start the %s hooks: %s", c->mac, nf_hook_event_name(ev), nf_strerror(r));
}

/* Counts a failed attempt; marks the worker failed after the last one. */
static void count_failure(struct daemon *d, struct conn *c, enum nf_job_state state, const char *reason,
			  uint64_t bytes, double seconds)
{
	int n;

	store_job_end(d->st, c->job, state, reason, bytes, seconds);
	n = store_add_attempt(d->st, c->mac, reason);
	store_event(d->st, c->mac, state == NF_JOB_KEPT ? NF_EVENT_JOB_KEPT : NF_EVENT_JOB_FAILED, reason);
	if (n >= (int)d->max_attempts) {
		store_set_state(d->st, c->mac, NF_WORKER_FAILED, reason);
		nf_warn("%s failed %d times (last: %s); no more jobs until re-enrolled", c->mac, n, reason);
	}
	run_hooks(d, c, NF_HOOK_FAILED, NULL, nf_job_state_name(state), reason, bytes, seconds);
}

/* Releases c's worker after job j's verified DONE (release.c). Returns 0,
 * -EAGAIN when the worker is to send DONE again (nothing is lost: the lock
 * was busy, or the intent stays for recovery), or -errno. */
static int release(struct daemon *d, struct conn *c, const struct job *j, uint64_t bytes, double seconds)
{
	/* Never wait in the loop: a command holding the lock (enroll, image
	 * rm) makes this DONE wait for the worker's retry instead. */
	const struct release rel = {
		.mac = c->mac, .lock = RELEASE_LOCK_TRY, .job = j->id, .bytes = bytes, .seconds = seconds,
		.event = { "verified DONE", "verified DONE; no tftp dir" },
	};
	char why[700];
	int r = release_worker(&d->m, d->st, &rel, why, sizeof(why));

	if (r == -EBUSY) {
		nf_warn("%s: verified, but %s; the worker will send DONE again", c->mac, why);
		return -EAGAIN;
	}
	if (r < 0)
		nf_err("%s: verified, but %s", c->mac, why);
	return r < 0 ? r : 0;
}

/* The worker must have written (and read back) exactly the patch we hold
 * for it: DONE's patch= is its digest. Returns 0 or -1 with reason set. */
static int check_patch(struct daemon *d, struct conn *c, const struct nf_manifest *man, const char *claim,
		       char *reason, size_t cap)
{
	struct nf_patch p;
	const char *why = NULL;
	uint8_t want[32], got[32];
	int r = 0;

	nf_patch_init(&p);
	if (load_patch(d, c->mac, man, &p, &why) < 0) {
		snprintf(reason, cap, "%s", why);
		return -1;
	}
	if (p.n) {
		nf_patch_digest(&p, want);
		if (!claim) {
			snprintf(reason, cap, "patch-missing");
			r = -1;
		} else if (nf_parse_hex(claim, got, 32) < 0 || memcmp(want, got, 32) != 0) {
			snprintf(reason, cap, "patch-mismatch");
			r = -1;
		}
	} else if (claim) {
		snprintf(reason, cap, "patch-unexpected");
		r = -1;
	}
	nf_patch_free(&p);
	return r;
}

static int on_done(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	char reason[128];
	const char *sha_s = nf_msg_get(m, "sha256"), *sec_s = nf_msg_get(m, "seconds");
	struct nf_manifest man;
	uint8_t sha[32];
	uint64_t bytes = 0;
	double seconds = 0;
	struct job j;
	int r;

	if (require_job(d, c, m, &j) < 0 || !sha_s || nf_parse_hex(sha_s, sha, 32) < 0 ||
	    nf_msg_get_u64(m, "bytes", 0, UINT64_MAX, &bytes) < 0 || !sec_s ||
	    parse_decimal(sec_s, 1e7, &seconds) < 0)
		return refuse(d, c, "bad-done", c->mac);
	if (j.state == NF_JOB_DONE)
		return reply_simple(c, "RELEASED", "already"); /* a retry after our crash: released once */
	if (j.state != NF_JOB_RUNNING)
		return reply_simple(c, "KEPT", "job-not-running");
	if ((r = master_read_manifest(&d->m, j.image, &man)) < 0) {
		/* The master's fault (an image removed, a damaged manifest, no fds),
		 * never the worker's: no attempt is counted, the job stays open. */
		nf_err("%s job %llu: cannot read the manifest of image '%s': %s; the job stays open", c->mac,
		       (unsigned long long)j.id, j.image, nf_strerror(r));
		return reply_simple(c, "KEPT", r == -ENOENT ? "image-manifest-missing" : "master-error");
	}
	/* Never trust a claim of success: the digest must be the catalog's. */
	if (memcmp(sha, man.sha256, 32) != 0 || bytes != man.image_size) {
		int digest_ok = memcmp(sha, man.sha256, 32) == 0;

		snprintf(reason, sizeof(reason), "%s", digest_ok ? "size-mismatch" : "digest-mismatch");
		nf_warn("%s job %llu: DONE with a %s; TFTP dir kept", c->mac, (unsigned long long)j.id,
			digest_ok ? "wrong size" : "digest that is not the image's");
		count_failure(d, c, NF_JOB_KEPT, reason, bytes, seconds);
		return reply_simple(c, "KEPT", reason);
	}
	if (check_patch(d, c, &man, nf_msg_get(m, "patch"), reason, sizeof(reason)) < 0) {
		nf_warn("%s job %llu: DONE without the provisioning patch's digest (%s); TFTP dir kept", c->mac,
			(unsigned long long)j.id, reason);
		count_failure(d, c, NF_JOB_KEPT, reason, bytes, seconds);
		return reply_simple(c, "KEPT", reason);
	}
	if ((r = release(d, c, &j, bytes, seconds)) == -EAGAIN)
		return -1; /* closed unanswered: the worker reconnects and sends DONE again */
	if (r < 0)
		return reply_simple(c, "KEPT", "release-failed");
	nf_info("%s job %llu verified (%llu bytes in %.1f s): released", c->mac, (unsigned long long)j.id,
		(unsigned long long)bytes, seconds);
	run_hooks(d, c, NF_HOOK_DONE, &j, "done", NULL, bytes, seconds);
	return reply_simple(c, "RELEASED", NULL);
}

static int on_fail(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	const char *stage_s = nf_msg_get(m, "stage"), *why = nf_msg_get(m, "reason");
	enum nf_stage stage = NF_STAGE_NONE;
	char reason[300], q[256];
	struct job j;

	if (require_job(d, c, m, &j) < 0 || !stage_s || nf_stage_parse(stage_s, &stage) < 0 ||
	    stage == NF_STAGE_NONE || !why)
		return refuse(d, c, "bad-fail", c->mac);
	if (j.state != NF_JOB_RUNNING)
		return reply_simple(c, "KEPT", "job-not-running");
	snprintf(reason, sizeof(reason), "%s: %.250s", nf_stage_name(stage), why);
	nf_warn("%s job %llu failed at %s", c->mac, (unsigned long long)j.id, nf_quote(q, sizeof(q), reason));
	count_failure(d, c, NF_JOB_FAILED, reason, 0, 0);
	if (stage == NF_STAGE_PROBE || stage == NF_STAGE_READ_ONLY) {
		/* A fake or write-protected card stays so: no retries; a new card
		 * needs a new enroll. */
		store_set_state(d->st, c->mac, NF_WORKER_FAILED, reason);
		nf_warn("%s: its card %s; marked failed (replace the card, enroll again)", c->mac,
			stage == NF_STAGE_PROBE ? "failed the capacity probe" : "cannot be written (read-only)");
	}
	return reply_simple(c, "KEPT", "failure-recorded");
}

static int on_log(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	const char *line = nf_msg_get(m, "line");
	char q[NF_PROTO_VALUE_MAX * 4 + 8];
	uint64_t id;

	if (!c->authed || !line || nf_msg_get_u64(m, "id", 1, UINT64_MAX, &id) < 0 || id != c->job)
		return refuse(d, c, "bad-log", c->mac);
	if (c->log_lines++ < LOG_LINES_MAX)
		store_event(d->st, c->mac, NF_EVENT_LOG, nf_quote(q, sizeof(q), line));
	return 0;
}

/* Card health from the worker: its identity, the capacity probe's verdict,
 * write stalls, a card slower than the floor. Kept in the worker's history. */
static int on_card(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	const char *what_s = nf_msg_get(m, "what"), *text = nf_msg_get(m, "text");
	char q[NF_PROTO_VALUE_MAX * 4 + 8], ev[NF_PROTO_VALUE_MAX * 4 + 32];
	enum nf_card_finding what;
	uint64_t id;

	if (!c->authed || !what_s || !text || nf_card_finding_parse(what_s, &what) < 0 ||
	    nf_msg_get_u64(m, "id", 1, UINT64_MAX, &id) < 0 || id != c->job)
		return refuse(d, c, "bad-card", c->mac);
	if (c->log_lines++ < LOG_LINES_MAX) {
		snprintf(ev, sizeof(ev), "%s: %s", nf_card_finding_name(what), nf_quote(q, sizeof(q), text));
		store_event(d->st, c->mac, NF_EVENT_CARD, ev);
	}
	return 0;
}

/* The worker protocol's verbs (docs/protocol.md): which handler, and
 * whether the connection must have said HELLO with a current token first. */
static const struct {
	const char *verb;
	int needs_auth;
	int (*handler)(struct daemon *d, struct conn *c, const struct nf_msg *m);
} verbs[] = {
	{ "HELLO", 0, on_hello },
	{ "QUERY", 0, on_query },
	{ "PROVE", 0, on_prove },
	{ "PROGRESS", 1, on_progress },
	{ "DONE", 1, on_done },
	{ "FAIL", 1, on_fail },
	{ "LOG", 1, on_log },
	{ "CARD", 1, on_card },
};

static int dispatch(struct daemon *d, struct conn *c, const char *line, size_t len)
{
	struct nf_msg m;

	if (nf_msg_parse(line, len, &m) < 0)
		return refuse(d, c, "malformed", NULL);
	c->last_msg = time(NULL);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(m.verb, verbs[i].verb) != 0)
			continue;
		if (verbs[i].needs_auth && !c->authed)
			return refuse(d, c, "hello-first", m.verb);
		if (verbs[i].needs_auth && still_current(d, c) < 0)
			return -1;
		return verbs[i].handler(d, c, &m);
	}
	return c->authed ? refuse(d, c, "unknown-verb", m.verb) : refuse(d, c, "hello-first", m.verb);
}

static void on_readable(struct daemon *d, struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
		char *nl;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			conn_close(d, c);
			return;
		}
		c->len += (size_t)n;
		while ((nl = memchr(c->buf, '\n', c->len))) {
			size_t len = (size_t)(nl - c->buf);

			if (dispatch(d, c, c->buf, len) < 0) {
				conn_close(d, c);
				return;
			}
			memmove(c->buf, nl + 1, c->len - len - 1);
			c->len -= len + 1;
		}
		if (c->len == sizeof(c->buf)) {
			refuse(d, c, "line-too-long", NULL);
			conn_close(d, c);
			return;
		}
		c->partial_since = c->len ? (c->partial_since ? c->partial_since : time(NULL)) : 0;
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Out of fds: the listener stays readable, so accepting again at once would
 * spin. Take it out of the loop for a moment instead (resume_accept()). */
static void pause_accept(struct daemon *d, int err)
{
	struct epoll_event ev = { .events = 0, .data.ptr = NULL };

	epoll_ctl(d->epfd, EPOLL_CTL_MOD, d->lfd, &ev);
	d->accept_resume_ms = now_ms() + ACCEPT_PAUSE_MS;
	if (refusal_loggable(d))
		nf_warn("cannot accept connections: %s (%u open); pausing %u ms", strerror(err), d->nconns,
			ACCEPT_PAUSE_MS);
}

static void resume_accept(struct daemon *d)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	if (d->accept_resume_ms && now_ms() >= d->accept_resume_ms) {
		epoll_ctl(d->epfd, EPOLL_CTL_MOD, d->lfd, &ev);
		d->accept_resume_ms = 0;
	}
}

/* Connections from addr; loopback (local processes) is not capped. */
static unsigned conns_from(const struct daemon *d, struct in_addr addr)
{
	unsigned n = 0;

	if ((ntohl(addr.s_addr) >> 24) == 127)
		return 0;
	for (unsigned i = 0; i < d->nconns; i++)
		n += d->conns[i]->addr.s_addr == addr.s_addr;
	return n;
}

static void on_accept(struct daemon *d)
{
	for (;;) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		int fd = accept4(d->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN };
		struct conn *c;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				pause_accept(d, errno);
			return;
		}
		if (d->nconns >= d->max_conns || conns_from(d, sa.sin_addr) >= MAX_PER_ADDR ||
		    !(c = calloc(1, sizeof(*c)))) {
			if (refusal_loggable(d))
				nf_warn("dropped a connection from %s: %s", inet_ntoa(sa.sin_addr),
					d->nconns >= d->max_conns ? "too many connections" : "too many from that address");
			close(fd);
			continue;
		}
		c->fd = fd;
		c->addr = sa.sin_addr;
		c->opened = c->last_msg = time(NULL);
		snprintf(c->peer, sizeof(c->peer), "%s:%u", inet_ntoa(sa.sin_addr), ntohs(sa.sin_port));
		ev.data.ptr = c;
		if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		d->conns[d->nconns++] = c;
	}
}

/* Closes connections past their deadline: no HELLO, idle, or half a line for too long. */
static void sweep(struct daemon *d)
{
	time_t now = time(NULL);

	nf_actions_reap(d->actions);
	for (unsigned i = 0; i < d->nconns;) {
		struct conn *c = d->conns[i];
		const char *why = NULL;

		if (!c->authed && now - c->opened > (time_t)(d->slow_timeout * 3 / 2))
			why = "no HELLO in time";
		else if (now - c->last_msg > IDLE_TIMEOUT)
			why = "idle";
		else if (c->partial_since && now - c->partial_since > (time_t)d->slow_timeout)
			why = "half a line for too long";
		if (why) {
			nf_dbg("closed %s: %s", c->peer, why);
			conn_close(d, c);
			continue; /* conn_close moved another into slot i */
		}
		i++;
	}
}

/* A command killed mid-change leaves an intent: finish it within half a
 * minute even if no other command runs, never waiting for the lock. */
static void recover_now_and_then(struct daemon *d)
{
	char dir[PATH_MAX];
	time_t now = time(NULL);
	DIR *dp;
	struct dirent *e;
	int pending = 0;

	if (now - d->last_recovery < 30)
		return;
	d->last_recovery = now;
	master_path(&d->m, dir, sizeof(dir), "state/intent");
	if (!(dp = opendir(dir)))
		return;
	while (!pending && (e = readdir(dp)))
		pending = e->d_name[0] != '.';
	closedir(dp);
	if (pending && master_trylock(&d->m) == 0)
		master_unlock(&d->m);
}

static int listen_on(struct daemon *d, const char *spec)
{
	struct sockaddr_in sa;
	int one = 1;

	if (nf_parse_ipv4_port(spec, &sa) < 0)
		return -EINVAL;
	d->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->lfd < 0)
		return -errno;
	setsockopt(d->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(d->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(d->lfd, 512) < 0)
		return -errno;
	return 0;
}

static int set_nfs_url(struct daemon *d, const char *url)
{
	const char *q = strchr(url, '?');
	size_t plen = q ? (size_t)(q - url) : strlen(url);

	if (strncmp(url, "nfs://", 6) != 0 || plen >= sizeof(d->nfs_prefix) || (q && strlen(q + 1) >= sizeof(d->nfs_query)))
		return -EINVAL;
	memcpy(d->nfs_prefix, url, plen);
	d->nfs_prefix[plen] = '\0';
	while (plen > 6 && d->nfs_prefix[plen - 1] == '/')
		d->nfs_prefix[--plen] = '\0';
	snprintf(d->nfs_query, sizeof(d->nfs_query), "%s", q ? q + 1 : "");
	return 0;
}

static int parse_args(struct daemon *d, int argc, char **argv, char *listen_spec, size_t cap)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' }, { "listen", required_argument, NULL, 'l' },
		{ "nfs-url", required_argument, NULL, 'n' }, { "max-attempts", required_argument, NULL, 'a' },
		{ "slow-timeout", required_argument, NULL, 's' }, { "peer-check", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' }, { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' }, { "http", required_argument, NULL, 'H' }, { 0 },
	};
	const char *nfs = NULL;
	char defurl[1200];
	uint64_t v;
	int opt;

	listen_spec[0] = '\0';
	while ((opt = getopt_long(argc, argv, "r:l:n:a:s:p:vhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			if (strlen(optarg) == 0 || strlen(optarg) >= sizeof(d->m.root) - 64) {
				nf_err("--root is empty or too long");
				return 2;
			}
			snprintf(d->m.root, sizeof(d->m.root), "%s", optarg);
			break;
		case 'l': snprintf(listen_spec, cap, "%s", optarg); break;
		case 'n': nfs = optarg; break;
		case 'H': d->http_spec = optarg; break;
		case 'a':
			if (nf_parse_u64(optarg, 1, 1000, &v) < 0) {
				nf_err("invalid --max-attempts '%s': expected 1..1000", optarg);
				return 2;
			}
			d->max_attempts = (unsigned)v;
			break;
		case 's':
			if (nf_parse_u64(optarg, 1, 3600, &v) < 0) {
				nf_err("invalid --slow-timeout '%s': expected 1..3600 seconds", optarg);
				return 2;
			}
			d->slow_timeout = (unsigned)v;
			break;
		case 'p':
			if (strcmp(optarg, "neigh") != 0 && strcmp(optarg, "off") != 0) {
				nf_err("invalid --peer-check '%s': expected neigh or off", optarg);
				return 2;
			}
			d->peer_check = strcmp(optarg, "neigh") == 0;
			break;
		case 'v': nf_log_setup("netflashd", NF_LOG_DEBUG); break;
		case 'h': fputs(usage, stdout); exit(0);
		case 'V': printf("netflashd %s\n", NETFLASH_VERSION); exit(0);
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind != argc) {
		nf_err("netflashd takes no arguments (see --help)");
		return 2;
	}
	if (master_check_init(&d->m, defurl, sizeof(defurl)) < 0) {
		nf_err("%s", defurl);
		return 1;
	}
	if (!listen_spec[0])
		snprintf(listen_spec, cap, "0.0.0.0:%u", d->m.conf.port);
	if (!nfs) {
		snprintf(defurl, sizeof(defurl), "nfs://%s%s/images?version=3", d->m.conf.server_ip, d->m.root);
		nfs = defurl;
	}
	if (set_nfs_url(d, nfs) < 0) {
		nf_err("invalid --nfs-url '%s': expected nfs://SERVER/EXPORT[?ARGS]", nfs);
		return 2;
	}
	return 0;
}

/* The soft fd limit up to the hard one (a unit without LimitNOFILE gets
 * 1024), and a connection cap that leaves FD_RESERVE of them for files. */
static void size_for_fds(struct daemon *d)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			nf_warn("cannot raise the open-file limit: %s, ignoring", strerror(errno));
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		rl.rlim_cur = 1024;
	d->max_conns = rl.rlim_cur > MAX_CONNS + FD_RESERVE ? MAX_CONNS
		       : rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)(rl.rlim_cur - FD_RESERVE) : (unsigned)(rl.rlim_cur / 2);
}

/* ROOT/state/NAME: a 32-hex-digit bearer token, made (0600) if missing.
 * Returns 0 or -errno. */
static int http_token(struct daemon *d, const char *name, char *tok, size_t cap)
{
	char path[PATH_MAX], rel[64];
	ssize_t n;
	int r;

	snprintf(rel, sizeof(rel), "state/%s", name);
	if (master_path(&d->m, path, sizeof(path), rel) < 0)
		return -ENAMETOOLONG;
	n = nf_read_file(path, tok, cap - 1);
	if (n >= 32) {
		tok[n] = '\0';
		tok[strcspn(tok, "\n")] = '\0';
		return 0;
	}
	if ((r = nf_random_hex(tok, 16)) < 0)
		return r;
	tok[32] = '\0';
	return nf_write_file_atomic(path, tok, 32, 0600);
}

/* The dashboard. Returns 0 (also when the default port is taken: warned)
 * or -1 after logging. */
static int start_http(struct daemon *d)
{
	const char *spec = d->http_spec ? d->http_spec : "127.0.0.1:8070";
	char detail[160], tok[80] = "", admin[80] = "";
	struct sockaddr_in sa;
	int r;

	if (strcmp(spec, "off") == 0)
		return 0;
	if (nf_parse_ipv4_port(spec, &sa) < 0) {
		nf_err("invalid --http '%s': expected an IPv4 ADDR:PORT or off", spec);
		return -1;
	}
	/* Beyond loopback (127/8), every request needs the token. */
	if ((ntohl(sa.sin_addr.s_addr) >> 24) != 127 && (r = http_token(d, "http.token", tok, sizeof(tok))) < 0) {
		nf_err("cannot make the dashboard's token (state/http.token): %s", nf_strerror(r));
		return -1;
	}
	/* Actions (docs/api.md) always need the admin token, on loopback too. */
	if ((r = http_token(d, "admin.token", admin, sizeof(admin))) < 0) {
		nf_warn("cannot make the API's admin token (state/admin.token): %s; the API takes no actions",
			nf_strerror(r));
		admin[0] = '\0';
	}
	if (admin[0] && d->netflash_bin[0] && !(d->actions = nf_actions_new(&d->m, d->netflash_bin)))
		return -1;
	r = nf_http_start(&d->http, &d->m, &sa, tok[0] ? tok : NULL, d->actions ? admin : NULL, d->actions, detail,
			  sizeof(detail));
	if (r < 0 && !d->http_spec) {
		nf_warn("no dashboard on %s: %s, ignoring", spec, detail);
		return 0;
	}
	if (r < 0) {
		nf_err("--http %s: %s", spec, detail);
		return -1;
	}
	nf_info("dashboard and API on http://%s/%s", spec, tok[0] ? " (bearer token in state/http.token)" : "");
	return 0;
}

int main(int argc, char **argv)
{
	static struct daemon d = { .m = { .root = NF_DEFAULT_ROOT, .lock_fd = -1, .tell = nf_log_tell }, .max_attempts = 3,
				   .slow_timeout = 10,
				   .lfd = -1, .peer_check = 1, .neigh_table = NF_NEIGH_TABLE };
	struct sigaction sa = { .sa_handler = on_signal };
	char listen_spec[128];
	int r;

	nf_log_setup("netflashd", NF_LOG_INFO);
	if ((r = parse_args(&d, argc, argv, listen_spec, sizeof(listen_spec))) != 0)
		return r;
	size_for_fds(&d);
	/* Finish what a kill left half done before serving anyone. */
	if ((r = master_lock(&d.m)) < 0) {
		char why[PATH_MAX + 100];

		master_lock_error(&d.m, r, why, sizeof(why));
		nf_err("%s", why);
		return 1;
	}
	master_unlock(&d.m);
	if ((r = master_open_store(&d.m, &d.st)) < 0) {
		nf_err("cannot open the state database %s/state/netflash.db: %s", d.m.root, nf_strerror(r));
		return 1;
	}
	store_set_sync(d.st, 0);
	/* A command's transaction must not freeze the loop for long. */
	store_set_busy_timeout(d.st, 200);
	if ((r = listen_on(&d, listen_spec)) < 0) {
		nf_err("cannot listen on '%s': %s", listen_spec, nf_strerror(r));
		return 1;
	}
	d.epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.lfd, &lev);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	nf_info("listening on %s; images at %s/<file>%s%s; max %u attempts, %u connections", listen_spec,
		d.nfs_prefix, d.nfs_query[0] ? "?" : "", d.nfs_query, d.max_attempts, d.max_conns);
	if ((r = master_netflash_path(d.netflash_bin, sizeof(d.netflash_bin))) < 0 || access(d.netflash_bin, X_OK) < 0) {
		nf_warn("no netflash program next to netflashd (%s): no hooks, no API actions", d.netflash_bin);
		d.netflash_bin[0] = '\0';
	}
	if (start_http(&d) < 0)
		return 1;
	if (!d.peer_check)
		nf_warn("--peer-check=off: a worker is who its token says; any host that reads a token (TFTP "
			"serves it to the whole LAN) can take that worker's job and its provisioning secrets");
	while (!stop) {
		struct epoll_event evs[64];
		int n = epoll_wait(d.epfd, evs, 64, d.accept_resume_ms ? ACCEPT_PAUSE_MS / 5 : 1000);

		resume_accept(&d);
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr)
				on_accept(&d);
			else
				on_readable(&d, evs[i].data.ptr);
		}
		sweep(&d);
		recover_now_and_then(&d);
		nf_http_set_connections(d.http, (int)d.nconns);
	}
	nf_info("stopping");
	nf_http_stop(d.http);
	nf_actions_free(d.actions);
	while (d.nconns)
		conn_close(&d, d.conns[0]);
	store_close(d.st);
	return 0;
}
