#!/usr/bin/env bash
# Packs the netflash master as a Debian package: netflash, netflashd and
# netflash-write from BUILD_DIR (the host build), and the Raspberry Pi
# flasher's initramfs, built here from AARCH64_BUILD_DIR's static
# flasher-init, as /usr/share/netflash/netflash-arm64.cpio.gz (what
# `netflash boot-files import` installs when given no --initramfs).
# It also ships the two systemd units for /srv/netflash (not enabled) and
# man pages. Depends: the Debian packages of the libraries the binaries load (from
# ldd and dpkg -S), plus dnsmasq-base and mtools; an NFS server is
# recommended (nfs-kernel-server or nfs-ganesha-vfs).
#
#   scripts/package-master.sh [-o OUTDIR] BUILD_DIR AARCH64_BUILD_DIR
#
# Then on the master: apt install ./netflash_VERSION_ARCH.deb
set -euo pipefail

out=
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
	case "$1" in
	-o) out=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	-*) echo "package-master: unknown option '$1'" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -eq 2 ] || usage
build=$1 abuild=$2
out=${out:-$build}
src=$(cd "$(dirname "$0")/.." && pwd)
for b in "$build/master-tools/netflash" "$build/master-tools/netflashd" "$build/flasher-init/netflash-write" \
	"$abuild/flasher-init/flasher-init"; do
	[ -x "$b" ] || { echo "package-master: no executable $b (build it first)" >&2; exit 1; }
done
if readelf -l "$abuild/flasher-init/flasher-init" | grep -q 'Requesting program interpreter' ||
	! readelf -h "$abuild/flasher-init/flasher-init" | grep -q AArch64; then
	echo "package-master: $abuild/flasher-init/flasher-init is not a static aarch64 program" >&2
	exit 1
fi
version=$(sed -n 's/^project(netflash VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
arch=$(dpkg --print-architecture)

stage=$(mktemp -d "${TMPDIR:-/tmp}/netflash-deb.XXXXXX")
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/share/netflash" "$stage/usr/share/doc/netflash"
for b in master-tools/netflash master-tools/netflashd flasher-init/netflash-write; do
	strip -o "$stage/usr/bin/$(basename "$b")" "$build/$b"
	chmod 0755 "$stage/usr/bin/$(basename "$b")"
done
# udp-receiver for multicast sessions: Debian's arm64 binary (package
# udpcast) with the arm64 libc it loads (Debian multiarch, installed with
# the arm64 -dev packages by scripts/deps.sh); about 0.9 MB gzipped.
udeb_dir="$abuild/udpcast-arm64"
if [ ! -x "$udeb_dir/usr/bin/udp-receiver" ]; then
	mkdir -p "$udeb_dir"
	(cd "$udeb_dir" && rm -f ./*.deb && apt-get download -q -o APT::Sandbox::User=root udpcast:arm64 >/dev/null) ||
		{ echo "package-master: cannot download udpcast:arm64 (apt-get download)" >&2; exit 1; }
	dpkg-deb -x "$udeb_dir"/udpcast_*_arm64.deb "$udeb_dir"
fi
"$src/boot-files/build-initramfs.sh" --init "$abuild/flasher-init/flasher-init" \
	--program "$udeb_dir/usr/bin/udp-receiver" -o "$stage/usr/share/netflash/netflash-arm64.cpio.gz" 2>/dev/null
cp "$src/README.md" "$src"/docs/{operator-guide,kernel-cmdline,netflash-write,api,protocol,security,multicast}.md \
	"$stage/usr/share/doc/netflash/"
# Man pages from the same text as --help (help2man), and bash completion
# that reads each command's --help.
mkdir -p "$stage/usr/share/man/man1" "$stage/usr/share/bash-completion/completions"
for b in netflash netflashd netflash-write; do
	help2man --no-info --no-discard-stderr --section=1 --name="$(case $b in
		netflash) echo "netboot-to-SD flasher for Raspberry Pi fleets: the master's command" ;;
		netflashd) echo "the netflash master daemon" ;;
		netflash-write) echo "write a disk image onto a card and verify it" ;; esac)" \
		"$stage/usr/bin/$b" | gzip -9n >"$stage/usr/share/man/man1/$b.1.gz"
done
install -m 0644 "$src/scripts/netflash-completion.bash" "$stage/usr/share/bash-completion/completions/netflash"
# The systemd units for the default state tree, as `netflash init` writes
# them, running /usr/bin's netflashd. Not enabled: the master needs
# `netflash init` first (the units have ConditionPathExists on its files).
mkdir -p "$stage/usr/lib/systemd/system"
NETFLASH_BINDIR=/usr/bin "$build/master-tools/netflash" --root /srv/netflash init \
	--units-only "$stage/usr/lib/systemd/system"
for s in postinst postrm; do
	printf '#!/bin/sh\nset -e\n# systemd learns of the units (or of their removal); nothing is enabled.\n%s\n' \
		'if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi' >"$stage/DEBIAN/$s"
	chmod 0755 "$stage/DEBIAN/$s"
done

# The packages of the shared libraries the binaries load.
deps=$(for b in "$stage"/usr/bin/*; do ldd "$b" | awk '/=>/ { print $3 }'; done | sort -u |
	while read -r lib; do dpkg -S "$(realpath "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true; done |
	cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')
[ -n "$deps" ] || { echo "package-master: cannot tell the binaries' library packages" >&2; exit 1; }
size=$(du -k -s "$stage/usr" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: netflash
Version: $version
Architecture: $arch
Maintainer: netflash developers <netflash@localhost>
Installed-Size: $size
Depends: $deps, dnsmasq-base, mtools, tzdata, xkb-data, locales
Recommends: nfs-kernel-server | nfs-ganesha-vfs, logrotate, udpcast
Section: admin
Priority: optional
Description: netboot-to-SD flasher for Raspberry Pi fleets (master)
 netflash answers the Pis' network boot (dnsmasq proxy-DHCP and TFTP, one
 directory per worker MAC), serves a compressed image over NFS, and
 releases a worker once it has written and verified its SD card.
 Includes the aarch64 flasher initramfs for the workers (with udpcast's
 udp-receiver for multicast sessions).
CONTROL
mkdir -p "$out"
deb="$out/netflash_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
