#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The master's generated dnsmasq config against real dnsmasq on a LAN of
# network namespaces: a router with an ordinary DHCP server, the master
# (proxy-DHCP + TFTP from `netflash init`), and workers with chosen MACs
# fetching what a Pi fetches, with a real TFTP client (curl).
source "$(dirname "$0")/../lib.sh"

NF="$NETFLASH_BUILD/master-tools/netflash"
img=$(test_image 24)
R=$T/root
W1=b8:27:eb:00:00:01 W2=B8-27-EB-00-00-02 W3=dc:a6:32:00:00:03

netns_lan
netns_host router 02:00:00:00:00:01 10.77.0.1
netns_host master 02:00:00:00:00:02 10.77.0.2
netns_host w1 "$W1" 10.77.0.11
netns_host w2 "$(echo "$W2" | tr 'A-Z-' 'a-z:')" 10.77.0.12
netns_host w3 "$W3" 10.77.0.13
netns_host pxe b8:27:eb:00:00:09 ""
netns_host laptop 02:00:00:00:00:0a ""

# The ordinary DHCP server of the LAN (the router).
nsx router dnsmasq --conf-file=/dev/null --keep-in-foreground --user=root --port=0 \
	--pid-file="$T/router.pid" --log-facility="$T/router.log" --interface=eth0 --bind-interfaces \
	--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h --no-ping --dhcp-leasefile="$T/router.leases" &
register_pid $!

# The master: state tree, catalog, boot files from the image, dnsmasq from its config.
nsx master "$NF" --root "$R" init --interface eth0 --subnet 10.77.0.0/24 --server-ip 10.77.0.2 --port 7070 >/dev/null
grep -q '^tftp-unique-root=mac$' "$R/etc/dnsmasq.conf" && grep -q '^dhcp-range=10.77.0.255,proxy$' "$R/etc/dnsmasq.conf" &&
	pass "init wrote the proxy-DHCP + per-MAC TFTP config" || fail "dnsmasq.conf: $(cat "$R/etc/dnsmasq.conf")"
"$NF" --root "$R" image add "$img.mt.xz" --name pios >/dev/null
pi_initramfs "$T/netflash.cpio.gz"
"$NF" --root "$R" boot-files import --from-image pios --initramfs "$T/netflash.cpio.gz" >/dev/null
start_master_dnsmasq() {
	nsx master dnsmasq --conf-file="$R/etc/dnsmasq.conf" --keep-in-foreground &
	MASTER_PID=$!
	register_pid "$MASTER_PID"
	for _ in $(seq 1 50); do grep -q "TFTP root is" "$R/log/dnsmasq.log" 2>/dev/null && return 0; sleep 0.1; done
	fail "master dnsmasq did not start: $(cat "$R/log/dnsmasq.log")"
}
start_master_dnsmasq

PI_FILES="bootcode.bin start.elf fixup.dat config.txt cmdline.txt kernel8.img netflash.cpio.gz"
fetch() { # worker file -> curl's exit status (68: TFTP file not found)
	local rc=0
	rm -f "$T/got"
	nsx "$1" curl -s --max-time 10 -o "$T/got" "tftp://10.77.0.2/$2" || rc=$?
	echo $rc
}

# Before enroll: the TFTP root serves nothing.
for f in $PI_FILES; do
	rc=$(fetch w1 "$f")
	[ "$rc" = 68 ] || fail "before enroll: $f gave curl status $rc, expected not found (68)"
done
pass "before enroll: every Pi boot file is not found"

"$NF" --root "$R" enroll "$W1" --image pios >/dev/null
"$NF" --root "$R" enroll "$W2" --image pios >/dev/null
for f in $PI_FILES; do
	rc=$(fetch w1 "$f")
	if [ "$rc" != 0 ]; then fail "after enroll: $f not served (curl $rc)"; continue; fi
	[ "$f" = cmdline.txt ] || cmp -s "$T/got" "$R/boot/$f" || fail "after enroll: $f differs from the boot files"
done
pass "after enroll: each Pi boot file is served from the worker's dir"
fetch w1 cmdline.txt >/dev/null
tok1=$(grep -o 'netflash.token=[0-9a-f]*' "$T/got")
grep -q 'netflash.server=10.77.0.2:7070' "$T/got" && [ ${#tok1} -eq 47 ] &&
	pass "w1's cmdline.txt has the server and a 32-hex-digit token" || fail "w1 cmdline: $(cat "$T/got")"
fetch w2 cmdline.txt >/dev/null
tok2=$(grep -o 'netflash.token=[0-9a-f]*' "$T/got")
[ -n "$tok2" ] && [ "$tok1" != "$tok2" ] && pass "two enrolled MACs get their own cmdline.txt" ||
	fail "w2 token '$tok2' vs w1 '$tok1'"
[ "$(fetch w3 start.elf)" = 68 ] && [ "$(fetch w3 cmdline.txt)" = 68 ] &&
	pass "an unenrolled MAC gets nothing" || fail "unenrolled w3 was served"

# The Pi ROM's DHCP request (vendor class PXEClient, option 93 client arch 0)
# gets the proxy offer.
nsx pxe busybox udhcpc -i eth0 -n -q -t 3 -T 1 -V PXEClient:Arch:00000:UNDI:002001 -x 0x5d:0000 -s /bin/true >/dev/null 2>&1 || true
grep -q 'PXE(eth0) b8:27:eb:00:00:09 proxy' "$R/log/dnsmasq.log" &&
	pass "proxy DHCP answers a Pi-like request (option 93)" || fail "no proxy offer in $(grep -c . "$R/log/dnsmasq.log") log lines"
# An ordinary client gets its lease from the router; the master stays silent.
nsx laptop busybox udhcpc -i eth0 -n -q -t 5 -T 1 -s /bin/true >/dev/null 2>&1 || true
grep -q 'DHCPACK(eth0) 10.77.0.1[0-9][0-9] 02:00:00:00:00:0a' "$T/router.log" &&
	pass "the router's ordinary DHCP server leased an address" || fail "no lease from the router"
grep -q '02:00:00:00:00:0a' "$R/log/dnsmasq.log" && fail "the master answered an ordinary DHCP client" ||
	pass "the master ignores ordinary DHCP clients"

"$NF" --root "$R" release "$W1" >/dev/null
[ "$(fetch w1 start.elf)" = 68 ] && [ "$(fetch w1 cmdline.txt)" = 68 ] &&
	pass "after release: not found again" || fail "released w1 still served"
[ "$(fetch w2 start.elf)" = 0 ] && pass "the other worker is still served" || fail "w2 lost its files"
grep -q "sent $R/tftp/b8-27-eb-00-00-02/start.elf to 10.77.0.12" "$R/log/dnsmasq.log" &&
	pass "dnsmasq log names the per-MAC path" || fail "no 'sent' line for w2"
grep -i 'error' "$R/log/dnsmasq.log" && fail "the master's dnsmasq logged errors" || pass "no errors in the master's dnsmasq log"

# Log rotation with the generated logrotate config: dnsmasq (it wrote its
# PID where the config says) reopens its log, and the model lookup of
# dhcp-event still reads the new one.
pid=$(cat "$R/run/dnsmasq.pid" 2>/dev/null)
[ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | has "^dnsmasq --conf-file=$R/etc/dnsmasq.conf " &&
	pass "dnsmasq wrote its PID to ROOT/run/dnsmasq.pid" || fail "run/dnsmasq.pid: '$pid' is not the master's dnsmasq"
before=$(wc -l <"$R/log/dnsmasq.log")
logrotate -s "$T/logrotate.state" -f "$R/etc/netflash.logrotate" 2>"$T/logrotate.err" ||
	fail "logrotate: $(cat "$T/logrotate.err")"
[ "$(wc -l <"$R/log/dnsmasq.log.1" 2>/dev/null)" = "$before" ] &&
	pass "logrotate moved the log aside ($before lines in dnsmasq.log.1)" || fail "no dnsmasq.log.1 of $before lines"
[ "$(fetch w2 config.txt)" = 0 ] || fail "w2 not served after the rotation"
wait_for "$R/log/dnsmasq.log" "sent $R/tftp/b8-27-eb-00-00-02/config.txt" 3 || :
grep -q "sent $R/tftp/b8-27-eb-00-00-02/config.txt" "$R/log/dnsmasq.log" &&
	[ "$(wc -l <"$R/log/dnsmasq.log.1")" = "$before" ] &&
	pass "after the rotation dnsmasq writes to the new log only" ||
	fail "new log: $(cat "$R/log/dnsmasq.log" 2>&1 | tail -3)"
[ "$(stat -c %U:%a "$R/log/dnsmasq.log")" = "$(stat -c %U:%a "$R/log/dnsmasq.log.1")" ] &&
	pass "the new log has the old one's owner and mode ($(stat -c %U:%a "$R/log/dnsmasq.log"))" ||
	fail "owner/mode $(stat -c %U:%a "$R/log/dnsmasq.log") vs $(stat -c %U:%a "$R/log/dnsmasq.log.1")"

# The state database keeps its tables bounded: the newest 10000 sightings,
# the newest 500 TFTP events per worker (a Pi in a boot loop fetches about
# ten files every boot, for as long as nobody looks).
DB=$R/state/netflash.db
q="SELECT COUNT(*) FROM events WHERE mac = 'b8-27-eb-00-00-02' AND detail LIKE 'sent ''config.txt'' %'"
for _ in $(seq 1 50); do [ "$(sqlite3 "$DB" "$q")" = 1 ] && break; sleep 0.1; done # dnsmasq's script runs behind
sqlite3 "$DB" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10500)
	INSERT INTO sightings (at, mac, ip, kind) SELECT 0, 'b8-27-eb-00-00-77', '10.77.0.77', 'arp-add' FROM n;
	WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 700)
	INSERT INTO events (mac, at, event, detail) SELECT 'b8-27-eb-00-00-02', 0, 'tftp', 'old ' || i FROM n;"
last=$(sqlite3 "$DB" "SELECT MAX(id) FROM sightings")
"$NF" --root "$R" dhcp-event arp-add b8:27:eb:00:00:78 10.77.0.78 || fail "dhcp-event arp-add failed"
"$NF" --root "$R" dhcp-event tftp 1234 10.77.0.12 "$R/tftp/b8-27-eb-00-00-02/start.elf" || fail "dhcp-event tftp failed"
n=$(sqlite3 "$DB" "SELECT COUNT(*), MIN(id) = $last - 9998, SUM(mac = 'b8-27-eb-00-00-78') FROM sightings")
[ "$n" = "10000|1|1" ] && pass "sightings: the newest 10000 kept, the new one among them" || fail "sightings: $n"
n=$(sqlite3 "$DB" "SELECT COUNT(*) FROM events WHERE mac = 'b8-27-eb-00-00-02' AND event = 'tftp'")
newest=$(sqlite3 "$DB" "SELECT detail FROM events WHERE mac = 'b8-27-eb-00-00-02' AND event = 'tftp' ORDER BY id DESC LIMIT 1")
oldest=$(sqlite3 "$DB" "SELECT detail FROM events WHERE mac = 'b8-27-eb-00-00-02' AND event = 'tftp' ORDER BY id LIMIT 1")
[ "$n" = 500 ] && [ "$newest" = "sent 'start.elf' (1234 bytes) to 10.77.0.12" ] && [ "$oldest" = "old 202" ] &&
	pass "tftp events: the newest 500 of the worker kept" || fail "tftp events: $n, newest '$newest', oldest '$oldest'"
n=$(sqlite3 "$DB" "SELECT COUNT(*) FROM events WHERE event <> 'tftp' AND mac = 'b8-27-eb-00-00-02'")
[ "$n" -ge 1 ] && pass "other events are untouched ($n)" || fail "the worker's other events are gone"
finish
