#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The demo: a netflash master on this machine's loopback and a QEMU worker
# that netboots into flasher-init (Debian's cloud kernel + our initramfs),
# flashes a Raspberry-Pi-OS-like image onto its virtual SD card over NFS,
# verifies it, is released by the master, and powers off, while
# `netflash status` shows its progress. Run as root (ganesha needs it).
# The card image and the logs stay in build/demo/ afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root (the NFS server); try: sudo $0" >&2
	exit 1
fi
# What the demo runs; not the browser test's driver (npm).
scripts/deps.sh --no-web
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# The build's output (the static flasher's glibc link notes among it) goes
# to its log; on failure its end is shown.
mkdir -p build
cmake --build build -j"$(nproc)" >build/demo-build.log 2>&1 || {
	tail -30 build/demo-build.log >&2
	echo "demo: the build failed (build/demo-build.log)" >&2
	exit 1
}
export NETFLASH_BUILD=$PWD/build
source tests/fixtures/ganesha.sh
source tests/fixtures/kernel.sh
NF=build/master-tools/netflash
work=$PWD/build/demo
rm -rf "$work" && mkdir -p "$work"
DPID= QPID=
cleanup() {
	local p
	for p in $QPID $DPID; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null || true
	done
	ganesha_stop
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. A Debian kernel for the worker (downloaded once, never installed)"
kernel_fetch_cloud_amd64 || { echo "demo: cannot download Debian's cloud kernel" >&2; exit 1; }
echo "$KERNEL_IMAGE"
boot-files/build-initramfs.sh --init build/flasher-init/flasher-init --modules-dir "$KERNEL_MODDIR" \
	--modules "virtio_ring virtio virtio_mmio virtio_blk failover net_failover virtio_net" -o "$work/netflash.cpio.gz"

step "2. The master: state tree, catalog, boot files, enrollment"
port=$(build/tests/freeport)
$NF --root "$work/root" init --interface lo --server-ip 127.0.0.1 --subnet 127.0.0.0/8 --port "$port" | sed -n 1p
images/build-test-image.sh --size 64 "$work/pios.img"
xz -T2 -6 --block-size=4MiB -c "$work/pios.img" >"$work/pios.img.xz"
$NF --root "$work/root" image add "$work/pios.img.xz" --name pios-demo
# The boot files a Pi would netboot (the demo's worker is an x86-64 QEMU
# guest that starts the flasher directly, so the Pi set gets no initramfs:
# boot-files import takes only an aarch64 one).
$NF --root "$work/root" boot-files import --from-image pios-demo 2>&1 | grep -v 'no netflash.cpio.gz yet' || true
MAC=52:54:00:de:40:01
$NF --root "$work/root" enroll "$MAC" --image pios-demo --hostname demo-worker
token=$(grep -o 'netflash.token=[0-9a-f]*' "$work/root/tftp/52-54-00-de-40-01/cmdline.txt" | cut -d= -f2)

step "3. Servers: nfs-ganesha (the catalog, read-only) and netflashd, on 127.0.0.1"
ganesha_start "$work/root/images" "$work"
# --peer-check=off: the QEMU worker reaches this loopback master through
# QEMU's user network, so there is no neighbour (ARP) entry to check its
# MAC against; a master on a real LAN leaves it on (docs/security.md).
build/master-tools/netflashd --root "$work/root" --listen "127.0.0.1:$port" --peer-check=off \
	--nfs-url "nfs://10.0.2.2/export?$GANESHA_URL_ARGS" 2>"$work/netflashd.log" &
DPID=$!
sleep 0.5
echo "ganesha pid $GANESHA_PID, netflashd pid $DPID on port $port (QEMU guests reach them at 10.0.2.2)"

step "4. The worker netboots (QEMU microvm); its virtual SD card is $work/sdcard.img"
truncate -s 128M "$work/sdcard.img"
qemu-system-x86_64 -M microvm,pit=on,pic=on,rtc=on -accel tcg -cpu max -m 512 -nographic -no-reboot \
	-kernel "$KERNEL_IMAGE" -initrd "$work/netflash.cpio.gz" \
	-append "console=ttyS0 quiet panic=-1 tsc_early_khz=2000000 netflash.server=10.0.2.2:$port netflash.token=$token netflash.target=/dev/vda netflash.after=poweroff" \
	-drive "file=$work/sdcard.img,format=raw,if=none,id=d0" -device virtio-blk-device,drive=d0 \
	-netdev user,id=n0 -device "virtio-net-device,netdev=n0,mac=$MAC" </dev/null >"$work/worker-console.log" 2>&1 &
QPID=$!
$NF --root "$work/root" status | sed -n 1p
while kill -0 "$QPID" 2>/dev/null; do
	$NF --root "$work/root" status | sed -n 2p
	sleep 1
done
wait "$QPID" && qrc=0 || qrc=$?
QPID=

step "5. What happened"
echo "worker console:"
grep 'netflash:' "$work/worker-console.log" | sed 's/^/  /'
echo "master:"
sed 's/^/  /' "$work/netflashd.log"
$NF --root "$work/root" history
# Checked here independently of netflash: the card holds the image, except
# in the boot partition, where the hostname patch went (read back with mtools).
read -r p1_start p1_sectors < <(partx -g -n 1 -o START,SECTORS "$work/pios.img")
p1_off=$((p1_start * 512)) p1_end=$(((p1_start + p1_sectors) * 512)) size=$(stat -c %s "$work/pios.img")
same_outside_boot() {
	cmp -s -n "$p1_off" "$work/pios.img" "$work/sdcard.img" &&
		cmp -s -i "$p1_end" -n $((size - p1_end)) "$work/pios.img" "$work/sdcard.img"
}
hostname_line=$(MTOOLS_SKIP_CHECK=1 mtype -i "$work/sdcard.img@@$p1_off" ::/firstrun.sh 2>/dev/null | grep -x 'NEW_HOSTNAME=demo-worker' || true)
if [ "$qrc" = 0 ] && same_outside_boot && [ -n "$hostname_line" ] && [ ! -e "$work/root/tftp/52-54-00-de-40-01" ]; then
	echo
	echo "RESULT: the worker flashed and verified its card, the master released it (its TFTP dir is gone),"
	echo "and it powered off. The card image is $work/sdcard.img: byte for byte the image outside"
	echo "its boot partition, whose firstrun.sh now says $hostname_line (the provisioning patch):"
	sfdisk -l "$work/sdcard.img" | sed -n '/^Device/,$p'
else
	echo "RESULT: the demo failed (QEMU exit $qrc); logs are in $work" >&2
	exit 1
fi
