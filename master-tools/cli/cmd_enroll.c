/* netflash enroll: make a worker netboot into the flasher (enroll.c does it). */
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

int cmd_enroll(struct master *m, int argc, char **argv)
{
	static const struct option own[] = {
		{ "image", required_argument, NULL, 'i' }, { "hostname", required_argument, NULL, 'H' },
		{ "ssh-key", required_argument, NULL, 'k' }, { "force", no_argument, NULL, 'f' },
		{ "model", required_argument, NULL, 'm' }, { "nfsroot", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
	};
	struct option opts[64];
	struct enrollment e;
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
		return master_bad_mac(argv[optind]);
	nf_format_mac(mac, e.mac);
	if (master_station_mac(e.mac) < 0)
		return 2;
	if (nfsroot)
		return master_enroll_diskless(m, &e, &prov, nfsroot, host || key, force);
	if ((r = master_enroll_settings(m, &e, &prov, image, host, key)))
		return r;
	return master_enroll(m, &e, &prov, force, 0);
}
