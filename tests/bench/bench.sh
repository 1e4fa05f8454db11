#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Benchmark: netflash-write against the naive pipeline and bmaptool, on a
# realistic image compressed with xz -T2, served by ganesha on loopback,
# written to a loop device. Prints each figure and ratios measured in this
# same run. Not part of ctest (minutes, and the machine should be idle).
#
# usage: sudo tests/bench/bench.sh [SIZE_MIB]   (default 1024)
# env:   NETFLASH_BUILD (default ./build), BENCH_DIR (image cache, default
#        $NETFLASH_BUILD/bench-images)
set -euo pipefail
size=${1:-1024}
here=$(cd "$(dirname "$0")" && pwd)
export NETFLASH_BUILD=${NETFLASH_BUILD:-$here/../../build}
source "$here/../lib.sh"
bench_dir=${BENCH_DIR:-$NETFLASH_BUILD/bench-images}
mkdir -p "$bench_dir/export"
img=$bench_dir/export/pios-${size}M.img
if [ ! -f "$img.T2.xz" ]; then
	echo "building the ${size} MiB image and its xz copies (once)..." >&2
	"$NETFLASH_SRC/images/build-test-image.sh" --size "$size" "$img"
	xz -T2 -6 -c "$img" >"$img.T2.xz.tmp" && mv "$img.T2.xz.tmp" "$img.T2.xz"
	xz -T2 -6 --block-size=8MiB -c "$img" >"$img.T2b8.xz"
	bmaptool -q create "$img" >"$img.bmap"
fi
[ -f "$img.T2b4.xz" ] || xz -T2 -6 --block-size=4MiB -c "$img" >"$img.T2b4.xz"
# Warm the page cache: every run reads the same cached files.
cat "$img" "$img".*.xz >/dev/null
sha=$(sha256sum "$img" | cut -d' ' -f1)
bytes=$(stat -c %s "$img")
ganesha_start "$bench_dir/export" "$T"
card=$T/card.img
truncate -s $((bytes + 64 * 1048576)) "$card"
loop_attach dev "$card"

declare -A R
now() { date +%s.%N; }
timeit() { # key cmd...: runs cmd, records seconds in R[key]
	local key=$1 t0 t1; shift
	sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	cat "$img" "$img".*.xz >/dev/null
	t0=$(now)
	"$@"
	t1=$(now)
	R[$key]=$(echo "$t1 - $t0" | bc -l)
	printf '%-34s %7.2f s\n' "$key" "${R[$key]}" >&2
}
fresh_card() { blkdiscard "$dev" 2>/dev/null || dd if=/dev/zero of="$dev" bs=4M count=16 oflag=direct status=none; }
url_default=$(ganesha_url "$(basename "$img").T2.xz")
url_b8=$(ganesha_url "$(basename "$img").T2b8.xz")

naive() {
	nfs-cat "$1" | xz -dc | dd of="$dev" bs=4M oflag=direct status=none
	cmp -n "$bytes" "$img" "$dev"
}
nfw() { # url [options]: netflash-write, records peak RSS
	/usr/bin/time -f '%M' -o "$T/rss" "$NFW" --progress=none -q --expect-sha256 "$sha" "$@" "$dev"
}

fresh_card; timeit "naive xz -T2 (nfs-cat|xz|dd + cmp)" naive "$url_default"
fresh_card; timeit "bmaptool copy (local file)" bmaptool -q copy --bmap "$img.bmap" "$img.T2.xz" "$dev"
fresh_card; timeit "netflash-write xz -T2" nfw "$url_default"
rss_default=$(cat "$T/rss")
fresh_card; timeit "netflash-write xz -T2 --xz-memlimit=128M" nfw "$url_default" --xz-memlimit=128M
rss_128=$(cat "$T/rss")
fresh_card; timeit "naive xz -T2 8MiB blocks" naive "$url_b8"
fresh_card; timeit "netflash-write xz -T2 8MiB blocks" nfw "$url_b8"
rss_b8=$(cat "$T/rss")
fresh_card; timeit "netflash-write 8MiB blocks, 1 thread" nfw "$url_b8" --threads 1
fresh_card; timeit "netflash-write xz -T2 4MiB blocks" nfw "$(ganesha_url "$(basename "$img").T2b4.xz")"
rss_b4=$(cat "$T/rss")

# Stages alone.
timeit "stage: NFS read (nfs-cat)" sh -c "nfs-cat '$url_b8' >/dev/null"
timeit "stage: xz decode 2 threads" sh -c "xz -T2 -dc '$img.T2b8.xz' >/dev/null"
timeit "stage: xz decode 1 thread" sh -c "xz -T1 -dc '$img.T2b8.xz' >/dev/null"
fresh_card; timeit "stage: write raw (dd 4M direct)" dd if="$img" of="$dev" bs=4M oflag=direct status=none
timeit "stage: readback (dd 4M direct)" dd if="$dev" of=/dev/null bs=4M iflag=direct count=$(( (bytes + 4194303) / 4194304 )) status=none

ratio() { echo "scale=2; $1 / $2" | bc -l; }
max3() { printf '%s\n' "$@" | sort -g | tail -1; }
bound=$(echo "$(max3 "${R[stage: NFS read (nfs-cat)]}" "${R[stage: xz decode 2 threads]}" "${R[stage: write raw (dd 4M direct)]}") + ${R[stage: readback (dd 4M direct)]}" | bc -l)
cat <<EOT

image: ${size} MiB Pi-OS-like, $(( $(stat -c %s "$img.T2.xz") / 1048576 )) MiB as xz -T2 (default blocks), $(( $(stat -c %s "$img.T2b8.xz") / 1048576 )) MiB with 8 MiB blocks
bound = max(NFS read, decode 2T, write) + readback = $(printf %.2f "$bound") s

netflash vs naive (xz -T2)            $(ratio "${R[naive xz -T2 (nfs-cat|xz|dd + cmp)]}" "${R[netflash-write xz -T2]}")x   (goal >= 2.0)
netflash vs naive (8 MiB blocks)      $(ratio "${R[naive xz -T2 8MiB blocks]}" "${R[netflash-write xz -T2 8MiB blocks]}")x
netflash vs bmaptool copy             $(ratio "${R[bmaptool copy (local file)]}" "${R[netflash-write xz -T2 8MiB blocks]}")x   (goal > 1, we also read back)
netflash / bound (8 MiB blocks)       $(ratio "${R[netflash-write xz -T2 8MiB blocks]}" "$bound")x   (goal <= 1.15)
xz decode 2 threads vs 1 (xz CLI)     $(ratio "${R[stage: xz decode 1 thread]}" "${R[stage: xz decode 2 threads]}")x   (goal >= 1.7)
netflash 2 threads vs 1               $(ratio "${R[netflash-write 8MiB blocks, 1 thread]}" "${R[netflash-write xz -T2 8MiB blocks]}")x
netflash vs naive (4 MiB blocks)      $(ratio "${R[naive xz -T2 (nfs-cat|xz|dd + cmp)]}" "${R[netflash-write xz -T2 4MiB blocks]}")x
peak RSS netflash: default blocks $((rss_default / 1024)) MiB, with --xz-memlimit=128M $((rss_128 / 1024)) MiB, 8 MiB blocks $((rss_b8 / 1024)) MiB, 4 MiB blocks $((rss_b4 / 1024)) MiB   (goal <= 64)
EOT
