#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The dashboard in a real browser: Debian's Chromium driven by playwright-core
# (tests/web, installed by scripts/deps.sh with npm). A worker is seen going
# from enrolled to released on the open page, live; the failure reason a
# hostile worker sent (markup) shows as text and never runs; a multicast
# session gathering shows with its member; a screenshot
# of the page lands in the build dir (web-dashboard.png).
source "$(dirname "$0")/../lib.sh"

need_browser
img=$(test_image 64)
master_setup "$img.zst" pios
HPORT=$("$NETFLASH_BUILD/tests/freeport")
daemon_start --http "127.0.0.1:$HPORT"
M1=b8:27:eb:00:07:01 D1=b8-27-eb-00-07-01 M2=b8:27:eb:00:07:02 D2=b8-27-eb-00-07-02
"$NF" --root "$MR" enroll "$M1" --image pios --hostname rack5-01 >/dev/null
"$NF" --root "$MR" enroll "$M2" --image pios --hostname rack5-02 >/dev/null
# Worker 2 fails with a reason that is markup.
exec {c}<>"/dev/tcp/127.0.0.1/$MPORT"
printf 'HELLO v=1 mac=%s token=%s\n' "$M2" "$(token_of "$M2")" >&"$c"
read -r -t 5 job <&"$c" || true
id=$(sed -n 's/^JOB id=\([0-9]*\).*/\1/p' <<<"$job")
printf 'FAIL id=%s stage=verify reason=%s\n' "$id" '%3Cimg%20src=x%20onerror=window.pwned=1%3E' >&"$c"
read -r -t 5 _ <&"$c" || true
exec {c}>&-

# Worker 3 takes multicast: its job gathers a session the page must show.
M3=b8:27:eb:00:07:03
"$NF" --root "$MR" enroll "$M3" --image pios --hostname rack5-03 --multicast --max-wait 3600 >/dev/null
exec {c}<>"/dev/tcp/127.0.0.1/$MPORT"
printf 'HELLO v=1 mac=%s token=%s\n' "$M3" "$(token_of "$M3")" >&"$c"
read -r -t 5 job <&"$c" || true
exec {c}>&-
[[ $job == *"url=udpcast://127.0.0.1:9000?start=3750 "* ]] || fail "worker 3's JOB names no session: $job"

shot=$NETFLASH_BUILD/web-dashboard.png
rm -f "$shot"
node "$WEB/watch.mjs" "http://127.0.0.1:$HPORT/" "$D1" "$D2" "$shot" "$T/profile" >"$T/watch.log" 2>&1 &
wpid=$!
register_pid "$wpid"
if wait_for "$T/watch.log" "SEEN enrolled" 60; then
	pattern_file "$T/card1" $((64 * 1048576))
	report "$M1" "$T/card1" 2>"$T/w1.log" || fail "worker 1: $(cat "$T/w1.log")"
fi
rc=0
wait "$wpid" || rc=$?
grep '^PASS: ' "$T/watch.log" || true
[ "$rc" = 0 ] && [ -s "$shot" ] && [ "$(head -c 8 "$shot" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
	pass "Chromium (playwright-core) watched it all; screenshot $shot" || fail "browser: $(cat "$T/watch.log")"
finish
