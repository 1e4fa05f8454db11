/* netflashd's web dashboard and JSON API (docs/api.md), served with
 * libmicrohttpd in threads of their own: GET only, read from the state
 * database through a connection of each request's own. */
#ifndef NETFLASH_HTTP_H
#define NETFLASH_HTTP_H

#include <netinet/in.h>
#include <stddef.h>

struct master;
struct nf_http;

/* Serves on sa (nf_parse_ipv4_port). token: NULL, or the bearer token
 * every request must carry (Authorization: Bearer TOKEN; compared in
 * constant time). Returns 0 with *out, or -errno with a one-line reason
 * in detail. m must outlive the server. */
int nf_http_start(struct nf_http **out, const struct master *m, const struct sockaddr_in *sa,
		  const char *token, char *detail, size_t cap);

/* The daemon's open worker connections, for /metrics. */
void nf_http_set_connections(struct nf_http *h, int n);

/* Stops serving (waits for the request threads) and frees h; NULL is fine. */
void nf_http_stop(struct nf_http *h);

#endif
