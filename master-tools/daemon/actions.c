/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "actions.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "master.h"
#include "parse.h"
#include "run.h"

#define ACTION_TIMEOUT_S 120 /* enroll with provisioning extracts a boot partition */
#define ARG_MAX_LEN 256      /* one setting from the request */

extern char **environ;

struct nf_actions {
	const struct master *m;
	char bin[PATH_MAX];
	pthread_mutex_t lock;
	/* the mass-flash this daemon started */
	pid_t mf_pid;
	char mf_image[ARG_MAX_LEN];
	time_t mf_started;
	int mf_stops;           /* SIGINTs sent */
	int mf_exit;            /* the last one's exit status; -1: none yet */
	/* the image add this daemon started (POST /api/images) */
	pid_t ia_pid;
	char ia_name[ARG_MAX_LEN];
	int ia_exit;            /* -1: none yet */
};

struct nf_actions *nf_actions_new(const struct master *m, const char *netflash_bin)
{
	struct nf_actions *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->m = m;
	snprintf(a->bin, sizeof(a->bin), "%s", netflash_bin);
	pthread_mutex_init(&a->lock, NULL);
	a->mf_exit = -1;
	a->ia_exit = -1;
	return a;
}

void nf_actions_free(struct nf_actions *a)
{
	if (!a)
		return;
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* ---- the request's settings ------------------------------------------- */

/* One JSON object whose members are each named in allowed, a
 * NULL-terminated list of "name:T": T is s (a string without NUL bytes),
 * n (a whole number >= 0, or a string of digits) or b (true or false).
 * Anything else, and anything after the object, is refused. */
struct settings {
	json_object *obj;
	char why[160];
};

static int type_ok(json_object *v, char t)
{
	const char *str;

	switch (t) {
	case 'b':
		return json_object_is_type(v, json_type_boolean);
	case 'n':
		if (json_object_is_type(v, json_type_int))
			return json_object_get_int64(v) >= 0;
		if (!json_object_is_type(v, json_type_string))
			return 0;
		str = json_object_get_string(v);
		return str[0] && strspn(str, "0123456789") == strlen(str) &&
		       (size_t)json_object_get_string_len(v) == strlen(str);
	default:
		return json_object_is_type(v, json_type_string) &&
		       (size_t)json_object_get_string_len(v) == strlen(json_object_get_string(v));
	}
}

static int settings_parse(struct settings *s, const char *body, const char *const *allowed)
{
	struct json_tokener *tok;
	size_t len = body ? strlen(body) : 0, end;

	s->why[0] = '\0';
	s->obj = NULL;
	if (!body || !body[strspn(body, " \t\r\n")])
		return 0;
	if (!(tok = json_tokener_new())) {
		snprintf(s->why, sizeof(s->why), "out of memory");
		return -1;
	}
	s->obj = json_tokener_parse_ex(tok, body, (int)len);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!s->obj || !json_object_is_type(s->obj, json_type_object) || body[end + strspn(body + end, " \t\r\n")]) {
		snprintf(s->why, sizeof(s->why), "the body must be one JSON object, and nothing after it");
		return -1;
	}
	json_object_object_foreach(s->obj, key, val) {
		size_t i = 0, kl = strlen(key);

		while (allowed[i] && !(strncmp(allowed[i], key, kl) == 0 && allowed[i][kl] == ':'))
			i++;
		if (!allowed[i]) {
			snprintf(s->why, sizeof(s->why), "unknown setting '%.40s' for this action (docs/api.md)", key);
			return -1;
		}
		if (!type_ok(val, allowed[i][kl + 1])) {
			snprintf(s->why, sizeof(s->why), "setting '%.40s' must be %s", key,
				 allowed[i][kl + 1] == 'b' ? "true or false"
				 : allowed[i][kl + 1] == 'n' ? "a whole number, 0 or more" : "a string (without NUL)");
			return -1;
		}
		if (json_object_is_type(val, json_type_string) && strlen(json_object_get_string(val)) >= ARG_MAX_LEN) {
			snprintf(s->why, sizeof(s->why), "a setting is longer than %d bytes", ARG_MAX_LEN - 1);
			return -1;
		}
	}
	return 0;
}

/* The string or number member key as text, or NULL. */
static const char *setting(struct settings *s, const char *key)
{
	json_object *v;

	return s->obj && json_object_object_get_ex(s->obj, key, &v) && !json_object_is_type(v, json_type_boolean)
		       ? json_object_get_string(v) : NULL;
}

static int flag(struct settings *s, const char *key)
{
	json_object *v;

	return s->obj && json_object_object_get_ex(s->obj, key, &v) && json_object_is_type(v, json_type_boolean) &&
	       json_object_get_boolean(v);
}

/* ---- running the CLI ---------------------------------------------------- */

/* argv (up to 16 strings) for netflash --root ROOT ... */
struct args {
	char *v[24];
	char buf[16][ARG_MAX_LEN + 32];
	int n, nb;
};

static void args_init(struct args *a, struct nf_actions *ac)
{
	a->n = a->nb = 0;
	a->v[a->n++] = ac->bin;
	a->v[a->n++] = "--root";
	a->v[a->n++] = (char *)ac->m->root;
	a->v[a->n] = NULL;
}

/* Adds "--opt=value" (or the word alone when opt is NULL) as ONE argument:
 * a value can never be read as an option of its own. */
static void args_add(struct args *a, const char *opt, const char *val)
{
	if (a->nb == 16 || a->n + 1 >= (int)(sizeof(a->v) / sizeof(a->v[0])))
		return;
	snprintf(a->buf[a->nb], sizeof(a->buf[0]), "%s%s%s", opt ? opt : "", opt && val ? "=" : "", val ? val : "");
	a->v[a->n++] = a->buf[a->nb++];
	a->v[a->n] = NULL;
}

static void answer(FILE *out, int ok, int exit_status, const char *output)
{
	char q[sizeof(((struct run_capture *)0)->output) * 6 + 8];

	fprintf(out, "{\"ok\":%s,\"exit\":%d,\"output\":%s}\n", ok ? "true" : "false", exit_status,
		nf_json_str(q, sizeof(q), output));
}

static void answer_error(FILE *out, const char *why)
{
	char q[800];

	fprintf(out, "{\"ok\":false,\"error\":%s}\n", nf_json_str(q, sizeof(q), why));
}

/* Runs the command; its exit status decides the HTTP status. */
static unsigned run_cli(struct args *a, FILE *out)
{
	struct run_capture rc;
	int r = master_run_bounded(a->v, environ, ACTION_TIMEOUT_S, &rc);

	if (r < 0) {
		answer_error(out, "netflash could not be started");
		return 500;
	}
	answer(out, rc.status == 0, rc.status, rc.output);
	return rc.status == 0 ? 200 : rc.timed_out ? 504 : rc.status == 2 ? 400 : 409;
}

/* ---- mass-flash: one at a time, in the background ------------------------ */

/* A background run that ended: *pid 0, its exit status (128 + signal). */
static void reap_one(pid_t *pid, int *exit_status)
{
	int status;

	if (*pid > 0 && waitpid(*pid, &status, WNOHANG) == *pid) {
		*exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		*pid = 0;
	}
}

static void reap_locked(struct nf_actions *a)
{
	reap_one(&a->mf_pid, &a->mf_exit);
	reap_one(&a->ia_pid, &a->ia_exit);
}

void nf_actions_reap(struct nf_actions *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	reap_locked(a);
	pthread_mutex_unlock(&a->lock);
}

static void mf_status(struct nf_actions *a, FILE *out)
{
	pid_t other = a->mf_pid > 0 ? 0 : master_run_lock_holder(a->m, "mass-flash");
	char q[ARG_MAX_LEN * 6 + 8];

	fprintf(out, "{\"running\":%s,\"pid\":%d,\"ours\":%s,\"image\":%s,\"started_at\":%lld,\"stopping\":%s,"
		"\"last_exit\":%d,\"log\":\"log/mass-flash.log\"}\n", a->mf_pid > 0 || other ? "true" : "false",
		(int)(other ? other : a->mf_pid), other ? "false" : "true", nf_json_str(q, sizeof(q), other ? "" : a->mf_image),
		(long long)(other ? 0 : a->mf_started), a->mf_stops ? "true" : "false", a->mf_exit);
}

/* {"multicast": true, "min_workers": N, "max_wait": S, "late": "wait"|"nfs"}
 * as enroll's and mass-flash's options (docs/multicast.md); the command
 * checks the values. */
static void add_multicast(struct args *args, struct settings *s)
{
	static const char *const keys[][2] = { { "min_workers", "--min-workers" }, { "max_wait", "--max-wait" },
						{ "late", "--late" } };

	if (flag(s, "multicast"))
		args_add(args, "--multicast", NULL);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (setting(s, keys[i][0]))
			args_add(args, keys[i][1], setting(s, keys[i][0]));
}

/* Starts args in the background, its output appended to ROOT/logname.
 * Returns its PID or -1. */
static pid_t spawn_logged(struct nf_actions *a, struct args *args, const char *logname)
{
	char logp[PATH_MAX];
	pid_t pid;
	int fd;

	if (master_path(a->m, logp, sizeof(logp), logname) < 0 ||
	    (fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)) < 0)
		return -1;
	pid = fork();
	if (pid == 0)
		master_child_exec(args->v, environ, fd, fd);
	close(fd);
	return pid < 0 ? -1 : pid;
}

static unsigned mf_start(struct nf_actions *a, struct settings *s, FILE *out)
{
	const char *image = setting(s, "image"), *limit = setting(s, "limit"), *pattern = setting(s, "hostname_pattern");
	struct args args;
	pid_t pid;

	if (!image) {
		answer_error(out, "mass-flash needs {\"image\": NAME}");
		return 400;
	}
	if (a->mf_pid > 0 || master_run_lock_holder(a->m, "mass-flash")) {
		answer_error(out, "a mass-flash is running already (DELETE /api/mass-flash stops it)");
		return 409;
	}
	args_init(&args, a);
	args_add(&args, "mass-flash", NULL);
	args_add(&args, "--image", image);
	if (limit)
		args_add(&args, "--limit", limit);
	if (pattern)
		args_add(&args, "--hostname-pattern", pattern);
	add_multicast(&args, s);
	if ((pid = spawn_logged(a, &args, "log/mass-flash.log")) < 0) {
		answer_error(out, "cannot start mass-flash (log/mass-flash.log)");
		return 500;
	}
	a->mf_pid = pid;
	snprintf(a->mf_image, sizeof(a->mf_image), "%s", image);
	a->mf_started = time(NULL);
	a->mf_stops = 0;
	/* Settings mass-flash refuses end it at once: say so now. */
	for (int i = 0; i < 20 && a->mf_pid > 0; i++) {
		usleep(50 * 1000);
		reap_locked(a);
	}
	if (a->mf_pid == 0) {
		answer_error(out, "mass-flash ended at once (its reason is in log/mass-flash.log)");
		return a->mf_exit == 2 ? 400 : 409;
	}
	mf_status(a, out);
	return 202;
}

static unsigned mf_stop(struct nf_actions *a, FILE *out)
{
	pid_t pid = a->mf_pid > 0 ? a->mf_pid : master_run_lock_holder(a->m, "mass-flash");

	if (pid <= 0) {
		answer_error(out, "no mass-flash is running");
		return 409;
	}
	/* As Ctrl-C: the first lets running jobs finish, a second leaves now. */
	kill(pid, SIGINT);
	a->mf_stops++;
	mf_status(a, out);
	return 200;
}

/* ---- the catalog: image add in the background, image rm ----------------- */

/* The last bytes of path (at most cap - 1, NUL-terminated). Returns their
 * count or -1. */
static ssize_t read_tail(const char *path, char *buf, size_t cap)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || (n = pread(fd, buf, cap - 1, st.st_size > (off_t)(cap - 1) ?
					     st.st_size - (off_t)(cap - 1) : 0)) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	buf[n] = '\0';
	return n;
}

/* {"running", "name", "last_exit", "last_line"}: the add this daemon runs or
 * ran, and the last line of log/image-add.log (its progress, or why not). */
static void ia_status(struct nf_actions *a, FILE *out)
{
	char logp[PATH_MAX], buf[4096], q[ARG_MAX_LEN * 6 + 8], l[600 * 6 + 8];
	const char *last = "";
	ssize_t n = master_path(a->m, logp, sizeof(logp), "log/image-add.log") < 0 ? -1 : read_tail(logp, buf, sizeof(buf));

	if (n > 0) {
		while (n > 0 && buf[n - 1] == '\n')
			buf[--n] = '\0';
		last = strrchr(buf, '\n') ? strrchr(buf, '\n') + 1 : buf;
	}
	fprintf(out, "{\"running\":%s,\"name\":%s,\"last_exit\":%d,\"last_line\":%s,\"log\":\"log/image-add.log\"}\n",
		a->ia_pid > 0 ? "true" : "false", nf_json_str(q, sizeof(q), a->ia_name), a->ia_exit,
		nf_json_str(l, sizeof(l), last));
}

/* POST /api/images {"path": FILE on the master, "name": NAME}: netflash image
 * add in the background (one at a time); DELETE /api/images/NAME: image rm. */
static unsigned images_action(struct nf_actions *a, const char *method, const char *path, struct settings *s,
			      FILE *out)
{
	struct args args;
	pid_t pid;

	args_init(&args, a);
	if (strcmp(method, "DELETE") == 0 && strncmp(path, "images/", 7) == 0 && path[7]) {
		args_add(&args, "image", NULL);
		args_add(&args, "rm", NULL);
		args_add(&args, "--", NULL); /* a name is never an option */
		args_add(&args, NULL, path + 7);
		return run_cli(&args, out);
	}
	if (strcmp(method, "POST") != 0 || strcmp(path, "images") != 0) {
		answer_error(out, "POST /api/images {\"path\", \"name\"}, or DELETE /api/images/NAME");
		return 404;
	}
	if (!setting(s, "path")) {
		answer_error(out, "image add needs {\"path\": FILE on the master}");
		return 400;
	}
	if (a->ia_pid > 0) {
		answer_error(out, "an image add is running already (GET /api/image-add says how far)");
		return 409;
	}
	args_add(&args, "image", NULL);
	args_add(&args, "add", NULL);
	if (setting(s, "name"))
		args_add(&args, "--name", setting(s, "name"));
	args_add(&args, "--", NULL);
	args_add(&args, NULL, setting(s, "path"));
	if ((pid = spawn_logged(a, &args, "log/image-add.log")) < 0) {
		answer_error(out, "cannot start image add (log/image-add.log)");
		return 500;
	}
	a->ia_pid = pid;
	snprintf(a->ia_name, sizeof(a->ia_name), "%s", setting(s, "name") ? setting(s, "name") : setting(s, "path"));
	ia_status(a, out);
	return 202;
}

void nf_actions_image_add_status(struct nf_actions *a, FILE *out)
{
	pthread_mutex_lock(&a->lock);
	reap_locked(a);
	ia_status(a, out);
	pthread_mutex_unlock(&a->lock);
}

/* ---- routes --------------------------------------------------------------- */

static unsigned build_worker_args(struct args *args, struct nf_actions *a, const char *mac, const char *verb,
				  struct settings *s, FILE *out);

static unsigned worker_action(struct nf_actions *a, const char *mac, const char *verb, const char *body,
			      FILE *out)
{
	static const char *const enroll_keys[] = { "image:s", "hostname:s", "model:s", "force:b", "multicast:b",
						   "min_workers:n", "max_wait:n", "late:s", NULL };
	static const char *const reimage_keys[] = { "image:s", "hostname:s", "multicast:b", "min_workers:n",
						    "max_wait:n", "late:s", NULL };
	static const char *const power_keys[] = { "off_time:n", NULL };
	static const char *const none[] = { NULL };
	const char *const *keys = strcmp(verb, "enroll") == 0 ? enroll_keys
				  : strcmp(verb, "reimage") == 0 ? reimage_keys
				  : strcmp(verb, "power-cycle") == 0 ? power_keys : none;
	struct settings st;
	struct args args;
	unsigned status;

	if (strcmp(verb, "enroll") != 0 && strcmp(verb, "release") != 0 && strcmp(verb, "reimage") != 0 &&
	    strcmp(verb, "power-cycle") != 0) {
		answer_error(out, "no such action: enroll, release, reimage or power-cycle");
		return 404;
	}
	if (settings_parse(&st, body, keys) < 0) {
		answer_error(out, st.why);
		json_object_put(st.obj);
		return 400;
	}
	status = build_worker_args(&args, a, mac, verb, &st, out);
	json_object_put(st.obj);
	return status ? status : run_cli(&args, out);
}

/* The command line of a worker action. Returns 0, or 400 after answering. */
static unsigned build_worker_args(struct args *args, struct nf_actions *a, const char *mac, const char *verb,
				  struct settings *s, FILE *out)
{
	args_init(args, a);
	if (strcmp(verb, "enroll") == 0 || strcmp(verb, "reimage") == 0) {
		args_add(args, verb, NULL);
		args_add(args, NULL, mac);
		if (!setting(s, "image")) {
			answer_error(out, "this action needs {\"image\": NAME}");
			return 400;
		}
		args_add(args, "--image", setting(s, "image"));
		if (setting(s, "hostname"))
			args_add(args, "--hostname", setting(s, "hostname"));
		if (setting(s, "model"))
			args_add(args, "--model", setting(s, "model"));
		if (flag(s, "force"))
			args_add(args, "--force", NULL);
		add_multicast(args, s);
	} else if (strcmp(verb, "release") == 0) {
		args_add(args, "release", NULL);
		args_add(args, NULL, mac);
	} else {
		args_add(args, "power", NULL);
		args_add(args, "cycle", NULL);
		if (setting(s, "off_time"))
			args_add(args, "--off-time", setting(s, "off_time"));
		args_add(args, NULL, mac);
	}
	return 0;
}

unsigned nf_actions_handle(struct nf_actions *a, const char *method, const char *path, const char *body,
			   FILE *out)
{
	static const char *const mf_keys[] = { "image:s", "limit:n", "hostname_pattern:s", "multicast:b", "min_workers:n",
					       "max_wait:n", "late:s", NULL };
	struct settings s = { .obj = NULL };
	unsigned status;

	if (strncmp(path, "workers/", 8) == 0 && strcmp(method, "POST") == 0) {
		char verb[16];
		const char *slash = strchr(path + 8, '/');
		struct nf_mac mac;
		size_t ml;

		if (!slash || (ml = (size_t)(slash - (path + 8))) >= 32 || strlen(slash + 1) >= sizeof(verb)) {
			answer_error(out, "expected POST /api/workers/MAC/ACTION");
			return 404;
		}
		char ms[32];

		memcpy(ms, path + 8, ml);
		ms[ml] = '\0';
		if (nf_mac_parse(ms, &mac) < 0) {
			char why[120];

			snprintf(why, sizeof(why), "'%s' is not a MAC address (six hex bytes, e.g. b8:27:eb:12:34:56)", ms);
			answer_error(out, why);
			return 400;
		}
		snprintf(verb, sizeof(verb), "%s", slash + 1);
		return worker_action(a, mac.s, verb, body, out);
	}
	if (strcmp(path, "mass-flash") == 0) {
		pthread_mutex_lock(&a->lock);
		reap_locked(a);
		if (strcmp(method, "POST") == 0) {
			if (settings_parse(&s, body, mf_keys) < 0) {
				answer_error(out, s.why);
				status = 400;
			} else {
				status = mf_start(a, &s, out);
			}
		} else if (strcmp(method, "DELETE") == 0) {
			status = mf_stop(a, out);
		} else {
			mf_status(a, out);
			status = 200;
		}
		pthread_mutex_unlock(&a->lock);
		json_object_put(s.obj);
		return status;
	}
	if (strcmp(path, "images") == 0 || strncmp(path, "images/", 7) == 0) {
		static const char *const ia_keys[] = { "path:s", "name:s", NULL };

		if (body[0] && settings_parse(&s, body, ia_keys) < 0) {
			answer_error(out, s.why);
			return 400;
		}
		pthread_mutex_lock(&a->lock);
		reap_locked(a);
		status = images_action(a, method, path, &s, out);
		pthread_mutex_unlock(&a->lock);
		json_object_put(s.obj);
		return status;
	}
	answer_error(out, "no such action");
	return 404;
}
