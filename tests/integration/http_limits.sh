#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# One host cannot lock the dashboard (docs/security.md): a host trickling
# request heads (a byte every few seconds keeps libmicrohttpd's idle timeout
# from ever firing) holds at most its share of the connections, and each
# of those for at most the head deadline; one address holds at most a few
# live streams. Addresses are 127.0.0.x: the kernel routes all of
# 127.0.0.0/8 to loopback, so each stands for another host.
source "$(dirname "$0")/../lib.sh"

img=$(test_image 24)
master_setup "$img.mt.xz" pios
HPORT=$("$NETFLASH_BUILD/tests/freeport")
daemon_start --http "127.0.0.1:$HPORT"

# 1. 40 slow heads from one address, a byte every 2 s for 30 s. Meanwhile
# another host's requests are answered, and the server closes the slow
# ones once their head is late (10 s), long before the trickle ends.
python3 - "$HPORT" >"$T/slow.out" <<'EOF' &
import socket, sys, time
port = int(sys.argv[1])
socks, t0 = [], time.monotonic()
for i in range(40):
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /api/workers HTTP/1.1\r\n")
        socks.append(s)
    except OSError:
        pass
closed = {}
while time.monotonic() - t0 < 30 and len(closed) < len(socks):
    for i, s in enumerate(socks):
        if i in closed:
            continue
        try:
            s.sendall(b"X")
            s.setblocking(False)
            if s.recv(1) == b"":
                raise OSError
        except BlockingIOError:
            pass
        except OSError:
            closed[i] = time.monotonic() - t0
        finally:
            s.setblocking(True)
    time.sleep(2)
early = sum(1 for t in closed.values() if t < 5)
late = [t for t in closed.values() if t >= 5]
print("connected", len(socks), "refused", early, "held", len(late), "open", len(socks) - len(closed),
      "last", round(max(late, default=99), 1))
EOF
spid=$!
register_pid "$spid"
sleep 3
answered=0
for i in 1 2 3 4 5; do
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 --interface 127.0.0.3 "http://127.0.0.1:$HPORT/api/workers") || code=000
	[ "$code" = 200 ] && answered=$((answered + 1))
done
wait "$spid" || :
read -r _ conn _ refused _ held _ open _ last <"$T/slow.out" || :
echo "MEASURE slow heads from one address: ${conn:-?} connected, ${refused:-?} closed at once (over its share), ${held:-?} held until their head was late, the last closed after ${last:-?} s, ${open:-?} still open; another host answered $answered of 5"
[ "$answered" = 5 ] && pass "another host is answered while one host trickles 40 request heads" ||
	fail "another host answered $answered of 5 while one host held connections ($(cat "$T/slow.out"))"
# Its share is 12 of the 32; each closed by the head deadline (10 s), not
# kept until the trickle stops (30 s).
if [ "${held:-99}" -le 12 ] && [ "${open:-1}" = 0 ] && python3 -c 'import sys; sys.exit(not float(sys.argv[1]) < 25)' "${last:-99}"; then
	pass "one address holds at most 12 connections, each closed once its head is 10 s late"
else
	fail "slow heads: $(cat "$T/slow.out")"
fi

# 2. Live streams: one address holds at most 4; another still gets one.
spids=()
for i in 1 2 3 4; do
	curl -sN --interface 127.0.0.4 "http://127.0.0.1:$HPORT/api/stream" >"$T/s$i" 2>/dev/null &
	spids+=($!)
	register_pid $!
done
wait_until 10 sh -c "[ \$(ss -Htn state established '( dport = :$HPORT )' | wc -l) -ge 4 ]" || :
for i in 1 2 3 4; do wait_until 10 test -s "$T/s$i" || :; done
fifth=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 --interface 127.0.0.4 "http://127.0.0.1:$HPORT/api/stream") || fifth=000
curl -sN --max-time 3 --interface 127.0.0.5 "http://127.0.0.1:$HPORT/api/stream" >"$T/other" 2>/dev/null || :
[ "$fifth" = 503 ] && has "event: workers" "$T/other" &&
	pass "one address holds at most 4 live streams (the fifth: 503); another address still gets one" ||
	fail "streams per address: fifth $fifth, other $(head -c 100 "$T/other")"
for p in "${spids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || :; done
finish
