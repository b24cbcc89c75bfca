#!/usr/bin/env bash
# up/down lifecycle and bad situations: second up, SIGKILL, down with a client
# connected, read-only and block-device backing disks, wrong node.
. "$(dirname "$0")/lib.sh"
mkres 128M
dp create-md r0 >/dev/null 2>&1
expect_rc "up" 0 "up on a" dp up r0 --device none
expect_rc "a second up of the same resource is refused (exit 3) with the pid" 3 "already up on this node \(daemon pid [0-9]+\)" \
	dp up r0 --device none
expect_rc "up with a wrong node name lists the known hosts" 2 "hosts known: a, b" \
	"$DIPOLE" -c "$T/r.res" --node c --run-dir "$RUN" up r0
dp primary r0 --force >/dev/null 2>&1
expect_rc "primary when already Primary is fine" 0 "" dp primary r0

# down while a client is connected and idle: the client is disconnected, down succeeds
python3 - "$RUN/r0.nbd" >"$T/client.out" 2>&1 <<'PY' &
import socket, struct, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(60)
s.recv(18); s.sendall(struct.pack(">I", 3))
s.sendall(struct.pack(">QII", 0x49484156454F5054, 7, 8) + struct.pack(">I", 2) + b"r0" + struct.pack(">H", 0))
buf = b""
while not buf.endswith(struct.pack(">I", 1) + struct.pack(">I", 0)):  # wait for NBD_REP_ACK
    buf += s.recv(4096)
s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, 7, 0, 4096) + b"\x77" * 4096)
r = s.recv(16)
print("acked", struct.unpack(">IIQ", r)[1])
sys.stdout.flush()
print("eof" if s.recv(1) == b"" else "data")
PY
echo $! >>"$T/bg.pids"; disown $!
wait_for 20 grep -q acked "$T/client.out"
expect_rc "status shows the connected client" 0 "\(1 client\)" dp status r0
expect_rc "down while a client is connected" 0 "" dp down r0
wait_for 20 grep -q eof "$T/client.out"
check "the client saw an orderly close after its write was acked" grep -q "acked 0" "$T/client.out"
check "the acknowledged write is on disk" bash -c "head -c 4096 $T/a.img | tr -d '\167' | wc -c | grep -qx 0"

# SIGKILL leaves stale files; the next up cleans them
dp up r0 --device none >/dev/null 2>&1
pid=$(cat "$RUN/r0.pid")
kill -9 "$pid"
wait_for 10 bash -c "! kill -0 $pid 2>/dev/null"
check "a killed daemon leaves its socket behind" test -S "$RUN/r0.nbd"
dp up r0 --device none >"$T/up.out" 2>&1
check "up after SIGKILL removes stale sockets, with a message" grep -q "removed stale socket $RUN/r0.nbd" "$T/up.out"
check "and says the disk was not detached cleanly" grep -q "not detached cleanly" "$T/up.out"
expect_rc "nbdinfo works after the restart" 0 "export-size" nbdinfo "$(NBD_URI)"
expect_rc "SIGTERM stops the daemon cleanly" 0 "" bash -c "kill $(cat "$RUN/r0.pid") && sleep 0.1"
wait_for 20 bash -c "! [ -e $RUN/r0.ctl ]"
check "after SIGTERM the runtime files are gone" bash -c "! [ -e $RUN/r0.nbd ] && ! [ -e $RUN/r0.pid ]"
expect_rc "down when not up is a no-op (exit 0)" 0 "is not up" dp down r0

# a block-device backing disk, and a read-only one
LOOPB=$(losetup -f --show "$T/b.img")
echo "$LOOPB" >>"$T/loops"
sed -i "s|disk $T/a.img|disk $LOOPB|" "$T/r.res"
expect_rc "create-md on a block device" 0 "usable size" dp create-md r0 --force
expect_rc "up on a block device" 0 "up on a" dp up r0 --device none
dp primary r0 --force >/dev/null 2>&1
head -c 4M /dev/urandom >"$T/rand"
nbdcopy "$T/rand" "$(NBD_URI)" 2>/dev/null
check "data written through NBD lands on the block device" bash -c "cmp -n 4194304 $T/rand $LOOPB"
dp down r0 >/dev/null 2>&1
losetup -d "$LOOPB"
LOOPR=$(losetup -r -f --show "$T/b.img")
sed -i "s|disk $LOOPB|disk $LOOPR|" "$T/r.res"
expect_rc "a read-only disk is refused with the reason" 1 "cannot open backing disk $LOOPR: Read-only file system \(the disk must be writable\)" \
	dp up r0 --device none
losetup -d "$LOOPR"
check "a refused up leaves no runtime files" bash -c "! [ -e $RUN/r0.nbd ] && ! [ -e $RUN/r0.ctl ]"
finish
