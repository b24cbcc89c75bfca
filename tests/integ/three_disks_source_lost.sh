#!/usr/bin/env bash
# three_disks_source_lost — a SyncTarget whose resync source dies while it
# handshakes with another UpToDate peer. c resyncs from b (all three
# Secondaries; the a-c link cut at first, so b is the source); the a-c
# link comes back and, while c's handshake with a is in progress (held
# open by a test pause), b dies. c's HELLO to a said "SyncTarget of
# another peer", which defers the resync from a; c's "resync stopped"
# came while the a-c link was not up, so nothing asked again: c stayed
# Inconsistent next to an UpToDate a for good. Now a HELLO whose
# busy-target flag no longer holds is stale (connecting again), and c
# resyncs from a.
source "$(dirname "$0")/lib.sh"
mknet3
DISK_OPTS="resync-rate 4M;" mkres3d 32M # (no quorum: a stays UpToDate when b dies)
check "three disks up, a Primary, synced" up3_synced
check "c goes down" nc down r0
check "a writes 16 MiB while c is down" qemu-io -f raw -c "write -P 0x31 0 16M" -c flush "$(uri_a)"
check "a is demoted (no Primary)" na secondary r0
cut3 a c
check "c comes back (each handshake held 5 s), reaching only b" env DIPOLE_TEST_PAUSE=agree=5000 nsenter --net=/run/netns/$NS_C "$DIPOLE" -c "$T/r.res" --node c --run-dir "$T/rc" up r0 --device none
st() { jcheck c "any(x['name'] == 'b' and x['replication'] == 'SyncTarget' for x in o['peers'])"; }
check "c is SyncTarget of b" wait_for 30 st
heal3 a c
sleep 2.5 # (a and c are in their handshake: c waits 5 s before checking its HELLO; it
# dials again every second)
kill -9 "$(pid_of b)"
check "c sees b gone" wait_for 20 peer_conn c b Connecting
synced_ac() { jcheck c "o['disk'] == 'UpToDate' and any(x['name'] == 'a' and x['connection'] == 'Connected' and \
x['out_of_sync_bytes'] == 0 for x in o['peers'])"; }
check "c resyncs from a: UpToDate" wait_for 60 synced_ac
check "c has a's writes" has c 0x31@0 0x31@15M
check "b comes back" nb up r0 --device none
check "converged" wait_for 60 synced3
check "identical disks" md5_all_equal
for n in a b c; do timeout 30 "n$n" down r0 >/dev/null 2>&1; done
finish
