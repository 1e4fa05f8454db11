/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash dhcp-event: dnsmasq's dhcp-script. Records each Pi that dnsmasq
 * sees (arp-add, leases) with its model, and each TFTP file it sends, in
 * the state database, where mass-flash picks them up. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "cli.h"
#include "master.h"
#include "parse.h"
#include "pimodel.h"
#include "store.h"

static const char usage[] =
"Usage: netflash [--root DIR] dhcp-event ACTION ARGS...\n"
"\n"
"Run by dnsmasq as its dhcp-script (etc/dnsmasq.conf from netflash init sets\n"
"dhcp-script=ROOT/etc/dhcp-event and script-arp); not meant to be run by hand.\n"
"\n"
"  arp-add MAC IP           a host appeared on the LAN (it ARPed for the master,\n"
"                           as a Pi does before its first TFTP request)\n"
"  add|old MAC IP [NAME]    a DHCP lease (when dnsmasq also hands out addresses)\n"
"  tftp SIZE IP PATH        dnsmasq sent PATH (under ROOT/tftp/<mac>/)\n"
"  arp-del, del, init, ...  ignored\n"
"\n"
"Each sighting is stored with the Pi model read from the client GUID (DHCP\n"
"option 97) in dnsmasq's log, ROOT/log/dnsmasq.log. `netflash mass-flash`\n"
"enrolls new Raspberry Pis from these sightings. The database keeps the newest\n"
"10000 sightings and the newest 500 TFTP events of each worker.\n";

static int sighting(struct master *m, const char *kind, const char *mac_s, const char *ip)
{
	char logp[PATH_MAX], q[128];
	struct sighting g = { 0 };
	struct in_addr a;
	struct store *st = NULL;
	struct nf_mac mac;
	uint8_t guid[32];
	int n, r;

	if (nf_mac_parse(mac_s, &mac) < 0) {
		nf_err("dhcp-event %s: invalid MAC %s", kind, nf_quote(q, sizeof(q), mac_s));
		return 1;
	}
	if (inet_pton(AF_INET, ip, &a) != 1) {
		nf_err("dhcp-event %s: invalid IPv4 address %s", kind, nf_quote(q, sizeof(q), ip));
		return 1;
	}
	memcpy(g.mac, mac.s, sizeof(mac.s));
	snprintf(g.ip, sizeof(g.ip), "%s", ip);
	snprintf(g.kind, sizeof(g.kind), "%s", kind);
	master_path(m, logp, sizeof(logp), "log/dnsmasq.log");
	n = pi_guid_from_log(logp, g.mac, guid, sizeof(guid));
	if (n > 0 && pi_guid_model(guid, (size_t)n, g.model, sizeof(g.model)) < 0)
		g.model[0] = '\0';
	if (cli_open_store(m, &st) < 0)
		return 1;
	r = store_sighting_add(st, &g);
	store_close(st);
	if (r < 0) {
		nf_err("dhcp-event: cannot record %s %s", kind, g.mac);
		return 1;
	}
	return 0;
}

/* TFTP events kept per worker: a few boots' worth (a Pi fetches about ten
 * files per boot), and bounded for one stuck in a boot loop. */
#define TFTP_EVENTS_KEEP 500

/* PATH must be ROOT/tftp/<canonical mac>/FILE. */
static int tftp_sent(struct master *m, const char *size, const char *ip, const char *path)
{
	char tftp[PATH_MAX], mac[18], detail[512], q[PATH_MAX + 8];
	struct store *st = NULL;
	const char *rest, *slash;
	uint64_t bytes;
	int r;

	master_path(m, tftp, sizeof(tftp), "tftp/");
	if (nf_parse_u64(size, 0, UINT64_MAX, &bytes) < 0 || strncmp(path, tftp, strlen(tftp)) != 0) {
		nf_err("dhcp-event tftp: %s is not a file under %s", nf_quote(q, sizeof(q), path), tftp);
		return 1;
	}
	rest = path + strlen(tftp);
	slash = strchr(rest, '/');
	/* Files in subdirectories count too (the firmware reads overlays/
	 * *.dtbo); a ".." component never (dnsmasq hands a resolved path). */
	if (!slash || slash - rest != 17 || !slash[1] || strstr(slash, "/../") || strstr(slash, "//") ||
	    (strlen(slash) >= 3 && strcmp(slash + strlen(slash) - 3, "/..") == 0)) {
		nf_err("dhcp-event tftp: %s is not in a worker's dir", nf_quote(q, sizeof(q), path));
		return 1;
	}
	memcpy(mac, rest, 17);
	mac[17] = '\0';
	if (!nf_mac_is_canonical(mac)) {
		nf_err("dhcp-event tftp: %s is not in a worker's dir", nf_quote(q, sizeof(q), path));
		return 1;
	}
	snprintf(detail, sizeof(detail), "sent %s (%llu bytes) to %s", nf_quote(q, 300, slash + 1),
		 (unsigned long long)bytes, ip);
	if (cli_open_store(m, &st) < 0)
		return 1;
	r = store_event(st, mac, NF_EVENT_TFTP, detail);
	if (r == 0 && store_trim_events(st, mac, NF_EVENT_TFTP, TFTP_EVENTS_KEEP) < 0)
		nf_warn("dhcp-event tftp: cannot drop the old tftp events of %s, ignoring", mac);
	store_close(st);
	return r < 0 ? 1 : 0;
}

int cmd_dhcp_event(struct master *m, int argc, char **argv)
{
	const char *act = argc > 1 ? argv[1] : "";

	if (argc == 2 && (strcmp(act, "--help") == 0 || strcmp(act, "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc < 2) {
		cli_usage_hint(argv[0]);
		return 2;
	}
	if (cli_require_init(m))
		return 1;
	if (strcmp(act, "arp-add") == 0 && argc == 4)
		return sighting(m, "arp-add", argv[2], argv[3]);
	if ((strcmp(act, "add") == 0 || strcmp(act, "old") == 0) && (argc == 4 || argc == 5))
		return sighting(m, "lease", argv[2], argv[3]);
	if (strcmp(act, "tftp") == 0 && argc == 5)
		return tftp_sent(m, argv[2], argv[3], argv[4]);
	if (strcmp(act, "arp-add") == 0 || strcmp(act, "add") == 0 || strcmp(act, "old") == 0 ||
	    strcmp(act, "tftp") == 0) {
		nf_err("dhcp-event %s: wrong number of arguments (%d)", act, argc - 2);
		return 2;
	}
	return 0; /* arp-del, del, init, tftp-*: nothing to record */
}
