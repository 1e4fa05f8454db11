/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash boot-files import: Pi firmware, kernels and device trees that the
 * per-MAC TFTP dirs are made from, plus the config that boots our initramfs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "configtxt.h"
#include "fileutil.h"
#include "log.h"
#include "manifest.h"
#include "cli.h"
#include "master.h"
#include "pimodel.h"
#include "bootpart.h"
#include "initramfs.h"

#define CONFIG_MAX 65536

static const char bootfiles_usage[] =
"Usage: netflash [--root DIR] boot-files import (--from-boot DIR | --from-image NAME)\n"
"                                  [--model pi3|pi4|pi5] [--initramfs FILE]\n"
"       netflash [--root DIR] boot-files ls\n"
"\n"
"Collect what a Pi netboots from into ROOT/boot, from a 64-bit Raspberry Pi OS\n"
"/boot (or /boot/firmware) directory, or straight from the FAT boot partition\n"
"of a catalog image (read with mtools; nothing is mounted). Then:\n"
"  config.txt   served compact, as the network-boot firmware reads only its\n"
"               first 4096 bytes: first arm_64bit=1, auto_initramfs=0,\n"
"               enable_uart=1 and 'initramfs netflash.cpio.gz followkernel',\n"
"               then the image's settings and [section] filters in order,\n"
"               without comments and blank lines; lines that redirect the\n"
"               firmware (auto_initramfs, initramfs, ramfsfile, kernel=,\n"
"               os_prefix=, cmdline=, include) are left out and named. Over\n"
"               4096 bytes even so: refused\n"
"  Pi OS's initramfs* files and 32-bit kernels are left out\n"
"  cmdline.txt  becomes the template for each worker's own: console settings\n"
"               kept, root=/init=/quiet/splash dropped, ip=dhcp added\n"
"The originals are kept as .config.txt.orig and .cmdline.txt.orig. Models:\n"
"Pi 3 needs bootcode.bin, start.elf, fixup.dat; Pi 4 start4.elf, fixup4.dat;\n"
"Pi 5 boots kernel_2712.img from its EEPROM. Missing files are named.\n"
"\n"
"  --model FAMILY     import a set for one board family only, into\n"
"                     ROOT/boot-FAMILY: a worker whose DHCP client GUID names\n"
"                     a model of that family (Pi 4/5 send one; a Pi 400 or\n"
"                     CM4 is pi4, a Pi 500 or CM5 pi5), or that is enrolled\n"
"                     with --model FAMILY, boots from it; every other worker\n"
"                     from ROOT/boot. The set must hold that family's files.\n"
"  --initramfs FILE   the flasher's initramfs to install as netflash.cpio.gz\n"
"                     (default: keep the set's own, else the one in ROOT/boot)\n"
"\n"
"ls shows each set and the models it can boot. To drop a family's set,\n"
"remove ROOT/boot-FAMILY: its workers then use ROOT/boot.\n"
"Workers enrolled earlier keep their files; re-enroll to give them new ones.\n";

static int extract_from_image(struct master *m, const char *name, const char *dest, const char *work)
{
	char part[PATH_MAX], detail[400];
	struct nf_manifest man;
	uint64_t off, len;
	int r;

	if (master_read_manifest(m, name, &man) < 0) {
		nf_err("no image '%s' in the catalog (see netflash image ls)", name);
		return 1;
	}
	snprintf(part, sizeof(part), "%s/boot.part", work);
	if (master_boot_partition(m, &man, part, &off, &len, detail, sizeof(detail)) < 0) {
		nf_err("%s", detail);
		unlink(part);
		return 1;
	}
	char *const argv[] = { "mcopy", "-s", "-p", "-n", "-Q", "-i", part, "::/*", (char *)dest, NULL };
	r = master_run(argv, NULL, 0);
	unlink(part);
	if (r < 0) {
		nf_err("mcopy could not read the FAT boot partition of '%s' (is mtools installed?)", name);
		return 1;
	}
	return 0;
}

static int copy_tree(const char *src, const char *dest)
{
	char arg[PATH_MAX + 4];

	/* cp -rL: a /boot may hold symlinks (firmware -> boot/firmware); the
	 * tree we keep must hold regular files only. */
	snprintf(arg, sizeof(arg), "%s/.", src);
	char *const argv[] = { "cp", "-rL", "--no-preserve=ownership,mode", arg, (char *)dest, NULL };
	return master_run(argv, NULL, 0);
}

/* Drops the root-filesystem arguments of a Pi OS cmdline.txt and adds ip=dhcp. */
static void cmdline_template(const char *orig, char *out, size_t cap)
{
	static const char *const drop[] = {
		"root=", "rootfstype=", "rootwait", "init=", "quiet", "splash", "plymouth.", "fsck.",
		"resize", "netflash.", "ip=", "cfg80211.", "loglevel=",
	};
	char copy[CONFIG_MAX], *tok, *save = NULL;
	size_t o = 0;

	snprintf(copy, sizeof(copy), "%s", orig);
	out[0] = '\0';
	for (tok = strtok_r(copy, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
		int keep = 1;

		for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
			keep &= strncmp(tok, drop[i], strlen(drop[i])) != 0;
		if (keep && o + strlen(tok) + 2 < cap)
			o += (size_t)snprintf(out + o, cap - o, "%s ", tok);
	}
	snprintf(out + o, cap - o, "ip=dhcp\n");
}

/* config.txt settings that decide what the firmware loads, and why the
 * served config cannot keep them (Raspberry Pi documentation, "config.txt":
 * boot options). Matched on the key before '=' or the first blank. */
static const struct { const char *key, *why; } redirects[] = {
	{ "auto_initramfs", "the firmware would pick Pi OS's own initramfs (initramfs8, initramfs_2712)" },
	{ "initramfs", "only the flasher's initramfs may load" },
	{ "ramfsfile", "only the flasher's initramfs may load" },
	{ "ramfsaddr", "only the flasher's initramfs may load" },
	{ "kernel", "the flasher needs the 64-bit kernel8.img / kernel_2712.img" },
	{ "arm_64bit", "the flasher is aarch64: the served config sets arm_64bit=1" },
	{ "os_prefix", "it moves every file the firmware reads" },
	{ "cmdline", "each worker's cmdline.txt carries its token" },
	{ "include", "an included file could carry any of these" },
};

/* Why a line with this key is not served (NULL: it is). */
static const char *redirect_why(const char *key)
{
	for (size_t i = 0; i < sizeof(redirects) / sizeof(redirects[0]); i++)
		if (strcmp(key, redirects[i].key) == 0)
			return redirects[i].why;
	return NULL;
}

static void said_disabled(unsigned no, const char *line, const char *why, void *ctx)
{
	(void)ctx;
	if (strcmp(line, "arm_64bit=1") != 0)
		printf("config.txt line %u: '%.80s' disabled: %s\n", no, line, why);
}

/* What netflash serves first: the flasher is aarch64, boots only its own
 * initramfs, and has its console on the UART too. First, in the [all]
 * context the file starts in, so that the firmware reads them however
 * long the rest is. */
static const char served_head[] = "arm_64bit=1\nauto_initramfs=0\nenable_uart=1\n"
				  "initramfs netflash.cpio.gz followkernel\n";

/* The served config.txt: our lines, then the imported one made compact
 * (core/configtxt.h) with every line that redirects the firmware left out
 * (said on stdout, once per line). Logs and returns -EMSGSIZE when even
 * that is over the 4096 bytes the network-boot firmware reads. */
static int served_config(const char *orig, char *out, size_t cap)
{
	long n = nf_config_compact(orig, served_head, redirect_why, said_disabled, NULL, out, cap);

	if (n < 0 || n > NF_CONFIG_TXT_NETBOOT_MAX) {
		nf_err("config.txt would be served as %ld bytes even without comments and blank lines; the Pi's "
		       "network-boot firmware reads only its first %d (raspberrypi/firmware#1575): shorten the "
		       "image's config.txt (its settings, not its comments)", n < 0 ? (long)cap : n,
		       NF_CONFIG_TXT_NETBOOT_MAX);
		return -EMSGSIZE;
	}
	return 0;
}

/* Pi OS's own initramfs files and 32-bit kernels: never loaded by the
 * served config, so never served (nothing ambiguous in a TFTP dir). */
static void drop_os_boot_files(const char *dir)
{
	static const char *const names[] = {
		"initramfs", "initramfs7", "initramfs7l", "initramfs8", "initramfs_2712",
		"kernel.img", "kernel7.img", "kernel7l.img",
	};
	char path[PATH_MAX + 64];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (unlink(path) == 0)
			printf("left out %s: the served config boots only the 64-bit kernel and the flasher's initramfs\n",
			       names[i]);
	}
}

static int rewrite_configs(const char *dir)
{
	char path[PATH_MAX], orig[CONFIG_MAX + 1], buf[2 * CONFIG_MAX + 512];
	ssize_t n;
	int r;

	snprintf(path, sizeof(path), "%s/config.txt", dir);
	n = nf_read_file(path, orig, CONFIG_MAX);
	if (n < 0)
		orig[0] = '\0';
	if ((r = served_config(orig, buf, sizeof(buf))) < 0)
		return r;
	if ((r = nf_write_file_atomic(path, buf, strlen(buf), 0644)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/.config.txt.orig", dir);
	nf_write_file_atomic(path, orig, strlen(orig), 0644);
	drop_os_boot_files(dir);

	snprintf(path, sizeof(path), "%s/cmdline.txt", dir);
	n = nf_read_file(path, orig, CONFIG_MAX);
	if (n < 0)
		snprintf(orig, sizeof(orig), "console=serial0,115200 console=tty1");
	cmdline_template(orig, buf, sizeof(buf));
	if ((r = nf_write_file_atomic(path, buf, strlen(buf), 0644)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/.cmdline.txt.orig", dir);
	return nf_write_file_atomic(path, orig, strlen(orig), 0644);
}

static int has(const char *dir, const char *name)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, R_OK) == 0;
}

/* Names which models can boot; fails when none can, or when family (if
 * not NULL) cannot. */
static int report_models(const char *dir, const char *family)
{
	static const char *const fams[] = { "pi3", "pi4", "pi5" };
	static const char *const names[] = { "Pi 3", "Pi 4", "Pi 5" };
	char missing[3][200], line[800];
	int n[3], ok = 0;
	size_t o = 0;
	/* The flasher is aarch64: only a 64-bit kernel counts (kernel8.img;
	 * a Pi 5's EEPROM loads kernel_2712.img). */
	int only32 = !has(dir, "kernel8.img") && !has(dir, "kernel_2712.img") &&
		     (has(dir, "kernel7.img") || has(dir, "kernel7l.img") || has(dir, "kernel.img"));

	if (only32) {
		nf_err("these are 32-bit Raspberry Pi OS boot files (kernel7*.img, no kernel8.img): the flasher is "
		       "aarch64; import the boot files of 64-bit Raspberry Pi OS");
		return 1;
	}
	for (int i = 0; i < 3; i++) {
		n[i] = pi_boot_set_missing(dir, fams[i], missing[i], sizeof(missing[i]));
		ok += n[i] == 0;
		o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s %s%s%s", i ? ", " : "", names[i],
				      n[i] ? "no (missing " : "yes", n[i] ? missing[i] : "", n[i] ? ")" : "");
	}
	printf("boot files for: %s\n", line);
	for (int i = 0; family && i < 3; i++)
		if (strcmp(family, fams[i]) == 0 && n[i]) {
			nf_err("these boot files cannot boot a %s: missing %s", names[i], missing[i]);
			return 1;
		}
	if (!ok) {
		nf_err("these boot files boot no Raspberry Pi: missing %s (Pi 3), %s (Pi 4), %s (Pi 5)", missing[0],
		       missing[1], missing[2]);
		return 1;
	}
	return 0;
}

static int install_initramfs(const char *newdir, const char *olddir, const char *defdir, const char *file)
{
	char dst[PATH_MAX + 32], src[PATH_MAX + 32];

	snprintf(dst, sizeof(dst), "%s/netflash.cpio.gz", newdir);
	if (file)
		snprintf(src, sizeof(src), "%s", file);
	else
		snprintf(src, sizeof(src), "%s/netflash.cpio.gz", olddir);
	if (!file && access(src, R_OK) != 0)
		snprintf(src, sizeof(src), "%s/netflash.cpio.gz", defdir);
	if (!file && access(src, R_OK) != 0) {
		/* The one installed with netflash: this build's prefix, the Debian
		 * package's /usr (scripts/package-master.sh), or NETFLASH_DATADIR
		 * (for tests of an unpacked package). */
		const char *dirs[] = { getenv("NETFLASH_DATADIR"), NETFLASH_DATADIR, "/usr/share/netflash" };

		for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
			if (!dirs[i] || !dirs[i][0])
				continue;
			snprintf(src, sizeof(src), "%s/netflash-arm64.cpio.gz", dirs[i]);
			if (access(src, R_OK) == 0)
				break;
		}
		if (access(src, R_OK) == 0) {
			char why[300];

			if (initramfs_check(src, why, sizeof(why)) < 0) {
				nf_err("the installed flasher initramfs '%s' is unusable: %s", src, why);
				return 1;
			}
			printf("flasher initramfs: %s\n", src);
		}
	}
	if (access(src, R_OK) != 0) {
		if (file) {
			nf_err("cannot read --initramfs '%s': %s", file, strerror(errno));
			return 1;
		}
		nf_warn("no netflash.cpio.gz yet: workers will not find the flasher until one is installed "
			"(boot-files import --initramfs FILE), ignoring");
		return 0;
	}
	if (file) {
		char why[300];

		if (initramfs_check(file, why, sizeof(why)) < 0) {
			nf_err("refusing --initramfs '%s': %s", file, why);
			return 1;
		}
	}
	char *const argv[] = { "cp", "--no-preserve=ownership,mode", src, dst, NULL };
	return master_run(argv, NULL, 0) < 0;
}

static int import(struct master *m, const char *from_boot, const char *from_image, const char *family,
		  const char *initramfs)
{
	char boot[PATH_MAX], defboot[PATH_MAX], set[16], work[1200], newdir[1300], olddir[1300];
	int rc = 1;

	snprintf(set, sizeof(set), "boot%s%s", family ? "-" : "", family ? family : "");
	master_path(m, boot, sizeof(boot), set);
	master_path(m, defboot, sizeof(defboot), "boot");
	master_path(m, work, sizeof(work), ".bootfiles-XXXXXX");
	if (!mkdtemp(work)) {
		nf_err("cannot create a work dir under %s: %s", m->root, strerror(errno));
		return 1;
	}
	snprintf(newdir, sizeof(newdir), "%s/new", work);
	snprintf(olddir, sizeof(olddir), "%s/old", work);
	mkdir(newdir, 0755);
	chmod(newdir, 0755);
	if (from_boot) {
		struct stat fb;

		if (stat(from_boot, &fb) < 0 || !S_ISDIR(fb.st_mode)) {
			nf_err("cannot import boot files from '%s': %s", from_boot,
			       stat(from_boot, &fb) < 0 ? strerror(errno) : "not a directory");
			goto out;
		}
		if (copy_tree(from_boot, newdir) < 0) {
			nf_err("cannot copy boot files from '%s'", from_boot);
			goto out;
		}
	} else if (extract_from_image(m, from_image, newdir, work)) {
		goto out;
	}
	if (report_models(newdir, family) || rewrite_configs(newdir) < 0 ||
	    install_initramfs(newdir, boot, defboot, initramfs))
		goto out;
	/* Swap the new tree in with one rename; enrolled dirs hold hard links
	 * and keep the files they were made with. */
	if (renameat2(AT_FDCWD, newdir, AT_FDCWD, boot, RENAME_EXCHANGE) < 0 && rename(newdir, boot) < 0) {
		nf_err("cannot install the boot files in %s: %s", boot, strerror(errno));
		goto out;
	}
	chmod(boot, 0755);
	printf("imported boot files into %s from %s '%s'\n", boot, from_boot ? "directory" : "image",
	       from_boot ? from_boot : from_image);
	rc = 0;
out:
	{
		char *const argv[] = { "rm", "-rf", "--one-file-system", work, NULL };
		master_run(argv, NULL, 0);
	}
	return rc;
}

/* boot-files ls: each set and what it boots. */
static int list_sets(struct master *m)
{
	static const char *const sets[] = { "boot", "boot-pi3", "boot-pi4", "boot-pi5" };
	char dir[PATH_MAX];
	int any = 0;

	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		master_path(m, dir, sizeof(dir), sets[i]);
		if (!has(dir, "config.txt"))
			continue;
		any = 1;
		printf("%s/%s (%s): ", m->root, sets[i], i == 0 ? "every worker without its own set" : sets[i] + 5);
		fflush(stdout);
		report_models(dir, NULL);
		if (!has(dir, "netflash.cpio.gz"))
			printf("  (no netflash.cpio.gz: 'boot-files import --initramfs FILE')\n");
	}
	if (!any)
		printf("no boot files imported yet (see netflash boot-files --help)\n");
	return 0;
}

int cmd_boot_files(struct master *m, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from-boot", required_argument, NULL, 'b' }, { "from-image", required_argument, NULL, 'i' },
		{ "initramfs", required_argument, NULL, 'r' }, { "model", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *from_boot = NULL, *from_image = NULL, *initramfs = NULL, *family = NULL;
	int opt, r;

	if (argc == 2 && strcmp(argv[1], "ls") == 0)
		return cli_require_init(m) ? 1 : list_sets(m);
	if (argc < 2 || strcmp(argv[1], "import") != 0) {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
			fputs(bootfiles_usage, stdout);
			return 0;
		}
		cli_usage_hint(argv[0]);
		return 2;
	}
	optind = 2;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'b': from_boot = optarg; break;
		case 'i': from_image = optarg; break;
		case 'r': initramfs = optarg; break;
		case 'm':
			if (strcmp(optarg, "pi3") != 0 && strcmp(optarg, "pi4") != 0 && strcmp(optarg, "pi5") != 0) {
				nf_err("invalid --model '%.40s': expected pi3, pi4 or pi5", optarg);
				return 2;
			}
			family = optarg;
			break;
		case 'h': fputs(bootfiles_usage, stdout); return 0;
		default: return cli_bad_option(argv, opts);
		}
	}
	if (optind != argc || !from_boot == !from_image) {
		nf_err("boot-files import needs exactly one of --from-boot DIR or --from-image NAME");
		return 2;
	}
	if (cli_require_init(m) || cli_lock(m) < 0)
		return 1;
	r = import(m, from_boot, from_image, family, initramfs);
	master_unlock(m);
	return r;
}
