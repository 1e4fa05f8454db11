/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "udpcast.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netif.h"
#include "parse.h"

extern char **environ;

int nf_udpcast_parse(const char *url, struct nf_udpcast_url *u, char *why, size_t cap)
{
	const char *p = url + strlen(NF_UDPCAST_SCHEME), *colon, *q;
	char host[32], port[8];
	struct in_addr a;
	uint64_t pb;

	memset(u, 0, sizeof(*u));
	if (strncmp(url, NF_UDPCAST_SCHEME, strlen(NF_UDPCAST_SCHEME)) != 0) {
		snprintf(why, cap, "not a udpcast:// URL");
		return -EINVAL;
	}
	colon = strchr(p, ':');
	q = strchr(p, '?');
	if (!colon || (q && q < colon) || (size_t)(colon - p) >= sizeof(host)) {
		snprintf(why, cap, "expected udpcast://IPV4:PORTBASE");
		return -EINVAL;
	}
	memcpy(host, p, (size_t)(colon - p));
	host[colon - p] = '\0';
	if (inet_pton(AF_INET, host, &a) != 1) {
		snprintf(why, cap, "'%s' is not an IPv4 address", host);
		return -EINVAL;
	}
	size_t plen = q ? (size_t)(q - colon - 1) : strlen(colon + 1);
	if (plen == 0 || plen >= sizeof(port)) {
		snprintf(why, cap, "expected a port base after the address");
		return -EINVAL;
	}
	memcpy(port, colon + 1, plen);
	port[plen] = '\0';
	if (nf_parse_u64(port, 1024, 65534, &pb) < 0 || pb % 2) {
		snprintf(why, cap, "port base '%s' must be an even number from 1024 to 65534", port);
		return -EINVAL;
	}
	for (const char *o = q; o && *o; o = strchr(o + 1, '&')) {
		size_t seg = strcspn(o + 1, "&");
		const char *v = memchr(o + 1, '=', seg);
		size_t klen = v ? (size_t)(v - o - 1) : 0, vlen = v ? seg - klen - 1 : 0;
		char val[16];
		uint64_t n;

		if (!v || vlen == 0 || vlen >= sizeof(val)) {
			snprintf(why, cap, "options are ?if=INTERFACE&start=SECONDS");
			return -EINVAL;
		}
		memcpy(val, v + 1, vlen);
		val[vlen] = '\0';
		if (klen == 2 && strncmp(o + 1, "if", 2) == 0 && vlen < sizeof(u->ifname) &&
		    strspn(val, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == vlen) {
			memcpy(u->ifname, val, vlen + 1);
		} else if (klen == 5 && strncmp(o + 1, "start", 5) == 0 && nf_parse_u64(val, 1, 86400, &n) == 0) {
			u->start_s = (unsigned)n;
		} else {
			snprintf(why, cap, "bad option '%.*s' (options: if=INTERFACE, start=SECONDS 1..86400)",
				 (int)(klen + 1 + vlen), o + 1);
			return -EINVAL;
		}
	}
	inet_ntop(AF_INET, &a, u->host, sizeof(u->host));
	u->portbase = (unsigned)pb;
	return 0;
}

int nf_udpcast_pick_interface(struct nf_udpcast_url *u, char *why, size_t cap)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) }, me;
	socklen_t len = sizeof(me);
	int fd, r;

	if (u->ifname[0])
		return 0;
	inet_pton(AF_INET, u->host, &to.sin_addr);
	/* connect() on a UDP socket only picks the route: nothing is sent. */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&me, &len) < 0) {
		r = -errno;
		snprintf(why, cap, "no route to the sender %s: %s", u->host, strerror(errno));
		if (fd >= 0)
			close(fd);
		return r;
	}
	close(fd);
	if ((r = nf_iface_with_addr(me.sin_addr, u->ifname, sizeof(u->ifname))) == -ENOENT)
		snprintf(why, cap, "no interface holds this machine's address toward %s", u->host);
	else if (r < 0)
		snprintf(why, cap, "cannot list interfaces: %s", strerror(-r));
	return r;
}

pid_t nf_udpcast_receive(const struct nf_udpcast_url *u, unsigned start_s, unsigned idle_s, int *out_fd,
			 int *err_fd, char *why, size_t cap)
{
	char pb[12], st[12], it[12];
	char *argv[] = { "udp-receiver", "--nokbd", "--portbase", pb, "--interface", (char *)u->ifname,
			 "--start-timeout", st, "--receive-timeout", it, "--no-progress", NULL };
	int out[2] = { -1, -1 }, err[2] = { -1, -1 }, r;
	posix_spawn_file_actions_t fa;
	pid_t pid;

	snprintf(pb, sizeof(pb), "%u", u->portbase);
	snprintf(st, sizeof(st), "%u", start_s);
	snprintf(it, sizeof(it), "%u", idle_s);
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		r = -errno;
		snprintf(why, cap, "cannot make a pipe for udp-receiver: %s", strerror(errno));
		goto fail;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	r = posix_spawnp(&pid, "udp-receiver", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0) {
		snprintf(why, cap, "cannot run udp-receiver (Debian package udpcast): %s", strerror(r));
		r = -r;
		goto fail;
	}
	close(out[1]);
	close(err[1]);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(err[0], F_SETFL, O_NONBLOCK);
	*out_fd = out[0];
	*err_fd = err[0];
	return pid;
fail:
	for (int k = 0; k < 2; k++) {
		if (out[k] >= 0)
			close(out[k]);
		if (err[k] >= 0)
			close(err[k]);
	}
	return r;
}
