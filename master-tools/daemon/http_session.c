/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "http_session.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fileutil.h"

struct session {
	char id[HTTP_SESSION_ID_HEX + 1];
	enum http_role role;
	time_t created;
};

struct http_sessions {
	pthread_mutex_t lock; /* libmicrohttpd answers on a thread per connection */
	struct session s[HTTP_SESSIONS_MAX];
};

static time_t now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

int http_sessions_new(struct http_sessions **out)
{
	struct http_sessions *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	*out = s;
	return 0;
}

void http_sessions_free(struct http_sessions *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	OPENSSL_cleanse(s->s, sizeof(s->s));
	free(s);
}

static int live(const struct session *x, time_t t)
{
	return x->role != HTTP_ROLE_NONE && t - x->created < HTTP_SESSION_TTL_S;
}

int http_session_create(struct http_sessions *s, enum http_role role, char *id)
{
	size_t pick = 0;
	time_t t = now();
	int r = nf_random_hex(id, HTTP_SESSION_ID_HEX / 2);

	if (r < 0)
		return r;
	pthread_mutex_lock(&s->lock);
	/* A free or expired slot, else the oldest session's. */
	for (size_t i = 0; i < HTTP_SESSIONS_MAX; i++) {
		if (!live(&s->s[i], t)) {
			pick = i;
			break;
		}
		if (s->s[i].created < s->s[pick].created)
			pick = i;
	}
	memcpy(s->s[pick].id, id, HTTP_SESSION_ID_HEX + 1);
	s->s[pick].role = role;
	s->s[pick].created = t;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* The slot of id, or -1. Caller holds the lock. */
static int find(struct http_sessions *s, const char *id, time_t t)
{
	int found = -1;

	if (!id || strlen(id) != HTTP_SESSION_ID_HEX)
		return -1;
	for (int i = 0; i < HTTP_SESSIONS_MAX; i++)
		if (live(&s->s[i], t) && CRYPTO_memcmp(s->s[i].id, id, HTTP_SESSION_ID_HEX) == 0)
			found = i;
	return found;
}

enum http_role http_session_role(struct http_sessions *s, const char *id)
{
	enum http_role role = HTTP_ROLE_NONE;
	int i;

	pthread_mutex_lock(&s->lock);
	if ((i = find(s, id, now())) >= 0)
		role = s->s[i].role;
	pthread_mutex_unlock(&s->lock);
	return role;
}

void http_session_end(struct http_sessions *s, const char *id)
{
	int i;

	pthread_mutex_lock(&s->lock);
	if ((i = find(s, id, now())) >= 0)
		memset(&s->s[i], 0, sizeof(s->s[i]));
	pthread_mutex_unlock(&s->lock);
}
