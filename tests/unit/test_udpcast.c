/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Table: udpcast:// URLs as the master writes them into a JOB and as the
 * worker must refuse them (lib/udpcast.h). */
#include <string.h>

#include "check.h"
#include "udpcast.h"

int main(void)
{
	static const struct {
		const char *url;
		int ok;
		const char *host, *ifname;
		unsigned portbase, start;
	} t[] = {
		{ "udpcast://10.0.0.2:9000", 1, "10.0.0.2", "", 9000, 0 },
		{ "udpcast://10.0.0.2:9002?start=180", 1, "10.0.0.2", "", 9002, 180 },
		{ "udpcast://192.168.1.1:1024?if=eth0&start=5", 1, "192.168.1.1", "eth0", 1024, 5 },
		{ "udpcast://192.168.1.1:65534?start=86400&if=enp1s0", 1, "192.168.1.1", "enp1s0", 65534, 86400 },
		{ "udpcast://10.0.0.2:9001", 0, NULL, NULL, 0, 0 },          /* odd: udpcast takes two ports */
		{ "udpcast://10.0.0.2:1022", 0, NULL, NULL, 0, 0 },          /* below 1024 */
		{ "udpcast://10.0.0.2:65536", 0, NULL, NULL, 0, 0 },
		{ "udpcast://10.0.0.2", 0, NULL, NULL, 0, 0 },
		{ "udpcast://10.0.0.2:", 0, NULL, NULL, 0, 0 },
		{ "udpcast://master:9000", 0, NULL, NULL, 0, 0 },            /* names are not looked up */
		{ "udpcast://10.0.0.2:9000?", 0, NULL, NULL, 0, 0 },
		{ "udpcast://10.0.0.2:9000?if=", 0, NULL, NULL, 0, 0 },
		{ "udpcast://10.0.0.2:9000?if=eth0;reboot", 0, NULL, NULL, 0, 0 },
		{ "udpcast://10.0.0.2:9000?if=averyveryverylongname", 0, NULL, NULL, 0, 0 },
		{ "udpcast://10.0.0.2:9000?start=0", 0, NULL, NULL, 0, 0 },
		{ "udpcast://10.0.0.2:9000?start=86401", 0, NULL, NULL, 0, 0 },
		{ "udpcast://10.0.0.2:9000?start", 0, NULL, NULL, 0, 0 },
		{ "udpcast://10.0.0.2:9000?start&if=x=1", 0, NULL, NULL, 0, 0 },
		{ "udpcast://10.0.0.2:9000?rate=1", 0, NULL, NULL, 0, 0 },
		{ "nfs://10.0.0.2/export/x", 0, NULL, NULL, 0, 0 },
		{ "udpcast://10.0.0.2:9000a", 0, NULL, NULL, 0, 0 },
	};
	struct nf_udpcast_url u;
	char why[160];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r = nf_udpcast_parse(t[i].url, &u, why, sizeof(why));

		CHECK((r == 0) == t[i].ok, "%s: %d (%s)", t[i].url, r, r ? why : "taken");
		if (r == 0 && t[i].ok)
			CHECK(strcmp(u.host, t[i].host) == 0 && strcmp(u.ifname, t[i].ifname) == 0 &&
				      u.portbase == t[i].portbase && u.start_s == t[i].start,
			      "%s: host %s if '%s' port base %u start %u", t[i].url, u.host, u.ifname, u.portbase, u.start_s);
		if (r < 0)
			CHECK(why[0] != '\0', "%s: no reason", t[i].url);
	}
	return CHECK_DONE();
}
