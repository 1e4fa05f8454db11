#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The arm64 master package (scripts/package-master.sh --arch arm64; the
# test command builds it), its programs run as arm64 code under
# qemu-aarch64-static with Debian's arm64 libraries (multiarch): its
# Depends are arm64 packages of Debian 12, installed here; the README's
# master steps (init, image add, boot-files import, enroll) work; netflashd
# answers a worker's HELLO with its JOB and serves the dashboard and API.
# The whole walk in an arm64 Debian root (apt install of the .deb) is
# scripts/arm64-walk.sh: too slow for the suite.
source "$(dirname "$0")/../lib.sh"

deb=$(ls "$NETFLASH_BUILD"/netflash_*_arm64.deb 2>/dev/null | head -1 || true)
[ -n "$deb" ] || { echo "SKIP: no netflash_*_arm64.deb in $NETFLASH_BUILD (scripts/test.sh builds it)"; exit 77; }
command -v qemu-aarch64-static >/dev/null || { echo "SKIP: no qemu-aarch64-static"; exit 77; }
I=$T/inst
dpkg-deb -x "$deb" "$I"
# -L /: Debian's arm64 libraries from multiarch (libc6:arm64 ...), what the
# package's Depends name; the cross toolchain's libc under /usr/aarch64-linux-gnu
# hangs in its first pthread_create under this qemu-user (7.2).
a64() { qemu-aarch64-static -L / "$@"; }

[ "$(dpkg-deb -f "$deb" Architecture)" = arm64 ] &&
	readelf -h "$I/usr/bin/netflashd" | has "Machine: *AArch64" &&
	pass "the package is arm64 and holds arm64 programs" || fail "package: $(dpkg-deb -I "$deb" | head -12)"
missing=
for p in $(dpkg-deb -f "$deb" Depends | tr -d ' ' | tr ',' ' '); do
	case $p in dnsmasq-base | mtools | e2fsprogs | tzdata | xkb-data | locales) continue ;; esac
	dpkg-query -W -f='${Status}' "$p:arm64" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && pass "its library Depends are Debian 12's arm64 packages (installed here as multiarch)" ||
	fail "Depends not resolvable as arm64 packages:$missing"

NF="a64 $I/usr/bin/netflash"
R=$T/root
PORT=$("$NETFLASH_BUILD/tests/freeport")
HPORT=$("$NETFLASH_BUILD/tests/freeport")
img=$(test_image 16)
$NF --root "$R" init --interface lo --server-ip 127.0.0.1 --subnet 127.0.0.0/8 --port "$PORT" >"$T/init.out" 2>&1 &&
	$NF --root "$R" image add "$img.zst" --name pios >"$T/add.out" 2>&1 &&
	$NF --root "$R" boot-files import --from-image pios --initramfs "$I/usr/share/netflash/netflash-arm64.cpio.gz" \
		>"$T/bf.out" 2>&1 &&
	$NF --root "$R" enroll b8:27:eb:00:10:01 --image pios --hostname rack9-01 >"$T/enroll.out" 2>&1 &&
	pass "arm64 netflash: init, image add, boot-files import, enroll" ||
	fail "arm64 netflash: $(tail -2 "$T"/*.out)"
qemu-aarch64-static -L / "$I/usr/bin/netflashd" --root "$R" --listen "127.0.0.1:$PORT" --peer-check=off --http "127.0.0.1:$HPORT" \
	>"$T/daemon.log" 2>&1 &
register_pid $!
wait_for "$T/daemon.log" "listening on" 30 || fail "arm64 netflashd did not start: $(tail -3 "$T/daemon.log")"
tok=$(grep -o 'netflash.token=[0-9a-f]*' "$R/tftp/b8-27-eb-00-10-01/cmdline.txt" | cut -d= -f2)
exec {c}<>"/dev/tcp/127.0.0.1/$PORT"
printf 'HELLO v=1 mac=b8:27:eb:00:10:01 token=%s\n' "$tok" >&"$c"
read -r -t 20 job <&"$c" || true
exec {c}>&-
[[ $job == "JOB id=1 url=nfs://127.0.0.1"*"image=pios"* ]] && pass "arm64 netflashd answered the worker's HELLO with its JOB" ||
	fail "HELLO: '$job' $(tail -3 "$T/daemon.log")"
wait_until 20 curl -sf "http://127.0.0.1:$HPORT/api/workers" -o "$T/workers.json" &&
	has '"hostname":"rack9-01"' "$T/workers.json" && curl -sf "http://127.0.0.1:$HPORT/" | has "<title>netflash fleet" &&
	pass "arm64 netflashd serves the dashboard and the API" || fail "http: $(cat "$T/workers.json" 2>&1)"

# The armhf package (Raspberry Pi OS 32-bit): ARM programs whose library
# Depends are Debian 12's armhf packages, and that run.
hdeb=$(ls "$NETFLASH_BUILD"/netflash_*_armhf.deb 2>/dev/null | head -1 || true)
if [ -n "$hdeb" ] && command -v qemu-arm-static >/dev/null; then
	H=$T/armhf
	dpkg-deb -x "$hdeb" "$H"
	missing=
	for p in $(dpkg-deb -f "$hdeb" Depends | tr -d ' ' | tr ',' ' '); do
		case $p in dnsmasq-base | mtools | e2fsprogs | tzdata | xkb-data | locales) continue ;; esac
		dpkg-query -W -f='${Status}' "$p:armhf" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
	done
	[ "$(dpkg-deb -f "$hdeb" Architecture)" = armhf ] && readelf -h "$H/usr/bin/netflashd" | has "Machine: *ARM$" &&
		[ -z "$missing" ] && cmp -s "$H/usr/share/netflash/netflash-arm64.cpio.gz" "$I/usr/share/netflash/netflash-arm64.cpio.gz" &&
		qemu-arm-static -L / "$H/usr/bin/netflash" --version | has "^netflash " &&
		qemu-arm-static -L / "$H/usr/bin/netflashd" --help | has "^Usage: netflashd" &&
		pass "the armhf package: ARM programs that run, Debian 12 armhf Depends, the same Pi initramfs" ||
		fail "armhf package:$missing $(dpkg-deb -f "$hdeb" Depends)"
else
	echo "no armhf package or qemu-arm-static: its check skipped"
fi
finish
