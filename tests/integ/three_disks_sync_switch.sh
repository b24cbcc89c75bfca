#!/usr/bin/env bash
# three_disks_sync_switch — a SyncTarget whose resync source dies, and then
# its new Primary too: the Primary's acknowledged writes, stored on the
# Inconsistent SyncTarget and on the Primary only, are never resynced away
# from an older generation. b is Primary (c resyncs from it), demotes and
# dies; c resyncs from a; a is promoted, writes, dies. b returns: its data
# is older than what c holds, and c is Inconsistent, so neither is a
# source (c followed a into its generation); once a is back, all three
# converge with every write. Before that, a clean switchover (a demoted,
# b promoted) costs no resync between the Secondaries.
source "$(dirname "$0")/lib.sh"
mknet3
DISK_OPTS="resync-rate 4M;" mkres3d 32M "quorum majority;"
check "three disks up, a Primary, synced" up3_synced
check "a demoted" na secondary r0
check "b promoted" nb primary r0
sleep 3
check "a clean switchover: no resync between b and c" all3 "o['disk'] == 'UpToDate' and \
all(x['replication'] == 'Established' and x['out_of_sync_bytes'] == 0 for x in o['peers'])"
c_synctarget_of_b
sleep 1
check "b demoted" nb secondary r0
kill -9 "$(pid_of b)"
check "c sees b gone" wait_for 20 peer_conn c b Connecting
sleep 2
check "a promoted" na primary r0
check "a writes" qemu-io -f raw -c "write -P 0x77 12M 64k" -c "write -P 0x78 28M 64k" -c flush "$(uri_a)"
kill -9 "$(pid_of a)"
check "c sees a gone" wait_for 20 peer_conn c a Connecting
check "b back" nb up r0 --device none
check "b and c connect" wait_for 30 peer_conn b c Connected
sleep 5
check "b is not UpToDate: c holds writes of a newer generation" jcheck b "o['disk'] != 'UpToDate'"
check "c is no SyncTarget of b" jcheck c "all(x['replication'] != 'SyncTarget' for x in o['peers'])"
check "a comes back" na up r0 --device none
check "converged" wait_for 90 synced3
check "a's acknowledged writes are on all three" all3_have 0x77@12M 0x78@28M
check "b's earlier writes too" all3_have 0x11@0 0x11@15M
check "identical disks" md5_all_equal
for n in a b c; do timeout 30 "n$n" down r0 >/dev/null 2>&1; done
finish
