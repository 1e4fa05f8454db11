#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A master's memory on a small Pi (issue 28). image add: converting takes
# at most half of MemTotal, or --max-memory; the plan (level, threads) is
# said in one line and the peak RSS, measured by time(1), stays within it
# (budgets of a Pi 3B+, half of 906 MiB, and a Pi Zero 2 W, half of 427
# MiB). netflashd with 64 enrolled workers, 16 of them in a job reporting
# progress, and the dashboard read: its peak RSS (VmHWM) under 64 MiB.
source "$(dirname "$0")/../lib.sh"

NF="$NETFLASH_BUILD/master-tools/netflash"
NFD="$NETFLASH_BUILD/master-tools/netflashd"
img=$(test_image 64)
MPORT=$("$NETFLASH_BUILD/tests/freeport")
HPORT=$("$NETFLASH_BUILD/tests/freeport")
"$NF" --root "$T/r" init --interface lo --server-ip 127.0.0.1 --subnet 127.0.0.0/8 --port "$MPORT" >/dev/null
for b in 453 213; do
	/usr/bin/time -f "%M" -o "$T/rssa$b" "$NF" --root "$T/r" image add "$img.xz" --name "m$b" --max-memory "${b}M" \
		>/dev/null 2>"$T/fast$b.err" || fail "image add with ${b}M: $(cat "$T/fast$b.err")"
	# The level 19 copy is image finish's (netflashd runs it with the
	# daemon's budget; here by hand with the Pi's).
	/usr/bin/time -f "%M" -o "$T/rss$b" "$NF" --root "$T/r" image finish "m$b" --max-memory "${b}M" \
		>/dev/null 2>"$T/add$b.err" || fail "image finish with ${b}M: $(cat "$T/add$b.err")"
	rssa=$(($(tail -1 "$T/rssa$b") / 1024))
	[ "$rssa" -le "$b" ] && pass "--max-memory ${b}M: image add's fast copy peaks at ${rssa} MiB" ||
		fail "--max-memory ${b}M: image add peaks at ${rssa} MiB"
	rss=$(($(tail -1 "$T/rss$b") / 1024))
	line=$(grep "converting at zstd level" "$T/add$b.err" || true)
	[ -n "$line" ] && [ "$rss" -le "$b" ] && "$NF" --root "$T/r" image check "m$b" >/dev/null &&
		pass "--max-memory ${b}M: peak RSS ${rss} MiB; ${line#netflash: }" ||
		fail "--max-memory ${b}M: peak RSS ${rss} MiB; $(cat "$T/add$b.err")"
done
has "level 19 with 1 thread(s)" "$T/add453.err" && has "level 19 with one thread" "$T/add213.err" &&
	pass "a Pi 3B+'s budget gets level 19 with one worker thread (16 MiB window), a Pi Zero 2 W's none" ||
	fail "plans: $(cat "$T/add453.err" "$T/add213.err")"
rc=0; "$NF" --root "$T/r" image add "$img.xz" --name bad --max-memory 10M 2>"$T/bad.err" || rc=$?
[ $rc = 2 ] && has "invalid --max-memory '10M': expected a size of at least 64M" "$T/bad.err" &&
	pass "a --max-memory too small is refused in one line" || fail "bad --max-memory: rc=$rc $(cat "$T/bad.err")"

# ---- netflashd: 64 enrolled, 16 running jobs ---------------------------------
MR=$T/r
"$NF" --root "$MR" boot-files import --from-image m453 >/dev/null 2>&1
for i in $(seq 1 64); do printf 'b8:27:eb:00:12:%02x,rack3-%02d,m453\n' "$i" "$i"; done >"$T/rack.csv"
"$NF" --root "$MR" enroll --from-csv "$T/rack.csv" >/dev/null
"$NFD" --root "$MR" --listen "127.0.0.1:$MPORT" --nfs-url nfs://127.0.0.1/export --peer-check=off \
	--http "127.0.0.1:$HPORT" >>"$T/daemon.log" 2>&1 &
dpid=$!
register_pid $dpid
wait_listen "$MPORT" || fail "netflashd did not start: $(tail -3 "$T/daemon.log")"
python3 - "$MPORT" "$MR" <<'PY' >"$T/jobs.out"
import socket, sys, time
port, root = int(sys.argv[1]), sys.argv[2]
conns = []
for i in range(1, 17):
    mac = "b8:27:eb:00:12:%02x" % i
    tok = open("%s/tftp/%s/cmdline.txt" % (root, mac.replace(":", "-"))).read().split("netflash.token=")[1].split()[0]
    s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
    s.sendall(("HELLO v=1 mac=%s token=%s\n" % (mac, tok)).encode())
    job = f.readline().decode()
    conns.append((s, job.split("id=")[1].split()[0]))
for step in range(1, 21):
    for s, jid in conns:
        s.sendall(("PROGRESS id=%s stage=write done=%d total=67108864 mbps=20.0\n" % (jid, step << 20)).encode())
    time.sleep(0.1)
print(len(conns))
PY
for _ in 1 2 3; do curl -sf "http://127.0.0.1:$HPORT/api/workers" >/dev/null; curl -sf "http://127.0.0.1:$HPORT/" >/dev/null; done
hwm=$(awk '/^VmHWM/ { print int($2 / 1024) }' "/proc/$dpid/status")
[ "$(cat "$T/jobs.out")" = 16 ] && "$NF" --root "$MR" status | grep -c " write " | has "^16$" && [ "$hwm" -lt 64 ] &&
	pass "netflashd with 64 enrolled workers, 16 jobs reporting and the dashboard read: peak RSS ${hwm} MiB" ||
	fail "netflashd: peak RSS ${hwm} MiB; $(cat "$T/jobs.out"); $("$NF" --root "$MR" status | head -5)"
finish
