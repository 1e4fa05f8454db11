#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs a fuzz target for a bounded time from seeds: for "decode", streams
# made by the real compressors (format byte + piece byte + stream); for
# "proto", real protocol lines. Fails on any crash, sanitizer report, leak
# or timeout.
# usage: run.sh decode|proto FUZZER SECONDS
set -euo pipefail
kind=$1 fuzzer=$2 seconds=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/netflash-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
if [ "$kind" = proto ]; then
	printf 'HELLO v=1 mac=b8:27:eb:d3:85:78 token=47363868e5e66594bc623fb28fc81b20 target=/dev/mmcblk0' >"$work/corpus/hello"
	printf 'JOB id=12 url=nfs://10.0.0.2/srv/netflash/images/lite.img.xz?version=3 format=xz size=2759852032' >"$work/corpus/job"
	printf 'FAIL id=3 stage=decode reason=xz:%%20corrupt%%0Adata' >"$work/corpus/fail"
	printf 'PROGRESS id=12 stage=write done=104857600 total=2759852032 mbps=23.4' >"$work/corpus/progress"
	printf 'JOB id=7 url=nfs://h/e/f format=zstd size=5 sha256=%s image=pios disk=0 patch=512 patch_sha256=%s' \
		"$(printf '%064d' 1)" "$(printf '%064d' 2)" >"$work/corpus/job-full"
	printf 'DONE id=7 sha256=%s bytes=5 seconds=12.345 patch=%s' "$(printf '%064d' 1)" "$(printf '%064d' 2)" \
		>"$work/corpus/done"
	"$fuzzer" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=512 -max_len=2048 \
		-print_final_stats=1 "$work/corpus" 2>&1 | tail -n 25
	exit "${PIPESTATUS[0]}"
fi
head -c 20000 /usr/share/common-licenses/GPL-3 >"$work/plain" 2>/dev/null || head -c 20000 /dev/urandom >"$work/plain"
seed() { { printf "\\$(printf %03o "$1")\\007"; cat; } >"$work/corpus/$2"; }
seed 0 raw <"$work/plain"
gzip -c "$work/plain" | seed 1 gzip
xz -c "$work/plain" | seed 2 xz
xz -T2 --block-size=4KiB -c "$work/plain" | seed 2 xz-mt
zstd -q -c "$work/plain" | seed 3 zstd
"$fuzzer" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=512 -max_len=65536 \
	-print_final_stats=1 "$work/corpus" 2>&1 | tail -n 25
exit "${PIPESTATUS[0]}"
