#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# One-shot provisioning, end to end with the real master (netflashd, ganesha)
# and the real engine: settings given at enroll are written onto the card's
# FAT boot partition after the image is verified, read back from the card
# with mtools and fsck.fat; the rest of the card is exactly the image. Both
# conventions (firstrun.sh/userconf.txt/ssh and cloud-init), the patch's
# digest check in DONE (a raw protocol client that lies), stale and damaged
# patches, netflash-write --patch, and hostile settings.
source "$(dirname "$0")/../lib.sh"

img=$(test_image 24)
MiB=1048576
PY=/usr/bin/python3
size=$(stat -c %s "$img")

# boot_part CARD OUT: the card's first FAT partition (offset from its MBR).
boot_part() {
	local start sectors
	read -r start sectors < <(partx -g -n 1 -o START,SECTORS "$1")
	dd if="$1" of="$2" bs=512 skip="$start" count="$sectors" status=none
}
mt() { MTOOLS_SKIP_CHECK=1 "$@"; }

# Settings, some with characters that need quoting.
echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOfakekeyfortestsonly0123456789abcdefghij admin@lab" >"$T/key.pub"
openssl passwd -6 -salt netflashsalt 's3cret pass' >"$T/hash"
echo "correct horse battery" >"$T/psk"
printf '#!/bin/sh\necho "first boot of $(hostname)"\n' >"$T/firstboot.sh"
SSID="Lab 'net\"1"

master_setup "$img.mt.xz" pios
daemon_start
M1=b8:27:eb:00:01:01 D1=b8-27-eb-00-01-01

# 1. firstrun style (the test image has no user-data/meta-data).
"$NF" --root "$MR" enroll "$M1" --image pios --hostname node1 --ssh-key "$T/key.pub" --user admin \
	--password-hash-file "$T/hash" --wifi-ssid "$SSID" --wifi-psk-file "$T/psk" --wifi-country GB \
	--timezone Europe/London --keymap gb --locale en_GB.UTF-8 --firstboot "$T/firstboot.sh" >"$T/e1.out" 2>&1 ||
	fail "enroll with provisioning: $(cat "$T/e1.out")"
grep -q "provisioning: firstrun style: userconf.txt, ssh, firstrun.sh, cmdline.txt, netflash-firstboot.sh; [0-9]* sectors" "$T/e1.out" &&
	pass "enroll names the files it will write" || fail "enroll output: $(cat "$T/e1.out")"
P1="$MR/state/provision/$D1.patch"
[ "$(stat -c %a "$P1")" = 600 ] && pass "the patch (it holds secrets) is mode 0600" || fail "patch mode $(stat -c %a "$P1" 2>&1)"

pattern_file "$T/card1" $((32 * MiB))
if report "$M1" "$T/card1" 2>"$T/w1.log"; then
	pass "the provisioned worker is flashed, verified and released"
else
	fail "worker 1: $(cat "$T/w1.log")"
fi
grep -q "with a provisioning patch" "$T/w1.log" && pass "the worker got the patch with its job" ||
	fail "worker log: $(cat "$T/w1.log")"

boot_part "$T/card1" "$T/p1"
fsck.fat -n "$T/p1" >"$T/fsck1" 2>&1 && pass "the card's boot partition is a clean FAT (fsck.fat -n)" ||
	fail "fsck.fat: $(cat "$T/fsck1")"
[ "$(mt mtype -i "$T/p1" ::/userconf.txt)" = "admin:$(cat "$T/hash")" ] && pass "userconf.txt holds user:hash" ||
	fail "userconf.txt: $(mt mtype -i "$T/p1" ::/userconf.txt 2>&1)"
mt mdir -b -i "$T/p1" ::/ssh >/dev/null 2>&1 && pass "the ssh file enables the SSH server" || fail "no ssh file"
mt mcopy -n -i "$T/p1" ::/firstrun.sh "$T/firstrun.sh"
bash -n "$T/firstrun.sh" && pass "firstrun.sh is valid bash" || fail "firstrun.sh does not parse"
psk=$(openssl kdf -keylen 32 -kdfopt digest:SHA1 -kdfopt "pass:correct horse battery" -kdfopt "salt:$SSID" \
	-kdfopt iter:4096 PBKDF2 | tr -d ':' | tr 'A-F' 'a-f')
ssid_hex=$(printf '%s' "$SSID" | od -An -tx1 | tr -d ' \n')
grep -qx "NEW_HOSTNAME=node1" "$T/firstrun.sh" && grep -qF "SSH_KEY='$(cat "$T/key.pub")'" "$T/firstrun.sh" &&
	grep -qF "set_wlan 'Lab '\\''net\"1' $psk GB" "$T/firstrun.sh" && grep -qx "	ssid=$ssid_hex" "$T/firstrun.sh" &&
	grep -qx "	psk=$psk" "$T/firstrun.sh" && ! grep -q "correct horse" "$T/firstrun.sh" &&
	grep -qF "set_timezone 'Europe/London'" "$T/firstrun.sh" && grep -qF "set_keymap 'gb'" "$T/firstrun.sh" &&
	grep -qF "do_change_locale 'en_GB.UTF-8'" "$T/firstrun.sh" &&
	pass "firstrun.sh: hostname, key, Wi-Fi (PSK derived as openssl's PBKDF2, no passphrase), zone, keymap, locale" ||
	fail "firstrun.sh: $(cat "$T/firstrun.sh")"
# The script's Wi-Fi without imager_custom, run as the Pi's first boot runs
# it (tests/fixtures/firstrun-boot.sh): NetworkManager (Pi OS since
# Bookworm) gets a keyfile, mode 0600, and no wpa_supplicant.conf it would
# ignore; an older image gets wpa_supplicant.conf; one with neither is
# told, in the boot partition's log.
FRB="$NETFLASH_SRC/tests/fixtures/firstrun-boot.sh"
mt mtype -i "$T/p1" ::/cmdline.txt >"$T/fr-cmdline"
"$FRB" "$T/nm" "$T/firstrun.sh" "$T/fr-cmdline" 'printf "#!/bin/sh\n" >/usr/sbin/NetworkManager; chmod 755 /usr/sbin/NetworkManager'
K=$T/nm/etc.up/NetworkManager/system-connections/preconfigured.nmconnection
if [ -f "$K" ] && [ "$(stat -c %a "$K")" = 600 ] && [ ! -e "$T/nm/etc.up/wpa_supplicant/wpa_supplicant.conf" ] &&
	"$PY" - "$K" "$SSID" "$psk" <<'EOF2'
import configparser, sys, uuid
k = configparser.ConfigParser(interpolation=None)
k.read(sys.argv[1])
ssid = bytes(int(b) for b in k["wifi"]["ssid"].rstrip(";").split(";")).decode()
assert ssid == sys.argv[2], ssid
assert k["wifi-security"]["psk"] == sys.argv[3] and k["wifi-security"]["key-mgmt"] == "wpa-psk"
assert k["connection"]["type"] == "wifi" and uuid.UUID(k["connection"]["uuid"]).version == 4
assert k["ipv4"]["method"] == "auto"
EOF2
then pass "NetworkManager image: a 0600 keyfile with the SSID (quotes and all) and the PSK, no wpa_supplicant.conf"
else fail "NetworkManager keyfile: $(cat "$K" 2>&1; cat "$T/nm/firstrun.out")"; fi
has "Wi-Fi: NetworkManager keyfile" "$T/nm/boot/netflash-firstrun.log" && has "cfg80211.ieee80211_regdom=GB" "$T/nm/boot/cmdline.txt" &&
	! has "systemd.run" "$T/nm/boot/cmdline.txt" && [ ! -e "$T/nm/boot/firstrun.sh" ] &&
	pass "it logs what it did, sets the Wi-Fi country on cmdline.txt, and removes itself" ||
	fail "NM boot: log '$(cat "$T/nm/boot/netflash-firstrun.log" 2>&1)', cmdline '$(cat "$T/nm/boot/cmdline.txt")'"
"$FRB" "$T/wpa" "$T/firstrun.sh" "$T/fr-cmdline" 'mkdir -p /etc/wpa_supplicant'
W=$T/wpa/etc.up/wpa_supplicant/wpa_supplicant.conf
[ "$(stat -c %a "$W" 2>&1)" = 600 ] && has -x "	psk=$psk" "$W" && [ ! -e "$T/wpa/etc.up/NetworkManager/system-connections" ] &&
	pass "an image with wpa_supplicant and no NetworkManager gets wpa_supplicant.conf" || fail "wpa: $(cat "$W" 2>&1)"
"$FRB" "$T/none" "$T/firstrun.sh" "$T/fr-cmdline"
has "error: Wi-Fi is NOT configured: this system has neither imager_custom, NetworkManager nor wpa_supplicant" \
	"$T/none/boot/netflash-firstrun.log" && pass "an image with neither: the failure is said in the boot partition's log" ||
	fail "no-Wi-Fi image: $(cat "$T/none/boot/netflash-firstrun.log" 2>&1)"
mt mcopy -n -i "$T/p1" ::/netflash-firstboot.sh "$T/fb.got"
cmp -s "$T/fb.got" "$T/firstboot.sh" && pass "the first-boot script is on the card as given" || fail "netflash-firstboot.sh differs"
cmdline=$(mt mtype -i "$T/p1" ::/cmdline.txt)
case "$cmdline" in
"console=serial0,115200 console=tty1 root=PARTUUID=deadbeef-02 rootfstype=ext4 fsck.repair=yes rootwait systemd.run=/boot/firmware/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target")
	pass "cmdline.txt keeps its arguments and gains systemd.run=/boot/firmware/firstrun.sh" ;;
*) fail "cmdline.txt: $cmdline" ;;
esac
# Everything else is the image, byte for byte: the files the settings did
# not touch, and the card outside the boot partition.
boot_part "$img" "$T/p0"
mt mcopy -n -i "$T/p0" ::/start.elf "$T/start0"
mt mcopy -n -i "$T/p1" ::/start.elf "$T/start1"
cmp -s "$T/start0" "$T/start1" && pass "untouched boot files are the image's" || fail "start.elf changed"
read -r bstart bsectors < <(partx -g -n 1 -o START,SECTORS "$img")
bend=$(((bstart + bsectors) * 512))
cmp -s -n $((bstart * 512)) "$img" "$T/card1" && cmp -s -i "$bend:$bend" -n $((size - bend)) "$img" "$T/card1" &&
	pass "outside the boot partition the card is exactly the image" || fail "the card differs outside the boot partition"
[ ! -e "$P1" ] && pass "the patch is deleted once the worker is released" || fail "the patch outlived the release"
"$NF" --root "$MR" history "$M1" | has "^  .* firstrun style: userconf.txt" && pass "history records what was provisioned" ||
	fail "history: $("$NF" --root "$MR" history "$M1")"

# 2. cloud-init style: an image whose boot partition holds meta-data.
cp "$img" "$T/ci.img"
cp "$T/p0" "$T/pci"
printf 'instance-id: rpios-image\n' >"$T/meta-data"
mt mcopy -i "$T/pci" "$T/meta-data" ::/meta-data
dd if="$T/pci" of="$T/ci.img" bs=512 seek="$bstart" conv=notrunc status=none
"$NF" --root "$MR" image add "$T/ci.img" --name ci >/dev/null
M2=b8:27:eb:00:01:02
"$NF" --root "$MR" enroll "$M2" --image ci --hostname node2 --ssh-key "$T/key.pub" --user admin \
	--password-hash-file "$T/hash" --wifi-ssid "$SSID" --wifi-psk-file "$T/psk" --timezone Europe/London \
	--firstboot "$T/firstboot.sh" >"$T/e2.out" 2>&1 || fail "cloud-init enroll: $(cat "$T/e2.out")"
grep -q "provisioning: cloud-init style: user-data, network-config, netflash-firstboot.sh" "$T/e2.out" &&
	pass "an image with meta-data gets the cloud-init files" || fail "enroll: $(cat "$T/e2.out")"
pattern_file "$T/card2" $((32 * MiB))
report "$M2" "$T/card2" 2>"$T/w2.log" && pass "the cloud-init worker is released" || fail "worker 2: $(cat "$T/w2.log")"
boot_part "$T/card2" "$T/p2"
mt mtype -i "$T/p2" ::/user-data >"$T/user-data"
mt mtype -i "$T/p2" ::/network-config >"$T/network-config"
if "$PY" - "$T/user-data" "$T/network-config" "$(cat "$T/key.pub")" "$(cat "$T/hash")" "$SSID" "$psk" <<'EOF'
import sys, yaml
ud = yaml.safe_load(open(sys.argv[1]))
nc = yaml.safe_load(open(sys.argv[2]))
key, hsh, ssid, psk = sys.argv[3:7]
assert open(sys.argv[1]).readline().strip() == "#cloud-config"
assert ud["hostname"] == "node2" and ud["timezone"] == "Europe/London"
u = ud["users"][0]
assert u["name"] == "admin" and u["passwd"] == hsh and u["ssh_authorized_keys"] == [key]
assert any("netflash-firstboot.sh" in c[2] for c in ud["runcmd"]), ud["runcmd"]
assert "manage_etc_hosts" not in ud
ap = nc["network"]["wifis"]["wlan0"]["access-points"]
assert ap == {ssid: {"password": psk}}, ap
EOF
then pass "user-data and network-config parse as YAML and hold the settings"; else fail "cloud-init files: $(cat "$T/user-data" "$T/network-config")"; fi
fsck.fat -n "$T/p2" >/dev/null 2>&1 && pass "the cloud-init card's boot partition is a clean FAT" || fail "fsck.fat on card 2"
# Wi-Fi on images that carry their own network-config (rpi-imager#512,
# #571): the wired interfaces stay. Ubuntu Server's (version 2 at the top,
# eth0 on DHCP), Pi OS Trixie's (only comments: eth0 is added) and one with
# a renderer and its own eth0 settings. cloud-init's own parser and netplan
# renderer take the result: eth0 and wlan0 with the access point.
netcheck() { # NETWORK_CONFIG EXPECT_ETH0_JSON
	"$PY" - "$1" "$2" "$SSID" "$psk" "$T/np" <<'PY'
import json, os, sys, yaml
from cloudinit.net.network_state import parse_net_config_data
from cloudinit.net import netplan
path, eth0, ssid, psk, out = sys.argv[1:6]
cfg = yaml.safe_load(open(path))
ns = parse_net_config_data(cfg["network"], skip_broken=False)
assert [i["name"] for i in ns.iter_interfaces()] == ["eth0"], list(ns.iter_interfaces())
os.makedirs(out, exist_ok=True)
netplan.Renderer({"netplan_path": "np.yaml", "postcmds": False}).render_network_state(ns, target=out)
np = yaml.safe_load(open(os.path.join(out, "np.yaml")))["network"]
assert np["ethernets"]["eth0"] == json.loads(eth0), np["ethernets"]
assert np["wifis"]["wlan0"]["access-points"] == {ssid: {"password": psk}}, np["wifis"]
assert np["wifis"]["wlan0"]["dhcp4"] is True
PY
}
printf '# This file is generated from information provided by the datasource.\nversion: 2\nethernets:\n  eth0:\n    dhcp4: true\n    optional: true\n' >"$T/nc-ubuntu"
printf '# netplan-compatible config, see https://netplan.io\n#network:\n#  version: 2\n#  ethernets:\n#    eth0:\n#      dhcp4: true\n' >"$T/nc-trixie"
printf 'network:\n  version: 2\n  renderer: networkd\n  ethernets:\n    eth0:\n      dhcp4: false\n      addresses: [10.9.0.5/24]\n' >"$T/nc-static"
i=10
for c in "ubuntu:{\"dhcp4\": true, \"optional\": true}" "trixie:{\"dhcp4\": true, \"optional\": true}" \
	"static:{\"dhcp4\": false, \"addresses\": [\"10.9.0.5/24\"]}"; do
	name=${c%%:*} i=$((i + 1))
	cp "$img" "$T/nc.img" && cp "$T/pci" "$T/pnc"
	mt mcopy -o -i "$T/pnc" "$T/nc-$name" ::/network-config
	dd if="$T/pnc" of="$T/nc.img" bs=512 seek="$bstart" conv=notrunc status=none
	"$NF" --root "$MR" image add "$T/nc.img" --name "nc-$name" >/dev/null
	"$NF" --root "$MR" enroll "b8:27:eb:00:01:$i" --image "nc-$name" --wifi-ssid "$SSID" --wifi-psk-file "$T/psk" \
		>"$T/nc.out" 2>&1 || fail "enroll nc-$name: $(cat "$T/nc.out")"
	pattern_file "$T/card-nc" $((32 * MiB))
	report "b8:27:eb:00:01:$i" "$T/card-nc" 2>"$T/wnc.log" || fail "worker nc-$name: $(cat "$T/wnc.log")"
	boot_part "$T/card-nc" "$T/pnc2"
	mt mtype -i "$T/pnc2" ::/network-config >"$T/nc-out"
	netcheck "$T/nc-out" "${c#*:}" 2>"$T/nccheck.err" &&
		pass "Wi-Fi with $name's network-config: its eth0 kept, wlan0 added; cloud-init parses and renders it" ||
		fail "$name: $(cat "$T/nccheck.err" "$T/nc-out")"
done
printf 'version: 1\nconfig:\n  - type: physical\n    name: eth0\n' >"$T/nc-v1"
cp "$img" "$T/nc.img" && cp "$T/pci" "$T/pnc" && mt mcopy -o -i "$T/pnc" "$T/nc-v1" ::/network-config
dd if="$T/pnc" of="$T/nc.img" bs=512 seek="$bstart" conv=notrunc status=none
"$NF" --root "$MR" image add "$T/nc.img" --name nc-v1 >/dev/null
rc=0; "$NF" --root "$MR" enroll b8:27:eb:00:01:20 --image nc-v1 --wifi-ssid "$SSID" --wifi-psk-file "$T/psk" \
	2>"$T/v1.err" >/dev/null || rc=$?
[ $rc = 1 ] && has "network-config is not version 2, which Wi-Fi needs; give your own with --network-config" "$T/v1.err" &&
	[ ! -d "$MR/tftp/b8-27-eb-00-01-20" ] &&
	pass "Wi-Fi on an image whose network-config is version 1 is refused, and why" || fail "v1: rc=$rc $(cat "$T/v1.err")"
# A network-config whose aliases loop, or multiply (a "billion laughs":
# nine lists of nine aliases, 9^9 nodes), or that nests 200 deep: refused
# in one line, and at once (copied whole, it loops or takes 9^9 nodes).
"$PY" - "$T" <<'PY'
import sys
t = sys.argv[1]
head = "network:\n  version: 2\n  ethernets: {eth0: {dhcp4: true}}\n"
laughs, prev = head + "  bonds:\n    a: &a [x, x, x, x, x, x, x, x, x]\n", "a"
for l in "bcdefghi":
    laughs += "    %s: &%s [%s]\n" % (l, l, ", ".join(["*" + prev] * 9))
    prev = l
open(t + "/nc-laughs", "w").write(laughs)
open(t + "/nc-loop", "w").write(head + "  bonds: &a [*a]\n")
open(t + "/nc-deep", "w").write(head + "  renderer: " + "[" * 200 + "]" * 200 + "\n")
PY
i=20
for c in "laughs:multiplies its aliases" "loop:is an alias of itself" "deep:nests 200 deep"; do
	name=${c%%:*} i=$((i + 1))
	cp "$img" "$T/nc.img" && cp "$T/pci" "$T/pnc" && mt mcopy -o -i "$T/pnc" "$T/nc-$name" ::/network-config
	dd if="$T/pnc" of="$T/nc.img" bs=512 seek="$bstart" conv=notrunc status=none
	"$NF" --root "$MR" image add "$T/nc.img" --name "nc-$name" >/dev/null
	rc=0; timeout 60 "$NF" --root "$MR" enroll "b8:27:eb:00:01:$i" --image "nc-$name" --wifi-ssid "$SSID" \
		--wifi-psk-file "$T/psk" 2>"$T/nc-$name.err" >/dev/null || rc=$?
	[ $rc = 1 ] && [ "$(wc -l <"$T/nc-$name.err")" = 1 ] &&
		has "network-config nests deeper than 32 levels or its aliases make more than 10000 nodes; give your own with --network-config" "$T/nc-$name.err" &&
		[ ! -d "$MR/tftp/b8-27-eb-00-01-$i" ] &&
		pass "Wi-Fi on an image whose network-config ${c#*:}: refused at once, in one line" ||
		fail "nc-$name: rc=$rc $(cat "$T/nc-$name.err")"
done
# A GPT image (osbuild/bootc-image-builder#701 makes them): the boot
# partition is found through the GPT (libfdisk), and hostname, user, key
# and Wi-Fi land on it as on an MBR image. Laid out with sfdisk: the test
# image's FAT boot partition as an EFI System partition, its root after.
read -r rstart rsectors < <(partx -g -n 2 -o START,SECTORS "$img")
gsize=$(((2048 + bsectors + rsectors + 2048) * 512))
truncate -s "$gsize" "$T/gpt.img"
printf 'label: gpt\nstart=2048, size=%s, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=%s, size=%s, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' \
	"$bsectors" $((2048 + bsectors)) "$rsectors" | sfdisk -q "$T/gpt.img"
dd if="$T/p0" of="$T/gpt.img" bs=512 seek=2048 conv=notrunc status=none
dd if="$img" of="$T/gpt.img" bs=512 skip="$rstart" count="$rsectors" seek=$((2048 + bsectors)) conv=notrunc status=none
[ "$(partx -g -o TYPE -n 1 "$T/gpt.img" | tr -d ' ')" = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b" ] || fail "the GPT test image is not laid out"
"$NF" --root "$MR" image add "$T/gpt.img" --name nc-gpt >/dev/null
"$NF" --root "$MR" enroll b8:27:eb:00:01:21 --image nc-gpt --hostname gpt1 --ssh-key "$T/key.pub" --user admin \
	--password-hash-file "$T/hash" --wifi-ssid "$SSID" --wifi-psk-file "$T/psk" >"$T/gpt.out" 2>&1 &&
	has "provisioning: firstrun style: userconf.txt" "$T/gpt.out" || fail "GPT enroll: $(cat "$T/gpt.out")"
pattern_file "$T/card-gpt" $((40 * MiB))
report b8:27:eb:00:01:21 "$T/card-gpt" 2>"$T/wgpt.log" || fail "GPT worker: $(cat "$T/wgpt.log")"
dd if="$T/card-gpt" of="$T/pgpt" bs=512 skip=2048 count="$bsectors" status=none
[ "$(mt mtype -i "$T/pgpt" ::/userconf.txt)" = "admin:$(cat "$T/hash")" ] && mt mtype -i "$T/pgpt" ::/firstrun.sh | has "gpt1" &&
	fsck.fat -n "$T/pgpt" >/dev/null 2>&1 && cmp -s -n $((2048 * 512)) "$T/gpt.img" "$T/card-gpt" &&
	pass "a GPT image: provisioned on the FAT partition its GPT names; the rest of the card is the image" ||
	fail "GPT card: $(mt mdir -i "$T/pgpt" ::/ 2>&1 | head -12)"
# These images go again (the cache counts below are about pios and ci).
for n in ubuntu trixie static v1 laughs loop deep gpt; do "$NF" --root "$MR" image rm "nc-$n" --force >/dev/null 2>&1 || true; done

# The real cloud-init (Debian's) takes the user-data, and over two boots
# (tests/fixtures/cloudinit-boot.sh) the hostname applies on the first and
# an admin's later change of it and of /etc/hosts survives the second (with
# `manage_etc_hosts: true` it did not: the second boot restored node2).
cloud-init schema --config-file "$T/user-data" >"$T/schema.out" 2>&1 && pass "cloud-init schema: the user-data is valid" ||
	fail "cloud-init schema: $(cat "$T/schema.out")"
CIB="$NETFLASH_SRC/tests/fixtures/cloudinit-boot.sh"
b1=$("$CIB" "$T/ci-state" "$T/user-data" 'hostname admin1; echo admin1 >/etc/hostname
	sed -i "s/^127\.0\.1\.1.*/127.0.1.1 admin1/" /etc/hosts' 2>&1)
b2=$("$CIB" "$T/ci-state" "$T/user-data" 2>&1)
[ "$b1" = "hostname=node2 etc_hostname=node2 hosts=127.0.1.1 node2" ] &&
	pass "cloud-init's first boot: hostname node2, and /etc/hosts names it" || fail "first boot: $b1"
[ "$b2" = "hostname=admin1 etc_hostname=admin1 hosts=127.0.1.1 admin1" ] &&
	pass "cloud-init's second boot keeps the admin's hostname and /etc/hosts" || fail "second boot: $b2"

# 3. The master checks the patch's digest in DONE. A raw client that takes
# the job and the patch, then claims success without it (or with another).
M3=b8:27:eb:00:01:03 D3=b8-27-eb-00-01-03
sha=$(sha256sum "$img" | cut -d' ' -f1)
raw_done() { # raw_done MAC EXTRA -> the master's answer to DONE
	exec 5<>"/dev/tcp/127.0.0.1/$MPORT"
	echo "HELLO v=1 mac=$1 token=$(token_of "$1")" >&5
	local line id
	read -r line <&5
	id=$(echo "$line" | grep -o ' id=[0-9]*' | cut -d= -f2)
	echo "$line" | has " patch=[0-9]* patch_sha256=[0-9a-f]\{64\}" || echo "no patch in JOB: $line" >&2
	while read -r -t 2 line <&5; do [[ $line == PATCH* ]] || break; done
	echo "DONE id=$id sha256=$sha bytes=$size seconds=1.0$2" >&5
	read -r -t 5 line <&5
	exec 5>&-
	echo "$line"
}
"$NF" --root "$MR" enroll "$M3" --image pios --hostname node3 >/dev/null
ans=$(raw_done "$M3" "")
[[ $ans == "KEPT id="*"reason=patch-missing" ]] && pass "DONE without the patch digest is KEPT (patch-missing)" || fail "answer: $ans"
ans=$(raw_done "$M3" " patch=$(printf '%064d' 0)")
[[ $ans == "KEPT id="*"reason=patch-mismatch" ]] && pass "DONE with another patch digest is KEPT (patch-mismatch)" || fail "answer: $ans"
[ -d "$MR/tftp/$D3" ] && [ -e "$MR/state/provision/$D3.patch" ] && pass "a kept worker keeps its dir and its patch" ||
	fail "kept worker lost its dir or patch"
# A re-enroll that fails after its new patch was made (the boot files hold a
# symlink, which a TFTP dir never takes) gives the old enrollment its patch back.
cp "$MR/state/provision/$D3.patch" "$T/p3.before"
cl3=$(cat "$MR/tftp/$D3/cmdline.txt")
ln -s /etc/passwd "$MR/boot/evil"
for new in "--hostname other" ""; do
	rc=0
	# shellcheck disable=SC2086
	"$NF" --root "$MR" enroll "$M3" --image pios $new --force >/dev/null 2>"$T/err" || rc=$?
	[ "$rc" = 1 ] && grep -q "evil" "$T/err" && cmp -s "$T/p3.before" "$MR/state/provision/$D3.patch" &&
		[ "$(cat "$MR/tftp/$D3/cmdline.txt")" = "$cl3" ] && [ ! -e "$MR/state/provision/$D3.patch.old" ] &&
		pass "a failed re-enroll (${new:-no settings}) keeps the old patch and cmdline" ||
		fail "failed re-enroll (${new:-no settings}): exit $rc $(cat "$T/err"); $(ls "$MR/state/provision")"
done
rm "$MR/boot/evil"

# 4. netflash-write --patch: the same patch, standalone; and refused for
# another image (nothing of the card's head written).
pattern_file "$T/card3" $((32 * MiB))
"$NFW" --progress=none --patch "$MR/state/provision/$D3.patch" "$img.xz" "$T/card3" 2>"$T/w3.log" &&
	grep -q "provisioning patch written and read back" "$T/w3.log" && pass "netflash-write --patch writes it" ||
	fail "--patch: $(cat "$T/w3.log")"
boot_part "$T/card3" "$T/p3"
mt mcopy -n -i "$T/p3" ::/firstrun.sh - | has -x "NEW_HOSTNAME=node3" && pass "--patch put node3's firstrun.sh on the card" ||
	fail "card 3 firstrun.sh"
pattern_file "$T/card4" $((32 * MiB))
expect_fail "--patch, other image" "is not the expected image" \
	"$NFW" --progress=none --patch "$MR/state/provision/$D3.patch" "$T/ci.img" "$T/card4" &&
	head_not_written "--patch other image" "$T/card4" "$T/ci.img" && pass "--patch for another image is refused before the head"
printf 'garbage' >"$T/bad.patch"
expect_fail "damaged --patch" "not a netflash provisioning patch" "$NFW" --progress=none --patch "$T/bad.patch" "$img" "$T/card4" &&
	pass "a damaged patch file is refused"

# 5. Stale and damaged patches on the master: the worker gets NOJOB, not a
# card with settings made for another image.
before=$(ls "$MR"/state/cache/boot-*.part | wc -l)
"$NF" --root "$MR" image add "$T/ci.img" --name pios --force >"$T/add.out"
# The replaced version's cached boot partition goes; the one ci (same bytes
# as the new pios) uses stays.
[ "$before" = 2 ] && [ "$(ls "$MR"/state/cache/boot-*.part | wc -l)" = 1 ] &&
	[ "$(ls "$MR"/state/cache/ | grep -c "^boot-$(sha256sum <"$T/ci.img" | cut -c1-64)\.part")" = 2 ] &&
	grep -q "dropped 1 cached boot partition(s) of image versions no longer in the catalog" "$T/add.out" &&
	pass "image add --force drops the replaced version's cached boot partition" ||
	fail "cache: $before before, now $(ls "$MR/state/cache"); $(cat "$T/add.out")"
rc=0; report "$M3" "$T/card4" 2>"$T/w4.log" || rc=$?
[ $rc = 3 ] && grep -q "no job for $D3 (provision-stale)" "$T/w4.log" &&
	pass "a patch made for an earlier version of the image: NOJOB provision-stale" || fail "stale: rc $rc $(cat "$T/w4.log")"
"$NF" --root "$MR" enroll "$M3" --image pios --hostname node3 --force >/dev/null
head -c 100 "$MR/state/provision/$D3.patch" >"$T/trunc" && cp "$T/trunc" "$MR/state/provision/$D3.patch"
rc=0; report "$M3" "$T/card4" 2>"$T/w5.log" || rc=$?
[ $rc = 3 ] && grep -q "(provision-damaged)" "$T/w5.log" && pass "a damaged patch: NOJOB provision-damaged" ||
	fail "damaged: rc $rc $(cat "$T/w5.log")"

# 6. Bad settings: one line naming the option and the reason, nothing enrolled.
expect_rc() { # expect_rc RC NAME REGEX CMD...
	local want=$1 name=$2 re=$3 rc=0
	shift 3
	"$@" >"$T/out.log" 2>"$T/err.log" || rc=$?
	[ $rc = "$want" ] && grep -Eq -- "$re" "$T/err.log" && [ "$(grep -c 'error:' "$T/err.log")" = 1 ] &&
		pass "$name" || fail "$name: rc $rc: $(cat "$T/err.log")"
}
M9=b8:27:eb:00:01:09 D9=b8-27-eb-00-01-09
expect_rc 2 "--user without a hash is refused" "--user needs --password-hash-file" \
	"$NF" --root "$MR" enroll "$M9" --image pios --user admin
for u in root nobody daemon systemd-network sshd; do
	expect_rc 2 "--user $u (a system account: no login on first boot) is refused" \
		"invalid --user '$u': it is a system account of Debian and Raspberry Pi OS" \
		"$NF" --root "$MR" enroll "$M9" --image pios --user "$u" --password-hash-file "$T/hash"
done
[ ! -d "$MR/tftp/$D9" ] || fail "a refused --user enrolled $D9"
# The image's own accounts: its /etc/passwd, read once per image version
# from its ext4 root (debugfs, nothing mounted). A service account it adds
# is refused; its first user (uid 1000) and names it lacks are not; an
# image without a passwd falls back to the list above.
MP=b8:27:eb:00:01:30 DP=b8-27-eb-00-01-30
mkdir -p "$T/pwroot/etc"
printf 'root:x:0:0:root:/root:/bin/bash\nmosquitto:x:998:998::/var/lib/mosquitto:/usr/sbin/nologin\nfred:x:1000:1000:,,,:/home/fred:/bin/bash\n' \
	>"$T/pwroot/etc/passwd"
cp "$img" "$T/pw.img"
mkfs.ext4 -q -F -d "$T/pwroot" "$T/pw.root" "$((rsectors / 2))k"
dd if="$T/pw.root" of="$T/pw.img" bs=512 seek="$rstart" conv=notrunc status=none
zstd -q -f "$T/pw.img" -o "$T/pw.img.zst"
"$NF" --root "$MR" image add "$T/pw.img.zst" --name pw >/dev/null
expect_rc 1 "--user of a system account the image adds (uid 998 in its /etc/passwd) is refused" \
	"invalid --user 'mosquitto': it is a system account of image 'pw' \(uid 998 in its /etc/passwd\)" \
	"$NF" --root "$MR" enroll "$MP" --image pw --user mosquitto --password-hash-file "$T/hash"
has "reading the accounts in image 'pw'" "$T/err.log" && [ ! -d "$MR/tftp/$DP" ] &&
	ls "$MR"/state/cache/users-*.passwd | has . && [ -z "$(ls "$MR/state/cache" | grep -v '^boot-.*\.part$\|\.where$\|^users-[0-9a-f]*\.passwd\(\.lock\)\?$')" ] &&
	pass "the image's accounts are read and cached; nothing is enrolled, no copy of its root is left" ||
	fail "passwd cache: $(cat "$T/err.log") $(ls -A "$MR/state/cache")"
"$NF" --root "$MR" enroll "$MP" --image pw --user fred --password-hash-file "$T/hash" >"$T/fred.out" 2>&1 &&
	! has "reading the accounts" "$T/fred.out" &&
	"$NF" --root "$MR" enroll "$MP" --image pios --user mosquitto --password-hash-file "$T/hash" --force >/dev/null 2>&1 &&
	pass "its first user (uid 1000) is taken, from the cache; a name only another image reserves is taken" ||
	fail "fred: $(cat "$T/fred.out")"
# A CSV enroll (like mass-flash) checks each image's accounts before any
# enroll: nothing is enrolled.
printf '%s,csv-a,pios\n%s,csv-b,pw\n' b8:27:eb:00:01:31 b8:27:eb:00:01:32 >"$T/pw.csv"
rc=0; "$NF" --root "$MR" enroll --from-csv "$T/pw.csv" --user mosquitto --password-hash-file "$T/hash" \
	>/dev/null 2>"$T/csv.err" || rc=$?
[ $rc = 1 ] && has "pw.csv:2: image 'pw' cannot be provisioned (invalid --user 'mosquitto': it is a system account of image 'pw'" "$T/csv.err" &&
	[ ! -d "$MR/tftp/b8-27-eb-00-01-31" ] && [ ! -d "$MR/tftp/b8-27-eb-00-01-32" ] &&
	pass "a CSV enroll whose image has --user as a system account enrolls none of its lines" ||
	fail "csv: rc=$rc $(cat "$T/csv.err")"
"$NF" --root "$MR" image rm pw --force >/dev/null 2>&1
[ -z "$(ls "$MR"/state/cache/ | grep users-"$(zstd -dcq "$T/pw.img.zst" | sha256sum | cut -c1-64)")" ] &&
	pass "image rm drops the image's cached accounts" || fail "after rm: $(ls -A "$MR/state/cache")"
# pwcase NAME ROOTDIR [data]: image NAME: the test image's FAT, then an
# ext4 data partition without /etc (with "data"), then an ext4 root made
# from ROOTDIR; a CSV enroll of it with --user svc, its stderr in
# $T/NAME.err and its exit status in rc.
pwcase() {
	local name=$1 dir=$2 data=${3:-} start=$((bstart + bsectors)) parts
	mkfs.ext4 -q -F -d "$dir" "$T/$name.root" 8M
	parts="start=$bstart, size=$bsectors, type=c"
	if [ -n "$data" ]; then
		mkdir -p "$T/$name.data/srv" && mkfs.ext4 -q -F -d "$T/$name.data" "$T/$name.d" 8M
		parts="$parts\nstart=$start, size=16384, type=83"
		start=$((start + 16384))
	fi
	truncate -s $(((start + 16384 + 2048) * 512)) "$T/$name.img"
	printf "label: dos\n$parts\nstart=$start, size=16384, type=83\n" | sfdisk -q "$T/$name.img"
	dd if="$img" of="$T/$name.img" bs=512 skip="$bstart" seek="$bstart" count="$bsectors" conv=notrunc status=none
	[ -z "$data" ] || dd if="$T/$name.d" of="$T/$name.img" bs=512 seek=$((bstart + bsectors)) conv=notrunc status=none
	dd if="$T/$name.root" of="$T/$name.img" bs=512 seek="$start" conv=notrunc status=none
	"$NF" --root "$MR" image add "$T/$name.img" --name "$name" --zstd-level 3 >/dev/null 2>&1
	printf '%s,,%s\n' b8:27:eb:00:01:40 "$name" >"$T/$name.csv"
	rc=0; "$NF" --root "$MR" enroll --from-csv "$T/$name.csv" --user svc --password-hash-file "$T/hash" \
		>/dev/null 2>"$T/$name.err" || rc=$?
	"$NF" --root "$MR" release b8:27:eb:00:01:40 >/dev/null 2>&1 || true
}
mkdir -p "$T/pw2/etc"
printf 'root:x:0:0::/root:/bin/bash\nemp:x::1::/:/bin/sh\nneg:x:-5:1::/:/bin/sh\nsvc:x:999:999::/:/usr/sbin/nologin\n' \
	>"$T/pw2/etc/passwd"
pwcase pwdata "$T/pw2" data
[ $rc = 1 ] && has "it is a system account of image 'pwdata' (uid 999" "$T/pwdata.err" &&
	pass "a root after a data partition: its /etc/passwd is found and read" || fail "pwdata: rc=$rc $(cat "$T/pwdata.err")"
for u in emp neg; do
	"$NF" --root "$MR" enroll b8:27:eb:00:01:41 --image pwdata --user "$u" --password-hash-file "$T/hash" --force \
		>/dev/null 2>"$T/$u.err" || fail "$u (a malformed passwd line) refused: $(cat "$T/$u.err")"
done
pass "passwd lines with an empty or negative uid are not read as uid 0"
# A damaged file system is said, and not cached as "no accounts": the
# next enroll reads it again.
pwcase pwbad "$T/pw2"
printf '\377\377\377\177' | dd of="$T/pwbad.img" bs=1 seek=$(((bstart + bsectors) * 512 + 1024 + 24)) conv=notrunc status=none
"$NF" --root "$MR" image add "$T/pwbad.img" --name pwbad --zstd-level 3 --force >/dev/null 2>&1
rc=0; "$NF" --root "$MR" enroll --from-csv "$T/pwbad.csv" --user svc --password-hash-file "$T/hash" >/dev/null 2>"$T/pwbad.err" || rc=$?
"$NF" --root "$MR" release b8:27:eb:00:01:40 >/dev/null 2>&1 || true
has "warning: debugfs cannot read the ext file system at byte $(((bstart + bsectors) * 512)) of 'pwbad'.*checked against Debian's system accounts only" "$T/pwbad.err" &&
	[ -z "$(ls "$MR/state/cache" | grep "^users-$(sha256sum <"$T/pwbad.img" | cut -c1-64)\.passwd$")" ] &&
	pass "a damaged root file system: a warning with debugfs's reason, nothing cached" ||
	fail "pwbad: rc=$rc $(cat "$T/pwbad.err") $(ls "$MR/state/cache")"
# No /etc/passwd at all: cached as such, and said on each enroll.
mkdir -p "$T/pw3/etc"
pwcase pwnone "$T/pw3"
[ $rc = 0 ] && has "warning: image 'pwnone' has no /etc/passwd in its ext2/3/4 partition; --user is checked" "$T/pwnone.err" &&
	pwcase pwnone "$T/pw3" && ! has "reading the accounts" "$T/pwnone.err" && has "no /etc/passwd" "$T/pwnone.err" &&
	pass "an image without /etc/passwd: cached once, a warning on each enroll" || fail "pwnone: rc=$rc $(cat "$T/pwnone.err")"
for n in pwdata pwbad pwnone; do "$NF" --root "$MR" image rm "$n" --force >/dev/null 2>&1 || true; done
printf '%s\n' 'plain-password' >"$T/badhash"
expect_rc 2 "a password that is not a crypt hash is refused" "invalid --password-hash-file: .*crypt" \
	"$NF" --root "$MR" enroll "$M9" --image pios --user admin --password-hash-file "$T/badhash"
expect_rc 2 "an SSID with a newline is refused" "invalid --wifi-ssid .*control characters" \
	"$NF" --root "$MR" enroll "$M9" --image pios --wifi-ssid "$(printf 'a\nb')" --wifi-psk-file "$T/psk"
echo short >"$T/shortpsk"
expect_rc 2 "a short Wi-Fi passphrase is refused" "passphrase of 8 to 63" \
	"$NF" --root "$MR" enroll "$M9" --image pios --wifi-ssid lab --wifi-psk-file "$T/shortpsk"
expect_rc 2 "a hostile timezone is refused" "invalid --timezone" \
	"$NF" --root "$MR" enroll "$M9" --image pios --timezone '../../etc/passwd'
# Values checked against the lists Debian ships, the nearest spelling named.
expect_rc 2 "a misspelt time zone" "invalid --timezone 'Europe/Londn': not a known time zone \(did you mean 'Europe/London'\?\)" \
	"$NF" --root "$MR" enroll "$M9" --image pios --timezone Europe/Londn
expect_rc 2 "UK as a Wi-Fi country" "invalid --wifi-country 'UK': not a known ISO 3166 country code \(did you mean 'GB'\?\)" \
	"$NF" --root "$MR" enroll "$M9" --image pios --wifi-country UK
expect_rc 2 "a misspelt keymap" "invalid --keymap 'gbb': not a known keyboard layout \(did you mean 'gb'\?\)" \
	"$NF" --root "$MR" enroll "$M9" --image pios --keymap gbb
expect_rc 2 "a locale without its dash" "invalid --locale 'en_GB.UTF8': not a known supported locale \(did you mean 'en_GB.UTF-8'\?\)" \
	"$NF" --root "$MR" enroll "$M9" --image pios --locale en_GB.UTF8
expect_rc 2 "a zone with nothing close" "invalid --timezone 'Mars/Olympus_Mons': not a known time zone$" \
	"$NF" --root "$MR" enroll "$M9" --image pios --timezone Mars/Olympus_Mons
expect_rc 2 "--user-data with --hostname is refused" "replaces the generated user-data" \
	"$NF" --root "$MR" enroll "$M9" --image pios --user-data "$T/user-data" --hostname x
head -c 40000 /dev/zero | tr '\0' 'x' >"$T/big.sh"
expect_rc 2 "a first-boot script over 32 KiB is refused" "larger than 32 KiB" \
	"$NF" --root "$MR" enroll "$M9" --image pios --firstboot "$T/big.sh"
random_disk "$T/nofat.img" $((4 * MiB))
"$NF" --root "$MR" image add "$T/nofat.img" --name nofat >/dev/null
expect_rc 1 "an image without a FAT partition cannot be provisioned" "has no FAT boot partition in its MBR or GPT" \
	"$NF" --root "$MR" enroll "$M9" --image nofat --hostname x
[ ! -e "$MR/tftp/$D9" ] && [ ! -e "$MR/state/provision/$D9.patch" ] && pass "refused settings enroll nothing" ||
	fail "a refused enroll left a TFTP dir or patch"
"$NF" --root "$MR" enroll "$M9" --image nofat >/dev/null && pass "(that image still enrolls without settings)" ||
	fail "plain enroll of an image without FAT"
finish
