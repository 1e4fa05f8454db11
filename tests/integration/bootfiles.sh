#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# boot-files import against the real shapes of Raspberry Pi OS Bookworm's
# boot partition (pi-gen's config.txt with [cm4]/[cm5]/[all] sections,
# auto_initramfs=1, initramfs8/initramfs_2712, console=serial0,115200
# console=tty1), a 32-bit set, and a config that redirects the firmware
# (os_prefix=, kernel=, cmdline=, include, initramfs in a [pi4] section);
# init re-run; dnsmasq's dhcp-script for overlay files.
source "$(dirname "$0")/../lib.sh"

NF="$NETFLASH_BUILD/master-tools/netflash"
R=$T/root
M=b8:27:eb:00:00:01 D=b8-27-eb-00-00-01
"$NF" --root "$R" init --interface lo --server-ip 127.0.0.1 --subnet 127.0.0.0/8 --port 7070 >/dev/null

# A Bookworm arm64 boot partition, as pi-gen writes it (stage1 config.txt
# and cmdline.txt), with the firmware files' names.
B=$T/bookworm
mkdir -p "$B/overlays"
for f in bootcode.bin start.elf fixup.dat start4.elf fixup4.dat kernel8.img kernel_2712.img initramfs8 \
	initramfs_2712 bcm2710-rpi-3-b.dtb bcm2711-rpi-4-b.dtb bcm2712-rpi-5-b.dtb overlays/vc4-kms-v3d.dtbo; do
	head -c 4096 /dev/urandom >"$B/$f"
done
cat >"$B/config.txt" <<'EOF'
# For more options and information see
# http://rptl.io/configtxt
# Some settings may impact device functionality. See link above for details

# Uncomment some or all of these to enable the optional hardware interfaces
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on

# Enable audio (loads snd_bcm2835)
dtparam=audio=on

# Automatically load overlays for detected cameras
camera_auto_detect=1

# Automatically load overlays for detected DSI displays
display_auto_detect=1

# Automatically load initramfs files, if found
auto_initramfs=1

# Enable DRM VC4 V3D driver
dtoverlay=vc4-kms-v3d
max_framebuffers=2

# Don't have the firmware create an initial video= setting in cmdline.txt.
# Use the kernel's default instead.
disable_fw_kms_setup=1

# Run in 64-bit mode
arm_64bit=1

# Disable compensation for displays with overscan
disable_overscan=1

# Run as fast as firmware / board allows
arm_boost=1

[cm4]
# Enable host mode on the 2711 built-in XHCI USB controller.
# This line should be removed if the legacy DWC2 controller is required
# (e.g. for USB device mode) or if USB support is not required.
otg_mode=1

[cm5]
dtoverlay=dwc2,dr_mode=host

[all]
EOF
printf 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot splash plymouth.ignore-serial-consoles loglevel=3 cfg80211.ieee80211_regdom=GB\n' >"$B/cmdline.txt"

"$NF" --root "$R" boot-files import --from-boot "$B" >"$T/import.out" 2>&1 || fail "import: $(cat "$T/import.out")"
C=$R/boot/config.txt
! grep -q '^auto_initramfs=1' "$C" &&
	grep -q "'auto_initramfs=1' disabled: the firmware would pick Pi OS's own initramfs" "$T/import.out" &&
	pass "Bookworm's auto_initramfs=1 is disabled, and import says why" || fail "auto_initramfs: $(cat "$C" "$T/import.out")"
[ "$(head -4 "$C" | tr '\n' ' ')" = "arm_64bit=1 auto_initramfs=0 enable_uart=1 initramfs netflash.cpio.gz followkernel " ] &&
	! grep -q '^#' "$C" && ! grep -q '^$' "$C" &&
	pass "the served config begins with ours (64-bit, no auto initramfs, the UART, our initramfs); no comments or blank lines" ||
	fail "config head: $(head -8 "$C")"
grep -qx "\[cm4\]" "$C" && grep -qx "otg_mode=1" "$C" && grep -qx "dtoverlay=vc4-kms-v3d" "$C" &&
	pass "the rest of Pi OS's config (sections, overlays) is kept" || fail "config: $(cat "$C")"
[ ! -e "$R/boot/initramfs8" ] && [ ! -e "$R/boot/initramfs_2712" ] && has "left out initramfs8" "$T/import.out" &&
	pass "Pi OS's initramfs8 and initramfs_2712 are not served" || fail "initramfs files: $(ls "$R/boot")"
[ "$(cat "$R/boot/cmdline.txt")" = "console=serial0,115200 console=tty1 ip=dhcp" ] &&
	pass "cmdline.txt keeps both consoles, drops root, quiet, splash, loglevel, init" || fail "cmdline: $(cat "$R/boot/cmdline.txt")"
has "Pi 3 yes, Pi 4 yes, Pi 5 yes" "$T/import.out" && pass "import reports Pi 3, 4 and 5" || fail "models: $(cat "$T/import.out")"

# A 32-bit set cannot boot the aarch64 flasher: refused, named.
cp -a "$B" "$T/b32" && rm "$T/b32/kernel8.img" "$T/b32/kernel_2712.img"
touch "$T/b32/kernel7.img" "$T/b32/kernel7l.img" "$T/b32/kernel.img"
sed -i '/arm_64bit/d' "$T/b32/config.txt"
rc=0; "$NF" --root "$R" boot-files import --from-boot "$T/b32" --model pi3 >"$T/b32.out" 2>&1 || rc=$?
[ $rc = 1 ] && has "32-bit Raspberry Pi OS boot files (kernel7\*.img, no kernel8.img): the flasher is aarch64" "$T/b32.out" &&
	[ ! -e "$R/boot-pi3" ] && pass "32-bit boot files are refused, nothing imported" || fail "32-bit: rc=$rc $(cat "$T/b32.out")"

# Lines that redirect where the firmware reads: disabled, each named.
cp -a "$B" "$T/redir"
cat >>"$T/redir/config.txt" <<'EOF'
os_prefix=netboot/
kernel=custom.img
cmdline=other.txt
include extra.txt
ramfsfile=foo.cpio
[pi4]
initramfs initrd.img followkernel
arm_64bit=0
EOF
"$NF" --root "$R" boot-files import --from-boot "$T/redir" --model pi4 >"$T/redir.out" 2>&1 || fail "redir import: $(cat "$T/redir.out")"
n=0
for l in "os_prefix=netboot/" "kernel=custom.img" "cmdline=other.txt" "include extra.txt" "ramfsfile=foo.cpio" \
	"initramfs initrd.img followkernel" "arm_64bit=0"; do
	! grep -qxF "$l" "$R/boot-pi4/config.txt" && has -F "'$l' disabled" "$T/redir.out" && n=$((n + 1)) ||
		fail "not disabled: $l"
done
[ $n = 7 ] && [ "$(grep -c '^initramfs ' "$R/boot-pi4/config.txt")" = 1 ] &&
	pass "os_prefix, kernel, cmdline, include, ramfsfile, a [pi4] initramfs and arm_64bit=0 are disabled and named" ||
	fail "redirects: $(cat "$R/boot-pi4/config.txt")"

# config.txt at the network-boot firmware's limit: it reads the first 4096
# bytes and ignores a setting whose line ends past them
# (raspberrypi/firmware#1575). fw_sees CONFIG SETTINGS: 0 when every
# setting line of SETTINGS (in order, [section] filters too) and our four
# are whole lines within the first 4096 bytes of CONFIG, as the firmware
# parses it.
fw_sees() {
	python3 - "$1" "$2" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
seen = [l for l in data[:4096].split(b"\n")[:-1] if l.strip() and not l.lstrip().startswith(b"#")]
want = [b"arm_64bit=1", b"auto_initramfs=0", b"enable_uart=1", b"initramfs netflash.cpio.gz followkernel"]
want += [l.strip() for l in open(sys.argv[2], "rb").read().split(b"\n") if l.strip() and not l.lstrip().startswith(b"#")]
sys.exit(0 if seen == want and len(data) <= 4096 else 1)
PY
}
# settings N: N bytes of setting lines (dtparam=..., [section] filters) in $T/set
settings() {
	python3 - "$1" >"$T/set" <<'PY'
import sys
n, out, i = int(sys.argv[1]), [], 0
while sum(len(l) + 1 for l in out) < n:
    out.append("[pi4]" if i % 10 == 5 else "[all]" if i % 10 == 9 else "dtparam=i2c_arm%03d=on" % i)
    i += 1
text = "\n".join(out) + "\n"
over = len(text) - n
if over:                 # trim the last setting to land on n bytes exactly
    last = out[-1]
    out[-1] = last[:len(last) - over] if len(last) - over >= 12 else last
    text = "\n".join(out) + "\n"
sys.stdout.write(text)
PY
}
# The issue's case: a 4024-byte config.txt, half of it comments: served
# compact, every setting where the firmware reads it.
settings 1900
python3 - "$T/set" "$T/big.txt" <<'PY'
import sys
out = ""
for l in open(sys.argv[1]).read().split("\n"):
    if l:
        out += "# %s: what this does, explained at length as pi-gen does\n%s\n" % (l, l)
out = out[:4023]
out = out[:out.rfind("\n") + 1]
open(sys.argv[2], "w").write(out + "#" * (4024 - len(out) - 1) + "\n")
PY
grep -v '^#' "$T/big.txt" | grep . >"$T/set"
cp -a "$B" "$T/big" && cp "$T/big.txt" "$T/big/config.txt"
"$NF" --root "$R" boot-files import --from-boot "$T/big" --model pi3 >"$T/big.out" 2>&1 &&
	fw_sees "$R/boot-pi3/config.txt" "$T/set" &&
	pass "a $(stat -c %s "$T/big.txt")-byte config.txt is served as $(stat -c %s "$R/boot-pi3/config.txt") bytes: every setting, ours first, within 4096" ||
	fail "big config: $(cat "$T/big.out"); served $(stat -c %s "$R/boot-pi3/config.txt") bytes"
# Settings alone: served exactly 4096 bytes is taken; 4097 is refused
# with the reason, and the set imported before stays.
head=$(printf 'arm_64bit=1\nauto_initramfs=0\nenable_uart=1\ninitramfs netflash.cpio.gz followkernel\n' | wc -c)
for total in 4095 4096 4097; do
	settings $((total - head))
	cp "$T/set" "$T/big/config.txt"
	rc=0; "$NF" --root "$R" boot-files import --from-boot "$T/big" --model pi3 >"$T/lim.out" 2>&1 || rc=$?
	served=$(stat -c %s "$R/boot-pi3/config.txt")
	if [ "$total" -le 4096 ]; then
		[ $rc = 0 ] && [ "$served" = "$total" ] && fw_sees "$R/boot-pi3/config.txt" "$T/set" &&
			pass "settings that serve as $total bytes: imported, the firmware sees every one" ||
			fail "$total: rc=$rc served $served $(tail -2 "$T/lim.out")"
	else
		[ $rc = 1 ] && has "config.txt would be served as 4097 bytes even without comments and blank lines; the Pi's network-boot firmware reads only its first 4096" "$T/lim.out" &&
			[ "$served" = 4096 ] && pass "settings that would serve as 4097 bytes: refused with the reason; the set before stays" ||
			fail "4097: rc=$rc served $served $(cat "$T/lim.out")"
	fi
done

# An enrolled worker's dir: no Pi OS initramfs in it.
"$NF" --root "$R" image add "$(test_image 16).zst" --name pios >/dev/null
"$NF" --root "$R" enroll "$M" --image pios >/dev/null
[ ! -e "$R/tftp/$D/initramfs8" ] && [ -e "$R/tftp/$D/overlays/vc4-kms-v3d.dtbo" ] &&
	pass "a worker's TFTP dir has the overlays and no Pi OS initramfs" || fail "tftp dir: $(ls "$R/tftp/$D")"

# dnsmasq's dhcp-script for an overlay the firmware fetched: recorded, no error.
"$NF" --root "$R" dhcp-event tftp 4096 127.0.0.9 "$R/tftp/$D/overlays/vc4-kms-v3d.dtbo" 2>"$T/ev.err" &&
	[ ! -s "$T/ev.err" ] && "$NF" --root "$R" history "$M" | has "sent 'overlays/vc4-kms-v3d.dtbo'" &&
	pass "an overlay request is recorded in the worker's history, not logged as an error" ||
	fail "overlay event: $(cat "$T/ev.err")"
expect_fail "dhcp-event: a .. path" "not in a worker's dir" "$NF" --root "$R" dhcp-event tftp 1 127.0.0.9 "$R/tftp/$D/../../x" &&
	pass "a path with .. in a worker's dir is still refused"

# The flasher's initramfs: a newc cpio whose /init is a static aarch64 ELF.
pi_initramfs "$T/good.cpio.gz"
"$NF" --root "$R" boot-files import --from-boot "$B" --initramfs "$T/good.cpio.gz" >/dev/null 2>&1 &&
	cmp -s "$T/good.cpio.gz" "$R/boot/netflash.cpio.gz" && pass "a static aarch64 initramfs is taken" ||
	fail "good initramfs refused"
mkdir -p "$T/x86/root" && cp "$(command -v busybox)" "$T/x86/root/init"
(cd "$T/x86/root" && find . | cpio -o -H newc --quiet | gzip) >"$T/x86.cpio.gz"
pi_initramfs "$T/dyn.cpio.gz" -O2
printf 'not a cpio archive at all\n' | gzip >"$T/text.cpio.gz"
mkdir -p "$T/noinit/root/bin" && cp "$(command -v busybox)" "$T/noinit/root/bin/sh"
(cd "$T/noinit/root" && find . | cpio -o -H newc --quiet | xz) >"$T/noinit.cpio.xz"
before=$(sha256sum "$R/boot/netflash.cpio.gz")
for c in "x86.cpio.gz:its /init is a x86-64 ELF; a Raspberry Pi runs the aarch64 flasher" \
	"dyn.cpio.gz:its /init is dynamically linked" "text.cpio.gz:it is not a newc cpio archive" \
	"noinit.cpio.xz:it has no /init"; do
	expect_fail "initramfs ${c%%:*}" "refusing --initramfs '.*${c%%:*}': ${c#*:}" \
		"$NF" --root "$R" boot-files import --from-boot "$B" --initramfs "$T/${c%%:*}" &&
		[ "$(sha256sum "$R/boot/netflash.cpio.gz")" = "$before" ] && pass "initramfs ${c%%:*} refused, the set unchanged"
done

# The Pi's TFTP limit (65535 blocks of 1024 bytes: rpi-eeprom#375): a valid
# initramfs (uncompressed newc, /init the static aarch64 flasher, a pad
# file) of exactly 67107840 bytes is taken; one 512-byte cpio block more is
# refused for its size, first, whatever else it is.
mkdir -p "$T/big-ir" && (cd "$T/big-ir" && gzip -dc "$T/good.cpio.gz" | cpio -id --quiet)
sized_cpio() { # BYTES OUT: a newc cpio of exactly BYTES (a multiple of 512)
	local want=$1 out=$2 pad got
	pad=$((want - 4096))
	for _ in 1 2 3; do
		head -c "$pad" /dev/zero >"$T/big-ir/pad"
		(cd "$T/big-ir" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$out"
		got=$(stat -c %s "$out")
		[ "$got" = "$want" ] && return 0
		pad=$((pad + want - got))
	done
	return 1
}
lim=$((65535 * 1024))
sized_cpio "$lim" "$T/at-limit.cpio" && sized_cpio $((lim + 512)) "$T/over-limit.cpio" || fail "could not size the cpio files"
"$NF" --root "$R" boot-files import --from-boot "$B" --initramfs "$T/at-limit.cpio" >"$T/atlim.out" 2>&1 &&
	pass "an initramfs of exactly 65535 x 1024 bytes is taken" || fail "at the limit: $(tail -2 "$T/atlim.out")"
expect_fail "initramfs over the TFTP limit" \
	"refusing --initramfs '.*over-limit.cpio': it is $((lim + 512)) bytes; the Pi's network boot fetches at most $lim over TFTP" \
	"$NF" --root "$R" boot-files import --from-boot "$B" --initramfs "$T/over-limit.cpio" &&
	pass "an initramfs one cpio block over the Pi's TFTP limit is refused for its size"
"$NF" --root "$R" boot-files import --from-boot "$B" --initramfs "$T/good.cpio.gz" >/dev/null 2>&1

# init re-run keeps what it was given before.
"$NF" --root "$T/r2" init --interface lo --server-ip 127.0.0.1 --subnet 127.0.0.0/8 --port 7071 >/dev/null
"$NF" --root "$T/r2" init >/dev/null 2>&1
grep -qx "server_ip=127.0.0.1" "$T/r2/netflash.conf" && grep -qx "port=7071" "$T/r2/netflash.conf" &&
	grep -qx "subnet=127.0.0.0/8" "$T/r2/netflash.conf" && pass "a plain init re-run keeps the server IP, port and subnet" ||
	fail "re-run: $(cat "$T/r2/netflash.conf")"
"$NF" --root "$T/r3" init --interface lo --server-ip 127.0.0.5 --subnet 127.0.0.0/8 >/dev/null 2>"$T/r3.err"
has "127.0.0.5 is not the address of lo (127.0.0.1): using 127.0.0.5, which workers must reach" "$T/r3.err" &&
	! has "ignoring" "$T/r3.err" && grep -qx "server_ip=127.0.0.5" "$T/r3/netflash.conf" &&
	pass "a server IP that is not the interface's is warned about, and the warning says it is used (it is)" ||
	fail "no warning: $(cat "$T/r3.err")"
finish
