#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Card health with real block devices: the fake-capacity probe against a
# loop device over a counterfeit card (tests/fixtures/fakecard: a FUSE file
# that claims more than it stores and wraps), a healthy card whose data
# outside the image survives the probe, the stall watchdog on a card whose
# write hangs, and what the master records of it all.
source "$(dirname "$0")/../lib.sh"

[ -x "$FAKECARD" ] || { echo "SKIP: no fakecard fixture (libfuse3-dev missing)"; exit 77; }
img=$(test_image 24)
MiB=1048576

# 1. A healthy card: the probe passes, and what was on the card past the
# image is still there (every probe block was put back).
pattern_file "$T/good" $((64 * MiB))
loop_attach GOOD "$T/good"
if "$NFW" --progress=none --probe-capacity "$img.mt.xz" "$GOOD" 2>"$T/good.log"; then
	grep -q "capacity probe passed: [0-9]* markers up to 64.0 MiB read back" "$T/good.log" &&
		pass "healthy card: the probe passes and says so" || fail "healthy card log: $(cat "$T/good.log")"
else
	fail "healthy card refused: $(cat "$T/good.log")"
fi
size=$(stat -c %s "$img")
cmp -s -n "$size" "$img" "$GOOD" && pass "healthy card: the image is on it" || fail "healthy card: image differs"
pattern_file "$T/want" $((64 * MiB - size))
cmp -s -i "$size:0" "$GOOD" "$T/want" && pass "healthy card: data past the image survived the probe" ||
	fail "healthy card: the probe left marks past the image: $(cmp -i "$size:0" "$GOOD" "$T/want" 2>&1 | head -1)"

# 2. A counterfeit card: claims 128 MiB, holds 32 MiB, wraps. The 24 MiB
# image would fit in what it really holds; only the probe can tell.
fake_card fake $((128 * MiB)) $((32 * MiB))
[ "$(blockdev --getsize64 "$FAKE_LOOP")" = $((128 * MiB)) ] || fail "the fake card does not claim 128 MiB"
expect_fail "fake card" "fake card: it claims 128.0 MiB, but data written at .* lands at .* \(it wraps: about 32.0 MiB real\)" \
	"$NFW" --progress=none --probe-capacity "$img.mt.xz" "$FAKE_LOOP" && pass "a fake card is refused, and the real size named"
head_not_written "fake card" "$FAKE_LOOP" "$img"
"$NFW" --progress=none "$img.mt.xz" "$FAKE_LOOP" 2>"$T/default.log" && fail "the probe did not run by default" ||
	has "fake card: it claims 128.0 MiB" "$T/default.log" && pass "the probe runs by default"
"$NFW" --progress=none --no-probe-capacity "$img.mt.xz" "$FAKE_LOOP" 2>/dev/null && pass "(without the probe, the 24 MiB image fits the 32 MiB it holds)" ||
	fail "the fake card failed even without the probe"

# 3. Through the master: the identity and the verdict are recorded, and a
# card that fails the probe marks the worker failed at once (no retries).
master_setup "$img.mt.xz" pios
daemon_start
M1=b8:27:eb:00:00:01 D1=b8-27-eb-00-00-01 M2=b8:27:eb:00:00:02 D2=b8-27-eb-00-00-02
"$NF" --root "$MR" enroll "$M1" --image pios >/dev/null
report "$M1" "$FAKE_LOOP" --probe-capacity 2>"$T/w1.log" && fail "the worker flashed a fake card"
"$NF" --root "$MR" status --json | has "\"mac\":\"$D1\".*\"state\":\"failed\".*\"attempts\":1,.*probe: .*fake card" &&
	pass "master: the worker is marked failed after one probe failure, with the reason" ||
	fail "status: $("$NF" --root "$MR" status --json)"
"$NF" --root "$MR" history "$M1" >"$T/h1"
grep -q "identity: $FAKE_LOOP: not an SD/MMC card (no CID), 128.0 MiB$" "$T/h1" &&
	grep -q "probe: fake card: it claims 128.0 MiB" "$T/h1" &&
	pass "history shows the card's identity and the probe's verdict" || fail "history: $(cat "$T/h1")"
[ -d "$MR/tftp/$D1" ] && pass "the worker keeps netbooting (its dir stays)" || fail "the dir of a failed worker went"

# A write-protected card is as final as a fake one: failed at once.
M3=b8:27:eb:00:00:03 D3=b8-27-eb-00-00-03
truncate -s $((64 * MiB)) "$T/ro.card"
loop_attach RO_LOOP "$T/ro.card" --read-only
"$NF" --root "$MR" enroll "$M3" --image pios >/dev/null
report "$M3" "$RO_LOOP" 2>"$T/w3.log" && fail "the worker flashed a read-only card"
"$NF" --root "$MR" status --json | has "\"mac\":\"$D3\".*\"state\":\"failed\".*\"attempts\":1,.*read-only: .*is read-only" &&
	pass "a read-only card marks the worker failed after one attempt, with the reason" ||
	fail "read-only: $("$NF" --root "$MR" status --json | grep "$D3"; cat "$T/w3.log")"
loop_detach "$RO_LOOP"

# 4. The stall watchdog: a card whose write hangs 2.5 s (limit 1 s) is
# reported while it hangs and in the summary; the flash still succeeds.
loop_detach "$FAKE_LOOP"
fake_card slow $((64 * MiB)) $((64 * MiB)) --stall-at $((8 * MiB)) --stall-ms 2500
"$NF" --root "$MR" enroll "$M2" --image pios >/dev/null
if report "$M2" "$FAKE_LOOP" --no-probe-capacity --stall 1 --min-mbps 100000 2>"$T/w2.log"; then
	pass "a stalling card is still flashed and released"
else
	fail "stalling card: $(cat "$T/w2.log")"
fi
grep -q "card stall: a write at .* has not finished after [0-9.]* s" "$T/w2.log" &&
	grep -Eq "card stalls: 1 write\(s\) took 1 s or longer; the slowest ([2-9]|[1-9][0-9]+)\.[0-9] s" "$T/w2.log" &&
	pass "the stall is reported while it hangs and in the summary" || fail "stall log: $(cat "$T/w2.log")"
"$NF" --root "$MR" history "$M2" >"$T/h2"
grep -q "stall: a write at .* has not finished" "$T/h2" && grep -q "slow: the card wrote .* MB/s, below the floor of 100000.0 MB/s" "$T/h2" &&
	pass "history shows the stall and a card below the --min-mbps floor" || fail "history: $(cat "$T/h2")"
loop_detach "$FAKE_LOOP"

# 5. The issue's card, without the probe: it claims 256 MiB and keeps 100;
# a 105 MiB image wraps its last 5 MiB onto MiB 0-4, long after those
# blocks were read back. The re-read after the last write catches it.
fake_card wrap $((256 * MiB)) $((100 * MiB))
random_disk "$T/wrap.img" $((105 * MiB))
expect_fail "a wrapping card without the probe" "no longer holds the image at offset [0-9]+ once everything was written .*fake-capacity" \
	"$NFW" --progress=none --no-probe-capacity "$T/wrap.img" "$FAKE_LOOP" &&
	head_not_written "wrapping card" "$FAKE_LOOP" "$T/wrap.img" &&
	pass "a card that wraps after the early blocks were verified is refused, its head never written"
loop_detach "$FAKE_LOOP"

# 6. A card that acknowledges writes past 8 MiB and keeps its old data
# (random here): the verifier says the block reads back what was there.
dd if=/dev/urandom of="$T/drop.back" bs=1M count=64 status=none
fake_card drop $((64 * MiB)) $((64 * MiB)) --drop-writes-from $((8 * MiB))
expect_fail "a card that drops writes" "does not hold the image's 1 MiB block at offset [0-9]+: it reads back its previous content: the card acknowledged the write and kept the old data" \
	"$NFW" --progress=none --no-probe-capacity "$img" "$FAKE_LOOP" &&
	head_not_written "dropping card" "$FAKE_LOOP" "$img" &&
	pass "a card that drops writes is refused, and the message says the block kept its previous content"
loop_detach "$FAKE_LOOP"

# 7. Zero runs (issue 17): on a simulated SD card behind a loop device
# (the loop sends discard and write-zeroes to the card's erase), counting
# the bytes the card really wrote. A card that erases to 0x00 is written
# only where the image is not zero; one that erases to 0xFF, or keeps its
# old data, is found on the first run and gets the zeros written. Every
# block is verified either way.
nonzero=$(nonzero_bytes "$img")
for mode in zero ones keep; do
	dd if=/dev/urandom of="$T/sd-$mode.back" bs=1M count=32 status=none
	fake_card "sd-$mode" $((32 * MiB)) $((32 * MiB)) --erase "$mode" --stats "$T/sd-$mode.stats"
	"$NFW" --progress=none --no-probe-capacity "$img" "$FAKE_LOOP" 2>"$T/sd-$mode.log" ||
		fail "sd card erasing to $mode: $(cat "$T/sd-$mode.log")"
	cmp -s -n "$size" "$img" "$FAKE_LOOP" || fail "sd card erasing to $mode: the card is not the image"
	fake_card_done "sd-$mode"
	read -r wr rd er < <(sed 's/[a-z]*=//g' "$T/sd-$mode.stats")
	echo "MEASURE sd card erasing to $mode: wrote $wr bytes, read $rd, erased $er (image $size bytes, $nonzero non-zero)"
	case $mode in
	zero) [ "$wr" -le $((nonzero + 2 * MiB)) ] && [ "$er" -ge $((size - nonzero - MiB)) ] &&
		has "zero runs are made with write-zeroes (tried on a marker: 1048576 bytes at 1048576 written, made with write-zeroes, read back as zeros)" "$T/sd-$mode.log" &&
		pass "a card that erases to 0x00: only the image's non-zero MiB are written ($wr of $size bytes)" ||
		fail "erase to 0x00: wrote $wr, erased $er; $(cat "$T/sd-$mode.log")" ;;
	ones) [ "$wr" -ge "$size" ] && has "zero runs are written: after write-zeroes the card read back 0xFF (it erases to ones)" "$T/sd-$mode.log" &&
		pass "a card that erases to 0xFF: found on the first run, zeros written, verified" ||
		fail "erase to 0xFF: wrote $wr; $(cat "$T/sd-$mode.log")" ;;
	keep) [ "$wr" -ge "$size" ] && has "zero runs are written: after write-zeroes the card read back old data (the marker written there)" "$T/sd-$mode.log" &&
		pass "a card that keeps old data after erase: found on the first run, zeros written, verified" ||
		fail "erase keeps data: wrote $wr; $(cat "$T/sd-$mode.log")" ;;
	esac
done
# 8. The issue's card: its discard keeps old data, and the image's first
# zero run already holds zeros there (as an interrupted flash leaves a
# card: the first MiB zeroed). Reading back the first zeroed run proves
# nothing then; the method is tried on a marker, so it is found out
# before any zero run is trusted, and the card is flashed.
dd if=/dev/urandom of="$T/kept.back" bs=1M count=32 status=none
dd if=/dev/zero of="$T/kept.back" bs=1M count=4 conv=notrunc status=none
fake_card kept $((32 * MiB)) $((32 * MiB)) --erase keep
"$NFW" --progress=none --no-probe-capacity "$img" "$FAKE_LOOP" 2>"$T/kept.log" &&
	cmp -s -n "$size" "$img" "$FAKE_LOOP" &&
	has "zero runs are written: after write-zeroes the card read back old data (the marker written there)" "$T/kept.log" &&
	pass "a card whose discard keeps data, with zeros where the first run goes: found on a marker, flashed" ||
	fail "discard keeps data over zeros: $(cat "$T/kept.log")"
fake_card_done kept

# 9. A card whose discard works low down but keeps old data from 16 MiB
# on: the trial passes, a later zero run reads back old data. That block is
# rewritten with zeros and the card switched to writing zeros (said once,
# and sent to the master as a card finding); the card is not failed.
dd if=/dev/urandom of="$T/part.back" bs=1M count=32 status=none
fake_card part $((32 * MiB)) $((32 * MiB)) --erase zero --erase-keep-from $((16 * MiB))
M4=b8:27:eb:00:00:04
"$NF" --root "$MR" enroll "$M4" --image pios >/dev/null
if report "$M4" "$FAKE_LOOP" --no-probe-capacity 2>"$T/part.log"; then
	cmp -s -n "$size" "$img" "$FAKE_LOOP" || fail "partial discard: the card is not the image"
	"$NF" --root "$MR" history "$M4" |
		has "zero: zero runs: [0-9]* block(s) made without writing did not read back as zeros (the first at offset 19922944): rewritten with zeros" &&
		pass "a zero run that kept old data is rewritten, the card switched to zeros, the master told; the worker released" ||
		fail "partial discard: $(cat "$T/part.log"); $("$NF" --root "$MR" history "$M4" | tail -5)"
else
	fail "partial discard: the card was failed: $(cat "$T/part.log")"
fi
fake_card_done part

# 10. The real size the probe names, within 10%, where the wrap is not at a
# power of two (it said "about 200.0 MiB" for 100 and "about 96 GiB" for
# 64 MiB behind a 3 TiB claim), and on a card that loses writes past its
# real size instead of wrapping.
for c in "$((256 * MiB)) $((100 * MiB))" "$((3 << 40)) $((64 * MiB))" "$((1 << 30)) $((200 * MiB))" \
	"$((128 * MiB)) $((40 * MiB)) --drop-writes-from $((40 * MiB))"; do
	read -r claimed real opts <<<"$c"
	back=$real
	[ -z "$opts" ] || back=$claimed
	# shellcheck disable=SC2086
	fake_card "size-$real" "$claimed" "$back" $opts
	"$NFW" --progress=none --probe-capacity "$img.mt.xz" "$FAKE_LOOP" 2>"$T/size.log" && fail "a fake card passed the probe"
	said=$(grep -o 'about [0-9.]* [MG]iB real' "$T/size.log" | head -1)
	python3 -c 'import sys
v, u = sys.argv[1].split()[1:3]
v = float(v) * (1 << (20 if u == "MiB" else 30))
sys.exit(0 if abs(v - int(sys.argv[2])) <= 0.1 * int(sys.argv[2]) else 1)' "${said:-about 0 MiB}" "$real" &&
		pass "claims $claimed, holds $real: the probe says '$said'" ||
		fail "claims $claimed, holds $real: $(grep error: "$T/size.log")"
	fake_card_done "size-$real"
done

# A plain loop device over a file: real write-zeroes (the file's holes).
truncate -s $((32 * MiB)) "$T/plain.card"
loop_attach PLAIN "$T/plain.card"
"$NFW" --progress=none --no-probe-capacity "$img" "$PLAIN" 2>"$T/plain.log" &&
	has "zero runs are made with write-zeroes" "$T/plain.log" && has "$(( (size - nonzero) / MiB )).0 MiB zero skipped" "$T/plain.log" &&
	pass "a loop device: zero runs made with write-zeroes, every zero MiB skipped" || fail "loop: $(cat "$T/plain.log")"
loop_detach "$PLAIN"
finish
