#!/usr/bin/env bash
# A peer that passes the handshake and then misbehaves must not damage good
# data: a resync pushed at an UpToDate node without agreement is refused, and
# a packet the wire codec cannot accept (bad length, alignment or range)
# drops the connection with a reason naming the packet and field: it never
# reaches the disk, so the node keeps its UpToDate disk and its data.
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
    d.sendall(pkt(22, struct.pack(">QI", size, 0)))
    d.sendall(pkt(20, struct.pack(">QI", 0, 1 << 20) + b"\x66" * (1 << 20)))
elif mode == "malformed":
    d.sendall(pkt(10, struct.pack(">QIQQ", size - 10, 4096, 1, 0) + b"\x66" * 4096))
else:
    # malformed shapes, one per connection
    DF_ZERO = 2
    bad = {
        "data-empty": pkt(10, struct.pack(">QIQQ", 1, 0, 1, 0)),
        "zero-empty": pkt(10, struct.pack(">QIQQ", 4096, 0, 1, 0), flags=DF_ZERO),
        "data-short": pkt(10, struct.pack(">QIQQ", 0, 8192, 1, 0) + b"\x66" * 4096),
        "zero-payload": pkt(10, struct.pack(">QIQQ", 0, 4096, 1, 0) + b"\x66" * 4096, flags=DF_ZERO),
        "data-end": pkt(10, struct.pack(">QIQQ", size - 512, 4096, 1, 0) + b"\x66" * 4096),
        "rs-unaligned": pkt(20, struct.pack(">QI", 1000, 4096) + b"\x66" * 4096),
        "rs-end": pkt(20, struct.pack(">QI", size, 4096) + b"\x66" * 4096),
        "read-end": pkt(27, struct.pack(">QI", size - 4096, 8192)),
        "read-empty": pkt(27, struct.pack(">QI", 0, 0)),
        "verify-unaligned": pkt(31, struct.pack(">QI", 100, 4096)),
        "bitmap-end": pkt(24, struct.pack(">Q", 1 << 40) + b"\0" * 8),
        "bitmap-odd": pkt(24, struct.pack(">Q", 0) + b"\0" * 4),
    }
    d.sendall(bad[mode])
time.sleep(1)
PY
nsenter --net=/run/netns/$NS_A python3 "$T/rogue.py" $IP_B $SIZE "$uuid" sync >/dev/null 2>&1
check "a resync pushed over UpToDate data without agreement is refused" \
	wait_for 10 jcheck b "'without agreement' in p['reason']"
check "and changed nothing" test "$before" = "$(data_md5 $SIZE "$T/b.img")"
check "b is still UpToDate" jcheck b "o['disk'] == 'UpToDate'"
nsenter --net=/run/netns/$NS_A python3 "$T/rogue.py" $IP_B $SIZE "$uuid" malformed >/dev/null 2>&1
check "a write past the end of the device drops the connection with a reason" \
	wait_for 10 jcheck b "'P_DATA: 4096 bytes at offset' in p['reason']"
check "and changed nothing either" test "$before" = "$(data_md5 $SIZE "$T/b.img")"
# each malformed shape: the reason names the packet and the field at fault
while read -r mode want; do
	nsenter --net=/run/netns/$NS_A python3 "$T/rogue.py" $IP_B $SIZE "$uuid" "$mode" >/dev/null 2>&1
	check "$mode: dropped with reason '$want'" wait_for 10 jcheck b "'$want' in p['reason']"
	check "$mode: b keeps its disk UpToDate" jcheck b "o['disk'] == 'UpToDate'"
done <<'CASES'
data-empty P_DATA: length 0 at offset 1
zero-empty P_DATA: length 0 at offset 4096
data-short P_DATA: length 8192 but 4096 bytes of data
zero-payload P_DATA: 4096 bytes of data with DF_ZERO/DF_TRIM
data-end P_DATA: 4096 bytes at offset 268385792: past the end
rs-unaligned P_RS_DATA: offset 1000: not a multiple of 4096
rs-end P_RS_DATA: 4096 bytes at offset 268386304: past the end
read-end P_READ_REQ: 8192 bytes at offset 268382208: past the end
read-empty P_READ_REQ: length 0
verify-unaligned P_VERIFY_REQ: offset 100: not a multiple of 512
bitmap-end P_BITMAP: words 1099511627776..1099511627777: past the bitmap
bitmap-odd P_BITMAP: length 12: not a whole number of 8-byte words
CASES
check "none of them changed the data" test "$before" = "$(data_md5 $SIZE "$T/b.img")"
check "b never went Diskless" jcheck b "o['disk'] == 'UpToDate'"
check "the daemon still serves NBD" nbdinfo "$(uri_b)"
nb down r0 >/dev/null 2>&1
finish
