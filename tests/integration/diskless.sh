#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Diskless workers: netflash enroll MAC --nfsroot DIR. The TFTP dir must boot
# Pi OS itself (config.txt without the flasher's initramfs, no
# netflash.cpio.gz, cmdline.txt with root=/dev/nfs nfsroot=SERVER:DIR), and
# the generated ganesha export must really serve DIR read-write with root
# not squashed (checked with libnfs against ganesha running that config).
# Hostile and unusable --nfsroot values, switching a worker between diskless
# and flashing, release. Booting a real Pi OS over NFS is not done here.
source "$(dirname "$0")/../lib.sh"

img=$(test_image 24)
master_setup "$img.mt.xz" pios
M=b8:27:eb:00:03:01 D=b8-27-eb-00-03-01
R=$T/nfsroot/node1
mkdir -p "$R/sbin" "$R/etc" "$R/home/pi"
printf '#!/bin/sh\n' >"$R/sbin/init"
printf 'proc /proc proc defaults 0 0\nPARTUUID=4e639091-02 / ext4 defaults,noatime 0 1\n' >"$R/etc/fstab"

"$NF" --root "$MR" enroll "$M" --nfsroot "$R" >"$T/enroll.out" 2>"$T/enroll.err" &&
	grep -q "enrolled $D as a diskless worker: it boots Pi OS with its root on 127.0.0.1:$R over NFS" "$T/enroll.out" &&
	pass "enroll --nfsroot enrolls a diskless worker" || fail "enroll: $(cat "$T/enroll.out" "$T/enroll.err")"
grep -q "warning: $R/etc/fstab mounts / from PARTUUID=4e639091-02" "$T/enroll.err" &&
	pass "a root whose fstab mounts / from the card gets a warning naming it" || fail "fstab warning: $(cat "$T/enroll.err")"
cl=$(cat "$MR/tftp/$D/cmdline.txt")
[[ "$cl" == *"root=/dev/nfs nfsroot=127.0.0.1:$R,vers=3,tcp rw rootwait"* ]] && [[ "$cl" == *"ip=dhcp"* ]] &&
	[[ "$cl" != *netflash.* ]] && pass "cmdline.txt: root=/dev/nfs nfsroot=SERVER:DIR, ip=dhcp, no netflash words" ||
	fail "cmdline: $cl"
! grep -q netflash.cpio.gz "$MR/tftp/$D/config.txt" && [ ! -e "$MR/tftp/$D/netflash.cpio.gz" ] &&
	cmp -s "$MR/tftp/$D/config.txt" "$MR/boot/.config.txt.orig" &&
	[ "$(stat -c %i "$MR/tftp/$D/bootcode.bin")" = "$(stat -c %i "$MR/boot/bootcode.bin")" ] &&
	pass "config.txt is the imported original, no flasher initramfs; firmware hard-linked" ||
	fail "tftp dir: $(ls -la "$MR/tftp/$D"; cat "$MR/tftp/$D/config.txt")"
"$NF" --root "$MR" ls | has "^$(echo "$D" | tr - :) .*diskless" && pass "ls shows the worker as diskless" ||
	fail "ls: $("$NF" --root "$MR" ls)"
grep -qx "$R 127.0.0.0/8(rw,sync,no_root_squash,no_subtree_check,insecure)" "$MR/etc/netflash-nfsroot.exports" &&
	pass "netflash-nfsroot.exports has the worker's root, read-write, for the subnet" ||
	fail "exports: $(cat "$MR/etc/netflash-nfsroot.exports")"

# ganesha with the generated config serves the root read-write, root unsquashed.
ganesha_stop
GANESHA_EXTRA_CONF=$MR/etc/ganesha-nfsroot.conf
_ganesha_write_conf
ganesha_restart || fail "ganesha did not start with ganesha-nfsroot.conf: $(tail -5 "$GANESHA_DIR/ganesha.log")"
U="nfs://127.0.0.1$R/?$GANESHA_URL_ARGS"
echo "written over NFS" >"$T/hello"
nfs-ls "$U" 2>&1 | has 'sbin' &&
	nfs-cp "$T/hello" "nfs://127.0.0.1$R/home/pi/hello?$GANESHA_URL_ARGS" >/dev/null 2>&1 &&
	cmp -s "$T/hello" "$R/home/pi/hello" && [ "$(stat -c %u "$R/home/pi/hello")" = 0 ] &&
	pass "ganesha with ganesha-nfsroot.conf serves the root read-write (a file written as root stays root's)" ||
	fail "nfs: $(nfs-ls "$U" 2>&1 | head -3); $(ls -ln "$R/home/pi")"

grep -q "Access_Type = None;" "$MR/etc/ganesha-nfsroot.conf" &&
	grep -q "CLIENT { Clients = 127.0.0.0/8; Access_Type = RW; }" "$MR/etc/ganesha-nfsroot.conf" &&
	pass "ganesha-nfsroot.conf gives the root to the workers' subnet only" ||
	fail "ganesha export: $(cat "$MR/etc/ganesha-nfsroot.conf")"
# A master without a subnet never exports a root read-write to everyone.
NS=$T/nosubnet
"$NF" --root "$NS" init --interface lo --server-ip 127.0.0.1 --broadcast 127.255.255.255 >/dev/null
rc=0; "$NF" --root "$NS" enroll b8:27:eb:00:03:09 --nfsroot "$R" 2>"$T/err" || rc=$?
[ $rc = 2 ] && has "needs the workers' subnet" "$T/err" && [ ! -e "$NS/etc/netflash-nfsroot.exports" ] &&
	pass "enroll --nfsroot without a subnet is refused, nothing exported" || fail "no subnet: rc=$rc $(cat "$T/err")"

# Unusable and hostile values: one-line errors, nothing enrolled.
M2=b8:27:eb:00:03:02 D2=b8-27-eb-00-03-02
bad() { # name exit-status regex args...
	local name=$1 want=$2 re=$3 rc=0
	shift 3
	"$NF" --root "$MR" enroll "$M2" "$@" >/dev/null 2>"$T/err" || rc=$?
	if [ "$rc" = "$want" ] && grep -Eq -- "$re" "$T/err" && [ "$(grep -c 'error:' "$T/err")" = 1 ] && [ ! -e "$MR/tftp/$D2" ]; then
		return 0
	fi
	fail "$name: exit $rc (want $want): $(cat "$T/err")"
	return 1
}
n=0
bad relative 2 "must be an absolute path" --nfsroot nfsroot/node1 && n=$((n + 1))
bad blank 2 "may only hold" --nfsroot "$T/nfs root" && n=$((n + 1))
bad comma 2 "may only hold" --nfsroot "$R,rw" && n=$((n + 1))
bad quote 2 "may only hold" --nfsroot "$R'x" && n=$((n + 1))
bad dotdot 2 "normalised path" --nfsroot "$R/../node1" && n=$((n + 1))
bad trailing-slash 2 "normalised path" --nfsroot "$R/" && n=$((n + 1))
bad missing 1 "is not a directory" --nfsroot "$T/nfsroot/none" && n=$((n + 1))
mkdir -p "$T/nfsroot/empty"
bad no-init 1 "does not look like a root filesystem" --nfsroot "$T/nfsroot/empty" && n=$((n + 1))
bad with-image 2 "one of --image NAME or --nfsroot DIR" --nfsroot "$R" --image pios && n=$((n + 1))
bad with-hostname 2 "does not go with provisioning options" --nfsroot "$R" --hostname node2 && n=$((n + 1))
bad with-wifi 2 "does not go with provisioning options" --nfsroot "$R" --wifi-ssid lab --wifi-country GB && n=$((n + 1))
[ "$n" = 11 ] && pass "11 unusable or hostile --nfsroot uses are refused with one line, nothing enrolled"

# Already diskless: --force needed; then switching to the flasher drops the export.
rc=0
"$NF" --root "$MR" enroll "$M" --image pios >/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q "already enrolled (diskless); use --force" "$T/err" &&
	pass "a diskless worker is not turned into a flashing one without --force" || fail "no force: $rc $(cat "$T/err")"
"$NF" --root "$MR" enroll "$M" --image pios --force >/dev/null &&
	grep -q "netflash.token=" "$MR/tftp/$D/cmdline.txt" && ! grep -q "$R" "$MR/etc/netflash-nfsroot.exports" &&
	! grep -q "$R" "$MR/etc/ganesha-nfsroot.conf" && ! cmp -s "$MR/tftp/$D/config.txt" "$MR/boot/.config.txt.orig" &&
	pass "enroll --image --force makes it a flashing worker again and drops its export" ||
	fail "switch: $(cat "$MR/tftp/$D/cmdline.txt"; cat "$MR/etc/netflash-nfsroot.exports")"
# A re-enroll that fails (the boot files hold a symlink, which a TFTP dir
# never takes) leaves the old enrollment whole: its dir, token and export.
"$NF" --root "$MR" enroll "$M" --nfsroot "$R" --force >/dev/null 2>&1
cl_before=$(cat "$MR/tftp/$D/cmdline.txt") exp_before=$(cat "$MR/etc/netflash-nfsroot.exports")
R2=$T/nfsroot/node2
mkdir -p "$R2/sbin" && printf '#!/bin/sh\n' >"$R2/sbin/init"
ln -s /etc/passwd "$MR/boot/evil"
for new in "--nfsroot $R2" "--image pios"; do
	rc=0
	# shellcheck disable=SC2086
	"$NF" --root "$MR" enroll "$M" $new --force >/dev/null 2>"$T/err" || rc=$?
	[ "$rc" = 1 ] && grep -q "cannot enroll $D: .*evil" "$T/err" &&
		[ "$(cat "$MR/tftp/$D/cmdline.txt")" = "$cl_before" ] &&
		[ "$(cat "$MR/etc/netflash-nfsroot.exports")" = "$exp_before" ] && grep -q "$R;" "$MR/etc/ganesha-nfsroot.conf" &&
		! grep -q "$R2" "$MR/etc/ganesha-nfsroot.conf" && "$NF" --root "$MR" ls | has "^$(echo "$D" | tr - :) .*diskless" &&
		pass "a failed re-enroll ($new) keeps the diskless worker's dir, cmdline and export" ||
		fail "failed re-enroll ($new): exit $rc $(cat "$T/err"); $(cat "$MR/etc/netflash-nfsroot.exports")"
done
rm "$MR/boot/evil"
"$NF" --root "$MR" enroll "$M" --nfsroot "$R" --force >/dev/null 2>&1 && "$NF" --root "$MR" release "$M" >/dev/null &&
	[ ! -e "$MR/tftp/$D" ] && ! grep -q "$R" "$MR/etc/netflash-nfsroot.exports" && [ -e "$R/home/pi/hello" ] &&
	pass "release ends a diskless worker: TFTP dir and export gone, its root's files kept" ||
	fail "release: $(ls "$MR/tftp"); $(cat "$MR/etc/netflash-nfsroot.exports")"
finish
