#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The arm64 master package installed and run the way a Pi admin would, as
# arm64 code: an arm64 Debian 12 root (mmdebstrap from Debian's archive,
# the apt variant, cached as BUILD/arm64-root.tar), `apt install
# ./netflash_*_arm64.deb` in it, then the README's master steps there
# (init, image add of a Pi-OS-like image, boot-files import, enroll),
# netflashd answering a worker's HELLO with its JOB and serving the
# dashboard. Everything in the root runs under qemu-user through binfmt_misc
# (registered for the run when this machine has no qemu-aarch64 entry, and
# removed again). Prints the time of each step. Too slow for ctest (the
# root takes minutes once); the test command runs it when NETFLASH_ARM64_WALK=1.
#
# usage: sudo scripts/arm64-walk.sh [BUILD_DIR]   (default build; it holds the .deb)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in -h | --help) awk 'NR > 1 && /^# SPDX/ { next } NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
build=$(cd "${1:-$src/build}" && pwd)
deb=$(ls "$build"/netflash_*_arm64.deb 2>/dev/null | head -1 || true)
[ -n "$deb" ] || { echo "arm64-walk: no netflash_*_arm64.deb in $build (scripts/package-master.sh --arch arm64 -o $build)" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { echo "arm64-walk: needs mmdebstrap (apt install mmdebstrap)" >&2; exit 1; }
root=$(mktemp -d "${TMPDIR:-/tmp}/netflash-arm64.XXXXXX")
mounted_binfmt= registered= pid= mounts=()
cleanup() {
	set +e
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}"; done
	[ -n "$registered" ] && echo -1 >/proc/sys/fs/binfmt_misc/qemu-aarch64
	[ -n "$mounted_binfmt" ] && umount /proc/sys/fs/binfmt_misc
	rm -rf "$root"
}
trap cleanup EXIT
t0=$(date +%s.%N)
step() { printf 'arm64-walk: %-58s %6.1f s\n' "$1" "$(echo "$(date +%s.%N) - $t0" | bc)"; t0=$(date +%s.%N); }

# qemu-user for arm64 programs, also inside the chroot (F: opened now).
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
	mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
	mounted_binfmt=1
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
	sed 's/:OPF$/:F/; s|/usr/libexec/qemu-binfmt/aarch64-binfmt-P|/usr/bin/qemu-aarch64-static|' \
		/usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
	registered=1
fi

cache=$build/arm64-root.tar
if [ ! -s "$cache" ]; then
	mmdebstrap --quiet --format=tar --arch=arm64 --variant=apt bookworm "$cache.tmp" http://deb.debian.org/debian >&2
	mv "$cache.tmp" "$cache"
	step "arm64 Debian 12 root made (mmdebstrap, apt variant)"
fi
tar -xf "$cache" -C "$root"
for m in proc sys dev; do
	mount --rbind "/$m" "$root/$m"
	mount --make-rslave "$root/$m"
	mounts+=("$root/$m")
done
cp /etc/resolv.conf "$root/etc/resolv.conf"
step "root unpacked"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
[ "$(in_root dpkg --print-architecture)" = arm64 ] || { echo "arm64-walk: the root is not arm64" >&2; exit 1; }

cp "$deb" "$root/root/"
in_root apt-get -qq update >/dev/null
in_root apt-get -y -qq install "/root/$(basename "$deb")" >"$root/root/apt.log" 2>&1 ||
	{ tail -20 "$root/root/apt.log" >&2; echo "arm64-walk: apt install of the arm64 package failed" >&2; exit 1; }
[ "$(in_root dpkg-query -W -f='${Architecture} ${Status}' netflash)" = "arm64 install ok installed" ]
step "apt install ./$(basename "$deb") (its Depends from Debian)"

"$src/images/build-test-image.sh" --size 64 "$root/root/pios.img" >/dev/null 2>&1
xz -T2 -6 "$root/root/pios.img"
in_root netflash init --interface lo --server-ip 127.0.0.1 --subnet 127.0.0.0/8 --port 7071 >/dev/null
step "netflash init"
in_root netflash image add /root/pios.img.xz --name pios
step "netflash image add (64 MiB Pi-OS-like xz -> zstd worker copy)"
in_root netflash boot-files import --from-image pios >/dev/null
in_root netflash enroll b8:27:eb:00:11:01 --image pios --hostname rack1-01 >/dev/null
step "netflash boot-files import, enroll"
chroot "$root" /usr/bin/netflashd --listen 127.0.0.1:7071 --peer-check=off --http 127.0.0.1:8071 >"$build/arm64-walk-daemon.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q "dashboard and API" "$build/arm64-walk-daemon.log" && break; sleep 0.2; done
tok=$(grep -o 'netflash.token=[0-9a-f]*' "$root/srv/netflash/tftp/b8-27-eb-00-11-01/cmdline.txt" | cut -d= -f2)
exec {c}<>/dev/tcp/127.0.0.1/7071
printf 'HELLO v=1 mac=b8:27:eb:00:11:01 token=%s\n' "$tok" >&"$c"
read -r -t 30 job <&"$c" || true
exec {c}>&-
[[ $job == "JOB id=1 "*"image=pios"* ]] || { echo "arm64-walk: HELLO answered '$job'" >&2; exit 1; }
curl -sf http://127.0.0.1:8071/api/workers | grep -q '"hostname":"rack1-01"'
curl -sf http://127.0.0.1:8071/ | grep -q '<title>netflash fleet'
step "netflashd (arm64): HELLO answered with the JOB; dashboard and API served"
echo "arm64-walk: passed"
