#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# netflashd's dashboard, JSON API and metrics over real TCP (libmicrohttpd),
# and the page in headless Chromium: a worker that flashed, one whose
# failure reason and boot log carry HTML (it must show as text), the
# catalog; GET only; no path escapes; a dashboard bound beyond loopback
# wants its bearer token.
source "$(dirname "$0")/../lib.sh"

img=$(test_image 16)
master_setup "$img.zst" pios
# An image whose level 19 copy waits: the finisher's run lock is held here
# for the test, so netflashd leaves it queued (image_finish.sh runs it).
python3 - "$MR/state/image-finish.lock" <<'EOF' &
import fcntl, os, sys, time
f = open(sys.argv[1], "a+"); fcntl.flock(f, fcntl.LOCK_EX)
f.truncate(0); f.write("%d test\n" % os.getpid()); f.flush()
time.sleep(600)
EOF
register_pid $!
"$NF" --root "$MR" image add "$img.xz" --name fastone >/dev/null 2>&1
HPORT=$("$NETFLASH_BUILD/tests/freeport")
daemon_start --http "127.0.0.1:$HPORT"
H="http://127.0.0.1:$HPORT"
M1=b8:27:eb:00:03:01 D1=b8-27-eb-00-03-01 M2=b8:27:eb:00:03:02 D2=b8-27-eb-00-03-02
"$NF" --root "$MR" enroll "$M1" --image pios --hostname rack1-01 >/dev/null
"$NF" --root "$MR" enroll "$M2" --image pios >/dev/null
pattern_file "$T/card1" $((32 * 1048576))
report "$M1" "$T/card1" 2>"$T/w1.log" || fail "worker 1: $(cat "$T/w1.log")"
# Worker 2 reports a failure whose reason and boot log hold markup.
XSS='<img src=x onerror=alert(1)><script>alert(2)</script>'
enc=$(printf '%s' "$XSS" | sed 's/ /%20/g')
exec {c}<>"/dev/tcp/127.0.0.1/$MPORT"
# (its target, =1+1, would be a formula in a spreadsheet: history --csv)
printf 'HELLO v=1 mac=%s token=%s target=%%3D1%%2B1 model=Raspberry%%20Pi%%204%%20Model%%20B%%20Rev%%201.4 serial=10000000abcdef01\n' \
	"$M2" "$(token_of "$M2")" >&"$c"
read -r -t 5 job <&"$c" || true
id=$(sed -n 's/^JOB id=\([0-9]*\).*/\1/p' <<<"$job")
printf 'LOG id=%s line=%s\nFAIL id=%s stage=verify reason=%s\n' "$id" "$enc" "$id" "$enc" >&"$c"
read -r -t 5 ans <&"$c" || true
# A stage the protocol does not name is refused (typed stages, docs/protocol.md).
printf 'FAIL id=%s stage=%%3D1%%2B1 reason=x\n' "$id" >&"$c"
read -r -t 5 ans2 <&"$c" || true
exec {c}>&-
echo "raw worker: job [$job] answers [$ans] [$ans2]" >&2
[ -n "$id" ] || fail "raw worker: no job: $job"
[[ "$ans2" == "ERR "*"reason=bad-fail" ]] && pass "a FAIL whose stage the protocol does not name is refused" ||
	fail "FAIL with an unknown stage: [$ans2]"

# ---- the JSON API -----------------------------------------------------------
json() { # URL FILE: fetches, checks it is one JSON document
	curl -sf "$H$1" >"$2" && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$2"
}
json /api/workers "$T/workers.json" && python3 - "$T/workers.json" "$D1" "$D2" <<'EOF' && pass "/api/workers: one JSON array, a released worker and a failed attempt with its reason" || fail "workers: $(cat "$T/workers.json")"
import json, sys
w = {x["mac"]: x for x in json.load(open(sys.argv[1]))}
a, b = w[sys.argv[2]], w[sys.argv[3]]
assert a["enrollment"] == "released" and a["hostname"] == "rack1-01", a
assert b["attempts"] == 1 and "<script>" in b["last_error"], b
EOF
json "/api/workers/$M2" "$T/w2.json" && grep -q '"log":\[{"at":[0-9]*,"line":' "$T/w2.json" &&
	grep -q '"jobs":\[{"job":' "$T/w2.json" && pass "/api/workers/MAC (any MAC spelling): its jobs and boot log" ||
	fail "worker detail: $(cat "$T/w2.json")"
json "/api/jobs?mac=$D1&limit=5" "$T/jobs.json" && grep -q '"state":"done"' "$T/jobs.json" &&
	json /api/images "$T/images.json" && grep -q '"name":"pios","file":"pios.img.zst","format":"zstd"' "$T/images.json" &&
	pass "/api/jobs and /api/images" || fail "jobs/images: $(cat "$T/jobs.json" "$T/images.json")"
json "/api/events?mac=$M2" "$T/ev.json" && python3 -c 'import json, sys
ev = json.load(open(sys.argv[1]))
kinds = [e["kind"] for e in ev]
assert {"enroll", "job", "log", "failed"} <= set(kinds), kinds
assert all(set(e) == {"at", "kind", "line"} for e in ev), ev' "$T/ev.json" &&
	json "/api/events?mac=$D2&kind=failed&limit=5" "$T/evf.json" && grep -q '"kind":"failed","line":"verify: ' "$T/evf.json" &&
	! grep -q '"kind":"log"' "$T/evf.json" &&
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$H/api/events?mac=$D2&kind=bogus")" = 400 ] &&
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$H/api/events")" = 400 ] &&
	pass "/api/events: a worker's history, all kinds or one; a bad kind or no MAC is 400" ||
	fail "events: $(cat "$T/ev.json" "$T/evf.json")"
"$NF" --root "$MR" status --json | python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' &&
	[ "$("$NF" --root "$MR" status --json | head -1 | python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)))')" = \
	  "$(python3 -c 'import json,sys; print(sorted(json.load(open(sys.argv[1]))[0]))' "$T/workers.json")" ] &&
	pass "status --json prints the API's worker objects, one a line" || fail "status --json differs from the API"
"$NF" --root "$MR" status --json | grep "\"mac\":\"$D1\"" | has '"done":16777216,"total":16777216' &&
	"$NF" --root "$MR" status --json | grep "\"mac\":\"$D2\"" | has '"model":"Raspberry Pi 4 Model B Rev 1.4","image"' &&
	"$NF" --root "$MR" status | grep "^$M2" | has ' verify: <img src=x onerror=alert(1)><\.\.\.$' &&
	pass "status: a finished job is done of total, the model the worker reported, a long error ends in ..." ||
	fail "status: $("$NF" --root "$MR" status; "$NF" --root "$MR" status --json)"

# The CLI prints the same objects (ls, image ls), and a CSV report.
"$NF" --root "$MR" ls --json >"$T/ls.json" && "$NF" --root "$MR" image ls --json >"$T/ils.json" &&
	python3 -c 'import json, sys
a, b, c, d = (json.load(open(f)) for f in sys.argv[1:5])
assert [w["mac"] for w in a] == [w["mac"] for w in b] and [sorted(w) for w in a] == [sorted(w) for w in b]
assert c == d, (c, d)' "$T/ls.json" "$T/workers.json" "$T/ils.json" "$T/images.json" &&
	pass "ls --json and image ls --json: the API's arrays" || fail "ls/image ls --json: $(cat "$T/ls.json" "$T/ils.json")"
"$NF" --root "$MR" history --csv >"$T/h.csv" && python3 -c 'import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0] == ["job", "started", "mac", "image", "result", "seconds", "mbps", "bytes", "target", "reason"], rows[0]
r = {x[2]: x for x in rows[1:]}
assert len(rows) == 3 and r[sys.argv[2]][4] == "failed", rows
assert r[sys.argv[2]][8] == "'\''=1+1", r[sys.argv[2]][8]
assert r[sys.argv[2]][9].startswith("verify: <img"), r[sys.argv[2]][9]' "$T/h.csv" "$D2" &&
	pass "history --csv: an RFC 4180 report; a field that would be a formula starts with a quote" ||
	fail "history --csv: $(cat "$T/h.csv")"

# ---- metrics --------------------------------------------------------------------
curl -sf "$H/metrics" >"$T/metrics"
grep -qx 'netflash_workers{state="released"} 1' "$T/metrics" && grep -qx 'netflash_jobs{state="done"} 1' "$T/metrics" &&
	grep -qx 'netflash_jobs{state="failed"} 1' "$T/metrics" && grep -qx 'netflash_flash_duration_seconds_count 1' "$T/metrics" &&
	grep -q '^netflash_card_write_mbps_bucket{le="+Inf"} 1$' "$T/metrics" && grep -q '^netflash_daemon_connections [0-9]' "$T/metrics" &&
	grep -qx 'netflash_bytes_written_total 16777216' "$T/metrics" &&
	pass "/metrics: workers and jobs by state, bytes, duration and speed histograms" || fail "metrics: $(cat "$T/metrics")"

# A worker by a malformed MAC is a bad request that names it; an unknown one
# is not found, named.
[ "$(curl -s -o "$T/bad.json" -w '%{http_code}' "$H/api/workers/b8:27:eb:zz")" = 400 ] &&
	has "\"error\":\"'b8:27:eb:zz' is not a MAC address" "$T/bad.json" &&
	[ "$(curl -s -o "$T/unk.json" -w '%{http_code}' "$H/api/workers/b8:27:eb:99:99:99")" = 404 ] &&
	has '"error":"no worker b8:27:eb:99:99:99: it is not enrolled' "$T/unk.json" &&
	pass "/api/workers/MAC: a malformed MAC is 400 naming it, an unknown one 404 naming it" ||
	fail "worker by MAC: $(cat "$T/bad.json" "$T/unk.json")"

# ---- hostile requests -------------------------------------------------------------
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code -X PUT -d x "$H/api/workers")" = 405 ] && [ "$(code -X POST -d x "$H/api/workers/$D1/release")" = 401 ] &&
	[ "$(code -X DELETE "$H/api/mass-flash")" = 401 ] &&
	[ "$(code --path-as-is "$H/../../etc/passwd")" = 404 ] && [ "$(code --path-as-is "$H/api/workers/../../../etc/passwd")" = 400 ] &&
	[ "$(code "$H/api/workers/%2e%2e%2fstate")" = 400 ] && [ "$(code "$H/api/jobs?limit=0")" = 400 ] &&
	[ "$(code -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' a)" "$H/api/workers")" != 200 ] &&
	pass "GET, or actions with the admin token (401), no path leaves the routes (404), bad query 400, oversize headers refused" ||
	fail "hostile requests: $(code -X POST "$H/api/workers") $(code --path-as-is "$H/../../etc/passwd")"

# ---- the page, in headless Chromium -----------------------------------------------
chrome=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$chrome" ]; then
	# Virtual time stops while a request is open: the budget ends before
	# the page opens its event stream (3 s in), after its first fetches.
	dump() { timeout 60 "$chrome" --headless=new --no-sandbox --disable-gpu --user-data-dir="$T/chrome" \
		--virtual-time-budget=2500 --dump-dom "$1" 2>/dev/null || true; }
	dump "$H/" >"$T/fleet.html"
	grep -q "$D1" "$T/fleet.html" && grep -q 'rack1-01' "$T/fleet.html" && grep -q 'class="bar"\|state-released' "$T/fleet.html" &&
		grep -q 'verify: &lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;' "$T/fleet.html" &&
		! grep -q '<img src="x"' "$T/fleet.html" && pass "Chromium: the fleet table is live, and a reason with markup shows as text" ||
		fail "page: $(grep -o '<tbody>.*</tbody>' "$T/fleet.html" | head -c 600)"
	dump "$H/#w=$D2" >"$T/worker.html"
	grep -q "<pre id=\"w-log\">&lt;img src=x" "$T/worker.html" && grep -q "<h2 id=\"w-title\">$D2</h2>" "$T/worker.html" &&
		pass "Chromium: the worker page shows its boot log as text" || fail "worker page: $(grep -o '<section id="worker".*' "$T/worker.html" | head -c 600)"
	dump "$H/#images" >"$T/images.html"
	grep -q '<td>pios</td><td>zstd</td>' "$T/images.html" &&
		grep -q '<td>fastone</td><td>zstd</td>.*<td>1, level 19 queued</td>' "$T/images.html" &&
		pass "Chromium: the image catalog, with the copy still to be made" ||
		fail "catalog page: $(grep -o '<table id="catalog".*' "$T/images.html" | head -c 400)"
else
	echo "no chromium: page checks skipped" >&2
fi

# ---- DNS rebinding: only this server's own names --------------------------------
# A page the admin opens on attacker.example, re-pointed at 127.0.0.1, sends
# that name as Host: refused (421) for reads and actions alike.
[ "$(code -H 'Host: attacker.example' "$H/api/workers")" = 421 ] &&
	[ "$(code -H "Host: attacker.example:$HPORT" "$H/metrics")" = 421 ] &&
	[ "$(code -H 'Host: 127.0.0.1.attacker.example' "$H/")" = 421 ] &&
	[ "$(code -X POST -H 'Host: attacker.example' -d x "$H/api/workers/$D1/release")" = 421 ] &&
	[ "$(code -H "Host: localhost:$HPORT" "$H/api/workers")" = 200 ] &&
	[ "$(code -H "Host: [::1]:$HPORT" "$H/api/workers")" = 200 ] &&
	[ "$(code -H "Host: $(hostname)" "$H/api/workers")" = 200 ] &&
	[ "$(code "$H/api/workers")" = 200 ] &&
	pass "Host other than the server's own names is refused (421); localhost, ::1, its address and host name answer" ||
	fail "Host check: $(code -v -H 'Host: attacker.example' "$H/api/workers" 2>&1 | tail -5)"
# ---- beyond loopback: a bearer token ----------------------------------------------
daemon_stop
HP2=$("$NETFLASH_BUILD/tests/freeport")
"$NFD" --root "$MR" --listen "127.0.0.1:$MPORT" --peer-check=off --http "0.0.0.0:$HP2" --http-name master.lan \
	>>"$T/d2.log" 2>&1 &
register_pid $!
wait_for "$T/d2.log" "dashboard and API on" 5 || fail "the LAN dashboard did not start: $(cat "$T/d2.log")"
tok=$(cat "$MR/state/http.token" 2>/dev/null)
[ "$(stat -c %a "$MR/state/http.token")" = 600 ] && [ ${#tok} -ge 32 ] &&
	[ "$(code "http://127.0.0.1:$HP2/api/workers")" = 401 ] && [ "$(code "http://127.0.0.1:$HP2/")" = 200 ] &&
	[ "$(code -H "Authorization: Bearer ${tok}x" "http://127.0.0.1:$HP2/api/workers")" = 401 ] &&
	[ "$(code -H "Authorization: Bearer $tok" "http://127.0.0.1:$HP2/api/workers")" = 200 ] &&
	[ "$(code -X POST -H "Authorization: Bearer $tok" "http://127.0.0.1:$HP2/api/workers/$D1/release")" = 401 ] &&
	[ "$(code -H "Authorization: Bearer $tok" -H "Host: master.lan:$HP2" "http://127.0.0.1:$HP2/api/workers")" = 200 ] &&
	[ "$(code -H "Authorization: Bearer $tok" -H "Host: other.lan" "http://127.0.0.1:$HP2/api/workers")" = 421 ] &&
	pass "bound to 0.0.0.0: nothing without the token in state/http.token (0600); it reads, takes no action; --http-name names it" ||
	fail "token: $(ls -l "$MR/state/http.token"; code "http://127.0.0.1:$HP2/api/workers")"
# ---- history --csv of hostile worker text -----------------------------------
# A worker's FAIL reason with ESC, BEL and CR (they would reach the admin's
# terminal), a target that starts with TAB then = (OWASP lists TAB and CR
# as formula starts too).
M3=b8:27:eb:00:03:03 D3=b8-27-eb-00-03-03
"$NF" --root "$MR" enroll "$M3" --image pios >/dev/null
raw_fail "$M3" write '%1B]0;pwned%07%1B[2J%0D%3Dcmd' 'target=%09%3D2%2B2'
"$NF" --root "$MR" history --csv >"$T/h3.csv" && python3 -c 'import csv, sys
raw = open(sys.argv[1], "rb").read()
bad = [b for b in raw if (b < 0x20 and b != 0x0a) or b == 0x7f]
assert not bad, "control bytes in the report: %r" % bad
rows = {x[2]: x for x in csv.reader(open(sys.argv[1], newline=""))}
t, reason = rows[sys.argv[2]][8], rows[sys.argv[2]][9]
assert t == "'\''\\x09=2+2", t
assert reason == "write: \\x1b]0;pwned\\x07\\x1b[2J\\x0d=cmd", reason' "$T/h3.csv" "$D3" &&
	pass "history --csv: control characters escaped (\\xHH), a cell starting with TAB or CR guarded" ||
	fail "history --csv of control characters: $(cat -v "$T/h3.csv")"
finish
