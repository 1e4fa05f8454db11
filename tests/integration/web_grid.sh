#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The fleet page with a rack of 70 (issue 30, item 4), in Chromium: a tile a
# worker, grouped by hostname prefix (rack1-.., rack2-..), filters by text,
# state and group, the table as the second view; a screenshot of the grid
# lands in the build dir (web-grid.png; docs/img/grid.png is one).
source "$(dirname "$0")/../lib.sh"

need_browser
img=$(test_image 16)
master_setup "$img.zst" pios
HPORT=$("$NETFLASH_BUILD/tests/freeport")
daemon_start --http "127.0.0.1:$HPORT"
for r in 1 2; do
	for i in $(seq 1 35); do printf 'b8:27:eb:00:%02x:%02x,rack%d-%02d,pios\n' "$((0x40 + r))" "$i" "$r" "$i"; done
done >"$T/rack.csv"
"$NF" --root "$MR" enroll --from-csv "$T/rack.csv" >/dev/null
truncate -s 32M "$T/card"
report b8:27:eb:00:42:07 "$T/card" --no-probe-capacity 2>"$T/w.log" || fail "worker: $(cat "$T/w.log")"
shot=$NETFLASH_BUILD/web-grid.png
node "$WEB/grid.mjs" "http://127.0.0.1:$HPORT/" rack2-07 "$shot" "$T/profile" >"$T/grid.log" 2>&1 || true
cat "$T/grid.log"
! grep -q '^FAIL' "$T/grid.log" && [ "$(grep -c '^PASS' "$T/grid.log")" = 4 ] && [ -s "$shot" ] ||
	fail "grid: $(cat "$T/grid.log")"
finish
