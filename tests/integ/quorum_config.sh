#!/usr/bin/env bash
# quorum_config — bad three-node configurations are refused with file:line
# before anything starts: unknown or missing mesh hosts, colliding node-ids,
# quorum values that cannot be met, handlers that cannot run, two Primaries
# with more than two disk hosts; the DRBD 9 shape with a tiebreaker parses and dumps.
source "$(dirname "$0")/lib.sh"

# res NAME BODY: a config file with three hosts on loopback addresses; the
# tiebreaker below listens in the host's namespace, so on a free port
PORT=$(free_port)
res() {
	cat >"$T/$1.res" <<EOT
resource r0 {
    options { quorum majority; }
    on a { node-id 0; address 127.0.0.1:$PORT; disk $T/a.img; }
    on b { node-id 1; address 127.0.0.2:$PORT; disk $T/b.img; }
    on c { node-id 2; address 127.0.0.3:$PORT; disk none; }
$2
}
EOT
}
dpc() { local f=$1; shift; "$DIPOLE" -c "$T/$f.res" --node a --run-dir "$RUN" "$@"; }
truncate -s 64M "$T/a.img" "$T/b.img"

res good "    connection-mesh { hosts a b c; }"
expect_rc "the DRBD 9 shape (mesh, disk none, quorum) parses" 0 "connection-mesh" dpc good dump r0
dumps_disk_none() { dpc good dump r0 2>/dev/null | grep -q "disk none;"; }
check "dump shows the tiebreaker's 'disk none'" dumps_disk_none
dpc good dump r0 >"$T/dumped.res" 2>/dev/null
expect_rc "the dump parses back" 0 "hosts a b c" "$DIPOLE" -c "$T/dumped.res" dump r0

res mesh_unknown "    connection-mesh { hosts a b d; }"
expect_rc "a mesh naming an unknown host: file:line:col" 2 "mesh_unknown.res:6:.*unknown host 'd'" dpc mesh_unknown dump
res mesh_short "    connection-mesh { hosts a b; }"
expect_rc "a mesh leaving out a host is refused, naming it" 2 "mesh_short.res:6:.*leaves out host 'c'" dpc mesh_short dump
res mesh_twice "    connection-mesh { hosts a b b c; }"
expect_rc "a mesh naming a host twice" 2 "named? host 'b' twice|names host 'b' twice" dpc mesh_twice dump

sed 's/node-id 2;/node-id 1;/' "$T/good.res" >"$T/ids.res"
expect_rc "colliding node-ids: file:line and both hosts" 2 "ids.res:5:.*node-id 1 of 'c' collides with host 'b'" dpc ids dump

sed 's/quorum majority;/quorum 4;/' "$T/good.res" >"$T/q4.res"
expect_rc "quorum 4 of 3 hosts can never be met" 2 "q4.res:2:.*quorum 4 can never be met" dpc q4 dump
sed 's/quorum majority;/quorum most;/' "$T/good.res" >"$T/qbad.res"
expect_rc "quorum with a bad value" 2 "qbad.res:2:.*expected off, majority, all or a number" dpc qbad dump
sed 's/quorum majority;/quorum 1;/' "$T/good.res" >"$T/q1.res"
expect_rc "quorum 1 of 3 is accepted with a split-brain warning" 0 "not a majority" dpc q1 dump
sed 's/quorum majority;/quorum majority; on-no-quorum freeze;/' "$T/good.res" >"$T/oq.res"
expect_rc "on-no-quorum with a bad value" 2 "oq.res:2:.*on-no-quorum.*freeze" dpc oq dump

sed "s|options {|handlers { fence-peer \"$T/missing.sh --x\"; }\n    options {|" "$T/good.res" >"$T/h1.res"
expect_rc "a handler that does not exist: file:line at dump" 2 "h1.res:2:.*fence-peer.*not found.*missing.sh" dpc h1 dump r0
expect_rc "... and at up, before anything starts" 2 "h1.res:2:.*not found" dpc h1 up r0
check "up started nothing" test ! -e "$RUN/r0.pid"
printf '#!/bin/sh\nexit 0\n' >"$T/noexec.sh"
sed "s|options {|handlers { split-brain \"$T/noexec.sh\"; }\n    options {|" "$T/good.res" >"$T/h2.res"
expect_rc "a handler that is not executable" 2 "h2.res:2:.*split-brain.*not an executable" dpc h2 dump r0
chmod +x "$T/noexec.sh"
expect_rc "once executable it is accepted" 0 "split-brain" dpc h2 dump r0

sed "s|disk none;|disk $T/c.img;|; s|options {|net { allow-two-primaries; }\n    options {|" "$T/good.res" >"$T/three.res"
expect_rc "three disk hosts with allow-two-primaries: refused at up, naming the resource" 2 \
	"three.res:1:.*allow-two-primaries with 3 disk hosts is not supported" dpc three up r0

# a rogue on the tiebreaker's vote port (127.0.0.3:$PORT): it plays node a, passes
# the HELLO (no secret is configured) and then sends bad packets
dtb() { "$DIPOLE" -c "$T/good.res" --node c --run-dir "$T/rc" "$@"; }
check "the tiebreaker comes up alone (no exports)" dtb up r0
cat >"$T/rogue.py" <<'PY'
import socket, struct, sys, time
MAGIC = 0x44504c31
def pkt(t, payload=b"", id=0, magic=MAGIC, ln=None):
    return struct.pack(">IHHIIQ", magic, t, 0, len(payload) if ln is None else ln, 0, id) + payload
def hello(ch):
    b = bytearray(180)
    struct.pack_into(">III", b, 0, 1, 1, 0)      # versions 1-1, node-id 0 (a)
    b[12] = ch; b[13] = ord("C"); b[15] = 6
    b[68:70] = b"r0"
    return pkt(1, bytes(b))
def link(ch):
    s = socket.create_connection(("127.0.0.3", int(sys.argv[2])), timeout=5)
    s.sendall(hello(ch))
    s.recv(24 + 180)
    return s
mode = sys.argv[1]
s = link(0 if mode == "data" else 2)
if mode == "short":
    s.sendall(pkt(34, b"\x01" * 10))               # P_VSTATE of the wrong size
elif mode == "big":
    s.sendall(pkt(34, b"", ln=1 << 30))             # a header announcing 1 GiB
elif mode == "magic":
    s.sendall(pkt(15, magic=0x12345678))
elif mode == "values":
    s.sendall(pkt(34, bytes([9, 99, 7]) + bytes(277)))  # right size, impossible role/disk
time.sleep(1)
try:
    print(s.recv(4096)[24:].decode(errors="replace"))
except OSError:
    pass
PY
tb_reason() { dtb status r0 --json | python3 -c "import json,sys; o=json.load(sys.stdin); sys.exit(0 if '$1' in o['peers'][0]['reason'] else 1)"; }
python3 "$T/rogue.py" short "$PORT" >/dev/null 2>&1
check "a vote-state packet of the wrong size drops the link, with a reason" wait_for 5 tb_reason "malformed state report"
python3 "$T/rogue.py" values "$PORT" >/dev/null 2>&1
check "impossible role/disk values are refused too" wait_for 5 tb_reason "malformed state report"
python3 "$T/rogue.py" big "$PORT" >/dev/null 2>&1
check "an oversized packet drops the link" wait_for 5 tb_reason "oversized packet"
python3 "$T/rogue.py" magic "$PORT" >/dev/null 2>&1
check "a bad magic drops the link" wait_for 5 tb_reason "bad packet magic"
expect_rc "a data channel to a tiebreaker is refused, saying why" 0 "vote link with you, not a disk peer" \
	python3 "$T/rogue.py" data "$PORT"
check "the tiebreaker survived all of it" dtb status r0
check "and goes down cleanly" dtb down r0
finish
