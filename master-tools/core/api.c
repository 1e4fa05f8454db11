/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "api.h"
#include "imgfinish.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "manifest.h"
#include "format.h"
#include "parse.h"

void worker_view(struct store *st, const struct enrollment *e, struct worker_view *v)
{
	memset(v, 0, sizeof(*v));
	v->have_job = store_job_latest(st, e->mac, &v->job) == 0;
	snprintf(v->state, sizeof(v->state), "%s", nf_worker_state_name(e->state));
	snprintf(v->pct, sizeof(v->pct), "-");
	snprintf(v->rate, sizeof(v->rate), "-");
	snprintf(v->eta, sizeof(v->eta), "-");
	v->eta_s = -1;
	if (!v->have_job)
		return;
	const struct job *j = &v->job;

	if (j->state == NF_JOB_RUNNING && e->state == NF_WORKER_ENROLLED) {
		v->running = 1;
		v->silent_s = (long)(time(NULL) - j->updated_at);
		snprintf(v->state, sizeof(v->state), "%s", j->stage != NF_STAGE_NONE ? nf_stage_name(j->stage) : "started");
		if (j->total)
			snprintf(v->pct, sizeof(v->pct), "%u%%", (unsigned)(j->done * 100 / j->total));
		if (v->silent_s >= NF_JOB_STALLED_S) {
			/* Its last rate is no rate now: nothing is being written. */
			v->stalled = 1;
			snprintf(v->state, sizeof(v->state), "stalled");
			return;
		}
		snprintf(v->rate, sizeof(v->rate), "%.1f", j->mbps);
		if (j->mbps > 0 && j->total > j->done && j->stage == NF_STAGE_WRITE) {
			double eta = (double)(j->total - j->done) / 1e6 / j->mbps;

			/* A rate near 0 (old rows took any number) must not overflow the cast. */
			if (eta < 100 * 3600) {
				unsigned s = (unsigned)eta;

				v->eta_s = eta;
				snprintf(v->eta, sizeof(v->eta), "%u:%02u", s / 60, s % 60);
			}
		}
	} else if (j->state == NF_JOB_DONE) {
		snprintf(v->pct, sizeof(v->pct), "100%%");
		snprintf(v->rate, sizeof(v->rate), "%.1f", j->seconds > 0 ? (double)j->bytes / 1e6 / j->seconds : 0);
	}
}

void api_worker_json(FILE *out, struct store *st, const struct enrollment *e)
{
	struct worker_view v;
	char a[200], b[200], s[64], st_[64], err[600], model[48], mq[300];
	const struct job *j = &v.job;

	worker_view(st, e, &v);
	if (store_model(st, e->mac, model, sizeof(model)) < 0)
		model[0] = '\0';
	fprintf(out, "{\"mac\":\"%s\",\"hostname\":%s,\"model\":%s,\"image\":%s,\"state\":%s,\"enrollment\":\"%s\",\"job\":%llu,"
		"\"stage\":%s,\"done\":%llu,\"total\":%llu,\"mbps\":%.1f,\"eta_s\":%.0f,\"attempts\":%u,"
		"\"last_error\":%s,\"updated_at\":%lld}",
		e->mac, nf_json_str(a, sizeof(a), e->hostname), nf_json_str(mq, sizeof(mq), model),
		nf_json_str(b, sizeof(b), e->image),
		nf_json_str(s, sizeof(s), v.state), nf_worker_state_name(e->state),
		v.have_job ? (unsigned long long)j->id : 0ULL,
		nf_json_str(st_, sizeof(st_), v.running && !v.stalled ? nf_stage_name(j->stage) : ""),
		v.have_job ? (unsigned long long)j->done : 0ULL, v.have_job ? (unsigned long long)j->total : 0ULL,
		v.have_job && !v.stalled ? j->mbps : 0.0, v.eta_s, e->attempts, nf_json_str(err, sizeof(err), e->last_error),
		(long long)e->updated_at);
}

void api_job_json(FILE *out, const struct job *j)
{
	char im[200], st[64], tg[300], rs[600];
	double rate = j->seconds > 0 ? (double)j->bytes / 1e6 / j->seconds : j->mbps;

	fprintf(out, "{\"job\":%llu,\"mac\":\"%s\",\"image\":%s,\"state\":\"%s\",\"stage\":%s,\"started_at\":%lld,"
		"\"ended_at\":%lld,\"seconds\":%.3f,\"bytes\":%llu,\"done\":%llu,\"total\":%llu,\"mbps\":%.1f,"
		"\"target\":%s,\"target_bytes\":%llu,\"reason\":%s}",
		(unsigned long long)j->id, j->mac, nf_json_str(im, sizeof(im), j->image), nf_job_state_name(j->state),
		nf_json_str(st, sizeof(st), nf_stage_name(j->stage)), (long long)j->started_at, (long long)j->ended_at, j->seconds,
		(unsigned long long)j->bytes, (unsigned long long)j->done, (unsigned long long)j->total, rate,
		nf_json_str(tg, sizeof(tg), j->target), (unsigned long long)j->target_bytes,
		nf_json_str(rs, sizeof(rs), j->reason));
}

/* A catalog image (api_images_json()), without its closing brace. */
static void image_members(FILE *out, const struct master *mr, const struct nf_manifest *m)
{
	char sha[65], n[200], f[200], o[80];

	nf_format_hex(m->sha256, 32, sha);
	fprintf(out, "{\"name\":%s,\"file\":%s,\"format\":\"%s\",\"stored_bytes\":%llu,\"image_bytes\":%llu,"
		"\"sha256\":\"%s\",\"zero_share\":%.3f,\"origin\":%s,\"origin_bytes\":%llu,\"disk\":%s,",
		nf_json_str(n, sizeof(n), m->name), nf_json_str(f, sizeof(f), m->file), nf_format_name(m->format),
		(unsigned long long)m->compressed_size, (unsigned long long)m->image_size, sha,
		m->blocks ? (double)m->zero_blocks / (double)m->blocks : 0.0, nf_json_str(o, sizeof(o), m->origin),
		(unsigned long long)m->origin_size, m->disk ? "true" : "false");
	nf_finish_json(out, mr, m);
}

struct users_ctx {
	FILE *out;
	const char *image;
	unsigned n;
};

static int user_item(const struct enrollment *e, void *ctx)
{
	struct users_ctx *u = ctx;

	if (e->state == NF_WORKER_ENROLLED && strcmp(e->image, u->image) == 0)
		fprintf(u->out, "%s\"%s\"", u->n++ ? "," : "", e->mac);
	return 0;
}

struct array_ctx {
	FILE *out;
	const struct master *m;
	struct store *st;
	unsigned n, limit;
	int with_kind;          /* events: say each one's kind */
};

static void sep(struct array_ctx *c)
{
	if (c->n++)
		fputc(',', c->out);
}

static int worker_item(const struct enrollment *e, void *ctx)
{
	struct array_ctx *c = ctx;

	sep(c);
	api_worker_json(c->out, c->st, e);
	return 0;
}

int api_workers_json(FILE *out, struct store *st)
{
	struct array_ctx c = { .out = out, .st = st };
	int r;

	fputc('[', out);
	r = store_each(st, worker_item, &c);
	fputc(']', out);
	return r;
}

static int job_item(const struct job *j, void *ctx)
{
	struct array_ctx *c = ctx;

	if (c->n >= c->limit)
		return 1;
	sep(c);
	api_job_json(c->out, j);
	return 0;
}

int api_jobs_json(FILE *out, struct store *st, const char *mac, unsigned limit)
{
	struct array_ctx c = { .out = out, .st = st, .limit = limit };
	int r;

	fputc('[', out);
	r = store_job_each(st, mac, job_item, &c);
	fputc(']', out);
	return r < 0 ? r : 0;
}

static int image_item(const char *path, const struct nf_manifest *man, void *ctx)
{
	struct array_ctx *c = ctx;
	struct users_ctx u = { .out = c->out, .image = man ? man->name : "" };

	(void)path;
	if (!man)
		return 0;
	sep(c);
	/* The object with "users": the MACs enrolled with it (what image rm
	 * waits for), when the state database can be read. */
	image_members(c->out, c->m, man);
	if (c->st) {
		fputs(",\"users\":[", c->out);
		store_each(c->st, user_item, &u);
		fputc(']', c->out);
	}
	fputc('}', c->out);
	return 0;
}

int api_images_json(FILE *out, const struct master *m)
{
	struct array_ctx c = { .out = out, .m = m };
	int r;

	if (master_open_store(m, &c.st) < 0)
		c.st = NULL;
	fputc('[', out);
	r = master_each_manifest(m, image_item, &c);
	fputc(']', out);
	store_close(c.st);
	return r < 0 ? -EIO : 0;
}

/* One event, with its kind when c->with_kind. */
static int event_item(int64_t at, enum nf_event_kind kind, const char *detail, void *ctx)
{
	struct array_ctx *c = ctx;
	char d[2100];

	sep(c);
	fprintf(c->out, "{\"at\":%lld,", (long long)at);
	if (c->with_kind)
		fprintf(c->out, "\"kind\":\"%s\",", nf_event_kind_name(kind));
	fprintf(c->out, "\"line\":%s}", nf_json_str(d, sizeof(d), detail));
	return 0;
}

/* [{"at", ["kind",] "line"}] of mac's last limit events (of kind, if not NULL). */
static int events_array(FILE *out, struct store *st, const char *mac, const enum nf_event_kind *kind, unsigned limit,
			int with_kind)
{
	struct array_ctx c = { .out = out, .with_kind = with_kind };
	int r;

	fputc('[', out);
	r = store_event_list(st, mac, kind, limit, event_item, &c);
	fputc(']', out);
	return r;
}

static int events_json(FILE *out, struct store *st, const char *mac, enum nf_event_kind kind, unsigned limit)
{
	return events_array(out, st, mac, &kind, limit, 0);
}

int api_events_json(FILE *out, struct store *st, const char *mac, const enum nf_event_kind *kind, unsigned limit)
{
	return events_array(out, st, mac, kind, limit, 1);
}

/* The event arrays of a worker's detail: key, kind, how many. */
static const struct {
	const char *key;
	enum nf_event_kind kind;
	unsigned limit;
} detail_events[] = {
	{ "log", NF_EVENT_LOG, 200 }, { "card", NF_EVENT_CARD, 50 },
	{ "provision", NF_EVENT_PROVISION, 20 }, { "hooks", NF_EVENT_HOOK, 20 },
};

int api_worker_detail_json(FILE *out, struct store *st, const char *mac)
{
	struct enrollment *e = calloc(1, sizeof(*e));
	int r;

	if (!e)
		return -ENOMEM;
	if ((r = store_get(st, mac, e)) < 0) {
		free(e);
		return r;
	}
	fputs("{\"worker\":", out);
	api_worker_json(out, st, e);
	fputs(",\"jobs\":", out);
	r = api_jobs_json(out, st, mac, 50);
	for (size_t i = 0; i < sizeof(detail_events) / sizeof(detail_events[0]) && r == 0; i++) {
		fprintf(out, ",\"%s\":", detail_events[i].key);
		r = events_json(out, st, mac, detail_events[i].kind, detail_events[i].limit);
	}
	fputc('}', out);
	free(e);
	return r;
}

/* ---- metrics ----------------------------------------------------------- */

static const double duration_buckets[] = { 30, 60, 120, 300, 600, 1200, 1800, 3600 };
static const double speed_buckets[] = { 5, 10, 20, 30, 50, 80, 120 };
#define NBUCKETS(a) (sizeof(a) / sizeof((a)[0]))

struct metrics {
	unsigned workers[NF_WORKER_STATES];
	unsigned jobs[NF_JOB_STATES], stalled;
	uint64_t bytes_done;
	unsigned long long dur[NBUCKETS(duration_buckets) + 1], speed[NBUCKETS(speed_buckets) + 1];
	double dur_sum, speed_sum;
	unsigned long long n_done;
};

static int count_worker(const struct enrollment *e, void *ctx)
{
	struct metrics *mt = ctx;

	if ((unsigned)e->state < NF_WORKER_STATES)
		mt->workers[e->state]++;
	return 0;
}

static void observe(unsigned long long *b, const double *bounds, size_t n, double v)
{
	for (size_t i = 0; i < n; i++)
		if (v <= bounds[i])
			b[i]++;
	b[n]++;
}

static int count_job(const struct job *j, void *ctx)
{
	struct metrics *mt = ctx;

	if ((unsigned)j->state < NF_JOB_STATES)
		mt->jobs[j->state]++;
	if (j->state == NF_JOB_RUNNING && time(NULL) - j->updated_at >= NF_JOB_STALLED_S)
		mt->stalled++;
	if (j->state == NF_JOB_DONE && j->seconds > 0) {
		double speed = (double)j->bytes / 1e6 / j->seconds;

		mt->bytes_done += j->bytes;
		mt->n_done++;
		mt->dur_sum += j->seconds;
		mt->speed_sum += speed;
		observe(mt->dur, duration_buckets, NBUCKETS(duration_buckets), j->seconds);
		observe(mt->speed, speed_buckets, NBUCKETS(speed_buckets), speed);
	}
	return 0;
}

static void histogram(FILE *out, const char *name, const char *help, const double *bounds, size_t n,
		      const unsigned long long *b, double sum, unsigned long long count)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], b[i]);
	fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.3f\n%s_count %llu\n", name, b[n], name, sum, name, count);
}

int api_metrics(FILE *out, struct store *st, int connections)
{
	struct metrics mt;
	int r;

	memset(&mt, 0, sizeof(mt));
	if ((r = store_each(st, count_worker, &mt)) < 0 || (r = store_job_each(st, NULL, count_job, &mt)) < 0)
		return r;
	fputs("# HELP netflash_workers Enrolled workers by state.\n# TYPE netflash_workers gauge\n", out);
	for (unsigned i = 0; i < NF_WORKER_STATES; i++)
		fprintf(out, "netflash_workers{state=\"%s\"} %u\n", nf_worker_state_name((enum nf_worker_state)i),
			mt.workers[i]);
	fputs("# HELP netflash_jobs Jobs in the database by state (jobs are kept, trimmed per worker).\n"
	      "# TYPE netflash_jobs gauge\n", out);
	for (unsigned i = 0; i < NF_JOB_STATES; i++)
		fprintf(out, "netflash_jobs{state=\"%s\"} %u\n", nf_job_state_name((enum nf_job_state)i), mt.jobs[i]);
	fprintf(out, "# HELP netflash_jobs_stalled Running jobs whose worker has not reported for %d s or more.\n"
		"# TYPE netflash_jobs_stalled gauge\nnetflash_jobs_stalled %u\n", NF_JOB_STALLED_S, mt.stalled);
	fprintf(out, "# HELP netflash_bytes_written_total Image bytes of verified jobs.\n"
		"# TYPE netflash_bytes_written_total counter\nnetflash_bytes_written_total %llu\n",
		(unsigned long long)mt.bytes_done);
	histogram(out, "netflash_flash_duration_seconds", "Duration of verified jobs.", duration_buckets,
		  NBUCKETS(duration_buckets), mt.dur, mt.dur_sum, mt.n_done);
	histogram(out, "netflash_card_write_mbps", "Image MB/s of verified jobs (decimal MB).", speed_buckets,
		  NBUCKETS(speed_buckets), mt.speed, mt.speed_sum, mt.n_done);
	if (connections >= 0)
		fprintf(out, "# HELP netflash_daemon_connections Open worker connections.\n"
			"# TYPE netflash_daemon_connections gauge\nnetflash_daemon_connections %d\n", connections);
	return 0;
}
