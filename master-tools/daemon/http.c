/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "http.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <errno.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "actions.h"
#include "api.h"
#include "fileutil.h"
#include "http_guard.h"
#include "http_session.h"
#include "json.h"
#include "master.h"
#include "parse.h"
#include "store.h"
#include "web_assets.h"

#define HTTP_CONN_MAX 32          /* at once; more wait in the kernel's backlog */
#define HTTP_CONN_PER_ADDR 12     /* of them from one address: it takes three hosts to fill them */
#define HTTP_TIMEOUT_S 30         /* an idle connection is closed */
#define HTTP_MEMORY 32768         /* per connection: headers and URL must fit */
#define SSE_INTERVAL_S 1
#define SSE_STREAMS_MAX 8         /* of the 32: open streams never starve requests */
#define SSE_MAX_EVENTS 3600       /* a stream ends after an hour; EventSource reconnects */
#define JOBS_LIMIT_MAX 1000
#define BODY_MAX 4096             /* an action's JSON settings */
#define HOSTS_MAX 48              /* names and addresses a request's Host may be */
#define HOST_MAX 255              /* a DNS name's longest text form */

struct nf_http {
	struct MHD_Daemon *mhd;
	const struct master *m;
	char token[128];
	char admin_token[128];
	struct nf_actions *actions;
	atomic_int connections;
	atomic_int streams;       /* open /api/stream responses */
	struct http_guard *guard; /* head deadlines, streams per address */
	struct http_sessions *sessions; /* the page's logins (http_session.h) */
	char hosts[HOSTS_MAX][HOST_MAX + 1]; /* what Host may say (host_allowed) */
	size_t nhosts;
};

/* An action's request while its body arrives. */
struct upload {
	char body[BODY_MAX + 1];
	size_t len;
	int too_big;
};

/* The body of a response made with fn (into a memory stream). */
struct body {
	char *buf;
	size_t len;
	FILE *f;
};

static int body_open(struct body *b)
{
	b->buf = NULL;
	b->len = 0;
	b->f = open_memstream(&b->buf, &b->len);
	return b->f ? 0 : -ENOMEM;
}

/* send_buf() with a Set-Cookie header (cookie NULL: none). */
static enum MHD_Result send_buf_cookie(struct MHD_Connection *c, unsigned status, const char *type, char *buf,
				       size_t len, enum MHD_ResponseMemoryMode mode, const char *cookie)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, mode);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	if (cookie)
		MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	/* The page's own script and style only: data never becomes code. */
	MHD_add_response_header(r, "Content-Security-Policy",
				"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *type, char *buf, size_t len,
				enum MHD_ResponseMemoryMode mode)
{
	return send_buf_cookie(c, status, type, buf, len, mode, NULL);
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *why)
{
	char *msg = NULL, q[600];
	int n = asprintf(&msg, "{\"error\":%s}\n", nf_json_str(q, sizeof(q), why));

	if (n < 0)
		return MHD_NO;
	return send_buf(c, status, "application/json", msg, (size_t)n, MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result send_body(struct MHD_Connection *c, struct body *b, int r, const char *type)
{
	if (b->f)
		fclose(b->f);
	if (r < 0) {
		free(b->buf);
		return send_error(c, r == -ENOENT ? MHD_HTTP_NOT_FOUND : MHD_HTTP_INTERNAL_SERVER_ERROR,
				  r == -ENOENT ? "not found" : "cannot read the state database");
	}
	return send_buf(c, MHD_HTTP_OK, type, b->buf, b->len, MHD_RESPMEM_MUST_FREE);
}

/* Drops the answer being built (and st, NULL is fine) and sends an error. */
static enum MHD_Result refuse(struct MHD_Connection *c, struct body *b, struct store *st, unsigned status,
			      const char *why)
{
	store_close(st);
	fclose(b->f);
	free(b->buf);
	return send_error(c, status, why);
}

/* 1 if given (NULL is fine) is token, a set one (constant time). */
static int token_is(const char *given, const char *token)
{
	size_t tl = strlen(token);

	return tl && given && strlen(given) == tl && CRYPTO_memcmp(given, token, tl) == 0;
}

/* 1 if the request's Authorization is "Bearer " and token. */
static int bearer_is(struct MHD_Connection *c, const char *token)
{
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);

	return auth && strncmp(auth, "Bearer ", 7) == 0 && token_is(auth + 7, token);
}

static const char *role_name(enum http_role role)
{
	return role == HTTP_ROLE_ADMIN ? "admin" : role == HTTP_ROLE_READ ? "read" : "none";
}

/* The role of the request's session cookie (http_session.h). */
static enum http_role session_role(const struct nf_http *h, struct MHD_Connection *c)
{
	return http_session_role(h->sessions, MHD_lookup_connection_value(c, MHD_COOKIE_KIND, HTTP_SESSION_COOKIE));
}

/* What the request may do: the admin token's Bearer, else its session's
 * role, else the read token's Bearer, else nothing. */
static enum http_role request_role(const struct nf_http *h, struct MHD_Connection *c)
{
	enum http_role role = bearer_is(c, h->admin_token) ? HTTP_ROLE_ADMIN : session_role(h, c);

	return role == HTTP_ROLE_NONE && bearer_is(c, h->token) ? HTTP_ROLE_READ : role;
}

/* Reads: open without a reader token (loopback), else any role. */
static int authorized(const struct nf_http *h, struct MHD_Connection *c)
{
	return !h->token[0] || request_role(h, c) != HTTP_ROLE_NONE;
}

/* 1 if the request comes from this server's own page (a cookie alone would
 * also ride on a request another site's page makes: CSRF): its Origin is
 * http(s)://HOST with the request's own Host, or, without an Origin, the
 * browser says same-origin (Sec-Fetch-Site) or its Referer is on HOST.
 * Host itself is one of ours (host_allowed). */
static int same_origin(struct MHD_Connection *c)
{
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
	const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
	const char *ref = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_REFERER);
	char want[HOST_MAX + 16];
	size_t n;

	if (!host || strlen(host) > HOST_MAX)
		return 0;
	if (origin)
		return (snprintf(want, sizeof(want), "http://%s", host), strcasecmp(origin, want) == 0) ||
		       (snprintf(want, sizeof(want), "https://%s", host), strcasecmp(origin, want) == 0);
	if (site)
		return strcmp(site, "same-origin") == 0;
	if (!ref)
		return 0;
	n = (size_t)snprintf(want, sizeof(want), "http://%s/", host);
	return strncasecmp(ref, want, n) == 0;
}

/* ---- Host: this server's own names only (DNS rebinding) ------------------ */

static void add_host(struct nf_http *h, const char *name)
{
	if (!name || !name[0] || strlen(name) > HOST_MAX || h->nhosts == HOSTS_MAX)
		return;
	for (size_t i = 0; i < h->nhosts; i++)
		if (strcasecmp(h->hosts[i], name) == 0)
			return;
	snprintf(h->hosts[h->nhosts++], sizeof(h->hosts[0]), "%s", name);
}

/* What a request's Host may name: loopback's names, the bound address (or,
 * bound to every address, this machine's IPv4 addresses), the address
 * workers reach the master at, this machine's host name and the names the
 * admin gave (--http-name). A page on another name that resolves to us (DNS
 * rebinding) sends its own name as Host. */
static void collect_hosts(struct nf_http *h, const struct sockaddr_in *sa, const char *const *names)
{
	char buf[HOST_MAX + 1];
	struct ifaddrs *ifs = NULL;

	add_host(h, "localhost");
	add_host(h, "127.0.0.1");
	add_host(h, "::1");
	add_host(h, inet_ntop(AF_INET, &sa->sin_addr, buf, sizeof(buf)));
	if (h->m->have_conf)
		add_host(h, h->m->conf.server_ip);
	if (gethostname(buf, sizeof(buf)) == 0) {
		buf[sizeof(buf) - 1] = '\0';
		add_host(h, buf);
	}
	for (size_t i = 0; names && names[i]; i++)
		add_host(h, names[i]);
	if (sa->sin_addr.s_addr != htonl(INADDR_ANY) || getifaddrs(&ifs) < 0)
		return;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
			add_host(h, inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, buf,
					      sizeof(buf)));
	freeifaddrs(ifs);
}

/* 1 if the request's Host (without its port; an IPv6 literal in brackets)
 * is one of ours, or absent (HTTP/1.0: no browser page sends that). */
static int host_allowed(const struct nf_http *h, struct MHD_Connection *c)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	char name[HOST_MAX + 1];
	size_t n;

	if (!v)
		return 1;
	if (v[0] == '[') {
		const char *end = strchr(v, ']');

		if (!end)
			return 0;
		v++;
		n = (size_t)(end - v);
	} else {
		n = strcspn(v, ":");
	}
	if (n == 0 || n > HOST_MAX)
		return 0;
	memcpy(name, v, n);
	name[n] = '\0';
	for (size_t i = 0; i < h->nhosts; i++)
		if (strcasecmp(h->hosts[i], name) == 0)
			return 1;
	return 0;
}

/* The guard slot of c's connection (on_connection), or NULL. */
static void *connection_slot(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return i ? i->socket_context : NULL;
}

/* ---- server-sent events: the worker list every second ------------------ */

struct stream {
	struct nf_http *h;
	void *slot;               /* its connection's guard slot */
	char *pending;
	size_t len, off;
	unsigned events;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	struct store *st = NULL;
	struct body b;

	(void)pos;
	if (s->off == s->len) {
		free(s->pending);
		s->pending = NULL;
		s->off = s->len = 0;
		if (s->events++ >= SSE_MAX_EVENTS)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (s->events > 1)
			sleep(SSE_INTERVAL_S);
		if (body_open(&b) < 0)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		fputs("event: workers\ndata: ", b.f);
		if (master_open_store((struct master *)s->h->m, &st) < 0 || api_workers_json(b.f, st) < 0) {
			store_close(st);
			fclose(b.f);
			free(b.buf);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		store_close(st);
		fputs("\n\n", b.f);
		fclose(b.f);
		s->pending = b.buf;
		s->len = b.len;
	}
	size_t n = s->len - s->off < max ? s->len - s->off : max;

	memcpy(buf, s->pending + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct stream *s = cls;

	atomic_fetch_sub(&s->h->streams, 1);
	http_guard_stream_put(s->h->guard, s->slot);
	free(s->pending);
	free(s);
}

static enum MHD_Result send_stream(struct nf_http *h, struct MHD_Connection *c)
{
	struct stream *s = calloc(1, sizeof(*s));
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!s)
		return MHD_NO;
	s->slot = connection_slot(c);
	if (http_guard_stream_take(h->guard, s->slot) < 0) {
		free(s);
		return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "this address holds as many live streams as it may; "
				  "the page polls instead");
	}
	if (atomic_fetch_add(&h->streams, 1) >= SSE_STREAMS_MAX) {
		atomic_fetch_sub(&h->streams, 1);
		http_guard_stream_put(h->guard, s->slot);
		free(s);
		return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "too many live streams open; the page polls instead");
	}
	s->h = h;
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_free);
	if (!r) {
		atomic_fetch_sub(&h->streams, 1);
		http_guard_stream_put(h->guard, s->slot);
		free(s);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- routes ------------------------------------------------------------ */

/* state/sessions.json: 16 sessions of up to 256 members fit well within. */
#define SESSIONS_MAX_BYTES (4u << 20)

static enum MHD_Result api(struct nf_http *h, struct MHD_Connection *c, const char *url)
{
	struct store *st = NULL;
	struct body b;
	int r;

	if (strcmp(url, "/api/stream") == 0)
		return send_stream(h, c);
	if (body_open(&b) < 0)
		return MHD_NO;
	/* Routes that need no state database. */
	if (strcmp(url, "/api/mass-flash") == 0 && h->actions) {
		unsigned status = nf_actions_handle(h->actions, "GET", "mass-flash", NULL, b.f);

		fclose(b.f);
		return send_buf(c, status, "application/json", b.buf, b.len, MHD_RESPMEM_MUST_FREE);
	}
	if (strcmp(url, "/api/sessions") == 0) {
		char path[PATH_MAX], *text = malloc(SESSIONS_MAX_BYTES);
		ssize_t len = -ENOMEM;

		/* netflashd's own snapshot (mcast.c): [] before any session. */
		fclose(b.f);
		free(b.buf);
		if (text && master_path(h->m, path, sizeof(path), "state/sessions.json") == 0)
			len = nf_read_file(path, text, SESSIONS_MAX_BYTES);
		if (len > 0)
			return send_buf(c, MHD_HTTP_OK, "application/json", text, (size_t)len, MHD_RESPMEM_MUST_FREE);
		free(text);
		return send_buf(c, MHD_HTTP_OK, "application/json", "[]", 2, MHD_RESPMEM_PERSISTENT);
	}
	if (strcmp(url, "/api/image-add") == 0) {
		if (!h->actions)
			return refuse(c, &b, NULL, MHD_HTTP_NOT_FOUND, "actions are off in this netflashd");
		nf_actions_image_add_status(h->actions, b.f);
		return send_body(c, &b, 0, "application/json");
	}
	if (strcmp(url, "/api/images") == 0) {
		if ((r = api_images_json(b.f, h->m)) >= 0)
			fputc('\n', b.f);
		return send_body(c, &b, r, "application/json");
	}
	if ((r = master_open_store((struct master *)h->m, &st)) < 0) {
		r = -EIO;
	} else if (strcmp(url, "/api/workers") == 0) {
		r = api_workers_json(b.f, st);
	} else if (strncmp(url, "/api/workers/", 13) == 0) {
		struct nf_mac mac;
		char why[160];

		if (nf_mac_parse(url + 13, &mac) < 0) {
			snprintf(why, sizeof(why), "'%.40s' is not a MAC address (six hex bytes, e.g. b8:27:eb:12:34:56)",
				 url + 13);
			return refuse(c, &b, st, MHD_HTTP_BAD_REQUEST, why);
		}
		if ((r = api_worker_detail_json(b.f, st, mac.s)) == -ENOENT) {
			snprintf(why, sizeof(why), "no worker %.40s: it is not enrolled (see /api/workers)", url + 13);
			return refuse(c, &b, st, MHD_HTTP_NOT_FOUND, why);
		}
	} else if (strcmp(url, "/api/jobs") == 0) {
		const char *ms = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mac");
		const char *ls = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
		uint64_t limit = 100;
		struct nf_mac mac;

		if ((ls && nf_parse_u64(ls, 1, JOBS_LIMIT_MAX, &limit) < 0) || (ms && nf_mac_parse(ms, &mac) < 0)) {
			return refuse(c, &b, st, MHD_HTTP_BAD_REQUEST, "mac must be a MAC, limit 1..1000");
		}
		r = api_jobs_json(b.f, st, ms ? mac.s : NULL, (unsigned)limit);
	} else if (strcmp(url, "/api/events") == 0) {
		const char *ms = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mac");
		const char *ks = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "kind");
		const char *ls = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
		uint64_t limit = 200;
		enum nf_event_kind kind;
		struct nf_mac mac;

		if (!ms || nf_mac_parse(ms, &mac) < 0 || (ks && nf_event_kind_parse(ks, &kind) < 0) ||
		    (ls && nf_parse_u64(ls, 1, JOBS_LIMIT_MAX, &limit) < 0)) {
			return refuse(c, &b, st, MHD_HTTP_BAD_REQUEST,
					  "mac must be a MAC, kind an event kind (docs/api.md), limit 1..1000");
		}
		r = api_events_json(b.f, st, mac.s, ks ? &kind : NULL, (unsigned)limit);

	} else if (strcmp(url, "/metrics") == 0) {
		r = api_metrics(b.f, st, atomic_load(&h->connections));
		store_close(st);
		return send_body(c, &b, r, "text/plain; version=0.0.4; charset=utf-8");
	} else {
		r = -ENOENT;
	}
	store_close(st);
	if (r >= 0)
		fputc('\n', b.f);
	return send_body(c, &b, r, "application/json");
}

/* POST /api/session {"token": T}: a session of the role T is the token of
 * (read or admin), its id in the cookie; DELETE: logout. A wrong token is
 * answered after a second (one guess a second per connection). */
static enum MHD_Result session_request(struct nf_http *h, struct MHD_Connection *c, const char *method,
				       const char *body)
{
	static const char end[] = HTTP_SESSION_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0";
	char id[HTTP_SESSION_ID_HEX + 1], cookie[HTTP_SESSION_ID_HEX + 128], *msg = NULL;
	struct json_object *o = NULL, *v;
	const char *tok = NULL;
	enum http_role role;
	int n;

	if (strcmp(method, "DELETE") == 0) {
		http_session_end(h->sessions, MHD_lookup_connection_value(c, MHD_COOKIE_KIND, HTTP_SESSION_COOKIE));
		return send_buf_cookie(c, MHD_HTTP_OK, "application/json", (char *)"{\"ok\":true}\n", 12,
				       MHD_RESPMEM_PERSISTENT, end);
	}
	if ((o = json_tokener_parse(body)) && json_object_object_get_ex(o, "token", &v) &&
	    json_object_is_type(v, json_type_string))
		tok = json_object_get_string(v);
	if (!tok) {
		json_object_put(o);
		return send_error(c, MHD_HTTP_BAD_REQUEST, "log in with {\"token\": \"...\"}");
	}
	role = token_is(tok, h->admin_token) ? HTTP_ROLE_ADMIN : token_is(tok, h->token) ? HTTP_ROLE_READ : HTTP_ROLE_NONE;
	json_object_put(o);
	if (role == HTTP_ROLE_NONE) {
		sleep(1);
		return send_error(c, MHD_HTTP_UNAUTHORIZED, "that is neither the read token (ROOT/state/http.token) "
				  "nor the admin token (ROOT/state/admin.token)");
	}
	if (http_session_create(h->sessions, role, id) < 0)
		return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot make a session");
	snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d", HTTP_SESSION_COOKIE,
		 id, HTTP_SESSION_TTL_S);
	n = asprintf(&msg, "{\"ok\":true,\"role\":\"%s\",\"expires_in\":%d}\n", role_name(role),
		     HTTP_SESSION_TTL_S);
	if (n < 0)
		return MHD_NO;
	return send_buf_cookie(c, MHD_HTTP_OK, "application/json", msg, (size_t)n, MHD_RESPMEM_MUST_FREE, cookie);
}

/* GET /api/session, open to all: what this browser may do, for the page. */
static enum MHD_Result session_info(struct nf_http *h, struct MHD_Connection *c)
{
	enum http_role role = request_role(h, c);
	char *msg = NULL;
	int n;

	n = asprintf(&msg, "{\"role\":\"%s\",\"read\":%s,\"act\":%s}\n", role_name(role),
		     authorized(h, c) ? "true" : "false", role == HTTP_ROLE_ADMIN && h->actions ? "true" : "false");
	if (n < 0)
		return MHD_NO;
	return send_buf(c, MHD_HTTP_OK, "application/json", msg, (size_t)n, MHD_RESPMEM_MUST_FREE);
}

/* POST or DELETE under /api/: an action, with the admin token or an admin
 * session; or a login. The body (at most BODY_MAX bytes of JSON) arrives
 * over several calls. */
static enum MHD_Result action(struct nf_http *h, struct MHD_Connection *c, const char *url, const char *method,
			      const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct upload *u = *con_cls;
	struct body b;
	unsigned status;
	int login = strcmp(url, "/api/session") == 0;

	if (!u) {
		/* Refused before any body is read. A login, and an action with a
		 * session cookie, come from this server's own page only. */
		if (login && !same_origin(c))
			return send_error(c, MHD_HTTP_FORBIDDEN, "log in from this server's own page (its Origin)");
		if (!login && (!h->actions || !h->admin_token[0]))
			return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "actions are off in this netflashd");
		if (!login && !bearer_is(c, h->admin_token)) {
			enum http_role role = session_role(h, c);

			if (role == HTTP_ROLE_NONE)
				return send_error(c, MHD_HTTP_UNAUTHORIZED,
						  "actions need Authorization: Bearer with the admin token "
						  "(ROOT/state/admin.token), or a login with it on the page");
			if (role != HTTP_ROLE_ADMIN)
				return send_error(c, MHD_HTTP_FORBIDDEN, "this session logged in with the read token; "
						  "actions need a login with the admin token");
			if (!same_origin(c))
				return send_error(c, MHD_HTTP_FORBIDDEN,
						  "an action with a session cookie must come from this server's own page (its Origin)");
		}
		if (!(u = calloc(1, sizeof(*u))))
			return MHD_NO;
		*con_cls = u;
		return MHD_YES;
	}
	if (*upload_size) {
		if (u->len + *upload_size > BODY_MAX)
			u->too_big = 1;
		else
			memcpy(u->body + u->len, upload_data, *upload_size), u->len += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	if (u->too_big)
		return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "the body is larger than 4096 bytes");
	u->body[u->len] = '\0';
	if (memchr(u->body, '\0', u->len))
		return send_error(c, MHD_HTTP_BAD_REQUEST, "the body holds a NUL byte");
	if (login)
		return session_request(h, c, method, u->body);
	if (body_open(&b) < 0)
		return MHD_NO;
	status = nf_actions_handle(h->actions, method, url + 5, u->body, b.f);
	fclose(b.f);
	b.f = NULL;
	return send_buf(c, status, "application/json", b.buf, b.len, MHD_RESPMEM_MUST_FREE);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct nf_http *h = cls;

	(void)toe;
	http_guard_request_done(h->guard, connection_slot(c));
	free(*con_cls);
	*con_cls = NULL;
}

/* A connection opens or closes: its guard slot (http_guard.h). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct nf_http *h = cls;
	const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	const union MHD_ConnectionInfo *peer = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct in_addr addr = { 0 };

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		http_guard_closed(h->guard, socket_context);
		return;
	}
	if (peer && peer->client_addr && peer->client_addr->sa_family == AF_INET)
		addr = ((const struct sockaddr_in *)(const void *)peer->client_addr)->sin_addr;
	if (fd)
		http_guard_opened(h->guard, fd->connect_fd, addr, socket_context);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct nf_http *h = cls;
	static const struct { const char *path, *type; const char *data; const size_t *len; } assets[] = {
		{ "/", "text/html; charset=utf-8", web_index_html, &web_index_html_len },
		{ "/app.js", "text/javascript; charset=utf-8", web_app_js, &web_app_js_len },
		{ "/style.css", "text/css; charset=utf-8", web_style_css, &web_style_css_len },
	};

	(void)version;
	http_guard_head_done(h->guard, connection_slot(c));
	if (!host_allowed(h, c))
		return send_error(c, MHD_HTTP_MISDIRECTED_REQUEST, "this server answers only to its own names and "
				  "addresses (Host); add a name with netflashd --http-name");
	if ((strcmp(method, "POST") == 0 || strcmp(method, "DELETE") == 0) && strncmp(url, "/api/", 5) == 0)
		return action(h, c, url, method, upload_data, upload_size, con_cls);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET, or POST and DELETE for the actions under /api/");
	/* The page itself holds no data: it is what shows the login form. */
	for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++)
		if (strcmp(url, assets[i].path) == 0)
			return send_buf(c, MHD_HTTP_OK, assets[i].type, (char *)assets[i].data, *assets[i].len,
					MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/api/session") == 0)
		return session_info(h, c);
	if (!authorized(h, c))
		return send_error(c, MHD_HTTP_UNAUTHORIZED, "log in on the page, or send Authorization: Bearer with "
				  "the token in ROOT/state/http.token");
	if (strncmp(url, "/api/", 5) == 0 || strcmp(url, "/metrics") == 0)
		return api(h, c, url);
	return send_error(c, MHD_HTTP_NOT_FOUND, "not found");
}

int nf_http_start(struct nf_http **out, const struct master *m, const struct sockaddr_in *sa,
		  const char *const *names, const char *token, const char *admin_token, struct nf_actions *actions,
		  char *detail, size_t cap)
{
	struct nf_http *h;

	if (!(h = calloc(1, sizeof(*h))))
		return -ENOMEM;
	h->m = m;
	snprintf(h->token, sizeof(h->token), "%s", token ? token : "");
	snprintf(h->admin_token, sizeof(h->admin_token), "%s", admin_token ? admin_token : "");
	h->actions = actions;
	collect_hosts(h, sa, names);
	if (http_guard_new(&h->guard) < 0 || http_sessions_new(&h->sessions) < 0) {
		http_guard_free(h->guard);
		snprintf(detail, cap, "cannot start the connection watchdog");
		free(h);
		return -EAGAIN;
	}
	atomic_store(&h->connections, -1);
	h->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
				  on_request, h, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)sa,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONN_MAX,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_CONN_PER_ADDR,
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
	if (!h->mhd) {
		int e = errno ? errno : EADDRINUSE;

		snprintf(detail, cap, "cannot listen there: %s", strerror(e));
		http_guard_free(h->guard);
		http_sessions_free(h->sessions);
		free(h);
		return -e;
	}
	*out = h;
	return 0;
}

void nf_http_set_connections(struct nf_http *h, int n)
{
	if (h)
		atomic_store(&h->connections, n);
}

void nf_http_stop(struct nf_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->mhd);
	http_guard_free(h->guard);
	http_sessions_free(h->sessions);
	free(h);
}
