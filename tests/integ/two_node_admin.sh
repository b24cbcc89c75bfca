#!/usr/bin/env bash
# disconnect / connect: an administrative partition, writes tracked in the
# bitmap and resynced; a refusal by state (two Primaries) stays StandAlone
# until `connect`.
. "$(dirname "$0")/lib.sh"
mknet2
SIZE=268386304
mkres2 256M "protocol C;"
check "pair comes up and syncs" pair_up
expect_rc "disconnect" 0 "" na disconnect r0
check "a is StandAlone, saying why" wait_for 10 jcheck a "p['connection'] == 'StandAlone' and 'administrator' in p['reason']"
check "b sees the peer gone (and keeps trying)" wait_for 20 jcheck b "p['connection'] == 'Connecting'"
head -c 4M /dev/urandom >"$T/rand"
check "a keeps serving writes while disconnected" nbdcopy "$T/rand" "$(uri_a)"
check "the writes are tracked as out of sync" jcheck a "p['out_of_sync_bytes'] >= 4 << 20"
sleep 2 # two connect-int periods: a must stay StandAlone, not reconnect by itself
check "a stays StandAlone until told" jcheck a "p['connection'] == 'StandAlone'"
expect_rc "connect" 0 "" na connect r0
check "connected again, only the marked blocks resynced" \
	wait_for 30 both "p['connection'] == 'Connected' and p['out_of_sync_bytes'] == 0 and p['replication'] == 'Established'" "o['disk'] == 'UpToDate'"
check "replicas identical" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"
check "the resync moved about what changed, not the device" jcheck b "o['stats']['received_bytes'] < $SIZE + (16 << 20)"

# two Primaries without allow-two-primaries: refused, StandAlone until connect
na disconnect r0 >/dev/null 2>&1
wait_for 20 jcheck b "p['connection'] != 'Connected'"
expect_rc "b may be promoted while it cannot see a" 0 "" nb primary r0
expect_rc "connect" 0 "" na connect r0
check "both Primary: the connection is refused, both StandAlone with the reason" \
	wait_for 20 both "p['connection'] == 'StandAlone' and 'both nodes are Primary' in p['reason']" "p['connection'] == 'StandAlone'"
nb secondary r0 >/dev/null 2>&1
expect_rc "after b steps down, connect again (on both, as with DRBD)" 0 "" na connect r0
nb connect r0 >/dev/null 2>&1
# both were Primary while apart (each started a new data generation): that
# is a split brain even though b wrote nothing; the default policy is disconnect
check "split brain detected: both StandAlone, the reason says what to do" \
	wait_for 20 both "p['connection'] == 'StandAlone' and 'split brain' in p['reason'] and '--discard-my-data' in p['reason']" \
	"p['connection'] == 'StandAlone' and 'split brain' in p['reason']"
expect_rc "connect --discard-my-data on b (the victim)" 0 "" nb connect r0 --discard-my-data
expect_rc "connect on a" 0 "" na connect r0
check "they connect and b resyncs from a" \
	wait_for 30 both "p['connection'] == 'Connected' and p['replication'] == 'Established' and p['out_of_sync_bytes'] == 0" \
	"p['connection'] == 'Connected' and o['disk'] == 'UpToDate'"
check "replicas identical after the manual recovery" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"
check "both count the split brain" both "p['split_brains'] >= 1" "p['split_brains'] >= 1"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
finish
