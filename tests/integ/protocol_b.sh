#!/usr/bin/env bash
# Protocol B: a write completes once the peer has received it, before the
# peer's disk has it. b's disk stalls writes in one range (the fault
# backend's `stall write`): a's write there completes all the same (b's
# P_RECV_ACK), b's disk gets it when the stall ends, and the disks agree.
. "$(dirname "$0")/lib.sh"
mknet2
SIZE=268386304
M=1048576
mkres2 256M "protocol B;"
FB=$T/faults.b
: >"$FB"
nb_f() { DIPOLE_FAULTS=$FB nb "$@"; }
na create-md r0 >/dev/null 2>&1
nb create-md r0 >/dev/null 2>&1
na up r0 --device none >/dev/null 2>&1
nb_f up r0 --device none >/dev/null 2>&1
check "connected" wait_for 20 both "p['connection']=='Connected'" "p['connection']=='Connected'"
na primary r0 --force >/dev/null 2>&1
check "synced" wait_for 60 jcheck b "o['disk']=='UpToDate'"
nbdw() { timeout 10 python3 "$ROOT/tests/nbdwrite.py" "$T/ra/r0.nbd" r0 "$@"; }
check "a write with b's disk answering completes" nbdw $((10 * M)) $M 0x41

printf 'stall write %d %d\n' $((20 * M)) $M >"$FB"
check "a write while b's disk stalls completes (b received it)" nbdw $((20 * M)) $M 0x42
check "a stayed connected to b and marks nothing out of sync (it did not give up on b)" \
	jcheck a "p['connection']=='Connected' and p['out_of_sync_bytes']==0"
check "b's disk does not have it yet" \
	bash -c "dd if=$T/b.img bs=1M skip=20 count=1 2>/dev/null | tr -d '\102' | wc -c | grep -qvx 0"
rm -f "$FB"
check "b's disk has it once the stall ends" wait_for 10 \
	bash -c "dd if=$T/b.img bs=1M skip=20 count=1 2>/dev/null | tr -d '\102' | wc -c | grep -qx 0"
check "the data areas are byte-identical" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
finish
