/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Provisioning options: parsing and checking what enroll, reimage and
 * mass-flash are told to write to a card's boot partition (the CLI's: they
 * log usage errors; the settings they fill are core/provision.h's). */
#include "cli.h"
#include "provision_opts.h"
#include "known.h"
#include "multicast.h"

#include <getopt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileutil.h"
#include "log.h"
#include "parse.h"

enum {
	O_SSH = PROVISION_OPT, O_USER, O_HASH, O_SSID, O_PSK, O_COUNTRY, O_HIDDEN, O_TZ, O_KEYMAP, O_LOCALE,
	O_FIRSTBOOT, O_USERDATA, O_NETCONF, O_STYLE, O_MOUNT, O_MULTICAST, O_MINW, O_MAXWAIT, O_LATE,
};

const struct option provision_options[] = {
	{ "ssh", no_argument, NULL, O_SSH },
	{ "user", required_argument, NULL, O_USER },
	{ "password-hash-file", required_argument, NULL, O_HASH },
	{ "wifi-ssid", required_argument, NULL, O_SSID },
	{ "wifi-psk-file", required_argument, NULL, O_PSK },
	{ "wifi-country", required_argument, NULL, O_COUNTRY },
	{ "wifi-hidden", no_argument, NULL, O_HIDDEN },
	{ "timezone", required_argument, NULL, O_TZ },
	{ "keymap", required_argument, NULL, O_KEYMAP },
	{ "locale", required_argument, NULL, O_LOCALE },
	{ "firstboot", required_argument, NULL, O_FIRSTBOOT },
	{ "user-data", required_argument, NULL, O_USERDATA },
	{ "network-config", required_argument, NULL, O_NETCONF },
	{ "provision-style", required_argument, NULL, O_STYLE },
	{ "boot-mount", required_argument, NULL, O_MOUNT },
	{ "multicast", no_argument, NULL, O_MULTICAST },
	{ "min-workers", required_argument, NULL, O_MINW },
	{ "max-wait", required_argument, NULL, O_MAXWAIT },
	{ "late", required_argument, NULL, O_LATE },
	{ 0 },
};

const char provision_usage[] =
"Provisioning (written onto the card's FAT boot partition after the image is\n"
"verified, before the worker is released; the image digest check is\n"
"unchanged, the written sectors are read back and their digest checked):\n"
"  --ssh                    enable the SSH server (implied by --ssh-key)\n"
"  --user NAME              the first user (renames the image's uid 1000)...\n"
"  --password-hash-file F   ...with this crypt(3) hash (one line; make it with\n"
"                           'openssl passwd -6 > F'); needed with --user\n"
"  --wifi-ssid SSID         join this Wi-Fi network...\n"
"  --wifi-psk-file F        ...with the passphrase (8-63 characters) or 64-hex\n"
"                           PSK in F; only the derived PSK reaches the card\n"
"  --wifi-country CC        regulatory domain (e.g. GB; default: none)\n"
"  --wifi-hidden            the network does not broadcast its SSID\n"
"  --timezone TZ            e.g. Europe/London\n"
"  --keymap KB              keyboard layout, e.g. gb, us, de\n"
"  --locale L               e.g. en_GB.UTF-8\n"
"  --firstboot FILE         a script run once as root at the end of first boot\n"
"                           (output in BOOT/netflash-firstboot.log)\n"
"  --user-data FILE         cloud-init user-data written as is (cloud-init\n"
"                           images only; replaces the generated one)\n"
"  --network-config FILE    cloud-init network-config written as is\n"
"  --provision-style S      auto (default: cloud-init when the image's boot\n"
"                           partition holds user-data or meta-data, else\n"
"                           firstrun), firstrun or cloud-init\n"
"  --boot-mount DIR         where the OS mounts the boot partition\n"
"                           (default /boot/firmware; /boot before Bookworm)\n"
"\n"
"Delivery (docs/multicast.md):\n"
"  --multicast              take the image from a multicast session (udpcast)\n"
"                           shared by the workers that ask for the same image,\n"
"                           not one NFS copy each; a worker whose session fails\n"
"                           retries by NFS. The digest check is unchanged\n"
"  --min-workers N          start a session once N workers have asked...\n"
"  --max-wait S             ...or S seconds after its first one (default 30)\n"
"  --late wait|nfs          a worker that asks once its session is under way\n"
"                           waits for the next session (default) or takes NFS\n";

void provision_merge_options(const struct option *own, size_t n, struct option *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < cap; i++)
		out[o++] = own[i];
	for (size_t i = 0; provision_options[i].name && o + 1 < cap; i++)
		out[o++] = provision_options[i];
	memset(&out[o], 0, sizeof(out[o]));
}

/* Options whose value leads to a secret: never abbreviated, never echoed. */
static const char *const secret_options[] = { "password-hash-file", "wifi-psk-file" };

int provision_spelled_out(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		size_t n;

		if (strcmp(a, "--") == 0)
			break;
		if (strncmp(a, "--", 2) != 0 || !a[2])
			continue;
		n = strcspn(a + 2, "=");
		for (size_t k = 0; k < sizeof(secret_options) / sizeof(secret_options[0]); k++) {
			if (n < strlen(secret_options[k]) && strncmp(secret_options[k], a + 2, n) == 0) {
				nf_err("'--%.*s' is not an option here: options that lead to a secret are never "
				       "abbreviated (--%s FILE); its value is not shown", (int)(n > 40 ? 40 : n), a + 2,
				       secret_options[k]);
				return 2;
			}
		}
	}
	return 0;
}

void provision_init(struct provision *p)
{
	memset(p, 0, sizeof(*p));
	p->boot_mount = "/boot/firmware";
	multicast_defaults(&p->mc);
}

/* Characters allowed in a value: each byte must be in set, len in [1, max]. */
static int only(const char *s, const char *set, size_t max)
{
	size_t n = strlen(s);

	return n >= 1 && n <= max && strspn(s, set) == n;
}

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/* Reads the one-line file behind a secret option; on failure says why
 * without the file's name (a secret typed there by mistake stays unseen).
 * Returns 0 or -1. */
static int secret_line_file(const char *opt, const char *file, char *out, size_t cap)
{
	int r = master_read_one_line(file, out, cap);

	if (r == -EBADMSG)
		nf_err("the file given to %s must hold exactly one line; its name is not shown", opt);
	else if (r < 0)
		nf_err("cannot read the file given to %s: %s; its name is not shown", opt,
		       r == -EFBIG ? "too long" : nf_strerror(r));
	return r < 0 ? -1 : 0;
}

/* The value must be on the list Debian ships (known.h); the error names
 * the nearest valid spelling. A list that is not installed is warned
 * about, and the value taken. Returns 0 or 2. */
static int on_list(const char *opt, enum known_list list, const char *val)
{
	char near[512], q[200];
	int r = known_value(list, val, near, sizeof(near));

	if (r == 1)
		return 0;
	if (r < 0) {
		nf_warn("cannot check %s %s: %s is not installed (package %s), ignoring", opt,
			nf_quote(q, sizeof(q), val), near, known_package(list));
		return 0;
	}
	nf_err("invalid %s %s: not a known %s%s%s%s", opt, nf_quote(q, sizeof(q), val),
	       list == KNOWN_TIMEZONE ? "time zone" : list == KNOWN_COUNTRY ? "ISO 3166 country code"
	       : list == KNOWN_KEYMAP ? "keyboard layout" : "supported locale",
	       near[0] ? " (did you mean '" : "", near, near[0] ? "'?)" : "");
	return 2;
}

static int bad(const char *opt, const char *val, const char *why)
{
	char q[200];

	nf_err("invalid %s %s: %s", opt, nf_quote(q, sizeof(q), val), why);
	return 2;
}

static int check_text_file(const char *opt, const char *file)
{
	static char buf[PROVISION_FILE_MAX + 1];
	char q[PATH_MAX + 8];
	ssize_t n = nf_read_file(file, buf, PROVISION_FILE_MAX);

	if (n < 0) {
		nf_err("cannot read %s %s: %s", opt, nf_quote(q, sizeof(q), file),
		       n == -EFBIG ? "larger than 32 KiB" : nf_strerror((int)n));
		return 2;
	}
	if (memchr(buf, '\0', (size_t)n)) {
		nf_err("%s %s is not a text file (it holds NUL bytes)", opt, nf_quote(q, sizeof(q), file));
		return 2;
	}
	if (strcmp(opt, "--user-data") == 0 && buf[0] != '#') {
		nf_err("%s %s does not start with '#cloud-config' (or another '#' header cloud-init knows)", opt,
		       nf_quote(q, sizeof(q), file));
		return 2;
	}
	return 0;
}

/* Accounts a Debian 12 / Raspberry Pi OS Bookworm or Trixie image has
 * before its first boot (base-passwd's static users, and those its
 * packages add: pi-gen's stage0-2 and Trixie's systemd users); the first
 * user cannot be one of them. */
static int reserved_user(const char *name)
{
	static const char *const users[] = {
		"root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
		"www-data", "backup", "list", "irc", "gnats", "nobody", "_apt", "messagebus", "sshd", "avahi",
		"avahi-autoipd", "dnsmasq", "lightdm", "pulse", "rtkit", "saned", "colord", "polkitd", "tss",
		"usbmux", "nm-openvpn", "hplip", "statd", "tcpdump", "rpc", "_rpc", "uuidd", "ntp", "systemd-timesync",
		"systemd-network", "systemd-resolve", "systemd-coredump", "systemd-journal-remote", "dhcpcd", "mysql",
		"postfix", "cups-pk-helper", "geoclue", "speech-dispatcher", "sddm", "gdm", "Debian-gdm",
	};

	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++)
		if (strcmp(name, users[i]) == 0)
			return 1;
	return 0;
}

int provision_option(struct provision *p, int opt, const char *arg)
{
	uint64_t v;

	switch (opt) {
	case O_SSH: p->ssh = 1; return 0;
	case O_USER:
		if (!only(arg, "abcdefghijklmnopqrstuvwxyz0123456789_-", 32) || arg[0] == '-' ||
		    (arg[0] >= '0' && arg[0] <= '9'))
			return bad("--user", arg, "a login name: lower-case letters, digits, '_', '-', up to 32");
		if (reserved_user(arg)) {
			char q[64];

			nf_err("invalid --user %s: it is a system account of Debian and Raspberry Pi OS (root or a service), "
			       "which has no login on first boot; choose another name (rpi-imager#1673)",
			       nf_quote(q, sizeof(q), arg));
			return 2;
		}
		p->user = arg;
		return 0;
	case O_HASH:
		/* A password given here by mistake must not reach the screen. */
		if (secret_line_file("--password-hash-file", arg, p->password_hash, sizeof(p->password_hash)) < 0)
			return 2;
		if (p->password_hash[0] != '$' || !only(p->password_hash, ALNUM "./$=,-", 256) ||
		    !strchr(p->password_hash + 1, '$')) {
			nf_err("invalid --password-hash-file: the file does not hold a crypt(3) hash like $6$salt$hash "
			       "(make one with 'openssl passwd -6'); its name is not shown");
			return 2;
		}
		return 0;
	case O_SSID: {
		size_t n = strlen(arg);

		for (size_t i = 0; i < n; i++)
			if ((unsigned char)arg[i] < 0x20 || arg[i] == 0x7f)
				return bad("--wifi-ssid", arg, "control characters are not supported");
		if (n == 0 || n > 32)
			return bad("--wifi-ssid", arg, "an SSID has 1 to 32 bytes");
		p->wifi_ssid = arg;
		return 0;
	}
	case O_PSK: p->psk_file = arg; return 0;
	case O_COUNTRY:
		if (strlen(arg) != 2 || !only(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 2))
			return bad("--wifi-country", arg, "a two-letter upper-case country code like GB");
		if (on_list("--wifi-country", KNOWN_COUNTRY, arg))
			return 2;
		p->wifi_country = arg;
		return 0;
	case O_HIDDEN: p->wifi_hidden = 1; return 0;
	case O_TZ:
		if (!only(arg, ALNUM "_+-/", 64) || arg[0] == '/' || strstr(arg, "..") || strstr(arg, "//"))
			return bad("--timezone", arg, "a zone name like Europe/London");
		if (on_list("--timezone", KNOWN_TIMEZONE, arg))
			return 2;
		p->timezone = arg;
		return 0;
	case O_KEYMAP:
		if (!only(arg, ALNUM "_-", 32))
			return bad("--keymap", arg, "a layout name like gb or us");
		if (on_list("--keymap", KNOWN_KEYMAP, arg))
			return 2;
		p->keymap = arg;
		return 0;
	case O_LOCALE:
		if (!only(arg, ALNUM "_.@-", 32))
			return bad("--locale", arg, "a locale name like en_GB.UTF-8");
		if (on_list("--locale", KNOWN_LOCALE, arg))
			return 2;
		p->locale = arg;
		return 0;
	case O_FIRSTBOOT:
		if (check_text_file("--firstboot", arg))
			return 2;
		p->firstboot = arg;
		return 0;
	case O_USERDATA:
		if (check_text_file("--user-data", arg))
			return 2;
		p->user_data = arg;
		return 0;
	case O_NETCONF:
		if (check_text_file("--network-config", arg))
			return 2;
		p->network_config = arg;
		return 0;
	case O_STYLE:
		if (strcmp(arg, "auto") == 0)
			p->style = PROVISION_AUTO;
		else if (strcmp(arg, "firstrun") == 0)
			p->style = PROVISION_FIRSTRUN;
		else if (strcmp(arg, "cloud-init") == 0)
			p->style = PROVISION_CLOUDINIT;
		else
			return bad("--provision-style", arg, "expected auto, firstrun or cloud-init");
		return 0;
	case O_MOUNT:
		if (arg[0] != '/' || !only(arg, ALNUM "_.-/", 64) || strstr(arg, ".."))
			return bad("--boot-mount", arg, "an absolute path like /boot/firmware");
		p->boot_mount = arg;
		return 0;
	case O_MULTICAST: p->multicast = 1; return 0;
	case O_MINW:
		if (nf_parse_u64(arg, 1, NF_MC_MIN_WORKERS_MAX, &v) < 0)
			return bad("--min-workers", arg, "a count from 1 to 256");
		p->mc.min_workers = (unsigned)v;
		p->mc_tuned = 1;
		return 0;
	case O_MAXWAIT:
		if (nf_parse_u64(arg, 1, NF_MC_MAX_WAIT_MAX, &v) < 0)
			return bad("--max-wait", arg, "seconds from 1 to 3600");
		p->mc.max_wait = (unsigned)v;
		p->mc_tuned = 1;
		return 0;
	case O_LATE:
		if (strcmp(arg, "wait") != 0 && strcmp(arg, "nfs") != 0)
			return bad("--late", arg, "wait or nfs");
		p->mc.late_nfs = strcmp(arg, "nfs") == 0;
		p->mc_tuned = 1;
		return 0;
	}
	return 2;
}

/* The WPA PSK as wpa_passphrase derives it: PBKDF2-HMAC-SHA1(passphrase,
 * SSID, 4096 rounds, 32 bytes); a 64-hex PSK is taken as it is. */
static int wifi_psk(struct provision *p)
{
	char pass[128];
	uint8_t key[32];
	size_t n;

	if (secret_line_file("--wifi-psk-file", p->psk_file, pass, sizeof(pass)) < 0)
		return 2;
	n = strlen(pass);
	if (n == 64 && only(pass, "0123456789abcdefABCDEF", 64)) {
		for (size_t i = 0; i < 64; i++)
			p->wifi_psk[i] = (char)(pass[i] >= 'A' && pass[i] <= 'F' ? pass[i] + 32 : pass[i]);
		p->wifi_psk[64] = '\0';
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)pass[i] < 0x20 || (unsigned char)pass[i] > 0x7e)
			n = 0;
	}
	if (n < 8 || n > 63) {
		nf_err("the --wifi-psk-file file must hold a passphrase of 8 to 63 printable ASCII characters or a "
		       "64-hex PSK; its name is not shown");
		return 2;
	}
	if (!PKCS5_PBKDF2_HMAC_SHA1(pass, (int)n, (const unsigned char *)p->wifi_ssid, (int)strlen(p->wifi_ssid),
				    4096, sizeof(key), key)) {
		nf_err("cannot derive the Wi-Fi PSK (libcrypto)");
		return 2;
	}
	nf_format_hex(key, sizeof(key), p->wifi_psk);
	OPENSSL_cleanse(pass, sizeof(pass));
	return 0;
}

int provision_check(struct provision *p)
{
	if (p->mc_tuned && !p->multicast) {
		nf_err("--min-workers, --max-wait and --late shape multicast sessions: they need --multicast");
		return 2;
	}
	if (p->user && !p->password_hash[0]) {
		nf_err("--user needs --password-hash-file (make one with 'openssl passwd -6 > FILE')");
		return 2;
	}
	if (p->password_hash[0] && !p->user) {
		nf_err("--password-hash-file needs --user NAME");
		return 2;
	}
	if (!p->wifi_ssid != !p->psk_file) {
		nf_err("--wifi-ssid and --wifi-psk-file go together");
		return 2;
	}
	if ((p->wifi_country || p->wifi_hidden) && !p->wifi_ssid) {
		nf_err("--wifi-country and --wifi-hidden need --wifi-ssid");
		return 2;
	}
	if ((p->user_data || p->network_config) && p->style == PROVISION_FIRSTRUN) {
		nf_err("--user-data and --network-config are cloud-init files; not with --provision-style firstrun");
		return 2;
	}
	if (p->user_data && (p->hostname || p->ssh_key || p->user || p->timezone || p->keymap || p->locale ||
			     p->firstboot)) {
		nf_err("--user-data replaces the generated user-data: put the hostname, users, keys, "
		       "time zone and first-boot commands in it instead of giving them as options");
		return 2;
	}
	if (p->network_config && p->wifi_ssid) {
		nf_err("--network-config replaces the generated one: put the Wi-Fi settings in it");
		return 2;
	}
	if (p->ssh_key)
		p->ssh = 1;
	return p->wifi_ssid ? wifi_psk(p) : 0;
}

