#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# GPIO against the kernel's own simulator: QEMU x86_64 guests (Debian's
# generic kernel, with gpio-sim and uleds built from Debian's source by
# tests/fixtures/kernel_gpio.sh) get a gpio-sim chip "netflash-sim" with
# lines named led, button and relay, and a real LED class device "ACT"
# (uleds). A wrapper /gpio-init sets that up, starts ledwatch (which prints
# every LED change and presses the button when the LED asks for it) and
# execs flasher-init as PID 1.
#  1. netflash.led + netflash.button + the ACT LED: the worker waits for the
#     press, flashes, and the LEDs show each stage's pattern.
#  2. a start button that does not exist: nothing is written, the LEDs show
#     the failure pattern, the worker reboots.
#  3. the master's `netflash power cycle` on an active-low relay line, and a
#     second cycle while the first holds the line.
# Skipped (exit 77) when the kernel or its modules cannot be had.
source "$(dirname "$0")/../lib.sh"
source "$NETFLASH_SRC/tests/fixtures/kernel.sh"
source "$NETFLASH_SRC/tests/fixtures/kernel_gpio.sh"

if [ -n "${NETFLASH_SANITIZE_BUILD:-}" ]; then
	echo "SKIP: the initramfs needs the static flasher-init, which sanitizer builds do not make"
	exit 77
fi
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 missing"; exit 77; }
if ! kernel_fetch_amd64_gpio; then
	echo "SKIP: no Debian kernel with buildable gpio-sim could be had"
	exit 77
fi

MODULES="virtio_ring virtio virtio_mmio virtio_blk failover net_failover virtio_net"
"$NETFLASH_SRC/boot-files/build-initramfs.sh" --init "$NETFLASH_BUILD/flasher-init/flasher-init" \
	--modules-dir "$KERNEL_MODDIR" --modules "$MODULES" -o "$T/base.cpio.gz" 2>"$T/initramfs.log"

# The test's own layer, appended as a second archive (the kernel unpacks
# concatenated archives in order): busybox, ledwatch, the modules, the
# wrapper, and the master's netflash with its shared libraries.
ov=$T/overlay
mkdir -p "$ov/bin" "$ov/gpio" "$ov/usr/local/bin"
cp /bin/busybox "$ov/bin/busybox"
cp "$NETFLASH_BUILD/tests/ledwatch" "$ov/ledwatch"
cp "$KERNEL_MODDIR/kernel/fs/configfs/configfs.ko" "$KERNEL_MODDIR/extra/gpio-sim.ko" "$KERNEL_MODDIR/extra/uleds.ko" "$ov/gpio/"
cp "$NETFLASH_BUILD/master-tools/netflash" "$ov/usr/local/bin/"
for lib in $(ldd "$NETFLASH_BUILD/master-tools/netflash" | grep -o '/[^ ]*'); do
	mkdir -p "$ov$(dirname "$lib")"
	cp -L "$lib" "$ov$lib"
done
cat >"$ov/gpio-init" <<'EOF'
#!/bin/busybox sh
B=/bin/busybox
$B mkdir -p /proc /sys /dev /cfg /tmp
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t devtmpfs devtmpfs /dev
for m in configfs gpio-sim uleds; do $B insmod /gpio/$m.ko || echo "GPIOTEST insmod $m failed"; done
$B mount -t configfs none /cfg
c=/cfg/gpio-sim/bench
$B mkdir $c $c/bank0 $c/bank0/line1 $c/bank0/line2 $c/bank0/line3
echo 4 >$c/bank0/num_lines
echo netflash-sim >$c/bank0/label
echo led >$c/bank0/line1/name
echo button >$c/bank0/line2/name
echo relay >$c/bank0/line3/name
echo 1 >$c/live
S=/sys/devices/platform/$($B cat $c/dev_name)/$($B cat $c/bank0/chip_name)
echo pull-up >$S/sim_gpio2/pull   # the button, to ground, is not pressed
echo pull-up >$S/sim_gpio3/pull   # the relay input (active-low) is inactive
echo "GPIOTEST chip $($B cat $c/bank0/chip_name) at $S"
case " $($B cat /proc/cmdline) " in
*" gpiotest=power "*)
	/ledwatch --uleds PWR --led $S/sim_gpio3 &
	$B sleep 1
	N=/usr/local/bin/netflash
	M=b8:27:eb:00:00:07
	$N --root /r init --interface lo --subnet 127.0.0.0/8 --server-ip 127.0.0.1 >/dev/null 2>&1 || echo "GPIOTEST init failed"
	echo "$M gpio netflash-sim:relay:active-low" >/r/power.conf
	echo "GPIOTEST cycle1 start $($B cut -d' ' -f1 /proc/uptime)"
	$N --root /r power cycle --off-time 1 $M; echo "GPIOTEST cycle1 rc=$?"
	$B sleep 0.5
	$N --root /r power cycle --off-time 3 $M & p=$!
	$B sleep 1
	$N --root /r power cycle --off-time 1 $M; echo "GPIOTEST busy rc=$?"
	wait $p; echo "GPIOTEST cycle2 rc=$?"
	$N --root /r history $M | $B sed 's/^/GPIOTEST history: /'
	$B sleep 0.5
	echo "GPIOTEST end"
	$B poweroff -f ;;
*)
	/ledwatch --uleds ACT --led $S/sim_gpio1 --press $S/sim_gpio2 &
	while [ ! -e /sys/class/leds/ACT ]; do $B usleep 20000; done
	exec /init ;;
esac
EOF
chmod 0755 "$ov/gpio-init"
(cd "$ov" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$T/overlay.cpio.gz"
cat "$T/base.cpio.gz" "$T/overlay.cpio.gz" >"$T/initrd.gz"

img=$(test_image 24)
DAEMON_NFS_HOST=10.0.2.2
master_setup "$img.mt.xz" pios
daemon_start

boot() { # mac card log extra-cmdline -> QEMU's exit status
	local tok
	tok=$(token_of "$1")
	microvm_boot "$T/initrd.gz" "$1" "$2" "$3" \
		"rdinit=/gpio-init netflash.server=10.0.2.2:$MPORT netflash.token=${tok:-none} netflash.target=/dev/vda netflash.after=poweroff $4"
}
# The kernel's stamp of a flasher line, in ms.
stamp_ms() { grep -m1 "$2" "$1" | sed -n 's/^\[ *\([0-9]*\)\.\([0-9]*\)\].*/\1\2/p' | sed 's/^0*//;s/$/0/'; }
# "LEDWATCH <src> ms value" lines of one source between two ms stamps.
trace() { tr -d '\r' <"$1" | awk -v s="$2" -v a="$3" -v b="$4" '$1 == "LEDWATCH" && $2 == s && $3 >= a && $3 <= b { print $3, $4 }'; }
# Durations (ms) of the lit phases in a trace.
lit_phases() { awk 'prev_v == 1 && $2 != 1 { print $1 - prev_t } $2 != prev_v { prev_v = $2; prev_t = $1 }'; }

# 1. LED, button and ACT LED.
MAC=52:54:00:12:35:01 D=52-54-00-12-35-01
"$NF" --root "$MR" enroll "$MAC" --image pios >/dev/null
pattern_file "$T/card.img" $((64 * 1048576))
t0=$SECONDS
rc=$(boot "$MAC" "$T/card.img" "$T/guest.log" \
	"netflash.led=netflash-sim:led netflash.button=netflash-sim:button:active-low:pull-up netflash.fail_delay=0")
secs=$((SECONDS - t0))
log=$T/guest.log
[ "$rc" = 0 ] && grep -q 'wrote and verified' "$log" && grep -q 'powering off' "$log" &&
	cmp -s -n "$(stat -c %s "$img")" "$img" "$T/card.img" &&
	pass "with a status LED and a start button the worker flashed the card (QEMU exit 0, ${secs} s)" ||
	fail "guest: QEMU exit $rc; $(grep -E 'netflash|GPIOTEST|LEDWATCH (ready|press)' "$log" | tail -15)"
grep -q 'status lights on netflash-sim:led and /sys/class/leds/ACT' "$log" &&
	pass "flasher-init found the GPIO LED by chip label and line name, and the ACT LED (auto)" ||
	fail "lights: $(grep -E 'status lights|LED' "$log" | grep netflash | head -3)"
wait_ms=$(stamp_ms "$log" "waiting for the start button")
press_ms=$(tr -d '\r' <"$log" | awk '$1 == "LEDWATCH" && $2 == "press" { print $3; exit }')
pressed_ms=$(stamp_ms "$log" "start button pressed")
write_ms=$(stamp_ms "$log" "; writing /dev/vda")
done_ms=$(stamp_ms "$log" "wrote and verified")
off_ms=$(stamp_ms "$log" "powering off")
if [ -n "$wait_ms" ] && [ -n "$press_ms" ] && [ -n "$pressed_ms" ] && [ -n "$write_ms" ] &&
	[ "$wait_ms" -lt "$press_ms" ] && [ "$press_ms" -le "$((pressed_ms + 20))" ] && [ "$pressed_ms" -lt "$write_ms" ]; then
	pass "nothing was written before the button was pressed (wait ${wait_ms} ms, press ${press_ms} ms, write ${write_ms} ms)"
else
	fail "button order: wait=$wait_ms press=$press_ms pressed=$pressed_ms write=$write_ms"
fi
# The patterns are told apart by order and by their own proportions, never
# by a window or an upper bound on a duration: with both host cores busy a
# TCG guest's timers overshoot (a 500 ms phase was seen at 504 ms with its
# predecessor cut off by a 100 ms window), but they never end early.
# Writing and verifying: short blips, at least three, all alike.
mapfile -t fast < <(trace "$log" gpio "$write_ms" "$done_ms" | lit_phases)
max_fast=$(printf '%s\n' "${fast[@]:-0}" | sort -n | tail -1)
# While waiting: the slow even blink. ledwatch presses the button once it
# has seen two long lit phases, so the two lit phases before the press are
# the button pattern's: each at least its nominal 500 ms less 30%, longer
# than twice the longest write blip, the dark phase between them about as
# long (even), and the last one begun after the wait was announced.
read -r l1 dark l2 start2 < <(trace "$log" gpio 0 "$press_ms" |
	awk '$2 == 1 { on[++n] = $1 } $2 == 0 && n { off[n] = $1 }
		END { if (n >= 2 && off[n] && off[n-1]) print off[n-1] - on[n-1], on[n] - off[n-1], off[n] - on[n], on[n] }') || :
slow=("${l1:-none}" "${l2:-none}")
if [ -n "${l2:-}" ] && [ "$l1" -ge 350 ] && [ "$l2" -ge 350 ] && [ "$l1" -gt $((2 * max_fast)) ] &&
	[ "$l2" -gt $((2 * max_fast)) ] && [ $((2 * dark)) -ge "$l1" ] && [ "$dark" -le $((2 * l1)) ] &&
	[ "$start2" -ge "$wait_ms" ]; then
	pass "waiting for the button: the LED blinked slowly and evenly (${slow[*]} ms lit, $dark ms dark; write blips up to $max_fast ms)"
else
	fail "button pattern: lit phases ${slow[*]}, dark ${dark:-none}, write blips up to $max_fast ms, last lit from ${start2:-?} (wait at $wait_ms)"
fi
n_fast=0
for d in "${fast[@]}"; do [ $((2 * d)) -lt "${l1:-0}" ] && n_fast=$((n_fast + 1)); done
[ "$n_fast" -ge 3 ] && [ "$n_fast" -eq "${#fast[@]}" ] &&
	pass "writing and verifying: the LED blipped fast (${#fast[@]} blips of ${fast[*]} ms)" ||
	fail "write pattern: lit phases ${fast[*]:-none}, against a slow phase of ${l1:-?} ms"
# Done: steady on until the power-off.
last=$(trace "$log" gpio 0 999999999 | tail -1)
if [ "${last#* }" = 1 ] && [ -n "$off_ms" ] && [ "$((off_ms - ${last% *}))" -ge 2500 ]; then
	pass "done: the LED stayed on $((off_ms - ${last% *})) ms until the power-off"
else
	fail "done pattern: last change '$last', power-off at $off_ms"
fi
# The ACT LED (a real LED class device) shows the same.
n_act=$(trace "$log" act 0 999999999 | wc -l)
n_gpio=$(trace "$log" gpio 0 999999999 | wc -l)
act_last=$(trace "$log" act 0 999999999 | tail -1)
[ "$n_act" -ge 8 ] && [ "${act_last#* }" = 255 ] && [ "$((n_act - n_gpio))" -le 3 ] && [ "$((n_gpio - n_act))" -le 3 ] &&
	pass "the ACT LED followed the same pattern ($n_act changes vs $n_gpio on the GPIO LED; lit = max_brightness 255)" ||
	fail "ACT LED: $n_act changes (GPIO $n_gpio), last '$act_last'"
"$NF" --root "$MR" history "$MAC" | has 'waiting for the start button' &&
	pass "the master's history has the worker's button wait" || fail "history: $("$NF" --root "$MR" history "$MAC" | head)"

# 2. A start button that does not exist: fail safe, failure pattern.
MAC2=52:54:00:12:35:02
"$NF" --root "$MR" enroll "$MAC2" --image pios >/dev/null
pattern_file "$T/card2.img" $((64 * 1048576))
rc=$(boot "$MAC2" "$T/card2.img" "$T/guest2.log" "netflash.led=netflash-sim:led netflash.button=netflash-sim:7 netflash.fail_delay=3")
log=$T/guest2.log
grep -q "FAILED (button): start button: GPIO chip 'netflash-sim' has no line 7 (it has 4)" "$log" && grep -q rebooting "$log" &&
	[ "$rc" = 0 ] && pass "a missing start button: the worker said why and rebooted" ||
	fail "missing button: QEMU exit $rc; $(grep netflash "$log" | tail -5)"
cmp -s "$T/card2.img" <(head -c $((64 * 1048576)) /dev/zero | tr '\0' '\245') &&
	pass "a missing start button: nothing was written to the card" || fail "card 2 was changed"
f_ms=$(stamp_ms "$log" "FAILED (button)")
r_ms=$(stamp_ms "$log" "rebooting into the netboot")
mapfile -t blips < <(trace "$log" gpio "$f_ms" 999999999 | lit_phases)
# Triple blips with a long dark pause: at least three lit phases, a dark
# phase at least three times the longest of them (proportions of this run,
# not fixed bounds: see the button pattern above).
max_blip=$(printf '%s\n' "${blips[@]:-0}" | sort -n | tail -1)
gaps=$(trace "$log" gpio "$f_ms" 999999999 | awk '$2 == 1 && prev_t { print $1 - prev_t } $2 == 0 { prev_t = $1 }' |
	awk -v m="$max_blip" '$1 >= 3 * m' | wc -l)
n_blip=${#blips[@]}
[ "$n_blip" -ge 3 ] && [ "$max_blip" -gt 0 ] && [ "$gaps" -ge 1 ] &&
	pass "failed: the LED blipped in threes with a dark pause (${blips[*]} ms lit, $gaps long gap(s), from ${f_ms} ms, reboot ${r_ms} ms)" ||
	fail "failure pattern: lit ${blips[*]:-none}, long gaps $gaps"

# 3. The master's power cycle on an active-low relay line.
pattern_file "$T/card3.img" $((1048576))
rc=$(boot 52:54:00:12:35:03 "$T/card3.img" "$T/guest3.log" "gpiotest=power")
log=$T/guest3.log
grep -q 'GPIOTEST cycle1 rc=0' "$log" && grep -q 'power-cycled b8-27-eb-00-00-07 (gpio netflash-sim:relay:active-low, off 1 s)' "$log" &&
	pass "netflash power cycle ran against gpio-sim (exit 0)" ||
	fail "power cycle: $(grep -E 'GPIOTEST|netflash' "$log" | tail -8)"
# The line is physically low (relay on: power cut) for the off time, then high.
mapfile -t lows < <(trace "$log" gpio 0 999999999 | awk '$2 == 0 { t = $1 } $2 == 1 && t { print $1 - t; t = 0 }')
# Off times of 1 s and 3 s: never shorter (less 100 ms of sampling), and
# 2 s apart give or take 500 ms however late a busy host wakes the guest
# (the delay is in both).
[ "${#lows[@]}" -ge 2 ] && [ "${lows[0]}" -ge 900 ] && [ "${lows[1]}" -ge 2900 ] &&
	[ $((lows[1] - lows[0])) -ge 1500 ] && [ $((lows[1] - lows[0])) -le 2500 ] &&
	pass "the relay line was asserted (low, active-low) for the off time: ${lows[0]} ms and ${lows[1]} ms" ||
	fail "relay trace: low phases ${lows[*]:-none}; $(trace "$log" gpio 0 999999999 | tr '\n' ' ')"
[ "$(trace "$log" gpio 0 999999999 | tail -1 | cut -d' ' -f2)" = 1 ] &&
	pass "after the cycles the relay line is inactive again (the worker has power)" || fail "relay left asserted"
grep -q 'GPIOTEST busy rc=1' "$log" && [ "$(grep -c 'error:' "$log")" = 1 ] &&
	grep -q "netflash: error: b8-27-eb-00-00-07: power cycle failed: GPIO netflash-sim:relay is in use by 'netflash-power'" "$log" &&
	grep -q 'GPIOTEST cycle2 rc=0' "$log" &&
	pass "a second cycle while the first holds the line: one-line error naming the holder, exit 1" ||
	fail "busy: $(grep -E 'GPIOTEST (busy|cycle2)|error:' "$log")"
[ "$(grep -c 'GPIOTEST history: .*gpio netflash-sim:relay:active-low, off [13] s' "$log")" = 2 ] &&
	grep -q 'GPIOTEST history: .*power cycle failed' "$log" &&
	pass "the two cycles and the failed one are in the worker's history" || fail "history: $(grep 'GPIOTEST history' "$log")"
finish
