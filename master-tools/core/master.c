/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "master.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileutil.h"
#include "log.h"
#include "manifest.h"
#include "parse.h"
#include "recover.h"
#include "store.h"

#define CONF_MAX 4096

int master_read_one_line(const char *file, char *out, size_t cap)
{
	ssize_t n = nf_read_file(file, out, cap - 1);
	char *nl;

	if (n < 0)
		return (int)n;
	nl = strchr(out, '\n');
	if (nl && nl[strspn(nl, "\r\n")] != '\0')
		return -EBADMSG;
	if (nl)
		*nl = '\0';
	if (nl && nl > out && nl[-1] == '\r')
		nl[-1] = '\0';
	return 0;
}


int master_path(const struct master *m, char *out, size_t cap, const char *rel)
{
	int n = snprintf(out, cap, "%s/%s", m->root, rel);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int conf_set(struct master_conf *c, const char *key, const char *val)
{
	uint64_t v;

	if (strcmp(key, "port") == 0) {
		if (nf_parse_u64(val, 1, 65535, &v) < 0)
			return -EBADMSG;
		c->port = (unsigned)v;
		return 0;
	}
	if (strcmp(key, "hook_timeout") == 0) {
		if (nf_parse_u64(val, 1, 3600, &v) < 0)
			return -EBADMSG;
		c->hook_timeout = (unsigned)v;
		return 0;
	}
	struct { const char *key; char *dst; size_t cap; } strs[] = {
		{ "server_ip", c->server_ip, sizeof(c->server_ip) },
		{ "interface", c->iface, sizeof(c->iface) },
		{ "broadcast", c->broadcast, sizeof(c->broadcast) },
		{ "subnet", c->subnet, sizeof(c->subnet) },
		{ "tftp_user", c->tftp_user, sizeof(c->tftp_user) },
	};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (strcmp(key, strs[i].key) != 0)
			continue;
		if (strlen(val) >= strs[i].cap)
			return -EBADMSG;
		strcpy(strs[i].dst, val);
		return 0;
	}
	return -EBADMSG;
}

int master_load_conf(struct master *m)
{
	char path[PATH_MAX], body[CONF_MAX + 1], *line, *save = NULL;
	ssize_t n;

	if (master_path(m, path, sizeof(path), "netflash.conf") < 0)
		return -ENAMETOOLONG;
	n = nf_read_file(path, body, CONF_MAX);
	if (n < 0)
		return n == -EFBIG ? -EBADMSG : (int)n;
	memset(&m->conf, 0, sizeof(m->conf));
	m->conf_error[0] = '\0';
	/* Hand edits are welcome: CRLF, blanks around '=' and the value. */
	for (line = strtok_r(body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq, *key, *val, *end;

		line[strcspn(line, "\r")] = '\0';
		line += strspn(line, " \t");
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (!(eq = strchr(line, '='))) {
			snprintf(m->conf_error, sizeof(m->conf_error), "'%.60s' is not KEY=VALUE", line);
			return -EBADMSG;
		}
		*eq = '\0';
		key = line;
		for (end = eq; end > key && (end[-1] == ' ' || end[-1] == '\t'); end--)
			end[-1] = '\0';
		val = eq + 1 + strspn(eq + 1, " \t");
		for (end = val + strlen(val); end > val && (end[-1] == ' ' || end[-1] == '\t'); end--)
			end[-1] = '\0';
		if (conf_set(&m->conf, key, val) < 0) {
			snprintf(m->conf_error, sizeof(m->conf_error), "%.40s=%.40s: %s", key, val,
				 strcmp(key, "hook_timeout") == 0 ? "expected seconds, 1 to 3600"
				 : strcmp(key, "port") == 0 ? "expected a port, 1 to 65535"
				 : "an unknown key or a value too long");
			return -EBADMSG;
		}
	}
	if (!m->conf.server_ip[0] || !m->conf.port) {
		snprintf(m->conf_error, sizeof(m->conf_error), "server_ip= and port= are needed");
		return -EBADMSG;
	}
	m->have_conf = 1;
	return 0;
}

int master_save_conf(const struct master *m)
{
	char path[PATH_MAX], body[CONF_MAX];
	const struct master_conf *c = &m->conf;
	int n;

	if (master_path(m, path, sizeof(path), "netflash.conf") < 0)
		return -ENAMETOOLONG;
	n = snprintf(body, sizeof(body),
		     "# netflash master configuration (written by netflash init)\n"
		     "server_ip=%s\nport=%u\ninterface=%s\nbroadcast=%s\nsubnet=%s\ntftp_user=%s\n",
		     c->server_ip, c->port, c->iface, c->broadcast, c->subnet, c->tftp_user);
	if (n >= 0 && (size_t)n < sizeof(body) && c->hook_timeout)
		n += snprintf(body + n, sizeof(body) - (size_t)n, "hook_timeout=%u\n", c->hook_timeout);
	if (n < 0 || (size_t)n >= sizeof(body))
		return -EMSGSIZE;
	return nf_write_file_atomic(path, body, (size_t)n, 0644);
}

/* The holder writes "PID COMMAND" into the lock file, for whoever waits. */
static void say_holder(int fd)
{
	char me[64], cmd[48] = "";
	ssize_t n = nf_read_file("/proc/self/comm", cmd, sizeof(cmd) - 1);
	int len;

	if (n > 0)
		cmd[strcspn(cmd, "\n")] = '\0';
	len = snprintf(me, sizeof(me), "%d %s\n", (int)getpid(), cmd);
	if (ftruncate(fd, 0) == 0 && pwrite(fd, me, (size_t)len, 0) < 0)
		(void)0; /* only a courtesy to waiters */
}

/* What say_holder() wrote into fd's file: "PID COMMAND" ("" if nothing). */
static void read_holder(int fd, char *out, size_t cap)
{
	ssize_t n = pread(fd, out, cap - 1, 0);

	out[n > 0 ? n : 0] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

/* The PID at the start of a holder line, or 0. */
static pid_t holder_pid(const char *holder)
{
	char digits[16];
	uint64_t pid;

	snprintf(digits, sizeof(digits), "%.*s", (int)strcspn(holder, " "), holder);
	return nf_parse_u64(digits, 2, 4194304, &pid) == 0 ? (pid_t)pid : 0;
}

int master_run_lock(const struct master *m, const char *name, pid_t *holder)
{
	char path[PATH_MAX], rel[64], line[64];
	int fd;

	*holder = 0;
	snprintf(rel, sizeof(rel), "state/%s.lock", name);
	if (master_path(m, path, sizeof(path), rel) < 0)
		return -ENAMETOOLONG;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		read_holder(fd, line, sizeof(line));
		*holder = holder_pid(line);
		close(fd);
		return -e;
	}
	say_holder(fd);
	return 0; /* fd stays open: the lock goes with the process */
}

pid_t master_run_lock_holder(const struct master *m, const char *name)
{
	char path[PATH_MAX], rel[64], line[64];
	pid_t pid = 0;
	int fd;

	snprintf(rel, sizeof(rel), "state/%s.lock", name);
	if (master_path(m, path, sizeof(path), rel) < 0 || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) { /* somebody holds it */
		read_holder(fd, line, sizeof(line));
		pid = holder_pid(line);
	}
	close(fd);
	return pid;
}

static int lock_with(struct master *m, int how)
{
	char path[PATH_MAX], holder[64] = "";
	int waited = 0;

	if (master_path(m, path, sizeof(path), "state/lock") < 0)
		return -ENAMETOOLONG;
	m->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (m->lock_fd < 0)
		return -errno;
	/* A blocking lock waits a second quietly, then says for whom. */
	while (flock(m->lock_fd, (how & ~LOCK_NB) | LOCK_NB) < 0) {
		int e = errno;

		if (e != EWOULDBLOCK || (how & LOCK_NB)) {
			close(m->lock_fd);
			m->lock_fd = -1;
			return -e;
		}
		if (++waited == 20) {
			read_holder(m->lock_fd, holder, sizeof(holder));
			master_tell(m, 0, "waiting for the state lock %s, held by %s", path,
				    holder[0] ? holder : "another netflash command or netflashd");
		}
		if (waited >= 20 && flock(m->lock_fd, how) == 0)
			break;
		if (waited < 20)
			usleep(50000);
	}
	say_holder(m->lock_fd);
	return 0;
}

/* Whoever takes the lock first finishes what a killed holder left. */
int master_lock(struct master *m)
{
	int r = lock_with(m, LOCK_EX);

	if (r == 0)
		master_recover(m);
	return r;
}

void master_lock_error(const struct master *m, int r, char *why, size_t cap)
{
	snprintf(why, cap, "cannot take the state lock in %s/state: %s%s", m->root, nf_strerror(r),
		 r == -EACCES || r == -EPERM ? " (netflash changes the master's state as root)" : "");
}

void master_tell(const struct master *m, int warning, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!m->tell)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	m->tell(warning, line);
}

int master_trylock(struct master *m)
{
	int r = lock_with(m, LOCK_EX | LOCK_NB);

	if (r == 0)
		master_recover(m);
	return r == -EWOULDBLOCK ? -EBUSY : r;
}

void master_unlock(struct master *m)
{
	if (m->lock_fd >= 0)
		close(m->lock_fd);
	m->lock_fd = -1;
}

int master_check_init(struct master *m, char *why, size_t cap)
{
	char q[PATH_MAX + 16];
	int r = master_load_conf(m);

	if (r == -ENOENT)
		snprintf(why, cap, "%s is not a netflash root; run 'netflash init' first (or pass --root)",
			 nf_quote(q, sizeof(q), m->root));
	else if (r == -EBADMSG && m->conf_error[0])
		snprintf(why, cap, "%s/netflash.conf: %s", nf_quote(q, sizeof(q), m->root), m->conf_error);
	else if (r < 0)
		snprintf(why, cap, "cannot read %s/netflash.conf: %s", nf_quote(q, sizeof(q), m->root), nf_strerror(r));
	return r;
}

int master_open_store(const struct master *m, struct store **st)
{
	char path[PATH_MAX];

	/* The state dir holds the tokens and provisioning secrets: root only
	 * (also for trees made by an older init, with 0755). */
	master_path(m, path, sizeof(path), "state");
	chmod(path, 0700);
	master_path(m, path, sizeof(path), "state/netflash.db");
	return store_open(st, path);
}

int master_manifest_path(const struct master *m, const char *name, char *out, size_t cap)
{
	char rel[NF_NAME_MAX + 32];

	snprintf(rel, sizeof(rel), "images/%s.manifest", name);
	return master_path(m, out, cap, rel);
}

int master_read_manifest(const struct master *m, const char *name, struct nf_manifest *man)
{
	char path[PATH_MAX];

	if (nf_name_valid(name) < 0)
		return -EINVAL;
	if (master_manifest_path(m, name, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	return nf_manifest_read(path, man);
}

int master_each_manifest(const struct master *m, int (*fn)(const char *path, const struct nf_manifest *man, void *ctx),
			 void *ctx)
{
	char dir[PATH_MAX], path[PATH_MAX + 300];
	struct dirent **list = NULL;
	struct nf_manifest man;
	int n, r = 0;

	master_path(m, dir, sizeof(dir), "images");
	if ((n = scandir(dir, &list, NULL, alphasort)) < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		const char *dot = strrchr(list[i]->d_name, '.');

		if (r == 0 && dot && strcmp(dot, ".manifest") == 0 && list[i]->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
			r = fn(path, nf_manifest_read(path, &man) == 0 ? &man : NULL, ctx);
		}
		free(list[i]);
	}
	free(list);
	return r;
}

int master_catalog_path(const struct master *m, const char *file, char *out, size_t cap)
{
	char rel[NF_NAME_MAX + 32];

	if ((size_t)snprintf(rel, sizeof(rel), "images/%s", file) >= sizeof(rel))
		return -ENAMETOOLONG;
	return master_path(m, out, cap, rel);
}

int master_image_path(const struct master *m, const struct nf_manifest *man, char *out, size_t cap)
{
	return master_catalog_path(m, man->file, out, cap);
}



void master_report_error(struct master_report *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
}

void master_report_warn(struct master_report *r, const char *fmt, ...)
{
	va_list ap;

	if (r->nwarnings >= sizeof(r->warnings) / sizeof(r->warnings[0]))
		return;
	va_start(ap, fmt);
	vsnprintf(r->warnings[r->nwarnings++], sizeof(r->warnings[0]), fmt, ap);
	va_end(ap);
}

void master_report_out(struct master_report *r, const char *fmt, ...)
{
	size_t n = strlen(r->out);
	va_list ap;

	if (n + 1 >= sizeof(r->out))
		return;
	va_start(ap, fmt);
	vsnprintf(r->out + n, sizeof(r->out) - n, fmt, ap);
	va_end(ap);
}
