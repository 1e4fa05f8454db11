#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds and packs the netflash master as a Debian package for ARCH: netflash,
# netflashd and netflash-write built for ARCH (amd64 natively; arm64 and armhf
# cross-built with Debian's cross compilers and multiarch -dev packages,
# scripts/deps.sh), and the Raspberry Pi flasher's initramfs (the static
# aarch64 flasher-init, with udpcast's udp-receiver) as
# /usr/share/netflash/netflash-arm64.cpio.gz, the same in every package.
# It also ships the two systemd units for /srv/netflash (not enabled), man
# pages and bash completion. Depends: the Debian packages of the libraries
# the binaries load (their NEEDED entries and dpkg -S), plus dnsmasq-base,
# mtools and e2fsprogs (debugfs); an NFS server and udpcast are
# recommended. The package's path is the last line it prints.
#
#   scripts/package-master.sh [--arch amd64|arm64|armhf] [--build DIR] [-o OUTDIR]
#
#   --arch   the master's architecture (default: this machine's): amd64 for
#            a PC, arm64 for Raspberry Pi OS 64-bit / Debian 12 on a Pi 3, 4,
#            5, armhf for Raspberry Pi OS 32-bit (ARMv7: Pi 2 and later)
#   --build  an existing build of the master for ARCH to pack (default: it
#            is built in build, or in build-master-ARCH when cross-built)
#   -o       where the .deb goes (default: the build dir)
#
# Then on the master: apt install ./netflash_VERSION_ARCH.deb
set -euo pipefail

out= arch= build=
usage() { awk 'NR > 1 && /^# SPDX/ { next } NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
	case "$1" in
	-o) out=$2; shift 2 ;;
	--arch) arch=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "package-master: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
src=$(cd "$(dirname "$0")/.." && pwd)
arch=${arch:-$(dpkg --print-architecture)}
case $arch in
amd64) triplet=x86_64-linux-gnu toolchain= emu= ;;
arm64) triplet=aarch64-linux-gnu toolchain=$src/cmake/aarch64-linux-gnu.cmake emu=qemu-aarch64-static ;;
armhf) triplet=arm-linux-gnueabihf toolchain=$src/cmake/armhf-linux-gnueabihf.cmake emu=qemu-arm-static ;;
*) echo "package-master: --arch '$arch': expected amd64, arm64 or armhf" >&2; exit 2 ;;
esac
[ "$arch" = "$(dpkg --print-architecture)" ] && emu=
# cmake_build DIR ARGS...: configures and builds quietly; says so on failure.
cmake_build() {
	local dir=$1
	shift
	{ cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null &&
		cmake --build "$dir" -j"$(nproc)" >"$dir/package-build.log" 2>&1; } ||
		{ echo "package-master: building in $dir failed (see $dir/package-build.log)" >&2; exit 1; }
}
if [ -z "$build" ] && [ -z "$emu" ]; then
	# This machine's own: the usual build dir (configured as it is).
	build=$src/build
	cmake_build "$build"
elif [ -z "$build" ]; then
	build=$src/build-master-$arch
	cmake_build "$build" -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DNETFLASH_PACKAGE_ONLY=ON
fi
# The Pi workers' flasher-init: static aarch64, whatever the master is.
abuild=$src/build-aarch64
[ -x "$abuild/flasher-init/flasher-init" ] ||
	cmake_build "$abuild" -DCMAKE_TOOLCHAIN_FILE="$src/cmake/aarch64-linux-gnu.cmake" -DNETFLASH_WORKER_ONLY=ON
out=${out:-$build}
# run BINARY ARGS...: runs one of the built programs here (emulated when
# cross-built, with Debian's ARCH libraries from this machine's multiarch
# dirs: -L /; the cross toolchain's own libc hangs in pthread_create under
# qemu-user 7.2).
run() { if [ -n "$emu" ]; then "$emu" -L / "$@"; else "$@"; fi; }
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
machine=$(readelf -h "$build/master-tools/netflashd" | sed -n 's/ *Machine: *//p')
case "$arch:$machine" in
amd64:*X86-64* | arm64:AArch64 | armhf:ARM) ;;
*) echo "package-master: $build holds $machine programs, not $arch" >&2; exit 1 ;;
esac

stage=$(mktemp -d "${TMPDIR:-/tmp}/netflash-deb.XXXXXX")
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/share/netflash" "$stage/usr/share/doc/netflash"
strip_cmd=strip
[ -n "$emu" ] && strip_cmd=$triplet-strip
for b in master-tools/netflash master-tools/netflashd flasher-init/netflash-write; do
	"$strip_cmd" -o "$stage/usr/bin/$(basename "$b")" "$build/$b"
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
install -m 0644 "$src/debian/copyright" "$stage/usr/share/doc/netflash/copyright"
cp "$src/README.md" "$src"/docs/{operator-guide,kernel-cmdline,netflash-write,api,protocol,security,multicast}.md \
	"$stage/usr/share/doc/netflash/"
# Man pages from the same text as --help (help2man), and bash completion
# that reads each command's --help.
mkdir -p "$stage/usr/share/man/man1" "$stage/usr/share/bash-completion/completions"
# help2man runs each program: a cross-built one through a wrapper that
# runs it emulated.
wrap=$(mktemp -d "${TMPDIR:-/tmp}/netflash-wrap.XXXXXX")
trap 'rm -rf "$stage" "$wrap"' EXIT
for b in netflash netflashd netflash-write; do
	if [ -n "$emu" ]; then
		printf '#!/bin/sh\nexec %s -L / %s "$@"\n' "$emu" "$stage/usr/bin/$b" >"$wrap/$b"
	else
		ln -s "$stage/usr/bin/$b" "$wrap/$b"
	fi
	chmod 0755 "$wrap/$b"
done
printf '[SEE ALSO]\n' >"$wrap/see-also"
"$wrap/netflash" --help | awk '/^Commands:/ { f = 1; next } /^$/ { f = 0 } f { printf "%s\\fBnetflash-%s\\fR(1)", n++ ? ", " : "", $1 } END { print ", \\fBnetflashd\\fR(1), \\fBnetflash-write\\fR(1)" }' >>"$wrap/see-also"
for b in netflash netflashd netflash-write; do
	help2man --no-info $([ "$b" = netflash ] && echo --include="$wrap/see-also") --no-discard-stderr --section=1 --name="$(case $b in
		netflash) echo "netboot-to-SD flasher for Raspberry Pi fleets: the master's command" ;;
		netflashd) echo "the netflash master daemon" ;;
		netflash-write) echo "write a disk image onto a card and verify it" ;; esac)" \
		"$wrap/$b" | sed "s|$wrap/||g" | gzip -9n >"$stage/usr/share/man/man1/$b.1.gz"
done
# One page a command (man netflash-image), from `netflash CMD --help`;
# netflash(1) names them in SEE ALSO.
cmds=$("$wrap/netflash" --help | awk '/^Commands:/ { f = 1; next } /^$/ { f = 0 } f { print $1 }')
man_version=$("$wrap/netflash" --version | head -1)
for c in $cmds; do
	printf '#!/bin/sh\nexec %s %s "$@"\n' "$wrap/netflash" "$c" >"$wrap/netflash-$c"
	chmod 0755 "$wrap/netflash-$c"
	help2man --no-info --no-discard-stderr --section=1 --version-string="$man_version" \
		--name="$("$wrap/netflash" --help | awk -F '  +' -v c="$c" '/^Commands:/ { f = 1; next } f { split($2, w, " "); if (w[1] == c) { print $NF; exit } }')" \
		"$wrap/netflash-$c" | sed "s|$wrap/||g" | gzip -9n >"$stage/usr/share/man/man1/netflash-$c.1.gz"
done
install -m 0644 "$src/scripts/netflash-completion.bash" "$stage/usr/share/bash-completion/completions/netflash"
# The systemd units for the default state tree, as `netflash init` writes
# them, running /usr/bin's netflashd. Not enabled: the master needs
# `netflash init` first (the units have ConditionPathExists on its files).
mkdir -p "$stage/usr/lib/systemd/system"
NETFLASH_BINDIR=/usr/bin run "$build/master-tools/netflash" --root /srv/netflash init \
	--units-only "$stage/usr/lib/systemd/system"
for s in postinst postrm; do
	printf '#!/bin/sh\nset -e\n# systemd learns of the units (or of their removal); nothing is enabled.\n%s\n' \
		'if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi' >"$stage/DEBIAN/$s"
	chmod 0755 "$stage/DEBIAN/$s"
done

# The packages of the shared libraries the binaries load.
# Each NEEDED soname is found in ARCH's multiarch dirs (as its loader would)
# and dpkg names the package that holds it; a soname no package holds
# fails the build.
deps=$(for b in "$stage"/usr/bin/*; do readelf -d "$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; done | sort -u |
	while read -r so; do
		lib=
		for d in /lib/$triplet /usr/lib/$triplet; do [ -e "$d/$so" ] && { lib=$d/$so; break; }; done
		[ -n "$lib" ] || { echo "package-master: $so (needed by the $arch binaries) is not installed" >&2; exit 1; }
		dpkg -S "$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")" 2>/dev/null ||
			dpkg -S "$(realpath "$lib" | sed 's|^/usr/lib/|/lib/|')" 2>/dev/null ||
			{ echo "package-master: no package holds $lib" >&2; exit 1; }
	done | cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')
[ -n "$deps" ] || { echo "package-master: cannot tell the binaries' library packages" >&2; exit 1; }
size=$(du -k -s "$stage/usr" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: netflash
Version: $version
Architecture: $arch
Maintainer: netflash developers <netflash@localhost>
Installed-Size: $size
Depends: $deps, dnsmasq-base, mtools, e2fsprogs, tzdata, xkb-data, locales
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
# Relative to here, as `apt install "./$(...)"` in the README takes it.
realpath -s --relative-to="$PWD" "$deb"
