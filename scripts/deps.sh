#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Installs the Debian 12 packages netflash builds and tests with. Idempotent:
# apt runs only when something is missing. Run as root.
#
#   scripts/deps.sh            build and test (what scripts/test.sh needs)
#   scripts/deps.sh --build    only what building the master's Debian
#                              package needs (the package itself then pulls
#                              in the master's runtime packages)
#   scripts/deps.sh --no-web   all but the browser test's driver (npm), as
#                              the demo needs
set -euo pipefail

mode=all want_web=1
case "${1:-}" in
'') ;;
--build) mode=build ;;
--no-web) want_web= ;;
-h|--help) awk 'NR > 1 && /^# SPDX/ { next } NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
*) echo "deps: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac

pkgs=(
	# build: the host tools, and the master package's man pages
	build-essential cmake pkg-config
	libnfs-dev zlib1g-dev liblzma-dev libzstd-dev libxxhash-dev libssl-dev
	libgpiod-dev libsqlite3-dev libjson-c-dev libarchive-dev libmicrohttpd-dev libyaml-dev libfdisk-dev help2man cpio
	# the aarch64 worker (Raspberry Pi 3/4/5) and the arm64 master package:
	# a cross compiler and arm64 libraries from Debian multiarch
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross
	libnfs-dev:arm64 liblzma-dev:arm64 zlib1g-dev:arm64 libzstd-dev:arm64 libxxhash-dev:arm64 libssl-dev:arm64
	libgpiod-dev:arm64 libsqlite3-dev:arm64 libjson-c-dev:arm64 libarchive-dev:arm64 libmicrohttpd-dev:arm64
	libyaml-dev:arm64 libfdisk-dev:arm64
	# the armhf master package (Raspberry Pi OS 32-bit) and netflash-agent
	gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
	libnfs-dev:armhf liblzma-dev:armhf zlib1g-dev:armhf libzstd-dev:armhf libxxhash-dev:armhf libssl-dev:armhf
	libgpiod-dev:armhf libsqlite3-dev:armhf libjson-c-dev:armhf libarchive-dev:armhf libmicrohttpd-dev:armhf
	libyaml-dev:armhf libfdisk-dev:armhf
	# the Pi initramfs carries Debian's arm64 udp-receiver (apt-get download);
	# a cross-built package's man pages and units come from its programs, run
	# emulated
	qemu-user-static
)
[ "$mode" = all ] && pkgs+=(
	clang libclang-rt-14-dev
	# the master's runtime packages (the .deb depends on these)
	tzdata xkb-data locales dnsmasq-base mtools
	# test servers and tools
	nfs-ganesha nfs-ganesha-vfs libnfs-utils
	dosfstools fusefat e2fsprogs fdisk util-linux mount python3-yaml
	xz-utils gzip zstd bzip2 pigz bmap-tools procps bc time
	# image intake tests: files made by the real tools
	p7zip-full zip lz4 lzip ncompress strace
	# the provisioning test boots the generated user-data through it
	cloud-init
	# the dashboard test loads the page in it
	chromium
	# multicast sessions: udp-sender on the master, udp-receiver in tests;
	# nftables drops packets for the rack benchmark
	udpcast nftables
	# the completion test runs netflash's completion as an interactive bash would
	bash-completion
	# the opt-in walks (NETFLASH_ARM64_WALK, NETFLASH_CLOUDINIT_WALK) make roots
	mmdebstrap
	curl busybox-static iproute2 kmod qemu-system-x86 binutils sqlite3 logrotate
	libfuse3-dev fuse3
	# QEMU for the Pi 3 test
	qemu-system-arm
)

# The browser test's driver (tests/web: playwright-core, pinned in its
# package-lock.json) from the npm registry, with the machine's Node.js; it
# drives Debian's chromium, so it downloads no browser.
web_deps() {
	local web
	web=$(cd "$(dirname "$0")/../tests/web" && pwd)
	[ "$mode" = all ] && [ -n "$want_web" ] && [ ! -d "$web/node_modules/playwright-core" ] || return 0
	if ! command -v npm >/dev/null; then
		echo "deps: no npm: the browser test (web_browser) will be skipped" >&2
		return 0
	fi
	echo "deps: npm ci in $web" >&2
	npm ci --prefix "$web" --no-audit --no-fund --loglevel=error >&2
}

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	web_deps
	exit 0
fi

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
for a in arm64 armhf; do dpkg --print-foreign-architectures | grep -qx $a || dpkg --add-architecture $a; done
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# cloud-init is here for a test that runs it by hand: never at this machine's boot.
[ -d /etc/cloud ] && [ ! -e /etc/cloud/cloud-init.disabled ] && touch /etc/cloud/cloud-init.disabled
web_deps
exit 0
