#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Packs netflash-agent (the worker-side half of `netflash reimage`) as a
# Debian package for the workers' own OS: one static binary, no
# dependencies, so the same .deb installs on any Raspberry Pi OS release of
# its architecture. Build the agent first; for 64-bit Pi OS that is the
# aarch64 cross-build (scripts/test.sh makes build-aarch64), for 32-bit Pi
# OS the armhf one (build-armhf; ARMv7: Pi 2 and later, not Pi 1/Zero):
#
#   scripts/package-agent.sh [-o OUTDIR] BUILD_DIR
#       BUILD_DIR  holds flasher-init/netflash-agent (build, build-aarch64, build-armhf)
#       OUTDIR     where the .deb goes (default: BUILD_DIR)
#
# Then on each worker: sudo apt install ./netflash-agent_VERSION_ARCH.deb
# (or dpkg -i). It installs /usr/sbin/netflash-agent and nothing else.
set -euo pipefail

out=
usage() { awk 'NR > 1 && /^# SPDX/ { next } NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
	case "$1" in
	-o) out=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	-*) echo "package-agent: unknown option '$1'" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || usage
build=$1
bin=$build/flasher-init/netflash-agent
out=${out:-$build}
[ -x "$bin" ] || { echo "package-agent: no executable $bin (build it first)" >&2; exit 1; }

# The package's architecture is the binary's, not this machine's.
case "$(readelf -h "$bin" | awk -F: '/Machine:/ { gsub(/^ +/, "", $2); print $2 }')" in
"AArch64") arch=arm64 ;;
"Advanced Micro Devices X86-64") arch=amd64 ;;
"ARM") arch=armhf ;;
*) echo "package-agent: $bin is for an architecture this script does not know" >&2; exit 1 ;;
esac
if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
	echo "package-agent: $bin is dynamically linked; build without sanitizers (a static binary is packed)" >&2
	exit 1
fi
version=$(sed -n 's/^project(netflash VERSION \([0-9.]*\).*/\1/p' "$(dirname "$0")/../CMakeLists.txt")
[ -n "$version" ] || { echo "package-agent: no version in CMakeLists.txt" >&2; exit 1; }

stage=$(mktemp -d "${TMPDIR:-/tmp}/netflash-agent-deb.XXXXXX")
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/DEBIAN" "$stage/usr/sbin" "$stage/usr/share/doc/netflash-agent"
strip_tool=strip
case "$arch" in
arm64) command -v aarch64-linux-gnu-strip >/dev/null && strip_tool=aarch64-linux-gnu-strip ;;
armhf) command -v arm-linux-gnueabihf-strip >/dev/null && strip_tool=arm-linux-gnueabihf-strip ;;
esac
"$strip_tool" -o "$stage/usr/sbin/netflash-agent" "$bin" 2>/dev/null || cp "$bin" "$stage/usr/sbin/netflash-agent"
chmod 0755 "$stage/usr/sbin/netflash-agent"
cat >"$stage/usr/share/doc/netflash-agent/README" <<'EOF'
netflash-agent is the worker side of `netflash reimage`: the master runs
`netflash-agent reimage --master IP:PORT --token-file -` over ssh (the token on stdin); the agent
checks the enrollment with netflashd, moves the Pi firmware on the boot
partition into netflash-disabled/ and reboots, so the Pi netboots into the
netflash flasher. `netflash-agent restore` undoes the move; `status` and
`mac` inspect. See `netflash-agent --help`.
EOF
size=$(du -k -s "$stage/usr" | cut -f1)
cat >"$stage/DEBIAN/control" <<EOF
Package: netflash-agent
Version: $version
Architecture: $arch
Maintainer: netflash developers <netflash@localhost>
Installed-Size: $size
Section: admin
Priority: optional
Description: worker side of netflash reimage (Raspberry Pi fleets)
 Makes a running Raspberry Pi netboot into the netflash flasher once the
 master has enrolled it: checks the enrollment with netflashd, moves the
 firmware on the boot partition aside reversibly, and reboots. A single
 static binary.
EOF
mkdir -p "$out"
deb="$out/netflash-agent_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
