#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# 32 simulated workers (real engine processes, sparse files as cards) flash
# at once from one ganesha and one netflashd: all succeed, each TFTP dir is
# removed exactly once.
source "$(dirname "$0")/../lib.sh"

N=${NETFLASH_SCALE_WORKERS:-32}
img=$(test_image 24)
master_setup "$img.mt.xz" pios
daemon_start
for i in $(seq 1 "$N"); do
	"$NF" --root "$MR" enroll "$(printf 'b8:27:eb:00:10:%02x' "$i")" --image pios >/dev/null
done
pids=()
t0=$(date +%s.%N)
for i in $(seq 1 "$N"); do
	mac=$(printf 'b8:27:eb:00:10:%02x' "$i")
	truncate -s 32M "$T/card$i"
	report "$mac" "$T/card$i" --threads 1 2>"$T/w$i.log" &
	pids+=($!)
	register_pid "$!"
done
ok=0
for i in $(seq 1 "$N"); do
	if wait "${pids[$((i - 1))]}" && cmp -s -n "$(stat -c %s "$img")" "$img" "$T/card$i"; then
		ok=$((ok + 1))
	else
		fail "worker $i: $(tail -2 "$T/w$i.log")"
	fi
done
secs=$(echo "$(date +%s.%N) - $t0" | bc -l)
[ "$ok" -eq "$N" ] && pass "$N workers flashed and verified at once ($(printf %.1f "$secs") s)" || fail "$ok of $N succeeded"
[ -z "$(ls -A "$MR/tftp")" ] && pass "every TFTP dir removed" || fail "left: $(ls -A "$MR/tftp")"
[ "$(grep -c 'verified .*released' "$T/daemon.log")" -eq "$N" ] && pass "exactly $N releases in the daemon log" ||
	fail "releases: $(grep -c 'verified .*released' "$T/daemon.log")"
[ "$("$NF" --root "$MR" history | grep -c ' done ')" -eq "$N" ] && pass "$N done jobs in history" || fail "history"
kill -0 "$DAEMON_PID" && pass "daemon alive" || fail "daemon died"
finish
