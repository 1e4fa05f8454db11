#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End to end, multicast: two QEMU x86_64 workers (microvm, Debian's cloud
# kernel, our initramfs with flasher-init as PID 1 and udpcast's
# udp-receiver) on a bridge with the master's namespace: dnsmasq gives them
# addresses, netflashd gathers them into one session and runs udp-sender,
# both stream the image onto their virtio disks, verify, are released and
# power off. Skipped (exit 77) when no kernel can be had.
source "$(dirname "$0")/../lib.sh"
source "$NETFLASH_SRC/tests/fixtures/kernel.sh"

if [ -n "${NETFLASH_SANITIZE_BUILD:-}" ]; then
	echo "SKIP: the initramfs needs the static flasher-init, which sanitizer builds do not make"
	exit 77
fi
command -v udp-sender >/dev/null || { echo "SKIP: no udpcast"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 missing"; exit 77; }
kernel_fetch_cloud_amd64 || { echo "SKIP: no Debian cloud kernel could be downloaded"; exit 77; }

MODULES="virtio_ring virtio virtio_mmio virtio_blk failover net_failover virtio_net"
"$NETFLASH_SRC/boot-files/build-initramfs.sh" --init "$NETFLASH_BUILD/flasher-init/flasher-init" \
	--modules-dir "$KERNEL_MODDIR" --modules "$MODULES" --program "$(command -v udp-receiver)" \
	-o "$T/netflash.cpio.gz" 2>"$T/initramfs.log"
echo "initramfs: $(cat "$T/initramfs.log")"

NF="$NETFLASH_BUILD/master-tools/netflash"
NFD="$NETFLASH_BUILD/master-tools/netflashd"
img=$(test_image 24)
R=$T/root
MIP=10.84.0.2
netns_lan
netns_host master 02:00:00:00:05:02 $MIP
nsx master ip route add 224.0.0.0/4 dev eth0
BR=$(_ns br)
for i in 1 2; do
	ip -n "$BR" tuntap add "tap$i" mode tap
	ip -n "$BR" link set "tap$i" master br0
	ip -n "$BR" link set "tap$i" up
done

nsx master "$NF" --root "$R" init --interface eth0 --subnet 10.84.0.0/24 --server-ip $MIP --port 7070 >/dev/null
"$NF" --root "$R" image add "$img.zst" --name pios >/dev/null
"$NF" --root "$R" boot-files import --from-image pios >/dev/null 2>&1
# DHCP only (the workers boot straight into the initramfs here).
nsx master dnsmasq --keep-in-foreground --port=0 --interface=eth0 --bind-interfaces --dhcp-range=10.84.0.50,10.84.0.99 \
	--dhcp-leasefile="$T/leases" --pid-file="$T/dnsmasq.pid" --log-facility="$T/dnsmasq.log" --conf-file=/dev/null &
register_pid $!
nsx master "$NFD" --root "$R" --listen $MIP:7070 --nfs-url "nfs://$MIP/export" --http off >>"$T/daemon.log" 2>&1 &
register_pid $!
wait_for "$T/daemon.log" "listening on" 10 || fail "netflashd did not start: $(tail -3 "$T/daemon.log")"

size=$(stat -c %s "$img")
pids=()
for i in 1 2; do
	mac=52:54:00:12:35:0$i
	"$NF" --root "$R" enroll "$mac" --image pios --multicast --min-workers 2 --max-wait 240 >/dev/null
	tok=$(grep -o 'netflash.token=[0-9a-f]*' "$R/tftp/52-54-00-12-35-0$i/cmdline.txt" | cut -d= -f2)
	pattern_file "$T/card$i.img" $((64 * 1048576))
	(
		MICROVM_EXEC="ip netns exec $BR" MICROVM_NETDEV="tap,ifname=tap$i,script=no,downscript=no"
		rc=$(microvm_boot "$T/netflash.cpio.gz" "$mac" "$T/card$i.img" "$T/guest$i.log" \
			"netflash.server=$MIP:7070 netflash.token=$tok netflash.target=/dev/vda netflash.after=poweroff netflash.fail_delay=0")
		echo "$rc" >"$T/rc$i"
	) &
	pids+=($!)
	register_pid $!
done
t0=$SECONDS
for p in "${pids[@]}"; do wait "$p" || true; done
secs=$((SECONDS - t0))
for i in 1 2; do
	[ "$(cat "$T/rc$i" 2>/dev/null)" = 0 ] && grep -q 'powering off' "$T/guest$i.log" &&
		cmp -s -n "$size" "$img" "$T/card$i.img" && [ ! -e "$R/tftp/52-54-00-12-35-0$i" ] &&
		grep -q "image .pios. (zstd, [0-9]* bytes) from multicast session udpcast://$MIP:9000" "$T/guest$i.log" &&
		pass "guest $i streamed the session onto its disk, was released and powered off" ||
		fail "guest $i: QEMU exit $(cat "$T/rc$i" 2>/dev/null); $(grep -i 'netflash\|udp' "$T/guest$i.log" | tail -8)"
done
grep -q "multicast session 1: udp-sender (pid [0-9]*) waits for the receivers of 2 worker(s)" "$T/daemon.log" &&
	[ "$(grep -c "joins multicast session 1 " "$T/daemon.log")" = 2 ] &&
	pass "both guests were members of one multicast session (one udp-sender)" ||
	fail "daemon: $(grep -i session "$T/daemon.log")"
echo "MEASURE multicast e2e: two TCG guests, boot to poweroff ${secs} s"
finish
