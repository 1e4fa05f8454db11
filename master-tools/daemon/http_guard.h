/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What keeps one host from holding the dashboard (docs/security.md): a
 * deadline for each request head, however slowly its bytes trickle in
 * (libmicrohttpd's timeout restarts with every byte), and a cap on the
 * live streams one address holds. The connection limits themselves are
 * libmicrohttpd's (in total and per address: http.c). */
#ifndef NETFLASH_HTTP_GUARD_H
#define NETFLASH_HTTP_GUARD_H

#include <netinet/in.h>

#define HTTP_HEAD_DEADLINE_S 10 /* a request head must be whole this long after
				 * its connection (or its previous request) */
#define HTTP_STREAMS_PER_ADDR 4 /* live /api/stream responses one address holds */

struct http_guard;

/* Starts the guard and its watchdog thread. Returns 0 or -errno. */
int http_guard_new(struct http_guard **out);

/* Stops the watchdog and frees g (NULL is fine). */
void http_guard_free(struct http_guard *g);

/* A connection opened (fd, from peer): its head deadline starts. *slot is
 * the handle for the calls below (NULL when the table is full: those
 * calls then do nothing). */
void http_guard_opened(struct http_guard *g, int fd, struct in_addr peer, void **slot);

/* The connection closed: its slot is free again. */
void http_guard_closed(struct http_guard *g, void **slot);

/* Its request head is whole: no deadline until the request is done. */
void http_guard_head_done(struct http_guard *g, void *slot);

/* Its request is done: the next head's deadline starts (keep-alive). */
void http_guard_request_done(struct http_guard *g, void *slot);

/* A live stream for this connection, within HTTP_STREAMS_PER_ADDR for its
 * address. Returns 0, or -EBUSY when its address holds that many. */
int http_guard_stream_take(struct http_guard *g, void *slot);

/* The stream ended. */
void http_guard_stream_put(struct http_guard *g, void *slot);

#endif
