#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The netflash CLI on its own: hostile MACs and names, symlinks planted in
# the TFTP root, corrupt images refused by image add, manifest digests,
# boot-files import from a dir and from an image, concurrent enrolls.
source "$(dirname "$0")/../lib.sh"

NF="$NETFLASH_BUILD/master-tools/netflash"
img=$(test_image 24)
R=$T/root
nf() { "$NF" --root "$R" "$@"; }
# expect_rc RC NAME REGEX CMD...: exit status RC, REGEX in stderr, one error line
expect_rc() {
	local want=$1 name=$2 re=$3 rc=0; shift 3
	"$@" >"$T/out.log" 2>"$T/err.log" || rc=$?
	if [ $rc -ne "$want" ]; then fail "$name: exit $rc, expected $want: $(cat "$T/err.log")"; return 1; fi
	if ! grep -Eq "$re" "$T/err.log"; then fail "$name: /$re/ not in: $(cat "$T/err.log")"; return 1; fi
	[ "$(grep -c 'error:' "$T/err.log")" -eq 1 ] || { fail "$name: not one error line: $(cat "$T/err.log")"; return 1; }
	pass "$name"
}

expect_rc 1 "commands before init name init" "is not a netflash root; run 'netflash init' first" nf ls
nf init --interface lo --subnet 192.168.50.0/24 --server-ip 192.168.50.2 >/dev/null
expect_rc 2 "bad --subnet" "invalid --subnet '10.0.0.0/33'" nf init --subnet 10.0.0.0/33
# An interface that is not here is refused, naming the ones that are; with
# none given, the one holding --server-ip is used and said.
rc=0; "$NF" --root "$T/r-if" init --interface eth9 --subnet 127.0.0.0/8 --server-ip 127.0.0.1 2>"$T/if.err" >/dev/null || rc=$?
[ $rc = 2 ] && has "no network interface 'eth9' on this machine (interfaces here: lo" "$T/if.err" && [ ! -e "$T/r-if/netflash.conf" ] &&
	pass "init --interface eth9 (not here) is refused, naming the interfaces here" || fail "eth9: rc=$rc $(cat "$T/if.err")"
"$NF" --root "$T/r-if" init --subnet 127.0.0.0/8 --server-ip 127.0.0.1 >"$T/if.out" 2>&1 &&
	has "using interface lo: it holds --server-ip" "$T/if.out" && grep -qx "interface=lo" "$T/r-if/netflash.conf" &&
	pass "init without --interface takes the one holding --server-ip and says so" || fail "pick: $(cat "$T/if.out")"

# Catalog: digests match sha256sum of the decoded image; damage is refused.
nf image add "$img.gz" --name pios-gz >/dev/null
nf image add "$img.zst" >/dev/null
want=$(sha256sum "$img" | cut -d' ' -f1)
for n in pios-gz pios-24M; do
	grep -q "^sha256=$want$" "$R/images/$n.manifest" && grep -q "^image_size=$(stat -c %s "$img")$" "$R/images/$n.manifest" &&
		pass "manifest of $n: digest and size match the decoded image" || fail "manifest $n: $(cat "$R/images/$n.manifest")"
done
nf image check pios-gz >/dev/null && pass "image check on an intact image" || fail "image check"
head -c $(( $(stat -c %s "$img.gz") - 3000 )) "$img.gz" >"$T/trunc.img.gz"
cp "$img.gz" "$T/corrupt.img.gz"
printf '\377\377\377\377\377\377\377\377' | dd of="$T/corrupt.img.gz" bs=1 seek=200000 conv=notrunc status=none
head -c 5000 /dev/urandom | bzip2 >"$T/x.img.bz2"  # image add converts bzip2, then finds no disk
expect_rc 1 "truncated image refused with the offset" "refusing '.*trunc.img.gz': gzip: stream ends early \(truncated\) at compressed offset [0-9]+" nf image add "$T/trunc.img.gz"
expect_rc 1 "corrupt image refused with the offset" "refusing '.*corrupt.img.gz': gzip: corrupt data at compressed offset [0-9]+" nf image add "$T/corrupt.img.gz"
expect_rc 1 "bzip2 of random bytes refused: no disk image inside" "it is not a disk image: no partition table" nf image add "$T/x.img.bz2"
[ -z "$(ls "$R/images" | grep -v -e '^pios-gz' -e '^pios-24M')" ] && pass "refused images leave nothing in the catalog" ||
	fail "catalog holds: $(ls -a "$R/images")"
expect_rc 1 "duplicate image name" "already in the catalog \(use --force" nf image add "$img.gz" --name pios-gz
expect_rc 2 "hostile image name" "invalid image name '\.\./x'" nf image add "$img.gz" --name ../x
# rpi-imager os_list entries cross-check the image.
size=$(stat -c %s "$img") dl=$(stat -c %s "$img.xz")
printf '{"name":"Pi OS","extract_size":%s,"extract_sha256":"%s","image_download_size":%s}' "$size" "$want" "$dl" >"$T/good.json"
printf '{"name":"Pi OS","extract_size":%s,"extract_sha256":"%s"}' "$size" "$(printf '%064d' 0)" >"$T/badsha.json"
printf '{"extract_size":%s}' "$((size + 512))" >"$T/badsize.json"
printf '{"extract_size": 1,' >"$T/broken.json"
nf image add "$img.xz" --name pios-xz --os-list-entry "$T/good.json" >/dev/null && pass "os_list entry that matches is accepted" ||
	fail "good os_list entry refused"
expect_rc 1 "os_list digest mismatch refused" "SHA-256 differs from os_list's extract_sha256" nf image add "$img.xz" --name x1 --os-list-entry "$T/badsha.json"
expect_rc 1 "os_list size mismatch refused" "decodes to $size bytes, but os_list says extract_size $((size + 512))" nf image add "$img.xz" --name x2 --os-list-entry "$T/badsize.json"
expect_rc 1 "broken os_list JSON refused" "is not a JSON object" nf image add "$img.xz" --name x3 --os-list-entry "$T/broken.json"
# A whole os_list file, as rpi-imager users have it: the entry whose url
# ends in the file's name (in subitems too), or the one named.
base=$(basename "$img.xz")
printf '{"imager":{},"os_list":[{"name":"Other","url":"https://x/other.img.xz","extract_size":1},{"name":"Raspberry Pi OS (other)","subitems":[{"name":"Pi OS Lite","url":"https://downloads.example/images/%s","extract_size":%s,"extract_sha256":"%s"}]}]}' \
	"$base" "$size" "$want" >"$T/os_list.json"
nf image add "$img.xz" --name from-list --os-list-entry "$T/os_list.json" >/dev/null &&
	nf image add "$img.xz" --name from-list2 --os-list-entry "$T/os_list.json" --os-list-name "Pi OS Lite" >/dev/null &&
	pass "a whole os_list file: the entry is found by url (in subitems) or by name" || fail "whole os_list refused"
expect_rc 1 "an os_list without the image's entry" "has no entry named 'Other Pi'" \
	nf image add "$img.xz" --name x4 --os-list-entry "$T/os_list.json" --os-list-name "Other Pi"
expect_rc 1 "an os_list entry that does not match" "decodes to $size bytes, but os_list says extract_size 1" \
	nf image add "$img.xz" --name x5 --os-list-entry "$T/os_list.json" --os-list-name Other
nf image rm from-list >/dev/null && nf image rm from-list2 >/dev/null
[ ! -e "$R/images/x1.manifest" ] && [ -z "$(ls -A "$R/images" | grep '^\.')" ] && pass "refused os_list adds leave nothing behind" ||
	fail "leftovers: $(ls -A "$R/images")"
nf image rm pios-xz >/dev/null

# A manifest changed behind our back is noticed.
sed -i 's/^image_size=.*/image_size=1/' "$R/images/pios-24M.manifest"
expect_rc 1 "image check notices a changed manifest" "does not match its manifest" nf image check pios-24M

# Boot files: from a dir missing firmware (named), then from the image.
mkdir -p "$T/boot"
echo "console=serial0,115200 root=PARTUUID=1-02 rootwait quiet" >"$T/boot/cmdline.txt"
expect_rc 1 "boot files without firmware are named" "these boot files boot no Raspberry Pi: missing bootcode.bin, start.elf, fixup.dat, kernel8.img, bcm2710-rpi-3-b\\*.dtb \\(Pi 3\\), start4.elf" \
	nf boot-files import --from-boot "$T/boot"
touch "$T/boot/start4.elf" "$T/boot/fixup4.dat" "$T/boot/kernel8.img" "$T/boot/bcm2711-rpi-4-b.dtb"
mkdir -p "$T/boot/overlays" && touch "$T/boot/overlays/vc4-kms-v3d.dtbo"
nf boot-files import --from-boot "$T/boot" >"$T/out.log" 2>&1 && grep -q 'Pi 4 yes' "$T/out.log" &&
	[ -f "$R/boot/overlays/vc4-kms-v3d.dtbo" ] && pass "import from a Pi 4 /boot, overlays included" || fail "import from dir: $(cat "$T/out.log")"
[ "$(cat "$R/boot/cmdline.txt")" = "console=serial0,115200 ip=dhcp" ] && pass "cmdline template drops root=, rootwait, quiet" ||
	fail "cmdline template: $(cat "$R/boot/cmdline.txt")"
nf boot-files import --from-image pios-gz >"$T/out.log" 2>&1 && grep -q 'Pi 3 yes' "$T/out.log" &&
	MTOOLS_SKIP_CHECK=1 mcopy -n -i "$img@@4M" ::/bootcode.bin "$T/bootcode.ref" && cmp -s "$T/bootcode.ref" "$R/boot/bootcode.bin" &&
	pass "import from the image's FAT partition (no mount)" || fail "import from image: $(cat "$T/out.log")"
has "boot files for: Pi 3 yes, Pi 4 no (missing start4.elf, fixup4.dat, bcm2711-rpi-4-b.dtb), Pi 5 no (missing kernel_2712.img, bcm2712-rpi-5-b.dtb)" "$T/out.log" &&
	pass "boot-files import names exactly what each model lacks" || fail "models: $(cat "$T/out.log")"
expect_rc 1 "boot-files import from a directory that is not there: one line with the reason" \
	"cannot import boot files from '/nonexistent-$$': No such file or directory" \
	nf boot-files import --from-boot "/nonexistent-$$"
! grep -q "cp:" "$T/err.log" || fail "cp's own error leaked: $(cat "$T/err.log")"
expect_rc 1 "history of a MAC this master never saw says so" \
	"no history for b8-27-eb-99-99-99: this master never enrolled it or saw it netboot" \
	nf history b8:27:eb:99:99:99
# A model named at enroll must be one its boot files can boot.
expect_rc 1 "enroll --model pi5 with boot files that cannot boot a Pi 5 is refused, naming what is missing" \
	"cannot boot a pi5: missing kernel_2712.img, bcm2712-rpi-5-b.dtb; import a set that has them: netflash boot-files import --from-image NAME --model pi5" \
	nf enroll b8:27:eb:0e:0e:05 --image pios-gz --model pi5
[ ! -e "$R/tftp/b8-27-eb-0e-0e-05" ] || fail "a refused --model pi5 enrolled it"
grep -q '^initramfs netflash.cpio.gz followkernel$' "$R/boot/config.txt" && grep -q '^arm_64bit=1$' "$R/boot/config.txt" &&
	pass "config.txt keeps the original and adds our initramfs" || fail "config.txt: $(cat "$R/boot/config.txt")"

# Hostile MACs: one line, exit 2, nothing created.
for mac in ../x "b8:27:eb:d3:85:78:00" "zz:27:eb:d3:85:78" "b8:27:eb:d3:85" "$(printf 'b8:27:eb:d3:85:78\n')x" "" "b8-27-eb-d3-85-78/../../etc"; do
	expect_rc 2 "hostile MAC $(printf %q "$mac")" "invalid MAC" nf enroll "$mac" --image pios-gz
done
[ -z "$(ls -A "$R/tftp")" ] && pass "hostile MACs created nothing" || fail "tftp holds: $(ls -A "$R/tftp")"
expect_rc 2 "hostile hostname" "invalid --hostname" nf enroll b8:27:eb:00:00:01 --image pios-gz --hostname 'a;rm -rf /'
nf enroll B8:27:EB:0A:0B:0C --image pios-gz >/dev/null
[ -d "$R/tftp/b8-27-eb-0a-0b-0c" ] && pass "upper-case MAC canonicalised to b8-27-eb-0a-0b-0c" || fail "canonical dir missing"
[ -z "$(find "$R/tftp" -type l)" ] && pass "no symlinks in a worker's dir" || fail "symlinks: $(find "$R/tftp" -type l)"
expect_rc 1 "re-enroll says so" "already enrolled \(image 'pios-gz'\); use --force" nf enroll b827.eb0a.0b0c --image pios-gz
tok_a=$(grep -o 'netflash.token=[0-9a-f]*' "$R/tftp/b8-27-eb-0a-0b-0c/cmdline.txt")
nf enroll b8:27:eb:0a:0b:0c --image pios-24M --force >/dev/null
tok_b=$(grep -o 'netflash.token=[0-9a-f]*' "$R/tftp/b8-27-eb-0a-0b-0c/cmdline.txt")
[ "$tok_a" != "$tok_b" ] && pass "--force replaces the enrollment with a new token" || fail "token unchanged"
expect_rc 1 "image in use" "used by 1 enrolled worker\(s\): b8:27:eb:0a:0b:0c; release or re-enroll them" nf image rm pios-24M
nf image add "$img.zst" --name doomed >/dev/null
nf enroll b8:27:eb:0d:0d:0d --image doomed >/dev/null
nf image rm doomed --force >/dev/null 2>"$T/rm.err"
nf status --json | has '"mac":"b8-27-eb-0d-0d-0d".*"state":"failed".*removed from the catalog' &&
	has "1 worker(s) enrolled with 'doomed' are now failed" "$T/rm.err" &&
	pass "image rm --force fails its workers with the reason instead of leaving them running" ||
	fail "rm --force: $(cat "$T/rm.err"; nf status --json | grep 0d-0d-0d)"

# Symlinks planted in the TFTP root are never followed by release.
mkdir -p "$T/precious" && echo keep >"$T/precious/file" && echo b8-27-eb-00-00-66 >"$T/precious/.netflash-mac"
ln -s "$T/precious" "$R/tftp/b8-27-eb-00-00-66"
expect_rc 1 "release refuses a planted symlink" "is a symlink, not a directory netflash made; not following it" nf release b8:27:eb:00:00:66
[ -f "$T/precious/file" ] && [ -L "$R/tftp/b8-27-eb-00-00-66" ] && pass "the symlink's target is untouched" || fail "precious data touched"
mkdir "$R/tftp/b8-27-eb-00-00-77" && echo x >"$R/tftp/b8-27-eb-00-00-77/start.elf"
expect_rc 1 "release refuses a dir we did not make" "was not made by netflash" nf release b8:27:eb:00:00:77
# A symlink inside our own dir is removed as a link, its target kept.
ln -s "$T/precious" "$R/tftp/b8-27-eb-0a-0b-0c/evil"
nf release b8:27:eb:0a:0b:0c >/dev/null && [ ! -e "$R/tftp/b8-27-eb-0a-0b-0c" ] && [ -f "$T/precious/file" ] &&
	pass "release removes a link inside our dir without following it" || fail "release with inner symlink"
nf release b8:27:eb:0a:0b:0c >"$T/out.log" && grep -q "already released" "$T/out.log" && pass "release is safe to re-run" ||
	fail "second release"
expect_rc 1 "release of a MAC never enrolled says so" "b8-27-eb-0f-0f-0f is not enrolled" nf release b8:27:eb:0f:0f:0f
# Under systemd (JOURNAL_STREAM names stderr's device:inode) lines carry
# syslog priorities, so journalctl -p err finds the errors; elsewhere not.
: >"$T/journal.err"
JOURNAL_STREAM=$(stat -c '%d:%i' "$T/journal.err") "$NF" --root "$R" release b8:27:eb:0f:0f:0f 2>>"$T/journal.err" || true
nf release b8:27:eb:0f:0f:0f 2>"$T/plain.err" || true
grep -q '^<3>netflash: error: b8-27-eb-0f-0f-0f is not enrolled' "$T/journal.err" && grep -q '^netflash: error:' "$T/plain.err" &&
	pass "log lines carry <3> priorities on the journal's stream only" || fail "priorities: $(cat "$T/journal.err" "$T/plain.err")"
for bad in ff:ff:ff:ff:ff:ff 00:00:00:00:00:00 01:00:5e:00:00:01 03:00:00:00:00:01; do
	expect_rc 2 "enroll refuses $bad" "(all-zero|broadcast|multicast)" nf enroll "$bad" --image pios-gz
done
# Options that lead to a secret are never abbreviated, and their values never shown.
rc=0; nf enroll b8:27:eb:0a:0b:0d --image pios-gz --hostname x --password 'S3cret!' 2>"$T/err.log" || rc=$?
[ $rc = 2 ] && has "'--password' is not an option here: options that lead to a secret are never abbreviated" "$T/err.log" &&
	! grep -q 'S3cret' "$T/err.log" && pass "--password S3cret! is refused without echoing it" || fail "secret: $(cat "$T/err.log")"
rc=0; nf enroll b8:27:eb:0a:0b:0d --image pios-gz --user pi --password-hash-file 'S3cret!' 2>"$T/err.log" || rc=$?
[ $rc = 2 ] && ! grep -q 'S3cret' "$T/err.log" && has "its name is not shown" "$T/err.log" &&
	pass "a secret given as the --password-hash-file name is not echoed" || fail "secret file: $(cat "$T/err.log")"

# Concurrent enrolls do not corrupt the state.
pids=()
for i in $(seq 10 29); do nf enroll "b8:27:eb:00:01:$i" --image pios-gz >/dev/null 2>"$T/c$i.err" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent enroll failed: $(cat "$T"/c*.err)"; done
[ "$(nf ls | grep -c ' enrolled ')" -eq 20 ] && [ "$(ls "$R/tftp" | grep -c '^b8-27-eb-00-01-')" -eq 20 ] &&
	pass "20 concurrent enrolls: 20 dirs, 20 records" || fail "concurrent: $(nf ls | grep -c enrolled) records"
[ -z "$(ls -A "$R/tftp" | grep '^\.')" ] && pass "no temporary dirs left in the TFTP root" || fail "leftovers: $(ls -A "$R/tftp")"
# init points dhcp-event (run as root by dnsmasq) and the units only at a
# netflash that root alone can replace.
mkdir -m 0777 "$T/open" && cp "$NF" "$T/open/netflash"
"$T/open/netflash" --root "$T/r2" init --interface lo --server-ip 127.0.0.1 --subnet 127.0.0.0/8 >/dev/null 2>"$T/init.err"
grep -q "exec '/usr/local/bin/netflash' --root" "$T/r2/etc/dhcp-event" && has "directory others can write" "$T/init.err" &&
	grep -q "^ExecStart=/usr/local/bin/netflashd " "$T/r2/etc/netflashd.service" &&
	pass "init from a world-writable dir points dhcp-event and the unit at the installed binaries" ||
	fail "dhcp-event: $(cat "$T/r2/etc/dhcp-event" "$T/init.err")"
# (The build dir's own verdict depends on the machine's parent dirs.)
"$NF" --root "$T/r3" init --interface lo --server-ip 127.0.0.1 --subnet 127.0.0.0/8 >/dev/null 2>"$T/init3.err"
if has "directory others can write" "$T/init3.err"; then
	grep -q "exec '/usr/local/bin/netflash' --root" "$T/r3/etc/dhcp-event" && pass "(build dir not root-only: installed path)" ||
		fail "dhcp-event: $(cat "$T/r3/etc/dhcp-event")"
else
	grep -q "exec '$(dirname "$(realpath "$NF")")/netflash' --root" "$T/r3/etc/dhcp-event" &&
		pass "init from a root-only dir points dhcp-event at itself" || fail "dhcp-event: $(cat "$T/r3/etc/dhcp-event")"
fi
grep -q '^LimitNOFILE=65536$' "$R/etc/netflashd.service" && grep -q '^ProtectSystem=strict$' "$R/etc/netflashd.service" &&
	grep -q '^NoNewPrivileges=yes$' "$R/etc/netflash-dnsmasq.service" &&
	pass "the units raise netflashd's fd limit and are sandboxed" || fail "units: $(cat "$R/etc/netflashd.service")"
if command -v systemd-analyze >/dev/null; then
	systemd-analyze verify "$R/etc/netflashd.service" "$R/etc/netflash-dnsmasq.service" 2>"$T/verify.err" &&
		pass "systemd-analyze verify accepts both units" || fail "units: $(cat "$T/verify.err")"
fi
# Global options after the command, NETFLASH_ROOT, one-line usage errors,
# --help everywhere.
"$NF" init --root "$T/r4" --interface lo --server-ip 127.0.0.1 --subnet 127.0.0.0/8 >/dev/null 2>&1 &&
	[ -f "$T/r4/netflash.conf" ] && NETFLASH_ROOT="$T/r4" "$NF" ls | has "no workers" &&
	pass "--root after the command, and NETFLASH_ROOT, name the root" || fail "--root after the command"
rc=0; "$NF" --root "$T/r4" init --bogus >/dev/null 2>"$T/usage.err" || rc=$?
[ $rc = 2 ] && [ "$(wc -l <"$T/usage.err")" = 1 ] &&
	has "^netflash: error: unknown option '--bogus'; see 'netflash init --help'$" "$T/usage.err" &&
	pass "a usage error is one line, naming the option, and a pointer to --help" || fail "usage error: rc=$rc $(cat "$T/usage.err")"
n=0
for c in "mass-flash --imagee x|unknown option '--imagee': did you mean --image? (see 'netflash mass-flash --help')" \
	"enroll b8:27:eb:00:00:01 --hostnme x|unknown option '--hostnme': did you mean --hostname?" \
	"status --jsn|unknown option '--jsn': did you mean --json?" "image add x --name|option '--name' needs a value" \
	"history --json=1|option '--json' takes no value"; do
	rc=0; "$NF" --root "$T/r4" ${c%%|*} >/dev/null 2>"$T/usage.err" || rc=$?
	[ $rc = 2 ] && [ "$(wc -l <"$T/usage.err")" = 1 ] && has -F "${c#*|}" "$T/usage.err" && n=$((n + 1)) ||
		fail "'${c%%|*}': rc=$rc $(cat "$T/usage.err")"
done
[ $n = 5 ] && pass "a mistyped option gets one line with what is close to it; a missing or extra value is named"
"$NF" power ls --help | has "power cycle" && pass "power ls --help prints the help" || fail "power ls --help"
for s in boot-files/build-initramfs.sh images/build-test-image.sh scripts/package-agent.sh scripts/package-master.sh; do
	"$NETFLASH_SRC/$s" --help >"$T/help.out" && [ -s "$T/help.out" ] && ! has "set -euo" "$T/help.out" ||
		fail "$s --help prints code (or nothing)"
done
pass "the scripts' --help prints their comment block, no code"
# Without root: every changing command says why, status says permission denied.
rc=0; setpriv --reuid=nobody --regid=nogroup --clear-groups "$NF" --root "$R" enroll b8:27:eb:0e:0e:0e --image pios-gz \
	>/dev/null 2>"$T/nobody.err" || rc=$?
[ $rc = 1 ] && has "Permission denied\|permission denied" "$T/nobody.err" &&
	pass "enroll as a user who cannot write ROOT says why" || fail "enroll as nobody: rc=$rc $(cat "$T/nobody.err")"
rc=0; setpriv --reuid=nobody --regid=nogroup --clear-groups "$NF" --root "$R" status >/dev/null 2>"$T/nobody.err" || rc=$?
[ $rc = 1 ] && has -i "permission denied" "$T/nobody.err" && ! has "Input/output" "$T/nobody.err" &&
	pass "status as such a user says permission denied" || fail "status as nobody: rc=$rc $(cat "$T/nobody.err")"
n=0
for c in "init|cannot write $R/netflash.conf: Permission denied (the state tree is root's: run netflash as root)" \
	"ls|cannot open the state database $R/state/netflash.db: Permission denied (the state tree is root's" \
	"history|cannot open the state database $R/state/netflash.db: Permission denied (the state tree is root's" \
	"image add $img.zst --name nobodys|into the catalog as $R/images/" ; do
	rc=0; setpriv --reuid=nobody --regid=nogroup --clear-groups "$NF" --root "$R" ${c%%|*} >/dev/null 2>"$T/nobody.err" || rc=$?
	[ $rc != 0 ] && [ "$(grep -c "error:" "$T/nobody.err")" = 1 ] && has -F "${c#*|}" "$T/nobody.err" &&
		has "run netflash as root" "$T/nobody.err" && n=$((n + 1)) || fail "'${c%%|*}' as nobody: rc=$rc $(cat "$T/nobody.err")"
done
[ $n = 4 ] && pass "init, ls, history and image add as a user who cannot read or write ROOT: one line, the file, run as root"
# A command waiting for the state lock says so after a second.
flock "$R/state/lock" sleep 2.5 &
lpid=$!
register_pid "$lpid"
wait_until 5 sh -c "! flock -n '$R/state/lock' true" || fail "the lock holder did not start"
nf enroll b8:27:eb:0e:0e:0f --image pios-gz >/dev/null 2>"$T/wait.err"
wait "$lpid" || true
has "waiting for the state lock .*, held by" "$T/wait.err" && pass "a command waiting for the lock says so, and then goes on" ||
	fail "lock wait: $(cat "$T/wait.err")"
# ---- enroll --from-csv: all or nothing, problems named by line ----------
cat >"$T/fleet.csv" <<'EOT'
mac,hostname,image,model
# rack 3
b8:27:eb:03:00:01,rack3-01,pios-gz,pi3
"B8-27-EB-03-00-02",rack3-02,pios-gz,

b8:27:eb:03:00:03,,pios-gz
EOT
nf enroll --from-csv "$T/fleet.csv" >"$T/out.log" 2>"$T/err.log" && has "enrolled 3 worker(s)" "$T/out.log" &&
	nf ls | has "b8:27:eb:03:00:02  rack3-02" && [ -d "$R/tftp/b8-27-eb-03-00-03" ] &&
	pass "enroll --from-csv: a header, comments, quotes, spellings, an empty hostname" ||
	fail "from-csv: $(cat "$T/out.log" "$T/err.log")"
cat >"$T/bad.csv" <<'EOT'
b8:27:eb:03:00:11,rack3-11,pios-gz
b8:27:eb:03:00:1g,rack3-12,pios-gz
b8:27:eb:03:00:13,rack_3,pios-gz
b8:27:eb:03:00:14,rack3-11,pios-gz
b8:27:eb:03:00:15,rack3-15,nosuch
b8:27:eb:03:00:01,rack3-16,pios-gz
b8:27:eb:03:00:17,"rack3-17,pios-gz
01:00:5e:00:00:01,rack3-18,pios-gz
b8:27:eb:03:00:19,rack3-19,pios-gz,pi9
EOT
rc=0
nf enroll --from-csv "$T/bad.csv" >"$T/out.log" 2>"$T/err.log" || rc=$?
[ "$rc" = 2 ] && has "bad.csv:2: invalid MAC 'b8:27:eb:03:00:1g'" "$T/err.log" &&
	has "bad.csv:3: invalid hostname 'rack_3'" "$T/err.log" && has "bad.csv:4: hostname rack3-11 is on line 1 too" "$T/err.log" &&
	has "bad.csv:5: no image 'nosuch'" "$T/err.log" &&
	has "bad.csv:6: b8-27-eb-03-00-01 is already enrolled (image 'pios-gz'); use --force" "$T/err.log" &&
	has "bad.csv:7: not CSV" "$T/err.log" && has "bad.csv:8: .* is not a Pi's MAC" "$T/err.log" &&
	has "bad.csv:9: invalid model 'pi9'" "$T/err.log" && has "bad.csv: 8 problem(s); nothing was enrolled" "$T/err.log" &&
	[ ! -e "$R/tftp/b8-27-eb-03-00-11" ] && ! nf ls | has "03:00:11" &&
	pass "enroll --from-csv: every bad line named with its number, nothing enrolled" ||
	fail "bad csv: rc $rc $(cat "$T/err.log")"
# A failure while enrolling (a TFTP dir netflash did not make) undoes the
# lines enrolled before it.
mkdir -p "$R/tftp/b8-27-eb-03-00-23"
printf 'b8:27:eb:03:00:21,rack3-21,pios-gz\nb8:27:eb:03:00:22,,pios-gz\nb8:27:eb:03:00:23,,pios-gz\n' >"$T/late.csv"
rc=0
nf enroll --from-csv "$T/late.csv" >"$T/out.log" 2>"$T/err.log" || rc=$?
[ "$rc" != 0 ] && has "late.csv:3: b8-27-eb-03-00-23 could not be enrolled (above); releasing the workers this file enrolled before it" "$T/err.log" &&
	[ ! -e "$R/tftp/b8-27-eb-03-00-21" ] && [ ! -e "$R/tftp/b8-27-eb-03-00-22" ] &&
	! nf ls | grep "03:00:2[12]" | has enrolled &&
	pass "enroll --from-csv: a line that fails while enrolling releases those before it" ||
	fail "late failure: rc $rc $(cat "$T/err.log"; ls "$R/tftp")"
rmdir "$R/tftp/b8-27-eb-03-00-23"
# Excel's "CSV UTF-8" (a byte order mark), a comment before the header.
printf '\357\273\277# rack 3b\r\n#%s\r\nmac,hostname,image\r\nb8:27:eb:03:00:31,Rack3-31,pios-gz\r\n' \
	"$(head -c 3000 /dev/zero | tr '\0' x)" >"$T/bom.csv"
nf enroll --from-csv "$T/bom.csv" >"$T/out.log" 2>"$T/err.log" && [ -d "$R/tftp/b8-27-eb-03-00-31" ] &&
	pass "enroll --from-csv: a byte order mark, CRLF, comments (one of 3000 bytes) before the header" ||
	fail "bom csv: $(cat "$T/err.log")"
# With --force, a failure later in the file leaves a replaced enrollment
# replaced, and releases only what the file added.
mkdir -p "$R/tftp/b8-27-eb-03-00-33"
printf 'b8:27:eb:03:00:31,rack3-31b,pios-gz\nb8:27:eb:03:00:32,,pios-gz\nb8:27:eb:03:00:33,,pios-gz\n' >"$T/force.csv"
rc=0
nf enroll --force --from-csv "$T/force.csv" >"$T/out.log" 2>"$T/err.log" || rc=$?
[ "$rc" = 1 ] && [ -d "$R/tftp/b8-27-eb-03-00-31" ] && [ ! -e "$R/tftp/b8-27-eb-03-00-32" ] &&
	nf ls | grep "b8:27:eb:03:00:31" | has enrolled &&
	pass "enroll --force --from-csv: a late failure keeps the replaced worker enrolled" ||
	fail "force rollback: rc $rc $(cat "$T/err.log"; nf ls | grep 03-00-3)"
rmdir "$R/tftp/b8-27-eb-03-00-33"
# What recovery repairs reaches the user (mastercore says it through the
# CLI's tell callback, never by itself).
mkdir -p "$R/tftp/.new-leftover"
nf recover >"$T/out.log" 2>"$T/err.log" &&
	has "warning: recovered: removed tftp/.new-leftover, left by an interrupted change" "$T/err.log" &&
	[ ! -e "$R/tftp/.new-leftover" ] && pass "recover removes a stray TFTP dir and says so" ||
	fail "recover: $(cat "$T/out.log" "$T/err.log")"
# A hand-edited netflash.conf: blanks and CRLF are fine; a bad value is
# named with its key.
cp "$R/netflash.conf" "$T/conf.bak"
printf 'hook_timeout = 5 \r\n' >>"$R/netflash.conf"
nf ls >/dev/null 2>"$T/err.log" && pass "netflash.conf: blanks around '=' and CRLF are taken" ||
	fail "conf blanks: $(cat "$T/err.log")"
echo "hook_timeout=0" >>"$R/netflash.conf"
expect_rc 1 "a bad netflash.conf value is named with its key and range" \
	"netflash.conf: hook_timeout=0: expected seconds, 1 to 3600" nf ls
cp "$T/conf.bak" "$R/netflash.conf"
finish
