#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Benchmark: N workers (default 32, real netflash-write processes, sparse
# files as cards) flashing one image at once from one ganesha and one
# netflashd, against N plain NFS readers of the same file and one worker
# alone, all in this run. Prints aggregate and single-worker throughput,
# their ratio, the ratio to plain readers, and the daemon's CPU time and
# peak RSS.   usage: sudo tests/bench/daemon_bench.sh [WORKERS] [IMAGE_MIB]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export NETFLASH_BUILD=${NETFLASH_BUILD:-$here/../../build}
source "$here/../lib.sh"
n=${1:-32} size=${2:-128}

"$NETFLASH_SRC/images/build-test-image.sh" --size "$size" "$T/pios.img"
zstd -q -3 -o "$T/pios.img.zst" "$T/pios.img"
master_setup "$T/pios.img.zst" pios
daemon_start
url=$(ganesha_url pios.img.zst)
comp=$(stat -c %s "$MR/images/pios.img.zst") raw=$(stat -c %s "$T/pios.img")
now() { date +%s.%N; }
enroll_all() { for i in $(seq 1 "$1"); do "$NF" --root "$MR" enroll "$(printf 'b8:27:eb:01:%02x:%02x' "$2" "$i")" --image pios --force >/dev/null; done; }
run_workers() { # count tag
	local pids=() i t0
	t0=$(now)
	for i in $(seq 1 "$1"); do
		truncate -s $((size + 16))M "$T/card-$2-$i"
		report "$(printf 'b8:27:eb:01:%02x:%02x' "$2" "$i")" "$T/card-$2-$i" --threads 1 2>>"$T/workers.log" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || { echo "a worker failed: $(tail -3 "$T/workers.log")" >&2; exit 1; }; done
	echo "$(now) - $t0" | bc -l
	rm -f "$T"/card-"$2"-*
}
cat "$MR/images/pios.img.zst" >/dev/null

enroll_all 1 1
t_one=$(run_workers 1 1)
t0=$(now)
pids=()
for i in $(seq 1 "$n"); do nfs-cat "$url" >/dev/null & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
t_readers=$(echo "$(now) - $t0" | bc -l)
enroll_all "$n" 2
cpu0=$(awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat")
t_all=$(run_workers "$n" 2)
cpu1=$(awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat")
hz=$(getconf CLK_TCK)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$DAEMON_PID/status")
r() { echo "scale=2; $1" | bc -l; }
cat <<EOT

image: ${size} MiB Pi-OS-like, $((comp / 1048576)) MiB as zstd; $n workers on $(nproc) cores
one worker alone:          $(printf %.2f "$t_one") s   $(r "$raw / 1000000 / $t_one") MB/s decoded
$n workers at once:         $(printf %.2f "$t_all") s   aggregate $(r "$n * $raw / 1000000 / $t_all") MB/s decoded, $(r "$n * $comp / 1000000 / $t_all") MB/s from NFS
$n plain NFS readers:       $(printf %.2f "$t_readers") s   $(r "$n * $comp / 1000000 / $t_readers") MB/s from NFS
aggregate / single worker: $(r "($n * $raw / $t_all) / ($raw / $t_one)")x
aggregate NFS rate / plain readers: $(r "$t_readers / $t_all")x   (goal >= 0.9; workers also decode, hash, write and read back on the same cores)
daemon CPU: $(r "($cpu1 - $cpu0) / $hz") s over $(printf %.1f "$t_all") s = $(r "100 * ($cpu1 - $cpu0) / $hz / $t_all")% of one core (goal < 5%); peak RSS $hwm KiB
EOT
