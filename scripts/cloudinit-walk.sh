#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A cloud-init image provisioned by netflash and booted for real (issue 29,
# item 8): an x86_64 Debian 12 root with Debian's cloud-init, laid out as
# Raspberry Pi OS Trixie lays out its image (a FAT "bootfs" partition with
# config.txt, cmdline.txt, user-data, meta-data and network-config, which
# cloud-init's NoCloud datasource reads as Pi OS does; an ext4 "rootfs"
# with the FAT at /boot/firmware). The README's master steps take it:
# image add, enroll with a hostname, a user with a password hash, an SSH
# key and Wi-Fi, a worker (netflash-write against netflashd and
# nfs-ganesha) flashes a card file, and QEMU boots the card twice (its own
# kernel and initrd, TCG). Checked on the serial console: the hostname and
# /etc/hosts, the user with that hash in sudo, authorized_keys,
# `cloud-init status` done without errors, eth0 and wlan0 in the rendered
# netplan; on the second boot nothing per-instance runs again and the
# hostname stays (users-groups' once-per-instance semaphore is not
# touched again). Prints the time of each step. The root is made once with
# mmdebstrap (cached as BUILD/cloudinit-root-2.tar); minutes under TCG, so
# the test command runs it when NETFLASH_CLOUDINIT_WALK=1.
#
# usage: sudo scripts/cloudinit-walk.sh [BUILD_DIR]   (default build)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in -h | --help) awk 'NR > 1 && /^# SPDX/ { next } NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
export NETFLASH_BUILD=$(cd "${1:-$src/build}" && pwd)
for c in mmdebstrap qemu-system-x86_64 mkfs.vfat mcopy mkfs.ext4 sfdisk; do
	command -v "$c" >/dev/null || { echo "cloudinit-walk: needs $c" >&2; exit 1; }
done
source "$src/tests/lib.sh"
t0=$(date +%s.%N)
step() { printf 'cloudinit-walk: %-60s %6.1f s\n' "$1" "$(echo "$(date +%s.%N) - $t0" | bc)" >&2; t0=$(date +%s.%N); }

# ---- the root: Debian 12 with cloud-init, netplan and a kernel ---------------
# The name changes with the package list.
cache=$NETFLASH_BUILD/cloudinit-root-2.tar
if [ ! -s "$cache" ]; then
	mmdebstrap --quiet --format=tar --variant=apt \
		--include=systemd-sysv,udev,linux-image-amd64,cloud-init,netplan.io,sudo,openssh-server,iproute2,kmod,e2fsprogs,locales \
		bookworm "$cache.tmp" http://deb.debian.org/debian >&2
	mv "$cache.tmp" "$cache"
	step "Debian 12 root with cloud-init made (mmdebstrap)"
fi
R=$T/rootfs
mkdir -p "$R"
tar -xf "$cache" -C "$R"
# Pi OS Trixie's layout: the FAT at /boot/firmware, NoCloud from it.
mkdir -p "$R/boot/firmware"
printf 'LABEL=rootfs / ext4 defaults,noatime 0 1\nLABEL=bootfs /boot/firmware vfat defaults 0 2\n' >"$R/etc/fstab"
# A generated default locale, as Pi OS has (en_GB): cloud-init's locale
# module keeps it; with none, Debian's locale-gen ignores the locale
# cloud-init asks for and update-locale fails.
echo 'en_GB.UTF-8 UTF-8' >"$R/etc/locale.gen"
echo 'LANG=en_GB.UTF-8' >"$R/etc/default/locale"
chroot "$R" locale-gen >/dev/null
echo raspberrypi >"$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n' >"$R/etc/hosts"
cat >"$R/etc/cloud/cloud.cfg.d/99_raspberry-pi.cfg" <<'EOF'
# As Raspberry Pi OS: the seed is the boot partition, labelled bootfs.
datasource_list: [NoCloud, None]
datasource:
  NoCloud:
    fs_label: bootfs
system_info:
  network:
    renderers: [netplan]
EOF
# The walk's eyes: after cloud-init's last stage, what the boot left, on
# the serial console, then power off.
cat >"$R/usr/local/sbin/walk-report" <<'EOF'
#!/bin/sh
exec >/dev/ttyS0 2>&1
n=$(cat /var/lib/walk-boots 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" >/var/lib/walk-boots
u=$(getent passwd 1000 | cut -d: -f1)
echo
echo "WALK boot=$n"
echo "WALK hostname=$(hostname) etc_hostname=$(cat /etc/hostname)"
echo "WALK hosts=$(grep -m1 "[[:space:]]$(hostname)\([[:space:]]\|\$\)" /etc/hosts | tr -s ' \t' ' ')"
echo "WALK user=$u shadow=$(getent shadow "$u" | cut -d: -f2)"
echo "WALK sudo=$(sudo -l -U "$u" 2>/dev/null | grep -c 'NOPASSWD: ALL\|(ALL) ALL\|(ALL : ALL) ALL')"
echo "WALK keys=$(cat "$(getent passwd "$u" | cut -d: -f6)/.ssh/authorized_keys" 2>/dev/null | tr '\n' '|')"
echo "WALK status=$(cloud-init status --long 2>&1 | tr '\n' '|')"
echo "WALK netplan=$(cat /etc/netplan/*.yaml 2>/dev/null | tr -d ' ' | tr '\n' '|')"
echo "WALK links=$(ip -br link | awk '{print $1}' | tr '\n' ' ')"
echo "WALK sem=$(stat -c %Y /var/lib/cloud/instance/sem/config_users_groups 2>/dev/null)"
echo "WALK-END"
systemctl poweroff
EOF
chmod 755 "$R/usr/local/sbin/walk-report"
cat >"$R/etc/systemd/system/walk-report.service" <<'EOF'
[Unit]
Description=netflash cloud-init walk report
After=cloud-final.service
Wants=cloud-final.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/walk-report
[Install]
WantedBy=graphical.target
EOF
# graphical.target, not multi-user.target: cloud-final is ordered after
# multi-user.target, and a target is ordered after what it wants.
mkdir -p "$R/etc/systemd/system/graphical.target.wants"
ln -sf /etc/systemd/system/walk-report.service "$R/etc/systemd/system/graphical.target.wants/walk-report.service"
# The kernel and initrd QEMU boots (a Pi's firmware loads them from the FAT).
cp "$(ls "$R"/boot/vmlinuz-* | head -1)" "$T/vmlinuz"
cp "$(ls "$R"/boot/initrd.img-* | head -1)" "$T/initrd"
# The FAT as Pi OS Trixie ships it: firmware config and the cloud-init seed.
F=$T/bootfs
mkdir -p "$F"
printf 'arm_64bit=1\nauto_initramfs=1\n\n[all]\nenable_uart=1\n' >"$F/config.txt"
printf 'console=serial0,115200 console=tty1 root=LABEL=rootfs rootfstype=ext4 fsck.repair=yes rootwait\n' >"$F/cmdline.txt"
printf 'instance-id: rpios-image\n' >"$F/meta-data"
printf '#cloud-config\n' >"$F/user-data"
printf 'network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n      optional: true\n' >"$F/network-config"
# The Pi's boot files (start*.elf ...), from the repo's test image.
bimg=$(test_image 16)
# ---- the image: MBR, FAT bootfs from 4 MiB, ext4 rootfs after it ---------------
boot_mib=256 root_mib=$(( $(du -sm "$R" | cut -f1) * 13 / 10 + 200 ))
disk=$T/ci.img
truncate -s $((4 + boot_mib + root_mib))M "$disk"
printf 'label: dos\nstart=4MiB, size=%dMiB, type=c\nstart=%dMiB, type=83\n' "$boot_mib" $((4 + boot_mib)) | sfdisk -q "$disk"
truncate -s ${boot_mib}M "$T/p1"
mkfs.vfat -F 32 -n bootfs "$T/p1" >/dev/null 2>&1
mcopy -i "$T/p1" "$F"/* ::/
truncate -s ${root_mib}M "$T/p2"
mkfs.ext4 -q -L rootfs -d "$R" "$T/p2"
dd if="$T/p1" of="$disk" bs=1M seek=4 conv=notrunc status=none
dd if="$T/p2" of="$disk" bs=1M seek=$((4 + boot_mib)) conv=notrunc status=none
rm -f "$T/p1" "$T/p2"
zstd -q -T0 -3 "$disk" -o "$disk.zst"
step "image laid out as Pi OS Trixie ($((4 + boot_mib + root_mib)) MiB)"

# ---- the README's master steps --------------------------------------------------
MR=$T/root
MPORT=$("$NETFLASH_BUILD/tests/freeport")
"$NF" --root "$MR" init --interface lo --server-ip 127.0.0.1 --subnet 127.0.0.0/8 --port "$MPORT" >/dev/null
"$NF" --root "$MR" image add "$bimg.zst" --name pios >/dev/null
"$NF" --root "$MR" boot-files import --from-image pios >/dev/null 2>&1
"$NF" --root "$MR" image add "$disk.zst" --name trixie-ci >/dev/null
ganesha_start "$MR/images" "$T"
daemon_start
W=b8:27:eb:00:29:08
ssh-keygen -q -t ed25519 -N '' -C walk@netflash -f "$T/key"
openssl passwd -6 -salt walksalt 'walk-password' >"$T/hash"
printf 'walk-psk-123\n' >"$T/psk"
"$NF" --root "$MR" enroll "$W" --image trixie-ci --hostname rack9-01 --user ops --password-hash-file "$T/hash" \
	--ssh-key "$T/key.pub" --wifi-ssid walknet --wifi-psk-file "$T/psk" --wifi-country GB >"$T/enroll.out" 2>&1 ||
	{ fail "enroll: $(cat "$T/enroll.out")"; finish; }
step "master: init, image add, boot-files import, enroll with provisioning"
card=$T/card
truncate -s $(( $(stat -c %s "$disk") + 64 * 1048576 )) "$card"
report "$W" "$card" --no-probe-capacity >"$T/w.out" 2>&1 && [ ! -d "$MR/tftp/$(echo "$W" | tr : -)" ] &&
	pass "the worker flashes the card and is released" || { fail "flash: $(cat "$T/w.out")"; finish; }
step "card flashed and verified (netflash-write, NFS)"

# ---- two boots ----------------------------------------------------------------
boot() { # N: boots the card until it powers off; the console in $T/bootN.log
	qemu-system-x86_64 -machine pc -m 1024 -smp 2 -nographic -no-reboot \
		-kernel "$T/vmlinuz" -initrd "$T/initrd" \
		-append "root=LABEL=rootfs rootfstype=ext4 console=ttyS0 net.ifnames=0 panic=-1 systemd.mask=systemd-networkd-wait-online.service" \
		-drive "file=$card,format=raw,if=virtio" -nic user,model=virtio-net-pci \
		</dev/null >"$T/boot$1.log" 2>&1 &
	local q=$! i
	register_pid "$q"
	for ((i = 0; i < 900; i++)); do kill -0 "$q" 2>/dev/null || break; sleep 1; done
	kill "$q" 2>/dev/null || true
	wait "$q" || true
	grep -q '^WALK-END' "$T/boot$1.log" || { fail "boot $1 did not report: $(tail -c 2000 "$T/boot$1.log")"; return 1; }
}
# A report line may follow the getty's prompt on the console.
w() { sed -n "s/^.*WALK $2=//p" "$T/boot$1.log" | tr -d '\r' | head -1; }
if boot 1; then
	step "first boot (QEMU TCG, cloud-init)"
	[ "$(w 1 hostname)" = "rack9-01 etc_hostname=rack9-01" ] && w 1 hosts | has "rack9-01" &&
		pass "boot 1: hostname rack9-01 in the kernel, /etc/hostname and /etc/hosts" ||
		fail "hostname: $(w 1 hostname) hosts: $(w 1 hosts)"
	[ "$(w 1 user)" = "ops shadow=$(cat "$T/hash")" ] && [ "$(w 1 sudo)" -ge 1 ] &&
		pass "boot 1: user ops (uid 1000) with the enrolled password hash, in sudo" ||
		fail "user: $(w 1 user) sudo=$(w 1 sudo)"
	[ "$(w 1 keys)" = "$(cat "$T/key.pub")|" ] && pass "boot 1: the SSH key is ops's authorized_keys" ||
		fail "keys: $(w 1 keys)"
	w 1 status | has "^status: done|" && ! w 1 status | has "errors: \[[^]]" &&
		pass "boot 1: cloud-init status done, no errors" || fail "status: $(w 1 status)"
	w 1 netplan | has "ethernets:|eth0:|.*dhcp4:true" && w 1 netplan | has "wifis:|wlan0:|.*walknet" &&
		w 1 links | has "eth0" &&
		pass "boot 1: the rendered netplan keeps eth0 (DHCP) and adds wlan0 for walknet" ||
		fail "network: $(w 1 netplan) links: $(w 1 links)"
fi
if boot 2; then
	step "second boot"
	[ "$(w 2 boot)" = 2 ] && [ "$(w 2 hostname)" = "rack9-01 etc_hostname=rack9-01" ] &&
		[ "$(w 2 user)" = "$(w 1 user)" ] && [ -n "$(w 1 sem)" ] && [ "$(w 2 sem)" = "$(w 1 sem)" ] && w 2 status | has "^status: done|" &&
		pass "boot 2: the same hostname and user, cloud-init's per-instance modules did not run again" ||
		fail "boot 2: $(grep '^WALK' "$T/boot2.log" | tr '\n' ' ')"
fi
finish
