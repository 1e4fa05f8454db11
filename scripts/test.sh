#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The test command: installs what is missing, builds with CMake, runs every
# test (unit, integration against real ganesha and loop devices), then
# rebuilds with clang + ASan/UBSan + libFuzzer and runs the suite again with
# a bounded fuzz run. Needs root (loop devices, ganesha's open-by-handle).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "test: needs root (loop devices, the NFS server); try: sudo $0" >&2
	exit 1
fi
scripts/deps.sh
jobs=$(nproc)
werror=OFF
[ "${CI:-}" = true ] && werror=ON

# The aarch64 worker first: e2e_rpi3 boots it. Its parser tables run under
# qemu-aarch64-static (test_decode is left out: feeding liblzma's threaded
# decoder one byte at a time takes tens of minutes under emulation).
cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DNETFLASH_WORKER_ONLY=ON \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo -DNETFLASH_WERROR=$werror >/dev/null
cmake --build build-aarch64 -j"$jobs"
(cd build-aarch64 && ctest --output-on-failure -R 'unit_test_(parse|format|hmac|proto)')
# The agent alone for 32-bit Pi OS (armhf): it needs only libc.
cmake -S . -B build-armhf -DCMAKE_TOOLCHAIN_FILE=cmake/armhf-linux-gnueabihf.cmake -DNETFLASH_AGENT_ONLY=ON \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo -DNETFLASH_WERROR=$werror >/dev/null
cmake --build build-armhf -j"$jobs"
# The agent's .debs for 64- and 32-bit Pi OS: packed, and their binaries run
# (emulated; `mac` is the agent's own MAC parser and formatter).
for b in "build-aarch64 arm64 qemu-aarch64-static" "build-armhf armhf qemu-arm-static"; do
	read -r dir arch emu <<<"$b"
	deb=$(scripts/package-agent.sh "$dir")
	[ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] &&
		dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/sbin/netflash-agent >"$dir/agent-from-deb" &&
		chmod +x "$dir/agent-from-deb" &&
		[ "$("$emu" "$dir/agent-from-deb" mac --mac B8-27-EB-00-00-01)" = b8-27-eb-00-00-01 ] ||
		{ echo "test: the $arch netflash-agent .deb is broken ($deb)" >&2; exit 1; }
	echo "test: $deb"
done

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNETFLASH_WERROR=$werror >/dev/null
cmake --build build -j"$jobs"
# The master's Debian packages (binaries + the aarch64 flasher initramfs):
# this machine's from build (tests/integration/install.sh installs it and
# follows the README's steps), and for Pi masters arm64 and armhf,
# cross-built (arm64_master.sh runs the arm64 one emulated).
for a in "$(dpkg --print-architecture)" arm64 armhf; do
	# An assignment, so that a failed build stops the test command.
	if [ "$a" = "$(dpkg --print-architecture)" ]; then
		deb=$(scripts/package-master.sh --arch "$a" --build build -o build)
	else
		deb=$(scripts/package-master.sh --arch "$a" -o build)
	fi
	echo "test: ${deb##*$'\n'}"
done
(cd build && ctest --output-on-failure -j2)
# The arm64 package installed with apt in an arm64 Debian root and run
# there (about 5 minutes, most of it making the root once, and it needs
# Debian's archive): when asked.
if [ "${NETFLASH_ARM64_WALK:-}" = 1 ]; then
	scripts/arm64-walk.sh build
fi
# A cloud-init image provisioned, flashed and booted twice in QEMU (minutes).
if [ "${NETFLASH_CLOUDINIT_WALK:-}" = 1 ]; then
	scripts/cloudinit-walk.sh build
fi
# The README's other command: the demo must keep working (it checks its own
# outcome; its card, logs and output stay in build/demo/).
scripts/demo.sh >build/demo.out 2>&1 || { tail -25 build/demo.out >&2; echo "test: the demo failed (build/demo.out)" >&2; exit 1; }
echo "test: $(grep '^RESULT' build/demo.out)"

CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNETFLASH_FUZZ=ON \
	-DNETFLASH_WERROR=$werror -DNETFLASH_FUZZ_SECONDS="${NETFLASH_FUZZ_SECONDS:-60}" >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j2)
echo "test: all passed"
