#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Image intake: the files users really have, made here by the real tools
# (pzstd, tar, gzip, bzip2, zip, 7z, lz4, lzip, compress, sfdisk, mkfs.vfat),
# through netflash-write and netflash image add. Nothing reaches a card
# unless it is a stream decoded completely or a raw disk image; a refusal
# leaves the card's first MiB and the catalog untouched.
source "$(dirname "$0")/../lib.sh"

NF="$NETFLASH_BUILD/master-tools/netflash"
img=$(test_image 16)
want=$(sha256sum "$img" | cut -d' ' -f1)
R=$T/root
"$NF" --root "$R" init --interface lo --subnet 192.168.50.0/24 --server-ip 192.168.50.2 >/dev/null
cd "$T"
cp "$img" x.img

# ---- the inputs --------------------------------------------------------------
pzstd -q x.img -o x.img.zst
# two more skippable frames (magic 0x184D2A5?, 32-bit length) before pzstd's
{ printf '\x5f\x2a\x4d\x18\x03\x00\x00\x00abc\x50\x2a\x4d\x18\x00\x00\x00\x00'; cat x.img.zst; } >skip.img.zst
gzip -c x.img >m7.img.gz
printf '\x07' | dd of=m7.img.gz bs=1 seek=2 conv=notrunc status=none
printf '\x1f\x8b' >short.img.gz
compress -c x.img >x.img.Z
{ printf '\x1f\x1e\x00\x00\x10\x00'; head -c 4000 x.img; } >x.img.z   # pack's magic: no pack tool in Debian
tar czf x.img.tar.gz x.img
tar cJf x.img.tar.xz x.img
tar --zstd -cf x.img.tar.zst x.img
bzip2 -c x.img | xz -c >x.img.bz2.xz
xz -c x.img >damaged.img.xz
printf '\x01' | dd of=damaged.img.xz bs=1 seek=5 conv=notrunc status=none
printf '<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>\n' >raspios.img.xz
printf 'hello\n' >six.img
zip -q x.zip x.img
7z a -bd -bso0 x.7z x.img
bzip2 -kc x.img >x.img.bz2
lz4 -q x.img x.img.lz4
lz4 -q -l x.img legacy.img.lz4
lzip -c x.img >x.img.lz
xz --format=lzma -c x.img >x.img.lzma
cp x.img y.img
zip -q two.zip x.img y.img
{ cat "$img.gz"; head -c 3000 /dev/zero; } >padded.img.gz            # OpenWrt's NUL padding
{ cat "$img.gz"; printf '{"metadata_version":"1.1"}'; } >meta.img.gz  # OpenWrt's metadata
cp "$img.xz" gz-named.img.gz
# a GPT disk, a bare FAT filesystem, an image that is not whole sectors
truncate -s 8M gpt.img
printf 'label: gpt\nstart=2048, size=8192, type=L\n' | sfdisk -q gpt.img
truncate -s 8M fat.img
mkfs.vfat -F 32 fat.img >/dev/null 2>&1 || mkfs.vfat fat.img >/dev/null
{ cat x.img; head -c 100 /dev/urandom; } >odd.img

card_file() { pattern_file "$T/card" $((32 * 1048576)); }
untouched=$(pattern_file "$T/pat" 1048576 && first_mib "$T/pat")
catalog() { ls -A "$R/images" | sort | tr '\n' ' '; }

# write_ok NAME FILE: netflash-write puts exactly the image on the card
write_ok() {
	card_file
	if "$NFW" -q "$2" "$T/card" 2>"$T/err.log" && cmp -s -n "$(stat -c %s "$3")" "$3" "$T/card"; then
		pass "netflash-write: $1"
	else
		fail "netflash-write: $1: $(cat "$T/err.log")"
	fi
}
# write_refused NAME REGEX FILE [OPTS]: one error line, card's first MiB untouched
write_refused() {
	local name=$1 re=$2 file=$3; shift 3
	card_file
	expect_fail "netflash-write refuses $name" "$re" "$NFW" "$@" "$file" "$T/card" || return 0
	[ "$(first_mib "$T/card")" = "$untouched" ] && pass "netflash-write refuses $name, card untouched" ||
		fail "netflash-write refuses $name but wrote the card"
}
# add_ok NAME FILE FORMAT [FROM]: cataloged with the decoded image's digest
add_ok() {
	local n=a$((++adds))
	if "$NF" --root "$R" image add "$2" --name "$n" "${@:5}" >"$T/add.out" 2>"$T/err.log" &&
		grep -qx "sha256=$want" "$R/images/$n.manifest" && grep -qx "format=$3" "$R/images/$n.manifest" &&
		[ "$(sed -n 's/^origin=//p' "$R/images/$n.manifest")" = "${4:-}" ]; then
		pass "image add: $1 ($(cut -c1-90 "$T/add.out"))"
	else
		fail "image add: $1: $(cat "$T/err.log" "$T/add.out"; cat "$R/images/$n.manifest" 2>/dev/null)"
	fi
}
# add_refused NAME REGEX FILE [OPTS]: one error line, catalog unchanged
add_refused() {
	local name=$1 re=$2 file=$3 before; shift 3
	before=$(catalog)
	expect_fail "image add refuses $name" "$re" "$NF" --root "$R" image add "$file" --name refused "$@" || return 0
	[ "$(catalog)" = "$before" ] && pass "image add refuses $name, catalog unchanged" ||
		fail "image add refuses $name but the catalog changed: $(catalog)"
}
adds=0

# ---- zstd with skippable frames: decoded --------------------------------------
[ "$(head -c 4 x.img.zst | od -An -tx1 | tr -d ' ')" = 502a4d18 ] || fail "pzstd no longer starts with a skippable frame"
write_ok "pzstd (a skippable frame first)" x.img.zst x.img
write_ok "three skippable frames before the zstd frame" skip.img.zst x.img
add_ok "pzstd" x.img.zst zstd
add_ok "skippable frames" skip.img.zst zstd

# ---- every gzip magic, .Z, pack ------------------------------------------------
write_refused "gzip method 7" "'.*m7.img.gz' is gzip data with unknown gzip method 7" m7.img.gz
add_refused "gzip method 7" "unknown gzip method 7" m7.img.gz
write_refused "two bytes 1f 8b" "gzip header cut short \(2 bytes; truncated\)" short.img.gz
add_refused "two bytes 1f 8b" "gzip header cut short \(2 bytes; truncated\)" short.img.gz
write_refused "compress .Z" "is compress \(.Z\) data: netflash-write takes raw, gzip, xz and zstd images; netflash image add converts it" x.img.Z
add_ok ".Z" x.img.Z zstd compress
write_refused "pack" "is pack \(.z\) data, which netflash cannot decode" x.img.z
add_refused "pack" "is pack \(.z\) data, which netflash cannot decode" x.img.z

# ---- tar-wrapped images: the member ------------------------------------------
for c in gz:gzip xz:xz zst:zstd; do
	write_refused "tar.${c%%:*}" "is ${c#*:} data holding a tar archive: netflash image add extracts its image" "x.img.tar.${c%%:*}"
	add_ok "tar.${c%%:*}" "x.img.tar.${c%%:*}" zstd "tar.${c#*:}"
done
grep -q "member 'x.img'" "$T/add.out" && pass "image add names the tar member" || fail "no member in: $(cat "$T/add.out")"

# ---- compressed twice: the inner layer never reaches a card --------------------
write_refused "x.img.bz2.xz" "is xz data holding bzip2 data \(compressed twice\)" x.img.bz2.xz
add_ok "x.img.bz2.xz (both layers)" x.img.bz2.xz zstd xz.bzip2

# ---- not images at all ----------------------------------------------------------
write_refused "a damaged xz magic" "is xz data with a damaged header magic" damaged.img.xz
add_refused "a damaged xz magic" "is xz data with a damaged header magic" damaged.img.xz
write_refused "an HTML page named .img.xz" "'.*raspios.img.xz' is named .xz but holds no xz data: .*an HTML page" raspios.img.xz
add_refused "an HTML page named .img.xz" "named .xz but holds no xz data: .*an HTML page" raspios.img.xz
write_refused "a 6-byte text file" "is not a disk image: only 6 bytes, too short for a disk image: text \('hello '\)" six.img
add_refused "a 6-byte text file" "not a disk image: only 6 bytes" six.img
write_refused "xz named .gz" "is named .gz but holds xz data" gz-named.img.gz
add_refused "xz named .gz" "is named .gz but holds xz data" gz-named.img.gz
write_refused "a bare FAT filesystem" "not a disk image: a FAT filesystem without a partition table" fat.img
add_refused "a bare FAT filesystem" "a FAT filesystem without a partition table" fat.img
card_file
"$NFW" -q --not-a-disk fat.img "$T/card" && cmp -s -n 8388608 fat.img "$T/card" &&
	pass "netflash-write --not-a-disk writes a bare filesystem" || fail "--not-a-disk did not write fat.img"
"$NF" --root "$R" image add fat.img --name fat --not-a-disk >/dev/null 2>&1 && grep -qx disk=0 "$R/images/fat.manifest" &&
	pass "image add --not-a-disk records disk=0" || fail "image add --not-a-disk"
write_refused "compressed twice even with --not-a-disk" "compressed twice" x.img.bz2.xz --not-a-disk

# ---- what Raspberry Pi Imager takes: zip, 7z, bzip2, lz4, lzip, lzma ---------
write_refused "zip" "is a zip archive: netflash-write takes raw, gzip, xz and zstd images; netflash image add converts the image inside" x.zip
add_ok "zip" x.zip zstd zip
write_refused "7z" "is a 7z archive" x.7z
add_ok "7z" x.7z zstd 7z
write_refused "bzip2" "is bzip2 data" x.img.bz2
add_ok "bzip2" x.img.bz2 zstd bzip2
write_refused "lz4" "is lz4 data" x.img.lz4
add_ok "lz4" x.img.lz4 zstd lz4
write_refused "legacy lz4" "is lz4 data \(legacy frames\)" legacy.img.lz4
add_ok "legacy lz4" legacy.img.lz4 zstd lz4
write_refused "lzip" "is lzip data" x.img.lz
add_ok "lzip" x.img.lz zstd lzip
write_refused "lzma" "is lzma \(LZMA-alone\) data" x.img.lzma
add_ok "lzma" x.img.lzma zstd lzma
add_refused "a zip with two files" "the zip holds more than one file \('x.img', 'y.img'\)" two.zip
# Strict streams: the trailing data shows only at the end, after the card's
# first MiB was wiped, which leaves a card that does not boot (as any failure).
card_file
expect_fail "netflash-write refuses gzip with NUL padding" "trailing garbage after the last member.*netflash image add stores" \
	"$NFW" padded.img.gz "$T/card" && head_not_written "gzip with NUL padding" "$T/card" x.img &&
	pass "netflash-write refuses gzip with NUL padding, the card does not boot"
add_ok "gzip with NUL padding (OpenWrt)" padded.img.gz zstd gzip
add_ok "gzip with trailing metadata (OpenWrt)" meta.img.gz zstd gzip
# The worker copy: what a worker can decode is still re-encoded as zstd
# (it decodes several times faster) unless --keep-format; zstd stays.
add_ok "plain gzip: a zstd worker copy" "$img.gz" zstd gzip
add_ok "multi-block xz: a zstd worker copy" "$img.mt.xz" zstd xz
add_ok "raw disk image: a zstd worker copy" x.img zstd raw
add_ok "plain gzip, --keep-format" "$img.gz" gzip "" --keep-format
add_ok "multi-block xz, --keep-format" "$img.mt.xz" xz "" --keep-format
add_ok "raw disk image, --keep-format" x.img raw "" --keep-format
add_ok "zstd (2 MiB window): stored as it is" "$img.zst" zstd ""
[ "$(sed -n 's/^origin_size=//p' "$R/images/a$((adds - 5)).manifest")" = "$(stat -c %s "$img.mt.xz")" ] &&
	"$NF" --root "$R" image ls | has "^a$((adds - 5)) *zstd *[0-9]* *xz *$(stat -c %s "$img.mt.xz") *16777216 " &&
	pass "the manifest and image ls show the worker copy's format and size and the file given's" ||
	fail "origin_size: $(cat "$R/images/a$((adds - 5)).manifest"; "$NF" --root "$R" image ls)"
copy_of() { echo "$R/images/$(sed -n 's/^file=//p' "$R/images/$1.manifest")"; }
zstd -d -q -c "$(copy_of a$((adds - 4)))" | cmp -s - x.img && zstd -lv "$(copy_of a$((adds - 4)))" 2>/dev/null |
	has "Window Size: *16\.0 MiB" && pass "the worker copy decodes to the image, with a 16 MiB window" ||
	fail "worker copy: $(zstd -lv "$(copy_of a$((adds - 4)))" 2>&1 | head)"
# A window larger than a 512 MiB worker affords (64 MiB): re-encoded, or
# refused with --keep-format.
cp x.img big.img
truncate -s 130M big.img
zstd -q -1 --long=27 -c big.img >big.img.zst
bigsha=$(sha256sum big.img | cut -d' ' -f1)
add_refused "a 128 MiB zstd window with --keep-format" "its zstd window is 128.0 MiB, more than a 512 MiB worker affords \(64.0 MiB\); without --keep-format it is re-encoded" \
	big.img.zst --keep-format
"$NF" --root "$R" image add big.img.zst --name bigwin >"$T/add.out" 2>"$T/err.log" &&
	has "a zstd window of 128.0 MiB, more than a 512 MiB worker affords (64.0 MiB): re-encoding it" "$T/err.log" &&
	grep -qx "sha256=$bigsha" "$R/images/bigwin.manifest" && grep -qx "origin=zstd" "$R/images/bigwin.manifest" &&
	pass "a 128 MiB zstd window is re-encoded by default" || fail "bigwin: $(cat "$T/err.log" "$T/add.out")"
"$NF" --root "$R" image rm bigwin >/dev/null

# ---- the converted copy is what a worker flashes ------------------------------
write_ok "the catalog's zstd copy of the zip" "$(copy_of "a$(grep -l '^origin=zip$' "$R"/images/*.manifest | head -1 | sed 's/.*\/a\([0-9]*\)\.manifest/\1/')")" x.img

# ---- disks that are fine --------------------------------------------------------
write_ok "a GPT disk (protective MBR + header at LBA 1)" gpt.img gpt.img
card_file
"$NFW" odd.img "$T/card" 2>"$T/err.log" && cmp -s -n "$(stat -c %s odd.img)" odd.img "$T/card" &&
	has "not a whole number of 512-byte sectors" "$T/err.log" &&
	pass "an image of 16 MiB + 100 bytes is written, and reported" || fail "odd size: $(cat "$T/err.log")"
"$NF" --root "$R" image add odd.img --name odd >/dev/null 2>"$T/err.log" && has "not a whole number of 512-byte sectors" "$T/err.log" &&
	pass "image add reports a size that is not whole sectors" || fail "image add odd size: $(cat "$T/err.log")"

# ---- .bmap: not imported, said so ---------------------------------------------
cp "$img.xz" bm.img.xz
bmaptool -q create x.img >bm.img.bmap
"$NF" --root "$R" image add bm.img.xz --name bm >/dev/null 2>"$T/err.log"
has "not importing '.*bm.img.bmap': netflash finds the image's zero ranges itself" "$T/err.log" && [ ! -e "$R/images/bm.bmap" ] &&
	pass "a bmaptool-named .bmap is noted, not imported" || fail "bmap: $(cat "$T/err.log"; ls "$R/images")"

# ---- progress on a terminal (script(1) gives image add one) ------------------
script -qec "'$NF' --root '$R' image add x.7z --name tty" /dev/null >"$T/tty.out" 2>&1
has "converting to zstd: .*MiB decoded" "$T/tty.out" && has "checking the zstd copy: .*MiB decoded" "$T/tty.out" &&
	pass "image add shows its progress on a terminal" || fail "no progress on a terminal: $(head -c 300 "$T/tty.out")"
"$NF" --root "$R" image add x.7z --name notty2 2>"$T/notty.err" >/dev/null
has "^netflash: converting to zstd: [0-9]*%, [0-9]* MiB decoded$" "$T/notty.err" && ! grep -q $'\r' "$T/notty.err" &&
	pass "off a terminal, progress comes as whole lines" || fail "progress off a terminal: $(head -c 300 "$T/notty.err")"

# ---- the state lock is not held while an image decodes --------------------
# strace slows each read of the image; meanwhile the lock must be free.
# (LeakSanitizer's exit check needs ptrace, which strace holds: off here.)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -o /dev/null -e trace=pread64 -e inject=pread64:delay_enter=400000 \
	"$NF" --root "$R" image add "$img.xz" --name slow >/dev/null 2>&1 &
spid=$!
register_pid "$spid"
sleep 1
flock -n "$R/state/lock" true && pass "image add leaves the state lock free while it decodes" ||
	fail "image add holds the state lock while it decodes"
wait "$spid" && grep -q "^sha256=$want$" "$R/images/slow.manifest" && pass "(and the slowed add completes)" ||
	fail "slowed image add failed"

# ---- nothing left behind ------------------------------------------------------
ls -A "$R/images" | has -v '^\.add-' && ! ls -A "$R/images" | has '^\.add-' &&
	pass "no temporary files in the catalog" || fail "temporary files left: $(ls -A "$R/images")"
"$NF" --root "$R" image add "$img.zst" --name a-rather-long-image-name-for-the-catalog-2024-11-19 >/dev/null
"$NF" --root "$R" image ls >"$T/ls.out"
has "^a[0-9]* *zstd *[0-9]* *tar.gzip *[0-9]* " "$T/ls.out" && pass "image ls shows where a converted image came from" ||
	fail "image ls: $(cat "$T/ls.out")"
[ "$(awk '{ match($0, /^[^ ]+ +/); print RLENGTH }' "$T/ls.out" | sort -u | wc -l)" = 1 ] && pass "image ls keeps its columns aligned with a 51-character name" ||
	fail "columns: $(cat "$T/ls.out")"

# zstd --long from a pipe declares windows of 256 MiB to 2 GiB: the master
# decodes what it declares (up to zstd's own 2 GiB, within half of its
# MemAvailable) and stores the 16 MiB-window worker copy; the worker's
# refusal of such a file names the window and its limit.
for l in 28 31; do
	zstd -q --long=$l -c <"$img" >"$T/long$l.img.zst"
	"$NF" --root "$R" image add "$T/long$l.img.zst" --name "long$l" >"$T/long$l.out" 2>&1 &&
		"$NF" --root "$R" image check "long$l" >/dev/null && grep -q "^sha256=$(sha256sum "$img" | cut -d' ' -f1)$" "$R/images/long$l.manifest" &&
		grep -q "^format=zstd$" "$R/images/long$l.manifest" &&
		pass "zstd --long=$l from a pipe ($((1 << (l - 20))) MiB window): added as an 16 MiB-window worker copy" ||
		fail "zstd --long=$l: $(cat "$T/long$l.out")"
done
rc=0; "$NETFLASH_BUILD/flasher-init/netflash-write" --progress=none --xz-memlimit 64M "$T/long28.img.zst" "$T/card-long" \
	2>"$T/long.err" || rc=$?
[ $rc != 0 ] && has "needs a zstd window of 256.0 MiB; this machine affords" "$T/long.err" &&
	pass "netflash-write names the window and what it affords" || fail "netflash-write long window: $(cat "$T/long.err")"

# A single compressed stream is the image itself, even when its data starts
# with zeros (libarchive takes 1 KiB of zeros for an empty tar: bmaptool's
# own test files were refused as "the archive holds no file").
python3 -c 'import os, sys; open(sys.argv[1], "wb").write(bytes(1024) + os.urandom(1 << 20) + bytes(3 << 20))' "$T/zs.img"
zsha=$(sha256sum "$T/zs.img" | cut -d' ' -f1)
xz -kq "$T/zs.img"; gzip -kq "$T/zs.img"; bzip2 -kq "$T/zs.img"; lz4 -q "$T/zs.img" "$T/zs.img.lz4"
n=0
for f in zs.img.xz zs.img.gz zs.img.bz2 zs.img.lz4; do
	"$NF" --root "$R" image add "$T/$f" --name "zs-${f##*.}" --not-a-disk >"$T/zs.out" 2>&1 &&
		grep -q "^sha256=$zsha$" "$R/images/zs-${f##*.}.manifest" && n=$((n + 1)) || fail "$f: $(cat "$T/zs.out")"
done
[ $n = 4 ] && pass "xz, gzip, bzip2 and lz4 streams of data that starts with zeros are added as the image they hold"
finish
