#!/usr/bin/env bash
# c-min-rate (drbd.conf(5)): while application writes go on, the resync
# keeps to c-min-rate and leaves the rest to them; when they stop it goes
# on at full speed. The full sync of 60 MiB runs at c-max-rate 4M; a
# steady writer on a (one 4 KiB write every 20 ms, ~8 s) starts with it.
# With c-min-rate 1 (KiB/s) the resync yields: after the writer about one
# 1 MiB chunk has moved, where without c-min-rate ~32 MiB would have; then
# it finishes, and both disks hold every write.
. "$(dirname "$0")/lib.sh"
mknet2
SIZE=$((64 * 1048576 - 4 * 1048576))
DISK_OPTS="c-max-rate 4M; c-min-rate 1;" mkres2 64M "protocol C;"
na create-md r0 >/dev/null 2>&1
nb create-md r0 >/dev/null 2>&1
na up r0 --device none >/dev/null 2>&1
nb up r0 --device none >/dev/null 2>&1
check "connected" wait_for 20 both "p['connection']=='Connected'" "p['connection']=='Connected'"
python3 - "$T/cmds" "$T/exp" $SIZE <<'PY'
import sys
cmds, exp, size = open(sys.argv[1], 'w'), open(sys.argv[2], 'wb'), int(sys.argv[3])
exp.truncate(size)
for i in range(400):
    off, pat = (i * 37 % (size // 4096)) * 4096, 1 + i % 250
    cmds.write(f"write -P {pat} {off} 4096\nsleep 20\n")
    exp.seek(off); exp.write(bytes([pat]) * 4096)
PY
na primary r0 --force >/dev/null 2>&1
check "a is SyncSource" wait_for 10 jcheck a "p['replication']=='SyncSource'"
check "a writes one block every 20 ms during the sync" bash -c "qemu-io -f raw '$(uri_a)' <'$T/cmds' >/dev/null"
check "the resync yielded to the writes: at least 48 MiB still out of sync" \
	jcheck a "p['replication']=='SyncSource' and p['out_of_sync_bytes'] >= 48 << 20"
check "once the writes stopped the sync finishes" \
	wait_for 60 jcheck b "o['disk']=='UpToDate' and p['replication']=='Established'"
EXP=$(md5sum <"$T/exp" | cut -d' ' -f1)
check "a's disk holds every write" test "$(data_md5 $SIZE "$T/a.img")" = "$EXP"
check "b's disk equals a's" test "$(data_md5 $SIZE "$T/b.img")" = "$EXP"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
finish
