#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A browser on the LAN logs in to the dashboard (issue 30, item 2). On a
# namespace LAN, netflashd's dashboard is bound to the master's address and
# a laptop reaches it: the page loads (it holds no data) and shows a login
# form; POST /api/session with the read or admin token, from the page's own
# origin, yields an HttpOnly, SameSite=Strict session cookie; the read
# session reads and takes no action; the admin session acts only from the
# page's own origin (a cookie alone rides on other sites' requests too), and
# the worker is released; logout ends the session. Then Chromium in the
# laptop's namespace logs in through the form, and as admin releases a
# worker ticked in the fleet table (issue 30, item 3).
source "$(dirname "$0")/../lib.sh"

img=$(test_image 16)
MR=$T/root
MPORT=$("$NETFLASH_BUILD/tests/freeport")
"$NF" --root "$MR" init --interface lo --server-ip 127.0.0.1 --subnet 127.0.0.0/8 --port "$MPORT" >/dev/null
"$NF" --root "$MR" image add "$img.zst" --name pios >/dev/null
"$NF" --root "$MR" boot-files import --from-image pios >/dev/null 2>&1
M1=b8:27:eb:00:30:01 D1=b8-27-eb-00-30-01
"$NF" --root "$MR" enroll "$M1" --image pios --hostname rack2-01 >/dev/null

netns_lan
netns_host master 02:00:00:00:30:01 10.80.0.1
netns_host laptop 02:00:00:00:30:02 10.80.0.2
HP=8080
nsx master "$NFD" --root "$MR" --listen "127.0.0.1:$MPORT" --peer-check=off --http "10.80.0.1:$HP" \
	--nfs-url "nfs://10.80.0.1/export" >"$T/d.log" 2>&1 &
register_pid $!
wait_for "$T/d.log" "dashboard and API on" 5 || fail "netflashd did not start: $(cat "$T/d.log")"
U=http://10.80.0.1:$HP O="Origin: http://10.80.0.1:$HP"
READ=$(cat "$MR/state/http.token") ADMIN=$(cat "$MR/state/admin.token")
# lan ARGS...: curl from the laptop; the HTTP status on stdout, the body in $T/b
lan() { nsx laptop curl -s -o "$T/b" -w '%{http_code}' "$@"; }
login() { # TOKEN [HEADER]: logs in; the cookie jar is $T/jar
	lan -c "$T/jar" -D "$T/h" -X POST -H "Content-Type: application/json" ${2:+-H "$2"} \
		--data "{\"token\":\"$1\"}" "$U/api/session"
}

[ "$(lan "$U/")" = 200 ] && has 'id="login-form"' "$T/b" && [ "$(lan "$U/api/workers")" = 401 ] &&
	[ "$(lan "$U/api/session")" = 200 ] && has '"role":"none","read":false' "$T/b" &&
	pass "from the LAN: the page loads with its login form, the API says 401, /api/session says login" ||
	fail "before login: $(cat "$T/b")"
[ "$(login "$ADMIN")" = 403 ] && [ "$(login "$ADMIN" "Origin: http://evil.example")" = 403 ] &&
	[ "$(login "${READ}x" "$O")" = 401 ] && has "neither the read token" "$T/b" &&
	pass "a login from another origin (or none) is 403; a wrong token is 401" || fail "bad logins: $(cat "$T/b")"

[ "$(login "$READ" "$O")" = 200 ] && has '"role":"read"' "$T/b" &&
	grep -qi "^set-cookie: nf_session=[0-9a-f]\{64\}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200" "$T/h" &&
	[ "$(lan -b "$T/jar" "$U/api/workers")" = 200 ] && has "\"mac\":\"$D1\"" "$T/b" &&
	[ "$(lan -b "$T/jar" -X POST -H "$O" "$U/api/workers/$M1/release")" = 403 ] && has "read token" "$T/b" &&
	pass "the read token's session: an HttpOnly SameSite=Strict cookie that reads, and no action (403)" ||
	fail "read session: $(cat "$T/h" "$T/b")"

[ "$(login "$ADMIN" "$O")" = 200 ] && has '"role":"admin"' "$T/b" &&
	[ "$(lan -b "$T/jar" -X POST "$U/api/workers/$M1/release")" = 403 ] &&
	[ "$(lan -b "$T/jar" -X POST -H "Origin: http://evil.example" "$U/api/workers/$M1/release")" = 403 ] &&
	[ -d "$MR/tftp/$D1" ] &&
	[ "$(lan -b "$T/jar" -X POST -H "$O" "$U/api/workers/$M1/release")" = 200 ] && [ ! -d "$MR/tftp/$D1" ] &&
	"$NF" --root "$MR" ls | grep "^$M1 " | has " released " &&
	pass "the admin session acts from the page's own origin only (403 without it, or from another), and the worker is released" ||
	fail "admin session: $(cat "$T/b")"
[ "$(lan -b "$T/jar" -c "$T/jar2" -D "$T/h2" -X DELETE -H "$O" "$U/api/session")" = 200 ] &&
	grep -qi "^set-cookie: nf_session=; .*Max-Age=0" "$T/h2" &&
	[ "$(lan -b "$T/jar" "$U/api/workers")" = 401 ] &&
	pass "logout ends the session: its cookie no longer reads" || fail "logout: $(cat "$T/h2" "$T/b")"

# Chromium on the laptop logs in through the page's form.
"$NF" --root "$MR" enroll "$M1" --image pios --hostname rack2-01 >/dev/null
if have_browser; then
	nsx laptop node "$WEB/login.mjs" "$U/" "$READ" "$D1" "$T/profile" "$ADMIN" >"$T/login.log" 2>&1 || true
	cat "$T/login.log"
	! grep -q '^FAIL' "$T/login.log" && [ "$(grep -c '^PASS' "$T/login.log")" = 7 ] ||
		fail "Chromium login: $(cat "$T/login.log")"
	[ ! -d "$MR/tftp/$D1" ] && "$NF" --root "$MR" ls | grep "^$M1 " | has " released " &&
		[ "$("$NF" --root "$MR" history "$M1" | sed -n '/^released/,/^[a-z]/p' | grep -c 'by netflash release')" = 2 ] &&
		pass "the page's Release ran netflash release: the worker is released, and history says so" ||
		fail "after the page's release: $("$NF" --root "$MR" ls)"
	# Image management: add from a path on the master, remove when unused.
	M2=b8:27:eb:00:30:02 D2=b8-27-eb-00-30-02
	"$NF" --root "$MR" enroll "$M2" --image pios >/dev/null
	nsx laptop node "$WEB/images.mjs" "$U/" "$ADMIN" "$img.xz" pios "$D2" "$T/profile2" >"$T/images.log" 2>&1 || true
	cat "$T/images.log"
	! grep -q '^FAIL' "$T/images.log" && [ "$(grep -c '^PASS' "$T/images.log")" = 3 ] &&
		! "$NF" --root "$MR" image ls | has "^added1 " && has "can be flashed now" "$MR/log/image-add.log" ||
		fail "images in the page: $(cat "$T/images.log") $(tail -3 "$MR/log/image-add.log" 2>/dev/null)"
else
	echo "web_login: no node, playwright-core or chromium: the browser part is skipped" >&2
fi
finish
