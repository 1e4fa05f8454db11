# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# Shared helpers for integration tests. Source it first thing in a test:
# it makes a private work dir, and its EXIT trap ends every process and
# detaches every loop device the test registered, also when the test fails.
set -euo pipefail

: "${NETFLASH_BUILD:?NETFLASH_BUILD must point at the build directory}"
NETFLASH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NFW="$NETFLASH_BUILD/flasher-init/netflash-write"
T=$(mktemp -d "${TMPDIR:-/tmp}/netflash-test.XXXXXX")
# dnsmasq drops to its own user (the generated config says which): it must
# be able to reach the TFTP root inside the work dir (search, not list).
chmod 711 "$T"
_LOOPS=() _PIDS=() _MOUNTS=()
FAILS=0

# shellcheck source=fixtures/ganesha.sh
source "$NETFLASH_SRC/tests/fixtures/ganesha.sh"
# shellcheck source=fixtures/netns.sh
source "$NETFLASH_SRC/tests/fixtures/netns.sh"
# shellcheck source=fixtures/master.sh
source "$NETFLASH_SRC/tests/fixtures/master.sh"
# shellcheck source=fixtures/fakecard.sh
source "$NETFLASH_SRC/tests/fixtures/fakecard.sh"

_cleanup() {
	local rc=$?
	set +e
	for m in "${_MOUNTS[@]}"; do umount "$m" 2>/dev/null; done
	ganesha_stop
	for p in "${_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	for l in "${_LOOPS[@]}"; do _loop_detach_ours "$l"; done
	# A FUSE mount under a loop device could not go before the loop did.
	for m in "${_MOUNTS[@]}"; do mountpoint -q "$m" && umount -l "$m" 2>/dev/null; done
	netns_cleanup
	if { [ $rc -eq 0 ] || [ $rc -eq 77 ]; } && [ "$FAILS" -eq 0 ] && [ -z "${NETFLASH_KEEP:-}" ]; then rm -rf "$T"; else echo "kept work dir $T" >&2; fi
	exit $rc
}
trap _cleanup EXIT

# loop_attach VAR FILE [losetup options]: attaches FILE, stores the device in
# VAR and registers it for detach (not in a $(...) subshell, which would lose
# the registration).
loop_attach() {
	local -n _dev=$1
	local f=$2
	shift 2
	_dev=$(losetup --find --show "$@" "$f")
	_LOOPS+=("$_dev|$(realpath "$f")")
}

# Detaches a registered "DEV|FILE" only while DEV is still attached to FILE:
# once detached, the number may already belong to another test's device.
_loop_detach_ours() {
	local dev=${1%%|*} file=${1#*|}
	[ "$(losetup -nO BACK-FILE "$dev" 2>/dev/null | sed 's/ *$//')" = "$file" ] && losetup -d "$dev" 2>/dev/null
	return 0
}

# loop_detach DEV: detaches a device loop_attach made, now.
loop_detach() {
	local l
	for l in "${_LOOPS[@]}"; do [ "${l%%|*}" = "$1" ] && _loop_detach_ours "$l"; done
	return 0 # not the last test's status: set -e would end the caller
}

# loop_partitions DEV IMAGE: makes sure DEVpN exist for IMAGE's MBR
# partitions; kernels built without partition-table parsers do not create
# them, so add them with BLKPG (addpart) from the table partx reads.
loop_partitions() {
	local dev=$1 img=$2 n start sectors
	sleep 0.2
	while read -r n start sectors; do
		[ -b "${dev}p$n" ] || addpart "$dev" "$n" "$start" "$sectors"
	done < <(partx -g -o NR,START,SECTORS "$img")
}
register_mount() { _MOUNTS+=("$1"); }
register_pid() { _PIDS+=("$1"); }

# wait_for FILE REGEX [SECONDS]: waits (up to SECONDS, default 5) for a line
# of FILE matching REGEX (grep's basic syntax); 0 once there, 1 on timeout.
wait_for() {
	local f=$1 re=$2 i
	for ((i = 0; i < ${3:-5} * 10; i++)); do
		grep -q -- "$re" "$f" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# wait_listen PORT [SECONDS]: waits (default 10 s) until something listens
# on TCP PORT on this host's loopback; 0 once it does, 1 on timeout. Never
# a fixed sleep: a busy machine starts a server late.
wait_listen() { wait_until "${2:-10}" sh -c "ss -Hltn 'sport = :$1' | grep -q ."; }

# wait_until SECONDS CMD...: waits for CMD to succeed; 0 once it does, 1 on timeout.
wait_until() {
	local s=$1 i
	shift
	for ((i = 0; i < s * 10; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# nonzero_bytes FILE: the bytes of FILE in 1 MiB blocks that are not all
# zero (what the engine writes; the rest it makes without writing).
nonzero_bytes() {
	python3 -c 'import sys
f = open(sys.argv[1], "rb"); n = 0
while True:
    b = f.read(1 << 20)
    if not b: break
    n += len(b) if b.count(0) != len(b) else 0
print(n)' "$1"
}

# grep -q for a pipe: it reads its input to the end. With pipefail, grep -q
# leaving at the first match kills a writer that is not done (SIGPIPE, 141)
# and turns a match into a failure (seen: a 4.2 KiB --help under ASan).
has() { grep "$@" >/dev/null; }
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
finish() { [ "$FAILS" -eq 0 ] || { echo "$FAILS check(s) failed" >&2; exit 1; }; }

# have_browser: 0 when the browser tests can run here: Node.js, the
# playwright-core driver tests/web holds (scripts/deps.sh installs it) and
# Debian's Chromium. Sets WEB to tests/web.
have_browser() {
	WEB=$NETFLASH_SRC/tests/web
	command -v node >/dev/null && [ -d "$WEB/node_modules/playwright-core" ] && [ -x /usr/bin/chromium ]
}
# need_browser: have_browser, or the test says why and is skipped (77).
need_browser() {
	have_browser && return 0
	echo "$(basename "$0" .sh): no node, no $WEB/node_modules/playwright-core (scripts/deps.sh) or no chromium: skipped" >&2
	exit 77
}

# Small realistic images are cached per build so tests do not rebuild them.
# test_image SIZE_MIB -> prints the path of IMG with .xz .mt.xz .gz .zst beside it
test_image() {
	local dir="$NETFLASH_BUILD/test-images" img
	img="$dir/pios-$1M.img"
	mkdir -p "$dir"
	if [ ! -f "$img.zst" ]; then
		(
			exec 9>"$dir/.lock"
			flock 9
			[ -f "$img.zst" ] || "$NETFLASH_SRC/images/build-test-image.sh" --size "$1" --compress "$img"
		)
	fi
	echo "$img"
}

# random_disk PATH SIZE_BYTES: random bytes with an MBR (one partition from
# 1 MiB, made by sfdisk) in front, so that netflash takes it as a disk image;
# incompressible, for tests that need volume rather than realism.
random_disk() {
	head -c "$2" /dev/urandom >"$1"
	echo 'start=2048, type=83' | sfdisk -q --no-reread --no-tell-kernel "$1" >/dev/null
}

# pi_initramfs OUT [CFLAGS...]: a gzip'd newc cpio whose /init is a small
# aarch64 program built with the cross compiler (static unless CFLAGS say
# otherwise): what boot-files import takes as the flasher's initramfs.
pi_initramfs() {
	local out=$1 d
	shift
	d=$(mktemp -d "$T/initramfs.XXXXXX")
	mkdir -p "$d/root"
	printf 'int main(void) { return 0; }\n' >"$d/init.c"
	aarch64-linux-gnu-gcc -O1 "${@:--static}" -o "$d/root/init" "$d/init.c"
	(cd "$d/root" && find . | cpio -o -H newc --quiet | gzip -9) >"$out"
}

# first_mib FILE -> sha256 of its first MiB
first_mib() { dd if="$1" bs=1048576 count=1 iflag=fullblock status=none | sha256sum | cut -d' ' -f1; }

# pattern_file PATH SIZE_BYTES: a target pre-filled with 0xA5 bytes, so tests
# can tell "never written" from "written".
pattern_file() { head -c "$2" /dev/zero | tr '\0' '\245' >"$1"; }

# expect_fail NAME REGEX CMD...: CMD must exit 1 with REGEX in its stderr
expect_fail() {
	local name=$1 re=$2; shift 2
	local rc=0
	"$@" >"$T/out.log" 2>"$T/err.log" || rc=$?
	if [ $rc -ne 1 ]; then
		fail "$name: exit $rc, expected 1; stderr: $(tail -c 400 "$T/err.log")"
		return 1
	fi
	if ! grep -Eq "$re" "$T/err.log"; then
		fail "$name: error text does not match /$re/: $(tail -c 400 "$T/err.log")"
		return 1
	fi
	if [ "$(grep -c 'error:' "$T/err.log")" -ne 1 ]; then
		fail "$name: expected exactly one error line: $(cat "$T/err.log")"
		return 1
	fi
	return 0
}

# head_not_written NAME TARGET IMAGE: the target's first MiB is not the image's
head_not_written() {
	if [ "$(first_mib "$2")" = "$(first_mib "$3")" ]; then
		fail "$1: the first MiB of the target was written"
		return 1
	fi
	return 0
}
