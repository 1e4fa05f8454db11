#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Hooks (ROOT/hooks/{done,failed,enrolled}.d): each runs with the event's
# facts in NETFLASH_* variables and nothing else of the daemon's
# environment, no shell, for at most hook_timeout seconds; what it said
# lands in the worker's history; a hung or failing hook never holds up the
# daemon; a hook that others may write, or a name run-parts would skip,
# does not run.
source "$(dirname "$0")/../lib.sh"

img=$(test_image 16)
master_setup "$img.zst" pios
echo "hook_timeout=2" >>"$MR/netflash.conf"
HPORT=$("$NETFLASH_BUILD/tests/freeport")
daemon_start --http "127.0.0.1:$HPORT"
M1=b8:27:eb:00:05:01 D1=b8-27-eb-00-05-01 M2=b8:27:eb:00:05:02 D2=b8-27-eb-00-05-02

# hook DIR NAME BODY: an executable sh script (0755, ours).
hook() {
	mkdir -p "$MR/hooks/$1"
	chmod 0755 "$MR/hooks" "$MR/hooks/$1"
	printf '#!/bin/sh\n%s\n' "$3" >"$MR/hooks/$1/$2"
	chmod 0755 "$MR/hooks/$1/$2"
}
# Each records its environment and the runner's PID (to end it by PID).
for ev in done failed enrolled; do
	hook "$ev.d" 10-record "echo \$PPID >>$T/runners; grep ^SigIgn /proc/\$\$/status >$T/$ev.sig
env | sort >$T/$ev.env; echo recorded \$NETFLASH_MAC"
done
# Two lines that come apart (two reads): "oops again", not "oopsagain".
hook done.d 20-fails 'echo oops >&2; sleep 0.3; echo again >&2; exit 3'
hook done.d 30-hangs "echo \$\$ >$T/hang.pid; exec sleep 600"
hook done.d 40-writable "touch $T/writable-ran"
chmod 0775 "$MR/hooks/done.d/40-writable"
hook done.d x.bak "touch $T/bak-ran"
hook enrolled.d 20-late "sleep 1; echo late"

"$NF" --root "$MR" enroll "$M1" --image pios --hostname rack2-01 >/dev/null
wait_for "$T/enrolled.env" "NETFLASH_MAC=$D1" &&
	has -x "NETFLASH_EVENT=enrolled" "$T/enrolled.env" && has -x "NETFLASH_HOSTNAME=rack2-01" "$T/enrolled.env" &&
	has -x "NETFLASH_IMAGE=pios" "$T/enrolled.env" && has -x "NETFLASH_WORKER_STATE=enrolled" "$T/enrolled.env" &&
	pass "enroll runs enrolled.d with the worker's MAC, hostname, image and state" ||
	fail "enrolled hook: $(cat "$T/enrolled.env" 2>&1)"

pattern_file "$T/card1" $((16 * 1048576))
report "$M1" "$T/card1" 2>"$T/w1.log" || fail "worker 1: $(cat "$T/w1.log")"
wait_for "$T/done.env" "NETFLASH_RESULT=done" &&
	has -x "NETFLASH_EVENT=done" "$T/done.env" && has -x "NETFLASH_MAC=$D1" "$T/done.env" &&
	has -x "NETFLASH_HOSTNAME=rack2-01" "$T/done.env" && has "^NETFLASH_JOB=[0-9]" "$T/done.env" &&
	has -x "NETFLASH_BYTES=$(stat -c %s "$img")" "$T/done.env" && has "^NETFLASH_SECONDS=" "$T/done.env" &&
	has -x "NETFLASH_WORKER_STATE=released" "$T/done.env" && has -x "NETFLASH_ROOT=$MR" "$T/done.env" &&
	pass "a verified DONE runs done.d with the job's facts (job, bytes, seconds, released)" ||
	fail "done hook: $(cat "$T/done.env" 2>&1)"
# netflashd ignores SIGPIPE; a hook must not inherit that (bit 13: 0x1000).
[ $((0x$(awk '{print $2}' "$T/done.sig") & 0x1000)) = 0 ] &&
	pass "a hook starts with SIGPIPE at its default, not netflashd's ignore" || fail "hook SigIgn: $(cat "$T/done.sig")"
# Only NETFLASH_* and PATH reach a hook (no HOME, no secrets of the daemon's).
! grep -v '^NETFLASH_\|^PATH=\|^PWD=\|^SHLVL=\|^_=' "$T/done.env" | has . &&
	pass "a hook's environment is the facts and PATH, nothing else" ||
	fail "hook environment: $(grep -v '^NETFLASH_' "$T/done.env")"

# The hung hook is still asleep while the daemon answers another worker.
wait_for "$T/hang.pid" . &&
	kill -0 "$(cat "$T/hang.pid")" 2>/dev/null && pass "the daemon answered DONE without waiting for the hooks" ||
	fail "the hang hook is not running"
"$NF" --root "$MR" enroll "$M2" --image pios >/dev/null
raw_fail "$M2" verify 'block%20at%204096%20differs'
[ -n "$RAW_ID" ] && kill -0 "$(cat "$T/hang.pid")" 2>/dev/null &&
	pass "a worker's HELLO is answered while a hook hangs" || fail "HELLO while a hook hangs: [$RAW_JOB] [$RAW_ANSWER]"
wait_for "$T/failed.env" "NETFLASH_MAC=$D2" &&
	has -x "NETFLASH_RESULT=failed" "$T/failed.env" && has -x "NETFLASH_REASON=verify: block at 4096 differs" "$T/failed.env" &&
	has -x "NETFLASH_ATTEMPTS=1" "$T/failed.env" && has -x "NETFLASH_WORKER_STATE=enrolled" "$T/failed.env" &&
	pass "a failed job runs failed.d with its reason and attempts" || fail "failed hook: $(cat "$T/failed.env" 2>&1)"

# An enroll returns before its hooks end: the runner holds none of its
# output open ($(...) would wait for it).
M3=b8:27:eb:00:05:03 D3=b8-27-eb-00-05-03 M4=b8:27:eb:00:05:04 D4=b8-27-eb-00-05-04
# (20-late sleeps 1 s, within hook_timeout=2: it is not recorded yet when
# the enroll returns, and is recorded later.)
out=$("$NF" --root "$MR" enroll "$M3" --image pios 2>&1)
"$NF" --root "$MR" history "$M3" >"$T/h3"
has "enrolled $D3" <<<"$out" && ! has "hook" <<<"$out" && ! has "enrolled.d/20-late" "$T/h3" &&
	wait_until 10 sh -c "'$NF' --root '$MR' history '$M3' | grep -q 'enrolled.d/20-late: exit 0 in [0-9.]* s: late'" &&
	pass "enroll returns before its enrolled hooks end, and they print nothing into its output" ||
	fail "enroll with hooks: $out; $(grep 'enrolled.d' "$T/h3")"
# Hooks of an API action run to the end although the action's output pipe
# closes when its netflash exits.
curl -s -o "$T/ans" -H "Authorization: Bearer $(cat "$MR/state/admin.token")" -d '{"image":"pios"}' \
	"http://127.0.0.1:$HPORT/api/workers/$M4/enroll"
wait_until 10 sh -c "'$NF' --root '$MR' history '$M4' | grep -q 'enrolled.d/20-late: exit 0 in [0-9.]* s: late'" &&
	"$NF" --root "$MR" history "$M4" | has "enrolled.d/10-record: exit 0" &&
	pass "an API enroll's hooks all run and are recorded" ||
	fail "API enroll hooks: $(cat "$T/ans"; "$NF" --root "$MR" history "$M4" | grep hook)"

# What each done hook did, in the worker's history.
wait_until 10 sh -c "'$NF' --root '$MR' history '$M1' | grep -q 'done.d/30-hangs: killed after 2 s'"
"$NF" --root "$MR" history "$M1" >"$T/h1"
has "done.d/10-record: exit 0 in [0-9.]* s: recorded $D1" "$T/h1" && has "done.d/20-fails: exit 3 in [0-9.]* s: oops again$" "$T/h1" &&
	pass "history shows each hook's exit status and output" || fail "history: $(grep hook -A30 "$T/h1")"
has "done.d/30-hangs: killed after 2 s" "$T/h1" && ! kill -0 "$(cat "$T/hang.pid")" 2>/dev/null &&
	pass "a hook that runs past hook_timeout is killed, and history says so" ||
	fail "hang hook: $(grep 30-hangs "$T/h1")"
has "done.d/40-writable: skipped: not owned by root, or its group or others may write it" "$T/h1" &&
	[ ! -e "$T/writable-ran" ] && pass "a hook its group may write is not run (it would run as root)" ||
	fail "writable hook: $(grep 40-writable "$T/h1")"
! has "x.bak" "$T/h1" && [ ! -e "$T/bak-ran" ] && pass "names run-parts would skip (x.bak) are ignored" ||
	fail "x.bak ran"

# hook-run by hand: the MAC in any spelling is keyed as history keys it;
# the event, root and a fixed PATH are the run's, not the caller's.
rm -f "$T/enrolled.env"
PATH=/opt/nowhere:$PATH NETFLASH_MAC=B8:27:EB:00:05:01 NETFLASH_EVENT=bogus "$NF" --root "$MR" hook-run enrolled 2>/dev/null
has -x "NETFLASH_MAC=$D1" "$T/enrolled.env" && has -x "NETFLASH_EVENT=enrolled" "$T/enrolled.env" &&
	! has "/opt/nowhere" "$T/enrolled.env" && [ "$(grep -c '^NETFLASH_EVENT=' "$T/enrolled.env")" = 1 ] &&
	"$NF" --root "$MR" history "$M1" | has "enrolled.d/10-record: exit 0 .*recorded $D1" &&
	pass "hook-run by hand: the MAC spelled as history keys it, the run's event and PATH" ||
	fail "hook-run by hand: $(cat "$T/enrolled.env")"
rc=0
NETFLASH_MAC="zz'; drop" "$NF" --root "$MR" hook-run enrolled 2>"$T/badmac.err" || rc=$?
[ "$rc" = 2 ] && has "invalid MAC" "$T/badmac.err" && pass "hook-run refuses a NETFLASH_MAC that is not a MAC" ||
	fail "bad MAC: rc $rc $(cat "$T/badmac.err")"

# A hooks dir others may write runs nothing, and says why.
chmod 0777 "$MR/hooks/failed.d"
rm -f "$T/failed.env"
rc=0
NETFLASH_MAC=$D2 "$NF" --root "$MR" hook-run failed 2>"$T/open.err" || rc=$?
[ "$rc" = 1 ] && has "must be owned by root and writable by their owner only" "$T/open.err" &&
	"$NF" --root "$MR" history "$M2" | has "hooks not run: their directory" && [ ! -e "$T/failed.env" ] &&
	pass "a hooks dir others may write: nothing runs, a one-line error" || fail "open dir: rc $rc $(cat "$T/open.err")"
rc=0
"$NF" --root "$MR" hook-run bogus 2>"$T/bogus.err" || rc=$?
[ "$rc" = 2 ] && has "hook-run takes one event: done, failed or enrolled" "$T/bogus.err" &&
	pass "hook-run with an unknown event: usage error" || fail "hook-run bogus: rc $rc $(cat "$T/bogus.err")"

# Every runner started here has ended (each records its PID; end any by PID).
for p in $(sort -u "$T/runners"); do
	wait_until 5 sh -c "! kill -0 $p 2>/dev/null" || { kill -KILL "$p" 2>/dev/null; fail "runner $p still running"; }
done
pass "every hooks runner has ended"
finish
