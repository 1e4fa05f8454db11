/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What provision.c's parts share: the options (provision_opts.c), the
 * first-boot files (provision_render.c), the boot-partition cache
 * (provision_cache.c) and the patch (provision.c). Not for other modules. */
#ifndef NETFLASH_PROVISION_INT_H
#define NETFLASH_PROVISION_INT_H

#include <stddef.h>
#include <stdint.h>

#include "manifest.h"
#include "master.h"
#include "provision.h"

#define PROVISION_TEXT_MAX (64u << 10)

/* A rendered file: add() appends, over is set once it did not fit. */
struct provision_text {
	char *buf;
	size_t len;
	int over;
};

/* The files written to the boot partition, each into t (PROVISION_TEXT_MAX
 * bytes): firstrun.sh (Raspberry Pi Imager's scheme), cloud-init's
 * user-data (network-config: provision_merge_network_config). mac names the
 * worker in comments. */
void provision_render_firstrun(const struct provision *p, const char *mac, struct provision_text *t);
void provision_render_user_data(const struct provision *p, const char *mac, struct provision_text *t);

/* network-config for Wi-Fi settings p (netconfig.c, libyaml): the image's
 * own (image: its len bytes, or NULL when it has none) with its wired
 * interfaces kept (eth0 with dhcp4 and optional added when it names none),
 * its other keys kept, and our wlan0 in wifis, as "network: {version: 2}".
 * Into t. Returns 0, or -EBADMSG (the image's is not YAML, or not version
 * 2), -EMSGSIZE or -ENOMEM with why (one line, cap bytes). */
int provision_merge_network_config(const struct provision *p, const char *image, size_t len, struct provision_text *t,
				   char *why, size_t cap);
/* userconf.txt (Pi OS's first user): "user:crypt-hash" and a newline. */
void provision_render_userconf(const struct provision *p, struct provision_text *t);

/* The image's FAT boot partition, extracted once per image digest into
 * ROOT/state/cache: its path, and its offset and length in the image
 * (bytes). Returns 0, or -errno with why (one line) set. */
int provision_cached_partition(const struct master *m, const struct nf_manifest *man, char *path, size_t cap,
			       uint64_t *off, uint64_t *len, char *why, size_t why_cap);

/* Refuses user as the first user when the image's /etc/passwd (read once
 * per image version, cached in ROOT/state/cache) has it as a system
 * account (uid below 1000, or 60000 and up: Debian policy 9.2.2). Returns
 * 0 (also when the image's accounts cannot be read: a warning says so),
 * or -EINVAL with why (one line). */
int provision_check_user(const struct master *m, const struct nf_manifest *man, const char *user, char *why,
			 size_t cap);

#endif
