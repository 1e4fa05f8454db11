#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Multicast sessions (docs/multicast.md) on a LAN of network namespaces:
# netflashd, nfs-ganesha and udp-sender in the master's namespace, workers
# running the worker's job path (netflash-write --report-to, which runs
# udp-receiver) onto files as cards. Workers enrolled with --multicast
# gather into one session per image and are released only by a DONE with
# the catalog's digest; a worker whose receiver dies mid-session fails
# that job and takes NFS on its next; the others finish without it; a
# worker that comes once a session runs waits for the next one; a stream
# forged by another host on the LAN is written but never released.
source "$(dirname "$0")/../lib.sh"

command -v udp-sender >/dev/null || { echo "SKIP: no udp-sender (Debian package udpcast)"; exit 77; }
NF="$NETFLASH_BUILD/master-tools/netflash"
NFD="$NETFLASH_BUILD/master-tools/netflashd"
img=$(test_image 24)
size=$(stat -c %s "$img")
R=$T/root
MIP=10.80.0.2

netns_lan
netns_host master 02:00:00:00:02:02 $MIP
for i in 1 2 3 4 5 6; do
	netns_host "w$i" "b8:27:eb:00:0e:0$i" "10.80.0.1$i"
done
netns_host evil 02:00:00:00:02:66 10.80.0.66
for h in master w1 w2 w3 w4 w5 w6 evil; do nsx "$h" ip route add 224.0.0.0/4 dev eth0; done
mac() { echo "b8:27:eb:00:0e:0$1"; }
dir() { echo "b8-27-eb-00-0e-0$1"; }

nsx master "$NF" --root "$R" init --interface eth0 --subnet 10.80.0.0/24 --server-ip $MIP --port 7070 >/dev/null
"$NF" --root "$R" image add "$img.zst" --name pios >/dev/null
"$NF" --root "$R" boot-files import --from-image pios >/dev/null 2>&1
GANESHA_ADDR=$MIP GANESHA_NETNS=$(_ns master)
ganesha_start "$R/images" "$T" || { fail "ganesha did not start in the master's namespace"; finish; }
nsx master "$NFD" --root "$R" --listen $MIP:7070 --nfs-url "nfs://$MIP/export?$GANESHA_URL_ARGS" \
	--http off >>"$T/daemon.log" 2>&1 &
register_pid $!
wait_for "$T/daemon.log" "listening on" 10 || fail "netflashd did not start: $(tail -3 "$T/daemon.log")"

# flash I: worker I's job path onto its card, in the background (pid in
# $pidI, output in $T/wI.log).
flash() {
	local i=$1
	[ -f "$T/card$i" ] || pattern_file "$T/card$i" $((48 * 1048576))
	nsx "w$i" "$NFW" --progress=none --report-to $MIP:7070 --mac "$(mac "$i")" \
		--token "$(grep -o 'netflash.token=[0-9a-f]*' "$R/tftp/$(dir "$i")/cmdline.txt" | cut -d= -f2)" \
		"$T/card$i" >"$T/w$i.log" 2>&1 &
	register_pid $!
	eval "pid$i=$!"
}
# receiver_of PID: the udp-receiver under flash's background job PID.
receiver_of() {
	local kids
	kids=$(pgrep -d, -P "$1") && pgrep -x udp-receiver -P "$kids"
}
released() { [ ! -e "$R/tftp/$(dir "$1")" ] && cmp -s -n "$size" "$img" "$T/card$1"; }
sessions() { cat "$R/state/sessions.json" 2>/dev/null; }

# ---- 1. three workers, one session, one stream -----------------------------
for i in 1 2 3; do
	"$NF" --root "$R" enroll "$(mac $i)" --image pios --multicast --min-workers 3 --max-wait 60 >"$T/enroll$i.out"
done
has "delivery: multicast session (min-workers=3 max-wait=60 late=wait)" "$T/enroll1.out" &&
	pass "enroll --multicast says how the image travels" || fail "enroll: $(cat "$T/enroll1.out")"
"$NF" --root "$R" image add "$img.xz" --name xzonly --keep-format >/dev/null
"$NF" --root "$R" enroll b8:27:eb:00:0e:99 --image xzonly --multicast >/dev/null 2>"$T/xz.err"
has "image 'xzonly' is stored as xz, which cannot stream (its index is at its end): b8-27-eb-00-0e-99 will take NFS" "$T/xz.err" &&
	pass "enroll --multicast of an image stored as xz says it will take NFS, and why" || fail "xz enroll: $(cat "$T/xz.err")"
"$NF" --root "$R" release b8:27:eb:00:0e:99 >/dev/null
for i in 1 2 3; do flash "$i"; done
rc=0
for i in 1 2 3; do wait "$(eval echo "\$pid$i")" || rc=$?; done
[ $rc = 0 ] && released 1 && released 2 && released 3 && [ "$(grep -c "joins multicast session 1 " "$T/daemon.log")" = 3 ] &&
	grep -q "multicast session 1: udp-sender (pid [0-9]*) waits for the receivers of 3 worker(s) on port base 9000" "$T/daemon.log" &&
	pass "three workers took one multicast session (one udp-sender), verified and were released" ||
	fail "session 1: rc=$rc $(tail -5 "$T/daemon.log"; tail -3 "$T"/w[123].log)"
sessions | python3 -c 'import json,sys
s = json.load(sys.stdin)[0]
assert s["state"] == "ended" and s["image"] == "pios" and s["end"] == "the stream is complete", s
assert sorted(m["state"] for m in s["members"]) == ["done"] * 3, s' &&
	"$NF" --root "$R" status | has "^multicast session 1: image 'pios', ended [0-9]*s ago: the stream is complete, port base 9000, 3 member(s): 3 done, 0 failed" &&
	pass "status and state/sessions.json: session 1 ended complete, 3 members done" ||
	fail "sessions: $(sessions) $("$NF" --root "$R" status | tail -3)"

# ---- 2. a receiver stops mid-session: the other member finishes, the
# stopped one fails its job and takes NFS on its next ------------------------
# The master's link at 4 Mbit/s keeps the stream under way for seconds.
nsx master tc qdisc add dev eth0 root tbf rate 4mbit burst 32kbit latency 400ms
for i in 4 5; do
	"$NF" --root "$R" enroll "$(mac $i)" --image pios --multicast --min-workers 2 --max-wait 60 >/dev/null
done
flash 4
flash 5
wait_for "$T/daemon.log" "session 2: udp-sender (pid [0-9]*) waits for the receivers of 2 worker(s)" 90 || fail "session 2 never started"
rpid=$(receiver_of "$pid5" || true)
# Both receivers are in and data flows (worker 4 reports writing), then
# worker 5's receiver stops reading, as a hung card would make it.
wait_until 60 grep -q "\"state\":\"sending\"" "$R/state/sessions.json"
sleep 1
[ -n "$rpid" ] && kill -STOP "$rpid" || fail "worker 5 runs no udp-receiver"
t0=$(date +%s.%N)
wait "$pid4" && released 4 && pass "with one member's receiver stopped mid-stream, the other finished and was released" ||
	fail "worker 4: $(tail -3 "$T/w4.log")"
t4=$(date +%s.%N)
[ -n "$rpid" ] && kill -KILL "$rpid"
rc=0
wait "$pid5" || rc=$?
[ $rc != 0 ] && [ -d "$R/tftp/$(dir 5)" ] && has "udp-receiver" "$T/w5.log" &&
	pass "the stopped member failed its job cleanly (rc $rc), not released; worker 4 waited $(echo "$t4 - $t0" | bc) s for the drop" ||
	fail "worker 5 (rc $rc): $(tail -3 "$T/w5.log")"
nsx master tc qdisc del dev eth0 root
flash 5
wait "$pid5" && released 5 && grep -q "$(dir 5): its multicast session failed before: this job takes NFS" "$T/daemon.log" &&
	pass "its next job took NFS and released it" || fail "worker 5 retry: $(tail -3 "$T/w5.log"; tail -3 "$T/daemon.log")"
"$NF" --root "$R" status | has "^  $(dir 5) left it: source: " &&
	pass "status names the member that left session 2 and why" || fail "status: $("$NF" --root "$R" status | tail -4)"

# ---- 3. a late worker waits for the next session ----------------------------
"$NF" --root "$R" enroll "$(mac 6)" --image pios --multicast --max-wait 2 >/dev/null
"$NF" --root "$R" enroll "$(mac 1)" --image pios --multicast --max-wait 2 --force >/dev/null
rm -f "$T/card1"
flash 1
# Hold session 3 under way: its one receiver paused before it connects.
wait_until 30 receiver_of "$pid1" >/dev/null || fail "worker 1 never ran udp-receiver"
rpid=$(receiver_of "$pid1" || true)
[ -n "$rpid" ] && kill -STOP "$rpid"
wait_for "$T/daemon.log" "session 3: udp-sender (pid [0-9]*) waits for the receivers of 1 worker(s) on port base 9000" 30 ||
	fail "session 3 did not start"
flash 6
wait_for "$T/daemon.log" "$(dir 6) joins multicast session 4" 30 || fail "worker 6 did not join a session"
[ -n "$rpid" ] && kill -CONT "$rpid"
rc=0
wait "$pid1" || rc=$?
wait "$pid6" || rc=$?
[ $rc = 0 ] && released 1 && released 6 &&
	grep -q "multicast session 4: image 'pios' on port base 9002 gathers" "$T/daemon.log" &&
	pass "a worker that came while a session ran got the next session of the image (port base 9002)" ||
	fail "late joiner: rc=$rc $(grep -i "session" "$T/daemon.log" | tail -6)"

# ---- 5. a worker that starts over leaves its session --------------------
# Killed before its receiver got anything, it asks again: its first job's
# membership ends ("the worker started over"), the session streams to its
# new job alone, and ends complete with 1 done and 1 left.
"$NF" --root "$R" enroll "$(mac 3)" --image pios --multicast --min-workers 2 --max-wait 8 --force >/dev/null
rm -f "$T/card3"
flash 3
wait_for "$T/daemon.log" "$(dir 3) joins multicast session 5 (1 member" 30 || fail "worker 3 did not join session 5"
kids=$(pgrep -d' ' -P "$pid3" || true)
for k in $kids; do kill -KILL $(pgrep -P "$k" || true) "$k" 2>/dev/null || true; done
wait "$pid3" 2>/dev/null || true
flash 3
wait "$pid3" && released 3 &&
	"$NF" --root "$R" status | has "^multicast session 5: image 'pios', ended [0-9]*s ago: the stream is complete, port base 9000, 2 member(s): 1 done, 1 failed" &&
	"$NF" --root "$R" status | has "^  $(dir 3) left it: the worker started over (job [0-9]*)" &&
	grep -q "session 5: udp-sender (pid [0-9]*) waits for the receivers of 1 worker(s)" "$T/daemon.log" &&
	pass "a worker that started over left its session; the session streamed to its new job alone" ||
	fail "started over: $("$NF" --root "$R" status | tail -3) $(grep "session 5" "$T/daemon.log")"

# ---- 4. a forged stream: another host answers first with its own image ----
# (a valid zstd disk image, its middle changed). The worker writes what it
# was sent, but the digest it checks is the master's, and so is the
# release: it fails that job, is not released, and takes NFS next.
cp "$img" "$T/forged.img"
corrupt_file "$T/forged.img"
zstd -q -3 "$T/forged.img" -o "$T/forged.img.zst"
nsx evil udp-sender --nokbd --no-progress --file "$T/forged.img.zst" --portbase 9000 --interface eth0 \
	--min-receivers 1 >"$T/evil.log" 2>&1 &
register_pid $!
evil_pid=$!
"$NF" --root "$R" enroll "$(mac 2)" --image pios --multicast --max-wait 60 --force >/dev/null
rm -f "$T/card2"
flash 2
rc=0
wait "$pid2" || rc=$?
[ $rc != 0 ] && [ -d "$R/tftp/$(dir 2)" ] && grep -q "New connection from 10.80.0.12" "$T/evil.log" &&
	grep -qi "sha-256\|sha256\|digest" "$T/w2.log" &&
	pass "a stream forged by another host was refused by its digest; the worker was not released (rc $rc)" ||
	fail "forged stream (rc $rc): $(tail -2 "$T/w2.log"; tail -3 "$T/evil.log")"
kill "$evil_pid" 2>/dev/null || true
flash 2
wait "$pid2" && released 2 && pass "its next job took NFS and released it" ||
	fail "worker 2 after the forgery: $(tail -3 "$T/w2.log")"
finish
