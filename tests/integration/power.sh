#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# netflash power and mass-flash's power retries, on the host: ROOT/power.conf
# parsing (hostile lines), `power cycle` with exec entries and with a GPIO
# chip that this host does not have, and a mass-flash run in which a Pi that
# never asks for its job is power-cycled until it boots (the exec entry
# "powers it on" by starting a real worker: netflash-write --report-to
# against netflashd and ganesha), while a Pi without power control fails
# after --boot-timeout. The GPIO path itself runs against gpio-sim in gpio.sh.
source "$(dirname "$0")/../lib.sh"

img=$(test_image 24)
master_setup "$img.mt.xz" pios
daemon_start
PC=$MR/power.conf
P=b8:27:eb:00:01:01 D=b8-27-eb-00-01-01

expect_fail "no power.conf" "cannot read .*power.conf: no such file" "$NF" --root "$MR" power cycle "$P" &&
	pass "power cycle without ROOT/power.conf: one-line error"
"$NF" --root "$MR" power ls >"$T/ls0.out" 2>&1 && [ "$(wc -l <"$T/ls0.out")" = 1 ] &&
	has "^(no power control: .*power.conf does not exist" "$T/ls0.out" &&
	pass "power ls without power.conf says so in one line, no table header, exit 0" || fail "ls0: $(cat "$T/ls0.out")"

# Hostile and broken lines: the whole file is refused, naming line and reason.
bad_line() { # name line-text regex
	printf '# relays\n%s\n' "$2" >"$PC"
	expect_fail "power.conf $1" "power.conf:2: .*$3" "$NF" --root "$MR" power ls
}
n=0
bad_line "bad MAC" "b8:27:eb:00:01 gpio gpiochip0:1" "not a MAC address" && n=$((n + 1))
bad_line "unknown kind" "$P relay gpiochip0:1" "unknown kind" && n=$((n + 1))
bad_line "no target" "$P gpio" "expected MAC gpio" && n=$((n + 1))
bad_line "relative exec" "$P exec cycle.sh 7" "absolute path" && n=$((n + 1))
bad_line "gpio with blanks" "$P gpio gpiochip0:1 now" "no blanks" && n=$((n + 1))
bad_line "gpio bias conflict" "$P gpio gpiochip0:1:pull-up:pull-down" "exclude each other" && n=$((n + 1))
bad_line "gpio shell chars" "$P gpio gpiochip0:1;reboot" "the line must be" && n=$((n + 1))
bad_line "17 args" "$P exec /bin/true 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16" "at most 15 arguments" && n=$((n + 1))
bad_line "control char" "$P exec /bin/true $(printf '\033')[2J" "control characters" && n=$((n + 1))
bad_line "overlong" "$P exec /bin/true $(head -c 600 /dev/zero | tr '\0' a)" "longer than 512" && n=$((n + 1))
printf '%s gpio gpiochip0:1\n%s exec /bin/true\n' "$P" "${P^^}" >"$PC"
expect_fail "power.conf duplicate" "power.conf:2: this MAC has an entry already" "$NF" --root "$MR" power ls && n=$((n + 1))
[ "$n" = 11 ] && pass "11 broken power.conf lines are refused with file:line and the reason"

cat >"$T/fail.sh" <<'EOF'
#!/bin/sh
exit 3
EOF
chmod +x "$T/fail.sh"
cat >"$PC" <<EOF
# MAC              how
b8:27:eb:00:02:01  gpio gpiochip7:17:active-low
b8-27-eb-00-02-02  exec $T/fail.sh
B827EB000203       exec /bin/sh -c true
EOF
"$NF" --root "$MR" power ls >"$T/ls.out" &&
	grep -q '^b8:27:eb:00:02:01  gpio  gpiochip7:17:active-low$' "$T/ls.out" &&
	grep -q "^b8:27:eb:00:02:02  exec  $T/fail.sh\$" "$T/ls.out" &&
	pass "power ls lists the map in canonical form" || fail "ls: $(cat "$T/ls.out")"
expect_fail "gpio chip missing" "b8-27-eb-00-02-01: power cycle failed: no GPIO chip 'gpiochip7': no such chip" \
	"$NF" --root "$MR" power cycle -t 1 b8:27:eb:00:02:01 && pass "a relay on a chip this host lacks: one-line error"
expect_fail "failing command" "b8-27-eb-00-02-02: power cycle failed: power command '$T/fail.sh' failed" \
	"$NF" --root "$MR" power cycle b8:27:eb:00:02:02 && pass "a power command that fails: one-line error, exit 1"
expect_fail "no entry" "b8-27-eb-00-02-09 has no entry in .*power.conf" "$NF" --root "$MR" power cycle b8:27:eb:00:02:09 &&
	pass "a MAC without an entry: one-line error"
rc=0
"$NF" --root "$MR" power cycle 'b8:27:eb;reboot' >/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q "invalid MAC 'b8:27:eb;reboot'" "$T/err" && pass "a hostile MAC argument is refused" ||
	fail "hostile MAC: exit $rc $(cat "$T/err")"
rc=0
"$NF" --root "$MR" power cycle --off-time 0 b8:27:eb:00:02:03 >/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q "invalid --off-time '0'" "$T/err" && pass "--off-time 0 is a usage error (exit 2)" ||
	fail "off-time: exit $rc $(cat "$T/err")"

# The worker's start button: a setting it cannot understand stops it before
# anything else (the button itself is tested against gpio-sim in gpio.sh).
FI="$NETFLASH_BUILD/flasher-init/flasher-init"
printf 'netflash.server=127.0.0.1:1 netflash.token=ab netflash.button=gpiochip0:1;reboot\n' >"$T/cl1"
printf 'netflash.server=127.0.0.1:1 netflash.token=ab netflash.button=gpiochip0:%0300d\n' 1 >"$T/cl2"
rc1=0 rc2=0
"$FI" --cmdline "$T/cl1" >/dev/null 2>"$T/fi1.err" || rc1=$?
"$FI" --cmdline "$T/cl2" >/dev/null 2>"$T/fi2.err" || rc2=$?
[ "$rc1" = 1 ] && grep -q "FAILED (config): netflash.button='gpiochip0:1;reboot': the line must be" "$T/fi1.err" &&
	[ "$rc2" = 1 ] && grep -q "FAILED (config): netflash.button= is longer than 160 characters" "$T/fi2.err" &&
	pass "flasher-init stops on a hostile or oversize netflash.button= (never flashes without the asked-for press)" ||
	fail "flasher-init button config: $rc1 $(cat "$T/fi1.err") / $rc2 $(cat "$T/fi2.err")"
# Every numeric key: a typo stops the worker, it does not become the default.
for kv in netflash.card_wait=30s netflash.fail_delay=-1 netflash.stall=99999 netflash.probe=yes; do
	printf 'netflash.server=127.0.0.1:1 netflash.token=ab %s\n' "$kv" >"$T/cl3"
	rc3=0
	"$FI" --cmdline "$T/cl3" >/dev/null 2>"$T/fi3.err" || rc3=$?
	[ "$rc3" = 1 ] && grep -q "FAILED (config): ${kv%%=*}='${kv#*=}': expected a whole number from 0 to [0-9]*" "$T/fi3.err" ||
		fail "flasher-init with $kv: exit $rc3 $(cat "$T/fi3.err")"
done
pass "flasher-init stops at config time on a numeric netflash.* key that is not a number in range"

# A worker that fails before it asks for its job (no card; a start button it
# cannot open) still tells the master, which records the failed attempt
# with the boot log instead of seeing a Pi that just went quiet.
early_cmdline() { # file mac token extra-cmdline: a worker of this master that waits 1 s for its card
	printf 'netflash.server=127.0.0.1:%s netflash.token=%s netflash.mac=%s netflash.card_wait=1 %s\n' \
		"$MPORT" "$3" "$2" "$4" >"$1"
}
early_fail() { # name mac extra-cmdline expected-stage expected-reason-regex
	local rc=0
	"$NF" --root "$MR" enroll "$2" --image pios >/dev/null
	early_cmdline "$T/cl-$1" "$2" "$(token_of "$2")" "$3"
	"$FI" --cmdline "$T/cl-$1" >/dev/null 2>"$T/fi-$1.err" || rc=$?
	[ "$rc" = 1 ] && grep -q "FAILED ($4): $5" "$T/fi-$1.err" && grep -q "told the master at 127.0.0.1:$MPORT" "$T/fi-$1.err" &&
		"$NF" --root "$MR" history "$2" | has "failed .*$4: $5" &&
		"$NF" --root "$MR" history "$2" | has "FAILED ($4)" &&
		"$NF" --root "$MR" status --json | has "\"mac\":\"$(echo "$2" | tr : -)\".*\"attempts\":1" &&
		pass "$1: the worker told the master, which counted the attempt and keeps the boot log" ||
		fail "$1: exit $rc; $(cat "$T/fi-$1.err"); history: $("$NF" --root "$MR" history "$2")"
}
early_fail "no card" b8:27:eb:00:03:01 "netflash.target=$T/no-such-card" target "no SD card found: $T/no-such-card did not appear within 1 s"
: >"$T/small-card"
early_fail "unusable button" b8:27:eb:00:03:02 "netflash.target=$T/small-card netflash.button=gpiochip77:4" button \
	"start button: no GPIO chip 'gpiochip77'"
# Not enrolled: nothing to tell, and no noise about it.
early_cmdline "$T/cl-unknown" b8:27:eb:00:03:03 00 "netflash.target=$T/no-such-card"
rc=0
"$FI" --cmdline "$T/cl-unknown" >/dev/null 2>"$T/fi-unknown.err" || rc=$?
[ "$rc" = 1 ] && ! grep -q "told the master" "$T/fi-unknown.err" && grep -q "could not tell the master: .*refused" "$T/fi-unknown.err" &&
	pass "an unknown worker's early failure is refused by the master and only said on the console" ||
	fail "unknown worker: exit $rc; $(cat "$T/fi-unknown.err")"

# mass-flash: the Pi with an exec entry boots after its second power cycle.
NFW="$NETFLASH_BUILD/flasher-init/netflash-write"
pattern_file "$T/card.img" $((64 * 1048576))
cat >"$T/cycle.sh" <<EOF
#!/bin/sh
echo "\$NETFLASH_MAC \$NETFLASH_OFF_SECONDS" >>"$T/cycles"
[ "\$(wc -l <"$T/cycles")" -ge 2 ] || exit 0
tok=\$(grep -o 'netflash.token=[0-9a-f]*' "$MR/tftp/\$NETFLASH_MAC/cmdline.txt" | cut -d= -f2)
"$NFW" --progress=none -q --report-to 127.0.0.1:$MPORT --mac "\$NETFLASH_MAC" --token "\$tok" "$T/card.img" >"$T/worker.log" 2>&1 &
echo \$! >"$T/worker.pid"
EOF
chmod +x "$T/cycle.sh"
printf '%s exec %s\n' "$P" "$T/cycle.sh" >"$PC"
"$NF" --root "$MR" dhcp-event arp-add "$P" 127.0.0.1
"$NF" --root "$MR" dhcp-event arp-add b8:27:eb:00:01:02 127.0.0.1
rc=0
t0=$SECONDS
timeout 120 "$NF" --root "$MR" mass-flash --image pios --limit 2 --since 60 --boot-timeout 2 --power-retries 3 \
	>"$T/mf.out" 2>&1 || rc=$?
secs=$((SECONDS - t0))
[ -f "$T/worker.pid" ] && register_pid "$(cat "$T/worker.pid")"
[ "$(cat "$T/cycles" 2>/dev/null)" = "$(printf '%s 5\n%s 5' "$D" "$D")" ] &&
	grep -q "$D did not ask for its job within 2 s: power cycle 1 of 3" "$T/mf.out" &&
	grep -q "$D did not ask for its job within 2 s: power cycle 2 of 3" "$T/mf.out" &&
	! grep -q "power cycle 3 of 3" "$T/mf.out" &&
	pass "mass-flash power-cycled the silent Pi twice, then it asked for its job (NETFLASH_MAC, NETFLASH_OFF_SECONDS=5)" ||
	fail "cycles: $(cat "$T/cycles" 2>&1); $(cat "$T/mf.out")"
[ "$rc" = 1 ] && grep -q "2 Pi(s) in .*: 1 flashed, 1 failed, 0 not finished" "$T/mf.out" &&
	grep -q "^$P .* flashed " "$T/mf.out" &&
	grep -q "^b8:27:eb:00:01:02 .* failed .*did not ask for its job within 2 s; no power control for it" "$T/mf.out" &&
	pass "summary: the cycled Pi flashed, the one without power control failed with the reason (exit 1, ${secs} s)" ||
	fail "mass-flash: exit $rc; $(cat "$T/mf.out")"
cmp -s -n "$(stat -c %s "$img")" "$img" "$T/card.img" && [ ! -e "$MR/tftp/$D" ] &&
	pass "the cycled Pi's card holds the image and it was released" || fail "card or release: $(cat "$T/worker.log")"
[ "$("$NF" --root "$MR" history "$P" | grep -c 'mass-flash: power cycle')" = 2 ] &&
	pass "history shows the two power cycles" || fail "history: $("$NF" --root "$MR" history "$P")"
[ -d "$MR/tftp/b8-27-eb-00-01-02" ] && pass "the Pi that never booted stays enrolled" || fail "b8-27-eb-00-01-02 not enrolled"

# A Pi whose job goes silent (a hung worker: it said HELLO, took its job and
# then nothing) is power-cycled too. Cycle 1 "powers on" such a worker (a
# raw client that holds the connection and says nothing more), cycle 2 a
# real one, which flashes.
P3=b8:27:eb:00:01:03 D3=b8-27-eb-00-01-03
pattern_file "$T/card3.img" $((64 * 1048576))
cat >"$T/cycle3.sh" <<EOF
#!/bin/bash
echo "\$NETFLASH_MAC" >>"$T/cycles3"
tok=\$(grep -o 'netflash.token=[0-9a-f]*' "$MR/tftp/\$NETFLASH_MAC/cmdline.txt" | cut -d= -f2)
if [ "\$(wc -l <"$T/cycles3")" = 1 ]; then
	( exec 3<>/dev/tcp/127.0.0.1/$MPORT; printf 'HELLO v=1 mac=%s token=%s\\n' "\$NETFLASH_MAC" "\$tok" >&3
	  read -r line <&3; echo "\$line" >"$T/hung.job"; exec sleep 120 ) </dev/null >/dev/null 2>&1 &
	echo \$! >"$T/hung.pid"
else
	kill "\$(cat "$T/hung.pid")"
	"$NFW" --progress=none -q --report-to 127.0.0.1:$MPORT --mac "\$NETFLASH_MAC" --token "\$tok" "$T/card3.img" >"$T/worker3.log" 2>&1 &
	echo \$! >"$T/worker3.pid"
fi
EOF
chmod +x "$T/cycle3.sh"
printf '%s exec %s\n' "$P3" "$T/cycle3.sh" >"$PC"
timeout 120 "$NF" --root "$MR" mass-flash --image pios --limit 1 --since 0 --boot-timeout 2 --power-retries 3 \
	>"$T/mf3.out" 2>&1 &
MF=$!
register_pid "$MF"
sleep 1
"$NF" --root "$MR" dhcp-event arp-add "$P3" 127.0.0.1
rc=0
wait "$MF" || rc=$?
for f in hung.pid worker3.pid; do [ -f "$T/$f" ] && register_pid "$(cat "$T/$f")"; done
hung=$(sed -n 's/^JOB id=\([0-9]*\) .*/\1/p' "$T/hung.job" 2>/dev/null)
[ "$rc" = 0 ] && [ -n "$hung" ] && grep -q "$D3 did not ask for its job within 2 s: power cycle 1 of 3" "$T/mf3.out" &&
	grep -q "$D3 job $hung has been silent for 2 s: power cycle 2 of 3" "$T/mf3.out" &&
	grep -q "1 Pi(s) in .*: 1 flashed, 0 failed" "$T/mf3.out" &&
	"$NF" --root "$MR" history "$P3" | has "mass-flash: power cycle (job $hung has been silent for 2 s)" &&
	cmp -s -n "$(stat -c %s "$img")" "$img" "$T/card3.img" &&
	pass "mass-flash power-cycled the Pi whose job $hung went silent, and its next boot flashed" ||
	fail "silent job: exit $rc, job '$hung'; $(cat "$T/mf3.out")"
finish
