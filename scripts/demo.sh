#!/usr/bin/env bash
# The demo: builds netflash, makes a 64 MiB Raspberry-Pi-OS-like image,
# compresses it with xz (multi-block), serves it over NFS from a private
# nfs-ganesha on 127.0.0.1, and flashes it onto a virtual SD card (a file)
# with netflash-write, showing progress and the verification.
# Run as root (ganesha needs it). Leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root (the NFS server); try: sudo $0" >&2
	exit 1
fi
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
export NETFLASH_BUILD=$PWD/build
source tests/fixtures/ganesha.sh

work=$(mktemp -d /tmp/netflash-demo.XXXXXX)
trap 'ganesha_stop; rm -rf "$work"' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Build a 64 MiB Pi-OS-like image (MBR, FAT boot, ext4 root, zero tail)"
mkdir -p "$work/export"
images/build-test-image.sh --size 64 "$work/export/pios.img"
xz -T2 -6 --block-size=8MiB -c "$work/export/pios.img" >"$work/export/pios.img.xz"
sha=$(sha256sum "$work/export/pios.img" | cut -d' ' -f1)
ls -l "$work/export"
echo "image SHA-256: $sha"

step "2. Serve it read-only over NFSv3 from nfs-ganesha on 127.0.0.1"
ganesha_start "$work/export" "$work"
url=$(ganesha_url pios.img.xz)
echo "ganesha pid $GANESHA_PID, URL $url"

step "3. Flash it onto a virtual 128 MiB SD card, verifying by readback"
truncate -s 128M "$work/sdcard.img"
progress=bar
[ -t 2 ] || progress=json
build/flasher-init/netflash-write --progress=$progress --expect-sha256 "$sha" "$url" "$work/sdcard.img"

step "4. What landed on the card"
cmp -n "$(stat -c %s "$work/export/pios.img")" "$work/export/pios.img" "$work/sdcard.img" &&
	echo "card content is byte-identical to the image"
sfdisk -l "$work/sdcard.img" | sed -n '/^Device/,$p'
echo "boot partition:"
MTOOLS_SKIP_CHECK=1 mdir -i "$work/sdcard.img@@4M" -b ::/ | sed 's/^/  /'

step "5. A corrupt image is refused and the card stays unbootable"
cp "$work/export/pios.img.xz" "$work/export/bad.img.xz"
printf 'XXXXXXXXXXXXXXXX' | dd of="$work/export/bad.img.xz" bs=1 seek=$(( $(stat -c %s "$work/export/bad.img.xz") / 2 )) conv=notrunc status=none
build/flasher-init/netflash-write --progress=none "$(ganesha_url bad.img.xz)" "$work/sdcard.img" && exit 1
echo "(exit status $?: expected failure) first sector now: $(head -c 512 "$work/sdcard.img" | tr -d '\0' | wc -c) non-zero bytes (the MBR is wiped, so a Pi would netboot again)"
