#!/usr/bin/env bash
# A SyncSource whose disk fails during the resync: with on-io-error detach
# it goes Diskless and would serve reads through its peer, but the peer is
# the SyncTarget and lacks the blocks still to come. A read must then fail
# (EIO), never return the target's old data (DRBD: the SyncTarget's disk is
# Inconsistent, and an Inconsistent peer serves no reads).
. "$(dirname "$0")/lib.sh"
mknet2
M=1048576
DISK_OPTS="on-io-error detach; resync-rate 4M; c-max-rate 4M;" mkres2 64M "protocol C;"
FA=$T/faults.a
: >"$FA"
na create-md r0 >/dev/null 2>&1
nb create-md r0 >/dev/null 2>&1
DIPOLE_FAULTS=$FA na up r0 --device none >/dev/null 2>&1
nb up r0 --device none >/dev/null 2>&1
check "connected" wait_for 20 both "p['connection']=='Connected'" "p['connection']=='Connected'"
na primary r0 --force >/dev/null 2>&1
check "synced" wait_for 60 jcheck b "o['disk']=='UpToDate'"
qemu-io -f raw -c "write -P 0x11 0 48M" -c flush "$(uri_a)" >/dev/null
nb disconnect r0 >/dev/null 2>&1
check "apart" wait_for 20 jcheck a "p['connection']!='Connected'"
check "a writes 48 MiB b lacks" \
	bash -c "qemu-io -f raw -c 'write -P 0x51 0 48M' -c flush '$(uri_a)' | grep -q '^wrote'"
nb connect r0 >/dev/null 2>&1
check "b resyncs from a (slowly)" wait_for 20 jcheck a "p['replication']=='SyncSource'"
check "a reports b's disk Inconsistent while it is SyncTarget" jcheck a "p['disk']=='Inconsistent'"
# a's disk fails now: the last MiB cannot have reached b at 4 MiB/s
printf 'eio any 0 %d\n' $((64 * M)) >"$FA"
qemu-io -f raw -r -c "read -P 0x51 47M 64k" "$(uri_a)" >"$T/read.out" 2>&1
cat "$T/read.out"
check "a's disk failed during the resync: Diskless" wait_for 10 jcheck a "o['disk']=='Diskless'"
check "the read did not return b's old data" bash -c "! grep -q 'Pattern verification failed' '$T/read.out'"
check "a read of a block b lacks fails or is right, never old" bash -c \
	"qemu-io -f raw -r -c 'read -P 0x51 46M 64k' '$(uri_a)' 2>&1 | tee '$T/read2.out'; ! grep -q 'Pattern verification failed' '$T/read2.out'"
check "a says the resync stopped, b stays Inconsistent" \
	wait_for 10 bash -c "grep -q 'resync stopped' '$T/ra/r0.log'"
check "... b's own disk is Inconsistent, not UpToDate with data missing" jcheck b "o['disk']=='Inconsistent'"
na down r0 --force >/dev/null 2>&1
: >"$FA"
finish
