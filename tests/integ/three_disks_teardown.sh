#!/usr/bin/env bash
# three_disks_teardown — losing a peer while a resync to it and to another
# peer runs and writes wait (the deadlock checker3d found). a is SyncSource
# of b and c (rate-limited, so both last); b's disk stalls writes in one
# range, so a's write w0 there waits for b's ack in fan_end, still holding
# c's resync lock shared; c's resync thread then waits for that lock
# exclusively, so w1 (under e->fanout, b's lock shared already) waits for
# c's; b's resync thread waits for b's lock behind w1. b dies: a's teardown
# of b stops b's resync thread, and only after that fails the writes in
# flight to b (w0). The resync thread must not wait for its lock once
# asked to stop, or a hangs for good with w0 and w1.
source "$(dirname "$0")/lib.sh"
mknet3
M=1048576
DISK_OPTS="resync-rate 4M;" mkres3d 64M
FB=$T/faults.b
: >"$FB"
peer() {
	"n$1" status r0 --json 2>/dev/null | python3 -c "
import json, sys
o = json.loads(sys.stdin.read()); q = [x for x in o['peers'] if x['name'] == '$2'][0]
sys.exit(0 if ($3) else 1)"
}
for n in a b c; do "n$n" create-md r0 >/dev/null 2>&1; done
na up r0 --device none >/dev/null 2>&1
DIPOLE_FAULTS=$FB nb up r0 --device none >/dev/null 2>&1
nc up r0 --device none >/dev/null 2>&1
check "full mesh connected" wait_for 20 all3 "all(x['connection'] == 'Connected' for x in o['peers'])"
na primary r0 --force >/dev/null 2>&1
sources() { peer a b "q['replication'] == 'SyncSource'" && peer a c "q['replication'] == 'SyncSource'"; }
check "a is SyncSource of b and c" wait_for 10 sources

printf 'stall write %d %d\n' $((32 * M)) $M >"$FB"
wbg w0 a 0x41 32M
# c's resync thread (a chunk every 250 ms) comes to wait for c's lock
sleep 1
wbg w1 a 0x42 40M
# b's resync thread comes to wait for b's lock behind w1
sleep 1
check "w0 and w1 wait (the locks are set up as in checker3d)" all_pending w0 w1
check "a is still SyncSource of b and c" sources
kill -9 "$(cat "$T/rb/r0.pid")"
check "a sees b gone" wait_for 20 peer a b "q['connection'] != 'Connected'"
check "a's teardown of b completes w0 and w1" wait_for 30 all_ok w0 w1
check "c's sync finishes" wait_for 60 peer a c "q['replication'] == 'Established' and q['disk'] == 'UpToDate'"

rm -f "$FB"
nb up r0 --device none >/dev/null 2>&1
check "b back: resynced" wait_for 60 all3 "o['disk'] == 'UpToDate' and all(x['connection'] == 'Connected' and \
x['out_of_sync_bytes'] == 0 for x in o['peers'])"
check "all three hold w0 and w1" all3_have 0x41@32M 0x42@40M
check "identical images" md5_all_equal
for n in a b c; do timeout 30 "n$n" down r0 >/dev/null 2>&1; done
finish
