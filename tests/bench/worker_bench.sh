#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Benchmark for the worker's speed on the images people have and the cards
# they use (issue 17). Prints each figure and ratios measured in this run:
#  1. a pi-gen-style image (Pi-OS-like, xz -T2 -6: 24 MiB blocks) over NFS
#     onto a loop device: netflash-write (decoder budget from MemAvailable)
#     vs the naive nfs-cat | xz -dc | dd + cmp          (goal >= 2.0x)
#  2. the catalog's worker copy (netflash image add: zstd): time to make it
#     on this machine's cores, its size vs xz, and decode alone on ONE core
#     vs xz on one core                                  (goal >= 5x)
#  3. a simulated SD card (tests/fixtures/fakecard: one shared bus, 25 MB/s
#     write, 45 MB/s read, erases to 0x00): netflash-write from the worker
#     copy vs the card's floor, non-zero bytes / write speed + all bytes /
#     read speed                                         (goal <= 1.15x)
#     and vs the naive write-then-cmp on the same card  (goal >= 1.3x);
#     bytes written and read as the card counted them
#  4. peak RSS of netflash-write per format.
# Not part of ctest (minutes). usage: sudo tests/bench/worker_bench.sh [SIZE_MIB [CARD_MIB]]
# (defaults 1024 and 512); env NETFLASH_BUILD (default ./build), BENCH_DIR.
set -euo pipefail
size=${1:-1024} card_mib=${2:-512}
here=$(cd "$(dirname "$0")" && pwd)
export NETFLASH_BUILD=${NETFLASH_BUILD:-$here/../../build}
source "$here/../lib.sh"
NF="$NETFLASH_BUILD/master-tools/netflash"
[ -x "$FAKECARD" ] || { echo "worker_bench: no $FAKECARD (libfuse3-dev)" >&2; exit 1; }
bench_dir=${BENCH_DIR:-$NETFLASH_BUILD/bench-images}
mkdir -p "$bench_dir/export"
img=$bench_dir/export/pios-${size}M.img
[ -f "$img" ] || "$NETFLASH_SRC/images/build-test-image.sh" --size "$size" "$img"
[ -f "$img.pigen.xz" ] || xz -T2 -6 -c "$img" >"$img.pigen.xz"
bytes=$(stat -c %s "$img")
sha=$(sha256sum "$img" | cut -d' ' -f1)
now() { date +%s.%N; }
declare -A R
timeit() { # key cmd...
	local key=$1 t0; shift
	sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	cat "$img" "$img".* >/dev/null 2>&1 || true
	t0=$(now); "$@"; R[$key]=$(echo "$(now) - $t0" | bc -l)
	printf '%-52s %7.2f s\n' "$key" "${R[$key]}" >&2
}
ratio() { echo "scale=2; $1 / $2" | bc -l; }

# ---- 2. the worker copy ---------------------------------------------------
MR=$T/root
"$NF" --root "$MR" init --interface lo --server-ip 127.0.0.1 --subnet 127.0.0.0/8 >/dev/null
timeit "image add: zstd worker copy of the xz ($(nproc) cores)" "$NF" --root "$MR" image add "$img.pigen.xz" --name w >/dev/null
copy=$MR/images/w.img.zst
cp "$copy" "$bench_dir/export/worker.img.zst"
timeit "decode alone, 1 core: xz -T1 -dc (pi-gen xz)" sh -c "xz -T1 -dc '$img.pigen.xz' >/dev/null"
timeit "decode alone, 1 core: zstd -dc (worker copy)" sh -c "zstd -q -dc '$copy' >/dev/null"

# ---- 1. pi-gen xz over NFS onto a loop device -------------------------------
ganesha_start "$bench_dir/export" "$T"
url=$(ganesha_url "$(basename "$img").pigen.xz")
# Three rounds, the two alternating, each on a fresh sparse card file so
# neither pays for (or profits from) the other's block allocation in the
# backing file; the median counts.
fresh_card() {
	[ -z "${dev:-}" ] || loop_detach "$dev"
	rm -f "$T/card.img"
	truncate -s $((bytes + 64 * 1048576)) "$T/card.img"
	loop_attach dev "$T/card.img"
}
naive() { nfs-cat "$url" | xz -dc | dd of="$dev" bs=4M oflag=direct status=none; cmp -n "$bytes" "$img" "$dev"; }
nfw_loop() { "$NFW" --progress=none --no-probe-capacity --expect-sha256 "$sha" "$url" "$dev"; }
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
declare -a t_naive=() t_nfw=()
for round in 1 2 3; do
	fresh_card
	timeit "loop: naive nfs-cat | xz -dc | dd + cmp" naive
	t_naive+=("${R[loop: naive nfs-cat | xz -dc | dd + cmp]}")
	fresh_card
	timeit "loop: netflash-write pi-gen xz" nfw_loop
	t_nfw+=("${R[loop: netflash-write pi-gen xz]}")
done
R[loop: naive nfs-cat | xz -dc | dd + cmp]=$(median3 "${t_naive[@]}")
R[loop: netflash-write pi-gen xz]=$(median3 "${t_nfw[@]}")
"$NFW" --progress=none --no-probe-capacity "$url" "$dev" 2>&1 | grep -m1 'xz:' >"$T/plan" || true
loop_detach "$dev"

# ---- 3. the simulated SD card -----------------------------------------------
simg=$bench_dir/pios-${card_mib}M.img
[ -f "$simg" ] || "$NETFLASH_SRC/images/build-test-image.sh" --size "$card_mib" "$simg"
if [ ! -f "$simg.zst" ]; then
	"$NF" --root "$MR" image add "$simg" --name sim >/dev/null
	cp "$MR/images/sim.img.zst" "$simg.zst"
fi
sbytes=$(stat -c %s "$simg")
snonzero=$(nonzero_bytes "$simg")
WS=25 RS=45
sim_card() { # NAME: a fresh simulated card, SIM (loop device)
	fake_card "$1" $((sbytes + 64 * 1048576)) $((sbytes + 64 * 1048576)) --write-mbps $WS --read-mbps $RS \
		--erase zero --stats "$T/$1.stats"
	SIM=$FAKE_LOOP
}
sim_done() { fake_card_done "$1"; }
sim_card naive
timeit "sim card: naive zstd -dc | dd + cmp" sh -c "zstd -q -dc '$simg.zst' | dd of='$SIM' bs=4M oflag=direct status=none && cmp -n $sbytes '$simg' '$SIM'"
sim_done naive
sim_card nfw
timeit "sim card: netflash-write worker copy" "$NFW" --progress=none --no-probe-capacity "$simg.zst" "$SIM"
sim_done nfw
floor=$(echo "$snonzero / ($WS * 1000000) + $sbytes / ($RS * 1000000)" | bc -l)

# ---- 4. peak RSS per format ---------------------------------------------------
truncate -s $((bytes + 64 * 1048576)) "$T/rss.img"
loop_attach dev "$T/rss.img"
rss=""
for f in "$img" "$img.pigen.xz" "$copy"; do
	/usr/bin/time -f %M -o "$T/rss" "$NFW" --progress=none -q --no-probe-capacity "$f" "$dev"
	rss="$rss ${f##*.}=$(($(cat "$T/rss") / 1024))MiB"
done
gzip -1 -c "$img" >"$T/img.gz"
/usr/bin/time -f %M -o "$T/rss" "$NFW" --progress=none -q --no-probe-capacity "$T/img.gz" "$dev"
rss="$rss gz=$(($(cat "$T/rss") / 1024))MiB"
loop_detach "$dev"

cat <<EOT

image: $size MiB Pi-OS-like ($(( (bytes - $(nonzero_bytes "$img")) * 100 / bytes ))% zero MiB); pi-gen xz $(stat -c %s "$img.pigen.xz") bytes, worker copy $(stat -c %s "$copy") bytes ($(ratio "$(stat -c %s "$copy")" "$(stat -c %s "$img.pigen.xz")")x xz)
decoder plan on the loop run: $(cat "$T/plan")
1. netflash vs naive, pi-gen xz over NFS, loop (median of 3: $(printf %.2f "${R[loop: netflash-write pi-gen xz]}") s vs $(printf %.2f "${R[loop: naive nfs-cat | xz -dc | dd + cmp]}") s)
                                                    $(ratio "${R[loop: naive nfs-cat | xz -dc | dd + cmp]}" "${R[loop: netflash-write pi-gen xz]}")x   (goal >= 2.0)
2. worker copy decode vs xz, one core               $(ratio "${R[decode alone, 1 core: xz -T1 -dc (pi-gen xz)]}" "${R[decode alone, 1 core: zstd -dc (worker copy)]}")x   (goal >= 5)
   making it: ${R[image add: zstd worker copy of the xz ($(nproc) cores)]} s on $(nproc) cores
3. sim card ($card_mib MiB image, $(( (sbytes - snonzero) * 100 / sbytes ))% zero MiB; bus ${WS} MB/s write, ${RS} MB/s read, erases to 0x00):
   floor $(printf %.2f "$floor") s; netflash / floor              $(ratio "${R[sim card: netflash-write worker copy]}" "$floor")x   (goal <= 1.15)
   netflash vs naive write-then-cmp                $(ratio "${R[sim card: naive zstd -dc | dd + cmp]}" "${R[sim card: netflash-write worker copy]}")x   (goal >= 1.3)
   card counted: netflash $(cat "$T/nfw.stats"); naive $(cat "$T/naive.stats")
4. peak RSS:$rss
EOT
