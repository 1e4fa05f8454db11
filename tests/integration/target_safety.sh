#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Refusals on real loop devices, each one line and exit 1, before anything
# is written: too small, mounted, a partition (unless --force), read-only.
# An image whose size is unknown up front (gzip) fails at the first byte past
# the end of the target, with its first MiB not written.
source "$(dirname "$0")/../lib.sh"

img=$(test_image 24)

# Too small, size known up front (raw, xz index): the card is unchanged.
pattern_file "$T/small.img" $((16 * 1048576))
loop_attach small "$T/small.img"
before=$(sha256sum <"$small")
expect_fail "too small (xz)" "the image does not fit: '$small' has 16777216 bytes, the image 25165824" \
	"$NFW" "$img.mt.xz" "$small" && [ "$(sha256sum <"$small")" = "$before" ] && pass "too small, xz: refused before writing"
# Size unknown up front (gzip): fails at the first byte past the end.
expect_fail "too small (gzip)" "the image does not fit: '$small' has 16777216 bytes and the image is larger" \
	"$NFW" "$img.gz" "$small" && head_not_written "too small gzip" "$small" "$img" && pass "too small, gzip: failed at the end, head not written"

# A disk whose partition is mounted; the partition itself; read-only.
cp "$img" "$T/disk.img"
truncate -s 48M "$T/disk.img"
loop_attach disk "$T/disk.img" --partscan
loop_partitions "$disk" "$T/disk.img"
[ -b "${disk}p1" ] || { fail "no partition device ${disk}p1"; finish; }
mkdir -p "$T/mnt"
mount -o ro "${disk}p2" "$T/mnt"
register_mount "$T/mnt"
before=$(sha256sum <"$disk")
expect_fail "mounted" "'$disk' is mounted \(at $T/mnt\); unmount it first" "$NFW" "$img.zst" "$disk" &&
	pass "mounted disk refused"
umount "$T/mnt"
expect_fail "partition" "'${disk}p1' is a partition, not a whole disk \(use --force" "$NFW" "$img.zst" "${disk}p1" &&
	pass "partition refused without --force"
[ "$(sha256sum <"$disk")" = "$before" ] && pass "refusals left the disk untouched" || fail "disk modified by a refusal"
random_disk "$T/tiny.img" $((2 * 1048576))
"$NFW" --force --progress=none -q "$T/tiny.img" "${disk}p1" && cmp -s -n $((2 * 1048576)) "$T/tiny.img" "${disk}p1" &&
	pass "--force writes a partition" || fail "--force on a partition failed"

pattern_file "$T/ro.img" $((32 * 1048576))
loop_attach ro "$T/ro.img" --read-only
expect_fail "read-only" "'$ro' is read-only" "$NFW" "$img.zst" "$ro" && pass "read-only device refused"

# Not a block device or file; a missing /dev path.
expect_fail "char device" "'/dev/null' is neither a block device nor a regular file" "$NFW" "$img.zst" /dev/null &&
	pass "character device refused"
expect_fail "no card" "'/dev/mmcblk9': no such device \(is a card inserted\?\)" "$NFW" "$img.zst" /dev/mmcblk9 &&
	pass "missing device named"
# The disk holding / (when / is on a block device).
rootdev=$(findmnt -n -o SOURCE / || true)
if [ -b "$rootdev" ]; then
	expect_fail "root disk" "holds the running root filesystem|is mounted" "$NFW" "$img.zst" "$rootdev" &&
		pass "root filesystem's device refused"
else
	echo "SKIP: / is not on a block device here ($rootdev)"
fi
# A new file as the target of an image smaller than the head (1 MiB): the
# head wipe does not grow it; it holds the image and nothing more.
head -c $((600 * 1024)) /dev/urandom >"$T/small.img"
echo 'start=64, type=83' | sfdisk -q --no-reread --no-tell-kernel "$T/small.img" >/dev/null
"$NFW" --progress=none --no-probe-capacity "$T/small.img" "$T/small.out" 2>"$T/small.log" &&
	[ "$(stat -c %s "$T/small.out")" = $((600 * 1024)) ] && cmp -s "$T/small.img" "$T/small.out" &&
	pass "a new file target of a 600 KiB image is that image, 600 KiB" ||
	fail "small image into a new file: $(stat -c %s "$T/small.out" 2>&1); $(cat "$T/small.log")"
finish
