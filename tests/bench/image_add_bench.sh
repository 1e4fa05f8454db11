#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Benchmark for issue 28 item 4: an image is flashable in about the time it
# takes to decode it; the best copy follows. On a pi-gen-style image
# (Pi-OS-like, xz -T2 -6: 24 MiB blocks), measured in this run:
#  1. time from `image add` to flashable (its fast copy in the catalog)
#     vs `xz -T2 -dc FILE >/dev/null` alone        (goal <= 1.5x)
#     (median of 3 each, page cache warm for both)
#  2. `image finish` (the level 19 copy netflashd makes in the background):
#     its time, and the final copy's size vs the xz file's (goal <= 1.05x)
#  3. peak RSS of image add and image finish.
# Not part of ctest (minutes). usage: sudo tests/bench/image_add_bench.sh [SIZE_MIB]
# (default 1024); env NETFLASH_BUILD (default ./build), BENCH_DIR.
set -euo pipefail
size=${1:-1024}
here=$(cd "$(dirname "$0")" && pwd)
export NETFLASH_BUILD=${NETFLASH_BUILD:-$here/../../build}
source "$here/../lib.sh"
NF="$NETFLASH_BUILD/master-tools/netflash"
bench_dir=${BENCH_DIR:-$NETFLASH_BUILD/bench-images}
mkdir -p "$bench_dir/export"
img=$bench_dir/export/pios-${size}M.img
[ -f "$img" ] || "$NETFLASH_SRC/images/build-test-image.sh" --size "$size" "$img"
[ -f "$img.pigen.xz" ] || xz -T2 -6 -c "$img" >"$img.pigen.xz"
xzf=$img.pigen.xz
now() { date +%s.%N; }
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
MR=$T/root
"$NF" --root "$MR" init --interface lo --server-ip 127.0.0.1 --subnet 127.0.0.0/8 >/dev/null
cat "$xzf" >/dev/null

t_xz=() t_add=()
for i in 1 2 3; do
	t0=$(now); xz -T2 -dc "$xzf" >/dev/null; t_xz+=("$(echo "$(now) - $t0" | bc -l)")
	t0=$(now)
	/usr/bin/time -f %M -o "$T/add.rss" "$NF" --root "$MR" image add "$xzf" --name pios --force >"$T/add.out" 2>"$T/add.err"
	t_add+=("$(echo "$(now) - $t0" | bc -l)")
	printf 'round %d: xz -T2 -dc %.2f s, image add to flashable %.2f s\n' "$i" "${t_xz[-1]}" "${t_add[-1]}" >&2
done
xz_s=$(median3 "${t_xz[@]}") add_s=$(median3 "${t_add[@]}")
fast=$(sed -n 's/^compressed_size=//p' "$MR/images/pios.manifest")
fast_level=$(sed -n 's/^zstd_level=//p' "$MR/images/pios.manifest")
t0=$(now)
/usr/bin/time -f %M -o "$T/fin.rss" "$NF" --root "$MR" image finish pios >"$T/fin.out" 2>"$T/fin.err"
fin_s=$(echo "$(now) - $t0" | bc -l)
final=$(sed -n 's/^compressed_size=//p' "$MR/images/pios.manifest")
grep -qx 'zstd_level=19' "$MR/images/pios.manifest" || { echo "image finish did not make the level 19 copy" >&2; exit 1; }
xzb=$(stat -c %s "$xzf")
cat <<EOF
image: $size MiB Pi-OS-like ($(( (size * 1048576 - $(nonzero_bytes "$img")) * 100 / (size * 1048576) ))% zero MiB), pi-gen xz $xzb bytes, $(nproc) CPUs
$(grep 'converting at' "$T/add.err" | sed 's/^netflash: /image add: /')
1. image add to flashable $(printf %.2f "$add_s") s vs xz -T2 -dc $(printf %.2f "$xz_s") s (median of 3)
                                                $(ratio "$add_s" "$xz_s")x   (goal <= 1.5)
   fast copy (zstd level $fast_level): $fast bytes, $(ratio "$fast" "$xzb")x xz
2. image finish (level 19, in the background): $(printf %.1f "$fin_s") s
   final copy $final bytes vs xz $xzb             $(ratio "$final" "$xzb")x   (goal <= 1.05)
3. peak RSS: image add $(( $(tail -1 "$T/add.rss") / 1024 )) MiB, image finish $(( $(tail -1 "$T/fin.rss") / 1024 )) MiB
EOF
finish
