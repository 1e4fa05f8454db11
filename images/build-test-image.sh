#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds a Raspberry-Pi-OS-like disk image for tests and benchmarks, without
# root or loop mounts: an MBR with a FAT boot partition (firmware-like files,
# config.txt, cmdline.txt) at 4 MiB, an ext4 root partition filled with real
# files from this machine (mkfs.ext4 -d) to about --fill percent, and a zero
# tail after the root partition, as a shrunk Pi OS image has.
#
# usage: build-test-image.sh [--size MIB] [--fill PERCENT] [--compress] OUT.img
#   --compress  also write OUT.img.xz (single block), OUT.img.mt.xz (xz -T2,
#               8 MiB blocks), OUT.img.gz (two gzip members) and OUT.img.zst
set -euo pipefail

size_mib=16 fill=67 compress=0
usage() { awk 'NR > 1 && /^# SPDX/ { next } NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--size) size_mib=$2; shift 2 ;;
	--fill) fill=$2; shift 2 ;;
	--compress) compress=1; shift ;;
	-h|--help) usage 0 ;;
	-*) echo "build-test-image: unknown option '$1'" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || usage
out=$1
case "$size_mib" in ''|*[!0-9]*) echo "build-test-image: --size must be a number of MiB" >&2; exit 2 ;; esac
[ "$size_mib" -ge 8 ] || { echo "build-test-image: --size must be at least 8 (MiB)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/netflash-img.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Layout in MiB: boot from 4, a quarter of the rest (16..256), root after it,
# and about 10 % zero tail.
boot_start=4
boot_size=$(( (size_mib - 4) / 4 )); [ $boot_size -lt 2 ] && boot_size=2
[ $boot_size -gt 256 ] && boot_size=256
tail_size=$(( size_mib / 10 )); [ $tail_size -lt 1 ] && tail_size=1
root_start=$(( boot_start + boot_size ))
root_size=$(( size_mib - root_start - tail_size ))
[ $root_size -ge 2 ] || { echo "build-test-image: image too small for the layout" >&2; exit 2; }

# Boot partition: FAT with firmware-like files (random bytes stand in for the
# non-free blobs) and the config files our tools read and write.
mkfs.fat -C -n BOOTFS "$work/boot.part" $(( boot_size * 1024 )) >/dev/null
mkdir -p "$work/bootfiles"
head -c 52456 /dev/urandom >"$work/bootfiles/bootcode.bin"
head -c $(( boot_size > 8 ? 2200000 : 300000 )) /dev/urandom >"$work/bootfiles/start.elf"
head -c 7300 /dev/urandom >"$work/bootfiles/fixup.dat"
head -c 31000 /dev/urandom >"$work/bootfiles/bcm2710-rpi-3-b.dtb"
head -c $(( boot_size > 8 ? 6000000 : 400000 )) /usr/bin/cmake >"$work/bootfiles/kernel8.img" 2>/dev/null ||
	head -c 400000 /dev/urandom >"$work/bootfiles/kernel8.img"
printf 'arm_64bit=1\nenable_uart=1\ndtoverlay=vc4-kms-v3d\n' >"$work/bootfiles/config.txt"
printf 'console=serial0,115200 console=tty1 root=PARTUUID=deadbeef-02 rootfstype=ext4 fsck.repair=yes rootwait\n' \
	>"$work/bootfiles/cmdline.txt"
MTOOLS_SKIP_CHECK=1 mcopy -i "$work/boot.part" "$work/bootfiles"/* ::/

# Root partition: real files (compressible like an OS) up to the fill level.
mkdir -p "$work/root/usr" "$work/root/etc" "$work/root/home/pi"
budget=$(( root_size * 1024 * 1024 * fill / 100 ))
find /usr/share /usr/lib /usr/bin -xdev -type f -size -4M -readable -printf '%s %p\n' 2>/dev/null |
	LC_ALL=C sort -k2 >"$work/candidates" || true
awk -v b="$budget" '{ t += $1 + 4096; if (t > b) exit; print $2 }' "$work/candidates" >"$work/files"
tar -cf - -T "$work/files" 2>/dev/null | tar -xf - -C "$work/root/usr" 2>/dev/null || true
echo "raspberrypi" >"$work/root/etc/hostname"
mkfs.ext4 -q -F -L rootfs -E root_owner=0:0 -d "$work/root" "$work/root.part" "${root_size}M" >/dev/null

# Assemble: sparse image, MBR (type c = FAT32 LBA, 83 = Linux), partitions.
rm -f "$out"
truncate -s "${size_mib}M" "$out"
printf 'label: dos\nlabel-id: 0xdeadbeef\nstart=%sMiB, size=%sMiB, type=c\nstart=%sMiB, size=%sMiB, type=83\n' \
	"$boot_start" "$boot_size" "$root_start" "$root_size" | sfdisk -q "$out" >/dev/null
dd if="$work/boot.part" of="$out" bs=1M seek="$boot_start" conv=notrunc,sparse status=none
dd if="$work/root.part" of="$out" bs=1M seek="$root_start" conv=notrunc,sparse status=none

if [ "$compress" = 1 ]; then
	xz -T1 -6 -c "$out" >"$out.xz"
	xz -T2 -6 --block-size=8MiB -c "$out" >"$out.mt.xz"
	half=$(( size_mib / 2 ))
	{ head -c "${half}M" "$out" | gzip -6; tail -c +$(( half * 1048576 + 1 )) "$out" | gzip -6; } >"$out.gz"
	zstd -q -3 -f -o "$out.zst" "$out"
fi
