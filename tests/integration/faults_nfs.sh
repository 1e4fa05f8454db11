#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The NFS server dies mid-stream: restarted in time, the flash resumes and
# completes; gone for good, the flash fails cleanly after --retry-seconds,
# first MiB not written. Also: no server, wrong export, missing file.
source "$(dirname "$0")/../lib.sh"

mkdir -p "$T/export"
# Incompressible, so the stream takes long enough to kill the server during it.
random_disk "$T/ref.img" $((160 * 1048576))
xz -T2 -0 --block-size=8MiB -c "$T/ref.img" >"$T/export/big.img.xz"
ganesha_start "$T/export" "$T"
url=$(ganesha_url big.img.xz)

# Wait until the flash is under way (progress shows source bytes read).
wait_progress() {
	local i
	for i in $(seq 1 200); do
		grep -q '"source_read":[1-9][0-9]\{6,\}' "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# 1. Killed and restarted: resumes at the current offset.
pattern_file "$T/card" $((200 * 1048576))
"$NFW" --progress=json --timeout 2 --retry-seconds 30 "$url" "$T/card" >"$T/p1.log" 2>"$T/e1.log" &
pid=$!; register_pid "$pid"
wait_progress "$T/p1.log" || fail "restart: no progress seen"
ganesha_kill
sleep 2
ganesha_restart
rc=0; wait "$pid" || rc=$?
if [ $rc -eq 0 ] && cmp -s -n "$(stat -c %s "$T/ref.img")" "$T/ref.img" "$T/card"; then
	grep -q '"event":"done".*"reconnects":[1-9]' "$T/p1.log" && pass "server restarted mid-stream: resumed and completed" ||
		fail "restart: completed but no reconnect recorded: $(tail -1 "$T/p1.log")"
else
	fail "restart: rc=$rc $(cat "$T/e1.log")"
fi

# 2. Killed for good: clean failure after the retry window, head not written.
pattern_file "$T/card" $((200 * 1048576))
"$NFW" --progress=json --timeout 2 --retry-seconds 3 "$url" "$T/card" >"$T/p2.log" 2>"$T/e2.log" &
pid=$!; register_pid "$pid"
wait_progress "$T/p2.log" || fail "dead: no progress seen"
ganesha_kill
rc=0; wait "$pid" || rc=$?
if [ $rc -eq 1 ] && grep -q "reading 'nfs://.*' failed at offset [0-9]*: .*server did not come back in time" "$T/e2.log"; then
	head_not_written "server gone" "$T/card" "$T/ref.img" && pass "server gone for good: clean failure, head not written"
else
	fail "dead server: rc=$rc $(cat "$T/e2.log")"
fi

# 3. Ctrl-C (SIGINT) mid-stream: exit 1, says so, head not written.
ganesha_restart
pattern_file "$T/card" $((200 * 1048576))
"$NFW" --progress=json "$url" "$T/card" >"$T/p3.log" 2>"$T/e3.log" &
pid=$!; register_pid "$pid"
wait_progress "$T/p3.log" || fail "sigint: no progress seen"
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
[ $rc -eq 1 ] && grep -q "interrupted; the first MiB of '.*card' was not written, so it will not boot" "$T/e3.log" &&
	head_not_written "sigint" "$T/card" "$T/ref.img" && pass "SIGINT mid-flash: clean failure, head not written" ||
	fail "sigint: rc=$rc $(cat "$T/e3.log")"

# 4. Errors at open: one line each.
expect_fail "missing file on server" "cannot open 'nfs://.*nope.img.*': open: .*(NOENT|No such)" \
	"$NFW" "$(ganesha_url nope.img)" "$T/card2" && pass "missing file on server"
bad=$(ganesha_url big.img.xz | sed 's|/export/|/wrong/|')
expect_fail "wrong export" "cannot open 'nfs://.*': mount: " "$NFW" "$bad" "$T/card2" && pass "wrong export"
port=$("$NETFLASH_BUILD/tests/freeport")
expect_fail "no server" "cannot open 'nfs://.*': mount: " \
	"$NFW" "nfs://127.0.0.1/export/x.img?version=3&nfsport=$port&mountport=$port" "$T/card2" && pass "no server"
[ ! -e "$T/card2" ] && pass "target not created when the source fails" || fail "target created on source failure"

# Malformed URLs and hostile names: one printable error line each.
args="version=3&nfsport=$GANESHA_NFS_PORT&mountport=$GANESHA_MNT_PORT"
expect_fail "URL without a path" "cannot open 'nfs://127.0.0.1\?.*': " "$NFW" "nfs://127.0.0.1?$args" "$T/card2" &&
	pass "URL without a path"
expect_fail "URL is the export dir" "cannot open 'nfs://.*': .*(directory|Is a dir|no file)" "$NFW" "nfs://127.0.0.1/export/?$args" "$T/card2" &&
	pass "URL naming a directory"
expect_fail "empty URL" "cannot open 'nfs://': " "$NFW" "nfs://" "$T/card2" && pass "empty URL"
expect_fail "control characters in a name" "cannot open 'nfs://127.0.0.1/export/a\?b.img" "$NFW" \
	"nfs://127.0.0.1/export/a"$'\n'"b.img?$args" "$T/card2" && pass "control characters escaped in the error line"
finish
