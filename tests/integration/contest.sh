#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# One claimant per job (docs/security.md): nothing served over TFTP is
# secret, so a LAN host can hold a worker's token. The first host to prove
# it claims the job; a second host with the same token makes the worker
# contested: no release whatever DONE says, both peers in its state,
# history and hooks, until the admin's release --force or a new enroll.
# The provisioning secrets go to one claimant only, also across a restart
# of netflashd. Hosts are 127.0.0.x (all of 127/8 is this machine).
source "$(dirname "$0")/../lib.sh"

img=$(test_image 24)
master_setup "$img.mt.xz" pios
daemon_start
W=b8:27:eb:00:0c:01 D=b8-27-eb-00-0c-01
printf 'correct horse battery\n' >"$T/psk"
"$NF" --root "$MR" enroll "$W" --image pios --hostname rack1-07 --wifi-ssid lab --wifi-psk-file "$T/psk" >/dev/null
mkdir -p "$MR/hooks/contested.d"
chmod 0755 "$MR/hooks" "$MR/hooks/contested.d"
printf '#!/bin/sh\nenv | grep ^NETFLASH_ >%s\n' "$T/hook.env" >"$MR/hooks/contested.d/10-page"
chmod 0755 "$MR/hooks/contested.d/10-page"

# raw FROM MAC TOKEN [DONE]: HELLO from address FROM; prints the answer's
# first line and, with DONE, the answer to a DONE with the image's digest
# and the patch's (the worker that really wrote it would send those).
raw() {
	python3 - "$MPORT" "$@" "$(sha256sum "$img" | cut -d' ' -f1)" "$(stat -c %s "$img")" <<'EOF'
import hashlib, socket, sys
port, src, mac, tok, done, sha, size = sys.argv[1:8]
s = socket.socket(); s.bind((src, 0)); s.settimeout(10); s.connect(("127.0.0.1", int(port)))
f = s.makefile("rb")
s.sendall(("HELLO v=1 mac=%s token=%s\n" % (mac, tok)).encode())
first = f.readline().decode().strip()
print(first.split(" patch_sha256=")[0])
if first.startswith("JOB ") and done == "done":
    jid = first.split("id=")[1].split()[0]
    psha = first.split("patch_sha256=")[1].split()[0] if "patch_sha256=" in first else None
    n = int(first.split(" patch=")[1].split()[0]) if psha else 0
    got = 0
    while got < n:
        line = f.readline().decode()
        got += len(line.split("data=")[1].strip()) // 2
    s.sendall(("DONE id=%s sha256=%s bytes=%s seconds=1.0%s\n" % (jid, sha, size, " patch=" + psha if psha else "")).encode())
    print(f.readline().decode().strip())
EOF
}
tok=$(token_of "$W")

# 1. The worker (127.0.0.2) claims its job and takes its secrets; a host
# that read the token over TFTP (127.0.0.3) says HELLO too: NOJOB
# contested. 2. Then the worker's DONE, with the right digests on its own
# connection, releases nothing.
python3 - "$MPORT" "$W" "$tok" "$(sha256sum "$img" | cut -d' ' -f1)" "$(stat -c %s "$img")" >"$T/c1.out" <<'EOF'
import socket, sys
port, mac, tok, sha, size = sys.argv[1:6]
def hello(src):
    s = socket.socket(); s.bind((src, 0)); s.settimeout(10); s.connect(("127.0.0.1", int(port)))
    f = s.makefile("rb")
    s.sendall(("HELLO v=1 mac=%s token=%s\n" % (mac, tok)).encode())
    return s, f, f.readline().decode().strip()
s, f, job = hello("127.0.0.2")
jid = job.split("id=")[1].split()[0]
psha = job.split("patch_sha256=")[1].split()[0]
n, got = int(job.split(" patch=")[1].split()[0]), 0
while got < n:
    got += len(f.readline().decode().split("data=")[1].strip()) // 2
s2, f2, second = hello("127.0.0.3")
s.sendall(("DONE id=%s sha256=%s bytes=%s seconds=1.0 patch=%s\n" % (jid, sha, size, psha)).encode())
print("FIRST", job.split(" ")[0], "SECOND", second, "DONE", f.readline().decode().strip())
EOF
has "^FIRST JOB SECOND NOJOB reason=contested DONE KEPT id=[0-9]* reason=contested$" "$T/c1.out" && [ -d "$MR/tftp/$D" ] &&
	pass "a second host with the worker's token gets NOJOB contested; the first one's DONE is KEPT (contested)" ||
	fail "claims: $(cat "$T/c1.out")"
"$NF" --root "$MR" status --json | has "\"mac\":\"$D\".*\"enrollment\":\"contested\".*a second host, 127.0.0.3:[0-9]*, proved its token while its job is claimed by 127.0.0.2" &&
	pass "status: contested, with both peers" || fail "status: $("$NF" --root "$MR" status --json | grep -o "\"mac\":\"$D\".\{0,300\}")"
"$NF" --root "$MR" history "$W" | has "^  [0-9:]* a second host, 127.0.0.3" &&
	wait_until 5 grep -q "NETFLASH_EVENT=contested" "$T/hook.env" && grep -q "NETFLASH_MAC=$D" "$T/hook.env" &&
	pass "history has the contest; the contested hook ran" || fail "history/hook: $(cat "$T/hook.env" 2>&1)"

# 3. The admin: a plain release is refused and says why; --force releases.
rc=0; "$NF" --root "$MR" release "$W" 2>"$T/rel.err" || rc=$?
[ $rc = 1 ] && has "is contested .*release --force" "$T/rel.err" && [ -d "$MR/tftp/$D" ] &&
	"$NF" --root "$MR" release --force "$W" >/dev/null && [ ! -d "$MR/tftp/$D" ] &&
	pass "release refuses a contested worker (one line, why); release --force releases it" ||
	fail "release: rc=$rc $(cat "$T/rel.err")"

# 4. Secrets once: re-enrolled (a new token, the contest cleared), the
# worker takes its job and its secrets; it may ask again from its address
# (a retry), but after a restart of netflashd (claims are in memory) a
# host at another address is refused the secrets, and the worker contested
# with the secrets named exposed.
"$NF" --root "$MR" enroll "$W" --image pios --hostname rack1-07 --wifi-ssid lab --wifi-psk-file "$T/psk" --force >/dev/null
tok=$(token_of "$W")
a1=$(raw 127.0.0.2 "$W" "$tok" wait)
a2=$(raw 127.0.0.2 "$W" "$tok" wait)
"$NF" --root "$MR" status --json | has "\"mac\":\"$D\".*\"enrollment\":\"enrolled\"" && [[ $a1 == "JOB "*" patch="* ]] &&
	[[ $a2 == "JOB "*" patch="* ]] && pass "a new enroll clears the contest; the worker may ask for its secrets again from its address" ||
	fail "re-enroll: [$a1] [$a2] $("$NF" --root "$MR" status --json | grep -o "\"mac\":\"$D\".\{0,120\}")"
daemon_stop
daemon_start
b1=$(raw 127.0.0.4 "$W" "$tok" wait)
[[ $b1 == "NOJOB id="*"reason=contested" ]] &&
	"$NF" --root "$MR" status --json | has "\"mac\":\"$D\".*\"enrollment\":\"contested\".*treat the Wi-Fi PSK and password of this enrollment as exposed" &&
	pass "after a restart, another address is refused the secrets; status says they must be treated as exposed" ||
	fail "secrets once: [$b1] $("$NF" --root "$MR" status --json | grep -o "\"mac\":\"$D\".\{0,300\}")"
finish
