#!/usr/bin/env bash
# three_disks_handshake — state that changes while handshakes end, with
# three disk nodes and quorum majority. DIPOLE_TEST_PAUSE=agree-apply=MS
# holds every handshake between its check that this node's HELLO is still
# true and the link becoming Established, so these races always happen:
#  - `primary --force` on a while its links to b and c are in that window:
#    the full sync a promotion starts for Established peers skipped them,
#    and b and c stayed Inconsistent under an UpToDate Primary for good;
#  - A|B|C (nobody has quorum, every disk Outdated, no Primary), then
#    every link healed at once: a node's two handshakes end together;
#    every disk must be UpToDate again, all Established.
# Outcomes: states reported, identical disks.
source "$(dirname "$0")/lib.sh"
mknet3
mkres3d 64M "quorum majority; on-no-quorum suspend-io;"
export DIPOLE_TEST_PAUSE=agree-apply=1500
connected_all() { all3 "len(o['peers']) == 2 and all(x['connection'] == 'Connected' for x in o['peers'])"; }
up3() {
	for n in a b c; do "n$n" create-md r0 --force >/dev/null 2>&1 || return 1; done
	na up r0 --device none && nb up r0 --device none && nc up r0 --device none
}
check "three disk nodes come up" up3
# (Connected, but the handshakes are held before Established)
check "all connected" wait_for 20 connected_all
check "primary --force on a while its handshakes end" na primary r0 --force
check "the initial sync reaches b and c" wait_for 60 synced3
check "identical disks after the initial sync" md5_all_equal
na secondary r0 >/dev/null
check "nobody Primary" wait_for 10 all3 "o['role'] == 'Secondary'"
cut3 a b; cut3 a c; cut3 b c
check "A|B|C: no quorum, every disk Outdated" wait_for 30 all3 "not o['quorum']['have'] and o['disk'] == 'Outdated'"
heal3 a b; heal3 a c; heal3 b c
check "healed at once: every disk UpToDate, all Established" wait_for 60 synced3
check "identical disks" md5_all_equal
finish
