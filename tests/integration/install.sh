#!/usr/bin/env bash
# The master as the Debian package installs it (scripts/package-master.sh;
# the test command builds it before ctest): dpkg takes it, it holds the
# binaries and the aarch64 flasher initramfs, and the README's setup steps
# (init, image add, boot-files import without --initramfs, enroll) work with
# the installed netflash on loopback.
source "$(dirname "$0")/../lib.sh"

deb=$(ls "$NETFLASH_BUILD"/netflash_*_*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
	echo "install: no netflash .deb in $NETFLASH_BUILD (scripts/test.sh builds it): skipped" >&2
	exit 77
fi
I=$T/inst
dpkg-deb -x "$deb" "$I"
[ "$(dpkg-deb -f "$deb" Package)" = netflash ] && dpkg-deb -f "$deb" Depends | has "libnfs13.*dnsmasq-base" &&
	pass "the package is 'netflash' and depends on its libraries and dnsmasq-base" || fail "control: $(dpkg-deb -I "$deb")"
for b in netflash netflashd netflash-write; do
	"$I/usr/bin/$b" --help >/dev/null 2>&1 || fail "installed $b --help failed"
done
pass "the installed netflash, netflashd and netflash-write run"
DR=$T/dpkgroot
mkdir -p "$DR/var/lib/dpkg/info" "$DR/var/lib/dpkg/updates"
touch "$DR/var/lib/dpkg/status"
dpkg --root="$DR" --force-script-chrootless --force-depends -i "$deb" >"$T/dpkg.log" 2>&1 &&
	[ -x "$DR/usr/bin/netflashd" ] && [ -s "$DR/usr/share/netflash/netflash-arm64.cpio.gz" ] &&
	pass "dpkg installs it into a scratch root" || fail "dpkg: $(cat "$T/dpkg.log")"

# Man pages (help2man, from --help) and bash completion (from --help).
for b in netflash netflashd netflash-write; do
	zcat "$I/usr/share/man/man1/$b.1.gz" 2>/dev/null | has "^\.SH DESCRIPTION" || fail "no man page for $b"
done
zcat "$I/usr/share/man/man1/netflash.1.gz" | has -- "--root" && pass "man pages for netflash, netflashd, netflash-write" ||
	fail "netflash.1 lacks --root"
comp() { # WORDS...: what bash completes for the last word
	PATH="$I/usr/bin:$PATH" bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _netflash
		printf "%s\n" "${COMPREPLY[@]}"' _ "$I/usr/share/bash-completion/completions/netflash" "$@"
}
[ "$(comp netflash enr)" = enroll ] && [ "$(comp netflash enroll --ima)" = --image ] &&
	comp netflash image add x --os | has -- "--os-list-name" && comp netflash --root /tmp boot | has boot-files &&
	pass "bash completion: commands, and each command's options from its --help" ||
	fail "completion: '$(comp netflash enr)' '$(comp netflash enroll --ima)'"

# The README's steps with the installed binaries.
NF="$I/usr/bin/netflash"
R=$T/root
img=$(test_image 16)
export NETFLASH_DATADIR="$I/usr/share/netflash"
"$NF" --root "$R" init --interface lo --subnet 127.0.0.0/8 --server-ip 127.0.0.1 >/dev/null 2>&1 &&
	"$NF" --root "$R" image add "$img.xz" --name bookworm-lite >/dev/null &&
	"$NF" --root "$R" boot-files import --from-image bookworm-lite >"$T/import.out" 2>&1 &&
	"$NF" --root "$R" enroll b8:27:eb:d3:85:78 --image bookworm-lite --hostname rack1-07 >/dev/null &&
	"$NF" --root "$R" ls | has "b8-27-eb-d3-85-78" || fail "setup steps: $(cat "$T/import.out")"
has "flasher initramfs: .*netflash-arm64.cpio.gz" "$T/import.out" &&
	cmp -s "$NETFLASH_DATADIR/netflash-arm64.cpio.gz" "$R/tftp/b8-27-eb-d3-85-78/netflash.cpio.gz" &&
	pass "boot-files import with no --initramfs serves the packaged aarch64 flasher" ||
	fail "initramfs: $(cat "$T/import.out"; ls "$R/tftp/b8-27-eb-d3-85-78")"
grep -q "^ExecStart=$I/usr/bin/netflashd \|^ExecStart=/usr/local/bin/netflashd " "$R/etc/netflashd.service" &&
	pass "the generated unit runs the installed netflashd" || fail "unit: $(grep ExecStart "$R/etc/netflashd.service")"
finish
