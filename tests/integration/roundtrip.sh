#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Every format, from a local file and over NFS (ganesha), onto files and a
# loop device, zero-skip on and off; sizes that are not multiples of 4 KiB
# or of the 4 MiB chunk. The card must hold exactly the image.
source "$(dirname "$0")/../lib.sh"

img=$(test_image 24)
mkdir -p "$T/export"
# Odd sizes: the realistic image plus 12345 bytes (not a multiple of 4 KiB),
# and a 5 MiB + 1 byte random image (not a multiple of the chunk).
cat "$img" <(head -c 12345 /dev/urandom) >"$T/export/odd.img"
random_disk "$T/export/small.img" $((5 * 1048576 + 1))
for src in "$T/export/odd.img" "$T/export/small.img"; do
	xz -T1 -c "$src" >"$src.xz"
	xz -T2 --block-size=1MiB -c "$src" >"$src.mt.xz"
	gzip -c "$src" >"$src.gz"
	zstd -q -c "$src" >"$src.zst"
done
cp "$img".xz "$img".mt.xz "$img".gz "$img".zst "$T/export/"
base=$(basename "$img")
ganesha_start "$T/export" "$T"

check() { # name source target reference [options]
	local name=$1 src=$2 tgt=$3 ref=$4; shift 4
	if ! "$NFW" --progress=none -q "$@" "$src" "$tgt" 2>"$T/err.log"; then
		fail "$name: $(cat "$T/err.log")"
		return
	fi
	if cmp -s -n "$(stat -c %s "$ref")" "$ref" "$tgt"; then pass "$name"; else fail "$name: target differs"; fi
}

for f in "$base.xz" "$base.mt.xz" "$base.gz" "$base.zst"; do
	rm -f "$T/card"
	check "file $f" "$T/export/$f" "$T/card" "$img"
	rm -f "$T/card"
	check "nfs $f" "$(ganesha_url "$f")" "$T/card" "$img"
done
for f in odd.img odd.img.xz odd.img.mt.xz odd.img.gz odd.img.zst small.img small.img.xz small.img.zst; do
	ref="$T/export/${f%%.img*}.img"
	rm -f "$T/card"
	check "nfs odd size $f" "$(ganesha_url "$f")" "$T/card" "$ref"
	[ "$(stat -c %s "$T/card")" = "$(stat -c %s "$ref")" ] || fail "odd size $f: target size differs"
done

# Zero-skip on a used card: stale data in the image's zero blocks must be gone.
pattern_file "$T/card" $((40 * 1048576))
check "zero-skip over stale data (file, holes)" "$(ganesha_url "$base.zst")" "$T/card" "$img"
pattern_file "$T/card" $((40 * 1048576))
check "no-zero-skip over stale data (file)" "$(ganesha_url "$base.zst")" "$T/card" "$img" --no-zero-skip

# Regression: a long zero run past a new file's end spans several flushes;
# the verifier must not read past the file's end before the data after it.
random_disk "$T/gap.img" $((4 * 1048576))
truncate -s $((300 * 1048576)) "$T/gap.img"
head -c 1048576 /dev/urandom >>"$T/gap.img"
xz -T1 -0 -c "$T/gap.img" >"$T/gap.img.xz"
rm -f "$T/card"
check "zero run across flushes past the file's end" "$T/gap.img.xz" "$T/card" "$T/gap.img"
rm -f "$T/gap.img" "$T/gap.img.xz" "$T/card"

# Loop device as the card, BLKZEROOUT for zero blocks, with the expected digest.
sha=$(sha256sum "$img" | cut -d' ' -f1)
pattern_file "$T/loop.img" $((32 * 1048576))
loop_attach dev "$T/loop.img"
check "loop device, xz multi-block, --expect-sha256" "$(ganesha_url "$base.mt.xz")" "$dev" "$img" --expect-sha256 "$sha"
"$NFW" --progress=json "$(ganesha_url "$base.gz")" "$dev" >"$T/json.log" 2>/dev/null || fail "json run failed"
grep -q '"event":"done".*"skipped":[1-9]' "$T/json.log" && pass "zero blocks skipped on a loop device" ||
	fail "no zero bytes skipped: $(tail -1 "$T/json.log")"
grep -q "\"sha256\":\"$sha\"" "$T/json.log" && pass "json summary has the image digest" || fail "json digest"
finish
