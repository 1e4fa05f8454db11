#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# One worker's flood cannot starve the others (docs/security.md): a worker
# with a job floods LOG lines (parsed, then dropped past 1000) as fast as
# the socket takes them, while another enrolled worker says HELLO again and
# again; its JOB must come as quickly as without the flood (the median
# latency, and no answer held back past a second). A PROGRESS
# flood is refused (progress-flood) and the connection closed.
source "$(dirname "$0")/../lib.sh"

img=$(test_image 24)
# A zstd image is stored as it is: no background level 19 copy (image
# finish) competes with netflashd while this measures its latency.
master_setup "$img.zst" pios
daemon_start
A=b8:27:eb:00:0f:01 B=b8:27:eb:00:0f:02
"$NF" --root "$MR" enroll "$A" --image pios >/dev/null
"$NF" --root "$MR" enroll "$B" --image pios >/dev/null

python3 - "$MPORT" "$A" "$(token_of "$A")" "$B" "$(token_of "$B")" >"$T/flood.out" 2>&1 <<'EOF'
import socket, sys, threading, time
port, a, ta, b, tb = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]

def hello(mac, tok):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("HELLO v=1 mac=%s token=%s\n" % (mac, tok)).encode())
    f = s.makefile("rb")
    return s, f, f.readline().decode()

def latency(n):
    # HELLO from B, time to its first answer line (ms), n times.
    out = []
    for _ in range(n):
        t0 = time.monotonic()
        s, f, line = hello(b, tb)
        out.append((time.monotonic() - t0) * 1000)
        assert line.startswith("JOB "), line
        s.close()
        time.sleep(0.1)
    return out

base = latency(5)
s, f, job = hello(a, ta)
jid = job.split("id=")[1].split()[0]
stop, sent = False, [0]
def flood(verb_line):
    chunk = (verb_line % jid).encode() * 200
    try:
        while not stop:
            s.sendall(chunk)
            sent[0] += len(chunk)
    except OSError:
        pass
t = threading.Thread(target=flood, args=("LOG id=%s line=flood%%20line%%20of%%20console%%20text\n",), daemon=True)
t.start()
time.sleep(0.5)
try:
    during = latency(20)
except (OSError, AssertionError) as e:
    print("HELLO during the flood failed:", e)
    during = [99999]
med = lambda v: sorted(v)[len(v) // 2]
stop = True
t.join(5)
print("log flood: sent %.1f MB; HELLO baseline median %.1f max %.1f ms, during the flood median %.1f max %.1f ms"
      % (sent[0] / 1e6, med(base), max(base), med(during), max(during)))
print("RESULT %.1f %.1f %.1f %d" % (med(base), med(during), max(during), sent[0]))
s.close()

# A PROGRESS flood: refused with progress-flood, then closed.
s, f, job = hello(a, ta)
jid = job.split("id=")[1].split()[0]
line = ("PROGRESS id=%s stage=write done=1 total=2 mbps=1.0\n" % jid).encode()
answer = b""
try:
    for _ in range(200):
        s.sendall(line)
    s.settimeout(5)
    answer = f.readline()
    closed = f.readline() == b""
except OSError:
    closed = True
print("PROGRESS", answer.decode().strip(), "closed" if closed else "open")
EOF
cat "$T/flood.out"
read -r _ base during worst sent < <(grep '^RESULT' "$T/flood.out") || :
echo "MEASURE $(grep '^log flood' "$T/flood.out")"
# The bounds: the median answer within 100 ms (the issue's figure) or ten
# times the quiet median this run measured, if the machine is that busy;
# no single answer past a second. One slow answer is the scheduler's on a
# machine whose two cores run the flooder, the daemon and another test
# (103 ms was seen under ASan); a daemon that lets the flood starve others
# is slow on every answer (reading to EAGAIN took 21.7 s).
if [ -n "${worst:-}" ] && python3 -c 'import sys; b, d, w = map(float, sys.argv[1:4]); sys.exit(not (d <= max(100, 10 * b) and w <= 1000))' \
	"$base" "$during" "$worst"; then
	pass "a LOG flood from one worker: another worker's HELLO answered in ${during} ms (median; at most ${worst} ms; quiet: ${base} ms)"
else
	fail "flood: $(cat "$T/flood.out")"
fi
grep -q '^PROGRESS ERR id=[0-9]* reason=progress-flood closed' "$T/flood.out" &&
	grep -q "refused '$(echo "$A" | tr : -)' from .*: more than 20 PROGRESS lines in a second" "$T/daemon.log" &&
	pass "a PROGRESS flood is refused (progress-flood) and its connection closed" ||
	fail "progress flood: $(grep PROGRESS "$T/flood.out"); $(grep -c progress-flood "$T/daemon.log")"
# A flood of idle connections that never say HELLO (many addresses, none
# over its per-address cap) fills the table: the oldest of them make room,
# so an enrolled worker still gets its JOB every time. The daemon runs
# with 256 fds (192 connections, 96 without a HELLO) so the test needs a
# few hundred sockets, not thousands.
daemon_stop
prlimit --nofile=256:256 "$NFD" --root "$MR" --listen "127.0.0.1:$MPORT" \
	--nfs-url "nfs://$DAEMON_NFS_HOST/export?$GANESHA_URL_ARGS" --peer-check=off >>"$T/daemon2.log" 2>&1 &
register_pid $!
wait_for "$T/daemon2.log" "listening on 127.0.0.1:$MPORT" 5 || fail "the small daemon did not start"
python3 - "$MPORT" "$B" "$(token_of "$B")" >"$T/conns.out" 2>&1 <<'EOF2'
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
port, b, tb = int(sys.argv[1]), sys.argv[2], sys.argv[3]
idle = []
for i in range(300):
    s = socket.socket()
    s.bind(("127.0.0.%d" % (2 + i % 10), 0))
    s.connect(("127.0.0.1", port))
    idle.append(s)
time.sleep(0.5)
jobs = 0
for i in range(6):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
        s.sendall(("HELLO v=1 mac=%s token=%s\n" % (b, tb)).encode())
        line = s.makefile("rb").readline().decode()
        jobs += line.startswith("JOB ")
        s.close()
    except OSError:
        pass
alive = 0
for s in idle:
    s.setblocking(False)
    try:
        alive += s.recv(1) != b""
    except BlockingIOError:
        alive += 1
    except OSError:
        pass
print("JOBS", jobs, "IDLE_ALIVE", alive)
EOF2
read -r _ jobs _ alive <"$T/conns.out" || :
echo "MEASURE 300 idle connections from 10 addresses against a 192-connection table: ${alive:-?} left open; an enrolled worker's HELLO got its JOB ${jobs:-?} of 6 times"
[ "${jobs:-0}" = 6 ] && [ "${alive:-999}" -le 96 ] &&
	pass "idle connections without a HELLO hold at most their share; an enrolled worker gets its JOB 6 of 6 times" ||
	fail "connection flood: $(cat "$T/conns.out"); $(grep -c 'oldest connection without a HELLO' "$T/daemon2.log") evictions"
finish
