/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The first-boot files: firstrun.sh, cloud-init user-data and
 * network-config, rendered from the checked settings. */
#include "provision_int.h"

#include <stdarg.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileutil.h"
#include "log.h"
#include "parse.h"



static void __attribute__((format(printf, 2, 3))) add(struct provision_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->over)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, PROVISION_TEXT_MAX - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= PROVISION_TEXT_MAX - t->len)
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

/* firstrun.sh's Wi-Fi part: imager_custom where the image has it, else a
 * NetworkManager keyfile (Pi OS since Bookworm) or wpa_supplicant.conf,
 * the regulatory domain and rfkill. */
static void firstrun_wifi(const struct provision *p, struct provision_text *t)
{
	char q[NF_SSHKEY_MAX * 4 + 8];
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

void provision_render_firstrun(const struct provision *p, const char *mac, struct provision_text *t)
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
	if (p->wifi_ssid)
		firstrun_wifi(p, t);
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

void provision_render_user_data(const struct provision *p, const char *mac, struct provision_text *t)
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

void provision_render_userconf(const struct provision *p, struct provision_text *t)
{
	add(t, "%s:%s\n", p->user, p->password_hash);
}
