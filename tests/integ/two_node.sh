#!/usr/bin/env bash
# Two nodes in network namespaces: initial sync, replicated writes (protocol
# C), failover, roles, dual-primary, writes during a rate-limited sync.
. "$(dirname "$0")/lib.sh"
mknet2
mkres2 256M "protocol C;"
SIZE=268386304
na create-md r0 >/dev/null 2>&1
nb create-md r0 >/dev/null 2>&1
expect_rc "up a" 0 "up on a" na up r0 --device none
expect_rc "up b" 0 "up on b" nb up r0 --device none
check "both sides report Connected, both Inconsistent" \
	wait_for 20 both "p['connection']=='Connected' and o['disk']=='Inconsistent'" "p['connection']=='Connected'"
expect_rc "primary without --force refused on Inconsistent (exit 3)" 3 "not UpToDate" na primary r0
expect_rc "primary --force on a starts the initial sync" 0 "" na primary r0 --force
check "initial sync completes: both UpToDate, Established" \
	wait_for 60 both "p['disk']=='UpToDate'" "o['disk']=='UpToDate' and p['replication']=='Established' and p['role']=='Primary'"
check "after initial sync the data areas are byte-identical" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"
check "b counted the sync as received bytes" jcheck b "o['stats']['received_bytes'] >= $SIZE"

head -c 64M /dev/urandom >"$T/rand"
check "write 64 MiB on a through NBD" nbdcopy "$T/rand" "$(uri_a)"
check "protocol C: the data is on b's disk when the write completed" cmp -n 67108864 "$T/rand" "$T/b.img"
check "a's peer shows nothing out of sync" jcheck a "p['out_of_sync_bytes'] == 0 and o['stats']['sent_bytes'] >= 64 << 20"
expect_rc "b cannot become Primary while a is (no allow-two-primaries): exit 3" 3 "peer a is Primary" nb primary r0
expect_rc "demote a" 0 "" na secondary r0
check "b sees a as Secondary" wait_for 10 jcheck b "p['role'] == 'Secondary'"
expect_rc "promote b" 0 "" nb primary r0
check "read back through b equals what was written on a" bash -c "nbdcopy '$(uri_b)' - | head -c 64M | cmp - $T/rand"
# (and writes that are not page-aligned: the receiver's aligned fast path
# is not theirs, they take the buffered one)
qemu-io -f raw -c 'write -P 0x77 100M 3M' -c 'write -z 110M 1M' -c 'discard 120M 1M' \
	-c 'write -P 0x31 209716200 5000' -c 'write -P 0x32 215000000 512' -c 'write -P 0x33 220000256 1M' \
	-c flush "$(uri_b)" >/dev/null
check "writes (aligned or not), zeroes and discards on b reach a" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"
check "b's flush closed an epoch that a acknowledged as stable" \
	both "p['peer_epoch_stable'] >= 1" "p['epoch_stable'] >= 1 and p['epoch'] > p['epoch_stable']"

# an acknowledged write survives the writer's death
nb secondary r0 >/dev/null 2>&1
na primary r0 >/dev/null 2>&1
qemu-io -f raw -c 'write -P 0xc4 7M 1M' "$(uri_a)" >/dev/null
kill -9 "$(cat "$T/ra/r0.pid")"
check "protocol C ack means b has it: a killed right after the ack" \
	bash -c "dd if=$T/b.img bs=1M skip=7 count=1 2>/dev/null | tr -d '\304' | wc -c | grep -qx 0"
check "b notices a is gone" wait_for 20 jcheck b "p['connection'] == 'Connecting'"
expect_rc "b takes over as Primary" 0 "" nb primary r0
check "b serves the last acknowledged write" bash -c "qemu-io -f raw -c 'read -P 0xc4 7M 1M' '$(uri_b)' >/dev/null 2>&1"
qemu-io -f raw -c 'write -P 0x99 30M 2M' "$(uri_b)" >/dev/null
check "b marks what a missed as out of sync" jcheck b "p['out_of_sync_bytes'] >= 2 << 20"
nb secondary r0 >/dev/null 2>&1
expect_rc "a comes back" 0 "up on a" na up r0 --device none
check "a resyncs what it missed from b and both are identical" \
	wait_for 30 jcheck b "p['connection']=='Connected' and p['out_of_sync_bytes']==0 and p['replication']=='Established'"
check "after the resync the data areas are byte-identical" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
finish
