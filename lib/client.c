/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The worker's connection to the master: connect, send and receive lines,
 * QUERY, and notes (LOG, CARD) about the current job. The job itself
 * (HELLO, JOB, PATCH, PROGRESS, DONE, FAIL) is in client_job.c. */
#include "client.h"
#include "hmac.h"
#include "fileutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_internal.h"
#include "parse.h"

int nf_client_init(struct nf_client *c, const char *server, const char *mac, const char *token)
{
	const char *colon = strrchr(server, ':');
	struct in_addr a;
	uint64_t port;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->timeout_ms = 10000;
	if (!colon || (size_t)(colon - server) >= sizeof(c->host) || strlen(mac) != 17 ||
	    strlen(token) == 0 || strlen(token) >= sizeof(c->token))
		return -EINVAL;
	memcpy(c->host, server, (size_t)(colon - server));
	c->host[colon - server] = '\0';
	if (inet_pton(AF_INET, c->host, &a) != 1 || nf_parse_u64(colon + 1, 1, 65535, &port) < 0)
		return -EINVAL;
	c->port = (unsigned)port;
	strcpy(c->mac, mac);
	strcpy(c->token, token);
	return 0;
}

void nf_client_close(struct nf_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->rlen = 0;
}

int nf_client_connect(struct nf_client *c)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->port) };
	struct timeval tv = { .tv_sec = c->timeout_ms / 1000, .tv_usec = (c->timeout_ms % 1000) * 1000 };
	int one = 1;

	inet_pton(AF_INET, c->host, &sa.sin_addr);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		nf_client_close(c);
		snprintf(c->detail, sizeof(c->detail), "cannot connect to %s:%u: %s", c->host, c->port, strerror(e));
		return -e;
	}
	return 0;
}

int nf_client_send(struct nf_client *c, const struct nf_msg *m)
{
	char line[NF_PROTO_LINE_MAX + 1];
	int n = nf_msg_format(m, line, sizeof(line));
	size_t off = 0;

	if (n < 0)
		return n;
	while (off < (size_t)n) {
		ssize_t w = send(c->fd, line + off, (size_t)n - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;

			nf_client_close(c);
			return -e;
		}
		off += (size_t)w;
	}
	return 0;
}

/* Reads one line into m. Returns 0, -EPROTO, or a connection error. */
int nf_client_recv(struct nf_client *c, struct nf_msg *m)
{
	for (;;) {
		char *nl = memchr(c->rbuf, '\n', c->rlen);
		ssize_t n;

		if (nl) {
			size_t len = (size_t)(nl - c->rbuf);
			int r = nf_msg_parse(c->rbuf, len, m);

			memmove(c->rbuf, nl + 1, c->rlen - len - 1);
			c->rlen -= len + 1;
			if (r < 0)
				snprintf(c->detail, sizeof(c->detail), "malformed message from the master");
			return r < 0 ? -EPROTO : 0;
		}
		if (c->rlen == sizeof(c->rbuf) - 1) {
			nf_client_close(c);
			return -EPROTO;
		}
		n = recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - 1 - c->rlen, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n == 0 ? ECONNRESET : errno == EAGAIN ? ETIMEDOUT : errno;

			nf_client_close(c);
			return -e;
		}
		c->rlen += (size_t)n;
	}
}

/* Connects if needed and starts m as verb with this worker's identity
 * (v, mac, token): the first message of a connection. Returns 0 or -errno. */
int nf_client_start(struct nf_client *c, struct nf_msg *m, const char *verb)
{
	int r;

	if (c->fd < 0 && (r = nf_client_connect(c)) < 0)
		return r;
	nf_msg_init(m, verb);
	nf_msg_add(m, "v", "1");
	nf_msg_add(m, "mac", c->mac);
	nf_msg_add(m, "token", c->token);
	return 0;
}

/* A master's answer that is not the one hoped for: NOJOB -ENOENT, ERR
 * (refused) -EACCES, anything else -EPROTO. */
int nf_client_refusal(const struct nf_msg *m)
{
	if (strcmp(m->verb, "NOJOB") == 0)
		return -ENOENT;
	if (strcmp(m->verb, "ERR") == 0)
		return -EACCES;
	return -EPROTO;
}

/* proof (from the master) must be HMAC(token, role, ...): 1 if so. */
static int proof_ok(const struct nf_client *c, const char *role, const char *cnonce, const char *snonce,
		    const char *extra, const char *proof)
{
	char want[65];

	return proof && nf_query_proof(c->token, role, c->mac, cnonce, snonce, extra, want) == 0 &&
	       nf_equal_ct(want, proof);
}

/* QUERY v=2: the master proves it holds the token, then so does the agent,
 * and the verdict carries a proof too; the token never travels. */
static int query_exchange(struct nf_client *c, const char *cnonce, struct nf_msg *m)
{
	const char *snonce, *v;
	char proof[65], sn[33];
	int r;

	nf_msg_init(m, "QUERY");
	nf_msg_add(m, "v", "2");
	nf_msg_add(m, "mac", c->mac);
	nf_msg_add(m, "cnonce", cnonce);
	if ((r = nf_client_send(c, m)) < 0 || (r = nf_client_recv(c, m)) < 0)
		return r;
	if (strcmp(m->verb, "ERR") == 0)
		return 1; /* a refusal: the caller reads it */
	if (strcmp(m->verb, "CHALLENGE") != 0)
		return -EPERM; /* an unproven verdict (ENROLLED, NOJOB) counts for nothing */
	snonce = nf_msg_get(m, "snonce");
	if (!snonce || strlen(snonce) != 32 || !proof_ok(c, "master", cnonce, snonce, "", nf_msg_get(m, "proof")))
		return -EPERM;
	snprintf(sn, sizeof(sn), "%s", snonce); /* m is reused below */
	if (nf_query_proof(c->token, "worker", c->mac, cnonce, sn, "", proof) < 0)
		return -EPROTO;
	nf_msg_init(m, "PROVE");
	nf_msg_add(m, "proof", proof);
	if ((r = nf_client_send(c, m)) < 0 || (r = nf_client_recv(c, m)) < 0)
		return r;
	v = nf_msg_get(m, strcmp(m->verb, "ENROLLED") == 0 ? "image" : "reason");
	if ((strcmp(m->verb, "ENROLLED") == 0 || strcmp(m->verb, "NOJOB") == 0) &&
	    !proof_ok(c, m->verb[0] == 'E' ? "enrolled" : "nojob", cnonce, sn, v ? v : "",
		      nf_msg_get(m, "proof")))
		return -EPERM;
	return 1;
}

int nf_client_query(struct nf_client *c, char *image, size_t cap)
{
	struct nf_msg m;
	char cnonce[33];
	const char *v;
	int r;

	if ((r = nf_random_hex(cnonce, 16)) < 0)
		return r;
	if (c->fd < 0 && (r = nf_client_connect(c)) < 0)
		return r;
	r = query_exchange(c, cnonce, &m);
	nf_client_close(c);
	if (r == -EPERM) {
		snprintf(c->detail, sizeof(c->detail), "the master could not prove it holds this worker's token");
		return r;
	}
	if (r < 0)
		return r;
	v = nf_msg_get(&m, strcmp(m.verb, "ENROLLED") == 0 ? "image" : "reason");
	snprintf(c->detail, sizeof(c->detail), "%s", v ? v : m.verb);
	if (strcmp(m.verb, "ENROLLED") == 0 && v) {
		snprintf(image, cap, "%s", v);
		return 0;
	}
	return nf_client_refusal(&m);
}

/* A best-effort message about the current job (LOG, CARD): only while
 * connected, never reconnects for it. k2 may be NULL. */
/* A note about the job (LOG, CARD: no answer), made by its table from in. */
static int send_note(struct nf_client *c, const struct nf_vspec *v, const void *in)
{
	struct nf_msg m;

	if (c->fd < 0 || !c->job_id)
		return -ENOTCONN;
	if (nf_msg_write(&m, v, in) < 0)
		return -EMSGSIZE;
	return nf_client_send(c, &m);
}

int nf_client_log(struct nf_client *c, const char *line)
{
	struct nf_log_msg l = { .id = c->job_id };

	snprintf(l.line, sizeof(l.line), "%s", line);
	return send_note(c, &nf_log_vspec, &l);
}

int nf_client_card(struct nf_client *c, enum nf_card_finding what, const char *text)
{
	struct nf_card_msg k = { .id = c->job_id };

	snprintf(k.what, sizeof(k.what), "%s", nf_card_finding_name(what));
	snprintf(k.text, sizeof(k.text), "%s", text);
	return send_note(c, &nf_card_vspec, &k);
}
