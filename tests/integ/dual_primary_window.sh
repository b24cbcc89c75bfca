#!/usr/bin/env bash
# Two Primaries lose each other; b (higher node-id) must freeze its writes
# until the link returns (dual_primary_loss.sh). A write on b that fails to
# replicate while b is still tearing the lost link down must wait like any
# other: completed with only b's copy, it is overwritten by the resync from a
# (the lower node-id, which went on alone and is the sync source), on both
# nodes (CI saw this as "both writes on both nodes" failing, replicas
# identical). DIPOLE_TEST_PAUSE holds b's teardown window open for 3 s, so
# every run checks it.
. "$(dirname "$0")/lib.sh"
mknet2
M=1048576
mkres2 64M "protocol C; allow-two-primaries;"
part() { ip netns exec $NS_A iptables "$1" INPUT -i $VETH_A -j DROP; ip netns exec $NS_A iptables "$1" OUTPUT -o $VETH_A -j DROP; }
r() { qemu-io -f raw -r -c "read -P $2 $(($3 * M)) 1M" "$(uri_$1)" >/dev/null 2>&1; }
up_paused() {
	na create-md r0 --force >/dev/null 2>&1 && nb create-md r0 --force >/dev/null 2>&1 &&
		na up r0 --device none >/dev/null 2>&1 &&
		DIPOLE_TEST_PAUSE=teardown=3000 nb up r0 --device none >/dev/null 2>&1 &&
		wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'" &&
		na primary r0 --force >/dev/null 2>&1 && wait_for 60 jcheck b "o['disk'] == 'UpToDate'" &&
		nb primary r0 >/dev/null 2>&1
}
check "pair up, both Primary, b's teardown paused" up_paused

part -I
check "b sees the link down and has not decided yet (the window)" \
	wait_for 20 jcheck b "p['connection'] != 'Connected' and not o['io_suspended']"
# qemu-io prints "wrote" when the write completes, before its closing flush
# (stdbuf: line by line, not when it exits)
bg bash -c "stdbuf -oL qemu-io -f raw -c 'write -P 0x61 10M 1M' '$(uri_b)' >'$T/bw.out' 2>&1; echo \$? >'$T/bw.rc'"
check "b freezes its I/O" wait_for 20 jcheck b "o['io_suspended'] and 'lower node-id' in o['suspend_reason']"
sleep 1
check "b's write in the window did not complete while apart" bash -c "! grep -q wrote '$T/bw.out'"
part -D
check "when the link returns b's write completes" wait_for 30 bash -c "grep -q wrote '$T/bw.out' && test \"\$(cat '$T/bw.rc' 2>/dev/null)\" = 0"
check "they resync without a split brain" \
	wait_for 30 both "p['connection']=='Connected' and p['out_of_sync_bytes']==0 and p['replication']=='Established'" \
	"p['connection']=='Connected' and o['disk']=='UpToDate' and not o['io_suspended'] and p['split_brains']==0"
check "b's write is on a" bash -c "$(declare -f r); M=$M; uri_a() { echo '$(uri_a)'; }; r a 0x61 10"
check "b's write is on b" bash -c "$(declare -f r); M=$M; uri_b() { echo '$(uri_b)'; }; r b 0x61 10"
SIZE=$(na status r0 --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["size_bytes"])')
check "replicas identical (data area)" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"
na down r0 --force >/dev/null 2>&1
nb down r0 --force >/dev/null 2>&1
finish
