#!/usr/bin/env bash
# three_disks_return — a Secondary that was down comes back able to reach
# the other Secondary but not the Primary (checker3d, seed 544721730). The
# two Secondaries defer the resync to the Primary ("a third node is Primary
# and resyncs the node behind"); that deferral is no agreement that the
# returning disk is current: it must not become UpToDate at its old
# generation, or it later meets the Primary as a split brain and a write
# it missed is never resynced. Healed, it gets every write from the Primary.
# Then a partial partition (a-c cut, b sees both) and c promoted: b must
# not take writes of two Primaries.
source "$(dirname "$0")/lib.sh"
mknet3
mkres3d 64M "quorum majority; on-no-quorum suspend-io;"
synced() { all3 "o['disk'] == 'UpToDate' and not o['io_suspended'] and all(x['connection'] == 'Connected' and \
x['out_of_sync_bytes'] == 0 and x['replication'] == 'Established' for x in o['peers'])"; }
all_have_a() { has a 0x5a@1M 0x6a@3M && has b 0x5a@1M 0x6a@3M && has c 0x5a@1M 0x6a@3M && ! rd a 0x6c 2M && \
	! rd b 0x6c 2M && ! rd c 0x6c 2M; }
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

# ---- a second Primary through a partial partition ---------------------------
# Only a-c is cut: b still sees a, its Primary, and c sees b. c may be
# promoted (it has quorum with b; nothing like DRBD 9's cluster-wide
# two-phase state change asks b first), but b never serves two Primaries
# without allow-two-primaries: it drops c, so c's writes reach no other
# disk and cannot complete, while a's go on with b.
cut3 a c
check "a-c cut: c sees a gone" wait_for 30 peer_conn c a Connecting
sleep 8 # (past c's wait to compare with b after losing the Primary)
nc primary r0 >/dev/null 2>&1
not_two() { ! jcheck b "len([x for x in o['peers'] if x['role'] == 'Primary' and x['connection'] == 'Connected']) > 1"; }
check "b is never connected to two Primaries" not_two
wbg s1c c 0x6c 2M
check "a's write completes (on a and b)" qemu-io -f raw -c "write -P 0x6a 3M 64k" -c flush "$(uri_a)"
check "b has a's write" has b 0x6a@3M
sleep 2
check "c's write has not completed (no other disk takes it)" pending s1c
check "b stays apart from c while both a and c are Primary" not_two
nc secondary r0 >/dev/null 2>&1
heal3 a c
# c started a generation of its own when it was promoted without a: a and
# c see a split brain, in which only c's unacknowledged write is c's; the
# administrator drops it as after any split brain
sb_ac() { jcheck a "[x['split_brains'] for x in o['peers'] if x['name'] == 'c'] != [0]"; }
check "healed: a and c report the split brain" wait_for 30 sb_ac
nc connect r0 --discard-my-data >/dev/null 2>&1; na connect r0 >/dev/null 2>&1
check "c connects discarding its data: converged with a as Primary" wait_for 60 synced
failed() { [ -s "$T/$1.rc" ] && [ "$(cat "$T/$1.rc")" != 0 ]; }
check "c's held write failed: c was demoted before it could complete" failed s1c
check "a's writes on all three, c's unacknowledged one on none" all_have_a
check "identical disks" md5_all_equal
for n in a b c; do "n$n" down r0 >/dev/null 2>&1; done
finish
