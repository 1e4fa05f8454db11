#!/usr/bin/env bash
# Installs the Debian 12 packages netflash builds and tests with. Idempotent:
# apt runs only when something is missing. Run as root.
set -euo pipefail

pkgs=(
	# build
	build-essential cmake pkg-config clang libclang-rt-14-dev
	libnfs-dev zlib1g-dev liblzma-dev libzstd-dev libxxhash-dev libssl-dev
	libgpiod-dev libsqlite3-dev libjson-c-dev libarchive-dev
	# test servers and tools
	nfs-ganesha nfs-ganesha-vfs libnfs-utils dnsmasq-base
	mtools dosfstools fusefat e2fsprogs fdisk util-linux mount python3-yaml
	xz-utils gzip zstd bzip2 pigz bmap-tools procps bc time
	# image intake tests: files made by the real tools
	p7zip-full zip lz4 lzip ncompress strace
	# the lists enroll checks --timezone, --wifi-country, --keymap, --locale against
	tzdata xkb-data locales
	# the master package's man pages
	help2man
	curl busybox-static iproute2 cpio kmod qemu-system-x86 binutils sqlite3 logrotate
	libfuse3-dev fuse3
)

# The aarch64 worker (Raspberry Pi 3/4/5): a cross compiler, arm64 static
# libraries from Debian multiarch, and QEMU for the Pi 3 test.
pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static qemu-system-arm
	libnfs-dev:arm64 liblzma-dev:arm64 zlib1g-dev:arm64 libzstd-dev:arm64 libxxhash-dev:arm64 libssl-dev:arm64
	libgpiod-dev:arm64)
# netflash-agent for 32-bit Raspberry Pi OS (armhf): the agent alone, which
# needs only libc (no armhf multiarch: this mirror's armhf security index
# was seen broken, which would fail apt-get update for everything).
pkgs+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}" >&2
# On a systemd host, installing nfs-ganesha would start a system NFS server on
# every interface; the tests start their own on 127.0.0.1 only.
if [ -d /run/systemd/system ]; then
	systemctl mask nfs-ganesha.service >/dev/null 2>&1 || true
fi
export DEBIAN_FRONTEND=noninteractive
dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
