/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "multicast.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileutil.h"
#include "parse.h"

void multicast_defaults(struct nf_mc_settings *s)
{
	s->min_workers = 0;
	s->max_wait = NF_MC_MAX_WAIT_DEFAULT;
	s->late_nfs = 0;
}

static int flag_path(const struct master *m, const char *mac, char *out, size_t cap)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "state/multicast/%s", mac);
	return master_path(m, out, cap, rel);
}

void multicast_format(const struct nf_mc_settings *s, char *out, size_t cap)
{
	snprintf(out, cap, "min-workers=%u max-wait=%u late=%s", s->min_workers, s->max_wait,
		 s->late_nfs ? "nfs" : "wait");
}

int multicast_set(const struct master *m, const char *mac, const struct nf_mc_settings *s)
{
	char path[PATH_MAX], dir[PATH_MAX], text[96];

	if (flag_path(m, mac, path, sizeof(path)) < 0 || master_path(m, dir, sizeof(dir), "state/multicast") < 0)
		return -ENAMETOOLONG;
	if (!s)
		return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	multicast_format(s, text, sizeof(text) - 1);
	strcat(text, "\n");
	return nf_write_file_atomic(path, text, strlen(text), 0600);
}

int multicast_get(const struct master *m, const char *mac, struct nf_mc_settings *s)
{
	char path[PATH_MAX], text[128], late[8];
	uint64_t minw, wait;
	ssize_t n;

	multicast_defaults(s);
	if (flag_path(m, mac, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	n = nf_read_file(path, text, sizeof(text) - 1);
	if (n == -ENOENT)
		return 0;
	if (n < 0)
		return (int)n;
	text[n] = '\0';
	char a[16], b[16];
	if (sscanf(text, "min-workers=%15s max-wait=%15s late=%7s", a, b, late) != 3 ||
	    nf_parse_u64(a, 0, NF_MC_MIN_WORKERS_MAX, &minw) < 0 || nf_parse_u64(b, 1, NF_MC_MAX_WAIT_MAX, &wait) < 0 ||
	    (strcmp(late, "wait") != 0 && strcmp(late, "nfs") != 0))
		return -EBADMSG;
	s->min_workers = (unsigned)minw;
	s->max_wait = (unsigned)wait;
	s->late_nfs = strcmp(late, "nfs") == 0;
	return 1;
}
