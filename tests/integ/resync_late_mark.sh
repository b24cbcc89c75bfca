#!/usr/bin/env bash
# A block the SyncSource marks after it sent its bitmap (a write that began
# while the peer was away and completed once it was back) is resynced too:
# the SyncTarget applies resync data for blocks its bitmap does not mark
# (docs/failures.md "Three disks, a replica that differs"). DIPOLE_TEST_PAUSE
# holds a's marking of a write that missed b for 3 s: b reconnects and gets
# a's bitmap in between. Before the fix b skipped that block and the disks
# differed, both sides counting it in sync.
. "$(dirname "$0")/lib.sh"
mknet2
M=1048576
DISK_OPTS="resync-rate 4M; c-max-rate 4M;" mkres2 64M "protocol C;"
na create-md r0 >/dev/null 2>&1
nb create-md r0 >/dev/null 2>&1
DIPOLE_TEST_PAUSE=fan-mark=3000 na up r0 --device none >/dev/null 2>&1
nb up r0 --device none >/dev/null 2>&1
check "connected" wait_for 20 both "p['connection']=='Connected'" "p['connection']=='Connected'"
na primary r0 --force >/dev/null 2>&1
check "synced" wait_for 60 jcheck b "o['disk']=='UpToDate'"
SIZE=$(na status r0 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['size_bytes'])")
nb disconnect r0 >/dev/null 2>&1
check "apart" wait_for 20 jcheck a "p['connection']!='Connected'"
check "a writes 20 MiB b lacks (a resync of 5 s at 4 MiB/s)" \
	bash -c "qemu-io -f raw -c 'write -P 0x51 0 20M' -c flush '$(uri_a)' | grep -q '^wrote'"
# a write b misses, marked for b only 3 s later
wbg late a 0x77 $((40 * M))
sleep 0.5
nb connect r0 >/dev/null 2>&1
check "b is SyncTarget before a marks the late write" wait_for 2 jcheck b "p['replication']=='SyncTarget'"
check "the late write completes" wait_for 20 done_ok late
check "the resync ends: both UpToDate, nothing out of sync" wait_for 30 both \
	"o['disk']=='UpToDate' and p['replication']=='Established' and p['out_of_sync_bytes']==0" \
	"o['disk']=='UpToDate' and p['replication']=='Established' and p['out_of_sync_bytes']==0"
check "b has the late write" bash -c "dd if=$T/b.img bs=64k skip=640 count=1 2>/dev/null | tr -d '\167' | wc -c | grep -qx 0"
check "the data areas are byte-identical" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
finish
