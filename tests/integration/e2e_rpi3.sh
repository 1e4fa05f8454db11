#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End to end on a Raspberry Pi 3 in QEMU (raspi3b): Debian's arm64 kernel and
# bcm2837 device tree, our aarch64 initramfs; the card is QEMU's emulated SD
# card, so flasher-init writes the real /dev/mmcblk0 through the real SD host
# driver. USB networking is slow (~0.7 MB/s here), so the image is small.
# Needs the aarch64 worker build (scripts/test.sh makes build-aarch64);
# skipped (exit 77) without it or without an arm64 kernel.
source "$(dirname "$0")/../lib.sh"
source "$NETFLASH_SRC/tests/fixtures/kernel_arm64.sh"

AINIT=${NETFLASH_AARCH64_INIT:-$NETFLASH_SRC/build-aarch64/flasher-init/flasher-init}
if [ -n "${NETFLASH_SANITIZE_BUILD:-}" ]; then
	echo "SKIP: sanitizer builds do not run the QEMU workers"
	exit 77
fi
[ -x "$AINIT" ] || { echo "SKIP: no aarch64 flasher-init at $AINIT (scripts/test.sh builds it)"; exit 77; }
command -v qemu-system-aarch64 >/dev/null || { echo "SKIP: qemu-system-aarch64 missing"; exit 77; }
kernel_fetch_arm64 || { echo "SKIP: no Debian arm64 kernel could be downloaded"; exit 77; }

MODULES="bcm2835 sdhci sdhci-pltfm sdhci-iproc usb-common usbcore roles udc-core phy-generic dwc2 mii usbnet cdc_ether bcm2835_wdt"
"$NETFLASH_SRC/boot-files/build-initramfs.sh" --init "$AINIT" --modules-dir "$KERNEL_MODDIR" \
	--modules "$MODULES" -o "$T/netflash.cpio.gz" 2>"$T/initramfs.log"
echo "initramfs: $(cat "$T/initramfs.log")"
"$NETFLASH_SRC/images/build-test-image.sh" --size 12 "$T/small.img"
xz -T1 -6 -c "$T/small.img" >"$T/small.img.xz"
DAEMON_NFS_HOST=10.0.2.2
master_setup "$T/small.img.xz" small
daemon_start
MAC=b8:27:eb:12:34:56 D=b8-27-eb-12-34-56
"$NF" --root "$MR" enroll "$MAC" --image small >/dev/null
# raspi3b needs a power-of-two card; no PSCI: the flasher reboots through
# the bcm2835 watchdog, which -no-reboot turns into QEMU's exit.
pattern_file "$T/card.img" $((64 * 1048576))
# The card image is served through tests/fixtures/fakecard (no faults, no
# bus limit) only to count the bytes QEMU's SD card model reads and writes
# (QEMU keeps no block statistics for SD cards).
CARD=$T/card.img
if [ -x "$FAKECARD" ]; then
	fake_card_mount card $((64 * 1048576)) "$T/card.img" --stats "$T/card.stats"
	CARD=$FAKE_FILE
fi
t0=$SECONDS rc=0
timeout 600 qemu-system-aarch64 -M raspi3b -display none -monitor none -no-reboot -kernel "$KERNEL_IMAGE" \
	-dtb "$KERNEL_DTB" -initrd "$T/netflash.cpio.gz" \
	-append "console=ttyAMA0,115200 panic=-1 netflash.server=10.0.2.2:$MPORT netflash.token=$(token_of "$MAC") netflash.after=reboot netflash.fail_delay=0" \
	-drive "file=$CARD,if=sd,format=raw" -serial stdio -netdev user,id=n0 \
	-device "usb-net,netdev=n0,mac=$MAC" </dev/null >"$T/guest.log" 2>&1 || rc=$?
secs=$((SECONDS - t0))
[ "$CARD" = "$T/card.img" ] || fake_card_done card
[ $rc -eq 0 ] && grep -q 'netflash: rebooting' "$T/guest.log" && pass "the Pi 3 flashed /dev/mmcblk0 and rebooted by itself (${secs} s)" ||
	fail "guest: QEMU exit $rc; $(grep netflash "$T/guest.log" | tail -8)"
cmp -s -n "$(stat -c %s "$T/small.img")" "$T/small.img" "$T/card.img" && pass "the SD card equals the catalog image byte for byte" ||
	fail "card differs"
grep -q "$D job [0-9]* verified" "$T/daemon.log" && [ ! -e "$MR/tftp/$D" ] && pass "DONE verified, TFTP dir gone" ||
	fail "daemon: $(grep "$D" "$T/daemon.log")"
"$NF" --root "$MR" history "$D" >"$T/history"
grep -Eq "identity: .*card .*serial .*CID [0-9a-f]{32}" "$T/history" && grep -q "probe: capacity probe passed" "$T/history" &&
	pass "the card's identity (CID from sysfs) and the capacity probe's verdict reached the master" ||
	fail "card health in history: $(grep -A3 'card health' "$T/history")"
grep -A1 '^board' "$T/history" | grep -q "^  [0-9:]* Raspberry Pi 3 Model B$" &&
	pass "the worker named its board from the device tree (no serial-number without the Pi firmware)" ||
	fail "board in history: $(grep -A2 '^board' "$T/history")"
isz=$(stat -c %s "$T/small.img")
pattern_file "$T/rest" $((64 * 1048576 - isz))
cmp -s -i "$isz:0" "$T/card.img" "$T/rest" && pass "the card past the image is untouched by the probe" ||
	fail "the probe left marks on the card past the image"
# Zero runs on QEMU's SD card: the guest's mmc driver offers discard (the
# card's ERASE) and no write-zeroes (an SD card never has it in Linux 6.1,
# drivers/mmc/core/queue.c). QEMU's card model fills an erased range with
# 0xFF, so the flasher must see that on its first run and write the zeros.
# The bytes the card model wrote say which happened.
nonzero=$(nonzero_bytes "$T/small.img")
zero_note=$(tr -d '\r' <"$T/guest.log" | grep -o 'zero runs are .*' | head -1)
read -r wr rd er < <(sed 's/[a-z]*=//g' "$T/card.stats" 2>/dev/null || echo "0 0 0")
echo "MEASURE rpi3 card: QEMU's SD card wrote $wr bytes, read $rd (image $isz bytes, $nonzero in non-zero MiB blocks); $zero_note"
case "$zero_note" in
*"written: after discard the card read back 0xFF"*)
	[ "$wr" -ge "$isz" ] && pass "QEMU's SD card erases to 0xFF: the flasher saw it on its first run and wrote the zeros ($wr bytes written)" ||
		fail "zeros said written, but the card wrote $wr bytes of $isz" ;;
*"made with discard"*)
	[ "$wr" -lt "$isz" ] && pass "zero runs discarded: $wr bytes written of $isz" || fail "discard said, $wr bytes written" ;;
*) fail "the guest did not say how it made zero runs: '$zero_note'" ;;
esac
stamp() { grep -m1 "$2" "$1" | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p'; }
first=$(stamp "$T/guest.log" "writing /dev/mmcblk0") done=$(stamp "$T/guest.log" "wrote and verified")
echo "MEASURE rpi3: kernel start to first byte written ${first:-?} s; flash ${first:+$(echo "$done - $first" | bc)} s; whole run ${secs} s"
finish
