#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The decoder's memory budget (issue 17): a quarter of MemAvailable unless
# --xz-memlimit says, xz threads chosen to fit it (pi-gen's 24 MiB blocks),
# a zstd window beyond it refused before the card is touched, the plan
# logged; and peak RSS per format against docs/netflash-write.md's figure.
source "$(dirname "$0")/../lib.sh"

img=$(test_image 64)
size=$(stat -c %s "$img")
MiB=1048576
# pi-gen's blocks: xz -T0 -6 makes them 3 x the 8 MiB dictionary (preset 1
# with the same blocks here, for speed).
xz -T2 -1 --block-size=24MiB -c "$img" >"$T/pigen.xz"
zstd -q --long=27 -c "$img" >"$T/long.zst"
truncate -s $((size + 8 * MiB)) "$T/card"

"$NFW" --progress=none --no-probe-capacity --xz-memlimit=40M "$T/pigen.xz" "$T/card" 2>"$T/x40.log" &&
	has "xz: 1 thread(s) of [0-9]* CPU(s): 3 blocks of up to 24.0 MiB need about [0-9.]* MiB each; budget 40.0 MiB from --xz-memlimit" "$T/x40.log" &&
	pass "40 MiB (the old default): pi-gen's 24 MiB blocks get one thread, and the log says why" ||
	fail "40M: $(cat "$T/x40.log")"
"$NFW" --progress=none --no-probe-capacity --xz-memlimit=200M --threads 2 "$T/pigen.xz" "$T/card" 2>"$T/x200.log" &&
	has "xz: 2 thread(s) of 2 CPU(s)" "$T/x200.log" && pass "200 MiB: both CPUs decode" || fail "200M: $(cat "$T/x200.log")"
"$NFW" --progress=none --no-probe-capacity "$T/pigen.xz" "$T/card" 2>"$T/xdef.log" &&
	has "budget [0-9.]* [MG]i\?B: a quarter of MemAvailable [0-9.]* [MG]i\?B, at least 40 MiB" "$T/xdef.log" &&
	pass "by default the budget is a quarter of MemAvailable, and logged" || fail "default: $(cat "$T/xdef.log")"

# zstd --long=27 asks for a 128 MiB window (zstd caps it at the input's
# 64 MiB): over a 40 MiB budget (32 MiB window) it is refused before the
# card is opened.
cp "$T/card" "$T/card.before"
expect_fail "zstd window over the budget" "needs a zstd window of 64.0 MiB; this machine affords 32.0 MiB \(budget 40.0 MiB from --xz-memlimit\)" \
	"$NFW" --progress=none --no-probe-capacity --xz-memlimit=40M "$T/long.zst" "$T/card" &&
	cmp -s "$T/card" "$T/card.before" && pass "a zstd window beyond the budget is refused, the card untouched"

# Peak RSS (GNU time's maximum resident set) per format, default budget.
for f in "$img" "$img.gz" "$T/pigen.xz" "$img.zst" "$T/long.zst"; do
	/usr/bin/time -f %M -o "$T/rss" "$NFW" --progress=none --no-probe-capacity "$f" "$T/card" 2>/dev/null ||
		fail "flashing $f failed"
	echo "peak RSS ${f##*/}: $(($(cat "$T/rss") / 1024)) MiB"
	[ "$(cat "$T/rss")" -lt $((200 * 1024)) ] || fail "${f##*/}: peak RSS $(cat "$T/rss") KiB"
done
pass "peak RSS stays within the documented bound (engine + budget) for every format"
finish
