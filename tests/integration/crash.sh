#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Crash safety of the master: each multi-step change (enroll, enroll
# --force with provisioning, release, netflashd's release on DONE) is killed
# with SIGKILL just before each of its writes, renames, unlinks, mkdirs,
# fsyncs and database writes in turn (strace -e inject=SYSCALL:signal=KILL:
# when=N, walking every N), then `netflash recover` runs and the invariants
# are checked from outside: enrolled <=> a TFTP dir with the database's
# token (and its provisioning patch, with its own hostname); released =>
# no dir, no patch; no intent, .swap-/.new-/.del- dir or .patch.old left.
source "$(dirname "$0")/../lib.sh"

NF="$NETFLASH_BUILD/master-tools/netflash"
NFD="$NETFLASH_BUILD/master-tools/netflashd"
command -v strace >/dev/null || { echo "crash: no strace" >&2; exit 77; }
img=$(test_image 16)
sha=$(sha256sum "$img" | cut -d' ' -f1)
size=$(stat -c %s "$img")
M=b8:27:eb:00:00:01 D=b8-27-eb-00-00-01
SYSCALLS="write pwrite64 rename renameat2 unlink unlinkat mkdir rmdir fsync fdatasync"

B=$T/fresh
"$NF" --root "$B" init --interface lo --server-ip 127.0.0.1 --subnet 127.0.0.0/8 >/dev/null
"$NF" --root "$B" image add "$img.zst" --name pios >/dev/null
"$NF" --root "$B" boot-files import --from-image pios >/dev/null 2>&1
cp -a "$B" "$T/enrolled"
"$NF" --root "$T/enrolled" enroll "$M" --image pios --hostname old-name >/dev/null
cp -a "$B" "$T/plain"
"$NF" --root "$T/plain" enroll "$M" --image pios >/dev/null

q() { sqlite3 "$1/state/netflash.db" "SELECT $2 FROM workers WHERE mac = '$D'"; }

# invariants NAME ROOT: one FAIL line per broken invariant; returns 1 if any
invariants() {
	local name=$1 R=$2 state token host bad=
	"$NF" --root "$R" recover >"$T/rec.out" 2>&1 || bad="recover: $(tr '\n' ' ' <"$T/rec.out")"
	state=$(q "$R" state) token=$(q "$R" token) host=$(q "$R" hostname)
	case "$state" in
	enrolled)
		grep -q "netflash.token=$token" "$R/tftp/$D/cmdline.txt" 2>/dev/null ||
			bad="$bad; enrolled, but no TFTP dir with the database's token"
		if [ -n "$host" ]; then
			grep -aq "$host" "$R/state/provision/$D.patch" 2>/dev/null ||
				bad="$bad; enrolled as '$host' without its provisioning patch"
		fi ;;
	released | "")
		[ ! -e "$R/tftp/$D" ] || bad="$bad; $state${state:-not enrolled}, but its TFTP dir is there"
		[ ! -e "$R/state/provision/$D.patch" ] || bad="$bad; ${state:-not enrolled}, but its patch (secrets) is there" ;;
	esac
	# shellcheck disable=SC2010
	ls -A "$R/tftp" | grep -q '^\.' && bad="$bad; left in tftp: $(ls -A "$R/tftp" | grep '^\.' | tr '\n' ' ')"
	[ -z "$(ls -A "$R/state/intent" 2>/dev/null)" ] || bad="$bad; intents left"
	ls "$R/state/provision" 2>/dev/null | grep -q '\.old$' && bad="$bad; a .patch.old left"
	[ -z "$bad" ] || { fail "$name: ${bad#; }"; return 1; }
	return 0
}

# walk NAME START CMD...: CMD (with @R@ for the root) killed at every point
walk() {
	local name=$1 start=$2 s i n runs=0 broken=0
	shift 2
	for s in $SYSCALLS; do
		rm -rf "$T/w" && cp -a "$start" "$T/w"
		strace -f -qq -o "$T/count" -e trace="$s" "${@//@R@/$T/w}" >/dev/null 2>&1 || true
		n=$(wc -l <"$T/count")
		for i in $(seq 1 "$n"); do
			rm -rf "$T/w" && cp -a "$start" "$T/w"
			strace -f -qq -o /dev/null -e trace="$s" -e inject="$s":signal=KILL:when="$i" \
				"${@//@R@/$T/w}" >/dev/null 2>&1 || true
			runs=$((runs + 1))
			invariants "$name, killed at $s #$i" "$T/w" || broken=$((broken + 1))
		done
	done
	if [ "$broken" = 0 ]; then pass "$name: killed at $runs points, recovery restored every invariant"; fi
}

walk "enroll" "$B" "$NF" --root @R@ enroll "$M" --image pios --hostname new-name
walk "enroll --force (with provisioning)" "$T/enrolled" "$NF" --root @R@ enroll "$M" --image pios --hostname new-name --force
walk "release" "$T/enrolled" "$NF" --root @R@ release "$M"

# netflashd's release on a verified DONE, killed at every point.
PORT=$("$NETFLASH_BUILD/tests/freeport")
done_flow() { # ROOT TRACE-OUT STRACE-ARGS...: the daemon (under strace) through HELLO and DONE
	local R=$1 out=$2 tok pid
	shift 2
	tok=$(q "$R" token)
	strace -f -qq -o "$out" "$@" "$NFD" --root "$R" --listen "127.0.0.1:$PORT" --peer-check=off \
		--nfs-url nfs://127.0.0.1/x >"$T/d.log" 2>&1 &
	pid=$!
	register_pid "$pid"
	for _ in $(seq 1 50); do grep -q "listening on" "$T/d.log" 2>/dev/null && break; kill -0 $pid 2>/dev/null || break; sleep 0.05; done
	timeout 20 python3 - "$PORT" "$M" "$tok" "$sha" "$size" <<'PY' || true
import socket, sys
port, mac, tok, sha, size = sys.argv[1:]
try:
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=3)
    f = s.makefile()
    s.sendall(("HELLO v=1 mac=%s token=%s\n" % (mac, tok)).encode())
    job = f.readline()
    jid = job.split("id=")[1].split()[0]
    s.sendall(("DONE id=%s sha256=%s bytes=%s seconds=1.5\n" % (jid, sha, size)).encode())
    f.readline()
except Exception:
    pass
PY
	# strace -o FILE PROG ignores SIGTERM itself (its -I3 default): stop
	# the daemon, its child, by PID; strace ends with it.
	dpid=$(ps -o pid= --ppid "$pid" 2>/dev/null | tr -d ' ' || true)
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null
	wait $pid 2>/dev/null || true
}
runs=0 broken=0
for s in $SYSCALLS; do
	rm -rf "$T/w" && cp -a "$T/plain" "$T/w"
	done_flow "$T/w" "$T/count" -e trace="$s"
	[ "$(q "$T/w" state)" = released ] || fail "the DONE flow did not release the worker: $(cat "$T/d.log")"
	n=$(wc -l <"$T/count")
	for i in $(seq 1 "$n"); do
		rm -rf "$T/w" && cp -a "$T/plain" "$T/w"
		done_flow "$T/w" /dev/null -e trace="$s" -e inject="$s":signal=KILL:when="$i"
		runs=$((runs + 1))
		invariants "netflashd DONE, killed at $s #$i" "$T/w" || broken=$((broken + 1))
	done
done
if [ "$broken" = 0 ]; then pass "netflashd's release on DONE: killed at $runs points, recovery restored every invariant"; fi
finish
