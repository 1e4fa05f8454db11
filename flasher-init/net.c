/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "net.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <net/route.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DHCP_MAX 576            /* RFC 2131: the minimum every client must take */
#define DHCP_FIXED 236          /* op .. file */
#define DHCP_MAGIC 0x63825363u

/* The fixed header's fields (RFC 2131 section 2, figure 1): byte offsets. */
#define BOOTP_OP_OFF 0
#define BOOTP_HTYPE_OFF 1
#define BOOTP_HLEN_OFF 2
#define BOOTP_XID_OFF 4
#define BOOTP_FLAGS_OFF 10
#define BOOTP_YIADDR_OFF 16
#define BOOTP_CHADDR_OFF 28
#define BOOTP_MAGIC_OFF DHCP_FIXED
#define BOOTP_OPTIONS_OFF (DHCP_FIXED + 4)
#define BOOTREQUEST 1
#define BOOTREPLY 2
#define HTYPE_ETHERNET 1
#define BOOTP_FLAG_BROADCAST 0x80 /* high bit of flags, first byte */

/* Options (RFC 2132). */
enum {
	OPT_PAD = 0,
	OPT_SUBNET_MASK = 1,        /* 4 bytes */
	OPT_ROUTER = 3,             /* 4 bytes or more (a list) */
	OPT_DNS = 6,
	OPT_BROADCAST = 28,
	OPT_REQUESTED_IP = 50,      /* 4 bytes */
	OPT_MESSAGE_TYPE = 53,      /* 1 byte */
	OPT_SERVER_ID = 54,         /* 4 bytes */
	OPT_PARAMS = 55,
	OPT_END = 255,
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int first_iface(const char *preferred, char out[IF_NAMESIZE])
{
	DIR *d = opendir("/sys/class/net");
	struct dirent *e;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, "lo") == 0 || strlen(e->d_name) >= IF_NAMESIZE)
			continue;
		if (preferred && strcmp(e->d_name, preferred) != 0)
			continue;
		strcpy(out, e->d_name);
		found = 1;
	}
	closedir(d);
	return found;
}

int nf_net_find(const char *preferred, unsigned timeout_s, char ifname[IF_NAMESIZE])
{
	double deadline = now_s() + timeout_s;

	do {
		if (first_iface(preferred, ifname))
			return 0;
		usleep(100000);
	} while (now_s() < deadline);
	return -ENODEV;
}

int nf_net_mac(const char *ifname, uint8_t mac[6])
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		r = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return r;
}

static int ifreq_ioctl(unsigned long req, struct ifreq *ifr)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, req, ifr) < 0)
		r = -errno;
	close(fd);
	return r;
}

int nf_net_configured(const char *ifname)
{
	struct ifreq ifr = { 0 };

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_addr.sa_family = AF_INET;
	return ifreq_ioctl(SIOCGIFADDR, &ifr) == 0;
}

int nf_net_up(const char *ifname)
{
	struct ifreq ifr = { 0 };
	int r;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if ((r = ifreq_ioctl(SIOCGIFFLAGS, &ifr)) < 0)
		return r;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	return ifreq_ioctl(SIOCSIFFLAGS, &ifr);
}

static void set_sin(struct sockaddr *sa, struct in_addr a)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)sa;

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr = a;
}

int nf_net_apply(const char *ifname, const struct nf_lease *l)
{
	struct ifreq ifr = { 0 };
	struct rtentry rt = { 0 };
	int r, fd;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	set_sin(&ifr.ifr_addr, l->addr);
	if ((r = ifreq_ioctl(SIOCSIFADDR, &ifr)) < 0)
		return r;
	set_sin(&ifr.ifr_netmask, l->mask);
	if ((r = ifreq_ioctl(SIOCSIFNETMASK, &ifr)) < 0)
		return r;
	/* The subnet's broadcast address: udp-receiver finds a multicast
	 * session's sender by broadcasting (without it, it never connects:
	 * ../shared/DESIGN.md, udpcast). */
	set_sin(&ifr.ifr_broadaddr, (struct in_addr){ l->addr.s_addr | ~l->mask.s_addr });
	if ((r = ifreq_ioctl(SIOCSIFBRDADDR, &ifr)) < 0)
		return r;
	if (l->router.s_addr == 0) {
		/* No default route: multicast (224.0.0.0/4) goes out this link. */
		set_sin(&rt.rt_dst, (struct in_addr){ htonl(0xe0000000) });
		set_sin(&rt.rt_genmask, (struct in_addr){ htonl(0xf0000000) });
		rt.rt_flags = RTF_UP;
	} else {
		set_sin(&rt.rt_dst, (struct in_addr){ 0 });
		set_sin(&rt.rt_genmask, (struct in_addr){ 0 });
		set_sin(&rt.rt_gateway, l->router);
		rt.rt_flags = RTF_UP | RTF_GATEWAY;
	}
	rt.rt_dev = (char *)ifname;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = ioctl(fd, SIOCADDRT, &rt) < 0 && errno != EEXIST ? -errno : 0;
	close(fd);
	return r;
}

/* ---- DHCP ---------------------------------------------------------------- */

struct dhcp_msg {
	uint8_t b[DHCP_MAX];
	size_t len;
};

static void put_opt(struct dhcp_msg *m, uint8_t code, const void *data, uint8_t len)
{
	m->b[m->len++] = code;
	m->b[m->len++] = len;
	memcpy(m->b + m->len, data, len);
	m->len += len;
}

static void build(struct dhcp_msg *m, uint8_t type, uint32_t xid, const uint8_t mac[6],
		  const struct nf_lease *offer)
{
	static const uint8_t params[] = { OPT_SUBNET_MASK, OPT_ROUTER, OPT_DNS, OPT_BROADCAST, OPT_SERVER_ID };
	uint32_t magic = htonl(DHCP_MAGIC);

	memset(m, 0, sizeof(*m));
	m->b[BOOTP_OP_OFF] = BOOTREQUEST;
	m->b[BOOTP_HTYPE_OFF] = HTYPE_ETHERNET;
	m->b[BOOTP_HLEN_OFF] = 6;
	memcpy(m->b + BOOTP_XID_OFF, &xid, 4);
	/* Broadcast: we cannot take unicast before we have an address. */
	m->b[BOOTP_FLAGS_OFF] = BOOTP_FLAG_BROADCAST;
	memcpy(m->b + BOOTP_CHADDR_OFF, mac, 6);
	memcpy(m->b + BOOTP_MAGIC_OFF, &magic, 4);
	m->len = BOOTP_OPTIONS_OFF;
	put_opt(m, OPT_MESSAGE_TYPE, &type, 1);
	if (offer) {
		put_opt(m, OPT_REQUESTED_IP, &offer->addr, 4);
		put_opt(m, OPT_SERVER_ID, &offer->server, 4);
	}
	put_opt(m, OPT_PARAMS, params, sizeof(params));
	m->b[m->len++] = OPT_END;
	if (m->len < 300)
		m->len = 300; /* some servers drop shorter BOOTP packets */
}

/* The length an option we read must have (RFC 2132); 0: any. A router
 * list is a multiple of 4. */
static int opt_len_ok(uint8_t code, uint8_t olen)
{
	switch (code) {
	case OPT_MESSAGE_TYPE: return olen == 1;
	case OPT_SUBNET_MASK:
	case OPT_SERVER_ID: return olen == 4;
	case OPT_ROUTER: return olen >= 4 && olen % 4 == 0;
	default: return 1;
	}
}

int nf_dhcp_parse_reply(const uint8_t *b, size_t len, uint32_t xid, struct nf_lease *l)
{
	uint32_t magic;
	size_t i = BOOTP_OPTIONS_OFF;
	int type = -EPROTO;

	if (len < BOOTP_OPTIONS_OFF || b[BOOTP_OP_OFF] != BOOTREPLY || memcmp(b + BOOTP_XID_OFF, &xid, 4) != 0)
		return -EPROTO;
	memcpy(&magic, b + BOOTP_MAGIC_OFF, 4);
	if (ntohl(magic) != DHCP_MAGIC)
		return -EPROTO;
	memset(l, 0, sizeof(*l));
	memcpy(&l->addr, b + BOOTP_YIADDR_OFF, 4);
	while (i < len && b[i] != OPT_END) {
		uint8_t code = b[i], olen;

		if (code == OPT_PAD) {
			i++;
			continue;
		}
		if (len - i < 2 || (olen = b[i + 1]) > len - i - 2 || !opt_len_ok(code, olen))
			return -EPROTO;
		const uint8_t *v = b + i + 2;

		if (code == OPT_MESSAGE_TYPE)
			type = v[0];
		else if (code == OPT_SUBNET_MASK)
			memcpy(&l->mask, v, 4);
		else if (code == OPT_ROUTER)
			memcpy(&l->router, v, 4);
		else if (code == OPT_SERVER_ID)
			memcpy(&l->server, v, 4);
		i += 2u + olen;
	}
	return type;
}

static int open_dhcp_socket(const char *ifname)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(68) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname) + 1) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/* Sends m and waits up to wait_ms for a reply of type want. */
static int exchange(int fd, const struct dhcp_msg *m, uint32_t xid, int want, unsigned wait_ms,
		    struct nf_lease *l)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(67), .sin_addr.s_addr = INADDR_BROADCAST };
	double end = now_s() + wait_ms / 1000.0;

	if (sendto(fd, m->b, m->len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	while (now_s() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint8_t buf[1500];
		ssize_t n;
		int type;

		if (poll(&p, 1, (int)((end - now_s()) * 1000) + 1) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			continue;
		type = nf_dhcp_parse_reply(buf, (size_t)n, xid, l);
		if (type == 6)
			return -ECONNREFUSED; /* NAK: start over */
		if (type == want)
			return 0;
	}
	return -ETIMEDOUT;
}

int nf_dhcp(const char *ifname, const uint8_t mac[6], unsigned timeout_s, struct nf_lease *lease)
{
	double deadline = now_s() + timeout_s;
	unsigned wait_ms = 1000;
	int fd = open_dhcp_socket(ifname), r = -ETIMEDOUT;

	if (fd < 0)
		return fd;
	while (now_s() < deadline) {
		struct dhcp_msg m;
		struct nf_lease offer;
		uint32_t xid;

		if (getrandom(&xid, sizeof(xid), 0) != sizeof(xid))
			xid = (uint32_t)(now_s() * 1000);
		build(&m, 1, xid, mac, NULL);
		r = exchange(fd, &m, xid, 2, wait_ms, &offer);
		if (r == 0) {
			build(&m, 3, xid, mac, &offer);
			r = exchange(fd, &m, xid, 5, wait_ms, lease);
			if (r == 0) {
				if (lease->addr.s_addr == 0)
					lease->addr = offer.addr;
				if (lease->mask.s_addr == 0)
					lease->mask.s_addr = htonl(0xffffff00u);
				break;
			}
		}
		if (wait_ms < 4000)
			wait_ms *= 2; /* RFC 2131 4.1: back off between retransmissions */
	}
	close(fd);
	return r;
}
