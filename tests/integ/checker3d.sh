#!/usr/bin/env bash
# The fault checker (tests/checker.py) with three nodes that all have disks,
# quorum majority: link cuts, power cuts and restarts of any node, failover
# of the Primary to either survivor, clean switchovers, a Secondary's disk
# failing. Every acknowledged write must survive and the three disks end
# identical.
# CHECK3D_SECONDS (default 45) of writes.
. "$(dirname "$0")/lib.sh"
mknet3
mkres3d 256M "quorum majority;"
up3() {
	local n
	for n in a b c; do "n$n" create-md r0 --force || return 1; done
	na up r0 --device none && nb up r0 --device none && nc up r0 --device none &&
		wait_for 20 jcheck a "len(o['peers']) == 2 and all(x['connection'] == 'Connected' for x in o['peers'])" &&
		na primary r0 --force && wait_for 60 jcheck b "o['disk'] == 'UpToDate'" &&
		wait_for 60 jcheck c "o['disk'] == 'UpToDate'"
}
check "three disk nodes up, synced" up3
T=$T NS_A=$NS_A NS_B=$NS_B NS_C=$NS_C VETH_A=vab$$ VETH_B=vba$$ DIPOLE=$DIPOLE CFG_A=$T/r.res CFG_B=$T/r.res \
	CFG_C=$T/r.res DISKS3=1 LINKS="a:b:vab$$:vba$$,a:c:vac$$:vca$$,b:c:vbc$$:vcb$$" \
	CHECK_SECONDS=${CHECK3D_SECONDS:-45} python3 "$ROOT/tests/checker.py" || FAILED=1
for n in a b c; do "n$n" down r0 --force >/dev/null 2>&1; done
finish
