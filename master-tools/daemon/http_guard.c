/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Request-head deadlines and per-address stream caps (http_guard.h). */
#include "http_guard.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#define SLOTS 64 /* more than libmicrohttpd's connection limit (http.c) */

struct slot {
	int used, fd;
	struct in_addr peer;
	double since;        /* when the current head's deadline started */
	int head_done;       /* the head arrived: no deadline until the request is done */
	int shut;            /* the watchdog closed it */
	int stream;          /* it holds a live stream */
};

struct http_guard {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t watchdog;
	int stop;
	struct slot slots[SLOTS];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Every half second: a connection whose head is late is shut down, which
 * makes libmicrohttpd's read end and close it. */
static void *watchdog_main(void *arg)
{
	struct http_guard *g = arg;

	pthread_mutex_lock(&g->lock);
	while (!g->stop) {
		struct timespec ts;
		double now = now_s();

		for (size_t i = 0; i < SLOTS; i++) {
			struct slot *s = &g->slots[i];

			if (s->used && !s->head_done && !s->shut && now - s->since >= HTTP_HEAD_DEADLINE_S) {
				shutdown(s->fd, SHUT_RDWR);
				s->shut = 1;
			}
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 500000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&g->cond, &g->lock, &ts);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

int http_guard_new(struct http_guard **out)
{
	struct http_guard *g = calloc(1, sizeof(*g));

	*out = NULL;
	if (!g)
		return -ENOMEM;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	if (pthread_create(&g->watchdog, NULL, watchdog_main, g) != 0) {
		pthread_mutex_destroy(&g->lock);
		pthread_cond_destroy(&g->cond);
		free(g);
		return -EAGAIN;
	}
	*out = g;
	return 0;
}

void http_guard_free(struct http_guard *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stop = 1;
	pthread_cond_signal(&g->cond);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->watchdog, NULL);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
	free(g);
}

void http_guard_opened(struct http_guard *g, int fd, struct in_addr peer, void **slot)
{
	*slot = NULL;
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < SLOTS; i++) {
		if (!g->slots[i].used) {
			g->slots[i] = (struct slot){ .used = 1, .fd = fd, .peer = peer, .since = now_s() };
			*slot = &g->slots[i];
			break;
		}
	}
	pthread_mutex_unlock(&g->lock);
}

void http_guard_closed(struct http_guard *g, void **slot)
{
	struct slot *s = *slot;

	if (!s)
		return;
	pthread_mutex_lock(&g->lock);
	s->used = 0;
	pthread_mutex_unlock(&g->lock);
	*slot = NULL;
}

/* The slot's head: done (no deadline), or awaited from now on. */
static void set_head(struct http_guard *g, struct slot *s, int done)
{
	if (!s)
		return;
	pthread_mutex_lock(&g->lock);
	s->head_done = done;
	if (!done)
		s->since = now_s();
	pthread_mutex_unlock(&g->lock);
}

void http_guard_head_done(struct http_guard *g, void *slot)
{
	set_head(g, slot, 1);
}

void http_guard_request_done(struct http_guard *g, void *slot)
{
	set_head(g, slot, 0);
}

int http_guard_stream_take(struct http_guard *g, void *slot)
{
	struct slot *s = slot;
	int held = 0, r = 0;

	if (!s)
		return 0;
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < SLOTS; i++)
		held += g->slots[i].used && g->slots[i].stream && g->slots[i].peer.s_addr == s->peer.s_addr;
	if (held >= HTTP_STREAMS_PER_ADDR)
		r = -EBUSY;
	else
		s->stream = 1;
	pthread_mutex_unlock(&g->lock);
	return r;
}

void http_guard_stream_put(struct http_guard *g, void *slot)
{
	struct slot *s = slot;

	if (!s)
		return;
	pthread_mutex_lock(&g->lock);
	s->stream = 0;
	pthread_mutex_unlock(&g->lock);
}
