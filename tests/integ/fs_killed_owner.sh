#!/usr/bin/env bash
# fs_killed_owner — an owner's daemon SIGKILLed while its kernel filesystem
# waits on the device (docs/dipolefs.md "A killed owner's last thread"). A
# worker thread inside an fsync of the kernel filesystem waits for journal
# writes that the loop device sent as FUSE requests to RUNDIR/RES.fuse,
# which nobody serves any more; that thread keeps the process's
# descriptors (its /dev/fuse among them) alive, so the kernel never ends
# the connection, and the daemon stayed a zombie in D state for good,
# with `sync` on the host hanging too, until someone ran `umount -f` of
# RES.fuse. The daemon's watchdog process (PR_SET_PDEATHSIG) now aborts
# that FUSE connection when the daemon's main thread dies.
# Deterministic: a's disk writes are stalled (the fault backend's `stall`)
# while a writer fsyncs through a's mount, so an fsync is surely inside
# the kernel filesystem at the kill. Outcomes: the process is gone without
# any help, the host's sync returns, and a comes up again and mounts.
. "$(dirname "$0")/lib.sh"
mknet2
mkres2 128M 'protocol C; shared-secret "killed-owner";'
mkdir -p "$T/ma"
: >"$T/faults.a"
FAULTS_A=$T/faults.a fs2_start "$T/ma"
PID=$(cat "$T/ra/r0.pid")
check "a watchdog process runs beside the daemon (its child)" eval "[ -n \"\$(ps -o pid= --ppid $PID)\" ]"

fsync_loop() { local i=0; while :; do i=$((i + 1)); dd if=/dev/urandom of="$T/ma/f.$((i % 8))" bs=64k count=4 conv=fsync 2>/dev/null || return; done; }
bg fsync_loop
sleep 1
echo "stall write 0 $((128 << 20))" >"$T/faults.a"
sleep 2
check "a's daemon has a thread waiting in the kernel (D state)" eval \
	"grep -l '^State:.*D' /proc/$PID/task/*/status >/dev/null 2>&1"
kill -9 "$PID"
check "SIGKILLed, a's daemon is gone by itself (no zombie left in D state)" wait_for 30 test ! -e "/proc/$PID"
# (a sync stuck in D state cannot be killed: it runs aside, and cleanup's
# abort of the test's FUSE connections frees it if it is stuck)
bg eval "sync; touch $T/synced"
check "the host's sync returns" wait_for 30 test -e "$T/synced"
check "no FUSE mount of a's device is left" eval "! grep -q ' $T/ra/r0.fuse ' /proc/mounts"
: >"$T/faults.a"
umount -l "$T/ma" 2>/dev/null
check "a comes up again" eval 'DIPOLE_FAULTS=$T/faults.a na up r0 >/dev/null'
check "... resyncs with b" wait_for 60 jcheck a "o['disk'] == 'UpToDate' and p['connection'] == 'Connected'"
expect_rc "... and mounts" 0 "" na mount r0 "$T/ma"
check "ext4 on a's mount reads what was fsynced" eval "ls $T/ma >/dev/null"
na umount "$T/ma" >/dev/null 2>&1
nb down r0 --force >/dev/null 2>&1
na down r0 --force >/dev/null 2>&1
finish
