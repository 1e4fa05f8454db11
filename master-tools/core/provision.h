/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One-shot provisioning: per-worker settings written onto the card's FAT
 * boot partition after the image is verified. At enroll time the master
 * applies them with mtools to a copy of the image's boot partition and keeps
 * the sectors that changed as a patch (lib/patch.h) in
 * ROOT/state/provision/MAC.patch (0600: it may hold a password hash and a
 * Wi-Fi key). netflashd sends it to the worker after JOB; the worker writes
 * it, reads it back and names its digest in DONE.
 *
 * Two conventions, chosen per image (or with --provision-style):
 *   firstrun   Raspberry Pi OS up to Bookworm, as rpi-imager writes it:
 *              firstrun.sh run once by systemd.run= on cmdline.txt,
 *              userconf.txt (user:hash), an empty ssh file
 *   cloud-init images whose boot partition holds user-data or meta-data:
 *              user-data (#cloud-config) and network-config (netplan v2) */
#ifndef NETFLASH_PROVISION_H
#define NETFLASH_PROVISION_H

#include <stddef.h>

#include "multicast.h"
#include "patch.h"

struct master;

enum provision_style { PROVISION_AUTO, PROVISION_FIRSTRUN, PROVISION_CLOUDINIT };

#define PROVISION_FILE_MAX (32u << 10) /* --firstboot, --user-data, --network-config */
#define NF_SSHKEY_MAX 8192             /* one OpenSSH public key line */

struct provision {
	const char *hostname;           /* validated by the caller */
	const char *ssh_key;            /* one OpenSSH public key line, or NULL */
	char ssh_key_line[NF_SSHKEY_MAX + 1]; /* where master_enroll_settings reads it */
	int ssh;                        /* enable the SSH server */
	const char *user;
	char password_hash[257];        /* crypt(3) string from --password-hash-file */
	const char *wifi_ssid, *wifi_country;
	char wifi_psk[65];              /* 64 hex: PBKDF2 of passphrase and SSID */
	int wifi_hidden;
	const char *timezone, *keymap, *locale;
	const char *firstboot, *user_data, *network_config; /* files */
	const char *boot_mount;         /* where the OS mounts the FAT (/boot/firmware) */
	enum provision_style style;
	const char *psk_file;           /* read once the SSID is known */
	/* Not provisioning but delivery (core/multicast.h): how the image
	 * reaches the card. Never written to it. */
	int multicast, mc_tuned;
	struct nf_mc_settings mc;
};

/* 1 if anything is to be written to the card. */
int provision_wanted(const struct provision *p);

/* ROOT/state/provision/MAC.patch into out. Returns 0 or -ENAMETOOLONG. */
int provision_patch_path(const struct master *m, const char *mac, char *out, size_t cap);

/* Checks that image can be provisioned (it has a FAT boot partition) and
 * extracts that partition into the cache ahead of many enrollments; with
 * user (a --user name, or NULL), also that it is not one of the image's
 * system accounts (its /etc/passwd, cached too). Returns 0, or -errno with
 * why (one line) set. */
int provision_prepare(struct master *m, const char *image, const char *user, char *why, size_t cap);

/* Removes the cached boot partitions (ROOT/state/cache) of image versions
 * no longer in the catalog (after image rm, or add --force replacing one).
 * Call under the state lock. Returns how many were removed, or -errno. */
int provision_cache_prune(const struct master *m);

/* Builds and stores mac's patch for catalog image `image`; summary gets a
 * line such as "firstrun.sh, cmdline.txt, ssh: 9 sectors (4.5 KiB)". Call
 * under the state lock. Returns 0, or -errno with why (one line) set. */
int provision_build(struct master *m, const char *mac, const char *image, const struct provision *p,
		    char *summary, size_t cap, char *why, size_t why_cap);

/* Removes mac's patch (release, re-enroll without settings). Returns 0 or -errno. */
int provision_remove(const struct master *m, const char *mac);

#endif
