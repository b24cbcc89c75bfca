#!/usr/bin/env bash
# three_disks_quorum — three nodes with disks, quorum majority, a writer on
# every side of each partition: AB|C and AC|B (the Primary's side goes on,
# the lone Secondary is Outdated and cannot be promoted), A|BC (a's write is held: it reached one disk of three; b is
# promoted and writes with c), A|B|C (nobody writes). After each healing:
# which writes completed, that every acknowledged write is on all three
# disks, identical disks, no split brain.
source "$(dirname "$0")/lib.sh"
mknet3
mkres3d 64M "quorum majority; on-no-quorum suspend-io;"
quorum_is() { local n; for n in $2; do jcheck "$n" "o['quorum']['have'] == $1" || return 1; done; }
sees_gone() { jcheck "$1" "[x['connection'] for x in o['peers'] if x['name'] == '$2'] != ['Connected']"; }

up3() {
	for n in a b c; do "n$n" create-md r0 --force >/dev/null 2>&1 || return 1; done
	na up r0 --device none && nb up r0 --device none && nc up r0 --device none
}
check "three disk nodes with quorum come up" up3
check "quorum 3 of 3 votes, 2 needed" wait_for 20 jcheck a "o['quorum']['have'] and o['quorum']['votes'] == 3 and \
o['quorum']['needed'] == 2"
na primary r0 --force >/dev/null
check "initial sync" wait_for 60 synced3
wbg w0 a 0x10 0
check "a write with every disk connected completes" wait_for 20 done_ok w0

# lone X BYTE OFF NAME SHAPE: X (a Secondary) is cut off from both others; a's
# write NAME of BYTE at OFF completes on the two disks left, X is Outdated and
# cannot be promoted; healed, all converge
lone() {
	local x=$1 y
	for y in a b c; do [ "$y" = "$x" ] || cut3 "$x" "$y"; done
	wbg "$4" a "$2" "$3"
	check "$5: a's write completes (on two disks of three)" wait_for 30 done_ok "$4"
	check "$5: $x has no quorum, its disk is Outdated" wait_for 20 jcheck "$x" "not o['quorum']['have'] and \
o['disk'] == 'Outdated'"
	expect_rc "$5: $x cannot be promoted" 3 "no quorum" "n$x" primary r0
	for y in a b c; do [ "$y" = "$x" ] || heal3 "$x" "$y"; done
	check "$5 healed: converged" wait_for 60 synced3
}
lone c 0x21 1M s1a "AB|C"
check "AB|C: every acknowledged write is on all three" all3_have 0x10@0 0x21@1M
lone b 0x51 5M s5a "AC|B"
check "AC|B: every acknowledged write is on all three" all3_have 0x10@0 0x21@1M 0x51@5M

# ---- A | BC: the Primary alone ----------------------------------------------
cut3 a b; cut3 a c
wbg s2a a 0x31 2M
both_see_a_gone() { sees_gone b a && sees_gone c a; }
check "A|BC: b and c see a gone" wait_for 30 both_see_a_gone
check "A|BC: a's write is held (it reached one disk of three)" pending s2a
check "A|BC: a has no quorum, I/O suspended, disk Outdated" wait_for 20 jcheck a "not o['quorum']['have'] and \
o['io_suspended'] and o['disk'] == 'Outdated'"
check "A|BC: b is promoted (quorum with c)" wait_for 30 nb primary r0
wbg s2b b 0x32 3M
check "A|BC: b's write completes" wait_for 30 done_ok s2b
check "A|BC: a's write is still held" pending s2a
heal3 a b; heal3 a c
sleep 3
check "A|BC healed: a stays apart while b is Primary (two Primaries)" jcheck a "not o['quorum']['have'] and \
o['io_suspended']"
check "A|BC healed: a's held write has not completed" pending s2a
check "the administrator demotes a" na secondary r0
na connect r0 >/dev/null; nb connect r0 >/dev/null; nc connect r0 >/dev/null
failed() { [ -s "$T/$1.rc" ] && [ "$(cat "$T/$1.rc")" != 0 ]; }
check "a's held write fails (it was never acknowledged)" wait_for 60 failed s2a
check "A|BC: converged with b as Primary" wait_for 60 synced3
acked_not_held() { all3_have 0x10@0 0x21@1M 0x32@3M && ! rd a 0x31 2M && ! rd b 0x31 2M && ! rd c 0x31 2M; }
check "A|BC: every acknowledged write is on all three, a's unacknowledged one on none" acked_not_held
check "A|BC: identical disks" md5_all_equal

# ---- A | B | C: nobody writes --------------------------------------------------
cut3 a b; cut3 a c; cut3 b c
wbg s3b b 0x41 4M
check "A|B|C: nobody has quorum" wait_for 30 quorum_is False "a b c"
check "A|B|C: b's write is held" pending s3b
heal3 a b; heal3 a c; heal3 b c
check "A|B|C healed: b's write completes" wait_for 60 done_ok s3b
check "A|B|C healed: converged" wait_for 60 synced3
check "every acknowledged write is on all three" all3_have 0x10@0 0x21@1M 0x32@3M 0x41@4M 0x51@5M
no_split_brain() { md5_all_equal && all3 "all(x['split_brains'] == 0 for x in o['peers'])"; }
check "identical disks, no split brain" no_split_brain
for n in a b c; do "n$n" down r0 >/dev/null 2>&1; done
finish
