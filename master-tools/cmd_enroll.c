/* netflash enroll | release | ls: which workers netboot into the flasher. */
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

static const char enroll_usage[] =
"Usage: netflash [--root DIR] enroll MAC --image NAME [--force] [--model F] [PROVISIONING OPTIONS]\n"
"       netflash [--root DIR] enroll MAC --nfsroot DIR [--force] [--model F]\n"
"\n"
"Make the worker with this MAC netboot into the flasher and write image NAME.\n"
"MAC may be spelled b8:27:eb:d3:85:78, B8-27-EB-D3-85-78, b827.ebd3.8578 or\n"
"b827ebd38578; its TFTP dir is ROOT/tftp/b8-27-eb-d3-85-78 (lower case,\n"
"dashes), holding the imported boot files (hard links, never symlinks) and\n"
"its own cmdline.txt with netflash.server=IP:PORT and a fresh random\n"
"netflash.token= that only this enrollment's reports may carry.\n"
"\n"
"  -i, --image NAME     catalog image to write (see netflash image ls)\n"
"  -f, --force          replace an existing enrollment (new token)\n"
"  -n, --nfsroot DIR    diskless instead of flashing: the worker netboots\n"
"                       the imported Pi OS boot files (without the flasher)\n"
"                       with root=/dev/nfs nfsroot=SERVER:DIR and runs from\n"
"                       DIR, a Pi OS root filesystem on this master, one per\n"
"                       worker (it is mounted read-write). DIR is added to\n"
"                       ROOT/etc/netflash-nfsroot.exports and\n"
"                       ROOT/etc/ganesha-nfsroot.conf; install one into your\n"
"                       NFS server. 'netflash release MAC' ends it.\n"
"  -m, --model FAMILY   use the boot files imported for pi3, pi4 or pi5\n"
"                       (boot-files import --model); default: the family of\n"
"                       the model its DHCP client GUID named (Pi 4/5 send\n"
"                       one), else ROOT/boot\n"
"\n"
"  -H, --hostname H     hostname to provision (RFC 1123 label)\n"
"  -k, --ssh-key FILE   an SSH public key to authorise for the first user (one line)\n";

static const char release_usage[] =
"Usage: netflash [--root DIR] release MAC\n"
"\n"
"Remove the worker's TFTP dir so its next boot comes from its card. Only a\n"
"real directory that netflash made is removed; symlinks are never followed.\n"
"A diskless worker's root leaves the NFS export files (ROOT/etc/netflash-\n"
"nfsroot.exports, ganesha-nfsroot.conf); its files stay where they are.\n";

/* The uid that alone reads a worker's cmdline.txt: dnsmasq's user from
 * init (nobody for a tree made before init recorded it). */
static uid_t tftp_owner(const struct master *m)
{
	const struct passwd *pw = getpwnam(m->conf.tftp_user[0] ? m->conf.tftp_user : "nobody");

	return pw ? pw->pw_uid : (uid_t)-1;
}

/* A MAC a Pi can have: not all zeros, not group (multicast or broadcast:
 * the I/G bit, bit 0 of the first byte, IEEE 802). Says why; 0 or -1. */
static int station_mac(const char *canon)
{
	uint8_t mac[6];
	static const uint8_t zero[6];

	if (nf_parse_mac(canon, mac) < 0)
		return -1;
	if (memcmp(mac, zero, 6) == 0) {
		nf_err("%s is the all-zero MAC, which no network card has", canon);
		return -1;
	}
	if (mac[0] & 1) {
		nf_err("%s is a %s address, not a Pi's: its first byte is odd (the group bit)", canon,
		       memcmp(mac, "\xff\xff\xff\xff\xff\xff", 6) == 0 ? "broadcast" : "multicast");
		return -1;
	}
	return 0;
}

static int bad_mac(const char *s)
{
	char q[128];

	nf_err("invalid MAC %s: expected six hex bytes like b8:27:eb:d3:85:78", nf_quote(q, sizeof(q), s));
	return 2;
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

int master_read_ssh_key(const char *file, char *out, size_t cap)
{
	char q[PATH_MAX + 8];

	if (master_read_line_file("ssh key", file, out, cap) < 0)
		return 1;
	if (strncmp(out, "ssh-", 4) != 0 && strncmp(out, "ecdsa-", 6) != 0 && strncmp(out, "sk-", 3) != 0) {
		nf_err("ssh key %s does not look like an OpenSSH public key", nf_quote(q, sizeof(q), file));
		return 1;
	}
	return 0;
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
	if (store_model(st, e->mac, model, cap) < 0)
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
static int build_cmdline(struct master *m, const struct enrollment *e, const char *nfsroot, char *out, size_t cap)
{
	char path[PATH_MAX], tmpl[CMDLINE_MAX + 1], rel[64];
	ssize_t n;
	int w;

	snprintf(rel, sizeof(rel), "%s/cmdline.txt", e->boot_set);
	master_path(m, path, sizeof(path), rel);
	n = nf_read_file(path, tmpl, CMDLINE_MAX);
	if (n < 0) {
		nf_err("no boot files yet (%s: %s); run 'netflash boot-files import' first", path, nf_strerror((int)n));
		return 1;
	}
	while (n > 0 && (tmpl[n - 1] == '\n' || tmpl[n - 1] == ' '))
		tmpl[--n] = '\0';
	if (nfsroot)
		w = snprintf(out, cap, "%s root=/dev/nfs nfsroot=%s:%s,vers=3,tcp rw rootwait\n", tmpl,
			     m->conf.server_ip, nfsroot);
	else
		w = snprintf(out, cap, "%s netflash.server=%s:%u netflash.token=%s\n", tmpl, m->conf.server_ip,
			     m->conf.port, e->token);
	return w < 0 || (size_t)w >= cap;
}

/* A diskless worker boots Pi OS as imported, without the flasher's
 * initramfs line: the set's original config.txt. */
static int diskless_config(struct master *m, const char *set, char *out, size_t cap)
{
	char path[PATH_MAX], rel[64];
	ssize_t n;

	snprintf(rel, sizeof(rel), "%s/.config.txt.orig", set);
	master_path(m, path, sizeof(path), rel);
	if ((n = nf_read_file(path, out, cap - 1)) < 0) {
		nf_err("%s: %s; import the boot files again (netflash boot-files import)", path, nf_strerror((int)n));
		return 1;
	}
	out[n] = '\0';
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
static void old_files_drop(struct master *m, const char *mac, struct old_files *o, int diskless)
{
	char detail[1400];

	if (o->patch_aside)
		unlink(o->aside);
	if (!diskless && o->nfsroot[0] && nfsroot_set(m, mac, NULL, detail, sizeof(detail)) < 0)
		nf_warn("%s, ignoring", detail);
}

/* The new enrollment failed: the old one gets its files back. */
static void old_files_restore(struct master *m, const char *mac, struct old_files *o)
{
	char detail[1400];

	provision_remove(m, mac);
	if (o->patch_aside && rename(o->aside, o->patch) < 0)
		nf_warn("cannot put %s back: %s", o->patch, strerror(errno));
	if (nfsroot_set(m, mac, o->nfsroot[0] ? o->nfsroot : NULL, detail, sizeof(detail)) < 0)
		nf_warn("%s", detail);
}

/* The per-worker files that go with the TFTP dir: the provisioning patch
 * (flasher) or the NFS root export (diskless). Undone by release. */
static int worker_files(struct master *m, struct enrollment *e, const struct provision *prov, const char *nfsroot,
			char *summary, size_t cap)
{
	char detail[1400];
	int r;

	if (nfsroot) {
		if ((r = nfsroot_set(m, e->mac, nfsroot, detail, sizeof(detail))) < 0) {
			nf_err("cannot export %s for %s: %s", nfsroot, e->mac, detail);
			return 1;
		}
		return 0;
	}
	/* The patch first: settings that cannot be written enroll nothing. */
	if (prov && provision_wanted(prov))
		return provision_build(m, e->mac, e->image, prov, summary, cap);
	return 0;
}

static void say_enrolled(struct master *m, const struct enrollment *e, const char *nfsroot, const char *model,
			 const char *summary)
{
	char what[256];

	if (nfsroot) {
		printf("enrolled %s as a diskless worker: it boots Pi OS with its root on %s:%s over NFS (TFTP dir "
		       "%s/tftp/%s)\n", e->mac, m->conf.server_ip, nfsroot, m->root, e->mac);
		printf("export that directory: %s/etc/netflash-nfsroot.exports (nfs-kernel-server: copy into "
		       "/etc/exports.d/, then exportfs -ra) or %s/etc/ganesha-nfsroot.conf (nfs-ganesha: %%include it)\n",
		       m->root, m->root);
		if (nfsroot_fstab_mounts_card(nfsroot, what, sizeof(what)))
			nf_warn("%s/etc/fstab mounts / from %s, which a diskless worker does not have: remove that "
				"line, ignoring", nfsroot, what);
	} else {
		printf("enrolled %s: image '%s', TFTP dir %s/tftp/%s, reports to %s:%u\n", e->mac, e->image, m->root,
		       e->mac, m->conf.server_ip, m->conf.port);
	}
	printf("boot files: %s/%s%s%s%s\n", m->root, e->boot_set, model[0] ? " (model " : "", model, model[0] ? ")" : "");
	if (summary[0])
		printf("provisioning: %s\n", summary);
}

/* Enrolls e for the flasher (nfsroot NULL: e->image) or as a diskless
 * worker on nfsroot. Takes no lock; logs. Returns 0 or 1. */
static int do_enroll(struct master *m, struct enrollment *e, const struct provision *prov, const char *nfsroot,
		     int force, int quiet)
{
	static char cmdline[CMDLINE_MAX + 256], config[CMDLINE_MAX * 16];
	char tftp[PATH_MAX], boot[PATH_MAX], detail[512], summary[700] = "", model[48], gen[17];
	char intent[NFSROOT_DIR_MAX + 64], displaced[64];
	struct nf_manifest man;
	struct enrollment old;
	struct old_files of;
	struct store *st = NULL;
	int r, rc = 1, had;

	if (station_mac(e->mac) < 0)
		return 1;
	if (!nfsroot && (r = master_read_manifest(m, e->image, &man)) < 0) {
		nf_err(r == -ENOENT ? "no image '%s' in the catalog (see netflash image ls)"
				    : "the manifest of image '%s' is damaged", e->image);
		return 1;
	}
	if (master_open_store(m, &st) < 0)
		return 1;
	had = store_get(st, e->mac, &old) == 0;
	if (had && (old.state == NF_WORKER_ENROLLED || old.state == NF_WORKER_DISKLESS) && !force) {
		nf_err("%s is already enrolled (%s%s%s); use --force to replace the enrollment", e->mac,
		       old.image[0] ? "image '" : "diskless", old.image, old.image[0] ? "'" : "");
		goto out;
	}
	pick_boot_set(m, st, e, model, sizeof(model));
	if (nf_random_hex(e->token, NF_TOKEN_HEX / 2) < 0 || build_cmdline(m, e, nfsroot, cmdline, sizeof(cmdline)) ||
	    (nfsroot && diskless_config(m, e->boot_set, config, sizeof(config))))
		goto out;
	/* Crash safety (recover.h): the old patch aside, then the intent, then
	 * the new files; the database row is the commit; cleanup after it. */
	if ((r = old_files_keep(m, e->mac, &of)) < 0) {
		nf_err("cannot move the old provisioning patch of %s aside (%s): %s", e->mac, of.patch, strerror(-r));
		goto out;
	}
	master_generation(e->token, gen);
	snprintf(intent, sizeof(intent), "enroll %s patch=%d%s%s", gen, of.patch_aside, of.nfsroot[0] ? " nfsroot=" : "",
		 of.nfsroot);
	if ((r = intent_write(m, e->mac, intent)) < 0) {
		nf_err("cannot record the intent to enroll %s: %s", e->mac, strerror(-r));
		old_files_restore(m, e->mac, &of);
		goto out;
	}
	if (worker_files(m, e, prov, nfsroot, summary, sizeof(summary))) {
		old_files_restore(m, e->mac, &of);
		intent_clear(m, e->mac);
		goto out;
	}
	master_path(m, tftp, sizeof(tftp), "tftp");
	master_path(m, boot, sizeof(boot), e->boot_set);
	detail[0] = '\0';
	r = tftpdir_create(tftp, e->mac, boot, cmdline, nfsroot ? config : NULL, gen, force, tftp_owner(m), displaced,
			   sizeof(displaced), detail, sizeof(detail));
	if (r == -EEXIST)
		snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail),
			 " (left from an earlier run? 'netflash release %s' or enroll --force)", e->mac);
	if (r < 0) {
		nf_err("cannot enroll %s: %s", e->mac, detail);
		old_files_restore(m, e->mac, &of);
		intent_clear(m, e->mac);
		goto out;
	}
	e->state = nfsroot ? NF_WORKER_DISKLESS : NF_WORKER_ENROLLED;
	if (store_put(st, e) < 0) {
		nf_err("cannot record the enrollment of %s in the state database; it is undone", e->mac);
		if (displaced[0] ? tftpdir_exchange(tftp, displaced, e->mac) == 0 && tftpdir_remove_aside(tftp, displaced) == 0
				 : tftpdir_remove(tftp, e->mac, detail, sizeof(detail)) >= 0)
			old_files_restore(m, e->mac, &of), intent_clear(m, e->mac);
		goto out;
	}
	/* Committed. */
	if (displaced[0] && tftpdir_remove_aside(tftp, displaced) < 0)
		nf_warn("cannot remove the replaced tftp/%s, ignoring (the next command removes it)", displaced);
	old_files_drop(m, e->mac, &of, nfsroot != NULL);
	intent_clear(m, e->mac);
	if (nfsroot)
		snprintf(detail, sizeof(detail), "diskless, root %.200s over NFS (boot files: %s)", nfsroot, e->boot_set);
	else
		snprintf(detail, sizeof(detail), "%s (boot files: %s)", e->image, e->boot_set);
	if (store_event(st, e->mac, "enroll", detail) < 0 ||
	    (summary[0] && store_event(st, e->mac, "provision", summary) < 0))
		nf_warn("could not record the enroll of %s in its history, ignoring", e->mac);
	if (!quiet)
		say_enrolled(m, e, nfsroot, model, summary);
	rc = 0;
out:
	store_close(st);
	return rc;
}

/* enroll --nfsroot: checks, then enrolls under the lock. */
static int enroll_diskless(struct master *m, struct enrollment *e, const struct provision *prov, const char *nfsroot,
			   int settings, int force)
{
	char detail[512];
	int r;

	if (settings || provision_wanted(prov)) {
		nf_err("--nfsroot does not go with provisioning options: a diskless worker's settings live in its root");
		return 2;
	}
	if ((r = nfsroot_check(nfsroot, detail, sizeof(detail))) < 0) {
		nf_err("%s", detail);
		return r == -EINVAL ? 2 : 1;
	}
	if (master_require_init(m))
		return 1;
	if (!m->conf.subnet[0]) {
		nf_err("--nfsroot needs the workers' subnet in netflash.conf: the root is exported read-write with "
		       "root unsquashed, never to every host; run: netflash init --subnet CIDR");
		return 2;
	}
	if (master_lock(m) < 0)
		return 1;
	r = do_enroll(m, e, NULL, nfsroot, force, 0);
	master_unlock(m);
	return r;
}

int cmd_enroll(struct master *m, int argc, char **argv)
{
	static const struct option own[] = {
		{ "image", required_argument, NULL, 'i' }, { "hostname", required_argument, NULL, 'H' },
		{ "ssh-key", required_argument, NULL, 'k' }, { "force", no_argument, NULL, 'f' },
		{ "model", required_argument, NULL, 'm' }, { "nfsroot", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
	};
	struct option opts[64];
	static struct enrollment e; /* large (ssh key); one per process */
	struct provision prov;
	const char *image = NULL, *host = NULL, *key = NULL, *nfsroot = NULL;
	uint8_t mac[6];
	int force = 0, opt, r;

	memset(&e, 0, sizeof(e));
	provision_init(&prov);
	provision_merge_options(own, sizeof(own) / sizeof(own[0]), opts, sizeof(opts) / sizeof(opts[0]));
	if (provision_spelled_out(argc, argv))
		return 2;
	while ((opt = getopt_long(argc, argv, "i:H:k:fm:n:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			if (strcmp(optarg, "pi3") != 0 && strcmp(optarg, "pi4") != 0 && strcmp(optarg, "pi5") != 0) {
				char q[64];

				nf_err("invalid --model %s: expected pi3, pi4 or pi5", nf_quote(q, sizeof(q), optarg));
				return 2;
			}
			snprintf(e.family, sizeof(e.family), "%s", optarg);
			break;
		case 'i': image = optarg; break;
		case 'H': host = optarg; break;
		case 'k': key = optarg; break;
		case 'f': force = 1; break;
		case 'n': nfsroot = optarg; break;
		case 'h': printf("%s\n%s", enroll_usage, provision_usage); return 0;
		case '?': master_usage_hint(argv[0]); return 2;
		default:
			if (provision_option(&prov, opt, optarg))
				return 2;
		}
	}
	if (optind + 1 != argc || !image == !nfsroot) {
		nf_err("enroll needs a MAC and one of --image NAME or --nfsroot DIR (see netflash enroll --help)");
		return 2;
	}
	if (nf_parse_mac(argv[optind], mac) < 0)
		return bad_mac(argv[optind]);
	nf_format_mac(mac, e.mac);
	if (station_mac(e.mac) < 0)
		return 2;
	if (nfsroot)
		return enroll_diskless(m, &e, &prov, nfsroot, host || key, force);
	if ((r = master_enroll_settings(m, &e, &prov, image, host, key)))
		return r;
	return master_enroll(m, &e, &prov, force, 0);
}

int master_enroll_settings(struct master *m, struct enrollment *e, struct provision *prov, const char *image,
			   const char *hostname, const char *key)
{
	char q[200];

	if (nf_name_valid(image) < 0) {
		nf_err("invalid image name %s", nf_quote(q, sizeof(q), image));
		return 2;
	}
	if (hostname && !master_hostname_valid(hostname)) {
		nf_err("invalid --hostname %s: letters, digits and '-', up to 63", nf_quote(q, sizeof(q), hostname));
		return 2;
	}
	snprintf(e->image, sizeof(e->image), "%s", image);
	if (hostname)
		snprintf(e->hostname, sizeof(e->hostname), "%s", hostname);
	if (master_require_init(m) || (key && master_read_ssh_key(key, e->ssh_key, sizeof(e->ssh_key))))
		return 1;
	prov->hostname = hostname;
	prov->ssh_key = key ? e->ssh_key : NULL;
	return provision_check(prov);
}

int master_enroll(struct master *m, struct enrollment *e, const struct provision *prov, int force, int quiet)
{
	int r;

	if (master_lock(m) < 0)
		return 1;
	r = do_enroll(m, e, prov, NULL, force, quiet);
	master_unlock(m);
	return r;
}

int cmd_release(struct master *m, int argc, char **argv)
{
	char tftp[PATH_MAX], detail[512], macs[18];
	struct enrollment *e = NULL;
	struct store *st = NULL;
	uint8_t mac[6];
	int r, known;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(release_usage, stdout);
		return 0;
	}
	if (argc != 2) {
		master_usage_hint(argv[0]);
		return 2;
	}
	if (nf_parse_mac(argv[1], mac) < 0)
		return bad_mac(argv[1]);
	nf_format_mac(mac, macs);
	if (master_require_init(m) || master_lock(m) < 0)
		return 1;
	master_path(m, tftp, sizeof(tftp), "tftp");
	detail[0] = '\0';
	if (master_open_store(m, &st) < 0)
		goto fail;
	known = (e = calloc(1, sizeof(*e))) && store_get(st, macs, e) == 0;
	free(e);
	r = tftpdir_exists(tftp, macs);
	if (!known && r == 0) {
		nf_err("%s is not enrolled (see netflash ls); nothing to release", macs);
		goto fail;
	}
	if (r == 1 && tftpdir_generation(tftp, macs, detail, sizeof(detail)) == -ENOENT) {
		nf_err("cannot release %s: tftp/%s was not made by netflash (no marker); remove it by hand", macs, macs);
		goto fail;
	}
	/* The intent first (recover.h): from here the release is completed
	 * whatever interrupts it. */
	if ((r = intent_write(m, macs, "release 0")) < 0) {
		nf_err("cannot release %s: %s", macs, nf_strerror(r));
		goto fail;
	}
	store_set_state(st, macs, NF_WORKER_RELEASED, NULL);
	r = tftpdir_remove(tftp, macs, detail, sizeof(detail));
	store_event(st, macs, "release", r == -ENOENT ? "no tftp dir" : "by netflash release");
	store_close(st);
	st = NULL;
	if (r < 0 && r != -ENOENT) {
		nf_err("cannot release %s: %s", macs, detail);
		goto fail;
	}
	provision_remove(m, macs);
	if (nfsroot_set(m, macs, NULL, detail, sizeof(detail)) < 0)
		nf_warn("%s, ignoring", detail);
	intent_clear(m, macs);
	master_unlock(m);
	if (r == -ENOENT)
		printf("%s has no TFTP dir (already released); it boots from its card\n", macs);
	else
		printf("released %s: its TFTP dir is gone, its next boot comes from its card\n", macs);
	return 0;
fail:
	store_close(st);
	master_unlock(m);
	return 1;
}

struct ls_ctx {
	char tftp[PATH_MAX];
	int n;
};

static int ls_row(const struct enrollment *e, void *ctx)
{
	struct ls_ctx *c = ctx;
	char when[32];
	time_t t = (time_t)e->updated_at;
	int dir = tftpdir_exists(c->tftp, e->mac);

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M", localtime(&t));
	printf("%-17s  %-16s %-20s %-9s %-4s %s\n", e->mac, e->hostname[0] ? e->hostname : "-", e->image,
	       nf_worker_state_name(e->state), dir > 0 ? "yes" : "no", when);
	c->n++;
	return 0;
}

int cmd_ls(struct master *m, int argc, char **argv)
{
	struct ls_ctx c = { .n = 0 };
	struct store *st = NULL;
	int json = argc == 2 && strcmp(argv[1], "--json") == 0;

	if (argc > 1 && !json) {
		if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
			printf("Usage: netflash [--root DIR] ls [--json]\n\nList enrolled and past workers: MAC, hostname, image, state,\n"
			       "whether a TFTP dir exists (the worker netboots) and the last change.\n"
			       "  --json    one JSON array of worker objects (docs/api.md), as /api/workers\n");
			return 0;
		}
		nf_err("ls takes only --json (see netflash ls --help)");
		return 2;
	}
	if (master_require_init(m) || master_open_store(m, &st) < 0)
		return 1;
	if (json) {
		int r = api_workers_json(stdout, st);

		putchar('\n');
		store_close(st);
		return r < 0 ? 1 : 0;
	}
	master_path(m, c.tftp, sizeof(c.tftp), "tftp");
	printf("%-17s  %-16s %-20s %-9s %-4s %s\n", "MAC", "HOSTNAME", "IMAGE", "STATE", "TFTP", "CHANGED");
	store_each(st, ls_row, &c);
	store_close(st);
	if (c.n == 0)
		printf("(no workers; enroll one with: netflash enroll MAC --image NAME)\n");
	return 0;
}
