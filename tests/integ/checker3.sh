#!/usr/bin/env bash
# The fault checker (tests/checker.py) with three nodes: a and b with disks,
# c a diskless tiebreaker, quorum majority. Besides the two-node nemesis
# (power cuts with failover, restarts, partitions, loss, disk errors) it cuts
# single links and kills and restarts the tiebreaker; a failover without
# quorum is refused and retried. CHECK3_SECONDS (default 45) of writes.
. "$(dirname "$0")/lib.sh"
mknet3
NET_OPTS="ping-timeout 10;" mkres3 256M
sed -i 's/allow-two-primaries; //' "$T/r.res"
start_proxy
echo "${CHECK_DELAY_MS:-20}" >"$CTL/delay_ms"
export CFG_A=$T/r-a.res
up3() {
	na create-md r0 --force && nb create-md r0 --force && na up r0 --device none && nb up r0 --device none &&
		nc up r0 --device none && wait_for 20 jcheck a "all(x['connection'] == 'Connected' for x in o['peers'])" &&
		na primary r0 --force && wait_for 60 jcheck b "o['disk'] == 'UpToDate'"
}
check "three nodes up, synced" up3
T=$T NS_A=$NS_A NS_B=$NS_B NS_C=$NS_C VETH_A=vab$$ VETH_B=vba$$ DIPOLE=$DIPOLE CFG_A=$T/r-a.res CFG_B=$T/r.res \
	CFG_C=$T/r.res LINKS="a:b:vab$$:vba$$,a:c:vac$$:vca$$,b:c:vbc$$:vcb$$" \
	CHECK_SECONDS=${CHECK3_SECONDS:-45} python3 "$ROOT/tests/checker.py" || FAILED=1
for n in a b c; do "n$n" down r0 --force >/dev/null 2>&1; done
finish
