#!/usr/bin/env bash
# quorum — two disk nodes (a, b, both Primary) and a diskless tiebreaker (c)
# in three namespaces with a link per pair. Every partition shape, with a
# writer on every side: which sides accepted writes, that every acknowledged
# write is on both disks after healing, that the disks converge with no
# split brain; a tiebreaker restart while a node is cut off.
source "$(dirname "$0")/lib.sh"
mknet3
NET_OPTS="ping-timeout 10;" mkres3 64M

quorum_is() { local n; for n in $2; do jcheck "$n" "o['quorum']['have'] == $1" || return 1; done; }
quorum_is() { local n; for n in $2; do jcheck "$n" "o['quorum']['have'] == $1" || return 1; done; }

check "three nodes come up (c without a disk)" three_up
check "full mesh: every node connected to both others" wait_for 20 all_connected
check "a lists both peers: b (disk) and c (vote link)" jcheck a "[x['name'] for x in o['peers']] == ['b', 'c'] and \
o['peers'][1]['link'] == 'vote' and o['peers'][1]['disk'] == 'Diskless'"
check "quorum majority: 3 of 3 votes, 2 needed" jcheck a "o['quorum']['have'] and o['quorum']['needed'] == 2"
expect_rc "the tiebreaker cannot be Primary" 3 "no disk" nc primary r0
na primary r0 --force >/dev/null
check "initial sync to b" wait_for 60 jcheck b "o['disk'] == 'UpToDate'"
cut3 b a; cut3 b c
check "b cut off: no quorum" wait_for 20 quorum_is False b
expect_rc "b cannot be promoted without quorum" 3 "no quorum" nb primary r0
heal3 b a; heal3 b c
check "b back" wait_for 30 all_connected
check "b Primary too (allow-two-primaries)" nb primary r0
wbg w0a a 0x10 0
wbg w0b b 0x11 1M
check "writes on both sides complete" wait_for 20 all_ok w0a w0b
check "each side's write is on both" both_have 0x10@0 0x11@1M

# ---- A | BC: a is alone, b goes on with c's vote --------------------------
cut3 a b; cut3 a c
wbg s1a a 0x21 2M
wbg s1b b 0x22 3M
check "A|BC: b (with quorum) completes its write" wait_for 30 done_ok s1b
sleep 1
check "A|BC: a's write is held (no quorum)" pending s1a
check "A|BC: a reports no quorum, I/O suspended, disk Outdated" jcheck a "not o['quorum']['have'] and \
o['io_suspended'] and o['disk'] == 'Outdated'"
events_no_quorum() { na events r0 --once | grep -q 'quorum:no votes:1/2.*io:suspended\|io:suspended.*quorum:no votes:1/2'; }
check "A|BC: a's events line says no quorum, I/O suspended" events_no_quorum
check "A|BC: b reports quorum and goes on alone" jcheck b "o['quorum']['have'] and o['quorum']['alone'] and \
not o['io_suspended']"
check "A|BC: c sees only b" jcheck c "[x['connection'] for x in o['peers']] == ['Connecting', 'Connected']"
heal3 a b; heal3 a c
check "A|BC healed: a's held write completes" wait_for 60 done_ok s1a
check "A|BC healed: converged" wait_for 60 converged
check "A|BC: b's write and a's held write are on both" both_have 0x21@2M 0x22@3M
check "A|BC: no split brain, identical disks" sane_end

# ---- AB | C: the tiebreaker alone; a and b go on ---------------------------
cut3 a c; cut3 b c
wbg s2a a 0x31 4M
wbg s2b b 0x32 5M
check "AB|C: both writes complete" wait_for 30 all_ok s2a s2b
check "AB|C: quorum on a and b" quorum_is True "a b"
check "AB|C: none on c" wait_for 10 quorum_is False c
heal3 a c; heal3 b c
check "AB|C healed: converged" wait_for 60 converged

# ---- AC | B: b is alone, a goes on -----------------------------------------
cut3 b a; cut3 b c
wbg s3a a 0x41 6M
wbg s3b b 0x42 7M
check "AC|B: a completes its write" wait_for 30 done_ok s3a
sleep 1
check "AC|B: b's write is held" pending s3b
check "AC|B: b reports no quorum" jcheck b "not o['quorum']['have'] and o['io_suspended']"
heal3 b a; heal3 b c
check "AC|B healed: b's held write completes" wait_for 60 done_ok s3b
check "AC|B healed: converged" wait_for 60 converged
check "AC|B: each write on both" both_have 0x41@6M 0x42@7M

# ---- the a-b link only, one Primary: b goes on ---------------------------
# a (the lower node-id) is Secondary: it has nothing to write and asks c for
# nothing, so the lower-node-id rule for two askers must not hold b's writes
# (a filesystem owner that is the higher node-id: docs/quorum.md rule 2)
check "a Secondary" na secondary r0
cut3 a b
wbg s6b b 0x71 13M
check "A-B cut, a Secondary: b (Primary, higher node-id) completes its write" wait_for 30 done_ok s6b
check "... c recorded that b goes on without a" jcheck b "o['quorum']['alone']"
heal3 a b
check "A-B healed: converged, a Primary again" wait_for 60 eval "converged && na primary r0 >/dev/null"
check "A-B: b's write on both" both_have 0x71@13M

# ---- A | B | C: nobody has quorum ------------------------------------------
# c first, and only once a and b no longer count its vote, the a-b link: cut
# all at once, a node may still count c's fresh lease for a moment and go on
# alone (safely: by rule only the lower node-id would)
cut3 a c; cut3 b c
votes_are() { jcheck a "o['quorum']['votes'] == $1" && jcheck b "o['quorum']['votes'] == $1"; }
check "A|B|C: first c is gone for a and b" wait_for 20 votes_are 2
cut3 a b
wbg s4a a 0x51 8M
wbg s4b b 0x52 9M
sleep 5
check "A|B|C: neither side completes a write" all_pending s4a s4b
check "A|B|C: nobody has quorum" quorum_is False "a b c"
expect_rc "A|B|C: resume-io cannot override quorum (exit 3, saying why)" 3 "held by the quorum rules" na resume-io r0
heal3 a b; heal3 a c; heal3 b c
check "A|B|C healed: both held writes complete" wait_for 60 all_ok s4a s4b
check "A|B|C healed: converged" wait_for 60 converged
check "A|B|C: both held writes are on both" both_have 0x51@8M 0x52@9M

# ---- tiebreaker restart while a is cut off --------------------------------
cut3 a b; cut3 a c
wbg s5b b 0x61 10M
check "A|BC again: b goes on" wait_for 30 done_ok s5b
wbg s5a a 0x62 11M
nc down r0 >/dev/null 2>&1
# the partition moves while c is down: when c returns it reaches only a
heal3 a c; cut3 b c
nc up r0 --device none >/dev/null 2>&1
check "c back, reaching only a" wait_for 20 jcheck c "o['peers'][0]['connection'] == 'Connected' and \
o['peers'][1]['connection'] != 'Connected'"
wbg s5b2 b 0x63 12M
sleep 4
check "a has quorum with c, but its Outdated disk keeps its write held" jcheck a "o['quorum']['have'] and \
o['disk'] == 'Outdated' and o['io_suspended']"
check "a's write still held" pending s5a
check "b, now without quorum, holds its write" pending s5b2
heal3 a b; heal3 b c
check "healed: both held writes complete" wait_for 60 all_ok s5a s5b2
check "healed: converged" wait_for 60 converged
check "every acknowledged write is on both disks" both_have 0x10@0 0x11@1M 0x21@2M 0x22@3M 0x31@4M 0x32@5M 0x41@6M \
	0x42@7M 0x51@8M 0x52@9M 0x61@10M 0x62@11M 0x63@12M
check "no split brain and identical disks at the end" sane_end

# the only whole copy loses quorum: b is wiped (Inconsistent) and down, c goes
# down, a is alone and Outdated; when c and then b return, a must become the
# sync source again instead of both waiting forever
nb secondary r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
nb create-md r0 --force >/dev/null 2>&1
nc down r0 >/dev/null 2>&1
check "a alone: no quorum, Outdated" wait_for 20 jcheck a "not o['quorum']['have'] and o['disk'] == 'Outdated'"
nc up r0 --device none >/dev/null 2>&1
check "c back: quorum, still Outdated (b may have newer data)" wait_for 20 jcheck a "o['quorum']['have'] and \
o['disk'] == 'Outdated'"
nb up r0 --device none >/dev/null 2>&1
check "b back Inconsistent: a holds the only whole copy, becomes UpToDate and syncs b" wait_for 60 converged
check "b has everything" both_have 0x10@0 0x42@7M 0x63@12M
finish
