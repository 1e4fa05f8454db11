#include "provision.h"
#include "known.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootpart.h"
#include "fileutil.h"
#include "format.h"
#include "log.h"
#include "manifest.h"
#include "master.h"
#include "parse.h"

#define TEXT_MAX (64u << 10)
#define SECTOR 512
#define DIFF_CHUNK (64u << 10)

enum {
	O_SSH = PROVISION_OPT, O_USER, O_HASH, O_SSID, O_PSK, O_COUNTRY, O_HIDDEN, O_TZ, O_KEYMAP, O_LOCALE,
	O_FIRSTBOOT, O_USERDATA, O_NETCONF, O_STYLE, O_MOUNT,
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
"                           (default /boot/firmware; /boot before Bookworm)\n";

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

int provision_option(struct provision *p, int opt, const char *arg)
{
	switch (opt) {
	case O_SSH: p->ssh = 1; return 0;
	case O_USER:
		if (!only(arg, "abcdefghijklmnopqrstuvwxyz0123456789_-", 32) || arg[0] == '-' ||
		    (arg[0] >= '0' && arg[0] <= '9'))
			return bad("--user", arg, "a login name: lower-case letters, digits, '_', '-', up to 32");
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

int provision_wanted(const struct provision *p)
{
	return p->hostname || p->ssh || p->ssh_key || p->user || p->wifi_ssid || p->timezone || p->keymap ||
	       p->locale || p->firstboot || p->user_data || p->network_config;
}

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

/* ---- rendering ------------------------------------------------------------ */

struct text {
	char *buf;
	size_t len;
	int over;
};

static void __attribute__((format(printf, 2, 3))) add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->over)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, TEXT_MAX - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= TEXT_MAX - t->len)
		t->over = 1;
	else
		t->len += (size_t)n;
}

/* s as one shell word in single quotes ('\'' for a quote). */
static const char *sh(char *out, size_t cap, const char *s)
{
	size_t o = 0;

	out[o++] = '\'';
	for (; *s && o + 6 < cap; s++) {
		if (*s == '\'') {
			memcpy(out + o, "'\\''", 4);
			o += 4;
		} else {
			out[o++] = *s;
		}
	}
	out[o++] = '\'';
	out[o] = '\0';
	return out;
}

/* s as a YAML double-quoted scalar. */
static const char *yq(char *out, size_t cap, const char *s)
{
	size_t o = 0;

	out[o++] = '"';
	for (; *s && o + 8 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, cap - o, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

static void render_firstrun(const struct provision *p, const char *mac, struct text *t)
{
	char q[NF_SSHKEY_MAX * 4 + 8];

	add(t, "#!/bin/bash\n"
	       "# Written by netflash for %s at enroll time: the rpi-imager first-boot\n"
	       "# convention. systemd.run= on cmdline.txt runs it once; it then removes\n"
	       "# itself and that argument, and the Pi reboots into its settings.\n"
	       "set +e\n\n", mac);
	add(t, "BOOT=%s\n[ -f \"$BOOT/cmdline.txt\" ] || BOOT=/boot\n", sh(q, sizeof(q), p->boot_mount));
	add(t, "IMAGER=/usr/lib/raspberrypi-sys-mods/imager_custom\n");
	/* Every setting it makes, and any it cannot, is said: in a log on the
	 * boot partition (readable from any machine) and in the kernel log. */
	add(t, "say() { echo \"netflash firstrun: $*\" >>\"$BOOT/netflash-firstrun.log\"; "
	       "echo \"netflash firstrun: $*\" >/dev/kmsg 2>/dev/null; }\n\n");
	if (p->hostname)
		add(t, "NEW_HOSTNAME=%s\n"
		       "CURRENT_HOSTNAME=$(tr -d \" \\t\\n\\r\" </etc/hostname)\n"
		       "if [ -f \"$IMAGER\" ]; then\n"
		       "   \"$IMAGER\" set_hostname \"$NEW_HOSTNAME\"\n"
		       "else\n"
		       "   echo \"$NEW_HOSTNAME\" >/etc/hostname\n"
		       "   sed -i \"s/127.0.1.1.*$CURRENT_HOSTNAME/127.0.1.1\\t$NEW_HOSTNAME/g\" /etc/hosts\n"
		       "fi\n\n", p->hostname);
	if (p->ssh_key)
		add(t, "FIRSTUSER=$(getent passwd 1000 | cut -d: -f1)\n"
		       "FIRSTUSERHOME=$(getent passwd 1000 | cut -d: -f6)\n"
		       "SSH_KEY=%s\n"
		       "if [ -f \"$IMAGER\" ]; then\n"
		       "   \"$IMAGER\" enable_ssh -k \"$SSH_KEY\"\n"
		       "else\n"
		       "   install -o \"$FIRSTUSER\" -m 700 -d \"$FIRSTUSERHOME/.ssh\"\n"
		       "   printf '%%s\\n' \"$SSH_KEY\" >\"$FIRSTUSERHOME/.ssh/authorized_keys\"\n"
		       "   chown \"$FIRSTUSER:$FIRSTUSER\" \"$FIRSTUSERHOME/.ssh/authorized_keys\"\n"
		       "   chmod 600 \"$FIRSTUSERHOME/.ssh/authorized_keys\"\n"
		       "   echo 'PasswordAuthentication no' >>/etc/ssh/sshd_config\n"
		       "   systemctl enable ssh\n"
		       "fi\n\n", sh(q, sizeof(q), p->ssh_key));
	else if (p->ssh)
		add(t, "if [ -f \"$IMAGER\" ]; then\n   \"$IMAGER\" enable_ssh\nelse\n   systemctl enable ssh\nfi\n\n");
	if (p->wifi_ssid) {
		char hex[65], uuid[40], rnd[33], ssid_bytes[32 * 4 + 1] = "";

		nf_format_hex((const uint8_t *)p->wifi_ssid, strlen(p->wifi_ssid), hex);
		/* NetworkManager's keyfile takes the SSID as bytes ("72;97;"):
		 * no quoting of what the SSID holds. A random v4 UUID. */
		for (const unsigned char *c = (const unsigned char *)p->wifi_ssid; *c; c++)
			snprintf(ssid_bytes + strlen(ssid_bytes), sizeof(ssid_bytes) - strlen(ssid_bytes), "%u;", *c);
		if (nf_random_hex(rnd, 16) < 0)
			snprintf(rnd, sizeof(rnd), "%032x", 0);
		snprintf(uuid, sizeof(uuid), "%.8s-%.4s-4%.3s-a%.3s-%.12s", rnd, rnd + 8, rnd + 13, rnd + 17, rnd + 20);
		add(t, "if [ -f \"$IMAGER\" ]; then\n"
		       "   \"$IMAGER\" set_wlan %s%s %s %s\n"
		       "   say \"Wi-Fi: set by imager_custom\"\n"
		       "elif [ -x /usr/sbin/NetworkManager ]; then\n"
		       "   # NetworkManager (Pi OS since Bookworm) ignores wpa_supplicant.conf.\n"
		       "   NM=/etc/NetworkManager/system-connections/preconfigured.nmconnection\n"
		       "   install -d -m 700 /etc/NetworkManager/system-connections\n"
		       "   (umask 077; cat >\"$NM\" <<'NETFLASH_NM'\n"
		       "[connection]\nid=preconfigured\nuuid=%s\ntype=wifi\n\n"
		       "[wifi]\nmode=infrastructure\nssid=%s\n%s\n"
		       "[wifi-security]\nkey-mgmt=wpa-psk\npsk=%s\n\n"
		       "[ipv4]\nmethod=auto\n\n[ipv6]\naddr-gen-mode=default\nmethod=auto\n"
		       "NETFLASH_NM\n"
		       "   )\n"
		       "   chmod 600 \"$NM\"\n"
		       "   say \"Wi-Fi: NetworkManager keyfile $NM\"\n"
		       "elif [ -d /etc/wpa_supplicant ]; then\n"
		       "   cat >/etc/wpa_supplicant/wpa_supplicant.conf <<'NETFLASH_WPA'\n"
		       "ctrl_interface=DIR=/var/run/wpa_supplicant GROUP=netdev\n"
		       "%s%s%s"
		       "update_config=1\n"
		       "network={\n"
		       "\tssid=%s\n"
		       "\tpsk=%s\n%s"
		       "}\n"
		       "NETFLASH_WPA\n"
		       "   chmod 600 /etc/wpa_supplicant/wpa_supplicant.conf\n"
		       "   say \"Wi-Fi: /etc/wpa_supplicant/wpa_supplicant.conf\"\n"
		       "else\n"
		       "   say \"error: Wi-Fi is NOT configured: this system has neither imager_custom, NetworkManager "
		       "nor wpa_supplicant\"\n"
		       "fi\n",
		       p->wifi_hidden ? "-h " : "", sh(q, sizeof(q), p->wifi_ssid), p->wifi_psk,
		       p->wifi_country ? p->wifi_country : "", uuid, ssid_bytes, p->wifi_hidden ? "hidden=true\n" : "",
		       p->wifi_psk, p->wifi_country ? "country=" : "", p->wifi_country ? p->wifi_country : "",
		       p->wifi_country ? "\n" : "", hex, p->wifi_psk, p->wifi_hidden ? "\tscan_ssid=1\n" : "");
		if (p->wifi_country)
			add(t, "if [ ! -f \"$IMAGER\" ] && [ -x /usr/sbin/NetworkManager ]; then\n"
			       "   # The regulatory domain: NetworkManager does not set it.\n"
			       "   if command -v raspi-config >/dev/null; then\n"
			       "      raspi-config nonint do_wifi_country %s\n"
			       "   elif ! grep -q cfg80211.ieee80211_regdom \"$BOOT/cmdline.txt\"; then\n"
			       "      # First: everything from systemd.run on is removed below.\n"
			       "      sed -i '1s/^/cfg80211.ieee80211_regdom=%s /' \"$BOOT/cmdline.txt\"\n"
			       "   fi\n"
			       "fi\n", p->wifi_country, p->wifi_country);
		add(t, "if [ ! -f \"$IMAGER\" ]; then\n"
		       "   rfkill unblock wifi\n"
		       "   for f in /var/lib/systemd/rfkill/*:wlan; do echo 0 >\"$f\"; done\n"
		       "fi\n\n");
	}
	if (p->keymap)
		add(t, "if [ -f \"$IMAGER\" ]; then\n"
		       "   \"$IMAGER\" set_keymap '%s'\n"
		       "else\n"
		       "   sed -i 's/^XKBLAYOUT=.*/XKBLAYOUT=\"%s\"/' /etc/default/keyboard\n"
		       "   dpkg-reconfigure -f noninteractive keyboard-configuration\n"
		       "fi\n\n", p->keymap, p->keymap);
	if (p->timezone)
		add(t, "if [ -f \"$IMAGER\" ]; then\n"
		       "   \"$IMAGER\" set_timezone '%s'\n"
		       "else\n"
		       "   rm -f /etc/localtime\n"
		       "   echo '%s' >/etc/timezone\n"
		       "   dpkg-reconfigure -f noninteractive tzdata\n"
		       "fi\n\n", p->timezone, p->timezone);
	if (p->locale)
		add(t, "if command -v raspi-config >/dev/null; then\n"
		       "   raspi-config nonint do_change_locale '%s'\n"
		       "else\n"
		       "   update-locale LANG='%s'\n"
		       "fi\n\n", p->locale, p->locale);
	if (p->firstboot)
		add(t, "if [ -f \"$BOOT/netflash-firstboot.sh\" ]; then\n"
		       "   bash \"$BOOT/netflash-firstboot.sh\" >\"$BOOT/netflash-firstboot.log\" 2>&1\n"
		       "   rm -f \"$BOOT/netflash-firstboot.sh\"\n"
		       "fi\n\n");
	add(t, "rm -f \"$BOOT/firstrun.sh\"\n"
	       "sed -i 's| systemd.run.*||g' \"$BOOT/cmdline.txt\"\n"
	       "exit 0\n");
}

static void render_user_data(const struct provision *p, const char *mac, struct text *t)
{
	char q[NF_SSHKEY_MAX * 4 + 8];

	add(t, "#cloud-config\n# Written by netflash for %s at enroll time.\n", mac);
	/* hostname: applies on the first boot. Not manage_etc_hosts: true,
	 * which rewrites /etc/hosts from cloud-init's template at every boot;
	 * and once the first boot is done (runcmd, last), preserve_hostname
	 * in the system config stops cloud-init from setting it again, so an
	 * admin's later hostnamectl survives (cloud-init's update_hostname and
	 * set_hostname docs; tests/fixtures/cloudinit-boot.sh runs both boots). */
	if (p->hostname)
		add(t, "hostname: %s\n", p->hostname);
	if (p->timezone)
		add(t, "timezone: %s\n", yq(q, sizeof(q), p->timezone));
	if (p->keymap)
		add(t, "keyboard:\n  layout: %s\n", yq(q, sizeof(q), p->keymap));
	if (p->locale)
		add(t, "locale: %s\n", yq(q, sizeof(q), p->locale));
	if (p->ssh)
		add(t, "ssh_pwauth: %s\n", p->ssh_key ? "false" : "true");
	if (p->user) {
		add(t, "users:\n  - name: %s\n"
		       "    groups: users,adm,dialout,audio,netdev,video,plugdev,cdrom,games,input,gpio,spi,i2c,render,sudo\n"
		       "    shell: /bin/bash\n    lock_passwd: false\n", p->user);
		add(t, "    passwd: %s\n", yq(q, sizeof(q), p->password_hash));
		if (p->ssh_key)
			add(t, "    ssh_authorized_keys:\n      - %s\n", yq(q, sizeof(q), p->ssh_key));
	} else if (p->ssh_key) {
		add(t, "ssh_authorized_keys:\n  - %s\n", yq(q, sizeof(q), p->ssh_key));
	}
	if (p->hostname || p->firstboot)
		add(t, "runcmd:\n");
	if (p->hostname) {
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "sed -i '/^127\\.0\\.1\\.1[[:space:]]/d' /etc/hosts && "
			 "printf '127.0.1.1\\t%%s\\n' '%s' >>/etc/hosts && "
			 "printf '# netflash: the hostname was set on the first boot; keep what the admin sets\\n"
			 "preserve_hostname: true\\n' >/etc/cloud/cloud.cfg.d/99_netflash.cfg", p->hostname);
		add(t, "  - [sh, -c, %s]\n", yq(q, sizeof(q), cmd));
	}
	if (p->firstboot) {
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "bash %s/netflash-firstboot.sh >%s/netflash-firstboot.log 2>&1; "
			 "rm -f %s/netflash-firstboot.sh", p->boot_mount, p->boot_mount, p->boot_mount);
		add(t, "  - [bash, -c, %s]\n", yq(q, sizeof(q), cmd));
	}
}

static void render_network_config(const struct provision *p, struct text *t)
{
	char q[256];

	add(t, "network:\n  version: 2\n  wifis:\n    wlan0:\n      dhcp4: true\n      optional: true\n");
	if (p->wifi_country)
		add(t, "      regulatory-domain: %s\n", p->wifi_country);
	add(t, "      access-points:\n        %s:\n          password: %s\n%s", yq(q, sizeof(q), p->wifi_ssid),
	    p->wifi_psk, p->wifi_hidden ? "          hidden: true\n" : "");
}

/* ---- building the patch --------------------------------------------------- */

struct work {
	char dir[PATH_MAX - 64];
	char part[PATH_MAX];
	char names[512];     /* files written, for the summary */
};

static int put_file(struct work *w, const char *name, const char *data, size_t len, const char *src)
{
	char path[PATH_MAX], dst[128];
	int r;

	snprintf(path, sizeof(path), "%s/f-%s", w->dir, name);
	if (src) {
		snprintf(path, sizeof(path), "%s", src);
	} else if ((r = nf_write_file_atomic(path, data, len, 0600)) < 0) {
		nf_err("cannot write %s: %s", path, strerror(-r));
		return 1;
	}
	snprintf(dst, sizeof(dst), "::/%s", name);
	char *const argv[] = { "mcopy", "-o", "-i", w->part, path, dst, NULL };
	if (master_run(argv, NULL, 0) < 0) {
		nf_err("mcopy could not write %s to the boot partition (is it full? is mtools installed?)", name);
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
		nf_err("the image's boot partition has no cmdline.txt for the firstrun.sh convention "
		       "(try --provision-style cloud-init)");
		return 1;
	}
	n = nf_read_file(path, line, sizeof(line) - sizeof(add_args) - 2);
	if (n < 0) {
		nf_err("the image's cmdline.txt is unreadable or too long");
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

/* The image's boot partition, extracted once per image digest into
 * ROOT/state/cache (mass-flash enrolls many workers with one image). */
static int cached_partition(const struct master *m, const struct nf_manifest *man, char *path, size_t cap,
			    uint64_t *off, uint64_t *len)
{
	char rel[128], hex[65], tmp[PATH_MAX + 8], detail[400], meta[64];
	unsigned long long v[2];
	int r;

	nf_format_hex(man->sha256, 32, hex);
	master_path(m, tmp, sizeof(tmp), "state/cache");
	mkdir(tmp, 0700);
	snprintf(rel, sizeof(rel), "state/cache/boot-%s.part", hex);
	if (master_path(m, path, cap, rel) < 0)
		return -ENAMETOOLONG;
	snprintf(tmp, sizeof(tmp), "%s.where", path);
	if (nf_read_file(tmp, meta, sizeof(meta) - 1) > 0 && sscanf(meta, "%llu %llu", &v[0], &v[1]) == 2 &&
	    access(path, R_OK) == 0) {
		*off = v[0];
		*len = v[1];
		return 0;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((r = master_boot_partition(m, man, tmp, off, len, detail, sizeof(detail))) < 0) {
		unlink(tmp);
		nf_err("cannot provision: %s", detail);
		return r;
	}
	if (rename(tmp, path) < 0) {
		r = -errno;
		nf_err("cannot keep %s: %s", path, strerror(-r));
		unlink(tmp);
		return r;
	}
	snprintf(meta, sizeof(meta), "%llu %llu\n", (unsigned long long)*off, (unsigned long long)*len);
	snprintf(tmp, sizeof(tmp), "%s.where", path);
	return nf_write_file_atomic(tmp, meta, strlen(meta), 0600);
}

struct digests {
	char (*hex)[65];
	size_t n;
};

static int add_digest(const char *path, const struct nf_manifest *man, void *ctx)
{
	struct digests *d = ctx;
	char(*grown)[65];

	if (!man)
		return 0;
	if (!(grown = realloc(d->hex, (d->n + 1) * sizeof(*grown))))
		return -ENOMEM;
	d->hex = grown;
	nf_format_hex(man->sha256, 32, d->hex[d->n++]);
	return 0;
}

int provision_cache_prune(const struct master *m)
{
	char dir[PATH_MAX], path[PATH_MAX + 300];
	struct digests keep = { NULL, 0 };
	struct dirent *de;
	int r, removed = 0;
	DIR *d;

	/* Without a readable catalog nothing can be known unused. */
	if ((r = master_each_manifest(m, add_digest, &keep)) < 0) {
		free(keep.hex);
		return r;
	}
	master_path(m, dir, sizeof(dir), "state/cache");
	if (!(d = opendir(dir))) {
		free(keep.hex);
		return errno == ENOENT ? 0 : -errno;
	}
	while ((de = readdir(d))) {
		size_t i = 0;

		/* boot-<64 hex>.part, and its .where and .tmp */
		if (strncmp(de->d_name, "boot-", 5) != 0 || strlen(de->d_name) < 5 + 64 + 5 ||
		    strncmp(de->d_name + 5 + 64, ".part", 5) != 0)
			continue;
		while (i < keep.n && strncmp(keep.hex[i], de->d_name + 5, 64) != 0)
			i++;
		if (i < keep.n)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) == 0 && strcmp(de->d_name + 5 + 64, ".part") == 0)
			removed++;
	}
	closedir(d);
	free(keep.hex);
	return removed;
}

int provision_prepare(struct master *m, const char *image)
{
	char cache[PATH_MAX];
	struct nf_manifest man;
	uint64_t off, len;

	if (master_read_manifest(m, image, &man) < 0) {
		nf_err("no image '%s' in the catalog (see netflash image ls)", image);
		return 1;
	}
	return cached_partition(m, &man, cache, sizeof(cache), &off, &len) < 0;
}

static int write_files(struct work *w, const struct provision *p, const char *mac, enum provision_style style)
{
	struct text t = { .buf = malloc(TEXT_MAX) };
	int rc = 1;

	if (!t.buf)
		return 1;
	if (style == PROVISION_FIRSTRUN) {
		if (p->user) {
			t.len = 0;
			add(&t, "%s:%s\n", p->user, p->password_hash);
			if (put_file(w, "userconf.txt", t.buf, t.len, NULL))
				goto out;
		}
		if (p->ssh && put_file(w, "ssh", "", 0, NULL))
			goto out;
		t.len = 0;
		render_firstrun(p, mac, &t);
		if (t.over || put_file(w, "firstrun.sh", t.buf, t.len, NULL) || add_firstrun_args(w, p))
			goto out;
	} else {
		t.len = 0;
		if (!p->user_data)
			render_user_data(p, mac, &t);
		if (t.over || ((p->user_data || t.len) && put_file(w, "user-data", t.buf, t.len, p->user_data)))
			goto out;
		t.len = 0;
		if (p->wifi_ssid)
			render_network_config(p, &t);
		if (t.over || ((p->network_config || t.len) &&
			       put_file(w, "network-config", t.buf, t.len, p->network_config)))
			goto out;
	}
	if (p->firstboot && put_file(w, "netflash-firstboot.sh", NULL, 0, p->firstboot))
		goto out;
	rc = 0;
out:
	if (t.over)
		nf_err("the generated provisioning files are larger than %u KiB", TEXT_MAX >> 10);
	free(t.buf);
	return rc;
}

int provision_build(struct master *m, const char *mac, const char *image, const struct provision *p,
		    char *summary, size_t cap)
{
	char cache[PATH_MAX], out[PATH_MAX], dir[PATH_MAX - 128], sz[32];
	struct nf_manifest man;
	struct nf_patch patch;
	struct work w;
	enum provision_style style = p->style;
	uint64_t off, len;
	int r, rc = 1;

	nf_patch_init(&patch);
	memset(&w, 0, sizeof(w));
	if (master_read_manifest(m, image, &man) < 0) {
		nf_err("no image '%s' in the catalog (see netflash image ls)", image);
		return 1;
	}
	if (cached_partition(m, &man, cache, sizeof(cache), &off, &len) < 0)
		return 1;
	if (off < (1u << 20)) {
		nf_err("cannot provision: the boot partition of image '%s' starts inside its first MiB", image);
		return 1;
	}
	if (master_path(m, dir, sizeof(dir), "state/provision") < 0) {
		nf_err("cannot provision: the state path under %s is too long", m->root);
		return 1;
	}
	mkdir(dir, 0700);
	snprintf(w.dir, sizeof(w.dir), "%s/.work-XXXXXX", dir);
	if (!mkdtemp(w.dir)) {
		nf_err("cannot create a work dir in %s: %s", dir, strerror(errno));
		return 1;
	}
	snprintf(w.part, sizeof(w.part), "%s/boot.part", w.dir);
	char *const cp[] = { "cp", "--sparse=always", "--reflink=auto", cache, w.part, NULL };
	if (master_run(cp, NULL, 0) < 0) {
		nf_err("cannot copy the boot partition of '%s' to %s", image, w.dir);
		goto out;
	}
	if (style == PROVISION_AUTO)
		style = has_file(&w, "user-data") || has_file(&w, "meta-data") ? PROVISION_CLOUDINIT : PROVISION_FIRSTRUN;
	if (write_files(&w, p, mac, style))
		goto out;
	r = diff_sectors(cache, w.part, off, len, &patch);
	if (r == -EFBIG)
		nf_err("cannot provision: the settings change more than %u KiB of the boot partition "
		       "(a smaller --firstboot or --user-data?)", NF_PATCH_MAX >> 10);
	else if (r < 0)
		nf_err("cannot compare the boot partition copies in %s: %s", w.dir, strerror(-r));
	if (r < 0)
		goto out;
	memcpy(patch.base_sha256, man.sha256, 32);
	provision_patch_path(m, mac, out, sizeof(out));
	if ((r = nf_patch_save(&patch, out)) < 0) {
		nf_err("cannot write %s: %s", out, strerror(-r));
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
