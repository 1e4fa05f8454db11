/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash init: the state tree and ready-to-use server configs. */
#include <arpa/inet.h>
#include <errno.h>
#include <pwd.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileutil.h"
#include "log.h"
#include "netif.h"
#include "cli.h"
#include "master.h"
#include "parse.h"

/* Where Debian packages put systemd units (merged /usr; /lib links here). */
#define NF_PACKAGE_UNITDIR "/usr/lib/systemd/system"
/* Room for a unit: its text plus five paths of up to PATH_MAX. */
#define NF_UNIT_MAX (6 * PATH_MAX)

static const char init_usage[] =
"Usage: netflash [--root DIR] init [OPTIONS]\n"
"\n"
"Create the netflash state tree under ROOT (default " NF_DEFAULT_ROOT ") and\n"
"write configs for the servers a master runs:\n"
"  tftp/                 TFTP root: only per-worker MAC dirs, never boot files\n"
"  images/               the image catalog, exported read-only over NFS\n"
"  boot/                 boot files per-MAC dirs are made from\n"
"  state/                enrollments and history (SQLite), lock\n"
"  log/dnsmasq.log       dnsmasq's log (netflash dhcp-event reads the Pi model)\n"
"  run/dnsmasq.pid       dnsmasq's PID, for the log rotation\n"
"  etc/dnsmasq.conf      proxy-DHCP + TFTP, one dir per MAC; reports each Pi\n"
"                        it sees to etc/dhcp-event (netflash dhcp-event)\n"
"  etc/netflash.exports  for nfs-kernel-server (/etc/exports.d/)\n"
"  etc/ganesha.conf      the same export for nfs-ganesha\n"
"  etc/netflash-dnsmasq.service, etc/netflashd.service   systemd units\n"
"  etc/netflash.logrotate  weekly rotation of dnsmasq's log (/etc/logrotate.d/;\n"
"                        with log-dhcp it grows by a few KiB per Pi boot)\n"
"\n"
"Options:\n"
"  -i, --interface IF    the interface facing the workers (default: the one\n"
"                        that holds --server-ip, else the default route;\n"
"                        init says which)\n"
"  -s, --subnet CIDR     the workers' subnet, e.g. 192.168.1.0/24 (sets the\n"
"                        proxy-DHCP broadcast and limits the NFS export)\n"
"  -b, --broadcast ADDR  the broadcast address, if --subnet is not given\n"
"  -a, --server-ip IP    the address workers reach this master at\n"
"                        (default: the interface's IPv4 address)\n"
"  -p, --port PORT       netflashd's TCP port (default 7070)\n"
"      --apply           also install the exports file, the systemd units and\n"
"                        the logrotate config into /etc and reload systemd\n"
"                        (does not start anything; a unit the Debian package\n"
"                        already ships unchanged in " NF_PACKAGE_UNITDIR " is kept)\n"
"      --units-only DIR  write only the two systemd units for ROOT into DIR and\n"
"                        nothing else (for packagers; NETFLASH_BINDIR=DIR sets\n"
"                        where they run netflashd from)\n"
"  -h, --help            show this help\n"
"\n"
"Proxy DHCP answers only the Pis' network boot questions; an ordinary DHCP\n"
"server (your router) must still hand out addresses on that LAN. Re-running\n"
"init rewrites the configs and keeps images, boot files and enrollments.\n";

static int parse_cidr(const char *cidr, char *bcast, size_t bcap, char *net, size_t ncap)
{
	char ip[INET_ADDRSTRLEN];
	const char *slash = strchr(cidr, '/');
	struct in_addr a;
	uint64_t bits;
	uint32_t mask, host;

	if (!slash || (size_t)(slash - cidr) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, cidr, (size_t)(slash - cidr));
	ip[slash - cidr] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1 || nf_parse_u64(slash + 1, 8, 30, &bits) < 0)
		return -EINVAL;
	mask = bits ? 0xffffffffu << (32 - bits) : 0;
	host = ntohl(a.s_addr);
	a.s_addr = htonl((host & mask) | ~mask);
	inet_ntop(AF_INET, &a, bcast, (socklen_t)bcap);
	a.s_addr = htonl(host & mask);
	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	snprintf(net, ncap, "%s/%u", ip, (unsigned)bits);
	return 0;
}

/* The interface's IPv4 address and broadcast. Returns 0 or -ENOENT. */
static int iface_addr(const char *ifname, char *ip, size_t ipcap, char *bcast, size_t bcap)
{
	struct ifaddrs *ifs, *i;
	int r = -ENOENT;

	if (getifaddrs(&ifs) < 0)
		return -errno;
	for (i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, ifname) != 0)
			continue;
		struct in_addr a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr, b;

		inet_ntop(AF_INET, &a, ip, (socklen_t)ipcap);
		/* From address and netmask, not ifa_broadaddr: an address added
		 * without "brd" (ip addr add A/24) reports itself there. */
		if (i->ifa_netmask && (i->ifa_flags & IFF_BROADCAST)) {
			b.s_addr = a.s_addr | ~((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr;
			inet_ntop(AF_INET, &b, bcast, (socklen_t)bcap);
		}
		r = 0;
		break;
	}
	freeifaddrs(ifs);
	return r;
}

static int write_text(const struct master *m, const char *rel, const char *text, mode_t mode)
{
	char path[PATH_MAX];
	int r = master_path(m, path, sizeof(path), rel);

	if (r == 0)
		r = nf_write_file_atomic(path, text, strlen(text), mode);
	if (r < 0)
		nf_err("cannot write %s: %s", path, nf_strerror(r));
	return r;
}

/* 1 if root alone can change path: it and every directory above it are
 * owned by root and not writable by group or others (a sticky directory,
 * like /tmp, counts as safe for what root owns in it). As OpenSSH's
 * safe_path() judges key files. */
static int root_only(const char *path)
{
	char p[PATH_MAX];
	size_t n;

	if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p))
		return 0;
	for (;;) {
		struct stat st;

		if (lstat(p, &st) < 0 || st.st_uid != 0 ||
		    ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX))))
			return 0;
		if (strcmp(p, "/") == 0)
			return 1;
		n = strlen(p);
		while (n > 1 && p[n - 1] != '/')
			n--;
		p[n > 1 ? n - 1 : 1] = '\0';
	}
}

/* Where the generated dhcp-event script and units find netflash and
 * netflashd: $NETFLASH_BINDIR when set (a packager's /usr/bin), else beside
 * this program when root alone can change it there, else the install
 * directory (dnsmasq runs dhcp-event as root). */
static void trusted_bindir(char *out, size_t cap)
{
	const char *env = getenv("NETFLASH_BINDIR");
	char self[PATH_MAX];

	if (env && env[0] == '/') {
		snprintf(out, cap, "%s", env);
		return;
	}
	if (realpath("/proc/self/exe", self) && root_only(self)) {
		*strrchr(self, '/') = '\0';
		snprintf(out, cap, "%s", self[0] ? self : "/");
		return;
	}
	snprintf(out, cap, "%s", NETFLASH_BINDIR);
	nf_warn("this netflash is in a directory others can write; etc/dhcp-event and the units run %s/netflash "
		"and %s/netflashd instead (install them: cmake --install build)", NETFLASH_BINDIR, NETFLASH_BINDIR);
}

/* The two systemd units for the state tree at root, running bindir's
 * netflashd. Takes: root and bindir (absolute, no quotes or spaces), two
 * buffers of NF_UNIT_MAX bytes. netflashd takes its port from ROOT's
 * netflash.conf, so the units depend on nothing else: the Debian package
 * ships them for /srv/netflash (init --units-only). */
static void render_units(const char *root, const char *bindir, char *dnsmasq_unit, size_t dcap,
			 char *nfd_unit, size_t ncap)
{
	/* Sandboxing from systemd.exec(5). dnsmasq starts as root (raw DHCP
	 * sockets, then drops to user=) and runs dhcp-event as root, which
	 * writes the state database: ROOT's state, log and run stay writable.
	 * Left out: PrivateNetwork/RestrictAddressFamilies narrower than this
	 * (DHCP needs packet and netlink sockets), DynamicUser (dnsmasq's own
	 * user owns the token files), CapabilityBoundingSet (dnsmasq keeps what
	 * it needs and drops the rest itself). */
	snprintf(dnsmasq_unit, dcap,
		 "[Unit]\nDescription=netflash proxy-DHCP and TFTP (dnsmasq)\n"
		 "After=network-online.target\nWants=network-online.target\n"
		 "ConditionPathExists=%s/etc/dnsmasq.conf\n\n"
		 "[Service]\nExecStart=/usr/sbin/dnsmasq --keep-in-foreground --conf-file=%s/etc/dnsmasq.conf\n"
		 "Restart=on-failure\n"
		 "NoNewPrivileges=yes\nProtectSystem=strict\nReadWritePaths=%s/log %s/run %s/state\n"
		 "ProtectHome=yes\nPrivateTmp=yes\nPrivateDevices=yes\nProtectKernelTunables=yes\n"
		 "ProtectKernelModules=yes\nProtectKernelLogs=yes\nProtectControlGroups=yes\nProtectClock=yes\n"
		 "RestrictNamespaces=yes\nLockPersonality=yes\nMemoryDenyWriteExecute=yes\nRestrictRealtime=yes\n"
		 "RestrictSUIDSGID=yes\nSystemCallArchitectures=native\n"
		 "RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK AF_PACKET AF_UNIX\n"
		 "\n[Install]\nWantedBy=multi-user.target\n", root, root, root, root, root);
	/* netflashd: one fd per worker connection, so LimitNOFILE well above
	 * the 1024 default (it also raises its soft limit itself). It writes
	 * only under ROOT (state, TFTP dirs, provisioning patches) and reads
	 * /proc/net/arp. Left out: DynamicUser/User= (it removes TFTP dirs and
	 * secrets owned by root), PrivateNetwork (it serves the LAN), and
	 * ProtectProc=invisible (it needs /proc/net of the host's network). */
	snprintf(nfd_unit, ncap,
		 "[Unit]\nDescription=netflash master daemon\nAfter=network-online.target\n"
		 "Wants=network-online.target\nConditionPathExists=%s/netflash.conf\n\n"
		 "[Service]\nExecStart=%s/netflashd --root %s\n"
		 "Restart=on-failure\nLimitNOFILE=65536\n"
		 "NoNewPrivileges=yes\nProtectSystem=strict\nReadWritePaths=%s\nProtectHome=yes\nPrivateTmp=yes\n"
		 "PrivateDevices=yes\nProtectKernelTunables=yes\nProtectKernelModules=yes\nProtectKernelLogs=yes\n"
		 "ProtectControlGroups=yes\nProtectClock=yes\nProtectHostname=yes\nRestrictNamespaces=yes\n"
		 "LockPersonality=yes\nMemoryDenyWriteExecute=yes\nRestrictRealtime=yes\nRestrictSUIDSGID=yes\n"
		 "SystemCallArchitectures=native\nSystemCallFilter=@system-service\n"
		 "RestrictAddressFamilies=AF_INET AF_UNIX\n"
		 "CapabilityBoundingSet=CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER\n"
		 "\n[Install]\nWantedBy=multi-user.target\n", root, bindir, root, root);
}

static int write_configs(const struct master *m)
{
	const struct master_conf *c = &m->conf;
	char buf[8192], bindir[PATH_MAX], dnsmasq_unit[NF_UNIT_MAX], nfd_unit[NF_UNIT_MAX];
	int r;

	/* The dnsmasq options DESIGN.md verified: proxy DHCP for the Pi ROM
	 * (it sends option 93), TFTP with one root per MAC. */
	snprintf(buf, sizeof(buf),
		 "# netflash: proxy-DHCP + TFTP for Raspberry Pi network boot (netflash init)\n"
		 "# An ordinary DHCP server must also run on this LAN; this one only answers\n"
		 "# the Pis' boot questions and serves ROOT/tftp/<mac>/ to each worker.\n"
		 "# No bind option: with bind-dynamic, dnsmasq 2.90 logged 'error binding\n"
		 "# DHCP socket to device' after each proxy exchange. Add bind-dynamic if\n"
		 "# another DHCP server runs on this machine itself.\n"
		 "port=0\n"
		 "interface=%s\n"
		 "dhcp-range=%s,proxy\n"
		 "pxe-service=0,\"Raspberry Pi Boot\"\n"
		 "log-dhcp\n"
		 "log-facility=%s/log/dnsmasq.log\n"
		 "pid-file=%s/run/dnsmasq.pid\n"
		 "enable-tftp\n"
		 "tftp-root=%s/tftp\n"
		 "tftp-unique-root=mac\n"
		 "# dnsmasq's user: it alone reads each worker's cmdline.txt (its token).\n"
		 "user=%s\n"
		 "# Every MAC that ARPs for us and every TFTP file sent is reported to\n"
		 "# netflash (auto-enroll for mass-flash, boot progress in history).\n"
		 "dhcp-script=%s/etc/dhcp-event\n"
		 "script-arp\n",
		 c->iface, c->broadcast, m->root, m->root, m->root, c->tftp_user, m->root);
	if ((r = write_text(m, "etc/dnsmasq.conf", buf, 0644)) < 0)
		return r;
	trusted_bindir(bindir, sizeof(bindir));
	if (strpbrk(bindir, "'\" \n") || strpbrk(m->root, "'\" \n")) {
		nf_err("cannot write the configs: a path with a quote, space or newline in it (%s, %s)", bindir, m->root);
		return -EINVAL;
	}
	/* dnsmasq runs as nobody and cannot create a new log in ROOT/log:
	 * logrotate makes it (create: same owner and mode as the old one),
	 * then SIGUSR2 has dnsmasq reopen it. */
	snprintf(buf, sizeof(buf),
		 "# netflash: rotation of dnsmasq's log (netflash init); for /etc/logrotate.d/\n"
		 "\"%s/log/dnsmasq.log\" {\n"
		 "\tweekly\n\tmaxsize 50M\n\trotate 8\n\tcompress\n\tdelaycompress\n"
		 "\tmissingok\n\tnotifempty\n\tcreate\n"
		 "\tpostrotate\n"
		 "\t\tpid=$(cat '%s/run/dnsmasq.pid' 2>/dev/null) && kill -USR2 \"$pid\" 2>/dev/null || true\n"
		 "\tendscript\n}\n",
		 m->root, m->root);
	if ((r = write_text(m, "etc/netflash.logrotate", buf, 0644)) < 0)
		return r;
	snprintf(buf, sizeof(buf),
		 "#!/bin/sh\n"
		 "# dnsmasq's dhcp-script (netflash init): hands each event to netflash.\n"
		 "exec '%s/netflash' --root '%s' dhcp-event \"$@\"\n",
		 bindir, m->root);
	if ((r = write_text(m, "etc/dhcp-event", buf, 0755)) < 0)
		return r;
	snprintf(buf, sizeof(buf),
		 "# netflash image catalog, read-only (netflash init); for /etc/exports.d/\n"
		 "%s/images %s(ro,no_subtree_check,all_squash,insecure)\n",
		 m->root, c->subnet[0] ? c->subnet : "*");
	if ((r = write_text(m, "etc/netflash.exports", buf, 0644)) < 0)
		return r;
	snprintf(buf, sizeof(buf),
		 "# netflash image catalog for nfs-ganesha (netflash init): copy it to\n"
		 "# /etc/ganesha/ganesha.conf; NFSv3 needs rpcbind running (README step 4)\n"
		 "NFS_CORE_PARAM { Protocols = 3; Enable_NLM = false; Enable_RQUOTA = false; }\n"
		 "EXPORT {\n"
		 "\tExport_Id = 77;\n\tPath = %s/images;\n\tPseudo = /netflash;\n"
		 "\tAccess_Type = RO;\n\tSquash = All_Squash;\n\tProtocols = 3;\n"
		 "\tTransports = TCP;\n\tSecType = sys;\n\tFSAL { Name = VFS; }\n}\n",
		 m->root);
	if ((r = write_text(m, "etc/ganesha.conf", buf, 0644)) < 0)
		return r;
	render_units(m->root, bindir, dnsmasq_unit, sizeof(dnsmasq_unit), nfd_unit, sizeof(nfd_unit));
	if ((r = write_text(m, "etc/netflash-dnsmasq.service", dnsmasq_unit, 0644)) < 0)
		return r;
	return write_text(m, "etc/netflashd.service", nfd_unit, 0644);
}

static int make_tree(const struct master *m)
{
	static const char *const dirs[] = { "", "tftp", "images", "boot", "state", "etc", "log", "run" };
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (master_path(m, path, sizeof(path), dirs[i]) < 0)
			return -ENAMETOOLONG;
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			int e = -errno;

			nf_err("cannot create %s: %s%s", path, strerror(-e), cli_root_hint(e));
			return e;
		}
		/* dnsmasq drops privileges: the tree must be readable by it; the
		 * state (tokens, secrets) by root only. */
		chmod(path, strcmp(dirs[i], "state") == 0 ? 0700 : 0755);
	}
	return 0;
}

/* 1 if path holds exactly len bytes of body (the package's unit, say). */
static int same_file(const char *path, const char *body, size_t len)
{
	char cur[8192];
	ssize_t n = nf_read_file(path, cur, sizeof(cur));

	return n >= 0 && (size_t)n == len && memcmp(cur, body, len) == 0;
}

static int apply(const struct master *m)
{
	static const struct { const char *rel, *dst, *packaged; } files[] = {
		{ "etc/netflash.exports", "/etc/exports.d/netflash.exports", NULL },
		{ "etc/netflash-dnsmasq.service", "/etc/systemd/system/netflash-dnsmasq.service",
		  NF_PACKAGE_UNITDIR "/netflash-dnsmasq.service" },
		{ "etc/netflashd.service", "/etc/systemd/system/netflashd.service",
		  NF_PACKAGE_UNITDIR "/netflashd.service" },
		{ "etc/netflash.logrotate", "/etc/logrotate.d/netflash", NULL },
	};
	char src[PATH_MAX], body[8192];

	mkdir("/etc/exports.d", 0755);
	mkdir("/etc/logrotate.d", 0755);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		ssize_t n;
		int r;

		if (master_path(m, src, sizeof(src), files[i].rel) < 0)
			return 1;
		n = nf_read_file(src, body, sizeof(body) - 1);
		if (n >= 0 && files[i].packaged && same_file(files[i].packaged, body, (size_t)n) &&
		    access(files[i].dst, F_OK) != 0) {
			/* The package's unit already runs this ROOT with this
			 * netflashd: a copy in /etc would only shadow its updates. */
			printf("kept %s (the package's unit is the same)\n", files[i].packaged);
			continue;
		}
		r = n < 0 ? (int)n : nf_write_file_atomic(files[i].dst, body, (size_t)n, 0644);
		if (r < 0) {
			nf_err("cannot install %s: %s", files[i].dst, nf_strerror(r));
			return 1;
		}
		printf("installed %s\n", files[i].dst);
	}
	if (access("/run/systemd/system", F_OK) == 0 && system("systemctl daemon-reload") != 0)
		nf_warn("systemctl daemon-reload failed, ignoring");
	return 0;
}

/* init --units-only DIR: the two units for ROOT into DIR, nothing else
 * (scripts/package-master.sh, with NETFLASH_BINDIR=/usr/bin). */
static int write_units_only(const struct master *m, const char *dir)
{
	char bindir[PATH_MAX], dnsmasq_unit[NF_UNIT_MAX], nfd_unit[NF_UNIT_MAX], path[PATH_MAX];
	const char *names[] = { "netflash-dnsmasq.service", "netflashd.service" };
	const char *bodies[] = { dnsmasq_unit, nfd_unit };

	trusted_bindir(bindir, sizeof(bindir));
	render_units(m->root, bindir, dnsmasq_unit, sizeof(dnsmasq_unit), nfd_unit, sizeof(nfd_unit));
	for (size_t i = 0; i < 2; i++) {
		int r = -ENAMETOOLONG;

		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) < (int)sizeof(path))
			r = nf_write_file_atomic(path, bodies[i], strlen(bodies[i]), 0644);
		if (r < 0) {
			nf_err("cannot write %s/%s: %s", dir, names[i], nf_strerror(r));
			return 1;
		}
	}
	return 0;
}

/* The interface that holds the default route (/proc/net/route), or the
 * one that holds server_ip; into out (IF_NAMESIZE). Returns 0 or -ENOENT. */
static int pick_interface(const char *server_ip, char *out, const char **why)
{
	char line[256], name[IF_NAMESIZE + 1];
	unsigned long dst, mask;
	struct in_addr want;
	FILE *f;

	if (server_ip && inet_pton(AF_INET, server_ip, &want) == 1 && nf_iface_with_addr(want, out, IF_NAMESIZE) == 0) {
		*why = "it holds --server-ip";
		return 0;
	}
	if (!(f = fopen("/proc/net/route", "re")))
		return -ENOENT;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%16s %lx %*x %*x %*d %*d %*d %lx", name, &dst, &mask) == 3 && dst == 0 && mask == 0 &&
		    strlen(name) < IF_NAMESIZE) {
			snprintf(out, IF_NAMESIZE, "%s", name);
			fclose(f);
			*why = "it holds the default route";
			return 0;
		}
	fclose(f);
	return -ENOENT;
}

/* The interfaces of this machine, for a message. */
static void interface_list(char *out, size_t cap)
{
	struct if_nameindex *ni = if_nameindex(), *i;
	size_t o = 0;

	out[0] = '\0';
	for (i = ni; i && i->if_index && o + 2 < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? ", " : "", i->if_name);
	if (ni)
		if_freenameindex(ni);
}

static int resolve_network(struct master *m, const char *subnet, const char *bcast, const char *server_ip)
{
	struct master_conf *c = &m->conf;
	char ifip[64] = "", ifbcast[64] = "", list[256];
	struct in_addr a;

	if (!c->iface[0]) {
		const char *why = "";

		if (pick_interface(server_ip, c->iface, &why) < 0) {
			interface_list(list, sizeof(list));
			nf_err("no --interface given and none holds the default route: name the one facing the workers "
			       "(interfaces here: %s)", list);
			return 1;
		}
		printf("using interface %s: %s (--interface names another)\n", c->iface, why);
	}
	if (if_nametoindex(c->iface) == 0) {
		interface_list(list, sizeof(list));
		nf_err("no network interface '%s' on this machine (interfaces here: %s)", c->iface, list);
		return 1;
	}

	iface_addr(c->iface, ifip, sizeof(ifip), ifbcast, sizeof(ifbcast));
	if (subnet && parse_cidr(subnet, c->broadcast, sizeof(c->broadcast), c->subnet, sizeof(c->subnet)) < 0) {
		nf_err("invalid --subnet '%s': expected an IPv4 CIDR like 192.168.1.0/24", subnet);
		return 1;
	}
	if (bcast) {
		if (inet_pton(AF_INET, bcast, &a) != 1) {
			nf_err("invalid --broadcast '%s': expected an IPv4 address", bcast);
			return 1;
		}
		snprintf(c->broadcast, sizeof(c->broadcast), "%s", bcast);
	}
	if (!c->broadcast[0])
		snprintf(c->broadcast, sizeof(c->broadcast), "%s", ifbcast);
	if (server_ip) {
		if (inet_pton(AF_INET, server_ip, &a) != 1) {
			nf_err("invalid --server-ip '%s': expected an IPv4 address", server_ip);
			return 1;
		}
		snprintf(c->server_ip, sizeof(c->server_ip), "%s", server_ip);
	} else if (!c->server_ip[0]) {
		/* A re-run keeps the address an earlier init was given. */
		snprintf(c->server_ip, sizeof(c->server_ip), "%s", ifip);
	}
	if (!c->server_ip[0] || !c->broadcast[0]) {
		nf_err("interface '%s' has no IPv4 address here: give --server-ip and --subnet (or --broadcast)",
		       c->iface);
		return 1;
	}
	if (ifip[0] && strcmp(ifip, c->server_ip) != 0)
		nf_warn("--server-ip %s is not the address of %s (%s): using %s, which workers must reach this master at",
			c->server_ip, c->iface, ifip, c->server_ip);
	if (ifbcast[0] && strcmp(ifbcast, c->broadcast) != 0)
		nf_warn("the workers' broadcast address %s (from --subnet or --broadcast) is not %s's (%s): using %s for "
			"proxy DHCP on %s", c->broadcast, c->iface, ifbcast, c->broadcast, c->iface);
	return 0;
}

int cmd_init(struct master *m, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interface", required_argument, NULL, 'i' }, { "subnet", required_argument, NULL, 's' },
		{ "broadcast", required_argument, NULL, 'b' }, { "server-ip", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' }, { "apply", no_argument, NULL, 'A' },
		{ "units-only", required_argument, NULL, 'U' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *subnet = NULL, *bcast = NULL, *server_ip = NULL, *units_dir = NULL;
	int do_apply = 0, opt, r;
	uint64_t v;

	master_load_conf(m); /* re-running keeps earlier settings as defaults */
	if (!m->conf.port)
		m->conf.port = NF_DEFAULT_PORT;
	while ((opt = getopt_long(argc, argv, "i:s:b:a:p:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			if (strlen(optarg) == 0 || strlen(optarg) >= IF_NAMESIZE || strchr(optarg, '/')) {
				nf_err("invalid --interface '%s'", optarg);
				return 2;
			}
			snprintf(m->conf.iface, sizeof(m->conf.iface), "%s", optarg);
			break;
		case 's': subnet = optarg; break;
		case 'b': bcast = optarg; break;
		case 'a': server_ip = optarg; break;
		case 'p':
			if (nf_parse_u64(optarg, 1, 65535, &v) < 0) {
				nf_err("invalid --port '%s': expected 1..65535", optarg);
				return 2;
			}
			m->conf.port = (unsigned)v;
			break;
		case 'A': do_apply = 1; break;
		case 'U': units_dir = optarg; break;
		case 'h': fputs(init_usage, stdout); return 0;
		default: return cli_bad_option(argv, opts);
		}
	}
	if (optind != argc) {
		nf_err("init takes no arguments (see netflash init --help)");
		return 2;
	}
	if (units_dir)
		return write_units_only(m, units_dir);
	if (resolve_network(m, subnet, bcast, server_ip))
		return 2;
	/* Debian's dnsmasq-base makes a user of its own; elsewhere dnsmasq's
	 * built-in default is nobody. It owns the TFTP files that hold tokens. */
	snprintf(m->conf.tftp_user, sizeof(m->conf.tftp_user), "%s", getpwnam("dnsmasq") ? "dnsmasq" : "nobody");
	if (make_tree(m) < 0)
		return 1;
	if ((r = master_save_conf(m)) < 0) {
		nf_err("cannot write %s/netflash.conf: %s%s", m->root, nf_strerror(r), cli_root_hint(r));
		return 1;
	}
	if (write_configs(m) < 0)
		return 1;
	printf("initialised %s: workers reach this master at %s:%u; proxy DHCP on %s (broadcast %s)\n",
	       m->root, m->conf.server_ip, m->conf.port, m->conf.iface, m->conf.broadcast);
	if (do_apply)
		return apply(m);
	printf("next steps:\n"
	       "  apt install nfs-kernel-server logrotate   (or nfs-ganesha nfs-ganesha-vfs rpcbind,\n"
	       "                               with %s/etc/ganesha.conf as /etc/ganesha/ganesha.conf)\n"
	       "  netflash init --apply        installs %s/etc/netflash.exports into /etc/exports.d/\n"
	       "                               and the units unless the package's are the same,\n"
	       "                               then: exportfs -ra;\n"
	       "                               systemctl enable --now netflash-dnsmasq netflashd\n"
	       "  netflash image add FILE      add an image to the catalog\n"
	       "  netflash boot-files import --from-image NAME\n"
	       "  netflash enroll MAC --image NAME\n"
	       "note: proxy DHCP needs an ordinary DHCP server on this LAN (your router) to hand out addresses.\n",
	       m->root, m->root);
	return 0;
}
