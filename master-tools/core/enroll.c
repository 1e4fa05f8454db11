/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Enrolling a worker: its TFTP dir, cmdline.txt, provisioning patch and
 * state row, under the state lock and crash-safe (recover.h). The CLI
 * (cmd_enroll.c, cmd_reimage.c), mass-flash and the daemon's API share
 * these; release.c undoes them. */
#include <errno.h>
#include <pwd.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "fileutil.h"
#include "log.h"
#include "manifest.h"
#include "api.h"
#include "master.h"
#include "parse.h"
#include "pimodel.h"
#include "nfsroot.h"
#include "provision.h"
#include "recover.h"
#include "store.h"
#include "tftpdir.h"

#define CMDLINE_MAX 4096

#include "enroll.h"
#include "configtxt.h"
#include "multicast.h"
#include "hooks.h"

/* The uid that alone reads a worker's cmdline.txt: dnsmasq's user from
 * init (nobody for a tree made before init recorded it). */
static uid_t tftp_owner(const struct master *m)
{
	const struct passwd *pw = getpwnam(m->conf.tftp_user[0] ? m->conf.tftp_user : "nobody");

	return pw ? pw->pw_uid : (uid_t)-1;
}

/* A MAC a Pi can have: not all zeros, not group (multicast or broadcast:
 * the I/G bit, bit 0 of the first byte, IEEE 802). */
int master_station_mac(const char *canon, char *why, size_t cap)
{
	struct nf_mac mac;
	static const uint8_t zero[6];

	if (nf_mac_parse(canon, &mac) < 0) {
		snprintf(why, cap, "invalid MAC %s", canon);
		return -EINVAL;
	}
	if (memcmp(mac.b, zero, 6) == 0) {
		snprintf(why, cap, "%s is the all-zero MAC, which no network card has", canon);
		return -EINVAL;
	}
	if (mac.b[0] & 1) {
		snprintf(why, cap, "%s is a %s address, not a Pi's: its first byte is odd (the group bit)", canon,
			 memcmp(mac.b, "\xff\xff\xff\xff\xff\xff", 6) == 0 ? "broadcast" : "multicast");
		return -EINVAL;
	}
	return 0;
}

int master_hostname_valid(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > NF_HOSTNAME_MAX || h[0] == '-' || h[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}


/* ROOT/hooks/enrolled.d, detached: the enroll does not wait for it. */
static void start_enrolled_hooks(const struct master *m, const struct enrollment *e, int diskless,
				 struct master_report *rep)
{
	struct hook_facts f = { .mac = e->mac, .hostname = e->hostname, .image = diskless ? NULL : e->image,
				.result = "enrolled", .worker_state = diskless ? "diskless" : "enrolled" };
	char bin[PATH_MAX];
	int r;

	if ((r = master_netflash_path(bin, sizeof(bin))) == 0)
		r = master_hooks_start(m, bin, NF_HOOK_ENROLLED, &f, -1);
	if (r < 0)
		master_report_warn(rep, "%s: cannot start the enrolled hooks: %s", e->mac, nf_strerror(r));
}

/* The boot-file set for e: ROOT/boot-FAMILY when it was imported and the
 * family is asked for or known from the model, else ROOT/boot. Sets
 * e->boot_set, and model to what the store knows ("" if nothing). */
static void pick_boot_set(struct master *m, struct store *st, struct enrollment *e, char *model, size_t cap)
{
	const char *fam = e->family[0] ? e->family : NULL;
	char dir[PATH_MAX], set[16];
	struct stat sb;

	model[0] = '\0';
	if (store_sighting_model(st, e->mac, model, cap) < 0)
		model[0] = '\0';
	if (!fam && model[0])
		fam = pi_model_family(model);
	snprintf(e->boot_set, sizeof(e->boot_set), "boot");
	if (!fam)
		return;
	snprintf(set, sizeof(set), "boot-%s", fam);
	if (master_path(m, dir, sizeof(dir), set) == 0 && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode))
		snprintf(e->boot_set, sizeof(e->boot_set), "%s", set);
}

/* The set's cmdline.txt template plus this worker's own words: the
 * flasher's server and token, or a diskless worker's NFS root. */
static int build_cmdline(struct master *m, const struct enrollment *e, const char *nfsroot, char *out, size_t cap,
			 struct master_report *rep)
{
	char path[PATH_MAX], tmpl[CMDLINE_MAX + 1], rel[64];
	ssize_t n;
	int w;

	snprintf(rel, sizeof(rel), "%s/cmdline.txt", e->boot_set);
	master_path(m, path, sizeof(path), rel);
	n = nf_read_file(path, tmpl, CMDLINE_MAX);
	if (n < 0) {
		master_report_error(rep, "no boot files yet (%s: %s); run 'netflash boot-files import' first", path,
				    nf_strerror((int)n));
		return (int)n;
	}
	while (n > 0 && (tmpl[n - 1] == '\n' || tmpl[n - 1] == ' '))
		tmpl[--n] = '\0';
	if (nfsroot)
		w = snprintf(out, cap, "%s root=/dev/nfs nfsroot=%s:%s,vers=3,tcp rw rootwait\n", tmpl,
			     m->conf.server_ip, nfsroot);
	else
		w = snprintf(out, cap, "%s netflash.server=%s:%u netflash.token=%s\n", tmpl, m->conf.server_ip,
			     m->conf.port, e->token);
	if (w < 0 || (size_t)w >= cap) {
		master_report_error(rep, "%s is too long", path);
		return -EMSGSIZE;
	}
	return 0;
}

/* A diskless worker boots Pi OS as imported, without the flasher's
 * initramfs line: the set's original config.txt. */
static int diskless_config(struct master *m, const char *set, char *out, size_t cap, struct master_report *rep)
{
	char path[PATH_MAX], rel[64];
	ssize_t n;

	snprintf(rel, sizeof(rel), "%s/.config.txt.orig", set);
	master_path(m, path, sizeof(path), rel);
	if ((n = nf_read_file(path, out, cap - 1)) < 0) {
		master_report_error(rep, "%s: %s; import the boot files again (netflash boot-files import)", path,
				    nf_strerror((int)n));
		return (int)n;
	}
	out[n] = '\0';
	/* Pi OS boots from the network too: the firmware reads 4096 bytes. */
	char *orig = strdup(out);
	long len = orig ? nf_config_compact(orig, NULL, NULL, NULL, NULL, out, cap) : -ENOMEM;

	free(orig);
	if (len < 0 || len > NF_CONFIG_TXT_NETBOOT_MAX) {
		master_report_error(rep, "%s is over the %d bytes the Pi's network-boot firmware reads even without "
				    "comments and blank lines (raspberrypi/firmware#1575): shorten it and import the boot "
				    "files again", path, NF_CONFIG_TXT_NETBOOT_MAX);
		return -EMSGSIZE;
	}
	return 0;
}

/* The per-worker files of the enrollment being replaced: its provisioning
 * patch (moved aside) and its NFS root, so that a re-enroll that fails
 * leaves the old enrollment whole. */
struct old_files {
	char patch[PATH_MAX], aside[PATH_MAX + 8];
	int patch_aside;
	char nfsroot[NFSROOT_DIR_MAX + 2];
};

/* Returns 0, or -errno when the old patch is there but cannot be moved
 * (it must not go with the new enrollment). */
static int old_files_keep(struct master *m, const char *mac, struct old_files *o)
{
	memset(o, 0, sizeof(*o));
	if (nfsroot_get(m, mac, o->nfsroot, sizeof(o->nfsroot)) < 0)
		o->nfsroot[0] = '\0';
	if (provision_patch_path(m, mac, o->patch, sizeof(o->patch)) < 0)
		return -ENAMETOOLONG;
	snprintf(o->aside, sizeof(o->aside), "%s.old", o->patch);
	if (rename(o->patch, o->aside) == 0)
		o->patch_aside = 1;
	else if (errno != ENOENT)
		return -errno;
	return 0;
}

/* The new enrollment stands: the old patch goes, and so does the old NFS
 * root unless the new one is diskless (nfsroot_set replaced it). */
static void old_files_drop(struct master *m, const char *mac, struct old_files *o, int diskless,
			   struct master_report *rep)
{
	char detail[1400];

	if (o->patch_aside)
		unlink(o->aside);
	if (!diskless && o->nfsroot[0] && nfsroot_set(m, mac, NULL, detail, sizeof(detail)) < 0)
		master_report_warn(rep, "%s, ignoring", detail);
}

/* The new enrollment failed: the old one gets its files back. */
static void old_files_restore(struct master *m, const char *mac, struct old_files *o, struct master_report *rep)
{
	char detail[1400];

	provision_remove(m, mac);
	if (o->patch_aside && rename(o->aside, o->patch) < 0)
		master_report_warn(rep, "cannot put %s back: %s", o->patch, strerror(errno));
	if (nfsroot_set(m, mac, o->nfsroot[0] ? o->nfsroot : NULL, detail, sizeof(detail)) < 0)
		master_report_warn(rep, "%s", detail);
}

/* The per-worker files that go with the TFTP dir: the provisioning patch
 * (flasher) or the NFS root export (diskless). Undone by release. */
static int worker_files(struct master *m, struct enrollment *e, const struct provision *prov, const char *nfsroot,
			char *summary, size_t cap, struct master_report *rep)
{
	char detail[1400];
	int r;

	if (nfsroot) {
		if ((r = nfsroot_set(m, e->mac, nfsroot, detail, sizeof(detail))) < 0)
			master_report_error(rep, "cannot export %s for %s: %s", nfsroot, e->mac, detail);
		return r;
	}
	/* How the image travels: a multicast session, or NFS (no file). */
	if ((r = multicast_set(m, e->mac, prov && prov->multicast ? &prov->mc : NULL)) < 0) {
		master_report_error(rep, "cannot record the multicast setting of %s (state/multicast): %s", e->mac,
				    strerror(-r));
		return r;
	}
	/* The patch first: settings that cannot be written enroll nothing. */
	if (prov && provision_wanted(prov))
		return provision_build(m, e->mac, e->image, prov, summary, cap, rep->error, sizeof(rep->error));
	return 0;
}

static void say_enrolled(struct master *m, const struct enrollment *e, const char *nfsroot, const char *model,
			 const char *summary, struct master_report *rep)
{
	struct nf_mc_settings mc;
	char what[256];

	if (nfsroot) {
		master_report_out(rep, "enrolled %s as a diskless worker: it boots Pi OS with its root on %s:%s over NFS "
				  "(TFTP dir %s/tftp/%s)\n", e->mac, m->conf.server_ip, nfsroot, m->root, e->mac);
		master_report_out(rep, "export that directory: %s/etc/netflash-nfsroot.exports (nfs-kernel-server: copy "
				  "into /etc/exports.d/, then exportfs -ra) or %s/etc/ganesha-nfsroot.conf (nfs-ganesha: "
				  "%%include it)\n", m->root, m->root);
		if (nfsroot_fstab_mounts_card(nfsroot, what, sizeof(what)))
			master_report_warn(rep, "%s/etc/fstab mounts / from %s, which a diskless worker does not have: "
					   "remove that line, ignoring", nfsroot, what);
	} else {
		master_report_out(rep, "enrolled %s: image '%s', TFTP dir %s/tftp/%s, reports to %s:%u\n", e->mac,
				  e->image, m->root, e->mac, m->conf.server_ip, m->conf.port);
	}
	master_report_out(rep, "boot files: %s/%s%s%s%s\n", m->root, e->boot_set, model[0] ? " (model " : "", model,
			  model[0] ? ")" : "");
	if (summary[0])
		master_report_out(rep, "provisioning: %s\n", summary);
	if (!nfsroot && multicast_get(m, e->mac, &mc) == 1) {
		multicast_format(&mc, what, sizeof(what));
		master_report_out(rep, "delivery: multicast session (%s); NFS when a session fails\n", what);
	}
}

/* Enrolls e for the flasher (nfsroot NULL: e->image) or as a diskless
 * worker on nfsroot. Takes no lock. Returns 0 or -errno, with rep filled. */
static int do_enroll(struct master *m, struct enrollment *e, const struct provision *prov, const char *nfsroot,
		     int force, struct master_report *rep)
{
	static char cmdline[CMDLINE_MAX + 256], config[CMDLINE_MAX * 16];
	char tftp[PATH_MAX], boot[PATH_MAX], detail[512], summary[700] = "", model[48];
	char displaced[64];
	struct intent in = { .kind = INTENT_ENROLL };
	struct nf_manifest man;
	struct enrollment old;
	struct old_files of;
	struct store *st = NULL;
	int r, had;

	if ((r = master_station_mac(e->mac, rep->error, sizeof(rep->error))) < 0)
		return r;
	if (!nfsroot && (r = master_read_manifest(m, e->image, &man)) < 0) {
		master_report_error(rep, r == -ENOENT ? "no image '%s' in the catalog (see netflash image ls)"
						      : "the manifest of image '%s' is damaged", e->image);
		return r;
	}
	if ((r = master_open_store(m, &st)) < 0) {
		master_report_error(rep, "cannot open the state database: %s", nf_strerror(r));
		return r;
	}
	had = store_get(st, e->mac, &old) == 0;
	if (had && (old.state == NF_WORKER_ENROLLED || old.state == NF_WORKER_DISKLESS) && !force) {
		master_report_error(rep, "%s is already enrolled (%s%s%s); use --force to replace the enrollment", e->mac,
				    old.image[0] ? "image '" : "diskless", old.image, old.image[0] ? "'" : "");
		r = -EEXIST;
		goto out;
	}
	pick_boot_set(m, st, e, model, sizeof(model));
	if (!nfsroot && e->family[0]) {
		char dir[PATH_MAX], missing[200];

		/* A model named at enroll must be one its boot files can boot. */
		master_path(m, dir, sizeof(dir), e->boot_set);
		if (pi_boot_set_missing(dir, e->family, missing, sizeof(missing)) > 0) {
			master_report_error(rep, "the boot files in %s cannot boot a %s: missing %s; import a set that has "
					    "them: netflash boot-files import --from-image NAME --model %s", dir, e->family,
					    missing, e->family);
			r = -ENOENT;
			goto out;
		}
	}
	if ((r = nf_random_hex(e->token, NF_TOKEN_HEX / 2)) < 0) {
		master_report_error(rep, "cannot make a token: %s", nf_strerror(r));
		goto out;
	}
	if ((r = build_cmdline(m, e, nfsroot, cmdline, sizeof(cmdline), rep)) < 0 ||
	    (nfsroot && (r = diskless_config(m, e->boot_set, config, sizeof(config), rep)) < 0))
		goto out;
	/* Crash safety (recover.h): the old patch aside, then the intent, then
	 * the new files; the database row is the commit; cleanup after it. */
	if ((r = old_files_keep(m, e->mac, &of)) < 0) {
		master_report_error(rep, "cannot move the old provisioning patch of %s aside (%s): %s", e->mac, of.patch,
				    strerror(-r));
		goto out;
	}
	master_generation(e->token, in.gen);
	in.patch_aside = of.patch_aside;
	snprintf(in.nfsroot, sizeof(in.nfsroot), "%s", of.nfsroot);
	if ((r = intent_write(m, e->mac, &in)) < 0) {
		master_report_error(rep, "cannot record the intent to enroll %s: %s", e->mac, strerror(-r));
		old_files_restore(m, e->mac, &of, rep);
		goto out;
	}
	if ((r = worker_files(m, e, prov, nfsroot, summary, sizeof(summary), rep)) < 0) {
		old_files_restore(m, e->mac, &of, rep);
		intent_clear(m, e->mac);
		goto out;
	}
	master_path(m, tftp, sizeof(tftp), "tftp");
	master_path(m, boot, sizeof(boot), e->boot_set);
	detail[0] = '\0';
	r = tftpdir_create(tftp, e->mac, boot, cmdline, nfsroot ? config : NULL, in.gen, force, tftp_owner(m), displaced,
			   sizeof(displaced), detail, sizeof(detail));
	if (r == -EEXIST)
		snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail),
			 " (left from an earlier run? 'netflash release %s' or enroll --force)", e->mac);
	if (r < 0) {
		master_report_error(rep, "cannot enroll %s: %s", e->mac, detail);
		old_files_restore(m, e->mac, &of, rep);
		intent_clear(m, e->mac);
		goto out;
	}
	e->state = nfsroot ? NF_WORKER_DISKLESS : NF_WORKER_ENROLLED;
	if ((r = store_put(st, e)) < 0) {
		master_report_error(rep, "cannot record the enrollment of %s in the state database; it is undone",
				    e->mac);
		if (displaced[0] ? tftpdir_exchange(tftp, displaced, e->mac) == 0 && tftpdir_remove_aside(tftp, displaced) == 0
				 : tftpdir_remove(tftp, e->mac, detail, sizeof(detail)) >= 0)
			old_files_restore(m, e->mac, &of, rep), intent_clear(m, e->mac);
		goto out;
	}
	/* Committed. */
	if (displaced[0] && tftpdir_remove_aside(tftp, displaced) < 0)
		master_report_warn(rep, "cannot remove the replaced tftp/%s, ignoring (the next command removes it)",
				   displaced);
	old_files_drop(m, e->mac, &of, nfsroot != NULL, rep);
	intent_clear(m, e->mac);
	if (nfsroot)
		snprintf(detail, sizeof(detail), "diskless, root %.200s over NFS (boot files: %s)", nfsroot, e->boot_set);
	else
		snprintf(detail, sizeof(detail), "%s (boot files: %s)", e->image, e->boot_set);
	if (store_event(st, e->mac, NF_EVENT_ENROLL, detail) < 0 ||
	    (summary[0] && store_event(st, e->mac, NF_EVENT_PROVISION, summary) < 0))
		master_report_warn(rep, "could not record the enroll of %s in its history, ignoring", e->mac);
	say_enrolled(m, e, nfsroot, model, summary, rep);
	if (!nfsroot && prov && prov->multicast && man.format == NF_FMT_XZ)
		master_report_warn(rep, "image '%s' is stored as xz, which cannot stream (its index is at its end): %s "
				   "will take NFS (image add without --keep-format stores a zstd worker copy)", e->image,
				   e->mac);
	start_enrolled_hooks(m, e, nfsroot != NULL, rep);
	r = 0;
out:
	store_close(st);
	return r;
}

/* do_enroll() under the state lock. */
static int locked_enroll(struct master *m, struct enrollment *e, const struct provision *prov, const char *nfsroot,
			 int force, struct master_report *rep)
{
	int r;

	if ((r = master_lock(m)) < 0) {
		master_lock_error(m, r, rep->error, sizeof(rep->error));
		return r;
	}
	r = do_enroll(m, e, prov, nfsroot, force, rep);
	master_unlock(m);
	return r;
}

int master_enroll_diskless(struct master *m, struct enrollment *e, const char *nfsroot, int force,
			   struct master_report *rep)
{
	return locked_enroll(m, e, NULL, nfsroot, force, rep);
}

int master_enroll(struct master *m, struct enrollment *e, const struct provision *prov, int force,
		  struct master_report *rep)
{
	return locked_enroll(m, e, prov, NULL, force, rep);
}

