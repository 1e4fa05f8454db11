#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A fleet view that never lies about dead workers (issue 30): a worker that
# stops reporting mid-job is shown as stalled (no rate, no ETA, not in the
# MB/s total) once it has been silent for 60 s, in status, the API and
# /metrics; netflashd abandons its job after --abandon-after (an attempt
# counted, the worker back to waiting for its next boot); a restarted
# netflashd reconciles the jobs it finds running the same way. The minute
# of silence is made by moving the job's last report back in the database
# (sqlite3), not by waiting; the abandonment is netflashd's own, live.
source "$(dirname "$0")/../lib.sh"

img=$(test_image 16)
master_setup "$img.zst" pios
HPORT=$("$NETFLASH_BUILD/tests/freeport")
daemon_start --abandon-after 10 --http "127.0.0.1:$HPORT"
W=b8:27:eb:00:13:01 D=b8-27-eb-00-13-01
"$NF" --root "$MR" enroll "$W" --image pios --hostname rack6-01 >/dev/null
DB=$MR/state/netflash.db

# dead_worker: HELLO, three PROGRESS reports at 12.5 MB/s, then it is gone
# (its process ends without a word); prints the job id.
dead_worker() {
	python3 - "$MPORT" "$W" "$(token_of "$W")" <<'EOF'
import socket, sys, time
port, mac, tok = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
s.sendall(("HELLO v=1 mac=%s token=%s\n" % (mac, tok)).encode())
jid = f.readline().decode().split("id=")[1].split()[0]
for i in range(1, 4):
    s.sendall(("PROGRESS id=%s stage=write done=%d total=16777216 mbps=12.5\n" % (jid, i << 21)).encode())
    time.sleep(1.1)
print(jid)
EOF
}
age() { sqlite3 "$DB" "UPDATE jobs SET updated_at = updated_at - $2 WHERE id = $1"; }
row() { "$NF" --root "$MR" status | grep "^$W"; }

job=$(dead_worker)
row | has " write .* 12.5 " && pass "a reporting worker shows its stage and rate" || fail "live: $(row)"
age "$job" 61
row | has " stalled .*  *- *- " && curl -sf "http://127.0.0.1:$HPORT/api/workers" | has "\"mac\":\"$D\".*\"state\":\"stalled\".*\"stage\":\"\".*\"mbps\":0.0" &&
	curl -sf "http://127.0.0.1:$HPORT/metrics" | has "^netflash_jobs_stalled 1$" &&
	pass "silent for a minute: stalled in status, the API (no stage, 0 MB/s) and /metrics" ||
	fail "stalled: $(row) $(curl -s "http://127.0.0.1:$HPORT/api/workers")"
# The page in Chromium: the worker's tile in the rack grid says stalled.
chrome=$(command -v chromium || true)
tile() { # the class of the worker's tile on the page
	[ -n "$chrome" ] || { echo skipped; return; }
	timeout 60 "$chrome" --headless=new --no-sandbox --disable-gpu --user-data-dir="$T/chrome" \
		--virtual-time-budget=2500 --dump-dom "http://127.0.0.1:$HPORT/" 2>/dev/null |
		grep -o "class=\"tile [^\"]*\"[^>]*data-mac=\"$D\"" | head -1
}
t1=$(tile)
[ "$t1" = skipped ] || has "tile-stalled" <<<"$t1" && pass "the page's rack grid shows the worker stalled" ||
	fail "page tile: $t1"
age "$job" 300
wait_until 30 sh -c "sqlite3 '$DB' \"SELECT state FROM jobs WHERE id = $job\" | grep -qx abandoned" &&
	[ "$(sqlite3 "$DB" "SELECT attempts, state FROM workers WHERE mac = '$D'")" = "1|enrolled" ] &&
	sqlite3 "$DB" "SELECT reason FROM jobs WHERE id = $job" | has "^abandoned: no report from the worker for [0-9]* s" &&
	"$NF" --root "$MR" history "$W" | has "abandoned: no report from the worker" &&
	pass "then abandoned by netflashd: one attempt counted, the worker waits for its next boot, history says why" ||
	fail "abandon: $(sqlite3 "$DB" "SELECT * FROM jobs WHERE id = $job") $(tail -3 "$T/daemon.log")"
row | has " enrolled .* 1  " && pass "status no longer shows it writing" || fail "after: $(row)"
t2=$(tile)
[ "$t2" = skipped ] || has "tile-enrolled" <<<"$t2" && pass "and the page shows it enrolled again, waiting for its next boot" ||
	fail "page tile after: $t2"

# A restart: the job the old netflashd left running is reconciled by the
# new one, not shown as writing forever.
job2=$(dead_worker)
daemon_stop
age "$job2" 400
daemon_start --abandon-after 10 --http "127.0.0.1:$HPORT"
row | has " stalled " && pass "after a restart the silent job shows as stalled at once" || fail "restart: $(row)"
wait_until 40 sh -c "sqlite3 '$DB' \"SELECT state FROM jobs WHERE id = $job2\" | grep -qx abandoned" &&
	[ "$(sqlite3 "$DB" "SELECT attempts FROM workers WHERE mac = '$D'")" = 2 ] &&
	pass "and the new netflashd abandons it once it has been up --abandon-after itself" ||
	fail "restart abandon: $(sqlite3 "$DB" "SELECT state, reason FROM jobs WHERE id = $job2")"
finish
