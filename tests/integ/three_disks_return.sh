#!/usr/bin/env bash
# three_disks_return — a Secondary that was down comes back able to reach
# the other Secondary but not the Primary (checker3d, seed 544721730). The
# two Secondaries defer the resync to the Primary ("a third node is Primary
# and resyncs the node behind"); that deferral is no agreement that the
# returning disk is current: it must not become UpToDate at its old
# generation, or it later meets the Primary as a split brain and a write
# it missed is never resynced. Healed, it gets every write from the Primary.
source "$(dirname "$0")/lib.sh"
mknet3
mkres3d 64M "quorum majority; on-no-quorum suspend-io;"
synced() { all3 "o['disk'] == 'UpToDate' and not o['io_suspended'] and all(x['connection'] == 'Connected' and \
x['out_of_sync_bytes'] == 0 and x['replication'] == 'Established' for x in o['peers'])"; }
peer_conn() { jcheck "$1" "[x['connection'] for x in o['peers'] if x['name'] == '$2'] == ['$3']"; }

check "three disks up, a Primary, synced" up3_synced
check "c goes down" nc down r0
check "a sees c gone" wait_for 20 peer_conn a c Connecting
check "a writes while c is down (quorum with b)" qemu-io -f raw -c "write -P 0x5a 1M 64k" -c flush "$(uri_a)"
cut3 a c
check "c comes back, reaching only b" nc up r0 --device none
check "b and c connect" wait_for 30 peer_conn c b Connected
sleep 3
check "c is not UpToDate: it lacks a's write (a deferral is no agreement)" jcheck c "o['disk'] != 'UpToDate'"
refused() { ! nc primary r0; }
check "c cannot be promoted" refused
heal3 a c
check "healed: converged" wait_for 60 synced
check "c has a's write" has c 0x5a@1M
no_split_brain() { md5_all_equal && all3 "all(x['split_brains'] == 0 for x in o['peers'])"; }
check "identical disks, no split brain" no_split_brain
for n in a b c; do "n$n" down r0 >/dev/null 2>&1; done
finish
