#!/usr/bin/env bash
# The SyncSource's own writes against its resync read-ahead: while one chunk
# goes to the link the source reads the next one, and a write by the Primary
# to that next chunk before it is sent makes the read stale (it must be read
# again, or the target keeps the old data: it applies resync data after the
# write). Rate-limited, so each chunk read ahead waits ~60 ms for its turn
# and a sweep of writes over the device, much faster than the sync, lands on
# the chunk read ahead when it overtakes the resync's cursor.
. "$(dirname "$0")/lib.sh"
mknet2
SIZE=268386304
DISK_OPTS="resync-rate 16M;" mkres2 256M "protocol C;"
# a's data before the sync: a pattern, so stale resync data would show
qemu-io -f raw -c "write -P 0x5a 0 $SIZE" "$T/a.img" >/dev/null
na create-md r0 >/dev/null 2>&1
nb create-md r0 >/dev/null 2>&1
na up r0 --device none >/dev/null 2>&1
nb up r0 --device none >/dev/null 2>&1
check "connected" wait_for 20 both "p['connection']=='Connected'" "p['connection']=='Connected'"
na primary r0 --force >/dev/null 2>&1
check "a is SyncSource" wait_for 10 jcheck a "p['replication']=='SyncSource'"

# a 4 KiB write every 64 KiB over the whole device, each its own pattern
python3 - "$T/cmds" "$T/exp" $SIZE <<'PY'
import sys
K = 1024
cmds, exp, size = open(sys.argv[1], 'w'), open(sys.argv[2], 'wb'), int(sys.argv[3])
exp.write(b'\x5a' * size)
for i in range(size // (64 * K)):
    off, pat = i * 64 * K + (i % 16) * 4096, 1 + i % 250
    cmds.write(f"write -P {pat} {off} 4096\n")
    exp.seek(off); exp.write(bytes([pat]) * 4096)
PY
check "a writes 4095 blocks during the sync" bash -c "qemu-io -f raw '$(uri_a)' <'$T/cmds' >/dev/null"
check "a was still SyncSource after its writes (the race was possible)" jcheck a "p['replication']=='SyncSource'"
check "the sync finishes" wait_for 90 jcheck b "o['disk']=='UpToDate' and p['replication']=='Established'"
EXP=$(md5sum <"$T/exp" | cut -d' ' -f1)
check "a's disk holds every write it made" test "$(data_md5 $SIZE "$T/a.img")" = "$EXP"
check "b's disk equals a's" test "$(data_md5 $SIZE "$T/b.img")" = "$EXP"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
finish
