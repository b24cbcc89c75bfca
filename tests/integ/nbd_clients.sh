#!/usr/bin/env bash
# The NBD export driven by real Debian clients: nbdinfo, nbdcopy, qemu-io,
# qemu-img, fio's nbd engine; several clients at once; raw protocol checks.
. "$(dirname "$0")/lib.sh"
mkres 256M
dp create-md r0 >/dev/null 2>&1
# a fault file, empty for now: nbdraw.py stalls writes with it (its
# pipelined-large check)
: >"$T/faults"
export NBDRAW_FAULTS=$T/faults
DIPOLE_FAULTS=$T/faults expect_rc "up returns once the export serves" 0 "up on a as Secondary" dp up r0 --device none
U=$(NBD_URI)
SIZE=268386304

expect_rc "nbdinfo sees the export, read-only while Secondary" 0 "is_read_only: true" nbdinfo "$U"
check "a fresh (Inconsistent) disk without its peer is not readable: EIO, not garbage" \
	bash -c "qemu-io -f raw -r -c 'read 0 4k' '$U' 2>&1 | grep -q 'Input/output error'"
expect_rc "primary without --force is refused on an Inconsistent disk (exit 3)" 3 "Inconsistent, not UpToDate" dp primary r0
# an UpToDate Secondary is readable
dp primary r0 --force >/dev/null && dp secondary r0 >/dev/null
python3 "$ROOT/tests/nbdraw.py" "$RUN/r0.nbd" r0 secondary || notok "raw protocol checks on Secondary (exit $?)"
expect_rc "primary --force" 0 "" dp primary r0 --force
expect_rc "nbdinfo: size, writable, flush/fua/trim/zero/multi-conn" 0 "export-size: $SIZE" nbdinfo "$U"
nbdinfo "$U" >"$T/info"
check "nbdinfo flags" bash -c "grep -q 'is_read_only: false' $T/info && grep -q 'can_fua: true' $T/info && grep -q 'can_multi_conn: true' $T/info && grep -q 'can_trim: true' $T/info && grep -q 'can_zero: true' $T/info"
expect_rc "nbdinfo --list names the export" 0 'export="r0"' nbdinfo --list "nbd+unix://?socket=$RUN/r0.nbd"

head -c 64M /dev/urandom >"$T/rand"
check "nbdcopy writes 64 MiB of random data" nbdcopy "$T/rand" "$U"
nbdcopy "$U" "$T/back" 2>/dev/null
check "nbdcopy reads it back: checksums equal" test "$(head -c 64M "$T/back" | md5sum)" = "$(md5sum <"$T/rand")"
check "and the backing file holds exactly those bytes" test "$(head -c 64M "$T/a.img" | md5sum)" = "$(md5sum <"$T/rand")"

check "qemu-io writes patterns (aligned, unaligned, FUA, zeroes, discard)" \
	qemu-io -f raw -c 'write -P 0x5a 1M 1M' -c 'write -P 0xa5 3M 4097' -c 'write -P 0x11 -f 5M 64k' \
		-c 'write -z 7M 128k' -c 'discard 9M 64k' -c flush "$U"
check "qemu-io reads the patterns back" \
	qemu-io -f raw -c 'read -P 0x5a 1M 1M' -c 'read -P 0xa5 3M 4097' -c 'read -P 0x11 5M 64k' -c 'read -P 0 7M 128k' "$U"
expect_rc "qemu-img info reports the virtual size" 0 "virtual size: 256 MiB" qemu-img info -f raw "$U"
check "qemu-img convert round trip" bash -c "qemu-img convert -f raw -O raw '$U' $T/img.raw && cmp -n 1048576 $T/img.raw $T/rand"

# several clients at once, on different ranges, each verifying its own data
for i in 0 1 2 3; do
	head -c 8M /dev/urandom >"$T/part$i"
done
pids=""
for i in 0 1 2 3; do
	qemu-io -f raw -c "write -s $T/part$i $((100 + 8 * i))M 8M" "$U" >"$T/w$i" 2>&1 &
	pids="$pids $!"
done
allok=1
for p in $pids; do wait "$p" || allok=0; done
for i in 0 1 2 3; do
	nbdcopy "$U" - 2>/dev/null | tail -c +$((1 + (100 + 8 * i) * 1048576)) | head -c 8M | cmp -s - "$T/part$i" || allok=0
done
[ $allok = 1 ] && ok "four concurrent clients, data intact" || notok "four concurrent clients, data intact"

# reads with others in flight go through the connection's io_uring; one
# that comes back short is redone through engine_read (its slow branch)
head -c 4M /dev/urandom >"$T/sr"
qemu-io -f raw -c "write -s $T/sr 200M 4M" "$U" >/dev/null
echo "short read $((200 << 20)) $((4 << 20))" >"$T/faults"
nbdcopy --requests=16 --request-size=65536 "$U" "$T/back2" 2>/dev/null
: >"$T/faults"
check "reads that come back short are redone: the data is intact" \
	cmp -n $((4 << 20)) -i $((200 << 20)):0 "$T/back2" "$T/sr"
dp status r0 --json >"$T/json"
if grep -qs "io_uring is not available" "$RUN"/*.log; then
	ok "io_uring is not available here: reads go to the worker threads (ring checks skipped)"
elif ! dd if=/dev/zero of="$T/odirect" bs=4096 count=1 oflag=direct 2>/dev/null; then
	ok "no O_DIRECT under $T: reads go to the worker threads (ring checks skipped)"
else
	check "reads went through the ring, and the short ones were redone (status counts both)" python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
x = o["exports"]
assert x["nbd_ring_reads"] > 1000 and x["nbd_ring_redone"] > 0, x' "$T/json"
fi

if fio --enghelp 2>/dev/null | grep -qw nbd; then
	# --aux-path: its verify state file goes to $T, not the current directory
	check "fio nbd engine: 16 in flight, random writes verified by crc32c" \
		fio --aux-path="$T" --name=v --ioengine=nbd --uri="$U" --rw=randwrite --bs=4k --iodepth=16 --size=32M \
			--offset=128M --verify=crc32c --do_verify=1 --verify_fatal=1
else
	ok "fio has no nbd engine here (skipped)"
fi

python3 "$ROOT/tests/nbdraw.py" "$RUN/r0.nbd" r0 primary || notok "raw protocol checks on Primary (exit $?)"
dp status r0 --json >"$T/json"
check "status --json has the contract's fields and true counters" python3 - "$T/json" <<'PY'
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["name"] == "r0" and o["node"] == "a" and o["role"] == "Primary" and o["disk"] == "UpToDate", o
assert o["size_bytes"] == 268386304
p = o["peers"][0]
assert p["name"] == "b" and p["connection"] == "Connecting" and p["role"] == "Unknown" and p["disk"] == "DUnknown"
assert p["replication"] == "Off" and p["out_of_sync_bytes"] >= 64 << 20 and 0 <= p["sync_done_percent"] <= 100
s = o["stats"]
assert s["written_bytes"] >= 64 << 20 and s["read_bytes"] >= 64 << 20, s
assert s["sent_bytes"] == 0 and s["received_bytes"] == 0
PY
expect_rc "status (human) shows role, disk, peer and exports" 0 "r0 node:a role:Primary" dp status r0
expect_rc "status without RES lists running resources" 0 "disk:UpToDate" dp status
expect_rc "events --once prints the current state" 0 "r0 role:Primary disk:UpToDate peer:b connection:Connecting" dp events r0 --once
expect_rc "down" 0 "" dp down r0
# the host's namespace: a port picked now, not a fixed one another checkout may hold
TCP=127.0.0.1:$(free_port)
expect_rc "up with --nbd-tcp also serves NBD on TCP" 0 "up on a" dp up r0 --device none --nbd-tcp "$TCP"
check "nbdcopy over TCP reads what the unix socket reads" bash -c "cmp <(nbdcopy nbd://$TCP/r0 - | head -c 128M) <(nbdcopy '$U' - | head -c 128M)"
dp status r0 --json >"$T/json2"
check "status --json names the TCP export" grep -q "\"nbd_tcp\":\"$TCP\"" "$T/json2"
expect_rc "down" 0 "" dp down r0
expect_rc "status of a down resource says so (exit 3)" 3 "not up on this node" dp status r0
check "no runtime files remain after down" bash -c "! ls $RUN/r0.nbd $RUN/r0.ctl $RUN/r0.pid 2>/dev/null"
finish
