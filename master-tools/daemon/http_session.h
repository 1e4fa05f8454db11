/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Browser sessions for the dashboard (docs/api.md "Logging in"): the read
 * or the admin token, entered once on the page's login form (POST
 * /api/session), yields a random session id that the browser keeps in an
 * HttpOnly, SameSite=Strict cookie, so a browser on the LAN, which cannot
 * send a Bearer header, can read the fleet and, with the admin token's
 * session, act. Sessions live in netflashd's memory: a restart logs
 * everybody out. */
#ifndef NETFLASH_HTTP_SESSION_H
#define NETFLASH_HTTP_SESSION_H

#include <stddef.h>

#define HTTP_SESSION_COOKIE "nf_session"
#define HTTP_SESSION_TTL_S (12 * 3600) /* a session ends this long after its login */
#define HTTP_SESSIONS_MAX 64           /* at once; a login beyond ends the oldest */
#define HTTP_SESSION_ID_HEX 64         /* 32 random bytes */

enum http_role { HTTP_ROLE_NONE, HTTP_ROLE_READ, HTTP_ROLE_ADMIN };

struct http_sessions;

/* An empty table. Returns 0 or -ENOMEM. */
int http_sessions_new(struct http_sessions **out);
void http_sessions_free(struct http_sessions *s);

/* A new session of role into id (HTTP_SESSION_ID_HEX + 1 bytes, from
 * getrandom). Returns 0 or -errno. */
int http_session_create(struct http_sessions *s, enum http_role role, char *id);

/* The role of session id (a cookie's value, NULL is fine): NONE when it is
 * unknown or expired. Compares in constant time. */
enum http_role http_session_role(struct http_sessions *s, const char *id);

/* Ends session id (logout); unknown ids are ignored. */
void http_session_end(struct http_sessions *s, const char *id);

#endif
