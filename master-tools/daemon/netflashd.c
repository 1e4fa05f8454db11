/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflashd: the master daemon. Workers report here (docs/protocol.md); a
 * MAC's TFTP dir is removed only when its worker reports DONE with the
 * digest the catalog manifest holds for the job's image. One epoll loop, a
 * bounded buffer, a deadline and an explicit state per connection; a bad
 * message closes that connection, never the daemon. This file: main, the
 * arguments, the loop and the dashboard's start; connections are conn.c's,
 * the verbs worker_proto.c's (daemon_int.h). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "actions.h"
#include "daemon_int.h"
#include "finisher.h"
#include "fileutil.h"
#include "hooks.h"
#include "http.h"
#include "log.h"
#include "master.h"
#include "mcast.h"
#include "neigh.h"
#include "parse.h"
#include "store.h"

static const char usage[] =
"Usage: netflashd [--root DIR] [--listen ADDR:PORT] [--nfs-url URL] [--max-attempts N]\n"
"                 [--http ADDR:PORT|off] [--http-name NAME]... [--peer-check neigh|off]\n"
"                 [--slow-timeout S] [--abandon-after S] [--multicast-port-base P] [--verbose]\n"
"\n"
"The netflash master daemon: answers workers' HELLO with their job (the\n"
"image's NFS URL, format, size and SHA-256), records their progress, and on\n"
"DONE with the manifest's digest removes the worker's TFTP dir (so it boots\n"
"from its card) and answers RELEASED. Anything else keeps the dir.\n"
"Runs in the foreground and logs to stderr (systemd-friendly).\n"
"\n"
"  --root DIR         the state tree shared with netflash (default " NF_DEFAULT_ROOT ")\n"
"  --listen ADDR:PORT where workers connect (default 0.0.0.0:<port from init>)\n"
"  --nfs-url URL      the NFS export of ROOT/images as workers reach it; the\n"
"                     image file name is appended to its path (default\n"
"                     nfs://<server_ip>/<root>/images?version=3)\n"
"  --max-attempts N   failed attempts before a worker is marked failed (3)\n"
"  --slow-timeout S   close a connection whose line stays unfinished S seconds,\n"
"                     or that sends no HELLO within 1.5 S (10)\n"
"  --peer-check MODE  neigh (default): a HELLO is taken only from the address\n"
"                     whose neighbour (ARP) entry holds the HELLO's MAC, the\n"
"                     evidence dnsmasq picks the worker's TFTP dir by, so a\n"
"                     host that read a token over TFTP cannot use it. off: the\n"
"                     token alone (routed workers, loopback tests); warned\n"
"                     about at start. See docs/security.md\n"
"  --http ADDR:PORT   the web dashboard, JSON API (/api/) and Prometheus\n"
"                     metrics (/metrics); docs/api.md. Default 127.0.0.1:8070\n"
"                     (loopback: open to local users; if that port is taken,\n"
"                     a warning and no dashboard). Any other address needs a\n"
"                     bearer token: ROOT/state/http.token (made at start,\n"
"                     root only). off: no dashboard\n"
"  --http-name NAME   a name the dashboard may be opened by (its requests'\n"
"                     Host); repeatable. It always answers to localhost,\n"
"                     its addresses and this machine's host name; any other\n"
"                     Host is refused (421), so a page that re-points its\n"
"                     own name at the master (DNS rebinding) reads nothing\n"
"  --multicast-port-base P\n"
"                     the first UDP port of multicast sessions (udpcast's\n"
"                     --portbase; each session takes two, even, from here):\n"
"                     default 9000. Workers enrolled with --multicast gather\n"
"                     into one session per image: docs/multicast.md\n"
"  --abandon-after S  a running job whose worker has not reported for S\n"
"                     seconds (and that no connection or multicast session\n"
"                     speaks for) is abandoned: an attempt counted, the worker\n"
"                     back to waiting for its next boot. Default 300, at\n"
"                     least 10; status shows such a job as stalled after 60\n"
"  --verbose          also log closed connections\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* A command killed mid-change leaves an intent: finish it within half a
 * minute even if no other command runs, never waiting for the lock. */
static void recover_now_and_then(struct daemon *d)
{
	char dir[PATH_MAX];
	time_t now = time(NULL);
	DIR *dp;
	struct dirent *e;
	int pending = 0;

	if (now - d->last_recovery < 30)
		return;
	d->last_recovery = now;
	master_path(&d->m, dir, sizeof(dir), "state/intent");
	if (!(dp = opendir(dir)))
		return;
	while (!pending && (e = readdir(dp)))
		pending = e->d_name[0] != '.';
	closedir(dp);
	if (pending && master_trylock(&d->m) == 0)
		master_unlock(&d->m);
}

static int set_nfs_url(struct daemon *d, const char *url)
{
	const char *q = strchr(url, '?');
	size_t plen = q ? (size_t)(q - url) : strlen(url);

	if (strncmp(url, "nfs://", 6) != 0 || plen >= sizeof(d->nfs_prefix) || (q && strlen(q + 1) >= sizeof(d->nfs_query)))
		return -EINVAL;
	memcpy(d->nfs_prefix, url, plen);
	d->nfs_prefix[plen] = '\0';
	while (plen > 6 && d->nfs_prefix[plen - 1] == '/')
		d->nfs_prefix[--plen] = '\0';
	snprintf(d->nfs_query, sizeof(d->nfs_query), "%s", q ? q + 1 : "");
	return 0;
}

static int parse_args(struct daemon *d, int argc, char **argv, char *listen_spec, size_t cap)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' }, { "listen", required_argument, NULL, 'l' },
		{ "nfs-url", required_argument, NULL, 'n' }, { "max-attempts", required_argument, NULL, 'a' },
		{ "slow-timeout", required_argument, NULL, 's' }, { "peer-check", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' }, { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' }, { "http", required_argument, NULL, 'H' },
		{ "http-name", required_argument, NULL, 'N' }, { "multicast-port-base", required_argument, NULL, 'M' },
		{ "abandon-after", required_argument, NULL, 'A' },
		{ 0 },
	};
	const char *nfs = NULL;
	char defurl[1200];
	uint64_t v;
	int opt;

	listen_spec[0] = '\0';
	while ((opt = getopt_long(argc, argv, "r:l:n:a:s:p:vhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			if (strlen(optarg) == 0 || strlen(optarg) >= sizeof(d->m.root) - 64) {
				nf_err("--root is empty or too long");
				return 2;
			}
			snprintf(d->m.root, sizeof(d->m.root), "%s", optarg);
			break;
		case 'l': snprintf(listen_spec, cap, "%s", optarg); break;
		case 'n': nfs = optarg; break;
		case 'H': d->http_spec = optarg; break;
		case 'N':
			if (d->n_http_names == HTTP_NAMES_MAX || !optarg[0] || strlen(optarg) > 255 ||
			    strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") !=
				    strlen(optarg)) {
				nf_err("invalid --http-name '%s': expected a host name or address (at most %d)", optarg,
				       HTTP_NAMES_MAX);
				return 2;
			}
			d->http_names[d->n_http_names++] = optarg;
			break;
		case 'a':
			if (nf_parse_u64(optarg, 1, 1000, &v) < 0) {
				nf_err("invalid --max-attempts '%s': expected 1..1000", optarg);
				return 2;
			}
			d->max_attempts = (unsigned)v;
			break;
		case 's':
			if (nf_parse_u64(optarg, 1, 3600, &v) < 0) {
				nf_err("invalid --slow-timeout '%s': expected 1..3600 seconds", optarg);
				return 2;
			}
			d->slow_timeout = (unsigned)v;
			break;
		case 'p':
			if (strcmp(optarg, "neigh") != 0 && strcmp(optarg, "off") != 0) {
				nf_err("invalid --peer-check '%s': expected neigh or off", optarg);
				return 2;
			}
			d->peer_check = strcmp(optarg, "neigh") == 0;
			break;
		case 'M':
			if (nf_parse_u64(optarg, 1024, 65000, &v) < 0 || v % 2) {
				nf_err("invalid --multicast-port-base '%s': expected an even port from 1024 to 65000", optarg);
				return 2;
			}
			d->mc_port_base = (unsigned)v;
			break;
		case 'A':
			if (nf_parse_u64(optarg, 10, 86400, &v) < 0) {
				nf_err("invalid --abandon-after '%s': expected 10..86400 seconds", optarg);
				return 2;
			}
			d->abandon_after = (unsigned)v;
			break;
		case 'v': nf_log_setup("netflashd", NF_LOG_DEBUG); break;
		case 'h': fputs(usage, stdout); exit(0);
		case 'V': printf("netflashd %s\n", NETFLASH_VERSION); exit(0);
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind != argc) {
		nf_err("netflashd takes no arguments (see --help)");
		return 2;
	}
	if (master_check_init(&d->m, defurl, sizeof(defurl)) < 0) {
		nf_err("%s", defurl);
		return 1;
	}
	if (!listen_spec[0])
		snprintf(listen_spec, cap, "0.0.0.0:%u", d->m.conf.port);
	if (!nfs) {
		snprintf(defurl, sizeof(defurl), "nfs://%s%s/images?version=3", d->m.conf.server_ip, d->m.root);
		nfs = defurl;
	}
	if (set_nfs_url(d, nfs) < 0) {
		nf_err("invalid --nfs-url '%s': expected nfs://SERVER/EXPORT[?ARGS]", nfs);
		return 2;
	}
	return 0;
}

/* ROOT/state/NAME: a 32-hex-digit bearer token, made (0600) if missing.
 * Returns 0 or -errno. */
static int http_token(struct daemon *d, const char *name, char *tok, size_t cap)
{
	char path[PATH_MAX], rel[64];
	ssize_t n;
	int r;

	snprintf(rel, sizeof(rel), "state/%s", name);
	if (master_path(&d->m, path, sizeof(path), rel) < 0)
		return -ENAMETOOLONG;
	n = nf_read_file(path, tok, cap - 1);
	if (n >= 32) {
		tok[n] = '\0';
		tok[strcspn(tok, "\n")] = '\0';
		return 0;
	}
	if ((r = nf_random_hex(tok, 16)) < 0)
		return r;
	tok[32] = '\0';
	return nf_write_file_atomic(path, tok, 32, 0600);
}

/* The dashboard. Returns 0 (also when the default port is taken: warned)
 * or -1 after logging. */
static int start_http(struct daemon *d)
{
	const char *spec = d->http_spec ? d->http_spec : "127.0.0.1:8070";
	char detail[160], tok[80] = "", admin[80] = "";
	struct sockaddr_in sa;
	int r;

	if (strcmp(spec, "off") == 0)
		return 0;
	if (nf_parse_ipv4_port(spec, &sa) < 0) {
		nf_err("invalid --http '%s': expected an IPv4 ADDR:PORT or off", spec);
		return -1;
	}
	/* Beyond loopback (127/8), every request needs the token. */
	if ((ntohl(sa.sin_addr.s_addr) >> 24) != 127 && (r = http_token(d, "http.token", tok, sizeof(tok))) < 0) {
		nf_err("cannot make the dashboard's token (state/http.token): %s", nf_strerror(r));
		return -1;
	}
	/* Actions (docs/api.md) always need the admin token, on loopback too. */
	if ((r = http_token(d, "admin.token", admin, sizeof(admin))) < 0) {
		nf_warn("cannot make the API's admin token (state/admin.token): %s; the API takes no actions",
			nf_strerror(r));
		admin[0] = '\0';
	}
	if (admin[0] && d->netflash_bin[0] && !(d->actions = nf_actions_new(&d->m, d->netflash_bin)))
		return -1;
	r = nf_http_start(&d->http, &d->m, &sa, d->http_names, tok[0] ? tok : NULL, d->actions ? admin : NULL, d->actions, detail,
			  sizeof(detail));
	if (r < 0 && !d->http_spec) {
		nf_warn("no dashboard on %s: %s, ignoring", spec, detail);
		return 0;
	}
	if (r < 0) {
		nf_err("--http %s: %s", spec, detail);
		return -1;
	}
	nf_info("dashboard and API on http://%s/%s", spec, tok[0] ? " (bearer token in state/http.token)" : "");
	return 0;
}

int main(int argc, char **argv)
{
	static struct daemon d = { .m = { .root = NF_DEFAULT_ROOT, .lock_fd = -1, .tell = nf_log_tell }, .max_attempts = 3,
				   .slow_timeout = 10,
				   .lfd = -1, .peer_check = 1, .neigh_table = NF_NEIGH_TABLE, .mc_port_base = 9000,
				   .abandon_after = NF_JOB_ABANDONED_S };
	struct sigaction sa = { .sa_handler = on_signal };
	char listen_spec[128];
	int r;

	nf_log_setup("netflashd", NF_LOG_INFO);
	if ((r = parse_args(&d, argc, argv, listen_spec, sizeof(listen_spec))) != 0)
		return r;
	conn_size_for_fds(&d);
	if (!(d.claims = calloc(CLAIMS_MAX, sizeof(*d.claims))) ||
	    !(d.mc = mcast_new(&d, d.mc_port_base, d.m.conf.iface))) {
		nf_err("out of memory");
		return 1;
	}
	/* Finish what a kill left half done before serving anyone. */
	if ((r = master_lock(&d.m)) < 0) {
		char why[PATH_MAX + 100];

		master_lock_error(&d.m, r, why, sizeof(why));
		nf_err("%s", why);
		return 1;
	}
	master_unlock(&d.m);
	if ((r = master_open_store(&d.m, &d.st)) < 0) {
		nf_err("cannot open the state database %s/state/netflash.db: %s", d.m.root, nf_strerror(r));
		return 1;
	}
	store_set_sync(d.st, 0);
	/* A command's transaction must not freeze the loop for long. */
	store_set_busy_timeout(d.st, 200);
	if ((r = conn_listen(&d, listen_spec)) < 0) {
		nf_err("cannot listen on '%s': %s", listen_spec, nf_strerror(r));
		return 1;
	}
	d.started_at = time(NULL);
	d.epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.lfd, &lev);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	nf_info("listening on %s; images at %s/<file>%s%s; max %u attempts, %u connections", listen_spec,
		d.nfs_prefix, d.nfs_query[0] ? "?" : "", d.nfs_query, d.max_attempts, d.max_conns);
	if ((r = master_netflash_path(d.netflash_bin, sizeof(d.netflash_bin))) < 0 || access(d.netflash_bin, X_OK) < 0) {
		nf_warn("no netflash program next to netflashd (%s): no hooks, no API actions", d.netflash_bin);
		d.netflash_bin[0] = '\0';
	}
	if (start_http(&d) < 0)
		return 1;
	if (!d.peer_check)
		nf_warn("--peer-check=off: a worker is who its token says; any host that reads a token (TFTP "
			"serves it to the whole LAN) can take that worker's job and its provisioning secrets");
	while (!stop) {
		struct epoll_event evs[64];
		int n = epoll_wait(d.epfd, evs, 64, d.accept_resume_ms ? ACCEPT_PAUSE_MS / 5 : 1000);

		int accept_ready = 0;

		conn_resume_accept(&d);
		/* Accepting may close another connection (the oldest without a
		 * HELLO makes room): do it after this batch's reads, which may
		 * still name that connection. */
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr)
				accept_ready = 1;
			else
				conn_readable(&d, evs[i].data.ptr);
		}
		if (accept_ready)
			conn_accept(&d);
		nf_actions_reap(d.actions);
		mcast_tick(&d);
		finisher_tick(&d);
		jobs_sweep(&d);
		conn_sweep(&d);
		recover_now_and_then(&d);
		nf_http_set_connections(d.http, (int)d.nconns);
	}
	nf_info("stopping");
	nf_http_stop(d.http);
	nf_actions_free(d.actions);
	finisher_stop(&d);
	mcast_free(&d);
	while (d.nconns)
		conn_close(&d, d.conns[0]);
	store_close(d.st);
	return 0;
}
