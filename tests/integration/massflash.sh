#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# netflash mass-flash driven by real dnsmasq events: a LAN of network
# namespaces with a router (ordinary DHCP), the master's dnsmasq from
# `netflash init` (proxy-DHCP, TFTP, dhcp-script) and Pis that do what the
# ROM does: DHCP with the PXE options (a Pi 4 also sends its client GUID),
# then TFTP. Unknown Pis are auto-enrolled; their flash then runs through
# netflashd, ganesha and the real engine (netflash-write --report-to).
source "$(dirname "$0")/../lib.sh"

img=$(test_image 24)
MR=$T/root
MPORT=$("$NETFLASH_BUILD/tests/freeport")
P1=b8:27:eb:00:00:01 P2=dc:a6:32:00:00:02 P3=e4:5f:01:00:00:03 P4=2c:cf:67:00:00:04 PC=02:00:00:00:00:0a
D1=b8-27-eb-00-00-01 D2=dc-a6-32-00-00-02 D3=e4-5f-01-00-00-03 D4=2c-cf-67-00-00-04 DPC=02-00-00-00-00-0a
# Tables print MACs as people type them.
C1=${D1//-/:} C2=${D2//-/:} C3=${D3//-/:} C4=${D4//-/:}
# A Pi 4B 4GB's option 97: type 0, "RPi4", revision 0x00c03111 (LE), MAC low bytes, serial.
GUID4=00:52:50:69:34:11:31:c0:00:32:00:00:02:12:34:56:78

netns_lan
netns_host router 02:00:00:00:00:01 10.77.0.1
netns_host master 02:00:00:00:00:02 10.77.0.2
for h in "p1 $P1" "p2 $P2" "p3 $P3" "p4 $P4" "pc $PC"; do
	# shellcheck disable=SC2086
	netns_host $h ""
done

nsx router dnsmasq --conf-file=/dev/null --keep-in-foreground --user=root --port=0 \
	--pid-file="$T/router.pid" --log-facility="$T/router.log" --interface=eth0 --bind-interfaces \
	--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h --no-ping --dhcp-leasefile="$T/router.leases" &
register_pid $!

wait_for "$T/router.log" "sockets bound" 5 || :
nsx master "$NF" --root "$MR" init --interface eth0 --subnet 10.77.0.0/24 --server-ip 10.77.0.2 --port "$MPORT" >/dev/null
grep -q "^dhcp-script=$MR/etc/dhcp-event\$" "$MR/etc/dnsmasq.conf" && grep -q '^script-arp$' "$MR/etc/dnsmasq.conf" &&
	[ -x "$MR/etc/dhcp-event" ] && pass "init wires dnsmasq's dhcp-script to netflash dhcp-event" ||
	fail "dnsmasq.conf: $(cat "$MR/etc/dnsmasq.conf")"
"$NF" --root "$MR" image add "$img.mt.xz" --name pios >/dev/null
"$NF" --root "$MR" boot-files import --from-image pios >/dev/null 2>&1
nsx master dnsmasq --conf-file="$MR/etc/dnsmasq.conf" --keep-in-foreground &
register_pid $!
wait_for "$MR/log/dnsmasq.log" "TFTP root is" 5 || :
ganesha_start "$MR/images" "$T"
daemon_start --max-attempts 1

# What the Pi ROM does: DHCP (lease from the router, proxy offer from the
# master), then TFTP until its files are there (at most ~20 s here).
cat >"$T/udhcpc.sh" <<'EOF'
#!/bin/sh
[ "$1" = bound ] && ip addr add "$ip/${mask:-24}" dev "$interface"
exit 0
EOF
chmod +x "$T/udhcpc.sh"
pi_dhcp() { # host [option-97 bytes]
	local extra=()
	[ -n "${2:-}" ] && extra=(-x "0x61:${2//:/}")
	# The ROM's one DISCOVER gets two offers (lease and proxy); udhcpc
	# would take either, so the lease and the proxy exchange are two runs.
	nsx "$1" busybox udhcpc -i eth0 -n -q -t 5 -T 1 -s "$T/udhcpc.sh" >/dev/null 2>&1 || return 1
	nsx "$1" busybox udhcpc -i eth0 -n -q -t 2 -T 1 -V PXEClient:Arch:00000:UNDI:002001 -x 0x5d:0000 \
		"${extra[@]}" -s /bin/true >/dev/null 2>&1 || true
}
pi_tftp_until_served() { # host -> 0 once bootcode.bin is served
	local i
	for i in $(seq 1 40); do
		nsx "$1" curl -s --max-time 3 -o /dev/null tftp://10.77.0.2/bootcode.bin && return 0
		sleep 0.5
	done
	return 1
}

# A boot-file set for the Pi 4 family only (its config.txt is marked).
mkdir "$T/pi4boot"
cp -p "$MR/boot/"*.bin "$MR/boot/"*.elf "$MR/boot/"*.dat "$MR/boot/"*.img "$T/pi4boot/" 2>/dev/null
cp "$MR/boot/.config.txt.orig" "$T/pi4boot/config.txt"
cp "$MR/boot/.cmdline.txt.orig" "$T/pi4boot/cmdline.txt"
echo "dtparam=the_pi4_set=on" >>"$T/pi4boot/config.txt"
[ -e "$T/pi4boot/start4.elf" ] || cp "$T/pi4boot/start.elf" "$T/pi4boot/start4.elf"
[ -e "$T/pi4boot/fixup4.dat" ] || cp "$T/pi4boot/fixup.dat" "$T/pi4boot/fixup4.dat"
head -c 30000 /dev/urandom >"$T/pi4boot/bcm2711-rpi-4-b.dtb"
expect_fail "boot set: missing family files" "cannot boot a Pi 5: missing kernel_2712.img" \
	"$NF" --root "$MR" boot-files import --model pi5 --from-boot "$T/pi4boot" && pass "a pi5 set without kernel_2712.img is refused"
"$NF" --root "$MR" boot-files import --model pi4 --from-boot "$T/pi4boot" >/dev/null &&
	"$NF" --root "$MR" boot-files ls | has "^$MR/boot-pi4 (pi4): boot files for: .*Pi 4 yes" &&
	pass "boot-files import --model pi4 makes ROOT/boot-pi4 (boot-files ls)" || fail "pi4 set: $("$NF" --root "$MR" boot-files ls)"
rc=0
"$NF" --root "$MR" enroll "$P1" --image pios --model pi9 2>/dev/null || rc=$?
[ "$rc" = 2 ] && pass "enroll --model pi9 is a usage error" || fail "enroll --model pi9: exit $rc"

"$NF" --root "$MR" mass-flash --image pios --hostname-pattern 'node{n}' --limit 2 --since 0 >"$T/mf.out" 2>&1 &
MF=$!
register_pid $MF
wait_for "$T/mf.out" "enrolling Raspberry Pis" 5 || :

pi_dhcp p1 && pi_tftp_until_served p1 && pass "an unknown Pi 3 is enrolled on its first TFTP try and then served" ||
	fail "p1 never served: $(cat "$T/mf.out")"
pi_dhcp p2 "$GUID4" && pi_tftp_until_served p2 && pass "a second Pi (Pi 4 with a client GUID) is enrolled too" ||
	fail "p2 never served: $(cat "$T/mf.out")"
pi_dhcp pc && ! nsx pc curl -s --max-time 3 -o /dev/null tftp://10.77.0.2/bootcode.bin
sleep 1.5
[ ! -e "$MR/tftp/$DPC" ] && grep -q "ignored $DPC: not in the OUI list" "$T/mf.out" &&
	pass "a non-Pi MAC is ignored" || fail "the non-Pi: $(cat "$T/mf.out")"
pi_dhcp p3 && ! nsx p3 curl -s --max-time 3 -o /dev/null tftp://10.77.0.2/bootcode.bin
sleep 1.5
[ ! -e "$MR/tftp/$D3" ] && grep -q "ignored $D3: the --limit is reached" "$T/mf.out" &&
	pass "a third Pi is ignored once --limit 2 is reached" || fail "p3: $(cat "$T/mf.out")"
grep -q "^dtparam=the_pi4_set=on" "$MR/tftp/$D2/config.txt" && ! grep -q "the_pi4_set" "$MR/tftp/$D1/config.txt" &&
	grep -q "enrolled $D2 (Pi 4B 4GB) as node2 (seen at .*; boot files boot-pi4)" "$T/mf.out" &&
	grep -q "enrolled $D1 as node1 (seen at .*; boot files boot)" "$T/mf.out" &&
	pass "the Pi 4 (model from its client GUID) got the pi4 boot-file set, the Pi 3 the default" ||
	fail "boot sets: $(grep enrolled "$T/mf.out")"
grep -q "netflash.token=" "$MR/tftp/$D1/cmdline.txt" && [ "$("$NF" --root "$MR" ls | awk -v m=$C1 '$1==m {print $2}')" = node1 ] &&
	[ "$("$NF" --root "$MR" ls | awk -v m=$C2 '$1==m {print $2}')" = node2 ] &&
	pass "hostnames come from the pattern, in order" || fail "ls: $("$NF" --root "$MR" ls)"

# p1 flashes its card; p2's card is too small (the engine refuses), and with
# --max-attempts 1 it is marked failed. Then mass-flash ends by itself.
report "$P1" "$T/card1" 2>"$T/w1.log" || fail "p1's flash: $(cat "$T/w1.log")"
truncate -s 4M "$T/small"
loop_attach SMALL "$T/small"
report "$P2" "$SMALL" 2>"$T/w2.log" && fail "p2 flashed a card smaller than the image"
for _ in $(seq 1 40); do kill -0 $MF 2>/dev/null || break; sleep 0.25; done
kill -0 $MF 2>/dev/null && { fail "mass-flash did not end after its 2 Pis were done"; kill -KILL $MF; }
rc=0
wait $MF || rc=$?
[ "$rc" = 1 ] && pass "mass-flash ended by itself, exit 1 (one Pi failed)" || fail "mass-flash exit $rc: $(cat "$T/mf.out")"
grep -q "2 Pi(s) in .*: 1 flashed, 1 failed, 0 not finished" "$T/mf.out" &&
	pass "the summary counts flashed and failed" || fail "summary: $(cat "$T/mf.out")"
grep -E "^$C1 +node1 +- +flashed +[0-9.]+s +[0-9.]+ " "$T/mf.out" >/dev/null &&
	pass "the flashed Pi's row has its duration and throughput" || fail "p1 row: $(grep "^$C1" "$T/mf.out")"
grep -E "^$C2 +node2 +Pi 4B 4GB +failed .*does not fit" "$T/mf.out" >/dev/null &&
	pass "the failed Pi's row has its model (from option 97) and the engine's reason" ||
	fail "p2 row: $(grep "^$C2" "$T/mf.out")"
[ ! -e "$MR/tftp/$D1" ] && [ -e "$MR/tftp/$D2" ] && pass "only the verified Pi was released" || fail "tftp dirs: $(ls "$MR/tftp")"
read -r bstart bsectors < <(partx -g -n 1 -o START,SECTORS "$T/card1")
dd if="$T/card1" of="$T/boot1" bs=512 skip="$bstart" count="$bsectors" status=none
MTOOLS_SKIP_CHECK=1 mtype -i "$T/boot1" ::/firstrun.sh | has -x "NEW_HOSTNAME=node1" &&
	pass "the pattern's hostname is provisioned onto the flashed card" || fail "card 1 has no firstrun.sh for node1"
"$NF" --root "$MR" history "$P1" | has "sent 'bootcode.bin' ($(stat -c %s "$MR/boot/bootcode.bin") bytes) to 10.77.0.1" &&
	pass "history shows the TFTP files dnsmasq sent (tftp events)" || fail "history: $("$NF" --root "$MR" history "$P1")"
"$NF" --root "$MR" history "$P2" | has "model (from its DHCP client GUID): Pi 4B 4GB" &&
	pass "history shows the model" || fail "history p2: $("$NF" --root "$MR" history "$P2")"

# Ctrl-C: no new Pis after it, and the summary says what is left.
"$NF" --root "$MR" mass-flash --image pios --since 0 >"$T/mf2.out" 2>&1 &
MF=$!
register_pid $MF
wait_for "$T/mf2.out" "enrolling Raspberry Pis" 5 || :
pi_dhcp p4 && pi_tftp_until_served p4 || fail "p4 never served: $(cat "$T/mf2.out")"
kill -INT $MF
rc=0
wait $MF || rc=$?
[ "$rc" = 1 ] && grep -q "1 Pi(s) in .*: 0 flashed, 0 failed, 1 not finished" "$T/mf2.out" &&
	grep -q "^$C4 .*enrolled, never started" "$T/mf2.out" && [ -d "$MR/tftp/$D4" ] &&
	pass "Ctrl-C ends the run with a summary; the enrolled Pi stays enrolled" || fail "Ctrl-C: rc=$rc $(cat "$T/mf2.out")"

# A Pi marked failed (its card failed the capacity probe) is not enrolled
# again by a run, which says why; --include-failed enrolls it.
"$NF" --root "$MR" enroll "$P3" --image pios >/dev/null
raw_fail "$P3" probe "capacity%20probe%20failed"
"$NF" --root "$MR" status | grep "^$C3" | has " failed " || fail "p3 is not marked failed: $("$NF" --root "$MR" status)"
for mode in plain include; do
	"$NF" --root "$MR" mass-flash --image pios --since 0 $([ $mode = include ] && echo --include-failed) >"$T/mf3.out" 2>&1 &
	MF=$!
	register_pid $MF
	wait_for "$T/mf3.out" "enrolling Raspberry Pis" 5 || :
	# dnsmasq reports a MAC once; its script interface, as dnsmasq calls it.
	"$NF" --root "$MR" dhcp-event arp-add "$P3" 10.77.0.13
	wait_for "$T/mf3.out" "$D3" 10 || :
	kill -INT $MF
	wait $MF || true
	cp "$T/mf3.out" "$T/mf3-$mode.out"
done
grep -q "ignored $D3: marked failed (probe: capacity probe failed): check its card; --include-failed enrolls it again" \
	"$T/mf3-plain.out" && grep -q "enrolled $D3" "$T/mf3-include.out" &&
	pass "a run leaves a failed Pi alone and says why; --include-failed enrolls it" ||
	fail "failed Pi: $(cat "$T/mf3-plain.out" "$T/mf3-include.out")"

# dnsmasq's script interface: hostile arguments get a one-line error.
expect_fail "dhcp-event: bad MAC" "invalid MAC" "$NF" --root "$MR" dhcp-event arp-add 'b8:27:eb:zz:00:01' 10.77.0.5 && pass "dhcp-event: a bad MAC"
expect_fail "dhcp-event: bad IP" "invalid IPv4" "$NF" --root "$MR" dhcp-event arp-add "$P1" '10.77.0.5;reboot' && pass "dhcp-event: a bad IP"
expect_fail "dhcp-event: path outside the TFTP root" "is not a file under" "$NF" --root "$MR" dhcp-event tftp 10 10.77.0.5 /etc/passwd && pass "dhcp-event: a path outside the TFTP root"
expect_fail "dhcp-event: path not in a MAC dir" "not in a worker's dir" \
	"$NF" --root "$MR" dhcp-event tftp 10 10.77.0.5 "$MR/tftp/../../etc/x/y" && pass "dhcp-event: a path not in a MAC dir"
"$NF" --root "$MR" dhcp-event arp-del "$P1" 10.77.0.5 && pass "dhcp-event ignores arp-del" || fail "arp-del failed"
grep -i 'error' "$MR/log/dnsmasq.log" && fail "the master's dnsmasq logged errors" || pass "no errors in dnsmasq's log"
finish
