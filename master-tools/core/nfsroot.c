/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Diskless workers: checking an NFS root and exporting it. */
#include "nfsroot.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileutil.h"
#include "master.h"
#include "parse.h"

#define EXPORTS_MAX (256u << 10)

int nfsroot_check(const char *dir, char *detail, size_t cap)
{
	static const char *const inits[] = { "sbin/init", "usr/sbin/init", "lib/systemd/systemd" };
	size_t n = strlen(dir);
	char path[NFSROOT_DIR_MAX + 32];
	struct stat st;

	if (n == 0 || n > NFSROOT_DIR_MAX || dir[0] != '/') {
		snprintf(detail, cap, "--nfsroot must be an absolute path of at most %d characters", NFSROOT_DIR_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		char c = dir[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("/._-+", c))) {
			snprintf(detail, cap, "--nfsroot may only hold A-Z a-z 0-9 / . _ - + (it goes on the kernel "
					      "command line and into the exports file)");
			return -EINVAL;
		}
	}
	if (strstr(dir, "//") || strstr(dir, "/./") || strstr(dir, "/../") || (n >= 2 && strcmp(dir + n - 2, "/.") == 0) ||
	    (n >= 3 && strcmp(dir + n - 3, "/..") == 0) || (n > 1 && dir[n - 1] == '/')) {
		snprintf(detail, cap, "--nfsroot must be a normalised path (no //, ., .. or trailing /)");
		return -EINVAL;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(detail, cap, "--nfsroot %s is not a directory", dir);
		return -ENOENT;
	}
	for (size_t i = 0; i < sizeof(inits) / sizeof(inits[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, inits[i]);
		if (lstat(path, &st) == 0)
			return 0;
	}
	snprintf(detail, cap, "--nfsroot %s does not look like a root filesystem (no sbin/init, usr/sbin/init or "
			      "lib/systemd/systemd)", dir);
	return -ENOTDIR;
}

int nfsroot_fstab_mounts_card(const char *dir, char *what, size_t cap)
{
	char path[NFSROOT_DIR_MAX + 16], line[512];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof(path), "%s/etc/fstab", dir);
	if (!(f = fopen(path, "re")))
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		char dev[256], mnt[256];

		if (sscanf(line, "%255s %255s", dev, mnt) == 2 && dev[0] != '#' && strcmp(mnt, "/") == 0 &&
		    (strncmp(dev, "PARTUUID=", 9) == 0 || strncmp(dev, "/dev/mmcblk", 11) == 0 ||
		     strncmp(dev, "UUID=", 5) == 0 || strncmp(dev, "LABEL=", 6) == 0)) {
			snprintf(what, cap, "%s", dev);
			found = 1;
		}
	}
	fclose(f);
	return found;
}

/* Appends one worker's export lines to the two texts. */
static void add_export(const char *mac, const char *dir, const char *clients, unsigned id, char *kx, size_t *ko,
		       char *gx, size_t *go)
{
	if (*ko < EXPORTS_MAX)
		*ko += (size_t)snprintf(kx + *ko, EXPORTS_MAX - *ko, "# %s\n%s %s(rw,sync,no_root_squash,no_subtree_check,insecure)\n",
					mac, dir, clients);
	if (*go < EXPORTS_MAX)
		*go += (size_t)snprintf(gx + *go, EXPORTS_MAX - *go,
					"EXPORT {\n\t# %s\n\tExport_Id = %u;\n\tPath = %s;\n\tPseudo = %s;\n"
					"\t# Nobody but the workers' LAN: the root is writable, root unsquashed.\n"
					"\tAccess_Type = None;\n\tSquash = No_Root_Squash;\n\tProtocols = 3;\n"
					"\tTransports = TCP;\n\tSecType = sys;\n"
					"\tCLIENT { Clients = %s; Access_Type = RW; }\n\tFSAL { Name = VFS; }\n}\n",
					mac, id, dir, dir, clients);
}

/* Rewrites both export files from ROOT/state/nfsroot. */
static int write_exports(const struct master *m, char *detail, size_t cap)
{
	char sdir[1200], path[1600], dir[NFSROOT_DIR_MAX + 2], *kx = malloc(EXPORTS_MAX), *gx = malloc(EXPORTS_MAX);
	const char *clients = m->conf.subnet;
	size_t ko = 0, go = 0;
	unsigned id = 1000;
	struct dirent **names = NULL;
	int r = 0, n_names;

	if (!kx || !gx) {
		free(kx);
		free(gx);
		return -ENOMEM;
	}
	ko = (size_t)snprintf(kx, EXPORTS_MAX, "# diskless workers' roots, read-write (netflash enroll --nfsroot); "
					       "for /etc/exports.d/, then exportfs -ra\n");
	go = (size_t)snprintf(gx, EXPORTS_MAX, "# diskless workers' roots for nfs-ganesha (netflash enroll --nfsroot)\n");
	master_path(m, sdir, sizeof(sdir), "state/nfsroot");
	/* In MAC order, so the files (and ganesha's export ids) only change
	 * where a worker came or went. */
	n_names = scandir(sdir, &names, NULL, alphasort);
	for (int i = 0; i < n_names; i++) {
		if (!nf_mac_is_canonical(names[i]->d_name) ||
		    nfsroot_get(m, names[i]->d_name, dir, sizeof(dir)) < 0)
			continue;
		if (nfsroot_check(dir, path, sizeof(path)) == -EINVAL)
			continue; /* edited by hand into something unsafe: leave it out */
		if (!clients[0]) {
			/* Read-write with root unsquashed must never go to "*". */
			snprintf(detail, cap, "netflash.conf has no subnet to export diskless roots to (they are "
				 "read-write, root unsquashed); run: netflash init --subnet CIDR");
			r = -EINVAL;
			break;
		}
		add_export(names[i]->d_name, dir, clients, id++, kx, &ko, gx, &go);
	}
	for (int i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	if (r == 0 && (ko >= EXPORTS_MAX || go >= EXPORTS_MAX)) {
		snprintf(detail, cap, "too many diskless workers for one exports file");
		r = -EFBIG;
	}
	if (r == 0 && master_path(m, path, sizeof(path), "etc/netflash-nfsroot.exports") == 0 &&
	    (r = nf_write_file_atomic(path, kx, ko, 0644)) == 0 &&
	    master_path(m, path, sizeof(path), "etc/ganesha-nfsroot.conf") == 0)
		r = nf_write_file_atomic(path, gx, go, 0644);
	if (r < 0 && !detail[0])
		snprintf(detail, cap, "cannot write %s: %s", path, strerror(-r));
	free(kx);
	free(gx);
	return r;
}

int nfsroot_get(const struct master *m, const char *mac, char *dir, size_t cap)
{
	char rel[64];
	char path[1300];
	ssize_t n;

	snprintf(rel, sizeof(rel), "state/nfsroot/%s", mac);
	if (cap < 2 || master_path(m, path, sizeof(path), rel) < 0)
		return -ENAMETOOLONG;
	n = nf_read_file(path, dir, cap - 1);
	if (n < 0)
		return (int)n;
	dir[strcspn(dir, "\n")] = '\0';
	return dir[0] ? 0 : -ENOENT;
}

int nfsroot_set(const struct master *m, const char *mac, const char *dir, char *detail, size_t cap)
{
	char sdir[1200], path[1300], line[NFSROOT_DIR_MAX + 2];
	int r = 0;

	detail[0] = '\0';
	master_path(m, sdir, sizeof(sdir), "state/nfsroot");
	if (mkdir(sdir, 0755) < 0 && errno != EEXIST) {
		snprintf(detail, cap, "cannot create %s: %s", sdir, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/%s", sdir, mac);
	if (dir) {
		snprintf(line, sizeof(line), "%s\n", dir);
		r = nf_write_file_atomic(path, line, strlen(line), 0644);
	} else if (unlink(path) < 0 && errno != ENOENT) {
		r = -errno;
	}
	if (r < 0) {
		snprintf(detail, cap, "cannot update %s: %s", path, strerror(-r));
		return r;
	}
	return write_exports(m, detail, cap);
}
