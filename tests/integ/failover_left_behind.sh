#!/usr/bin/env bash
# failover_left_behind — the state sequence behind checker3's "promoting b
# failed: local disk is Outdated" (CHECK_SEED=49927260): a is Primary, b its
# disk peer, c a diskless tiebreaker. The a-b link fails (the checker's
# packet loss can expire a's lease on b the same way); a goes on alone with
# c's record and acknowledges a write b never got; then a loses power. b
# must refuse promotion (its disk is Outdated: promoting it would lose that
# write), stay Outdated while a is away, and become UpToDate — and
# promotable, with a's write — once a is back and has resynced it.
source "$(dirname "$0")/lib.sh"
mknet3
mkres3 64M
sed -i 's/allow-two-primaries; //' "$T/r.res"

check "three nodes up" three_up
check "full mesh" wait_for 20 all_connected
na primary r0 --force >/dev/null
check "initial sync to b" wait_for 60 jcheck b "o['disk'] == 'UpToDate'"

cut3 a b
wbg w1 a 0x71 1M
check "a-b link cut: a goes on alone and acknowledges its write" wait_for 30 done_ok w1
check "b is Outdated" wait_for 20 jcheck b "o['disk'] == 'Outdated'"

# power cut of a: its links die, then the process
cut3 a c
kill -9 "$(cat "$T/ra/r0.pid")"
heal3 a b
check "b sees a gone" wait_for 30 jcheck b "o['peers'][0]['connection'] != 'Connected'"
expect_rc "b refuses promotion: Outdated, because c recorded that a went on without it" 3 \
	"local disk is Outdated \(a voter recorded that the disk peer went on without this node\)" nb primary r0
check "b's status says why its disk is Outdated (JSON)" jcheck b \
	"o['disk_state_reason'] == 'a voter recorded that the disk peer went on without this node'"
expect_rc "b's status says why its disk is Outdated (text)" 0 \
	"disk Outdated: a voter recorded that the disk peer went on without this node" nb status r0
sleep 3
check "b stays Outdated while a is away (a's write exists only on a)" jcheck b "o['disk'] == 'Outdated' and \
o['role'] == 'Secondary'"

heal3 a c
check "a restarts" na up r0 --device none
check "a resyncs b: both UpToDate, in sync" wait_for 60 both "o['disk'] == 'UpToDate' and \
p['out_of_sync_bytes'] == 0" "o['disk'] == 'UpToDate' and p['out_of_sync_bytes'] == 0"
check "b may now be promoted" nb primary r0
check "b has a's acknowledged write" has b 0x71@1M
check "no split brain, identical disks" sane_end
for n in a b c; do "n$n" down r0 --force >/dev/null 2>&1; done
finish
