#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A card pulled mid-flash (a USB reader unplugged, a worker losing power)
# never holds its old boot sector over new data: the first MiB is wiped on
# the card, durably, before any image byte, and written last (its boot
# sector after the rest). The card is tests/fixtures/fakecard behind a loop
# device with discard: once pulled, every request fails with EIO and its
# backing file is what the card holds. It is pulled at each step of a
# flash; afterwards the card must be untouched (nothing written yet) or
# have a zero boot sector, never the old head over the new image.
source "$(dirname "$0")/../lib.sh"

[ -x "$FAKECARD" ] || { echo "SKIP: no fakecard fixture (libfuse3-dev missing)"; exit 77; }
MiB=1048576
CARD=$((96 * MiB))

# The old card: a disk with its partition at 4 MiB. The new image: 80 MiB
# (more than one 64 MiB flush interval) with its partition at 1 MiB, random
# but for a zero run in the middle (made without writing where it can be).
random_disk "$T/old.img" "$CARD"
echo 'start=8192, type=c' | sfdisk -q --no-reread --no-tell-kernel "$T/old.img" >/dev/null
random_disk "$T/new.img" $((80 * MiB))
dd if=/dev/zero of="$T/new.img" bs=1M seek=30 count=8 conv=notrunc status=none

# state CARDFILE: what the card holds, as one word:
#   untouched  the old card, byte for byte
#   zero-head  its first MiB is zeros
#   zero-mbr   its first 4 KiB are zeros, the rest of the first MiB is the
#              new image's (pulled between the head's two writes)
#   complete   the new image, whole
#   old-head   the old first MiB with anything else changed: the fault
#   other      anything else
state() {
	python3 - "$1" "$T/old.img" "$T/new.img" <<'EOF'
import sys
card, old, new = (open(p, "rb").read() for p in sys.argv[1:4])
M = 1 << 20
if card == old:
    print("untouched")
elif card[:len(new)] == new:
    print("complete")
elif card[:M] == bytes(M):
    print("zero-head")
elif card[:4096] == bytes(4096) and card[4096:M] == new[4096:M]:
    print("zero-mbr")
elif card[:M] == old[:M]:
    print("old-head")
else:
    print("other")
EOF
}

# pull NAME WHEN EXPECTED...: flashes the new image onto a fresh copy of the
# old card, pulled at WHEN (fakecard --pull-when); the flash must fail and
# the card end in one of the EXPECTED states. $KIND is the card's kind:
# plain (no discard, no write-zeroes: zeros are written as data) or
# discard (erases to zeros).
pull() {
	local name=$KIND-$1 when=$2 got rc=0
	shift 2
	cp "$T/old.img" "$T/$name.back"
	fake_card_mount "$name" "$CARD" "$T/$name.back" "${ERASE[@]}" --pull-when "$when"
	loop_attach FAKE_LOOP "$FAKE_FILE"
	"$NFW" --progress=none --no-probe-capacity "$T/new.img" "$FAKE_LOOP" >"$T/$name.log" 2>&1 || rc=$?
	fake_card_done "$name"
	got=$(state "$T/$name.back")
	if [ $rc -eq 0 ] || has "wrote and verified" "$T/$name.log"; then
		fail "pulled $name ($when): the flash was reported good: $(tail -3 "$T/$name.log")"
	elif [[ " $* " != *" $got "* ]]; then
		fail "pulled $name ($when): the card is '$got', expected $*; $(grep -m1 error: "$T/$name.log")"
	else
		pass "pulled $name ($when): the card is $got; the flash failed: $(grep -m1 -o 'error: .\{0,90\}' "$T/$name.log")"
	fi
}

for KIND in plain discard; do
ERASE=()
[ $KIND = discard ] && ERASE=(--erase zero)
# At the first write (the wipe itself): nothing of the new image landed.
pull first-write written:0 untouched
# The wipe's own flush fails (the first fsync after a write): the wipe
# went through the direct descriptor, so it is on the card.
pull wipe-flush fsync:1 zero-head
# Before the first 64 MiB flush, after it, and while reading back.
pull before-flush written:$((8 * MiB)) zero-head
pull after-flush written:$((70 * MiB)) zero-head
pull verify read:$((40 * MiB)) zero-head
# During the final head write: its tail is written and flushed before its
# first 4 KiB, so the boot sector is still zero.
pull head-write mbr:$((16 * MiB)) zero-mbr zero-head
done

# A worker's job through the master (the same engine): pulled before the
# first flush, the card's first MiB is zeros, the master is told the job
# failed and keeps the worker netbooting.
img=$(test_image 24)
master_setup "$img.mt.xz" pios
daemon_start
MAC=b8:27:eb:00:00:31 D=b8-27-eb-00-00-31
"$NF" --root "$MR" enroll "$MAC" --image pios >/dev/null
cp "$T/old.img" "$T/job.back"
fake_card_mount job "$CARD" "$T/job.back" --pull-when written:$((8 * MiB))
loop_attach FAKE_LOOP "$FAKE_FILE"
report "$MAC" "$FAKE_LOOP" --no-probe-capacity 2>"$T/job.log" && fail "a pulled card's job was reported good"
fake_card_done job
if python3 -c 'import sys; sys.exit(open(sys.argv[1], "rb").read(1 << 20) != bytes(1 << 20))' "$T/job.back" &&
	[ -d "$MR/tftp/$D" ] && "$NF" --root "$MR" status --json | has "\"mac\":\"$D\".*\"last_error\":\"write: "; then
	pass "a worker's card pulled mid-job: its first MiB is zeros, the job failed at write, the worker still netboots"
else
	fail "pulled worker job: $(cat "$T/job.log"); $("$NF" --root "$MR" status --json | grep -o "\"mac\":\"$D\".\{0,300\}")"
fi

# And a card that is not pulled: the same fixture ends complete.
cp "$T/old.img" "$T/whole.back"
fake_card_mount whole "$CARD" "$T/whole.back" --erase zero
loop_attach FAKE_LOOP "$FAKE_FILE"
"$NFW" --progress=none --no-probe-capacity "$T/new.img" "$FAKE_LOOP" 2>"$T/whole.log" ||
	fail "unpulled card: $(cat "$T/whole.log")"
fake_card_done whole
[ "$(state "$T/whole.back")" = complete ] && pass "a card that is not pulled ends with the new image whole" ||
	fail "unpulled card: $(state "$T/whole.back")"
finish
