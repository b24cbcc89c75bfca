#!/usr/bin/env bash
# four_disks_follow — four disks, quorum majority: a Secondary that
# follows its Primary into a new data generation tells that Primary, not
# only the other peers (found in four_disks.sh, CI): b, promoted while a
# was away, started a new generation that c followed; b lost quorum for
# a moment (Outdated) and came back with d Inconsistent. b counted c still
# at the old generation, so "enough disks have this node's generation"
# never held: b stayed Outdated, an Outdated Primary does not resync, and
# c defers to the Primary — d stayed Inconsistent for good. Here b loses
# quorum by a cut of its link to d alone (c keeps quorum, so nothing makes
# c report its state again), and d comes back empty. The race of the CI
# run (d's handshakes with b and c while b was Outdated) is not rebuilt
# step by step; what this checks at once is its cause: b's view of c's
# generation after c followed it.
source "$(dirname "$0")/lib.sh"
mknetn a b c d # a link of its own between every two nodes: b-d is cut alone
truncate -s 64M "$T/a.img" "$T/b.img" "$T/c.img" "$T/d.img"
cat >"$T/r.res" <<EOT
resource r0 {
    net { protocol C; connect-int 1; ping-int 1; ping-timeout 10; }
    options { quorum majority; }
    on a { node-id 0; address $IP_A:7790; disk $T/a.img; }
    on b { node-id 1; address $IP_B:7790; disk $T/b.img; }
    on c { node-id 2; address $IP_C:7790; disk $T/c.img; }
    on d { node-id 3; address $IP_D:7790; disk $T/d.img; }
    connection-mesh { hosts a b c d; }
}
EOT
n4() { local n=$1; shift; nsenter --net=/run/netns/dpt$$$n "$DIPOLE" -c "$T/r.res" --node "$n" --run-dir "$T/r$n" "$@"; }
na() { n4 a "$@"; }; nb() { n4 b "$@"; }; nc() { n4 c "$@"; }; nd() { n4 d "$@"; }
uri4() { echo "nbd+unix:///r0?socket=$T/r$1/r0.nbd"; }
# in_sync NODES: each of NODES UpToDate, connected to the others of NODES
# with nothing out of sync
in_sync() {
	local n rc=0
	for n in $1; do
		jcheck $n "o['disk'] == 'UpToDate' and all(x['connection'] == 'Connected' and x['out_of_sync_bytes'] == 0 \
and x['replication'] == 'Established' for x in o['peers'] if x['name'] in '$1'.split())" || rc=1
	done
	return $rc
}
gen() { n4 "$1" status r0 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['generation'])"; }

for n in a b c d; do n4 $n create-md r0 >/dev/null 2>&1; done
# d holds each promotion it is told of 0.3 s, and itself 1.5 s after it
# went Outdated for being behind: c, which followed b into its new
# generation, tells d of it before b's own report arrives, and b's report
# comes before anything re-counts d's generation (the race of a CI run: d
# took itself for behind, did not follow b and needed a full resync)
up_d() { DIPOLE_TEST_PAUSE=rx-promoted=300,recount-behind=1500 nd up r0 --device none; }
check "four disk nodes come up" eval 'for n in a b c; do n4 $n up r0 --device none || exit 1; done && up_d'
na primary r0 --force >/dev/null
check "initial sync" wait_for 60 in_sync "a b c d"
rx() { n4 "$1" status r0 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['stats']['received_bytes'])"; }
rx0=$(rx d)
na secondary r0 >/dev/null
na down r0 >/dev/null
check "a away: b promoted with c and d (3 of 4 votes)" wait_for 30 nb primary r0
check "b writes: a new data generation, c and d follow it" eval \
	"timeout 30 qemu-io -f raw -c 'write -P 0x5a 0 1M' -c flush '$(uri4 b)' >/dev/null 2>&1 && wait_for 30 in_sync 'b c d'"
moved=$(($(rx d) - rx0))
echo "# d received $moved bytes since the initial sync"
check "... d followed b: it received b's write, no resync" test "$moved" -le $((2 * 1048576))
check "... b knows c is at its generation" jcheck b \
	"[x['generation'] for x in o['peers'] if x['name'] == 'c'] == [o['generation']['current']]"
cut3 b d
# (b's disk goes Outdated; it may be UpToDate again at once if c, which
# may drop its link to b meanwhile, comes back with b's generation)
check "b cut off from d: no quorum (b and c)" wait_for 30 jcheck b "not o['quorum']['have']"
nd down r0 >/dev/null
nd create-md r0 --force >/dev/null 2>&1 # d comes back empty: Inconsistent
nd up r0 --device none >/dev/null
check "d back empty (Inconsistent), connected to c only" wait_for 30 jcheck d \
	"o['disk'] == 'Inconsistent' and any(x['name'] == 'c' and x['connection'] == 'Connected' for x in o['peers'])"
heal3 b d
check "b-d healed: b has quorum, UpToDate again (b and c have its generation)" wait_for 30 jcheck b \
	"o['quorum']['have'] and o['disk'] == 'UpToDate' and o['role'] == 'Primary'"
check "b resyncs d: b, c and d in sync" wait_for 60 in_sync "b c d"
check "d has b's write" qemu-io -r -f raw -c "read -P 0x5a 0 1M" "$(uri4 d)"
for n in b c d; do n4 $n down r0 >/dev/null 2>&1; done
finish
