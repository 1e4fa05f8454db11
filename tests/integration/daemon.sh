#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# netflashd with the real engine (netflash-write --report-to), ganesha and
# files as cards: release only on verified success, attempts, refusals,
# hostile input, and a daemon killed with SIGKILL mid-flash.
source "$(dirname "$0")/../lib.sh"

img=$(test_image 24)
master_setup "$img.mt.xz" pios
daemon_start --max-attempts 2 --slow-timeout 2
M1=b8:27:eb:00:00:01 M2=b8:27:eb:00:00:02 M3=b8:27:eb:00:00:03
D1=b8-27-eb-00-00-01 D2=b8-27-eb-00-00-02

# 1. The full flow.
"$NF" --root "$MR" enroll "$M1" --image pios >/dev/null
if report "$M1" "$T/card1" 2>"$T/w1.log" && cmp -s -n "$(stat -c %s "$img")" "$img" "$T/card1"; then
	pass "full flow: the worker flashed, verified and was released"
else
	fail "full flow: $(cat "$T/w1.log")"
fi
[ ! -e "$MR/tftp/$D1" ] && pass "the TFTP dir is gone after a verified DONE" || fail "TFTP dir still there"
"$NF" --root "$MR" history "$M1" | has " done " && pass "history records the job" || fail "history: $("$NF" --root "$MR" history)"
"$NF" --root "$MR" status --json | has "\"mac\":\"$D1\".*\"state\":\"released\"" && pass "status shows it released" ||
	fail "status: $("$NF" --root "$MR" status --json)"

# 2. A worker that lies (DONE with a wrong digest) is not released.
"$NF" --root "$MR" enroll "$M2" --image pios >/dev/null
tok2=$(token_of "$M2")
exec {c}<>"/dev/tcp/127.0.0.1/$MPORT"
printf 'HELLO v=1 mac=%s token=%s\n' "$M2" "$tok2" >&$c
read -r -t 5 job <&$c || job=
id=$(echo "$job" | grep -o 'id=[0-9]*' | cut -d= -f2)
printf 'DONE id=%s sha256=%064d bytes=%s seconds=1.0\n' "$id" 0 "$(stat -c %s "$img")" >&$c
read -r -t 5 verdict <&$c || verdict=
exec {c}>&-
[ "${verdict%% *}" = KEPT ] && echo "$verdict" | has 'reason=digest-mismatch' && [ -d "$MR/tftp/$D2" ] &&
	pass "DONE with a wrong digest: KEPT, dir kept" || fail "lying worker: job='$job' verdict='$verdict'"
# The right digest but the wrong size is not enough either.
exec {c}<>"/dev/tcp/127.0.0.1/$MPORT"
printf 'HELLO v=1 mac=%s token=%s\n' "$M2" "$tok2" >&$c
read -r -t 5 job <&$c || job=
id=$(echo "$job" | grep -o 'id=[0-9]*' | cut -d= -f2)
printf 'DONE id=%s sha256=%s bytes=1 seconds=1.0\n' "$id" "$(sha256sum "$img" | cut -d' ' -f1)" >&$c
read -r -t 5 verdict <&$c || verdict=
exec {c}>&-
echo "$verdict" | has 'KEPT.*reason=size-mismatch' && [ -d "$MR/tftp/$D2" ] && pass "right digest, wrong size: KEPT" ||
	fail "size check: '$verdict'"
# Two failed attempts (max 2): marked failed, no more jobs.
"$NF" --root "$MR" status --json | has "\"mac\":\"$D2\".*\"state\":\"failed\".*\"attempts\":2" &&
	pass "after --max-attempts the worker is marked failed" || fail "status after 2 attempts: $("$NF" --root "$MR" status --json | grep "$D2")"
rc=0; report "$M2" "$T/card2" 2>"$T/w2.log" || rc=$?
[ $rc -eq 3 ] && grep -q 'no job.*failed' "$T/w2.log" && [ -d "$MR/tftp/$D2" ] && pass "a failed worker gets NOJOB, dir kept" ||
	fail "failed worker: rc=$rc $(cat "$T/w2.log")"

# 3. A corrupt catalog image: the engine refuses it (FAIL), the dir stays.
"$NF" --root "$MR" enroll "$M3" --image pios >/dev/null
stored=$(catalog_file pios)
cp "$stored" "$T/pios.bak"
corrupt_file "$stored"
rc=0; report "$M3" "$T/card3" 2>"$T/w3.log" || rc=$?
cp "$T/pios.bak" "$stored"
[ $rc -eq 1 ] && [ -d "$MR/tftp/b8-27-eb-00-00-03" ] && "$NF" --root "$MR" history "$M3" | has 'failed .*decode: ' &&
	pass "corrupt image: FAIL recorded with the engine's reason, dir kept" || fail "corrupt image: rc=$rc $(cat "$T/w3.log")"

# 4. Refusals: unknown MAC, wrong token, another MAC's token.
hello_answer() { # HELLO fields after v=1 -> the master's answer line (empty: none in 5 s)
	local ans
	exec {c}<>"/dev/tcp/127.0.0.1/$MPORT"
	printf 'HELLO v=1 %s\n' "$1" >&$c
	read -r -t 5 ans <&$c || ans=
	exec {c}>&-
	echo "$ans"
}
tok3=$(token_of "$M3")
for hello in "mac=02:00:00:00:00:99 token=$tok3" "mac=$M3 token=00000000000000000000000000000000" \
	"mac=$M3 token=$tok2" "mac=$M3 token=${tok3}00" "mac=../../etc token=$tok3"; do
	ans=$(hello_answer "$hello")
	case "$ans" in ERR*) ;; *) fail "HELLO $hello answered '$ans'" ;; esac
done
[ -d "$MR/tftp/b8-27-eb-00-00-03" ] && [ -d "$MR/tftp/$D2" ] && pass "unknown MAC, wrong or foreign token: refused, nothing removed" ||
	fail "a refused HELLO removed a dir"
grep -q "refused 'b8-27-eb-00-00-03' from 127.0.0.1:[0-9]*: wrong token" "$T/daemon.log" &&
	grep -q "refused '02-00-00-00-00-99' from 127.0.0.1:[0-9]*: not enrolled" "$T/daemon.log" &&
	pass "refusals are logged with their reason (not enrolled, wrong token)" || fail "refusal log: $(grep refused "$T/daemon.log")"

# The board a worker names in HELLO (model, serial) is kept with its job;
# values that are not one clean line of text are refused.
M5=b8:27:eb:00:00:05
"$NF" --root "$MR" enroll "$M5" --image pios >/dev/null
tok5=$(token_of "$M5")
hello5() { hello_answer "mac=$M5 token=$tok5 $1"; } # extra HELLO fields -> the answer line
n=0
for bad in "model=Pi%0Aevil" "model=%20Pi" "model=Pi%7F" "model=$(printf 'x%.0s' $(seq 81))" "serial=00%20ab" \
	"serial=../x/%2F" "serial=$(printf '%033d' 0)" "model=Pi serial="; do
	ans=$(hello5 "$bad")
	[ "$ans" = "ERR reason=bad-hello" ] && n=$((n + 1)) || fail "HELLO with $bad answered '$ans'"
done
[ "$n" = 8 ] && pass "8 hostile board fields in HELLO: ERR bad-hello"
ans=$(hello5 "model=Raspberry%20Pi%203%20Model%20B%20Rev%201.2 serial=00000000c0ffee42")
[ "${ans%% *}" = JOB ] && "$NF" --root "$MR" history "$M5" | has "^  [0-9:]* Raspberry Pi 3 Model B Rev 1.2, serial 00000000c0ffee42$" &&
	grep -q "$(echo "$M5" | tr : -) (127.0.0.1:[0-9]*, Raspberry Pi 3 Model B Rev 1.2, serial 00000000c0ffee42) starts job" "$T/daemon.log" &&
	pass "the board named in HELLO is in the worker's history and the daemon's log" ||
	fail "board: '$ans'; $("$NF" --root "$MR" history "$M5" | grep -A2 board)"

# 5. Hostile input: each connection closed, the daemon alive.
hostile() { # name, bytes on stdin
	local name=$1
	exec {c}<>"/dev/tcp/127.0.0.1/$MPORT"
	cat >&$c
	local t0=$SECONDS
	# The daemon must close the connection (EOF or reset); 124: still open.
	local rc=0
	timeout 8 cat <&$c >/dev/null 2>&1 || rc=$?
	exec {c}>&-
	[ $rc -ne 124 ] && pass "$name: connection closed ($((SECONDS - t0)) s)" || fail "$name: connection left open"
}
printf 'DONE id=1 sha256=00 bytes=1 seconds=1\n' | hostile "DONE before HELLO"
printf 'hello lower case\n' | hostile "malformed verb"
printf 'HELLO v=1 mac=%s mac=%s token=x\n' "$M3" "$M3" | hostile "repeated key"
printf 'HELLO v=1 token=%%zz\n' | hostile "bad percent escape"
head -c 3000 /dev/zero | tr '\0' 'A' | hostile "oversized line"
head -c 4096 /dev/urandom | hostile "random garbage"
printf 'HELLO v=1 mac=b8:27' | hostile "slow loris (half a line)"
: | hostile "silent client (no HELLO)"
kill -0 "$DAEMON_PID" && pass "the daemon survived hostile input" || fail "the daemon died"

# Hundreds of idle connections cost little; the daemon keeps serving.
fds=()
for i in $(seq 1 300); do exec {f}<>"/dev/tcp/127.0.0.1/$MPORT"; fds+=("$f"); done
rss=$(awk '/VmRSS/ {print $2}' "/proc/$DAEMON_PID/status")
exec {c}<>"/dev/tcp/127.0.0.1/$MPORT"
printf 'HELLO v=1 mac=%s token=%s\n' "$M3" "$tok3" >&$c
read -r -t 5 ans <&$c || ans=
exec {c}>&-
for f in "${fds[@]}"; do exec {f}>&-; done
# ASan's shadow memory and quarantine add to it in the sanitizer build.
rss_max=16384
[ -n "${NETFLASH_SANITIZE_BUILD:-}" ] && rss_max=24576
[ "$rss" -lt "$rss_max" ] && [ "${ans%% *}" = JOB ] && pass "300 idle connections: daemon RSS $rss KiB, still answering" ||
	fail "idle connections: rss=$rss KiB answer='$ans'"

# 6. SIGKILL the daemon mid-flash, restart it: the worker finishes, the dir
# is removed exactly once.
M4=b8:27:eb:00:00:04 D4=b8-27-eb-00-00-04
random_disk "$T/big.img" $((150 * 1048576))
xz -T2 -0 --block-size=8MiB -c "$T/big.img" >"$T/big.img.xz"
"$NF" --root "$MR" image add "$T/big.img.xz" --name big --keep-format >/dev/null
"$NF" --root "$MR" enroll "$M4" --image big >/dev/null
report "$M4" "$T/card4" 2>"$T/w4.log" &
wpid=$!; register_pid "$wpid"
wait_for "$T/daemon.log" "$D4.*starts job" 5 || :
sleep 0.5
daemon_kill
sleep 1
daemon_start --max-attempts 2 --slow-timeout 2
rc=0; wait "$wpid" || rc=$?
if [ $rc -eq 0 ] && [ ! -e "$MR/tftp/$D4" ] && cmp -s "$T/big.img" "$T/card4"; then
	pass "daemon killed mid-flash and restarted: the worker finished and was released"
else
	fail "kill -9: rc=$rc $(tail -3 "$T/w4.log")"
fi
[ "$(grep -c "$D4 job [0-9]* verified" "$T/daemon.log")" -eq 1 ] && [ "$("$NF" --root "$MR" history "$M4" | grep -c ' done ')" -eq 1 ] &&
	pass "released exactly once, one job in history" || fail "releases: $(grep "$D4" "$T/daemon.log")"
grep -q "$D4 resumed job" "$T/daemon.log" && pass "the worker resumed its job after the restart" || fail "no resume logged"

# 7. An image added with --not-a-disk: the JOB says disk=0 and the worker
# writes it; the same bytes under a manifest that claims a disk are refused
# by the worker before its card is touched.
M6=b8:27:eb:00:00:06 D6=b8-27-eb-00-00-06 M7=b8:27:eb:00:00:07
head -c $((3 * 1048576)) /dev/urandom >"$T/blob.bin"
xz -0 -c "$T/blob.bin" >"$T/blob.bin.xz"
"$NF" --root "$MR" image add "$T/blob.bin.xz" --name blob --not-a-disk >/dev/null 2>&1
"$NF" --root "$MR" enroll "$M6" --image blob >/dev/null
"$NF" --root "$MR" enroll "$M7" --image blob >/dev/null
ans=$(hello_answer "mac=$M7 token=$(token_of "$M7")")
echo "$ans" | has '^JOB .* disk=0' && pass "JOB carries disk=0 for a --not-a-disk image" || fail "JOB: '$ans'"
sed -i 's/^disk=0$/disk=1/' "$MR/images/blob.manifest"
pattern_file "$T/card6" $((8 * 1048576))
rc=0; report "$M6" "$T/card6" 2>"$T/w6.log" || rc=$?
[ $rc -eq 1 ] && has "is not a disk image: no partition table" "$T/w6.log" && [ -d "$MR/tftp/$D6" ] &&
	[ "$(first_mib "$T/card6")" = "$(pattern_file "$T/pat6" 1048576 && first_mib "$T/pat6")" ] &&
	pass "a blob without disk=0 in its JOB: the worker refuses it, card untouched" || fail "blob as disk: rc=$rc $(cat "$T/w6.log")"
sed -i 's/^disk=1$/disk=0/' "$MR/images/blob.manifest"
rc=0; report "$M6" "$T/card6" 2>"$T/w6.log" || rc=$?
[ $rc -eq 0 ] && cmp -s -n $((3 * 1048576)) "$T/blob.bin" "$T/card6" && [ ! -e "$MR/tftp/$D6" ] &&
	pass "with disk=0 the worker writes the blob and is released" || fail "blob: rc=$rc $(cat "$T/w6.log")"
# 8. A full ROOT: the release of a verified DONE cannot be recorded; the
# log names the reason (it said "image larger than target" for ENOSPC) and
# the worker keeps its dir and sends DONE again later.
M8=b8:27:eb:00:00:08 D8=b8-27-eb-00-00-08
"$NF" --root "$MR" enroll "$M8" --image pios >/dev/null
mkdir -p "$MR/state/intent"
mount -t tmpfs -o size=64k tmpfs "$MR/state/intent"
register_mount "$MR/state/intent"
dd if=/dev/zero of="$MR/state/intent/.fill" bs=4k status=none 2>/dev/null || :
sha=$(sha256sum "$img" | cut -d' ' -f1)
exec {c}<>"/dev/tcp/127.0.0.1/$MPORT"
printf 'HELLO v=1 mac=%s token=%s\n' "$M8" "$(token_of "$M8")" >&$c
read -r -t 5 job <&$c || job=
id=$(sed -n 's/^JOB id=\([0-9]*\).*/\1/p' <<<"$job")
printf 'DONE id=%s sha256=%s bytes=%s seconds=1.0\n' "$id" "$sha" "$(stat -c %s "$img")" >&$c
read -r -t 5 ans <&$c || ans=
exec {c}>&-
umount "$MR/state/intent"
grep -q "$D8: verified, but cannot record the release: No space left on device" "$T/daemon.log" &&
	[ -d "$MR/tftp/$D8" ] && pass "a full ROOT: the release is not recorded, the log says No space left on device" ||
	fail "full ROOT: answer '$ans'; $(grep "$D8" "$T/daemon.log" | tail -2)"
finish
