#!/usr/bin/env bash
# Runs the decoder fuzz target for a bounded time from seeds made by the real
# compressors (format byte + piece byte + stream). Fails on any crash,
# sanitizer report, leak or timeout.
set -euo pipefail
fuzzer=$1 seconds=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/netflash-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
head -c 20000 /usr/share/common-licenses/GPL-3 >"$work/plain" 2>/dev/null || head -c 20000 /dev/urandom >"$work/plain"
seed() { { printf "\\$(printf %03o "$1")\\007"; cat; } >"$work/corpus/$2"; }
seed 0 raw <"$work/plain"
gzip -c "$work/plain" | seed 1 gzip
xz -c "$work/plain" | seed 2 xz
xz -T2 --block-size=4KiB -c "$work/plain" | seed 2 xz-mt
zstd -q -c "$work/plain" | seed 3 zstd
"$fuzzer" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=512 -max_len=65536 \
	-print_final_stats=1 "$work/corpus" 2>&1 | tail -n 25
