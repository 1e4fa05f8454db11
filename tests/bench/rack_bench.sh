#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Benchmark: a rack from one stream (issue 27). A master namespace whose
# link to the LAN bridge is throttled with tc tbf (default 100 Mbit/s, so
# the link, not this machine's two cores, is the bound), serving a
# Pi-OS-like image's zstd worker copy by NFS (nfs-ganesha) and by
# multicast (udp-sender); N = 1, 2, 4, 8 workers in their own namespaces,
# each running the worker's engine (netflash-write) onto a card file in
# /dev/shm, every card compared with the image afterwards. Prints the wall
# time of each run and ratios measured in this same run; then multicast
# with 2% of UDP frames lost on the LAN (nftables on the bridge), and with
# one worker killed mid-session. Its last line:
#   rack: multicast 8/1 = R.RRx, unicast 8/1 = U.UUx
# Goal: multicast 8/1 within 1.3x; unicast grows about linearly.
# Not part of ctest (minutes).
#
# usage: sudo tests/bench/rack_bench.sh [SIZE_MIB]   (default 256)
# env:   NETFLASH_BUILD (default ./build), RACK_RATE (tc rate, 100mbit)
set -euo pipefail
size=${1:-256}
rate=${RACK_RATE:-100mbit}
here=$(cd "$(dirname "$0")" && pwd)
export NETFLASH_BUILD=${NETFLASH_BUILD:-$here/../../build}
source "$here/../lib.sh"
command -v udp-sender >/dev/null || { echo "rack_bench: needs udpcast (scripts/deps.sh)" >&2; exit 1; }
img=$(test_image "$size")
bytes=$(stat -c %s "$img")
mkdir -p "$T/export"
cp "$img.zst" "$T/export/pios.img.zst"
MIP=10.82.0.2
N_MAX=8

netns_lan
netns_host master 02:00:00:00:04:02 $MIP
for i in $(seq 1 $N_MAX); do netns_host "w$i" "b8:27:eb:00:0f:0$i" "10.82.0.1$i"; done
for h in master $(seq -f 'w%g' 1 $N_MAX); do nsx "$h" ip route add 224.0.0.0/4 dev eth0; done
nsx master tc qdisc add dev eth0 root tbf rate "$rate" burst 256kbit latency 100ms
GANESHA_ADDR=$MIP GANESHA_NETNS=$(_ns master)
ganesha_start "$T/export" "$T" >/dev/null || { echo "rack_bench: ganesha did not start" >&2; exit 1; }
NFS_URL="nfs://$MIP/export/pios.img.zst?$GANESHA_URL_ARGS"
echo "rack_bench: image $size MiB, worker copy $(($(stat -c %s "$T/export/pios.img.zst") / 1048576)) MiB zstd, master link $rate" >&2

now() { date +%s.%N; }
cards_ok() { # N: every card 1..N holds the image
	local i
	for i in $(seq 1 "$1"); do cmp -s -n "$bytes" "$img" "/dev/shm/rack$$-$i" || return 1; done
}
cleanup_cards() { rm -f /dev/shm/rack$$-*; }
trap 'cleanup_cards; _cleanup' EXIT

# workers N SOURCE: N workers flash SOURCE at once; sets $wall (seconds) and
# $failed (how many exited non-zero).
workers() {
	local n=$1 src=$2 i t0 pids=() rc
	for i in $(seq 1 "$n"); do
		rm -f "/dev/shm/rack$$-$i"
		truncate -s $((bytes + 16 * 1048576)) "/dev/shm/rack$$-$i"
	done
	t0=$(now)
	for i in $(seq 1 "$n"); do
		nsx "w$i" "$NFW" -q --progress=none "$src" "/dev/shm/rack$$-$i" 2>"$T/w$i.log" &
		pids+=($!)
		register_pid $!
	done
	failed=0
	for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed=$((failed + 1)); done
	wall=$(echo "$(now) - $t0" | bc)
}

# sender N: udp-sender for N receivers in the master's namespace ($spid)
sender() {
	nsx master udp-sender --nokbd --no-progress --file "$T/export/pios.img.zst" --portbase 9000 --interface eth0 \
		--min-receivers "$1" --max-wait 30 --retries-until-drop 30 >>"$T/sender.log" 2>&1 &
	spid=$!
	register_pid $spid
}
end_sender() { kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true; }

declare -A U M
for n in 1 2 4 8; do
	workers "$n" "$NFS_URL"
	cards_ok "$n" && [ "$failed" = 0 ] || { echo "rack_bench: unicast $n: $failed failed: $(cat "$T/w1.log")" >&2; exit 1; }
	U[$n]=$wall
	sender "$n"
	workers "$n" "udpcast://$MIP:9000"
	end_sender
	cards_ok "$n" && [ "$failed" = 0 ] || { echo "rack_bench: multicast $n: $failed failed: $(cat "$T/w1.log")" >&2; exit 1; }
	M[$n]=$wall
	printf 'rack_bench: %d worker(s): unicast NFS %6.1f s, multicast %6.1f s\n' "$n" "${U[$n]}" "${M[$n]}"
done

# 2% of the UDP frames on the LAN lost (no netem in this kernel: nftables
# in the bridge's namespace, so the loss is on the wire; a rule in the
# master's output hook fails udp-sender's sendto with EPERM instead, which
# udp-sender takes as fatal).
if command -v nft >/dev/null; then
	nsx br nft add table bridge rackloss
	nsx br nft add chain bridge rackloss lossy '{ type filter hook forward priority filter; policy accept; }'
	nsx br nft add rule bridge rackloss lossy meta l4proto udp numgen random mod 100 '<' 2 drop
	sender 8
	workers 8 "udpcast://$MIP:9000"
	end_sender
	nsx br nft delete table bridge rackloss
	cards_ok 8 && [ "$failed" = 0 ] && loss="$(printf '%.1f s (%.2fx the lossless run)' "$wall" "$(echo "$wall / ${M[8]}" | bc -l)")" ||
		loss="FAILED ($failed workers: $(tail -1 "$T/w1.log"))"
	echo "rack_bench: 8 workers, 2% of UDP frames lost on the LAN: multicast $loss"
fi

# One worker killed a second into the session: the others finish.
sender 4
for i in 1 2 3 4; do truncate -s $((bytes + 16 * 1048576)) "/dev/shm/rack$$-$i"; done
t0=$(now)
pids=()
for i in 1 2 3 4; do
	nsx "w$i" "$NFW" -q --progress=none "udpcast://$MIP:9000" "/dev/shm/rack$$-$i" 2>"$T/w$i.log" &
	pids+=($!)
	register_pid $!
done
sleep 1
kids=$(pgrep -d, -P "${pids[3]}" || true)
[ -n "$kids" ] && kill -KILL ${kids//,/ } "${pids[3]}" 2>/dev/null || true
ok=0
for i in 0 1 2; do wait "${pids[$i]}" && ok=$((ok + 1)); done
wait "${pids[3]}" 2>/dev/null || true
wall=$(echo "$(now) - $t0" | bc)
end_sender
cards_ok 3 && echo "rack_bench: 4 workers, one killed after 1 s: the other $ok finished in $(printf '%.1f' "$wall") s" ||
	echo "rack_bench: 4 workers, one killed: the others did NOT all finish ($ok of 3)"

printf 'rack: multicast 8/1 = %.2fx, unicast 8/1 = %.2fx\n' "$(echo "${M[8]} / ${M[1]}" | bc -l)" \
	"$(echo "${U[8]} / ${U[1]}" | bc -l)"
