#!/usr/bin/env bash
# A peer that passes the handshake and then misbehaves must not damage good
# data: a resync pushed at an UpToDate node without agreement is refused, and
# malformed writes drop the connection, never the daemon.
. "$(dirname "$0")/lib.sh"
mknet2
SIZE=268386304
mkres2 256M "protocol C;"
nb create-md r0 >/dev/null 2>&1
nb up r0 --device none >/dev/null 2>&1
nb primary r0 --force >/dev/null 2>&1
head -c 1M /dev/urandom >"$T/rand"
nbdcopy "$T/rand" "$(uri_b)"
nb secondary r0 >/dev/null 2>&1
before=$(data_md5 $SIZE "$T/b.img")
uuid=$(nb dump-md r0 2>/dev/null | awk '/^uuid current/ {print $3}' | tr -d ';')
# play node a (node-id 0, the dialer) with the same generation, then misbehave
cat >"$T/rogue.py" <<'PY'
import socket, struct, sys, time
ip, size, uuid, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 16), sys.argv[4]
MAGIC = 0x44504c31
def pkt(t, payload=b"", flags=0, id=0):
    return struct.pack(">IHHIIQ", MAGIC, t, flags, len(payload), 0, id) + payload
def hello(ch):
    b = bytearray(180)
    struct.pack_into(">III", b, 0, 1, 1, 0)
    b[12] = ch; b[13] = ord("C"); b[14] = 0; b[15] = 6          # Secondary, UpToDate
    struct.pack_into(">QQ", b, 20, size, 0)
    struct.pack_into(">Q", b, 36, uuid)
    b[68:70] = b"r0"
    return pkt(1, bytes(b))
socks = []
for ch in (0, 1):
    s = socket.create_connection((ip, 7790), timeout=10)
    s.sendall(hello(ch))
    s.recv(24 + 180)
    socks.append(s)
d = socks[0]
d.sendall(pkt(5))  # P_READY
d.sendall(pkt(6, struct.pack(">I", 4)))  # P_DECISION: target-bitmap (b, with marks, is source)
time.sleep(0.5)
if mode == "sync":
    d.sendall(pkt(22, struct.pack(">Q", size)))
    d.sendall(pkt(20, struct.pack(">QI", 0, 1 << 20) + b"\x66" * (1 << 20)))
elif mode == "malformed":
    d.sendall(pkt(10, struct.pack(">QIQQ", size - 10, 4096, 1, 0) + b"\x66" * 4096))
time.sleep(1)
PY
nsenter --net=/run/netns/$NS_A python3 "$T/rogue.py" $IP_B $SIZE "$uuid" sync >/dev/null 2>&1
check "a resync pushed over UpToDate data without agreement is refused" \
	wait_for 10 jcheck b "'without agreement' in p['reason']"
check "and changed nothing" test "$before" = "$(data_md5 $SIZE "$T/b.img")"
check "b is still UpToDate" jcheck b "o['disk'] == 'UpToDate'"
nsenter --net=/run/netns/$NS_A python3 "$T/rogue.py" $IP_B $SIZE "$uuid" malformed >/dev/null 2>&1
check "a write past the end of the device drops the connection with a reason" \
	wait_for 10 jcheck b "'malformed write packet' in p['reason']"
check "and changed nothing either" test "$before" = "$(data_md5 $SIZE "$T/b.img")"
check "the daemon still serves NBD" nbdinfo "$(uri_b)"
nb down r0 >/dev/null 2>&1
finish
