#!/usr/bin/env bash
# The README's demo command must keep working: run scripts/demo and check
# what it claims, and that it leaves nothing behind.
. "$(dirname "$0")/lib.sh"
DIPOLE=$DIPOLE bash "$ROOT/scripts/demo" >"$T/demo.out" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "scripts/demo runs to the end" || { notok "scripts/demo runs to the end (exit $rc)"; tail -20 "$T/demo.out" | sed 's/^/    | /'; }
check "data written on docker1 reads back identically on docker2" \
	bash -c "[ \$(grep -c -E '^[0-9a-f]{32}  (read back through NBD on docker2|written on docker1)' $T/demo.out) = 2 ] && [ \$(grep -E '^[0-9a-f]{32}  (read back through NBD on docker2|written on docker1)' $T/demo.out | cut -d' ' -f1 | sort -u | wc -l) = 1 ]"
check "a pattern written on docker2 reads back on docker1" bash -c "grep -q '^read 1048576' $T/demo.out && ! grep -q 'Pattern verification failed' $T/demo.out"
check "the demo ends Primary/Primary, UpToDate/UpToDate, Connected" \
	grep -q '"role":"Primary","disk":"UpToDate".*"connection":"Connected","role":"Primary","disk":"UpToDate"' "$T/demo.out"
check "dipolefs: docker2 reads what docker1 wrote through its mount" grep -q '^docker2 reads: written on docker1' "$T/demo.out"
check "dipolefs: docker1 reads identically what docker2 wrote" \
	bash -c "[ \$(grep -E '^[0-9a-f]{32}  (written through docker2|read through docker1)' $T/demo.out | cut -d' ' -f1 | sort -u | wc -l) = 1 ] && [ \$(grep -c -E '^[0-9a-f]{32}  (written through docker2|read through docker1)' $T/demo.out) = 2 ]"
check "the demo removed its namespaces" bash -c "! ip netns list | grep -q dpdemo"
check "the demo left nothing mounted" bash -c "! grep -q dipole-demo /proc/mounts"
check "the demo detached its loop devices" bash -c "! losetup -a | grep -q dipole-demo"

# make demo NODES=3: two disks and a tiebreaker
DIPOLE=$DIPOLE bash "$ROOT/scripts/demo3" >"$T/demo3.out" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "scripts/demo3 runs to the end" || { notok "scripts/demo3 runs to the end (exit $rc)"; tail -20 "$T/demo3.out" | sed 's/^/    | /'; }
check "demo3: the cut-off node's write waits while the other's completes" \
	bash -c "grep -q '^docker2: wrote 1048576' $T/demo3.out && grep -q 'still waiting (no quorum)' $T/demo3.out"
check "demo3: after healing both writes are on both nodes, disks identical" \
	bash -c "grep -q 'docker1 has docker2' $T/demo3.out && grep -q 'docker2 has docker1' $T/demo3.out && grep -q 'identical, no split brain' $T/demo3.out"
check "demo3 removed its namespaces" bash -c "! ip netns list | grep -q dpdemo"
finish
