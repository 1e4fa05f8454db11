#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The master against hostile hosts on a LAN of network namespaces: real
# dnsmasq (TFTP), nfs-ganesha and netflashd in the master's namespace, a
# worker and an attacker with their own MACs. A host that reads a worker's
# token over TFTP gets nothing from netflashd; the real worker still
# flashes; a connection opened before enroll --force cannot finish the new
# enrollment. Then, on loopback: fd exhaustion, an internal error that must
# not count against the worker, hostile numbers, file modes.
source "$(dirname "$0")/../lib.sh"

NF="$NETFLASH_BUILD/master-tools/netflash"
NFD="$NETFLASH_BUILD/master-tools/netflashd"
img=$(test_image 16)
size=$(stat -c %s "$img")
sha=$(sha256sum "$img" | cut -d' ' -f1)
R=$T/root
W1=b8:27:eb:00:00:01 W2=b8:27:eb:00:00:02 EVIL=02:00:00:00:00:66
D1=b8-27-eb-00-00-01 D2=b8-27-eb-00-00-02

netns_lan
netns_host master 02:00:00:00:00:02 10.77.0.2
netns_host w1 "$W1" 10.77.0.11
netns_host w2 "$W2" 10.77.0.12
netns_host evil "$EVIL" 10.77.0.66

nsx master "$NF" --root "$R" init --interface eth0 --subnet 10.77.0.0/24 --server-ip 10.77.0.2 --port 7070 >/dev/null
"$NF" --root "$R" image add "$img.zst" --name pios >/dev/null
pi_initramfs "$T/netflash.cpio.gz"
"$NF" --root "$R" boot-files import --from-image pios --initramfs "$T/netflash.cpio.gz" >/dev/null 2>&1
"$NF" --root "$R" enroll "$W1" --image pios >/dev/null
"$NF" --root "$R" enroll "$W2" --image pios >/dev/null

# ---- file modes: tokens and secrets for root only -------------------------
[ "$(stat -c %a "$R/state")" = 700 ] && [ "$(stat -c %a "$R/state/netflash.db")" = 600 ] &&
	pass "state dir 0700, database 0600" || fail "modes: state $(stat -c %a "$R/state"), db $(stat -c %a "$R/state/netflash.db")"
tftp_user=$(sed -n 's/^user=//p' "$R/etc/dnsmasq.conf")
[ -n "$tftp_user" ] && [ "$(stat -c '%U %a' "$R/tftp/$D1/cmdline.txt")" = "$tftp_user 400" ] &&
	pass "cmdline.txt (the token) is readable by dnsmasq's user ($tftp_user) only" ||
	fail "cmdline.txt: $(stat -c '%U %a' "$R/tftp/$D1/cmdline.txt"), dnsmasq user '$tftp_user'"

# ---- the master's servers, in its namespace ---------------------------------
nsx master dnsmasq --conf-file="$R/etc/dnsmasq.conf" --keep-in-foreground &
register_pid $!
wait_for "$R/log/dnsmasq.log" "TFTP root is" 5 || :
GANESHA_ADDR=10.77.0.2 GANESHA_NETNS=$(_ns master)
ganesha_start "$R/images" "$T" || { fail "ganesha did not start in the master's namespace"; finish; }
nsx master "$NFD" --root "$R" --listen 10.77.0.2:7070 --nfs-url "nfs://10.77.0.2/export?$GANESHA_URL_ARGS" \
	>>"$T/daemon.log" 2>&1 &
register_pid $!
wait_for "$T/daemon.log" "listening on" 5 || :

# ask NS LINE...: sends the lines over one connection from NS, prints the answers
ask() {
	local ns=$1
	shift
	nsx "$ns" bash -c 'exec 3<>/dev/tcp/10.77.0.2/7070 || exit 1
		for l in "$@"; do printf "%s\n" "$l" >&3; sleep 0.3; done
		timeout 3 cat <&3' _ "$@"
}

# ---- a host with another MAC, holding the token read over TFTP -------------
nsx evil curl -s --max-time 10 -o "$T/stolen" "tftp://10.77.0.2/$D1/cmdline.txt" || true
tok1=$(grep -o 'netflash.token=[0-9a-f]*' "$T/stolen" 2>/dev/null | cut -d= -f2 || true)
[ -n "$tok1" ] && pass "(the attacker read $D1's token over TFTP, as any LAN host can)" ||
	fail "the attacker could not read the token over TFTP: the test proves nothing"
ans=$(ask evil "HELLO v=1 mac=$W1 token=$tok1")
[ "$ans" = "ERR reason=refused" ] && pass "HELLO with the stolen token from another MAC: refused" ||
	fail "stolen-token HELLO answered '$ans'"
ans=$(ask evil "QUERY v=1 mac=$W1 token=$tok1")
[ "$ans" = "ERR reason=refused" ] && pass "QUERY with the stolen token: refused" || fail "stolen-token QUERY: '$ans'"
ans=$(ask evil "HELLO v=1 mac=$W1 token=$tok1" "DONE id=1 sha256=$sha bytes=$size seconds=1.0")
[[ $ans != *RELEASED* ]] && [[ $ans != *JOB* ]] && [ -d "$R/tftp/$D1" ] && pass "no job, no patch, no release for the attacker" ||
	fail "attacker got '$ans'"
grep -q "refused '$D1' from 10.77.0.66:[0-9]*: its address belongs to 02-00-00-00-00-66 on eth0" "$T/daemon.log" &&
	pass "the refusal names the MAC behind the address" || fail "log: $(grep refused "$T/daemon.log" | tail -2)"
# The master's own address has no neighbour entry: not a LAN peer.
ans=$(ask master "HELLO v=1 mac=$W1 token=$tok1")
[ "$ans" = "ERR reason=refused" ] && grep -q "no neighbour (ARP) entry" "$T/daemon.log" &&
	pass "a connection without a neighbour entry is refused (routed setups opt out)" || fail "no-neigh HELLO: '$ans'"

# ---- the real worker flashes ---------------------------------------------
pattern_file "$T/card1" $((32 * 1048576))
if nsx w1 "$NFW" -q --progress=none --report-to 10.77.0.2:7070 --mac "$W1" --token "$tok1" "$T/card1" 2>"$T/w1.log" &&
	cmp -s -n "$size" "$img" "$T/card1" && [ ! -e "$R/tftp/$D1" ]; then
	pass "the real worker (its own MAC) flashed, verified and was released"
else
	fail "real worker: $(cat "$T/w1.log"; tail -3 "$T/daemon.log")"
fi

# ---- a connection opened before enroll --force speaks for nothing ---------
tok2=$(grep -o 'netflash.token=[0-9a-f]*' "$R/tftp/$D2/cmdline.txt" | cut -d= -f2)
nsx w2 bash -c 'exec 3<>/dev/tcp/10.77.0.2/7070
	printf "HELLO v=1 mac=%s token=%s\n" "$1" "$2" >&3
	read -r job <&3; echo "$job"
	id=${job#*id=}; id=${id%% *}
	while [ ! -e "$3" ]; do sleep 0.1; done
	printf "DONE id=%s sha256=%s bytes=%s seconds=1.0\n" "$id" "$4" "$5" >&3
	timeout 3 cat <&3' _ "$W2" "$tok2" "$T/reenrolled" "$sha" "$size" >"$T/w2.out" &
w2pid=$!
register_pid "$w2pid"
sleep 1
"$NF" --root "$R" enroll "$W2" --image pios --force >/dev/null
touch "$T/reenrolled"
wait "$w2pid"
grep -q '^JOB ' "$T/w2.out" && grep -q 'ERR .*reason=stale-token' "$T/w2.out" && [ -d "$R/tftp/$D2" ] &&
	"$NF" --root "$R" ls | grep "${D2//-/:}" | has enrolled &&
	pass "DONE on a connection from before enroll --force: stale-token, the new enrollment stays" ||
	fail "stale connection: $(cat "$T/w2.out")"

# ---- connections per address are capped -------------------------------------
nsx evil python3 - <<'PY' >"$T/flood.out"
import socket, time
socks = []
for _ in range(60):
    s = socket.create_connection(("10.77.0.2", 7070))
    socks.append(s)
time.sleep(1)
alive = 0
for s in socks:
    s.setblocking(False)
    try:
        alive += s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        alive += 1
print(alive)
PY
alive=$(cat "$T/flood.out")
[ "$alive" -le 32 ] && [ "$alive" -ge 1 ] && pass "one address holds at most 32 connections ($alive of 60 kept)" ||
	fail "per-address cap: $alive of 60 connections kept"

# ---- out of fds: no spinning, workers still served afterwards ---------------
ganesha_stop
GANESHA_ADDR= GANESHA_NETNS=
MR=$T/lo
MPORT=$("$NETFLASH_BUILD/tests/freeport")
"$NF" --root "$MR" init --interface lo --server-ip 127.0.0.1 --subnet 127.0.0.0/8 --port "$MPORT" >/dev/null
"$NF" --root "$MR" image add "$img.zst" --name pios >/dev/null
"$NF" --root "$MR" boot-files import --from-image pios >/dev/null 2>&1
ganesha_start "$MR/images" "$T/lo-g"
"$NF" --root "$MR" enroll "$W1" --image pios >/dev/null
prlimit --nofile=48:48 "$NFD" --root "$MR" --listen "127.0.0.1:$MPORT" --peer-check=off --slow-timeout 2 \
	--nfs-url "nfs://127.0.0.1/export?$GANESHA_URL_ARGS" >>"$T/lo.log" 2>&1 &
dpid=$!
register_pid "$dpid"
wait_for "$T/lo.log" "listening on" 5 || :
cpu() { awk '{print $14 + $15}' "/proc/$dpid/stat"; }
before=$(cpu)
python3 - "$MPORT" <<'PY' &
import socket, sys, time
socks = []
for _ in range(200):
    try:
        socks.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1))
    except OSError:
        pass
time.sleep(3)
PY
fpid=$!
register_pid "$fpid"
wait "$fpid"
ticks=$(( $(cpu) - before ))
[ "$ticks" -lt 100 ] && pass "200 connections against 48 fds: $ticks CPU ticks in 3 s (no accept spin)" ||
	fail "accept loop spun: $ticks CPU ticks in 3 s"
# Past the table, the oldest connection without a HELLO makes room (or, out
# of fds, accepting pauses); either is logged.
has "cannot accept connections: Too many open files\|too many connections\|the oldest connection without a HELLO" "$T/lo.log" &&
	pass "running out of fds or room is logged" || fail "no log of fd exhaustion: $(tail -3 "$T/lo.log")"

# ---- a master-side error is never the worker's failed attempt ------------
tokl=$(token_of "$W1")
exec {c}<>"/dev/tcp/127.0.0.1/$MPORT"
printf 'HELLO v=1 mac=%s token=%s\n' "$W1" "$tokl" >&$c
read -r -t 5 job <&$c || job=
id=$(echo "$job" | grep -o 'id=[0-9]*' | cut -d= -f2)
mv "$MR/images/pios.manifest" "$T/pios.manifest"
printf 'DONE id=%s sha256=%s bytes=%s seconds=1.0\n' "$id" "$sha" "$size" >&$c
read -r -t 5 verdict <&$c || verdict=
mv "$T/pios.manifest" "$MR/images/pios.manifest"
[ "${verdict%% *}" = KEPT ] && "$NF" --root "$MR" status --json | has "\"attempts\":0" &&
	grep -q "cannot read the manifest of image 'pios'" "$T/lo.log" &&
	pass "DONE while the manifest is unreadable: KEPT, logged, no attempt counted" ||
	fail "manifest error: '$verdict' $("$NF" --root "$MR" status --json)"
# Numbers from the wire: no exponents, nan or inf.
refused=0
for bad in "PROGRESS id=$id stage=write done=1 total=2 mbps=1e-300" "PROGRESS id=$id stage=write done=1 total=2 mbps=nan" \
	"DONE id=$id sha256=$sha bytes=$size seconds=nan" "PROGRESS id=999 stage=write done=1 total=2 mbps=1.0"; do
	printf '%s\n' "$bad" >&$c
	read -r -t 5 ans <&$c || ans=
	case "$ans" in ERR*) refused=$((refused + 1)) ;; *) fail "'$bad' answered '$ans'" ;; esac
	exec {c}>&-
	exec {c}<>"/dev/tcp/127.0.0.1/$MPORT"
	printf 'HELLO v=1 mac=%s token=%s job=%s\n' "$W1" "$tokl" "$id" >&$c
	read -r -t 5 job <&$c || job=
done
# Text from a worker reaches a terminal only escaped.
printf 'FAIL id=%s stage=write reason=%%1b]0;owned%%07%%1b[2Jgone\n' "$id" >&$c
read -r -t 5 ans <&$c || ans=
"$NF" --root "$MR" history "$W1" >"$T/hist.out"
"$NF" --root "$MR" status >>"$T/hist.out"
! grep -q $'\x1b' "$T/hist.out" && has '\\x1b\]0;owned' "$T/hist.out" &&
	pass "a FAIL reason with terminal escapes is shown escaped by history and status" ||
	fail "escapes: '$ans' $(od -c "$T/hist.out" | grep -m3 033)"
exec {c}>&-
[ "$refused" = 4 ] && pass "mbps=1e-300, nan, seconds=nan and a foreign PROGRESS id are refused"

# A token holder's HELLOs and LOG lines do not grow the database without bound.
python3 - "$MPORT" "$W1" "$tokl" <<'PY'
import socket, sys
port, mac, tok = int(sys.argv[1]), sys.argv[2], sys.argv[3]
for i in range(260):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(("HELLO v=1 mac=%s token=%s\n" % (mac, tok)).encode())
    line = s.makefile().readline()
    if i < 7 and line.startswith("JOB "):
        jid = line.split("id=")[1].split()[0]
        s.sendall("".join("LOG id=%s line=console%%20line%%20%d\n" % (jid, n) for n in range(1000)).encode())
    s.close()
PY
sleep 1
jobs=$(sqlite3 "$MR/state/netflash.db" "SELECT COUNT(*) FROM jobs WHERE mac = '$D1'")
events=$(sqlite3 "$MR/state/netflash.db" "SELECT COUNT(*) FROM events WHERE mac = '$D1'")
[ "$jobs" -le 201 ] && [ "$events" -le 6000 ] && pass "260 HELLOs and 7000 LOG lines: $jobs job rows, $events events kept" ||
	fail "unbounded: $jobs job rows, $events events"

# A fake master's JOB naming a local file is refused by the worker.
fport=$("$NETFLASH_BUILD/tests/freeport")
python3 - "$fport" <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); s.settimeout(20)
c, _ = s.accept(); c.recv(1024)
c.sendall(b"JOB id=1 url=/etc/os-release format=raw size=100 sha256=" + b"0" * 64 + b" image=x\n")
c.settimeout(5)
try: c.recv(1024)
except OSError: pass
PY
register_pid $!
wait_listen "$fport" || fail "the fake master did not start"
pattern_file "$T/card9" $((8 * 1048576))
rc=0; "$NFW" -q --progress=none --report-to "127.0.0.1:$fport" --mac "$W1" --token 0123456789abcdef0123456789abcdef \
	"$T/card9" 2>"$T/w9.log" || rc=$?
[ $rc -ne 0 ] && has "is neither an nfs:// URL nor a udpcast:// session of its own" "$T/w9.log" &&
	[ "$(first_mib "$T/card9")" = "$(pattern_file "$T/pat9" 1048576 && first_mib "$T/pat9")" ] &&
	pass "a JOB whose url is a local file is refused, the card untouched" || fail "fake master: rc=$rc $(cat "$T/w9.log")"
finish
