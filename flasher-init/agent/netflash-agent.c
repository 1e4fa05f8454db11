/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash-agent: the worker-side half of `netflash reimage`, run on the
 * worker's installed OS (by the master over ssh, or by hand). It checks
 * with netflashd that the worker's enrollment is current, makes the card
 * non-bootable reversibly (bootswitch.c) and reboots, so the Pi netboots
 * into the flasher. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootswitch.h"
#include "client.h"
#include "fileutil.h"
#include "log.h"
#include "parse.h"

static const char usage[] =
"Usage: netflash-agent reimage --master IP:PORT --token-file FILE|- [--mac MAC] [--boot DIR]\n"
"                      [--keep-boot-files] [--no-reboot]\n"
"       netflash-agent restore [--boot DIR]\n"
"       netflash-agent status [--boot DIR]\n"
"       netflash-agent mac [--mac MAC]\n"
"\n"
"The worker side of 'netflash reimage', run as root on the worker's own OS.\n"
"\n"
"reimage  asks netflashd at --master whether this worker (its MAC, with the\n"
"         --token of its enrollment) is enrolled; only then moves the Pi\n"
"         firmware and kernels (bootcode.bin, start*.elf, kernel*.img: a Pi 5\n"
"         boots its kernel without start*.elf) on the mounted boot partition\n"
"         into netflash-disabled/, syncs and reboots. With no bootable\n"
"         firmware on its card the Pi netboots into the flasher, which writes\n"
"         the new image; if the flasher gives up before writing anything, it\n"
"         moves the firmware back and the Pi boots its old system again.\n"
"restore  moves the firmware back (the card boots again).\n"
"status   says whether the card is bootable.\n"
"mac      prints the MAC the worker netboots with.\n"
"\n"
"  --master IP:PORT    netflashd, as 'netflash reimage' passes it\n"
"  --token-file FILE   a file holding this worker's enrollment token (one\n"
"                      line); - reads it from stdin ('netflash reimage' sends\n"
"                      it so)\n"
"  --token TOKEN       the same on the command line, where every local user\n"
"                      sees it (ps); kept for scripts, with a warning\n"
"  --mac MAC           this worker's MAC (default: eth0's, else the first\n"
"                      Ethernet interface's)\n"
"  --boot DIR          the mounted FAT boot partition (default /boot/firmware,\n"
"                      else /boot); it must be a mount point\n"
"  --keep-boot-files   only check and reboot: for a Pi 4/5 whose BOOT_ORDER\n"
"                      tries the network before the SD card\n"
"  --no-reboot         do not reboot (reboot yourself when ready)\n"
"\n"
"Exit status: 0 done; 1 refused or failed (the card is left as it was);\n"
"2 usage error.\n";

struct agent {
	const char *cmd, *master, *token, *token_file, *mac_arg, *boot;
	char token_buf[NF_PROTO_VALUE_MAX + 2];
	int keep, no_reboot;
	char mac[18];
	char boot_dir[PATH_MAX];
};

static int is_mountpoint(const char *dir)
{
	char parent[PATH_MAX + 4];
	struct stat a, b;

	snprintf(parent, sizeof(parent), "%s/..", dir);
	return stat(dir, &a) == 0 && stat(parent, &b) == 0 && (a.st_dev != b.st_dev || a.st_ino == b.st_ino);
}

/* --boot, or the first of /boot/firmware, /boot that is a mount point. */
static int find_boot(struct agent *a)
{
	static const char *const dirs[] = { "/boot/firmware", "/boot" };

	if (a->boot) {
		snprintf(a->boot_dir, sizeof(a->boot_dir), "%s", a->boot);
		if (!is_mountpoint(a->boot_dir)) {
			nf_err("'%s' is not a mount point: the card's boot partition is not mounted there", a->boot_dir);
			return 1;
		}
		return 0;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (is_mountpoint(dirs[i])) {
			snprintf(a->boot_dir, sizeof(a->boot_dir), "%s", dirs[i]);
			return 0;
		}
	}
	nf_err("no boot partition mounted at /boot/firmware or /boot (name it with --boot DIR)");
	return 1;
}

/* --mac, else eth0's address, else the first Ethernet interface's. */
static int find_mac(struct agent *a)
{
	char path[PATH_MAX], buf[64];
	struct nf_mac m;
	struct dirent *de;
	DIR *d;

	if (a->mac_arg) {
		if (nf_mac_parse(a->mac_arg, &m) < 0) {
			nf_err("invalid --mac '%s': expected six hex bytes like b8:27:eb:d3:85:78", a->mac_arg);
			return 2;
		}
		memcpy(a->mac, m.s, sizeof(m.s));
		return 0;
	}
	if (nf_read_file("/sys/class/net/eth0/address", buf, sizeof(buf) - 1) > 0 && nf_mac_parse(buf, &m) == 0) {
		memcpy(a->mac, m.s, sizeof(m.s));
		return 0;
	}
	if ((d = opendir("/sys/class/net"))) {
		while ((de = readdir(d))) {
			snprintf(path, sizeof(path), "/sys/class/net/%s/type", de->d_name);
			if (de->d_name[0] == '.' || nf_read_file(path, buf, sizeof(buf) - 1) < 0 || atoi(buf) != 1 ||
			    strcmp(de->d_name, "lo") == 0)
				continue;
			snprintf(path, sizeof(path), "/sys/class/net/%s/address", de->d_name);
			if (nf_read_file(path, buf, sizeof(buf) - 1) > 0 && nf_mac_parse(buf, &m) == 0) {
				closedir(d);
				memcpy(a->mac, m.s, sizeof(m.s));
				return 0;
			}
		}
		closedir(d);
	}
	nf_err("cannot find this worker's Ethernet MAC (name it with --mac)");
	return 1;
}

static int do_reboot(void)
{
	char *const argv[] = { "systemctl", "reboot", NULL };

	sync();
	nf_info("rebooting");
	fflush(NULL);
	execvp(argv[0], argv);
	reboot(RB_AUTOBOOT); /* no systemd: the kernel call */
	nf_err("cannot reboot: %s", strerror(errno));
	return 1;
}

/* --token-file: one line from the file, or from stdin for "-". Logs;
 * returns 0 or -1. */
static int read_token(struct agent *a)
{
	FILE *f = strcmp(a->token_file, "-") == 0 ? stdin : fopen(a->token_file, "re");
	size_t n;

	if (!f) {
		nf_err("cannot read --token-file '%s': %s", a->token_file, strerror(errno));
		return -1;
	}
	if (!fgets(a->token_buf, sizeof(a->token_buf), f))
		a->token_buf[0] = '\0';
	if (f != stdin)
		fclose(f);
	n = strcspn(a->token_buf, "\r\n");
	if (n == 0 || n == sizeof(a->token_buf) - 1) {
		nf_err("--token-file '%s' holds no token line", a->token_file);
		return -1;
	}
	a->token_buf[n] = '\0';
	a->token = a->token_buf;
	return 0;
}

static int agent_reimage(struct agent *a)
{
	struct nf_client c;
	char image[NF_PROTO_VALUE_MAX + 1], detail[600], why[200];
	int r;

	if (a->token_file && read_token(a) < 0)
		return 2;
	if (!a->master || !a->token) {
		nf_err("reimage needs --master IP:PORT and --token-file FILE (see --help)");
		return 2;
	}
	if ((r = find_mac(a)) || (!a->keep && (r = find_boot(a))))
		return r;
	if (nf_client_init(&c, a->master, a->mac, a->token) < 0) {
		nf_err("invalid --master '%s': expected IPv4:PORT", a->master);
		return 2;
	}
	r = nf_client_query(&c, image, sizeof(image));
	if (r == -ENOENT) {
		nf_err("the master has no job for %s (%s); the card is left as it was", a->mac, c.detail);
		return 1;
	}
	if (r == -EACCES) {
		nf_err("the master refused %s (not enrolled, or not with this token); the card is left as it was", a->mac);
		return 1;
	}
	if (r == -EPERM) {
		nf_err("the master at %s did not prove it holds the token given for %s (a wrong token, or not "
		       "netflashd), so the agent refused it; the card is left as it was", a->master, a->mac);
		return 1;
	}
	if (r < 0) {
		nf_err("cannot reach the master at %s: %s; the card is left as it was", a->master,
		       c.detail[0] ? c.detail : nf_strerror(r));
		return 1;
	}
	nf_info("%s is enrolled for image '%s' at %s", a->mac, image, a->master);
	if (!a->keep) {
		snprintf(why, sizeof(why), "netflash reimage to image '%.100s'", image);
		r = nf_boot_disable(a->boot_dir, why, detail, sizeof(detail));
		if (r < 0) {
			nf_err("%s", detail);
			return 1;
		}
		nf_info("moved %d firmware file(s) on %s into %s/: the card no longer boots", r, a->boot_dir,
			NF_BOOT_DISABLED_DIR);
	}
	if (a->no_reboot) {
		nf_info("not rebooting (--no-reboot): reboot to netboot into the flasher");
		return 0;
	}
	return do_reboot();
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "master", required_argument, NULL, 'm' }, { "token", required_argument, NULL, 't' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "mac", required_argument, NULL, 'a' }, { "boot", required_argument, NULL, 'b' },
		{ "keep-boot-files", no_argument, NULL, 'k' }, { "no-reboot", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	struct agent a = { 0 };
	char detail[600];
	int opt, r;

	nf_log_setup("netflash-agent", NF_LOG_INFO);
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm': a.master = optarg; break;
		case 't':
			a.token = optarg;
			nf_warn("--token shows the token to every local user (ps); use --token-file - and pipe it in");
			break;
		case 'T': a.token_file = optarg; break;
		case 'a': a.mac_arg = optarg; break;
		case 'b': a.boot = optarg; break;
		case 'k': a.keep = 1; break;
		case 'n': a.no_reboot = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind + 1 != argc) {
		nf_err("expected one command: reimage, restore, status or mac (see --help)");
		return 2;
	}
	a.cmd = argv[optind];
	if (strcmp(a.cmd, "reimage") == 0)
		return agent_reimage(&a);
	if (strcmp(a.cmd, "mac") == 0) {
		if ((r = find_mac(&a)))
			return r;
		printf("%s\n", a.mac);
		return 0;
	}
	if (strcmp(a.cmd, "restore") == 0 || strcmp(a.cmd, "status") == 0) {
		if (find_boot(&a))
			return 1;
		if (a.cmd[0] == 's') {
			r = nf_boot_disabled_count(a.boot_dir);
			if (r < 0) {
				nf_err("cannot read '%s': %s", a.boot_dir, strerror(-r));
				return 1;
			}
			if (r)
				printf("%s: not bootable (%d firmware file(s) in %s/)\n", a.boot_dir, r, NF_BOOT_DISABLED_DIR);
			else
				printf("%s: bootable\n", a.boot_dir);
			return 0;
		}
		r = nf_boot_restore(a.boot_dir, detail, sizeof(detail));
		if (r < 0) {
			nf_err("%s", detail);
			return 1;
		}
		nf_info("moved %d firmware file(s) back on %s: the card boots again", r, a.boot_dir);
		return 0;
	}
	nf_err("unknown command '%s': expected reimage, restore, status or mac", a.cmd);
	return 2;
}
