/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The provisioning patch: the boot partition's sectors that the settings
 * change, built on a copy of the cached partition with mtools, and where
 * it is kept (ROOT/state/provision/MAC.patch). */
#include "provision_int.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootpart.h"
#include "fileutil.h"
#include "format.h"
#include "parse.h"

#define SECTOR 512
#define DIFF_CHUNK (64u << 10)

int provision_patch_path(const struct master *m, const char *mac, char *out, size_t cap)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "state/provision/%s.patch", mac);
	return master_path(m, out, cap, rel);
}

int provision_remove(const struct master *m, const char *mac)
{
	char path[PATH_MAX];

	if (provision_patch_path(m, mac, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}


struct work {
	char dir[PATH_MAX - 64];
	char part[PATH_MAX];
	char names[512];     /* files written, for the summary */
	char why[600];       /* what went wrong */
};

static int put_file(struct work *w, const char *name, const char *data, size_t len, const char *src)
{
	char path[PATH_MAX], dst[128];
	int r;

	snprintf(path, sizeof(path), "%s/f-%s", w->dir, name);
	if (src) {
		snprintf(path, sizeof(path), "%s", src);
	} else if ((r = nf_write_file_atomic(path, data, len, 0600)) < 0) {
		snprintf(w->why, sizeof(w->why), "cannot write %.400s: %s", path, strerror(-r));
		return 1;
	}
	snprintf(dst, sizeof(dst), "::/%s", name);
	char *const argv[] = { "mcopy", "-o", "-i", w->part, path, dst, NULL };
	if (master_run(argv, NULL, 0) < 0) {
		snprintf(w->why, sizeof(w->why), "mcopy could not write %s to the boot partition (is it full? is mtools installed?)", name);
		return 1;
	}
	snprintf(w->names + strlen(w->names), sizeof(w->names) - strlen(w->names), "%s%s", w->names[0] ? ", " : "",
		 name);
	return 0;
}

static int has_file(const struct work *w, const char *name)
{
	char src[128];

	snprintf(src, sizeof(src), "::/%s", name);
	char *const argv[] = { "mdir", "-b", "-i", (char *)w->part, src, NULL };
	return master_run(argv, "/dev/null", 1) == 0;
}

/* cmdline.txt with the systemd.run= arguments that start firstrun.sh. */
static int add_firstrun_args(struct work *w, const struct provision *p)
{
	char path[PATH_MAX], line[8192], add_args[256];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/cmdline.orig", w->dir);
	char *const argv[] = { "mtype", "-i", w->part, "::/cmdline.txt", NULL };
	if (master_run(argv, path, 1) < 0) {
		snprintf(w->why, sizeof(w->why), "the image's boot partition has no cmdline.txt for the firstrun.sh convention "
		       "(try --provision-style cloud-init)");
		return 1;
	}
	n = nf_read_file(path, line, sizeof(line) - sizeof(add_args) - 2);
	if (n < 0) {
		snprintf(w->why, sizeof(w->why), "the image's cmdline.txt is unreadable or too long");
		return 1;
	}
	line[strcspn(line, "\r\n")] = '\0';
	while (n > 0 && line[strlen(line) - 1] == ' ')
		line[strlen(line) - 1] = '\0';
	snprintf(add_args, sizeof(add_args), " systemd.run=%s/firstrun.sh systemd.run_success_action=reboot "
		 "systemd.unit=kernel-command-line.target\n", p->boot_mount);
	strcat(line, add_args);
	return put_file(w, "cmdline.txt", line, strlen(line), NULL);
}

/* The sectors of the partition copy `now` that differ from `orig`, at
 * their offsets in the image. Returns 0 or -errno. */
static int diff_sectors(const char *orig, const char *now, uint64_t part_off, uint64_t len, struct nf_patch *p)
{
	uint8_t *a = malloc(DIFF_CHUNK), *b = malloc(DIFF_CHUNK);
	int fa = open(orig, O_RDONLY | O_CLOEXEC), fb = open(now, O_RDONLY | O_CLOEXEC), r = 0;

	if (!a || !b || fa < 0 || fb < 0)
		r = !a || !b ? -ENOMEM : -errno;
	for (uint64_t pos = 0; r == 0 && pos < len; pos += DIFF_CHUNK) {
		size_t n = len - pos < DIFF_CHUNK ? (size_t)(len - pos) : DIFF_CHUNK;

		if (pread(fa, a, n, (off_t)pos) != (ssize_t)n || pread(fb, b, n, (off_t)pos) != (ssize_t)n) {
			r = -EIO;
			break;
		}
		if (memcmp(a, b, n) == 0)
			continue;
		for (size_t s = 0; r == 0 && s < n; s += SECTOR) {
			size_t sl = n - s < SECTOR ? n - s : SECTOR;

			if (memcmp(a + s, b + s, sl) != 0)
				r = nf_patch_add(p, part_off + pos + s, b + s, sl);
		}
	}
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	free(a);
	free(b);
	return r;
}

/* network-config: the image's merged with our Wi-Fi (netconfig.c).
 * Returns 0, or -1 with w->why set. */
static int merged_network_config(struct work *w, const struct provision *p, struct provision_text *t)
{
	char path[PATH_MAX], *image = NULL, why[300];
	ssize_t n = 0;
	int r;

	snprintf(path, sizeof(path), "%s/network-config.orig", w->dir);
	if (has_file(w, "network-config")) {
		char *const argv[] = { "mtype", "-i", w->part, "::/network-config", NULL };

		if (master_run(argv, path, 1) < 0 || !(image = malloc(PROVISION_TEXT_MAX)) ||
		    (n = nf_read_file(path, image, PROVISION_TEXT_MAX - 1)) < 0) {
			free(image);
			snprintf(w->why, sizeof(w->why), "cannot read the image's network-config from its boot partition");
			return -1;
		}
		image[n] = '\0';
	}
	r = provision_merge_network_config(p, image, (size_t)n, t, why, sizeof(why));
	free(image);
	if (r < 0) {
		snprintf(w->why, sizeof(w->why), "%s", why);
		return -1;
	}
	return 0;
}

static int write_files(struct work *w, const struct provision *p, const char *mac, enum provision_style style)
{
	struct provision_text t = { .buf = malloc(PROVISION_TEXT_MAX) };
	int rc = 1;

	if (!t.buf)
		return 1;
	if (style == PROVISION_FIRSTRUN) {
		if (p->user) {
			t.len = 0;
			provision_render_userconf(p, &t);
			if (put_file(w, "userconf.txt", t.buf, t.len, NULL))
				goto out;
		}
		if (p->ssh && put_file(w, "ssh", "", 0, NULL))
			goto out;
		t.len = 0;
		provision_render_firstrun(p, mac, &t);
		if (t.over || put_file(w, "firstrun.sh", t.buf, t.len, NULL) || add_firstrun_args(w, p))
			goto out;
	} else {
		t.len = 0;
		if (!p->user_data)
			provision_render_user_data(p, mac, &t);
		if (t.over || ((p->user_data || t.len) && put_file(w, "user-data", t.buf, t.len, p->user_data)))
			goto out;
		t.len = 0;
		if (p->wifi_ssid && !p->network_config && merged_network_config(w, p, &t) < 0)
			goto out;
		if (t.over || ((p->network_config || t.len) &&
			       put_file(w, "network-config", t.buf, t.len, p->network_config)))
			goto out;
	}
	if (p->firstboot && put_file(w, "netflash-firstboot.sh", NULL, 0, p->firstboot))
		goto out;
	rc = 0;
out:
	if (t.over)
		snprintf(w->why, sizeof(w->why), "the generated provisioning files are larger than %u KiB", PROVISION_TEXT_MAX >> 10);
	free(t.buf);
	return rc;
}

int provision_build(struct master *m, const char *mac, const char *image, const struct provision *p,
		    char *summary, size_t cap, char *why, size_t why_cap)
{
	char cache[PATH_MAX], out[PATH_MAX], dir[PATH_MAX - 128], sz[32];
	struct nf_manifest man;
	struct nf_patch patch;
	struct work w;
	enum provision_style style = p->style;
	uint64_t off, len;
	int r, rc = -EIO;

	nf_patch_init(&patch);
	memset(&w, 0, sizeof(w));
	if (master_read_manifest(m, image, &man) < 0) {
		snprintf(why, why_cap, "no image '%s' in the catalog (see netflash image ls)", image);
		return -ENOENT;
	}
	if (p->user && (r = provision_check_user(m, &man, p->user, why, why_cap)) < 0)
		return r;
	if ((r = provision_cached_partition(m, &man, cache, sizeof(cache), &off, &len, why, why_cap)) < 0)
		return r;
	if (off < (1u << 20)) {
		snprintf(why, why_cap, "cannot provision: the boot partition of image '%s' starts inside its first MiB", image);
		return -EINVAL;
	}
	if (master_path(m, dir, sizeof(dir), "state/provision") < 0) {
		snprintf(why, why_cap, "cannot provision: the state path under %s is too long", m->root);
		return -ENAMETOOLONG;
	}
	mkdir(dir, 0700);
	snprintf(w.dir, sizeof(w.dir), "%s/.work-XXXXXX", dir);
	if (!mkdtemp(w.dir)) {
		r = -errno;
		snprintf(why, why_cap, "cannot create a work dir in %s: %s", dir, strerror(-r));
		return r;
	}
	snprintf(w.part, sizeof(w.part), "%s/boot.part", w.dir);
	char *const cp[] = { "cp", "--sparse=always", "--reflink=auto", cache, w.part, NULL };
	if (master_run(cp, NULL, 0) < 0) {
		snprintf(why, why_cap, "cannot copy the boot partition of '%s' to %s", image, w.dir);
		goto out;
	}
	if (style == PROVISION_AUTO)
		style = has_file(&w, "user-data") || has_file(&w, "meta-data") ? PROVISION_CLOUDINIT : PROVISION_FIRSTRUN;
	if (write_files(&w, p, mac, style)) {
		snprintf(why, why_cap, "image '%s': %s", image, w.why);
		goto out;
	}
	r = diff_sectors(cache, w.part, off, len, &patch);
	if (r == -EFBIG)
		snprintf(why, why_cap, "cannot provision: the settings change more than %u KiB of the boot partition "
		       "(a smaller --firstboot or --user-data?)", NF_PATCH_MAX >> 10);
	else if (r < 0)
		snprintf(why, why_cap, "cannot compare the boot partition copies in %s: %s", w.dir, strerror(-r));
	if (r < 0) {
		rc = r;
		goto out;
	}
	memcpy(patch.base_sha256, man.sha256, 32);
	provision_patch_path(m, mac, out, sizeof(out));
	if ((r = nf_patch_save(&patch, out)) < 0) {
		snprintf(why, why_cap, "cannot write %s: %s", out, strerror(-r));
		rc = r;
		goto out;
	}
	nf_format_bytes(patch.bytes, sz, sizeof(sz));
	snprintf(summary, cap, "%s style: %s; %llu sectors (%s) of the boot partition",
		 style == PROVISION_FIRSTRUN ? "firstrun" : "cloud-init", w.names,
		 (unsigned long long)(patch.bytes / SECTOR), sz);
	rc = 0;
out:
	{
		char *const rm[] = { "rm", "-rf", "--one-file-system", w.dir, NULL };
		master_run(rm, NULL, 0);
	}
	nf_patch_free(&patch);
	return rc;
}

int provision_wanted(const struct provision *p)
{
	return p->hostname || p->ssh || p->ssh_key || p->user || p->wifi_ssid || p->timezone || p->keymap ||
	       p->locale || p->firstboot || p->user_data || p->network_config;
}
