#!/usr/bin/env bash
# The SyncTarget's own writes against resync data already on the wire: the
# link delays resync data (data channel, source -> target) by 300 ms while
# acknowledgements pass at once, so the target's writes complete while older
# resync data for the same blocks is still travelling. That old data must not
# overwrite them (the target skips blocks it wrote since the bitmap merge).
. "$(dirname "$0")/lib.sh"
mknet2
SIZE=268386304
DISK_OPTS="resync-rate 16M;" mkres2 256M "protocol C;"
start_proxy
CFG_A=$T/r-a.res
echo 300 >"$CTL/data_delay_up_ms"
na create-md r0 >/dev/null 2>&1
nb create-md r0 >/dev/null 2>&1
na up r0 --device none >/dev/null 2>&1
nb up r0 --device none >/dev/null 2>&1
check "connected through the proxy" wait_for 20 both "p['connection']=='Connected'" "p['connection']=='Connected'"
na primary r0 --force >/dev/null 2>&1
na secondary r0 >/dev/null 2>&1
check "b is SyncTarget" wait_for 10 jcheck b "p['replication']=='SyncTarget' and p['role']=='Secondary'"
expect_rc "b becomes Primary during the sync" 0 "" nb primary r0

# one whole-block write every 256 KiB over the whole device, as fast as they
# complete: some land on blocks whose old resync data is in flight; then a
# partial-block write every 16 MiB (each fetches its block from a first)
python3 - "$T/cmds" "$T/exp" $SIZE <<'PY'
import sys
K = 1024
cmds, exp, size = open(sys.argv[1], 'w'), open(sys.argv[2], 'wb'), int(sys.argv[3])
exp.truncate(size)
w = [(i * 256 * K, 4096) for i in range(size // (256 * K))]
w += [(i * 16384 * K + 8192 + 512 + (i % 2) * 3500, 1024 + (i % 2) * 7000) for i in range(size // (16384 * K))]
for i, (off, n) in enumerate(w):
    pat = 1 + i % 250
    cmds.write(f"write -P {pat} {off} {n}\n")
    exp.seek(off); exp.write(bytes([pat]) * n)
PY
check "b writes 1023 blocks and 15 partial blocks during the sync" bash -c "qemu-io -f raw '$(uri_b)' <'$T/cmds' >/dev/null"
check "b was still SyncTarget after its writes (the race was possible)" jcheck b "p['replication']=='SyncTarget'"
rm -f "$CTL/data_delay_up_ms"
check "the sync finishes" wait_for 90 jcheck b "o['disk']=='UpToDate' and p['replication']=='Established'"
EXP=$(md5sum <"$T/exp" | cut -d' ' -f1)
check "b's disk holds every write it made" test "$(data_md5 $SIZE "$T/b.img")" = "$EXP"
check "a's disk equals b's" test "$(data_md5 $SIZE "$T/a.img")" = "$EXP"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
finish
