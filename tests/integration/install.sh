#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The master as the Debian package installs it (scripts/package-master.sh;
# the test command builds it before ctest): dpkg takes it; it holds the
# binaries, the aarch64 flasher initramfs, the systemd units, man pages and
# bash completion. Then the README's "Set up a master" steps run verbatim,
# in order, in a namespace that is a fresh master on a LAN with a Pi.
source "$(dirname "$0")/../lib.sh"

deb=$(ls "$NETFLASH_BUILD"/netflash_*_"$(dpkg --print-architecture)".deb 2>/dev/null | head -1 || true)
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
has "^License: GPL-2.0-or-later$" "$I/usr/share/doc/netflash/copyright" &&
	has "udpcast" "$I/usr/share/doc/netflash/copyright" && has "apt-get source" "$I/usr/share/doc/netflash/copyright" &&
	pass "the package's copyright file: GPL-2.0-or-later, the initramfs's third-party code and where its sources are" ||
	fail "copyright: $(head -5 "$I/usr/share/doc/netflash/copyright" 2>&1)"
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
# Subcommands, the root's image names and enrolled MACs, with bash-completion
# loaded as an interactive shell has it: readline splits a MAC at its
# colons, the helpers join it again.
CR=$T/comp-root
img=$(test_image 16)
"$I/usr/bin/netflash" --root "$CR" init --interface lo --server-ip 127.0.0.1 --subnet 127.0.0.0/8 >/dev/null
"$I/usr/bin/netflash" --root "$CR" image add "$img.zst" --name pios-lite >/dev/null
"$I/usr/bin/netflash" --root "$CR" boot-files import --from-image pios-lite >/dev/null 2>&1
"$I/usr/bin/netflash" --root "$CR" enroll b8:27:eb:00:31:11 --image pios-lite >/dev/null
compi() { # LINE: what an interactive bash completes at its end
	PATH="$I/usr/bin:$PATH" bash -c 'source /usr/share/bash-completion/bash_completion; source "$1"
		COMP_LINE=$2 COMP_POINT=${#2}; COMP_WORDS=()
		read -ra COMP_WORDS <<<"${2//:/ : }"; [ "${2: -1}" = " " ] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _netflash; printf "%s\n" "${COMPREPLY[@]}"' \
		_ "$I/usr/share/bash-completion/completions/netflash" "$1"
}
[ "$(compi "netflash --root $CR image r")" = rm ] && [ "$(compi "netflash --root $CR image fi")" = finish ] &&
	[ "$(compi "netflash --root $CR image rm pi")" = pios-lite ] &&
	[ "$(compi "netflash --root $CR enroll x --image p")" = pios-lite ] &&
	[ "$(compi "netflash --root $CR power c")" = cycle ] &&
	[ "$(compi "netflash --root $CR release b8:27:eb:00:3")" = 31:11 ] &&
	[ "$(compi "netflash --root $CR release ")" = b8:27:eb:00:31:11 ] &&
	compi "netflash --root $CR image add $T/co" | has "^$T/comp-root$" &&
	pass "bash completion: subcommands, image names, enrolled MACs (colons and all), files for image add" ||
	fail "completion: $(compi "netflash --root $CR image r") / $(compi "netflash --root $CR image rm pi") / $(compi "netflash --root $CR release b8:27:eb:00:3")"
for c in image enroll power; do
	zcat "$I/usr/share/man/man1/netflash-$c.1.gz" 2>/dev/null | has "^\.SH DESCRIPTION" || fail "no man page netflash-$c"
done
zcat "$I/usr/share/man/man1/netflash-image.1.gz" | has "finish" && zcat "$I/usr/share/man/man1/netflash.1.gz" | has "netflash-image" &&
	zcat "$I/usr/share/man/man1/netflashd.1.gz" | grep -qF 'peer\-check' &&
	pass "a man page a command (netflash-image ...), named in netflash(1); netflashd's synopsis has --peer-check" ||
	fail "man pages: $(zcat "$I/usr/share/man/man1/netflash-image.1.gz" | head -20)"


# ---- the README's "Set up a master" steps, as written ----------------------
# Every command of the section's numbered steps runs verbatim, in order, as
# root in a namespace that is a fresh master: its eth0 is 192.168.1.10 on a
# LAN of network namespaces whose other end has the README's Pi MAC; /usr,
# /etc and /var are overlays whose writes stay in this test's dir (apt and
# dpkg install the package for real there); /srv is this test's. What this
# machine cannot do, a shim checks instead (tests/fixtures/shims/README):
# the build (done by the test command), systemd, the kernel NFS server.
AB=${NETFLASH_AARCH64_BUILD:-$NETFLASH_SRC/build-aarch64}
if [ ! -x "$AB/flasher-init/flasher-init" ]; then
	echo "install: no aarch64 build in $AB: the README steps are skipped" >&2
	finish
	exit 0
fi
MAC=b8:27:eb:d3:85:78 DASH=b8-27-eb-d3-85-78
awk '/^## Set up a master/ { on = 1; next } on && /^##/ { exit } on && /^       [^ ]/ { sub(/^       /, ""); print }' \
	"$NETFLASH_SRC/README.md" >"$T/steps"
[ "$(wc -l <"$T/steps")" -ge 12 ] && has '^netflash enroll' "$T/steps" && has '^apt install "./' "$T/steps" ||
	fail "could not read the setup steps from README.md: $(cat "$T/steps")"
CO=$T/co
mkdir -p "$CO" "$T/srv" "$T/ov"
chmod 755 "$T/srv"
for f in "$NETFLASH_SRC"/*; do case ${f##*/} in build*) ;; *) ln -s "$f" "$CO/" ;; esac; done
ln -s "$NETFLASH_BUILD" "$CO/build"
ln -s "$AB" "$CO/build-aarch64"
cp "$(test_image 16).xz" "$CO/2024-11-19-raspios-bookworm-arm64-lite.img.xz"
netns_lan
netns_host master 02:00:00:00:00:0a 192.168.1.10
netns_host pi "$MAC" 192.168.1.50
export SHIM_DIR=$T SHIM_SRC=$NETFLASH_SRC
if nsx master unshare -m --propagation private "$NETFLASH_SRC/tests/fixtures/shims/run-steps.sh" \
	"$T/steps" "$T/ov" "$T/srv" "$CO" 2>"$T/run.err"; then
	pass "every command of the README's 'Set up a master' ran as written ($(wc -l <"$T/steps") lines)"
else
	fail "$(cat "$T/run.err"); output: $(tail -15 "$T/steps.out" 2>&1)"
fi
[ -f "$T/pids" ] && while read -r p; do register_pid "$p"; done <"$T/pids"
has "apt: installed ./build/netflash_.*deb" "$T/shim.log" &&
	has "systemctl: netflashd from /usr/lib/systemd/system/netflashd.service: /usr/bin/netflashd --root /srv/netflash" \
		"$T/shim.log" && has "kept /usr/lib/systemd/system/netflashd.service" "$T/steps.out" &&
	pass "apt installed the package; its systemd units run /usr/bin/netflashd for /srv/netflash" ||
	fail "units: $(cat "$T/shim.log" 2>&1)"
wait_for "$T/srv/netflash/log/dnsmasq.log" "TFTP root is" 5 || :
wait_for "$T/netflashd.log" "listening on" 5 || :
nsx pi curl -s --max-time 10 -o "$T/cmdline.txt" "tftp://192.168.1.10/cmdline.txt" || true
nsx pi curl -s --max-time 20 -o "$T/netflash.cpio.gz" "tftp://192.168.1.10/netflash.cpio.gz" || true
tok=$(grep -o 'netflash.token=[0-9a-f]*' "$T/cmdline.txt" 2>/dev/null | cut -d= -f2 || true)
[ -n "$tok" ] && has "netflash.server=192.168.1.10:7070" "$T/cmdline.txt" &&
	cmp -s "$T/netflash.cpio.gz" "$T/ov/usr.up/share/netflash/netflash-arm64.cpio.gz" &&
	pass "the Pi's MAC gets its cmdline.txt and the packaged flasher initramfs over TFTP from the unit's dnsmasq" ||
	fail "TFTP: $(cat "$T/cmdline.txt" 2>&1); dnsmasq: $(tail -5 "$T/srv/netflash/log/dnsmasq.log" 2>&1)"
ans=$(nsx pi bash -c 'exec 3<>/dev/tcp/192.168.1.10/7070 || exit 1; printf "%s\n" "$1" >&3; timeout 3 head -1 <&3' \
	_ "HELLO v=1 mac=$MAC token=$tok" || true)
[[ $ans == JOB\ * ]] && pass "the unit's netflashd gives the Pi its job: ${ans:0:70}..." ||
	fail "HELLO answered '$ans': $(tail -5 "$T/netflashd.log" 2>&1)"
! has "warning" "$T/steps.out" && pass "init warns of nothing on a master whose eth0 was set up without 'brd'" ||
	fail "warnings: $(grep warning "$T/steps.out")"
has "rack1-07" "$T/steps.out" && has "$DASH" "$T/steps.out" && pass "ls and status show the enrolled worker" ||
	fail "steps output: $(cat "$T/steps.out")"
[ ! -e /usr/bin/netflash ] && [ ! -e /srv/netflash ] && pass "nothing was installed outside the test's overlays" ||
	fail "the host got /usr/bin/netflash or /srv/netflash"
finish
