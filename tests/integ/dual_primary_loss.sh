#!/usr/bin/env bash
# Two Primaries lose each other, no third vote: they must not both go on
# writing. Without fencing the lower node-id (a) continues and b freezes
# (a write on b does not complete until the link returns, then it lands on
# both); `resume-io` overrides. With fencing the fence-peer handler's exit
# code decides whether frozen I/O resumes.
. "$(dirname "$0")/lib.sh"
mknet2
SIZE=268386304
M=1048576
mkres2 256M "protocol C; allow-two-primaries;"
check "pair comes up and syncs" pair_up
expect_rc "b becomes Primary too" 0 "" nb primary r0
part() { ip netns exec $NS_A iptables "$1" INPUT -i $VETH_A -j DROP; ip netns exec $NS_A iptables "$1" OUTPUT -o $VETH_A -j DROP; }
w() { qemu-io -f raw -c "write -P $2 $(($3 * M)) 1M" "$(uri_$1)" >/dev/null 2>&1; }
r() { qemu-io -f raw -r -c "read -P $2 $(($3 * M)) 1M" "$(uri_$1)" >/dev/null 2>&1; }

part -I
# qemu-io prints "wrote" when the write completes, before its closing flush
# (stdbuf: line by line, not when it exits)
bg bash -c "stdbuf -oL qemu-io -f raw -c 'write -P 0x61 10M 1M' '$(uri_b)' >'$T/b.out' 2>&1 && touch '$T/b-done'"
check "a (lower node-id) detects the loss and keeps writing" bash -c "$(declare -f w); M=$M; uri_a() { echo '$(uri_a)'; }; w a 0x71 20"
check "b (higher node-id) froze its I/O, saying why" \
	wait_for 20 jcheck b "o['io_suspended'] and 'lower node-id' in o['suspend_reason']"
check "a is not suspended" jcheck a "not o['io_suspended']"
sleep 2
check "b's write has not completed while apart" bash -c "test ! -e '$T/b-done' && ! grep -q wrote '$T/b.out'"
part -D
check "when the link returns b's write completes" wait_for 30 test -e "$T/b-done"
check "they resync without a split brain" \
	wait_for 30 both "p['connection']=='Connected' and p['out_of_sync_bytes']==0 and p['replication']=='Established'" \
	"p['connection']=='Connected' and o['disk']=='UpToDate' and not o['io_suspended'] and p['split_brains']==0"
check "both writes on both nodes" bash -c "$(declare -f r); M=$M; uri_a() { echo '$(uri_a)'; }; uri_b() { echo '$(uri_b)'; }; r a 0x61 10 && r b 0x61 10 && r a 0x71 20 && r b 0x71 20"
check "replicas identical" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"

# the operator may override (accepting a split brain later)
part -I
bg bash -c "qemu-io -f raw -c 'write -P 0x62 30M 1M' '$(uri_b)' >/dev/null 2>&1 && touch '$T/b-done2'"
check "b froze again" wait_for 20 jcheck b "o['io_suspended']"
expect_rc "resume-io on b" 0 "" nb resume-io r0
check "b's write completes after resume-io" wait_for 10 test -e "$T/b-done2"
expect_rc "resume-io when nothing is suspended: exit 3" 3 "not suspended" nb resume-io r0
part -D
check "and the meeting is a split brain, as resume-io warned" \
	wait_for 30 jcheck a "p['connection']=='StandAlone' and 'split brain' in p['reason']"
na down r0 --force >/dev/null 2>&1
nb down r0 --force >/dev/null 2>&1

# fencing resource-only: I/O frozen while fence-peer runs; its exit code decides
cat >"$T/fence.sh" <<EOT
#!/bin/sh
echo "\$DRBD_RESOURCE \$DRBD_PEERS" >>"$T/fence.log"
sleep 2
exit \$(cat "$T/fence.rc")
EOT
chmod +x "$T/fence.sh"
mkres2 256M "protocol C; fencing resource-only;"
sed -i "s|    disk { |    handlers { fence-peer \"$T/fence.sh\"; }\n    disk { |" "$T/r.res"
echo 7 >"$T/fence.rc"
check "a fenced pair comes up and syncs" pair_up
part -I
bg bash -c "qemu-io -f raw -c 'write -P 0x63 40M 1M' '$(uri_a)' >/dev/null 2>&1 && touch '$T/a-done'"
check "a runs fence-peer with DRBD's environment, I/O frozen meanwhile" \
	wait_for 20 bash -c "grep -q 'r0 b' '$T/fence.log' && nsenter --net=/run/netns/$NS_A $DIPOLE -c $T/r.res --node a --run-dir $T/ra status r0 --json | grep -q '\"io_suspended\":true'"
check "exit 7 (peer fenced): I/O resumes and the write completes" wait_for 20 test -e "$T/a-done"
check "a counts the fencing" jcheck a "not o['io_suspended']"
part -D
check "reconnected" wait_for 30 both "p['connection']=='Connected' and p['out_of_sync_bytes']==0" "p['connection']=='Connected'"
echo 1 >"$T/fence.rc"
part -I
bg bash -c "qemu-io -f raw -c 'write -P 0x64 50M 1M' '$(uri_a)' >/dev/null 2>&1 && touch '$T/a-done2'"
check "exit 1 (fencing failed): I/O stays frozen, saying so" \
	wait_for 30 jcheck a "o['io_suspended'] and 'did not fence' in o['suspend_reason']"
check "the write is still waiting" test ! -e "$T/a-done2"
part -D
check "the peer's return resumes I/O and the write completes" wait_for 30 test -e "$T/a-done2"
check "replicas identical" bash -c "sleep 1; test \"\$(head -c $SIZE $T/a.img | md5sum)\" = \"\$(head -c $SIZE $T/b.img | md5sum)\""
# the other success codes of DRBD's fence-peer: 3 peer Inconsistent, 4 peer
# outdated, 5 peer down; status and events show the handler running
events_fencing() { na events r0 --once | grep -q "fencing:running" && na events r0 --once | grep -q 'io:suspended reason:"'; }
for code in 3 4 5; do
	echo $code >"$T/fence.rc"
	part -I
	bg bash -c "qemu-io -f raw -c 'write -P 0x6$code $((60 + code))M 1M' '$(uri_a)' >/dev/null 2>&1 && touch '$T/a-done-$code'"
	check "exit $code: status shows fencing in progress, I/O frozen" \
		wait_for 20 jcheck a "p['fencing_in_progress'] and o['io_suspended']"
	check "exit $code: events show it too" events_fencing
	check "exit $code: the handler's success resumes I/O, the write completes" wait_for 20 test -e "$T/a-done-$code"
	part -D
	check "exit $code: reconnected and synced" wait_for 30 both "p['connection']=='Connected' and p['out_of_sync_bytes']==0" \
		"p['connection']=='Connected'"
done
check "every fence counted" jcheck a "p['fenced'] >= 4"
na down r0 --force >/dev/null 2>&1
nb down r0 --force >/dev/null 2>&1
finish
