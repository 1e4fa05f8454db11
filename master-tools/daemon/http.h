/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflashd's web dashboard and JSON API (docs/api.md), served with
 * libmicrohttpd in threads of their own: GET only, read from the state
 * database through a connection of each request's own. */
#ifndef NETFLASH_HTTP_H
#define NETFLASH_HTTP_H

#include <netinet/in.h>
#include <stddef.h>

struct master;
struct nf_http;

struct nf_actions;

/* Serves on sa (nf_parse_ipv4_port), answering only requests whose Host is
 * one of this server's own names or addresses, or one of names
 * (NULL-terminated, may be NULL), else 421. token: NULL, or the bearer token
 * every read must carry (Authorization: Bearer TOKEN). admin_token: the
 * one every action (POST, DELETE) must carry, and which also allows reads;
 * NULL: no actions. Tokens are compared in constant time. actions: runs
 * them (actions.h). Returns 0 with *out, or -errno with a one-line reason
 * in detail. m and actions must outlive the server. */
int nf_http_start(struct nf_http **out, const struct master *m, const struct sockaddr_in *sa,
		  const char *const *names, const char *token, const char *admin_token, struct nf_actions *actions,
		  char *detail, size_t cap);

/* The daemon's open worker connections, for /metrics. */
void nf_http_set_connections(struct nf_http *h, int n);

/* Stops serving (waits for the request threads) and frees h; NULL is fine. */
void nf_http_stop(struct nf_http *h);

#endif
