#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Makes docs/img/dashboard.png: a master on loopback with five workers (three
# flashed, one writing to a slow simulated card, one failed), photographed
# in Chromium. Not a test; run as root after a build:
#   NETFLASH_BUILD=build tests/web/docs-screenshot.sh
source "$(dirname "$0")/../lib.sh"
source "$NETFLASH_SRC/tests/fixtures/fakecard.sh"

out=${1:-$NETFLASH_SRC/docs/img/dashboard.png}
img=$(test_image 96)
master_setup "$img.zst" bookworm-lite
HPORT=$("$NETFLASH_BUILD/tests/freeport")
daemon_start --http "127.0.0.1:$HPORT"
n=0
for h in rack1-01 rack1-02 rack1-03 rack1-04 rack1-05; do
	n=$((n + 1))
	"$NF" --root "$MR" enroll "b8:27:eb:10:00:0$n" --image bookworm-lite --hostname "$h" >/dev/null
done
for n in 1 2 3; do
	pattern_file "$T/c$n" $((96 * 1048576))
	report "b8:27:eb:10:00:0$n" "$T/c$n" 2>/dev/null
done
exec {c}<>"/dev/tcp/127.0.0.1/$MPORT"
printf 'HELLO v=1 mac=b8:27:eb:10:00:05 token=%s\n' "$(token_of b8:27:eb:10:00:05)" >&"$c"
read -r -t 5 job <&"$c" || true
id=$(sed -n 's/^JOB id=\([0-9]*\).*/\1/p' <<<"$job")
printf 'FAIL id=%s stage=probe reason=%s\n' "$id" \
	'fake%20card:%20it%20claims%2032.0%20GB,%20but%20data%20written%20at%2016.0%20GB%20lands%20at%200%20B' >&"$c"
read -r -t 5 _ <&"$c" || true
exec {c}>&-
fake_card slow $((128 * 1048576)) $((128 * 1048576)) --write-mbps 6 --read-mbps 20
"$NFW" --progress=none -q --report-to "127.0.0.1:$MPORT" --mac b8:27:eb:10:00:04 \
	--token "$(token_of b8:27:eb:10:00:04)" "$FAKE_LOOP" 2>/dev/null &
wpid=$!
register_pid "$wpid"
sleep 6
mkdir -p "$(dirname "$out")"
node "$NETFLASH_SRC/tests/web/shot.mjs" "http://127.0.0.1:$HPORT/" "$out" "$T/profile" "#speeds rect"
kill "$wpid" 2>/dev/null || true
wait "$wpid" 2>/dev/null || true
fake_card_done slow
echo "wrote $out"
