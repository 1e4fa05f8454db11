/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "mcast.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

#include "daemon_int.h"
#include "fileutil.h"
#include "log.h"
#include "multicast.h"

#define MC_SESSIONS_MAX 16
#define MC_MEMBERS_MAX 256
#define MC_FALLBACK_MAX 1024
/* udp-sender: after the gathering, how long it waits for the members'
 * receivers once the first one is there, and how many retransmission
 * rounds a silent receiver gets before it is dropped (udpcast's
 * --retries-until-drop: a dead or stalled card must not hold the rack). */
#define MC_RECEIVER_WAIT_S 10
#define MC_RETRIES_UNTIL_DROP 30
/* udp-sender gives up when no receiver at all comes within this (every
 * member died before the stream began): the session ends, its port base
 * is free again. */
#define MC_SENDER_START_TIMEOUT_S 120
/* A sender none of whose members is left is stopped this long after the
 * last one ended (its own end normally comes first). */
#define MC_IDLE_STOP_S 5

enum mc_state { MC_GATHER, MC_SENDING, MC_ENDED };
enum mc_member_state { MCM_WAITING, MCM_DONE, MCM_FAILED };

static const char *const mc_state_names[] = { "gathering", "sending", "ended" };
static const char *const mcm_state_names[] = { "running", "done", "failed" };

struct mc_member {
	char mac[18];
	uint64_t job;
	enum mc_member_state state;
	char why[160];
};

struct mc_session {
	int used;
	unsigned id;
	char image[NF_NAME_MAX + 1];
	char file[PATH_MAX];
	unsigned portbase;
	struct nf_mc_settings set;
	enum mc_state state;
	time_t first_at, started_at, ended_at, members_ended_at;
	pid_t pid;
	int stopping;           /* netflashd stopped its sender: no member left */
	char end_why[160];
	struct mc_member m[MC_MEMBERS_MAX];
	unsigned n;
};

struct mc_table {
	struct mc_session s[MC_SESSIONS_MAX];
	unsigned next_id, port_base;
	char iface[32];
	char fallback[MC_FALLBACK_MAX][18 + 65]; /* "MAC TOKEN" of members whose session failed */
	unsigned nfallback;
	int dirty;
};

static void write_snapshot(struct daemon *d);
static void end_session(struct mc_table *t, struct mc_session *s, const char *why);

/* The highest session id in the last state/sessions.json, or 0. */
static unsigned last_id(struct daemon *d)
{
	char path[PATH_MAX];
	json_object *all, *v;
	unsigned max = 0;

	if (master_path(&d->m, path, sizeof(path), "state/sessions.json") < 0 || access(path, F_OK) < 0 ||
	    !(all = json_object_from_file(path)))
		return 0;
	for (size_t i = 0; json_object_is_type(all, json_type_array) && i < json_object_array_length(all); i++)
		if (json_object_object_get_ex(json_object_array_get_idx(all, i), "id", &v) &&
		    json_object_get_int64(v) > (int64_t)max && json_object_get_int64(v) < INT32_MAX)
			max = (unsigned)json_object_get_int64(v);
	json_object_put(all);
	return max;
}

struct mc_table *mcast_new(struct daemon *d, unsigned port_base, const char *iface)
{
	struct mc_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->next_id = last_id(d) + 1;
	t->port_base = port_base;
	snprintf(t->iface, sizeof(t->iface), "%s", iface);
	/* The first tick replaces the snapshot a previous netflashd left: its
	 * sessions, with their senders, died with it. */
	t->dirty = 1;
	return t;
}

void mcast_free(struct daemon *d)
{
	struct mc_table *t = d->mc;

	if (!t)
		return;
	for (unsigned i = 0; i < MC_SESSIONS_MAX; i++) {
		struct mc_session *s = &t->s[i];

		if (!s->used || s->state == MC_ENDED)
			continue;
		if (s->pid > 0) {
			kill(s->pid, SIGTERM);
			waitpid(s->pid, NULL, 0);
		}
		end_session(t, s, "netflashd stopped");
	}
	write_snapshot(d);
	free(t);
	d->mc = NULL;
}

static int fell_back(const struct mc_table *t, const char *mac, const char *token)
{
	char key[18 + 65];

	snprintf(key, sizeof(key), "%s%s", mac, token);
	for (unsigned i = 0; i < t->nfallback; i++)
		if (strcmp(t->fallback[i], key) == 0)
			return 1;
	return 0;
}

static void add_fallback(struct mc_table *t, const char *mac, const char *token)
{
	if (fell_back(t, mac, token))
		return;
	snprintf(t->fallback[t->nfallback % MC_FALLBACK_MAX], sizeof(t->fallback[0]), "%s%s", mac, token);
	if (t->nfallback < MC_FALLBACK_MAX)
		t->nfallback++;
}

/* The lowest even port base from t->port_base that no live session uses. */
static unsigned free_portbase(const struct mc_table *t)
{
	for (unsigned p = t->port_base;; p += 2) {
		int taken = 0;

		for (unsigned i = 0; i < MC_SESSIONS_MAX; i++)
			taken |= t->s[i].used && t->s[i].state != MC_ENDED && t->s[i].portbase == p;
		if (!taken)
			return p;
	}
}

/* A free slot: an unused one, else the session that ended longest ago. */
static struct mc_session *new_session(struct mc_table *t)
{
	struct mc_session *best = NULL;

	for (unsigned i = 0; i < MC_SESSIONS_MAX; i++) {
		struct mc_session *s = &t->s[i];

		if (!s->used)
			return s;
		if (s->state == MC_ENDED && (!best || s->ended_at < best->ended_at))
			best = s;
	}
	return best;
}

int mcast_join(struct daemon *d, const char *mac, const char *token, uint64_t job_id, const struct nf_manifest *man,
	       char *url, size_t cap)
{
	struct mc_table *t = d->mc;
	struct nf_mc_settings set;
	struct mc_session *s = NULL;
	int r = multicast_get(&d->m, mac, &set), sending = 0;

	if (r <= 0) {
		if (r < 0)
			nf_warn("%s: its multicast setting cannot be read (%s): it takes NFS", mac, nf_strerror(r));
		return 0;
	}
	if (!t)
		return 0;
	if (fell_back(t, mac, token)) {
		nf_info("%s: its multicast session failed before: this job takes NFS", mac);
		return 0;
	}
	if (man->format == NF_FMT_XZ) {
		nf_warn("%s: image '%s' is stored as xz, which cannot stream (its index is at its end): NFS", mac,
			man->name);
		return 0;
	}
	for (unsigned i = 0; i < MC_SESSIONS_MAX; i++) {
		struct mc_session *x = &t->s[i];

		if (!x->used || strcmp(x->image, man->name) != 0)
			continue;
		if (x->state == MC_GATHER && x->n < MC_MEMBERS_MAX)
			s = x;
		sending |= x->state == MC_SENDING;
	}
	if (!s && sending && set.late_nfs) {
		nf_info("%s: the multicast session of '%s' is under way and it says late=nfs: NFS", mac, man->name);
		return 0;
	}
	if (!s) {
		if (!(s = new_session(t))) {
			nf_warn("%s: %d multicast sessions are running: NFS", mac, MC_SESSIONS_MAX);
			return 0;
		}
		memset(s, 0, sizeof(*s));
		s->used = 1;
		s->id = t->next_id++;
		snprintf(s->image, sizeof(s->image), "%s", man->name);
		if (master_image_path(&d->m, man, s->file, sizeof(s->file)) < 0) {
			s->used = 0;
			return -ENAMETOOLONG;
		}
		s->portbase = free_portbase(t);
		s->set = set;
		s->state = MC_GATHER;
		s->first_at = time(NULL);
		nf_info("multicast session %u: image '%s' on port base %u gathers workers (%s%u s)", s->id, s->image,
			s->portbase, set.min_workers ? "until enough have asked, at most " : "", set.max_wait);
	}
	struct mc_member *mb = &s->m[s->n++];

	snprintf(mb->mac, sizeof(mb->mac), "%s", mac);
	mb->job = job_id;
	mb->state = MCM_WAITING;
	t->dirty = 1;
	/* The receiver waits for the start no longer than the gathering and
	 * the sender's own wait could take. */
	snprintf(url, cap, "udpcast://%s:%u?start=%u", d->m.conf.server_ip, s->portbase,
		 s->set.max_wait + MC_SENDER_START_TIMEOUT_S + 30);
	nf_info("%s joins multicast session %u (%u member(s))", mac, s->id, s->n);
	if (s->n > 1 && (set.min_workers != s->set.min_workers || set.max_wait != s->set.max_wait ||
			 set.late_nfs != s->set.late_nfs)) {
		char mine[96], its[96];

		multicast_format(&set, mine, sizeof(mine));
		multicast_format(&s->set, its, sizeof(its));
		nf_warn("%s: its multicast settings (%s) differ from its session's (%s, its first member's): the "
			"session's apply", mac, mine, its);
	}
	return 1;
}

/* The running member that is job_id of mac (its session into *in), or
 * NULL. */
static struct mc_member *running_member(struct mc_table *t, const char *mac, uint64_t job_id, struct mc_session **in)
{
	for (unsigned i = 0; t && i < MC_SESSIONS_MAX; i++)
		for (unsigned k = 0; t->s[i].used && k < t->s[i].n; k++) {
			struct mc_member *mb = &t->s[i].m[k];

			if (mb->job == job_id && mb->state == MCM_WAITING && strcmp(mb->mac, mac) == 0) {
				*in = &t->s[i];
				return mb;
			}
		}
	return NULL;
}

void mcast_job_ended(struct daemon *d, const char *mac, const char *token, uint64_t job_id, int ok, const char *why)
{
	struct mc_session *s;
	struct mc_member *mb = running_member(d->mc, mac, job_id, &s);

	if (!mb)
		return;
	mb->state = ok ? MCM_DONE : MCM_FAILED;
	snprintf(mb->why, sizeof(mb->why), "%s", ok ? "" : why);
	if (!ok) {
		add_fallback(d->mc, mac, token);
		nf_info("%s left multicast session %u (%s): its next job takes NFS", mac, s->id, why);
	}
	d->mc->dirty = 1;
}

int mcast_job_live(struct daemon *d, const char *mac, uint64_t job_id)
{
	struct mc_session *s;

	return running_member(d->mc, mac, job_id, &s) && s->state != MC_ENDED;
}

void mcast_started_over(struct daemon *d, const char *mac, uint64_t job_id)
{
	struct mc_table *t = d->mc;

	for (unsigned i = 0; t && i < MC_SESSIONS_MAX; i++)
		for (unsigned k = 0; t->s[i].used && k < t->s[i].n; k++) {
			struct mc_member *x = &t->s[i].m[k];

			if (x->state == MCM_WAITING && x->job != job_id && strcmp(x->mac, mac) == 0) {
				x->state = MCM_FAILED;
				snprintf(x->why, sizeof(x->why), "the worker started over (job %llu)",
					 (unsigned long long)job_id);
				t->dirty = 1;
			}
		}
}

/* ROOT/log/multicast-PORTBASE.log: the messages of the session on that
 * port base (one at a time; a new session there starts it afresh). */
static int session_log(struct daemon *d, const struct mc_session *s, char *out, size_t cap)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "log/multicast-%u.log", s->portbase);
	return master_path(&d->m, out, cap, rel);
}

/* 1 when udp-sender said the transfer completed in s's log. */
static int transfer_completed(struct daemon *d, const struct mc_session *s)
{
	char path[PATH_MAX], line[256];
	int done = 0;
	FILE *f;

	if (session_log(d, s, path, sizeof(path)) < 0 || !(f = fopen(path, "re")))
		return 0;
	while (fgets(line, sizeof(line), f))
		done |= strncmp(line, "Transfer complete", 17) == 0;
	fclose(f);
	return done;
}

/* Runs udp-sender for s, its messages in its port base's log.
 * It gets SIGTERM when netflashd dies (PR_SET_PDEATHSIG): a session
 * outlives no daemon. Returns 0 or -errno. */
static int start_sender(struct daemon *d, struct mc_session *s, unsigned receivers)
{
	char pb[12], minr[12], wait[12], retries[12], start[12], logp[PATH_MAX];
	char *argv[] = { "udp-sender", "--nokbd", "--no-progress", "--file", s->file, "--portbase", pb, "--interface",
			 d->mc->iface, "--min-receivers", minr, "--max-wait", wait, "--retries-until-drop", retries,
			 "--start-timeout", start, NULL };
	pid_t parent = getpid(), pid;
	int logfd;

	snprintf(pb, sizeof(pb), "%u", s->portbase);
	snprintf(minr, sizeof(minr), "%u", receivers);
	snprintf(wait, sizeof(wait), "%u", MC_RECEIVER_WAIT_S);
	snprintf(retries, sizeof(retries), "%u", MC_RETRIES_UNTIL_DROP);
	snprintf(start, sizeof(start), "%u", MC_SENDER_START_TIMEOUT_S);
	if (session_log(d, s, logp, sizeof(logp)) < 0)
		return -ENAMETOOLONG;
	if ((logfd = open(logp, O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC, 0640)) < 0)
		return -errno;
	char at[32];
	time_t now = time(NULL);
	struct tm tm;

	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	dprintf(logfd, "netflash multicast session %u: image '%s' (%s), %u member(s), port base %u, started %s\n",
		s->id, s->image, s->file, receivers, s->portbase, at);
	pid = fork();
	if (pid == 0) {
		/* Only async-signal-safe calls until exec. */
		int null = open("/dev/null", O_RDONLY);

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		if (null < 0 || dup2(null, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(logfd);
	if (pid < 0)
		return -errno;
	s->pid = pid;
	return 0;
}

static void end_session(struct mc_table *t, struct mc_session *s, const char *why)
{
	s->state = MC_ENDED;
	s->ended_at = time(NULL);
	s->pid = 0;
	snprintf(s->end_why, sizeof(s->end_why), "%s", why);
	t->dirty = 1;
}

/* ROOT/state/sessions.json: every session the table holds, for status and
 * the API (a JSON array). */
static void write_snapshot(struct daemon *d)
{
	struct mc_table *t = d->mc;
	json_object *arr = json_object_new_array();
	char path[PATH_MAX];
	const char *text;

	for (unsigned i = 0; i < MC_SESSIONS_MAX; i++) {
		struct mc_session *s = &t->s[i];
		json_object *o, *ms;

		if (!s->used)
			continue;
		o = json_object_new_object();
		ms = json_object_new_array();
		json_object_object_add(o, "id", json_object_new_int64(s->id));
		json_object_object_add(o, "image", json_object_new_string(s->image));
		json_object_object_add(o, "state", json_object_new_string(mc_state_names[s->state]));
		json_object_object_add(o, "portbase", json_object_new_int64(s->portbase));
		json_object_object_add(o, "min_workers", json_object_new_int64(s->set.min_workers));
		json_object_object_add(o, "max_wait", json_object_new_int64(s->set.max_wait));
		json_object_object_add(o, "first_at", json_object_new_int64(s->first_at));
		json_object_object_add(o, "started_at", json_object_new_int64(s->started_at));
		json_object_object_add(o, "ended_at", json_object_new_int64(s->ended_at));
		json_object_object_add(o, "end", json_object_new_string(s->end_why));
		for (unsigned k = 0; k < s->n; k++) {
			json_object *m = json_object_new_object();

			json_object_object_add(m, "mac", json_object_new_string(s->m[k].mac));
			json_object_object_add(m, "job", json_object_new_int64((int64_t)s->m[k].job));
			json_object_object_add(m, "state", json_object_new_string(mcm_state_names[s->m[k].state]));
			json_object_object_add(m, "reason", json_object_new_string(s->m[k].why));
			json_object_array_add(ms, m);
		}
		json_object_object_add(o, "members", ms);
		json_object_array_add(arr, o);
	}
	text = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN);
	if (master_path(&d->m, path, sizeof(path), "state/sessions.json") == 0 &&
	    nf_write_file_atomic(path, text, strlen(text), 0644) < 0)
		nf_warn("cannot write %s", path);
	json_object_put(arr);
	t->dirty = 0;
}

void mcast_tick(struct daemon *d)
{
	struct mc_table *t = d->mc;
	time_t now = time(NULL);

	if (!t)
		return;
	for (unsigned i = 0; i < MC_SESSIONS_MAX; i++) {
		struct mc_session *s = &t->s[i];
		unsigned running = 0;
		int st, r;

		if (!s->used || s->state == MC_ENDED)
			continue;
		for (unsigned k = 0; k < s->n; k++)
			running += s->m[k].state == MCM_WAITING;
		if (s->state == MC_GATHER) {
			if (running == 0) {
				end_session(t, s, "every member ended before it started");
			} else if ((s->set.min_workers && running >= s->set.min_workers) ||
				   now - s->first_at >= (time_t)s->set.max_wait) {
				if ((r = start_sender(d, s, running)) < 0) {
					nf_err("multicast session %u: cannot run udp-sender (Debian package udpcast): %s; "
					       "its members fail and retry by NFS", s->id, nf_strerror(r));
					end_session(t, s, "udp-sender could not be started");
					continue;
				}
				s->state = MC_SENDING;
				s->started_at = now;
				t->dirty = 1;
				nf_info("multicast session %u: udp-sender (pid %d) waits for the receivers of %u worker(s) "
					"on port base %u, then streams '%s'", s->id, (int)s->pid, running, s->portbase,
					s->image);
			}
			continue;
		}
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			char why[120];

			if (s->stopping)
				snprintf(why, sizeof(why), "stopped: no member left");
			else if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && transfer_completed(d, s))
				snprintf(why, sizeof(why), "the stream is complete");
			else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
				snprintf(why, sizeof(why), "no member's receiver came within %u s", MC_SENDER_START_TIMEOUT_S);
			else if (WIFEXITED(st))
				snprintf(why, sizeof(why), "udp-sender exited with status %d (log/multicast-%u.log)",
					 WEXITSTATUS(st), s->portbase);
			else
				snprintf(why, sizeof(why), "udp-sender was killed by signal %d", WTERMSIG(st));
			nf_info("multicast session %u ended: %s", s->id, why);
			end_session(t, s, why);
			continue;
		}
		if (running == 0) {
			if (!s->members_ended_at)
				s->members_ended_at = now;
			else if (now - s->members_ended_at >= MC_IDLE_STOP_S && !s->stopping) {
				s->stopping = 1;
				kill(s->pid, SIGTERM); /* reaped on a later tick */
			}
		}
	}
	if (t->dirty)
		write_snapshot(d);
}
