/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflashd's side of the worker protocol (docs/protocol.md): the verb
 * table, with the states each verb is taken in, and its handlers: HELLO
 * (a job, resumed or new, with its provisioning patch), PROGRESS, LOG,
 * CARD, FAIL, and DONE, whose digest must be the catalog's before the
 * worker is released (release.c); QUERY and PROVE for netflash-agent.
 * Handlers return as daemon_int.h says; they log, conn.c sends. */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon_int.h"
#include "fileutil.h"
#include "hmac.h"
#include "hooks.h"
#include "lifecycle.h"
#include "log.h"
#include "manifest.h"
#include "mcast.h"
#include "neigh.h"
#include "parse.h"
#include "patch.h"
#include "provision.h"
#include "recover.h"
#include "release.h"

#define LOG_LINES_MAX 1000     /* worker console lines kept per connection */
#define JOBS_KEPT 200          /* per worker: a HELLO makes a job row */
#define EVENTS_KEPT 5000       /* per worker: LOG, CARD, job events */
#define PROGRESS_SAVE 2        /* s: progress goes to the store at most this often */
#define PROGRESS_PER_S 20      /* PROGRESS lines a second a job may send; ours send
				* about one (jobrun.c): more is a flood, refused */

/* The worker's provisioning patch: 0 with p empty when it has none, 0
 * with p loaded, or -errno after logging, with why the NOJOB or KEPT
 * reason (-ESTALE: made for another image). */
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
		return r;
	}
	if (memcmp(p->base_sha256, man->sha256, 32) != 0) {
		nf_err("%s: its provisioning patch was made for an earlier version of image '%s'; enroll it again", mac,
		       man->name);
		nf_patch_free(p);
		*why = "provision-stale";
		return -ESTALE;
	}
	return 0;
}

/* JOB then, for a new job, the PATCH lines: one send into a socket buffer
 * made large enough for NF_PATCH_MAX as hex. */
static int send_job_lines(struct conn *c, const struct nf_msg *job, const struct nf_patch *p)
{
	size_t cap = (NF_PROTO_LINE_MAX + 1) * (2 + p->n + p->bytes / NF_PATCH_LINE);
	char *buf = malloc(cap);
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
			struct nf_patch_msg pm = { .id = c->job, .off = p->ext[i].off + o };
			struct nf_msg m;

			nf_format_hex(p->ext[i].data + o, chunk, pm.data);
			if (nf_msg_write(&m, &nf_patch_vspec, &pm) < 0 || cap - len < NF_PROTO_LINE_MAX + 1 ||
			    (n = nf_msg_format(&m, buf + len, cap - len)) < 0)
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

static int secrets_once(struct daemon *d, struct conn *c);
static void note_exposed(struct daemon *d, const struct conn *c, char *why, size_t cap);

/* Sends job j (fresh: with its patch) and makes c IN_JOB. Returns 0, or
 * -errno after NOJOB (image or patch unusable) or a failed send, logged. */
static int send_job(struct daemon *d, struct conn *c, const struct job *j, int fresh)
{
	struct nf_job_msg jm = { .id = j->id };
	struct nf_manifest man;
	struct nf_patch patch;
	const char *why = NULL;
	struct nf_msg m;
	int r, n;

	if ((r = master_read_manifest(&d->m, j->image, &man)) < 0) {
		nf_err("job %llu: the manifest of image '%s' is missing or damaged", (unsigned long long)j->id, j->image);
		conn_reply_simple(c, "NOJOB", "image-missing");
		return r;
	}
	nf_patch_init(&patch);
	if ((r = load_patch(d, c->mac.s, &man, &patch, &why)) < 0) {
		store_job_end(d->st, j->id, NF_JOB_ABANDONED, why, 0, 0);
		conn_reply_simple(c, "NOJOB", why);
		return r;
	}
	n = snprintf(jm.url, sizeof(jm.url), "%s/%s%s%s", d->nfs_prefix, man.file, d->nfs_query[0] ? "?" : "",
		     d->nfs_query);
	snprintf(jm.format, sizeof(jm.format), "%s", nf_format_name(man.format));
	jm.size = man.image_size;
	memcpy(jm.sha256, man.sha256, 32);
	snprintf(jm.image, sizeof(jm.image), "%s", man.name);
	jm.disk = man.disk;
	c->job = j->id;
	c->state = CONN_IN_JOB;
	/* A resumed job already has its patch: it came with the first JOB. */
	if (!fresh)
		nf_patch_free(&patch);
	if (patch.n && (r = secrets_once(d, c)) < 0) {
		nf_patch_free(&patch);
		store_job_end(d->st, j->id, NF_JOB_ABANDONED, r == -EACCES ? "contested" : "master-error", 0, 0);
		conn_reply_simple(c, "NOJOB", r == -EACCES ? "contested" : "master-error");
		return r;
	}
	if (patch.n) {
		nf_patch_digest(&patch, jm.patch_sha256);
		jm.patch = patch.bytes;
	}
	/* A fresh job of a worker set to multicast joins its image's session,
	 * last, so that no failure above leaves a member behind. */
	if (fresh && mcast_join(d, c->mac.s, c->token, j->id, &man, jm.url, sizeof(jm.url)) < 0)
		nf_warn("%s: no multicast session (see above): job %llu takes NFS", c->mac.s, (unsigned long long)j->id);
	r = n < 0 || (size_t)n >= sizeof(jm.url) ? -EMSGSIZE : nf_msg_write(&m, &nf_job_vspec, &jm);
	if (r == 0)
		r = send_job_lines(c, &m, &patch);
	nf_patch_free(&patch);
	if (r < 0) {
		nf_warn("%s: cannot send job %llu: %s", c->mac.s, (unsigned long long)j->id, nf_strerror(r));
		mcast_job_ended(d, c->mac.s, c->token, j->id, 0, "its JOB could not be sent");
	}
	return r;
}

/* The HELLO's MAC must be the MAC behind the connection's address in the
 * kernel's neighbour table: what a host that is not that worker cannot
 * show without taking the worker's MAC itself (docs/security.md).
 * Returns 0, or -errno after refusing (ERR refused or master-error). */
static int check_peer(struct daemon *d, struct conn *c)
{
	struct nf_mac seen_m;
	uint8_t seen[6];
	char dev[32];
	int r = neigh_lookup(d->neigh_table, c->addr, seen, dev, sizeof(dev));

	if (r == -ENOENT)
		return conn_refuse_because(d, c, "refused", c->mac.s, "no neighbour (ARP) entry for its address, so it is "
					   "not on the master's LAN (routed workers need --peer-check=off)");
	if (r < 0) {
		nf_err("cannot read the neighbour table %s: %s; refusing '%s'", d->neigh_table, nf_strerror(r), c->mac.s);
		conn_reply_simple(c, "ERR", "master-error");
		return r;
	}
	if (memcmp(seen, c->mac.b, 6) != 0) {
		nf_mac_set(&seen_m, seen);
		return conn_refuse_because(d, c, "refused", c->mac.s,
					   "its address belongs to %s on %s, not to the MAC it names", seen_m.s, dev);
	}
	return 0;
}

/* Checks m's mac and token against the enrollment (into d->e) and makes c
 * AUTHED. Returns 0, or -errno after refusing (bad: the reason for a
 * malformed one). */
static int authenticate(struct daemon *d, struct conn *c, const struct nf_msg *m, const char *bad)
{
	const char *mac_s = nf_msg_get(m, "mac"), *token = nf_msg_get(m, "token");
	struct enrollment *e = &d->e;
	int r;

	if (!mac_s || !token || nf_mac_parse(mac_s, &c->mac) < 0)
		return conn_refuse(d, c, bad, mac_s);
	if (store_get(d->st, c->mac.s, e) < 0)
		return conn_refuse_because(d, c, "refused", c->mac.s, "not enrolled");
	/* Constant time: a stray host learns nothing from timing. */
	if (strlen(token) != strlen(e->token) || CRYPTO_memcmp(token, e->token, strlen(e->token)) != 0)
		return conn_refuse_because(d, c, "refused", c->mac.s, "wrong token (not this MAC's current enrollment)");
	if (d->peer_check && (r = check_peer(d, c)) < 0)
		return r;
	snprintf(c->token, sizeof(c->token), "%s", e->token);
	c->state = CONN_AUTHED;
	return 0;
}

/* Every message after HELLO speaks for the enrollment HELLO proved: an
 * enroll --force since (a new token) or a removed enrollment ends the
 * connection, whatever it had started. Returns 0 or -EPROTO after refusing. */
static int still_current(struct daemon *d, struct conn *c)
{
	struct enrollment *e = &d->e;

	if (store_get(d->st, c->mac.s, e) < 0 || strlen(e->token) != strlen(c->token) ||
	    CRYPTO_memcmp(e->token, c->token, strlen(c->token)) != 0)
		return conn_refuse_because(d, c, "stale-token", c->mac.s,
					   "its enrollment changed since its HELLO (stale-token)");
	return 0;
}

/* QUERY v=2: the agent's nonce in; our nonce and the proof that we hold the
 * token out (CHALLENGE); the agent's proof comes in PROVE. */
static int on_query_challenge(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	const char *mac_s = nf_msg_get(m, "mac"), *cnonce = nf_msg_get(m, "cnonce");
	struct enrollment *e = &d->e;
	char proof[65];
	struct nf_msg a;
	int r;

	if (!mac_s || nf_mac_parse(mac_s, &c->mac) < 0 || !cnonce || strlen(cnonce) != 32 ||
	    strspn(cnonce, "0123456789abcdef") != 32)
		return conn_refuse(d, c, "bad-query", mac_s);
	if (store_get(d->st, c->mac.s, e) < 0)
		return conn_refuse(d, c, "refused", c->mac.s);
	if (d->peer_check && (r = check_peer(d, c)) < 0)
		return r;
	if ((r = nf_random_hex(c->snonce, 16)) < 0 ||
	    (r = nf_query_proof(e->token, "master", c->mac.s, cnonce, c->snonce, "", proof)) < 0) {
		conn_reply_simple(c, "ERR", "master-error");
		return r;
	}
	snprintf(c->cnonce, sizeof(c->cnonce), "%s", cnonce);
	snprintf(c->token, sizeof(c->token), "%s", e->token);
	c->state = CONN_CHALLENGED;
	nf_msg_init(&a, "CHALLENGE");
	nf_msg_add(&a, "snonce", c->snonce);
	nf_msg_add(&a, "proof", proof);
	return conn_reply(c, &a);
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

	if (!got || nf_query_proof(c->token, "worker", c->mac.s, c->cnonce, c->snonce, "", want) < 0 ||
	    !nf_equal_ct(want, got))
		return conn_refuse(d, c, "refused", c->mac.s);
	if (store_get(d->st, c->mac.s, e) < 0 || !nf_equal_ct(e->token, c->token))
		return conn_refuse_because(d, c, "stale-token", c->mac.s,
					   "its enrollment changed during QUERY (stale-token)");
	enrolled = e->state == NF_WORKER_ENROLLED;
	nf_query_proof(c->token, enrolled ? "enrolled" : "nojob", c->mac.s, c->cnonce, c->snonce,
		       enrolled ? e->image : nf_worker_state_name(e->state), proof);
	nf_msg_init(&a, enrolled ? "ENROLLED" : "NOJOB");
	nf_msg_add(&a, enrolled ? "image" : "reason", enrolled ? e->image : nf_worker_state_name(e->state));
	nf_msg_add(&a, "proof", proof);
	conn_reply(c, &a);
	if (enrolled)
		store_event(d->st, c->mac.s, NF_EVENT_REIMAGE, "netflash-agent checked the enrollment; it makes the card non-bootable");
	return -ESHUTDOWN;
}

/* QUERY v=1, kept for agents from before v=2 (the token sent along): is
 * this enrollment current? Answered, then the connection is closed. */
static int on_query(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	struct nf_msg a;
	int r;

	if ((r = authenticate(d, c, m, "bad-query")) < 0)
		return r;
	if (d->e.state != NF_WORKER_ENROLLED) {
		conn_reply_simple(c, "NOJOB", nf_worker_state_name(d->e.state));
		return -ESHUTDOWN;
	}
	nf_msg_init(&a, "ENROLLED");
	nf_msg_add(&a, "image", d->e.image);
	conn_reply(c, &a);
	store_event(d->st, c->mac.s, NF_EVENT_REIMAGE, "netflash-agent checked the enrollment; it makes the card non-bootable");
	return -ESHUTDOWN;
}

/* ---- one claimant per job (docs/security.md) ------------------------------ */

static void run_hooks(struct daemon *d, struct conn *c, enum nf_hook_event ev, const struct job *j,
		      const char *result, const char *reason, uint64_t bytes, double seconds);

/* The claim on mac's current job, or NULL. */
static struct claim *claim_lookup(struct daemon *d, const char *mac)
{
	for (unsigned i = 0; i < d->nclaims; i++)
		if (strcmp(d->claims[i].mac, mac) == 0 && d->claims[i].token[0])
			return &d->claims[i];
	return NULL;
}

/* c's worker is contested (why: who the two claimants are): its state
 * says so with both peers, its history and the log too, and the contested
 * hooks run, once per enrollment. From now on nothing a worker says
 * releases it; the admin's release --force or a new enroll does. */
static void contest(struct daemon *d, struct conn *c, const char *why)
{
	struct claim *k = claim_lookup(d, c->mac.s);
	char detail[400];
	int r;

	if (k && k->contested)
		return; /* said once; its state, history and hooks have it */
	snprintf(detail, sizeof(detail), "contested: %s", why);
	r = worker_transition(&d->m, d->st, c->mac.s, NF_WEV_CONTEST, detail);
	if (r == -EPERM)
		return; /* released or re-enrolled meanwhile: no job to contest */
	if (r < 0)
		nf_err("%s: cannot record that it is contested (%s); its DONE is refused all the same", c->mac.s,
		       nf_strerror(r));
	if (k)
		k->contested = 1;
	store_event(d->st, c->mac.s, NF_EVENT_CONTEST, why);
	nf_warn("%s is contested: %s; it will not be released until release --force or a new enroll", c->mac.s,
		why);
	run_hooks(d, c, NF_HOOK_CONTESTED, NULL, "contested", why, 0, 0);
}

/* c's worker's claim: the slot of its MAC (a new enrollment's token
 * replaces the old claim), or NULL when the table is full. */
static struct claim *find_claim(struct daemon *d, const struct conn *c, int *fresh)
{
	struct claim *k = NULL;

	*fresh = 0;
	for (unsigned i = 0; i < d->nclaims && !k; i++)
		if (strcmp(d->claims[i].mac, c->mac.s) == 0)
			k = &d->claims[i];
	if (!k && d->nclaims < CLAIMS_MAX)
		k = &d->claims[d->nclaims++];
	/* Full: a claim its job's failure ended makes room. */
	for (unsigned i = 0; i < d->nclaims && !k; i++)
		if (!d->claims[i].token[0])
			k = &d->claims[i];
	if (!k)
		nf_warn("%s: the claims table is full (%d); its job is not claimed", c->mac.s, CLAIMS_MAX);
	if (k && (strcmp(k->mac, c->mac.s) != 0 || strcmp(k->token, c->token) != 0)) {
		memset(k, 0, sizeof(*k));
		snprintf(k->mac, sizeof(k->mac), "%s", c->mac.s);
		snprintf(k->token, sizeof(k->token), "%s", c->token);
		k->addr = c->addr;
		*fresh = 1;
	}
	return k;
}

/* The first HELLO with an enrollment's token claims its job from its
 * address; a HELLO from another address is a second claimant: both are
 * named and the worker contested. Returns 1 when c is that second
 * claimant, else 0. */
static int claim_job(struct daemon *d, struct conn *c)
{
	char first[INET_ADDRSTRLEN], why[300];
	struct claim *k;
	int fresh;
	char dev[32];

	if (!(k = find_claim(d, c, &fresh)))
		return 0;
	if (fresh) {
		k->have_seen = d->peer_check && neigh_lookup(d->neigh_table, c->addr, k->seen, dev, sizeof(dev)) == 0;
		return 0;
	}
	if (k->addr.s_addr == c->addr.s_addr)
		return 0;
	inet_ntop(AF_INET, &k->addr, first, sizeof(first));
	snprintf(why, sizeof(why), "a second host, %s, proved its token while its job is claimed by %s", c->peer, first);
	note_exposed(d, c, why, sizeof(why));
	contest(d, c, why);
	return 1;
}

/* c's job ended in a failure: the worker netboots again and claims its
 * next job afresh (its address may change with a new lease). Its
 * provisioning secrets stay with the address they went to. */
static void forget_claim(struct daemon *d, const struct conn *c)
{
	for (unsigned i = 0; i < d->nclaims; i++)
		if (strcmp(d->claims[i].mac, c->mac.s) == 0)
			d->claims[i].token[0] = '\0';
}

/* At DONE: the claimant's address must still be at the MAC its neighbour
 * entry held at HELLO (a forged ARP reply moves it). Returns 1 when it
 * moved (the worker is now contested), else 0. */
static int claim_moved(struct daemon *d, struct conn *c)
{
	struct claim *k = claim_lookup(d, c->mac.s);
	struct nf_mac now_m, then_m;
	uint8_t seen[6];
	char dev[32], why[300];

	if (!d->peer_check || !k || strcmp(k->token, c->token) != 0 || k->contested || !k->have_seen ||
	    neigh_lookup(d->neigh_table, c->addr, seen, dev, sizeof(dev)) < 0 || memcmp(seen, k->seen, 6) == 0)
		return 0;
	nf_mac_set(&now_m, seen);
	nf_mac_set(&then_m, k->seen);
	snprintf(why, sizeof(why), "the neighbour entry of %s moved from %s to %s during its job", c->peer, then_m.s,
		 now_m.s);
	note_exposed(d, c, why, sizeof(why));
	contest(d, c, why);
	return 1;
}

/* Where c's enrollment's provisioning secrets went: reads
 * ROOT/state/provision/MAC.patch.sent ("GENERATION ADDRESS\n", kept across
 * restarts) into to (an IPv4 address, at least INET_ADDRSTRLEN bytes).
 * path (PATH_MAX bytes) gets the record's path. Returns 1 (sent for this
 * enrollment: to is set), 0 (not yet, or only for an older enrollment) or
 * -errno (the record cannot be read; logged). */
static int secrets_sent_to(struct daemon *d, const struct conn *c, char *path, char *to)
{
	char line[64], gen[17];
	ssize_t n;

	if (provision_patch_path(&d->m, c->mac.s, path, PATH_MAX - 5) < 0)
		return -ENAMETOOLONG;
	strcat(path, ".sent");
	master_generation(c->token, gen);
	n = nf_read_file(path, line, sizeof(line) - 1);
	if (n == -ENOENT)
		return 0;
	if (n < 0) {
		nf_err("%s: cannot read where its provisioning secrets went (%s): %s", c->mac.s, path,
		       nf_strerror((int)n));
		return (int)n;
	}
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (n <= 17 || strncmp(line, gen, 16) != 0 || line[16] != ' ')
		return 0;
	if (strlen(line + 17) >= INET_ADDRSTRLEN) {
		nf_err("%s: %s is not a record netflashd wrote (no address after the generation)", c->mac.s, path);
		return -EINVAL; /* fail closed: nobody gets the secrets */
	}
	memcpy(to, line + 17, strlen(line + 17) + 1);
	return 1;
}

/* Appends to why (a contest's reason, cap bytes) where c's enrollment's
 * provisioning secrets went, when they did: either claimant may be the
 * impostor, so the admin must treat them as exposed. */
static void note_exposed(struct daemon *d, const struct conn *c, char *why, size_t cap)
{
	char path[PATH_MAX], to[INET_ADDRSTRLEN];
	size_t n = strlen(why);

	if (secrets_sent_to(d, c, path, to) == 1 && n < cap)
		snprintf(why + n, cap - n, "; its provisioning secrets went to %s: treat the Wi-Fi PSK and password of "
			 "this enrollment as exposed", to);
}

/* A job's provisioning secrets go to one claimant: the first address that
 * was sent them for this enrollment may be sent them again (a retry after
 * a failed flash); anyone else is refused, and the worker contested with
 * the secrets named exposed. Fails closed: where the record cannot be read
 * or written, nobody gets them. Returns 0 (send them), -EACCES (refused:
 * contested) or -EIO (refused: the master's fault, logged). */
static int secrets_once(struct daemon *d, struct conn *c)
{
	char path[PATH_MAX], gen[17], addr[INET_ADDRSTRLEN], to[INET_ADDRSTRLEN], want[64], why[300];
	int r = secrets_sent_to(d, c, path, to);

	if (r < 0)
		return -EIO; /* logged by secrets_sent_to(); the JOB says master-error */
	inet_ntop(AF_INET, &c->addr, addr, sizeof(addr));
	if (r == 1) {
		if (strcmp(to, addr) == 0)
			return 0;
		snprintf(why, sizeof(why), "%s asked for its provisioning secrets, which went to %s already: treat the "
			 "Wi-Fi PSK and password of this enrollment as exposed", c->peer, to);
		contest(d, c, why);
		return -EACCES;
	}
	master_generation(c->token, gen);
	snprintf(want, sizeof(want), "%s %s\n", gen, addr);
	if (nf_write_file_atomic(path, want, strlen(want), 0600) < 0) {
		nf_err("%s: cannot record where its provisioning secrets go (%s); not sending them", c->mac.s, path);
		return -EIO;
	}
	return 0;
}

static int on_hello(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	struct enrollment *e = &d->e;
	const char *target = nf_msg_get(m, "target"), *model = nf_msg_get(m, "model"), *serial = nf_msg_get(m, "serial");
	uint64_t job_id = 0, tbytes = 0;
	char board[NF_BOARD_MODEL_MAX + NF_BOARD_SERIAL_MAX + 16] = "";
	struct job j;
	int r;

	if ((r = authenticate(d, c, m, "bad-hello")) < 0)
		return r;
	if ((model && !nf_board_model_valid(model)) || (serial && !nf_board_serial_valid(serial)))
		return conn_refuse(d, c, "bad-hello", c->mac.s);
	/* Every connection can add a job and 1000 lines: bound them per worker. */
	if (store_trim_worker(d->st, c->mac.s, JOBS_KEPT, EVENTS_KEPT) < 0)
		nf_warn("cannot trim the history of %s, ignoring", c->mac.s);
	if (e->state == NF_WORKER_ENROLLED && claim_job(d, c))
		return conn_reply_simple(c, "NOJOB", "contested");
	if (e->state != NF_WORKER_ENROLLED)
		return conn_reply_simple(c, "NOJOB", nf_worker_state_name(e->state));
	/* A reconnect names its job: resume it, or say it is done already. */
	if (nf_msg_get_u64(m, "job", 1, UINT64_MAX, &job_id) == 0 && store_job_get(d->st, job_id, &j) == 0 &&
	    strcmp(j.mac, c->mac.s) == 0) {
		if (j.state == NF_JOB_RUNNING) {
			nf_info("%s resumed job %llu from %s", c->mac.s, (unsigned long long)job_id, c->peer);
			return send_job(d, c, &j, 0);
		}
		if (j.state == NF_JOB_DONE) {
			c->job = job_id; /* a DONE retried after we crashed: answered in on_done */
			c->state = CONN_IN_JOB;
			return conn_reply_simple(c, "NOJOB", "done");
		}
	}
	if (e->attempts >= d->max_attempts) {
		worker_transition(&d->m, d->st, c->mac.s, NF_WEV_TRIES_OUT, e->last_error);
		return conn_reply_simple(c, "NOJOB", "too-many-attempts");
	}
	nf_msg_get_u64(m, "target_bytes", 0, UINT64_MAX, &tbytes);
	if ((r = store_job_new(d->st, c->mac.s, e->image, target, tbytes, &job_id)) < 0 ||
	    store_job_get(d->st, job_id, &j) < 0) {
		nf_err("cannot record a job for %s: %s", c->mac.s, nf_strerror(r));
		return r < 0 ? r : -EIO;
	}
	store_job_abandon_others(d->st, c->mac.s, job_id);
	mcast_started_over(d, c->mac.s, job_id);
	store_event(d->st, c->mac.s, NF_EVENT_JOB, e->image);
	if (model || serial) {
		snprintf(board, sizeof(board), "%s%s%s", model ? model : "unknown board", serial ? ", serial " : "",
			 serial ? serial : "");
		store_event(d->st, c->mac.s, NF_EVENT_BOARD, board);
	}
	nf_info("%s (%s%s%s) starts job %llu: image '%s'", c->mac.s, c->peer, board[0] ? ", " : "", board,
		(unsigned long long)job_id, e->image);
	return send_job(d, c, &j, 1);
}

/* Reads m, a message about c's job, by its table v into out (a struct that
 * starts with the job's id, as each of them does: proto.h), and checks
 * that id is c's job; with j, also that the job is c's worker's, loaded
 * into j. The one place a worker's id= is checked. Returns 0 or -EPROTO. */
static int read_job_msg(struct daemon *d, struct conn *c, const struct nf_msg *m, const struct nf_vspec *v,
			void *out, struct job *j)
{
	uint64_t id;

	if (nf_msg_read(m, v, out) < 0)
		return -EPROTO;
	memcpy(&id, out, sizeof(id));
	if (id != c->job || (j && (store_job_get(d->st, id, j) < 0 || strcmp(j->mac, c->mac.s) != 0)))
		return -EPROTO;
	return 0;
}

static int on_progress(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	struct nf_progress_msg p;
	enum nf_stage stage = NF_STAGE_NONE;
	time_t now = time(NULL);

	if (now != c->progress_sec) {
		c->progress_sec = now;
		c->progress_n = 0;
	}
	if (++c->progress_n > PROGRESS_PER_S)
		return conn_refuse_because(d, c, "progress-flood", c->mac.s, "more than %d PROGRESS lines in a second",
					   PROGRESS_PER_S);
	if (read_job_msg(d, c, m, &nf_progress_vspec, &p, NULL) < 0 || nf_stage_parse(p.stage, &stage) < 0 ||
	    (stage != NF_STAGE_WRITE && stage != NF_STAGE_VERIFY && stage != NF_STAGE_FINALIZE))
		return conn_refuse(d, c, "bad-progress", c->mac.s);
	if (now - c->progress_saved >= PROGRESS_SAVE) {
		store_job_progress(d->st, c->job, stage, p.done, p.total, p.mbps);
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
	struct hook_facts f = { .mac = c->mac.s, .result = result, .reason = reason, .bytes = bytes,
				.seconds = seconds, .job = j ? j->id : c->job };
	int r;

	if (!d->netflash_bin[0])
		return;
	if (store_get(d->st, c->mac.s, &e) == 0) {
		f.hostname = e.hostname;
		f.image = e.image;
		f.attempts = e.attempts;
		f.worker_state = nf_worker_state_name(e.state);
	}
	if ((r = master_hooks_start(&d->m, d->netflash_bin, ev, &f, STDERR_FILENO)) < 0)
		nf_warn("%s: cannot start the %s hooks: %s", c->mac.s, nf_hook_event_name(ev), nf_strerror(r));
}

/* Counts a failed attempt; marks the worker failed after the last one. */
static void count_failure(struct daemon *d, struct conn *c, enum nf_job_state state, const char *reason,
			  uint64_t bytes, double seconds)
{
	int n;

	store_job_end(d->st, c->job, state, reason, bytes, seconds);
	mcast_job_ended(d, c->mac.s, c->token, c->job, 0, reason);
	forget_claim(d, c);
	n = store_add_attempt(d->st, c->mac.s, reason);
	store_event(d->st, c->mac.s, state == NF_JOB_KEPT ? NF_EVENT_JOB_KEPT : NF_EVENT_JOB_FAILED, reason);
	if (n >= (int)d->max_attempts) {
		worker_transition(&d->m, d->st, c->mac.s, NF_WEV_TRIES_OUT, reason);
		nf_warn("%s failed %d times (last: %s); no more jobs until re-enrolled", c->mac.s, n, reason);
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
		.mac = c->mac.s, .lock = RELEASE_LOCK_TRY, .job = j->id, .bytes = bytes, .seconds = seconds,
		.event = { "verified DONE", "verified DONE; no tftp dir" },
	};
	char why[700];
	int r = release_worker(&d->m, d->st, &rel, why, sizeof(why));

	if (r == -EBUSY) {
		nf_warn("%s: verified, but %s; the worker will send DONE again", c->mac.s, why);
		return -EAGAIN;
	}
	if (r < 0)
		nf_err("%s: verified, but %s", c->mac.s, why);
	return r < 0 ? r : 0;
}

/* The worker must have written (and read back) exactly the patch we hold
 * for it: DONE's patch= is its digest. Returns 0, or -errno with reason
 * set (-EPROTO: the claim is not the patch's). */
static int check_patch(struct daemon *d, struct conn *c, const struct nf_manifest *man, const uint8_t *claim,
		       char *reason, size_t cap)
{
	struct nf_patch p;
	const char *why = NULL;
	uint8_t want[32];
	int r;


	nf_patch_init(&p);
	if ((r = load_patch(d, c->mac.s, man, &p, &why)) < 0) {
		snprintf(reason, cap, "%s", why);
		return r;
	}
	if (p.n) {
		nf_patch_digest(&p, want);
		if (!claim) {
			snprintf(reason, cap, "patch-missing");
			r = -EPROTO;
		} else if (memcmp(want, claim, 32) != 0) {
			snprintf(reason, cap, "patch-mismatch");
			r = -EPROTO;
		}
	} else if (claim) {
		snprintf(reason, cap, "patch-unexpected");
		r = -EPROTO;
	}
	nf_patch_free(&p);
	return r;
}

/* 1 when a live connection speaks for job id. */
static int job_connected(const struct daemon *d, uint64_t id)
{
	for (unsigned i = 0; i < d->nconns; i++)
		if (d->conns[i]->state == CONN_IN_JOB && d->conns[i]->job == id)
			return 1;
	return 0;
}

void jobs_sweep(struct daemon *d)
{
	struct job silent[64];
	time_t now = time(NULL);
	int n;

	/* Every 10 s; and never before this netflashd has been up that long
	 * itself: after a restart a live worker reconnects within seconds. */
	if (now - d->last_sweep < 10 || now - d->started_at < (time_t)d->abandon_after)
		return;
	d->last_sweep = now;
	if ((n = store_jobs_silent(d->st, now - (time_t)d->abandon_after, silent, 64)) <= 0)
		return;
	for (int i = 0; i < n; i++) {
		const struct job *j = &silent[i];
		char reason[160];
		struct conn gone = { .fd = -1, .job = j->id, .state = CONN_IN_JOB };

		if (job_connected(d, j->id) || mcast_job_live(d, j->mac, j->id) || nf_mac_parse(j->mac, &gone.mac) < 0)
			continue;
		snprintf(reason, sizeof(reason), "abandoned: no report from the worker for %lld s (it retries at its "
			 "next boot)", (long long)(now - j->updated_at));
		nf_warn("%s job %llu %s", j->mac, (unsigned long long)j->id, reason);
		/* As a failure its worker reported: an attempt counted, its claim
		 * and any multicast membership ended, the failed hooks run. */
		if (store_get(d->st, j->mac, &d->e) == 0)
			snprintf(gone.token, sizeof(gone.token), "%s", d->e.token);
		count_failure(d, &gone, NF_JOB_ABANDONED, reason, 0, 0);
	}
}

static int on_done(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	char reason[128];
	struct nf_done_msg done;
	struct nf_manifest man;
	struct job j;
	int r;

	if (read_job_msg(d, c, m, &nf_done_vspec, &done, &j) < 0)
		return conn_refuse(d, c, "bad-done", c->mac.s);

	if (j.state == NF_JOB_DONE)
		return conn_reply_simple(c, "RELEASED", "already"); /* a retry after our crash: released once */
	if (j.state != NF_JOB_RUNNING)
		return conn_reply_simple(c, "KEPT", "job-not-running");
	/* Whatever a contested job's DONE says, it releases nothing. */
	struct claim *k = claim_lookup(d, c->mac.s);

	if (claim_moved(d, c) || (k && k->contested) ||
	    (store_get(d->st, c->mac.s, &d->e) == 0 && d->e.state == NF_WORKER_CONTESTED)) {
		nf_warn("%s job %llu: DONE while its worker is contested; TFTP dir kept", c->mac.s,
			(unsigned long long)j.id);
		store_job_end(d->st, j.id, NF_JOB_KEPT, "contested", done.bytes, done.seconds);
		return conn_reply_simple(c, "KEPT", "contested");
	}
	if ((r = master_read_manifest(&d->m, j.image, &man)) < 0) {
		/* The master's fault (an image removed, a damaged manifest, no fds),
		 * never the worker's: no attempt is counted, the job stays open. */
		nf_err("%s job %llu: cannot read the manifest of image '%s': %s; the job stays open", c->mac.s,
		       (unsigned long long)j.id, j.image, nf_strerror(r));
		return conn_reply_simple(c, "KEPT", r == -ENOENT ? "image-manifest-missing" : "master-error");
	}
	/* Never trust a claim of success: the digest must be the catalog's. */
	if (memcmp(done.sha256, man.sha256, 32) != 0 || done.bytes != man.image_size) {
		int digest_ok = memcmp(done.sha256, man.sha256, 32) == 0;

		snprintf(reason, sizeof(reason), "%s", digest_ok ? "size-mismatch" : "digest-mismatch");
		nf_warn("%s job %llu: DONE with a %s; TFTP dir kept", c->mac.s, (unsigned long long)j.id,
			digest_ok ? "wrong size" : "digest that is not the image's");
		count_failure(d, c, NF_JOB_KEPT, reason, done.bytes, done.seconds);
		return conn_reply_simple(c, "KEPT", reason);
	}
	if (check_patch(d, c, &man, done.has_patch ? done.patch : NULL, reason, sizeof(reason)) < 0) {
		nf_warn("%s job %llu: DONE without the provisioning patch's digest (%s); TFTP dir kept", c->mac.s,
			(unsigned long long)j.id, reason);
		count_failure(d, c, NF_JOB_KEPT, reason, done.bytes, done.seconds);
		return conn_reply_simple(c, "KEPT", reason);
	}
	if ((r = release(d, c, &j, done.bytes, done.seconds)) == -EAGAIN)
		return r; /* closed unanswered: the worker reconnects and sends DONE again */
	if (r < 0)
		return conn_reply_simple(c, "KEPT", "release-failed");
	mcast_job_ended(d, c->mac.s, c->token, j.id, 1, NULL);
	nf_info("%s job %llu verified (%llu bytes in %.1f s): released", c->mac.s, (unsigned long long)j.id,
		(unsigned long long)done.bytes, done.seconds);
	run_hooks(d, c, NF_HOOK_DONE, &j, "done", NULL, done.bytes, done.seconds);
	return conn_reply_simple(c, "RELEASED", NULL);
}

static int on_fail(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	enum nf_stage stage = NF_STAGE_NONE;
	char reason[300], q[256];
	struct nf_fail_msg f;
	struct job j;

	if (read_job_msg(d, c, m, &nf_fail_vspec, &f, &j) < 0 || nf_stage_parse(f.stage, &stage) < 0 ||
	    stage == NF_STAGE_NONE)
		return conn_refuse(d, c, "bad-fail", c->mac.s);
	const char *why = f.reason;

	if (j.state != NF_JOB_RUNNING)
		return conn_reply_simple(c, "KEPT", "job-not-running");
	snprintf(reason, sizeof(reason), "%s: %.250s", nf_stage_name(stage), why);
	nf_warn("%s job %llu failed at %s", c->mac.s, (unsigned long long)j.id, nf_quote(q, sizeof(q), reason));
	count_failure(d, c, NF_JOB_FAILED, reason, 0, 0);
	if (stage == NF_STAGE_PROBE || stage == NF_STAGE_READ_ONLY) {
		/* A fake or write-protected card stays so: no retries; a new card
		 * needs a new enroll. */
		worker_transition(&d->m, d->st, c->mac.s, NF_WEV_CARD_FINAL, reason);
		nf_warn("%s: its card %s; marked failed (replace the card, enroll again)", c->mac.s,
			stage == NF_STAGE_PROBE ? "failed the capacity probe" : "cannot be written (read-only)");
	}
	return conn_reply_simple(c, "KEPT", "failure-recorded");
}

static int on_log(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	char q[NF_PROTO_VALUE_MAX * 4 + 8];
	struct nf_log_msg l;

	if (read_job_msg(d, c, m, &nf_log_vspec, &l, NULL) < 0)
		return conn_refuse(d, c, "bad-log", c->mac.s);
	if (c->log_lines++ < LOG_LINES_MAX)
		store_event(d->st, c->mac.s, NF_EVENT_LOG, nf_printable(q, sizeof(q), l.line));
	return 0;
}

/* Card health from the worker: its identity, the capacity probe's verdict,
 * write stalls, a card slower than the floor. Kept in the worker's history. */
static int on_card(struct daemon *d, struct conn *c, const struct nf_msg *m)
{
	char q[NF_PROTO_VALUE_MAX * 4 + 8], ev[NF_PROTO_VALUE_MAX * 4 + 32];
	enum nf_card_finding what;
	struct nf_card_msg k;

	if (read_job_msg(d, c, m, &nf_card_vspec, &k, NULL) < 0 || nf_card_finding_parse(k.what, &what) < 0)
		return conn_refuse(d, c, "bad-card", c->mac.s);
	if (c->log_lines++ < LOG_LINES_MAX) {
		snprintf(ev, sizeof(ev), "%s: %s", nf_card_finding_name(what), nf_printable(q, sizeof(q), k.text));
		store_event(d->st, c->mac.s, NF_EVENT_CARD, ev);
	}
	return 0;
}

/* The worker protocol's verbs (docs/protocol.md). A row is taken in the
 * states from min to max; outside them the connection is refused with ERR
 * refusal, the log naming the message's mac= (name_mac) or the
 * connection's MAC, as each handler refused before the table held the
 * states. A verb that needs a HELLO (min AUTHED and up) is first refused
 * hello-first before one, and then its enrollment must still be current.
 * v: the QUERY version the row takes; NULL: any (rows are tried in order). */
static const struct verb {
	const char *verb, *v;
	enum conn_state min, max;
	const char *refusal;
	int name_mac;
	int (*handler)(struct daemon *d, struct conn *c, const struct nf_msg *m);
} verbs[] = {
	{ "HELLO", NULL, CONN_NEW, CONN_CHALLENGED, "bad-hello", 1, on_hello },
	{ "QUERY", "2", CONN_NEW, CONN_NEW, "bad-query", 1, on_query_challenge },
	{ "QUERY", NULL, CONN_NEW, CONN_CHALLENGED, "bad-query", 1, on_query },
	{ "PROVE", NULL, CONN_CHALLENGED, CONN_CHALLENGED, "refused", 0, on_prove },
	{ "PROGRESS", NULL, CONN_IN_JOB, CONN_IN_JOB, "bad-progress", 0, on_progress },
	{ "DONE", NULL, CONN_IN_JOB, CONN_IN_JOB, "bad-done", 0, on_done },
	{ "FAIL", NULL, CONN_IN_JOB, CONN_IN_JOB, "bad-fail", 0, on_fail },
	{ "LOG", NULL, CONN_IN_JOB, CONN_IN_JOB, "bad-log", 0, on_log },
	{ "CARD", NULL, CONN_IN_JOB, CONN_IN_JOB, "bad-card", 0, on_card },
};

static const struct verb *find_verb(const struct nf_msg *m)
{
	const char *v = nf_msg_get(m, "v");

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(m->verb, verbs[i].verb) == 0 && (!verbs[i].v || (v && strcmp(v, verbs[i].v) == 0)))
			return &verbs[i];
	}
	return NULL;
}

int worker_dispatch(struct daemon *d, struct conn *c, const char *line, size_t len)
{
	const struct verb *v;
	struct nf_msg m;
	int r;

	if (nf_msg_parse(line, len, &m) < 0)
		return conn_refuse(d, c, "malformed", NULL);
	c->last_msg = time(NULL);
	if (!(v = find_verb(&m)))
		return conn_refuse(d, c, c->state >= CONN_AUTHED ? "unknown-verb" : "hello-first", m.verb);
	if (v->min >= CONN_AUTHED) {
		if (c->state < CONN_AUTHED)
			return conn_refuse(d, c, "hello-first", m.verb);
		if ((r = still_current(d, c)) < 0)
			return r;
	}
	if (c->state < v->min || c->state > v->max)
		return conn_refuse(d, c, v->refusal, v->name_mac ? nf_msg_get(&m, "mac") : c->mac.s);
	return v->handler(d, c, &m);
}
