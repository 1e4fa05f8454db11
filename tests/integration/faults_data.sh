#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Bad images: each must exit 1 with one clear error line, and never leave the
# image's first MiB on the target. Failures detected before writing must
# leave the target untouched.
source "$(dirname "$0")/../lib.sh"

img=$(test_image 24)
size=$(stat -c %s "$img")
mkdir -p "$T/src"
cp "$img".gz "$img".zst "$img".mt.xz "$T/src/"
b=$(basename "$img")

corrupt() { # file offset: overwrite 64 bytes in the middle of the stream
	printf '%064d' 0 | tr 0 '\377' | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
for f in gz zst mt.xz; do
	cp "$T/src/$b.$f" "$T/src/corrupt.$f"
	corrupt "$T/src/corrupt.$f" $(( $(stat -c %s "$T/src/$b.$f") / 2 ))
	head -c $(( $(stat -c %s "$T/src/$b.$f") - 1000 )) "$T/src/$b.$f" >"$T/src/trunc.$f"
	cat "$T/src/$b.$f" <(echo "trailing garbage") >"$T/src/garbage.$f"
done
head -c 1000 /dev/urandom | bzip2 >"$T/src/x.bz2"
: >"$T/src/empty.img"

run_case() { # name regex source [options]: target pre-filled with a pattern
	local name=$1 re=$2 src=$3; shift 3
	pattern_file "$T/card" $((32 * 1048576))
	local before
	before=$(first_mib "$T/card")
	expect_fail "$name" "$re" "$NFW" --progress=none "$@" "$src" "$T/card" || return 0
	head_not_written "$name" "$T/card" "$img" || return 0
	pass "$name"
	[ "$(first_mib "$T/card")" = "$before" ] || [ "$(first_mib "$T/card")" = "$(head -c 1048576 /dev/zero | sha256sum | cut -d' ' -f1)" ] ||
		fail "$name: the first MiB is neither untouched nor wiped"
}
untouched_case() { # name regex source [options]: the target must not change at all
	local name=$1 re=$2 src=$3; shift 3
	pattern_file "$T/card" $((32 * 1048576))
	local before
	before=$(sha256sum <"$T/card")
	expect_fail "$name" "$re" "$NFW" --progress=none "$@" "$src" "$T/card" || return 0
	[ "$(sha256sum <"$T/card")" = "$before" ] && pass "$name" || fail "$name: target was modified"
}

run_case "corrupt gzip" "gzip: corrupt data at compressed offset [0-9]+" "$T/src/corrupt.gz"
run_case "corrupt zstd" "zstd: corrupt data.* at compressed offset [0-9]+" "$T/src/corrupt.zst"
run_case "corrupt xz block" "xz: compressed data is corrupt at compressed offset [0-9]+" "$T/src/corrupt.mt.xz"
run_case "truncated gzip" "gzip: stream ends early \(truncated\) at compressed offset" "$T/src/trunc.gz"
run_case "truncated zstd" "zstd: stream ends early \(truncated\)" "$T/src/trunc.zst"
untouched_case "truncated xz (index check, before writing)" "xz index is corrupt or the file is truncated" "$T/src/trunc.mt.xz"
run_case "garbage after gzip" "gzip: trailing garbage after the last member" "$T/src/garbage.gz"
run_case "garbage after zstd" "zstd: corrupt data or trailing garbage" "$T/src/garbage.zst"
untouched_case "garbage after xz" "xz index is corrupt" "$T/src/garbage.mt.xz"
run_case "wrong --expect-sha256" "not the expected image: its SHA-256 differs" "$T/src/$b.zst" \
	--expect-sha256 "$(printf '%064d' 0)"
untouched_case "bzip2 refused" "is bzip2 data: netflash-write takes raw, gzip, xz and zstd images; netflash image add converts it" "$T/src/x.bz2"
untouched_case "mismatched --format" "is zstd data, not gzip as --format says" "$T/src/$b.zst" --format gzip
untouched_case "empty source" "is empty" "$T/src/empty.img"
untouched_case "missing source" "cannot open '.*missing.img': open: No such file" "$T/src/missing.img"
untouched_case "wrong --expect-size (raw, known up front)" "decodes to $size bytes, expected 12345" "$img" --expect-size 12345
run_case "wrong --expect-size (gzip, found at the end)" "decoded to $size bytes, expected 12345" "$T/src/$b.gz" --expect-size 12345

# Usage errors: exit 2, one line naming the option.
rc=0; "$NFW" --expect-sha256 zz a b 2>"$T/err.log" || rc=$?
[ $rc -eq 2 ] && grep -q "invalid --expect-sha256 'zz'" "$T/err.log" && pass "bad option value" || fail "bad option: rc=$rc $(cat "$T/err.log")"
rc=0; "$NFW" --threads 0 a b 2>"$T/err.log" || rc=$?
[ $rc -eq 2 ] && pass "threads 0 refused" || fail "threads 0: rc=$rc"
"$NFW" --help | has "Usage: netflash-write" && pass "--help" || fail "--help"
finish
