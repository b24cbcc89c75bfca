#!/usr/bin/env bash
# three_disks_return — a Secondary that was down comes back able to reach
# the other Secondary but not the Primary (checker3d, seed 544721730). The
# two Secondaries defer the resync to the Primary ("a third node is Primary
# and resyncs the node behind"); that deferral is no agreement that the
# returning disk is current: it must not become UpToDate at its old
# generation, or it later meets the Primary as a split brain and a write
# it missed is never resynced. Healed, it gets every write from the Primary.
# Then a partial partition (a-c cut, b sees both): c is not promoted
# while b serves Primary a, and when a and c are promoted at once b never
# takes writes of two Primaries; last, a and b promoted at once with every
# link up never stay connected as two Primaries. After each: every
# acknowledged write on all three disks, identical disks.
source "$(dirname "$0")/lib.sh"
mknet3
# Every node holds a peer's promotion for 1.5 s between the check that no
# other Primary is connected and the store of the new role: two peers'
# promotions arrive together on two receiver threads at b below, and both
# passed their check before either was stored (CI: b took both Primaries'
# writes). With the window open every run meets that race.
export DIPOLE_TEST_PAUSE=take-primary=1500
mkres3d 64M "quorum majority; on-no-quorum suspend-io;"

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
check "healed: converged" wait_for 60 synced3
check "c has a's write" has c 0x5a@1M
no_split_brain() { md5_all_equal && all3 "all(x['split_brains'] == 0 for x in o['peers'])"; }
check "identical disks, no split brain" no_split_brain

# ---- a second Primary through a partial partition ---------------------------
# Only a-c is cut: b still sees a, its Primary, and c sees b. c has quorum
# with b, but b's handshake says it is connected to a Primary: c's
# promotion is refused until a is gone or demoted (b then handshakes
# again and says so).
cut3 a c
check "a-c cut: c sees a gone" wait_for 30 peer_conn c a Connecting
sleep 8 # (past c's wait to compare with b after losing the Primary)
expect_rc "c's promotion is refused: b is connected to Primary a" 3 "connected to another node that is Primary" \
	nc primary r0
expect_rc "... and again" 3 "connected to another node that is Primary" nc primary r0
check "a's write completes (on a and b)" qemu-io -f raw -c "write -P 0x6a 3M 64k" -c flush "$(uri_a)"
check "a is demoted" na secondary r0
check "c is promoted once a is Secondary (b told it)" wait_for 30 nc primary r0
check "c's write completes (on c and b)" qemu-io -f raw -c "write -P 0x6c 2M 64k" -c flush "$(uri_c)"
check "c is demoted" nc secondary r0
heal3 a c
check "healed: converged" wait_for 60 synced3
check "every acknowledged write is on all three" all3_have 0x5a@1M 0x6a@3M 0x6c@2M
check "identical disks" md5_all_equal

# ---- two promotions at once, a-c cut ----------------------------------------
# Both may pass their check before b's handshakes tell them of the other;
# b then drops the one that became Primary second, which has no quorum
# alone: its writes are held and fail once it is demoted. Never are both
# Primaries' writes on b.
cut3 a c
check "a-c cut again" wait_for 30 peer_conn c a Connecting
sleep 8
na primary r0 >/dev/null 2>&1 & nc primary r0 >/dev/null 2>&1 & wait
not_two() { ! jcheck b "len([x for x in o['peers'] if x['role'] == 'Primary' and x['connection'] == 'Connected']) > 1"; }
check "b is not connected to two Primaries" not_two
wbg s7a a 0x7a 4M; wbg s7c c 0x7c 5M
sleep 3
check "b is still not connected to two Primaries" not_two
one_ok() { [ "$( (done_ok s7a && echo a; done_ok s7c && echo c) | wc -l)" = 1 ]; }
check "exactly one of the two writes completed" one_ok
na secondary r0 >/dev/null 2>&1; nc secondary r0 >/dev/null 2>&1
heal3 a c
settled() { [ -s "$T/s7a.rc" ] && [ -s "$T/s7c.rc" ]; }
check "the other write failed once its node was demoted" wait_for 30 settled
sleep 3
# the one that lost: after a split brain, its (unacknowledged) changes go
if done_ok s7a; then win=a lose=c; else win=c lose=a; fi
"n$lose" connect r0 --discard-my-data >/dev/null 2>&1; "n$win" connect r0 >/dev/null 2>&1
nb connect r0 >/dev/null 2>&1
check "converged" wait_for 60 synced3
acked7() { all3_have 0x5a@1M 0x6a@3M 0x6c@2M && if [ $win = a ]; then all3_have 0x7a@4M; else all3_have 0x7c@5M; fi; }
check "every acknowledged write is on all three" acked7
nacked() { if [ $win = a ]; then ! rd a 0x7c 5M && ! rd b 0x7c 5M && ! rd c 0x7c 5M
	else ! rd a 0x7a 4M && ! rd b 0x7a 4M && ! rd c 0x7a 4M; fi; }
check "the failed write is on no disk" nacked
check "identical disks, nothing lost" md5_all_equal

# ---- `primary` on a and b at the same moment, every link up -----------------
# Both may pass their check; connected, their writes would cross with
# nothing marked. Each drops the other instead, and c keeps one: the
# other is alone, without quorum, and its write fails once demoted.
check "converged before the race" wait_for 60 synced3
na primary r0 >/dev/null 2>&1 & nb primary r0 >/dev/null 2>&1 & wait
apart() { ! jcheck a "o['role'] == 'Primary' and any(x['name'] == 'b' and x['role'] == 'Primary' and \
x['connection'] == 'Connected' for x in o['peers'])"; }
check "a and b are not two connected Primaries" apart
wbg s9a a 0x9a 6M; wbg s9b b 0x9b 6M
sleep 3
check "a and b are still not two connected Primaries" apart
na secondary r0 >/dev/null 2>&1; nb secondary r0 >/dev/null 2>&1
settled9() { [ -s "$T/s9a.rc" ] && [ -s "$T/s9b.rc" ]; }
check "both writes settled once demoted" wait_for 30 settled9
one9() { [ "$( (done_ok s9a && echo a; done_ok s9b && echo b) | wc -l)" = 1 ]; }
check "exactly one of the two writes completed" one9
sleep 3
if done_ok s9a; then win=a lose=b; else win=b lose=a; fi
"n$lose" connect r0 --discard-my-data >/dev/null 2>&1; "n$win" connect r0 >/dev/null 2>&1; nc connect r0 >/dev/null 2>&1
check "converged after the race" wait_for 60 synced3
check "the acknowledged one is on all three" all3_have 0x9$win@6M
check "identical disks after the race" md5_all_equal
for n in a b c; do "n$n" down r0 >/dev/null 2>&1; done
finish
