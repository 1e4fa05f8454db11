#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Remote reimage: `netflash reimage HOST` with netflash-agent against a loop
# device holding a Pi-OS-like image whose FAT boot partition is mounted with
# fusefat (this kernel has no vfat). The agent checks the enrollment with
# the real netflashd, moves the firmware aside (checked on the raw partition
# with mtools and fsck.fat), restores it, and refuses when it should; then
# the "netbooted" worker flashes the card. The ssh hop is replaced by a
# script that runs the agent here (it always adds --no-reboot).
source "$(dirname "$0")/../lib.sh"

command -v fusefat >/dev/null || { echo "SKIP: fusefat not installed"; exit 77; }
NFA="$NETFLASH_BUILD/flasher-init/netflash-agent"
img=$(test_image 24)
mt() { MTOOLS_SKIP_CHECK=1 "$@"; }

master_setup "$img.mt.xz" pios
daemon_start
M1=b8:27:eb:00:02:01 D1=b8-27-eb-00-02-01

cp "$img" "$T/card"
truncate -s 32M "$T/card"
loop_attach CARD "$T/card"
loop_partitions "$CARD" "$T/card"
mkdir -p "$T/boot"
mount_boot() {
	fusefat -f -o rw+ "${CARD}p1" "$T/boot" 2>>"$T/fusefat.log" &
	FUSE_PID=$!
	register_pid $FUSE_PID
	register_mount "$T/boot"
	for _ in $(seq 1 50); do mountpoint -q "$T/boot" && return 0; sleep 0.1; done
	fail "fusefat did not mount ${CARD}p1"
}
umount_boot() {
	sync
	fusermount -u "$T/boot"
	wait "$FUSE_PID" 2>/dev/null || true
}
# What the Pi's boot ROM sees: the raw partition, read with mtools.
root_has() { mt mdir -b -i "${CARD}p1" "::/$1" >/dev/null 2>&1; }

cat >"$T/rsh" <<EOF
#!/bin/sh
# stands in for ssh: \$1 is the host; the rest runs here, never rebooting
echo "\$1" >>"$T/rsh.hosts"
echo "\$@" >>"$T/rsh.argv"
shift
agent=\$1; shift
exec "$NFA" "\$@" --boot "$T/boot" --mac "$M1" --no-reboot
EOF
chmod +x "$T/rsh"

# 1. reimage HOST: MAC from the agent, enroll, check, disable.
mount_boot
"$NF" --root "$MR" reimage pi-07.lab --image pios --hostname node7 --rsh "$T/rsh" >"$T/r1.out" 2>&1 ||
	fail "reimage: $(cat "$T/r1.out")"
grep -q "pi-07.lab ($D1): its card no longer boots" "$T/r1.out" && [ -d "$MR/tftp/$D1" ] &&
	[ "$(sort -u "$T/rsh.hosts")" = pi-07.lab ] &&
	pass "reimage HOST asks the agent for the MAC, enrolls it and has the card disabled" || fail "reimage: $(cat "$T/r1.out")"
grep -q "is enrolled for image 'pios'" "$T/r1.out" && pass "the agent checked the enrollment with netflashd first" ||
	fail "agent output: $(cat "$T/r1.out")"
! grep -q "$(token_of "$M1")" "$T/rsh.argv" && grep -q -- "--token-file -" "$T/rsh.argv" &&
	pass "the token reaches the agent on stdin, in no command line (ps)" || fail "argv: $(cat "$T/rsh.argv")"
"$NFA" status --boot "$T/boot" | has "not bootable (3 firmware file(s) in netflash-disabled/)" &&
	pass "agent status: not bootable" || fail "status: $("$NFA" status --boot "$T/boot")"
umount_boot
! root_has bootcode.bin && ! root_has start.elf && ! root_has kernel8.img && root_has config.txt &&
	mt mdir -b -i "${CARD}p1" ::/netflash-disabled/bootcode.bin >/dev/null &&
	mt mdir -b -i "${CARD}p1" ::/netflash-disabled/kernel8.img >/dev/null &&
	mt mtype -i "${CARD}p1" ::/netflash-disabled/README.txt 2>/dev/null | has "netflash reimage to image 'pios'" &&
	pass "on the raw partition: no firmware and no kernel in the root (a Pi 3, 4 or 5 netboots), they are in netflash-disabled/" ||
	fail "partition: $(mt mdir -i "${CARD}p1" ::/ 2>&1)"
fsck.fat -n "${CARD}p1" >"$T/fsck" 2>&1 && pass "the boot partition stays a clean FAT" || fail "fsck: $(cat "$T/fsck")"

# 2. restore: the card boots again, byte-identical firmware.
mount_boot
"$NFA" restore --boot "$T/boot" >"$T/restore.out" 2>&1 && grep -q "moved 3 firmware file(s) back" "$T/restore.out" &&
	pass "agent restore moves the firmware back" || fail "restore: $(cat "$T/restore.out")"
umount_boot
mt mcopy -n -i "${CARD}p1" ::/bootcode.bin "$T/bc.got" 2>/dev/null
read -r bstart bsectors < <(partx -g -n 1 -o START,SECTORS "$img")
dd if="$img" of="$T/orig.p1" bs=512 skip="$bstart" count="$bsectors" status=none
mt mcopy -n -i "$T/orig.p1" ::/bootcode.bin "$T/bc.want"
root_has bootcode.bin && root_has start.elf && ! mt mdir -b -i "${CARD}p1" ::/netflash-disabled >/dev/null 2>&1 &&
	cmp -s "$T/bc.got" "$T/bc.want" && pass "restored: the firmware is back in the root, unchanged; the directory is gone" ||
	fail "after restore: $(mt mdir -i "${CARD}p1" ::/ 2>&1)"

# 3. The agent leaves the card alone when the master says no.
mount_boot
expect_fail "wrong token" "refused .*the card is left as it was" \
	"$NFA" reimage --master "127.0.0.1:$MPORT" --token 0123456789abcdef0123456789abcdef --mac "$M1" --boot "$T/boot" --no-reboot &&
	pass "a wrong token: refused, nothing moved"
tok=$(token_of "$M1")
"$NF" --root "$MR" release "$M1" >/dev/null
expect_fail "released" "no job for $D1 \(released\)" \
	"$NFA" reimage --master "127.0.0.1:$MPORT" --token-file <(echo "$tok") --mac "$M1" --boot "$T/boot" --no-reboot &&
	pass "a released worker: the agent does nothing"
port=$("$NETFLASH_BUILD/tests/freeport")
expect_fail "no master" "cannot reach the master" \
	"$NFA" reimage --master "127.0.0.1:$port" --token abc --mac "$M1" --boot "$T/boot" --no-reboot &&
	pass "no master listening: the agent does nothing"
expect_fail "not a mount point" "is not a mount point" \
	"$NFA" reimage --master "127.0.0.1:$MPORT" --token abc --mac "$M1" --boot "$T" --no-reboot &&
	pass "a boot dir that is not a mount point is refused"
"$NFA" status --boot "$T/boot" | has ": bootable" && pass "after all refusals the card is still bootable" ||
	fail "status: $("$NFA" status --boot "$T/boot")"
# A fake master (no proof of the token) cannot make the agent disable a card.
fport=$("$NETFLASH_BUILD/tests/freeport")
python3 - "$fport" <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4); s.settimeout(20)
for answer in (b"ENROLLED image=pios\n", b"CHALLENGE snonce=" + b"ab" * 16 + b" proof=" + b"00" * 32 + b"\n"):
    c, _ = s.accept(); c.recv(1024); c.sendall(answer); c.close()
PY
register_pid $!
wait_listen "$fport" || fail "the fake master did not start"
for what in "an unproven ENROLLED" "a CHALLENGE with a wrong proof"; do
	expect_fail "fake master: $what" "did not prove it holds the token .*the card is left as it was" \
		"$NFA" reimage --master "127.0.0.1:$fport" --token-file <(echo 0123456789abcdef0123456789abcdef) --mac "$M1" \
		--boot "$T/boot" --no-reboot && pass "a fake master's $what: the agent refuses, nothing moved"
done
expect_rc_2() { local rc=0; "$@" >/dev/null 2>"$T/err.log" || rc=$?; [ $rc = 2 ]; }
expect_rc_2 "$NF" --root "$MR" reimage --image pios --rsh "$T/rsh" -- '-oProxyCommand=touch /tmp/pwned' &&
	grep -q "invalid HOST or MAC" "$T/err.log" && pass "a HOST that looks like an ssh option is refused" ||
	fail "hostile host: $(cat "$T/err.log")"

# The agent built for 32-bit Pi OS (armhf, the test command's build-armhf),
# under qemu-arm-static: the same checks, disabling and restoring.
AA=$NETFLASH_SRC/build-armhf/flasher-init/netflash-agent
if [ -x "$AA" ] && command -v qemu-arm-static >/dev/null; then
	"$NF" --root "$MR" enroll "$M1" --image pios >/dev/null
	qemu-arm-static "$AA" reimage --master "127.0.0.1:$MPORT" --token "$(token_of "$M1")" --mac "$M1" --boot "$T/boot" \
		--no-reboot >"$T/arm.out" 2>&1 &&
		qemu-arm-static "$AA" status --boot "$T/boot" | has "not bootable (3 firmware file(s) in netflash-disabled/)" &&
		qemu-arm-static "$AA" restore --boot "$T/boot" >>"$T/arm.out" 2>&1 &&
		qemu-arm-static "$AA" status --boot "$T/boot" | has ": bootable" &&
		pass "the armhf agent (32-bit Pi OS) checks the enrollment, disables the card and restores it" ||
		fail "armhf agent: $(cat "$T/arm.out")"
	"$NF" --root "$MR" release "$M1" >/dev/null
else
	echo "(no armhf agent in $NETFLASH_SRC/build-armhf or no qemu-arm-static: its check is left out)"
fi

# The .deb (scripts/package-agent.sh): installed into a scratch dpkg root,
# its agent (static) runs the printed command below.
if [ -z "${NETFLASH_SANITIZE_BUILD:-}" ]; then
	DR=$T/dpkgroot
	mkdir -p "$DR/var/lib/dpkg/info" "$DR/var/lib/dpkg/updates"
	touch "$DR/var/lib/dpkg/status"
	deb=$("$NETFLASH_SRC/scripts/package-agent.sh" -o "$T" "$NETFLASH_BUILD") &&
		dpkg --root="$DR" --force-script-chrootless -i "$deb" >"$T/dpkg.log" 2>&1 &&
		[ "$(dpkg-deb -f "$deb" Architecture)" = "$(dpkg --print-architecture)" ] && [ -z "$(dpkg-deb -f "$deb" Depends)" ] &&
		! readelf -l "$DR/usr/sbin/netflash-agent" | has 'program interpreter' &&
		pass "package-agent.sh makes a .deb (no dependencies, a static /usr/sbin/netflash-agent) that dpkg installs" ||
		fail "deb: $deb $(cat "$T/dpkg.log" 2>/dev/null)"
	[ -x "$DR/usr/sbin/netflash-agent" ] && NFA=$DR/usr/sbin/netflash-agent
fi

# 4. reimage MAC: enrolls and prints the agent command; with it the card is
# disabled (by the agent the .deb installed); then the worker netboots and
# the flasher writes the image.
# (The worker's enrollment had hostname node7; the armhf part above, when it
# runs, enrolled it again without one: give it back, released.)
"$NF" --root "$MR" enroll "$M1" --image pios --hostname node7 --force >/dev/null &&
	"$NF" --root "$MR" release "$M1" >/dev/null
"$NF" --root "$MR" reimage "$M1" --image pios >"$T/r2.out" 2>&1 || fail "reimage MAC: $(cat "$T/r2.out")"
cmd=$(grep -E "^  printf '%s.n' [0-9a-f]{32} \| netflash-agent reimage --master [0-9.:]+ --token-file -$" "$T/r2.out" | sed 's/^ *//' || true)
[ -n "$cmd" ] && pass "reimage MAC prints the agent command (token piped in)" || fail "reimage MAC: $(cat "$T/r2.out")"
has "$M1 keeps its hostname node7 (--hostname sets another)" "$T/r2.out" &&
	"$NF" --root "$MR" ls | has "^$M1  node7 " &&
	pass "reimage without --hostname keeps the worker's hostname" || fail "hostname: $(cat "$T/r2.out"; "$NF" --root "$MR" ls)"
bash -c "${cmd/netflash-agent/$NFA} --mac $M1 --boot $T/boot --no-reboot" >"$T/a2.out" 2>&1 &&
	pass "the printed command disables the card" || fail "agent: $(cat "$T/a2.out")"
umount_boot
loop_detach "$CARD"
loop_attach CARD "$T/card"
# The card is the image but for its boot partition, where the kept
# hostname was provisioned (firstrun.sh).
read -r p1_start p1_sectors < <(partx -g -n 1 -o START,SECTORS "$img")
p1_off=$((p1_start * 512)) p1_end=$(((p1_start + p1_sectors) * 512))
report "$M1" "$CARD" 2>"$T/w.log" && cmp -s -n "$p1_off" "$img" "$CARD" &&
	cmp -s -i "$p1_end" -n $(($(stat -c %s "$img") - p1_end)) "$img" "$CARD" &&
	MTOOLS_SKIP_CHECK=1 mtype -i "$CARD@@$p1_off" ::/firstrun.sh 2>/dev/null | grep -qx 'NEW_HOSTNAME=node7' &&
	pass "the netbooted worker flashes the new image, with its kept hostname, and is released" || fail "flash: $(cat "$T/w.log")"
finish
