/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflashd's connections: the listener and accepting within the caps
 * (connections in all, from one address, fds left for files), each
 * connection's bounded line buffer, the one-send answers and rate-limited
 * refusals every handler uses, and the sweep that closes the slow and the
 * idle. What a line means is worker_proto.c's. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon_int.h"
#include "log.h"
#include "parse.h"

#define FD_RESERVE 64          /* fds kept for the database, manifests, TFTP dirs, logs */
#define MAX_PER_ADDR 32        /* connections from one LAN address (a worker needs one) */
#define PREAUTH_SHARE 2        /* connections without a HELLO take at most 1/2 of the table */
#define PREAUTH_PER_NET 128    /* of them from one /24 (4 addresses' worth) */
#define REFUSALS_LOGGED 20     /* refusals logged per second at most; the rest are counted */
#define IDLE_TIMEOUT 300       /* s: a worker reports far more often */

void conn_close(struct daemon *d, struct conn *c)
{
	for (unsigned i = 0; i < d->nconns; i++) {
		if (d->conns[i] == c) {
			d->conns[i] = d->conns[--d->nconns];
			break;
		}
	}
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

int conn_reply(struct conn *c, const struct nf_msg *m)
{
	char line[NF_PROTO_LINE_MAX + 1];
	int n = nf_msg_format(m, line, sizeof(line));

	if (n < 0)
		return n;
	return send(c->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n ? 0 : -EIO;
}

int conn_reply_simple(struct conn *c, const char *verb, const char *reason)
{
	struct nf_msg m;

	nf_msg_init(&m, verb);
	if (c->state == CONN_IN_JOB)
		nf_msg_addf(&m, "id", "%llu", (unsigned long long)c->job);
	if (reason)
		nf_msg_add(&m, "reason", reason);
	return conn_reply(c, &m);
}

/* A flood of bad connections must not flood the log. */
int conn_refusal_loggable(struct daemon *d)
{
	time_t now = time(NULL);

	if (now != d->refusal_sec) {
		if (d->refusals_dropped)
			nf_warn("%u more refusal(s) in the last second(s) not logged", d->refusals_dropped);
		d->refusal_sec = now;
		d->refusals = d->refusals_dropped = 0;
	}
	if (d->refusals++ < REFUSALS_LOGGED)
		return 1;
	d->refusals_dropped++;
	return 0;
}

int conn_refuse_because(struct daemon *d, struct conn *c, const char *reason, const char *what, const char *fmt, ...)
{
	char detail[300], q[256];
	va_list ap;

	if (conn_refusal_loggable(d)) {
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
		nf_warn("refused %s from %s: %s", what ? nf_quote(q, sizeof(q), what) : "message", c->peer, detail);
	}
	conn_reply_simple(c, "ERR", reason);
	return -EPROTO;
}

int conn_refuse(struct daemon *d, struct conn *c, const char *reason, const char *what)
{
	return conn_refuse_because(d, c, reason, what, "%s", reason);
}

void conn_readable(struct daemon *d, struct conn *c)
{
	/* One read a turn, at most a line buffer's worth: the loop is
	 * level-triggered, so what is left comes next turn, after every other
	 * ready connection had its turn. A peer flooding lines cannot keep
	 * another's HELLO waiting (reading until EAGAIN did, 21.7 s). */
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
	char *nl;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(d, c);
		return;
	}
	c->len += (size_t)n;
	while ((nl = memchr(c->buf, '\n', c->len))) {
		size_t len = (size_t)(nl - c->buf);

		if (worker_dispatch(d, c, c->buf, len) < 0) {
			conn_close(d, c);
			return;
		}
		memmove(c->buf, nl + 1, c->len - len - 1);
		c->len -= len + 1;
	}
	if (c->len == sizeof(c->buf)) {
		conn_refuse(d, c, "line-too-long", NULL);
		conn_close(d, c);
		return;
	}
	c->partial_since = c->len ? (c->partial_since ? c->partial_since : time(NULL)) : 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Out of fds: the listener stays readable, so accepting again at once would
 * spin. Take it out of the loop for a moment instead (conn_resume_accept()). */
static void pause_accept(struct daemon *d, int err)
{
	struct epoll_event ev = { .events = 0, .data.ptr = NULL };

	epoll_ctl(d->epfd, EPOLL_CTL_MOD, d->lfd, &ev);
	d->accept_resume_ms = now_ms() + ACCEPT_PAUSE_MS;
	if (conn_refusal_loggable(d))
		nf_warn("cannot accept connections: %s (%u open); pausing %u ms", strerror(err), d->nconns,
			ACCEPT_PAUSE_MS);
}

void conn_resume_accept(struct daemon *d)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	if (d->accept_resume_ms && now_ms() >= d->accept_resume_ms) {
		epoll_ctl(d->epfd, EPOLL_CTL_MOD, d->lfd, &ev);
		d->accept_resume_ms = 0;
	}
}

/* Connections from addr; loopback (local processes) is not capped. */
static unsigned conns_from(const struct daemon *d, struct in_addr addr)
{
	unsigned n = 0;

	if ((ntohl(addr.s_addr) >> 24) == 127)
		return 0;
	for (unsigned i = 0; i < d->nconns; i++)
		n += d->conns[i]->addr.s_addr == addr.s_addr;
	return n;
}

/* Whom a new connection from addr displaces: a flood of idle connections
 * that never say HELLO must not lock a worker out (132 addresses x 32 did,
 * refusing 4 of 6 HELLOs of a real worker). Connections without a HELLO
 * have a share of the table and, from one /24 (loopback is one host),
 * another; past either, or with the table full, the oldest of them goes
 * (from that /24 for its share). An authenticated worker is never
 * displaced. Returns the one to close, or NULL. */
static struct conn *displaced_by(const struct daemon *d, struct in_addr addr)
{
	uint32_t net = ntohl(addr.s_addr) >> 8;
	int loopback = (ntohl(addr.s_addr) >> 24) == 127;
	struct conn *oldest = NULL, *oldest_net = NULL;
	unsigned pre = 0, pre_net = 0;

	for (unsigned i = 0; i < d->nconns; i++) {
		struct conn *c = d->conns[i];

		if (c->state >= CONN_AUTHED)
			continue;
		pre++;
		if (!oldest || c->opened < oldest->opened)
			oldest = c;
		if (!loopback && ntohl(c->addr.s_addr) >> 8 == net) {
			pre_net++;
			if (!oldest_net || c->opened < oldest_net->opened)
				oldest_net = c;
		}
	}
	if (pre_net >= PREAUTH_PER_NET)
		return oldest_net;
	if (d->nconns >= d->max_conns || pre >= d->max_conns / PREAUTH_SHARE)
		return oldest;
	return NULL;
}

void conn_accept(struct daemon *d)
{
	for (;;) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		int fd = accept4(d->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN };
		struct conn *c;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				pause_accept(d, errno);
			return;
		}
		struct conn *victim = conns_from(d, sa.sin_addr) < MAX_PER_ADDR ? displaced_by(d, sa.sin_addr) : NULL;

		if (victim) {
			if (conn_refusal_loggable(d))
				nf_warn("closed %s, the oldest connection without a HELLO, for one from %s", victim->peer,
					inet_ntoa(sa.sin_addr));
			conn_close(d, victim);
		}
		if (d->nconns >= d->max_conns || conns_from(d, sa.sin_addr) >= MAX_PER_ADDR ||
		    !(c = calloc(1, sizeof(*c)))) {
			if (conn_refusal_loggable(d))
				nf_warn("dropped a connection from %s: %s", inet_ntoa(sa.sin_addr),
					d->nconns >= d->max_conns ? "too many connections" : "too many from that address");
			close(fd);
			continue;
		}
		c->fd = fd;
		c->addr = sa.sin_addr;
		c->opened = c->last_msg = time(NULL);
		c->state = CONN_NEW;
		snprintf(c->peer, sizeof(c->peer), "%s:%u", inet_ntoa(sa.sin_addr), ntohs(sa.sin_port));
		ev.data.ptr = c;
		if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		d->conns[d->nconns++] = c;
	}
}

void conn_sweep(struct daemon *d)
{
	time_t now = time(NULL);

	for (unsigned i = 0; i < d->nconns;) {
		struct conn *c = d->conns[i];
		const char *why = NULL;

		if (c->state < CONN_AUTHED && now - c->opened > (time_t)(d->slow_timeout * 3 / 2))
			why = "no HELLO in time";
		else if (now - c->last_msg > IDLE_TIMEOUT)
			why = "idle";
		else if (c->partial_since && now - c->partial_since > (time_t)d->slow_timeout)
			why = "half a line for too long";
		if (why) {
			nf_dbg("closed %s: %s", c->peer, why);
			conn_close(d, c);
			continue; /* conn_close moved another into slot i */
		}
		i++;
	}
}

int conn_listen(struct daemon *d, const char *spec)
{
	struct sockaddr_in sa;
	int one = 1;

	if (nf_parse_ipv4_port(spec, &sa) < 0)
		return -EINVAL;
	d->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->lfd < 0)
		return -errno;
	setsockopt(d->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(d->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(d->lfd, 512) < 0)
		return -errno;
	return 0;
}

/* A unit without LimitNOFILE gets 1024; leave FD_RESERVE of them for files. */
void conn_size_for_fds(struct daemon *d)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			nf_warn("cannot raise the open-file limit: %s, ignoring", strerror(errno));
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		rl.rlim_cur = 1024;
	d->max_conns = rl.rlim_cur > MAX_CONNS + FD_RESERVE ? MAX_CONNS
		       : rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)(rl.rlim_cur - FD_RESERVE) : (unsigned)(rl.rlim_cur / 2);
}
