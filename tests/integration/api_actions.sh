#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The API's actions (docs/api.md): enroll, release, power cycle, reimage and
# mass-flash start/stop, over real TCP against a real master. Only with the
# admin token (state/admin.token, 0600): refused without it, with a wrong
# one, or with the read-only dashboard token; settings a command refuses
# come back with its one-line error; bodies are bounded and must be JSON.
source "$(dirname "$0")/../lib.sh"

img=$(test_image 16)
master_setup "$img.zst" pios
HPORT=$("$NETFLASH_BUILD/tests/freeport")
daemon_start --http "127.0.0.1:$HPORT"
H="http://127.0.0.1:$HPORT/api"
M1=b8:27:eb:00:06:01 D1=b8-27-eb-00-06-01
ADMIN=$(cat "$MR/state/admin.token")
# post PATH [JSON] [TOKEN]: the HTTP status, the answer in $T/ans
post() { curl -s -o "$T/ans" -w '%{http_code}' -X "${METHOD:-POST}" -H "Authorization: Bearer ${3-$ADMIN}" \
	-H 'Content-Type: application/json' --data-binary "${2-}" "$H/$1"; }
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T/ans" "$1"; }

[ "$(stat -c %a "$MR/state/admin.token")" = 600 ] && [ ${#ADMIN} -ge 32 ] &&
	pass "netflashd makes the admin token, readable by its owner only" || fail "admin token: $(ls -l "$MR/state")"

# ---- refused without the admin token ---------------------------------------------
[ "$(post "workers/b8:27:eb:zz/release")" = 400 ] && has "'b8:27:eb:zz' is not a MAC address" "$T/ans" &&
	pass "an action on a malformed MAC is 400 naming it" || fail "bad MAC action: $(cat "$T/ans")"
[ "$(post "workers/$M1/enroll" '{"image":"pios"}' '')" = 401 ] &&
	[ "$(post "workers/$M1/enroll" '{"image":"pios"}' "${ADMIN}0")" = 401 ] &&
	[ "$(post "workers/$M1/enroll" '{"image":"pios"}' "${ADMIN:1}")" = 401 ] &&
	[ ! -d "$MR/tftp/$D1" ] && has "admin token" "$T/ans" &&
	pass "an action without the admin token, or a wrong one, is refused (401) and does nothing" ||
	fail "auth: $(cat "$T/ans")"

# ---- enroll, release ------------------------------------------------------------
[ "$(post "workers/$M1/enroll" '{"image":"pios","hostname":"rack4-01"}')" = 200 ] && [ "$(field ok)" = True ] &&
	has "enrolled $D1" "$T/ans" && [ -d "$MR/tftp/$D1" ] &&
	curl -sf "$H/workers/$D1" | has '"hostname":"rack4-01","model":"","image":"pios","state":"enrolled"' &&
	pass "POST /api/workers/MAC/enroll enrolls it as netflash enroll would (its output in the answer)" ||
	fail "enroll: $(cat "$T/ans")"
[ "$(post "workers/$M1/enroll" '{"image":"pios"}')" = 409 ] && [ "$(field exit)" = 1 ] &&
	has "already enrolled" "$T/ans" && pass "enrolling again without force: 409 with the command's reason" ||
	fail "enroll twice: $(cat "$T/ans")"
[ "$(post "workers/$M1/enroll" '{"image":"nosuch","force":true}')" = 409 ] && has "no image 'nosuch'" "$T/ans" &&
	[ "$(post "workers/$M1/enroll" '{"image":"--force"}')" != 200 ] && has "invalid image name" "$T/ans" &&
	pass "a setting is one argument: an image named like an option is just a bad name" ||
	fail "bad image: $(cat "$T/ans")"
[ "$(post "workers/$M1/enroll" '{"image":"pios","hostname":"rack4-01","force":true,"multicast":true,"min_workers":4,"late":"nfs"}')" = 200 ] &&
	[ "$(cat "$MR/state/multicast/$D1")" = "min-workers=4 max-wait=30 late=nfs" ] &&
	has "delivery: multicast session (min-workers=4 max-wait=30 late=nfs)" "$T/ans" &&
	[ "$(post "workers/$M1/enroll" '{"image":"pios","force":true,"late":"later"}')" = 400 ] &&
	has "late" "$T/ans" && [ "$(curl -s "$H/sessions")" = "[]" ] &&
	[ "$(post "workers/$M1/enroll" '{"image":"pios","hostname":"rack4-01","force":true}')" = 200 ] &&
	[ ! -e "$MR/state/multicast/$D1" ] &&
	pass "enroll's multicast settings reach the command; a plain enroll clears them; /api/sessions is [] at first" ||
	fail "multicast enroll: $(cat "$T/ans") $(cat "$MR/state/multicast/$D1" 2>&1)"
[ "$(post "workers/$M1/enroll" '{"image":"pios","shell":"rm -rf /"}')" = 400 ] && has "unknown setting 'shell'" "$T/ans" &&
	[ "$(post "workers/$M1/enroll" '[1,2]')" = 400 ] && [ "$(post "workers/$M1/enroll" 'not json')" = 400 ] &&
	[ "$(post "workers/$M1/enroll" '{"image":{"x":1}}')" = 400 ] &&
	[ "$(post "workers/$M1/enroll" "{\"image\":\"$(head -c 5000 /dev/zero | tr '\0' a)\"}")" = 413 ] &&
	[ "$(post "workers/$M1/explode" '{}')" = 404 ] && [ "$(post "workers/not-a-mac/release" '')" = 400 ] &&
	pass "unknown settings, non-objects, nested values, bodies over 4 KiB and unknown actions are refused" ||
	fail "hostile bodies: $(cat "$T/ans")"
[ "$(post "workers/$M1/enroll" '{"image":"pios","force":"false"}')" = 400 ] && has "must be true or false" "$T/ans" &&
	[ "$(post "workers/$M1/enroll" '{"image":"pios","hostname":false}')" = 400 ] &&
	[ "$(post "workers/$M1/enroll" '{"image":"pios"} trailing')" = 400 ] &&
	[ "$(post "workers/$M1/enroll" '{"image":"pios"}{"force":true}')" = 400 ] &&
	[ "$(post "workers/$M1/enroll" '{"image":"pios\u0000x","force":true}')" = 400 ] &&
	[ "$(post mass-flash '{"image":"pios","limit":true}')" = 400 ] &&
	[ "$(post mass-flash '{"image":"pios","limit":"3x"}')" = 400 ] &&
	[ "$(post mass-flash '{"image":"pios","limit":-5}')" = 400 ] && has "'limit' must be a whole number, 0 or more" "$T/ans" &&
	curl -sf "$H/workers/$D1" | has '"hostname":"rack4-01"' &&
	pass "each setting has its type: \"false\" is not a boolean, nothing after the object, no NUL" ||
	fail "types: $(cat "$T/ans")"
[ "$(post "workers/$D1/release" '')" = 200 ] && [ ! -d "$MR/tftp/$D1" ] && has "released $D1" "$T/ans" &&
	pass "POST /api/workers/MAC/release releases it" || fail "release: $(cat "$T/ans")"
[ "$(post "workers/$M1/reimage" '{"image":"pios"}')" = 200 ] && [ -d "$MR/tftp/$D1" ] && has "netflash-agent" "$T/ans" &&
	pass "POST /api/workers/MAC/reimage enrolls it and says how to disable its card" ||
	fail "reimage: $(cat "$T/ans")"
[ "$(post "workers/$M1/power-cycle" '{"off_time":"1"}')" = 409 ] && has "power.conf" "$T/ans" &&
	pass "power-cycle with no power control for it: 409, the reason named" || fail "power: $(cat "$T/ans")"

# ---- mass-flash start, status, stop -----------------------------------------------
[ "$(post mass-flash '{"image":"pios","limit":"3"}')" = 202 ] && [ "$(field running)" = True ] &&
	pid=$(field pid) && register_pid "$pid" &&
	curl -sf "$H/mass-flash" | has '"running":true' && [ "$(post mass-flash '{"image":"pios"}')" = 409 ] &&
	pass "POST /api/mass-flash starts one (202), GET shows it, a second is refused (409)" ||
	fail "mass-flash start: $(cat "$T/ans"; cat "$MR/log/mass-flash.log")"
[ "$(METHOD=DELETE post mass-flash '')" = 200 ] && [ "$(field stopping)" = True ] &&
	wait_until 10 sh -c "curl -sf '$H/mass-flash' | grep -q '\"running\":false'" &&
	! kill -0 "$pid" 2>/dev/null && has "mass-flash: enrolling Raspberry Pis" "$MR/log/mass-flash.log" &&
	pass "DELETE /api/mass-flash stops it as Ctrl-C does; its output is in log/mass-flash.log" ||
	fail "mass-flash stop: $(cat "$T/ans"; curl -s "$H/mass-flash")"
[ "$(post mass-flash '{"image":"nosuch"}')" = 409 ] && has "ended at once" "$T/ans" &&
	[ "$(METHOD=DELETE post mass-flash '')" = 409 ] &&
	pass "a mass-flash that cannot start says so; stopping none is 409" || fail "mass-flash bad: $(cat "$T/ans")"
# One mass-flash a root: one the CLI started (or one from before a
# restart) is seen, refuses a second, and DELETE stops it.
"$NF" --root "$MR" mass-flash --image pios >"$T/mf-cli.log" 2>&1 &
cpid=$!
register_pid "$cpid"
wait_for "$T/mf-cli.log" "enrolling Raspberry Pis" 10
rc=0
"$NF" --root "$MR" mass-flash --image pios >/dev/null 2>"$T/mf2.err" || rc=$?
curl -sf "$H/mass-flash" >"$T/mfs.json"
[ "$rc" = 1 ] && has "another mass-flash is running on .* (pid $cpid)" "$T/mf2.err" &&
	has "\"running\":true,\"pid\":$cpid,\"ours\":false" "$T/mfs.json" && [ "$(post mass-flash '{"image":"pios"}')" = 409 ] &&
	[ "$(METHOD=DELETE post mass-flash '')" = 200 ] && wait_until 10 sh -c "! kill -0 $cpid 2>/dev/null" &&
	pass "a mass-flash netflashd did not start: seen by the API, a second refused, DELETE stops it" ||
	fail "foreign mass-flash: rc $rc $(cat "$T/mf2.err" "$T/mfs.json" "$T/ans")"
wait "$cpid" 2>/dev/null || true

# Live streams are capped: open ones never lock out the API. One address
# holds at most 4 (http_limits.sh): these 8 come from two.
spids=()
for i in 1 2 3 4 5 6 7 8; do
	curl -sN --interface "127.0.0.$((i % 2 + 1))" "$H/stream" >/dev/null 2>&1 &
	spids+=($!)
	register_pid $!
done
wait_until 10 sh -c "[ \$(ss -Htn state established '( dport = :$HPORT )' | wc -l) -ge 8 ]" ||
	fail "the 8 streams did not connect"
[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --interface 127.0.0.3 "$H/stream")" = 503 ] &&
	[ "$(post "workers/$D1/release" '')" = 200 ] && curl -sf --max-time 5 "$H/workers" >/dev/null &&
	pass "a ninth live stream is refused (503) while actions and reads still answer" ||
	fail "streams: $(cat "$T/ans")"
for p in "${spids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
finish
