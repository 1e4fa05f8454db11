#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds netflash.cpio.gz, the worker's initramfs: the static flasher-init as
# /init and, optionally, kernel modules by name with their dependencies
# resolved from modules.dep, listed in load order in /etc/netflash/modules;
# and, optionally, programs flasher-init runs (udpcast's udp-receiver for
# multicast sessions) as /bin/NAME with their ELF interpreter and shared
# libraries taken from a root of their architecture. Nothing else. No root,
# no loop mounts (cpio newc, owner 0:0).
#
# usage: build-initramfs.sh --init FLASHER_INIT [--modules-dir DIR --modules "a b c"]
#                           [--program FILE]... [--sysroot ROOT] -o OUT
#   DIR is a kernel's lib/modules/VERSION (with modules.dep: run depmod first).
#   ROOT holds the programs' libraries in lib/TRIPLET or usr/lib/TRIPLET
#   (default /: Debian multiarch puts arm64 libraries in /usr/lib/aarch64-linux-gnu).
set -euo pipefail

init= moddir= mods= out= sysroot=/
progs=()
usage() { awk 'NR > 1 && /^# SPDX/ { next } NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--init) init=$2; shift 2 ;;
	--modules-dir) moddir=$2; shift 2 ;;
	--modules) mods=$2; shift 2 ;;
	--program) progs+=("$2"); shift 2 ;;
	--sysroot) sysroot=$2; shift 2 ;;
	-o) out=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "build-initramfs: unknown argument '$1'" >&2; usage ;;
	esac
done
[ -n "$init" ] && [ -n "$out" ] || usage
[ -x "$init" ] || { echo "build-initramfs: '$init' is not an executable" >&2; exit 1; }
if [ -n "$mods" ] && [ ! -f "$moddir/modules.dep" ]; then
	echo "build-initramfs: no modules.dep in '$moddir' (run depmod)" >&2
	exit 1
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/netflash-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{dev,proc,sys,tmp,etc/netflash}
strip -o "$stage/init" "$init" 2>/dev/null || cp "$init" "$stage/init"
chmod 0755 "$stage/init"

# Resolve names to module paths, dependencies first (modules.dep lines are
# "path: dep dep ..."; names match with - and _ alike).
declare -A seen
order=()
path_of() {
	awk -F: -v n="$1" '{ p = $1; b = p; sub(/.*\//, "", b); sub(/\.ko(\.[a-z]+)?$/, "", b);
		gsub(/-/, "_", b); m = n; gsub(/-/, "_", m); if (b == m) { print p; exit } }' "$moddir/modules.dep"
}
add_module() { # path relative to moddir
	local p=$1 d
	[ -n "${seen[$p]:-}" ] && return
	seen[$p]=1
	for d in $(awk -F: -v p="$p" '$1 == p { print $2 }' "$moddir/modules.dep"); do add_module "$d"; done
	order+=("$p")
}
for m in $mods; do
	p=$(path_of "$m")
	if [ -z "$p" ]; then
		if grep -q "/$m.ko" "$moddir/modules.builtin" 2>/dev/null || grep -q "/${m//_/-}.ko" "$moddir/modules.builtin" 2>/dev/null; then
			continue # built into this kernel
		fi
		echo "build-initramfs: module '$m' not found in $moddir" >&2
		exit 1
	fi
	add_module "$p"
done
for p in "${order[@]}"; do
	mkdir -p "$stage/lib/modules/$(dirname "$p")"
	case "$p" in
	*.ko.xz) xz -dc "$moddir/$p" >"$stage/lib/modules/${p%.xz}"; p=${p%.xz} ;;
	*.ko.zst) zstd -qdc "$moddir/$p" >"$stage/lib/modules/${p%.zst}"; p=${p%.zst} ;;
	*) cp "$moddir/$p" "$stage/lib/modules/$p" ;;
	esac
	echo "/lib/modules/$p" >>"$stage/etc/netflash/modules"
done

# Programs: the interpreter and every NEEDED library, found in the sysroot's
# multiarch dirs for the program's machine (readelf), recursively.
declare -A have_lib=()
lib_dirs=()
find_lib() { # name -> path in the sysroot
	local d
	for d in "${lib_dirs[@]}"; do [ -e "$sysroot/$d/$1" ] && { echo "$d/$1"; return 0; }; done
	return 1
}
add_lib() { # path inside the sysroot (as the program names it)
	local rel=$1 n real
	[ -n "${have_lib[$rel]:-}" ] && return
	have_lib[$rel]=1
	real=$(readlink -f "$sysroot/$rel")
	mkdir -p "$stage/$(dirname "$rel")"
	if [ -L "$sysroot/$rel" ]; then # a link stays a link (ld.so's usual one)
		target=$(readlink "$sysroot/$rel")
		ln -s "$target" "$stage/$rel"
		case $target in
		/*) add_lib "${target#/}" ;;
		*) add_lib "$(dirname "$rel")/$target" ;;
		esac
		return
	fi
	cp "$real" "$stage/$rel"
	for n in $(readelf -d "$real" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		p=$(find_lib "$n") || { echo "build-initramfs: $n (needed by $rel) not found in $sysroot" >&2; exit 1; }
		add_lib "$p"
	done
}
for prog in "${progs[@]}"; do
	[ -f "$prog" ] || { echo "build-initramfs: no program '$prog'" >&2; exit 1; }
	case $(readelf -h "$prog" | sed -n 's/ *Machine: *//p') in
	AArch64) triplet=aarch64-linux-gnu ;;
	*X86-64*) triplet=x86_64-linux-gnu ;;
	*ARM) triplet=arm-linux-gnueabihf ;;
	*) echo "build-initramfs: '$prog' is for a machine this script does not know" >&2; exit 1 ;;
	esac
	lib_dirs=("lib/$triplet" "usr/lib/$triplet" lib usr/lib)
	mkdir -p "$stage/bin"
	cp "$prog" "$stage/bin/$(basename "$prog")"
	chmod 0755 "$stage/bin/$(basename "$prog")"
	interp=$(readelf -l "$prog" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')
	[ -n "$interp" ] && add_lib "${interp#/}"
	for n in $(readelf -d "$prog" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		p=$(find_lib "$n") || { echo "build-initramfs: $n (needed by $prog) not found in $sysroot" >&2; exit 1; }
		add_lib "$p"
	done
done

# Reproducible: the same inputs give the same bytes (every package ships
# the same initramfs): fixed times, no inode numbers, no gzip name or time.
find "$stage" -exec touch -h -d "@${SOURCE_DATE_EPOCH:-0}" {} +
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9n >"$out.tmp"
mv "$out.tmp" "$out"
echo "built $out: $(stat -c %s "$out") bytes, init $(stat -c %s "$stage/init") bytes, ${#order[@]} modules," \
	"${#progs[@]} program(s) with ${#have_lib[@]} librar(ies)" >&2
