#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End to end: a QEMU x86_64 worker (microvm, Debian's cloud kernel, our
# initramfs with flasher-init as PID 1) gets an address from QEMU's DHCP,
# asks netflashd on the host (10.0.2.2 = the host's 127.0.0.1) for its job,
# streams the image from ganesha over NFS onto its virtio disk (the card),
# verifies it, is released, and powers off by itself. Then the failure twin:
# a corrupt catalog image -> FAIL recorded, dir kept, first MiB unwritten.
# And a reimage that ends before anything is written (its image is gone):
# the flasher moves the firmware netflash-agent set aside back (vfat).
# Skipped (exit 77) when no kernel can be had.
source "$(dirname "$0")/../lib.sh"
source "$NETFLASH_SRC/tests/fixtures/kernel.sh"

if [ -n "${NETFLASH_SANITIZE_BUILD:-}" ]; then
	echo "SKIP: the initramfs needs the static flasher-init, which sanitizer builds do not make"
	exit 77
fi
if ! kernel_fetch_cloud_amd64; then
	echo "SKIP: no Debian cloud kernel could be downloaded"
	exit 77
fi
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 missing"; exit 77; }

MODULES="virtio_ring virtio virtio_mmio virtio_blk failover net_failover virtio_net fat vfat nls_cp437 nls_ascii nls_utf8"
"$NETFLASH_SRC/boot-files/build-initramfs.sh" --init "$NETFLASH_BUILD/flasher-init/flasher-init" \
	--modules-dir "$KERNEL_MODDIR" --modules "$MODULES" -o "$T/netflash.cpio.gz" 2>"$T/initramfs.log"
echo "initramfs: $(cat "$T/initramfs.log")"

img=$(test_image 24)
DAEMON_NFS_HOST=10.0.2.2
master_setup "$img.mt.xz" pios
daemon_start

boot() { # mac card log -> QEMU's exit status
	microvm_boot "$T/netflash.cpio.gz" "$1" "$2" "$3" \
		"netflash.server=10.0.2.2:$MPORT netflash.token=$(token_of "$1") netflash.target=/dev/vda netflash.after=poweroff netflash.fail_delay=0"
}
stamp() { grep -m1 "$2" "$1" | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p'; }

# The worker.
MAC=52:54:00:12:34:56 D=52-54-00-12-34-56
"$NF" --root "$MR" enroll "$MAC" --image pios >/dev/null
pattern_file "$T/card.img" $((64 * 1048576))
t0=$SECONDS
rc=$(boot "$MAC" "$T/card.img" "$T/guest.log")
secs=$((SECONDS - t0))
[ "$rc" = 0 ] && grep -q 'powering off' "$T/guest.log" && pass "the guest flashed and powered off by itself (QEMU exit 0, ${secs} s)" ||
	fail "guest: QEMU exit $rc; console: $(tail -15 "$T/guest.log")"
cmp -s -n "$(stat -c %s "$img")" "$img" "$T/card.img" && pass "the card equals the catalog image byte for byte" ||
	fail "card differs from the image"
grep -q "$D job [0-9]* verified" "$T/daemon.log" && "$NF" --root "$MR" history "$MAC" | has ' done ' &&
	pass "the daemon recorded DONE with the matching digest" || fail "daemon: $(grep "$D" "$T/daemon.log")"
[ ! -e "$MR/tftp/$D" ] && pass "the MAC's TFTP dir is gone" || fail "TFTP dir still there"
"$NF" --root "$MR" history "$MAC" >"$T/history.txt"
grep -q 'netflash: loaded 12 modules' "$T/history.txt" && grep -q 'netflash: wrote and verified' "$T/history.txt" &&
	pass "netflash history shows the worker's boot log" || fail "history: $(cat "$T/history.txt")"
first=$(stamp "$T/guest.log" "writing /dev/vda") done=$(stamp "$T/guest.log" "wrote and verified")
echo "MEASURE x86_64: kernel start to first byte written ${first:-?} s; flash ${first:+$(echo "$done - $first" | bc)} s; whole boot-to-poweroff ${secs} s"

# The failure twin: a corrupt image in the catalog.
MAC2=52:54:00:12:34:57 D2=52-54-00-12-34-57
stored=$(catalog_file pios)
cp "$stored" "$T/good.img"
corrupt_file "$stored"
"$NF" --root "$MR" enroll "$MAC2" --image pios >/dev/null
pattern_file "$T/card2.img" $((64 * 1048576))
rc=$(boot "$MAC2" "$T/card2.img" "$T/guest2.log")
cp "$T/good.img" "$stored"
[ "$rc" = 0 ] && grep -q 'FAILED (decode)' "$T/guest2.log" && grep -q 'rebooting' "$T/guest2.log" &&
	pass "corrupt image: the guest said why and rebooted by itself" || fail "twin: QEMU exit $rc; $(tail -8 "$T/guest2.log")"
"$NF" --root "$MR" history "$MAC2" | has 'failed .*decode' && [ -d "$MR/tftp/$D2" ] &&
	pass "corrupt image: FAIL recorded, dir kept" || fail "twin: $("$NF" --root "$MR" history "$MAC2")"
head_not_written "twin" "$T/card2.img" "$img" && pass "corrupt image: the card's first MiB was not written"

# A reimaged worker (firmware moved aside as netflash-agent does) whose job
# cannot start: the flasher puts the firmware back, so it boots its old system.
MAC3=52:54:00:12:34:58
cp "$img" "$T/card3.img"
read -r bstart bsectors < <(partx -g -n 1 -o START,SECTORS "$img")
dd if="$img" of="$T/p3" bs=512 skip="$bstart" count="$bsectors" status=none
export MTOOLS_SKIP_CHECK=1
mmd -i "$T/p3" ::/netflash-disabled && mmove -i "$T/p3" ::/bootcode.bin ::/start.elf ::/netflash-disabled/
dd if="$T/p3" of="$T/card3.img" bs=512 seek="$bstart" conv=notrunc status=none
"$NF" --root "$MR" image add "$img" --name gone >/dev/null
"$NF" --root "$MR" enroll "$MAC3" --image gone >/dev/null
"$NF" --root "$MR" image rm gone --force >/dev/null
rc=$(boot "$MAC3" "$T/card3.img" "$T/guest3.log")
dd if="$T/card3.img" of="$T/p3" bs=512 skip="$bstart" count="$bsectors" status=none
[ "$rc" = 0 ] && grep -q "moved 2 firmware file(s) back on /dev/vda1" "$T/guest3.log" &&
	mdir -b -i "$T/p3" ::/bootcode.bin >/dev/null 2>&1 && mdir -b -i "$T/p3" ::/start.elf >/dev/null 2>&1 &&
	! mdir -b -i "$T/p3" ::/netflash-disabled >/dev/null 2>&1 && fsck.fat -n "$T/p3" >/dev/null 2>&1 &&
	pass "reimage with no job: the flasher moved the firmware back (the worker boots its old system)" ||
	fail "restore: QEMU exit $rc; $(grep netflash "$T/guest3.log" | tail -8); $(mdir -i "$T/p3" ::/ 2>&1 | head -12)"
finish
