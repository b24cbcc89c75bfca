#!/usr/bin/env bash
# Power cut of the Primary with writes in flight on a slow link: the link dies
# with the node (iptables on its interface, then SIGKILL), so writes it had
# made locally but not yet delivered never reach the peer. The survivor takes
# over and writes; the old Primary comes back, its activity log marks what
# may have been in flight, and the replicas converge byte for byte. (Without
# the activity log the old Primary keeps blocks the survivor never had.)
. "$(dirname "$0")/lib.sh"
mknet2
SIZE=268386304
mkres2 256M "protocol C;"
start_proxy
CFG_A=$T/r-a.res
check "pair comes up through the proxy and syncs" pair_up
echo 50 >"$CTL/delay_ms"
bg fio --name=pc --ioengine=nbd --uri="$(uri_a)" --rw=randwrite --bs=4k --iodepth=16 --size=256M \
	--time_based=1 --runtime=30 --output=/dev/null 2>/dev/null
sleep 3
linkcut() { ip netns exec $NS_A iptables "$1" INPUT -i $VETH_A -j DROP; ip netns exec $NS_A iptables "$1" OUTPUT -o $VETH_A -j DROP; }
linkcut -I
kill -9 "$(cat "$T/ra/r0.pid")"
check "b notices the dead peer" wait_for 20 jcheck b "p['connection'] != 'Connected'"
expect_rc "b takes over" 0 "" nb primary r0
qemu-io -f raw -c "write -P 0x6b 100M 1M" "$(uri_b)" >/dev/null
linkcut -D
echo 0 >"$CTL/delay_ms"
check "a comes back" bash -c "nsenter --net=/run/netns/$NS_A $DIPOLE -c $T/r-a.res --node a --run-dir $T/ra up r0 --device none >$T/up.out 2>&1"
check "its activity log marked the blocks that were in flight" grep -q "activity log: .* [1-9][0-9]* block(s) marked" "$T/up.out"
check "a rejoins as b's sync target" \
	wait_for 30 both "p['connection']=='Connected' and p['role']=='Primary' and o['disk']=='UpToDate'" \
	"p['connection']=='Connected' and p['out_of_sync_bytes']==0 and p['replication']=='Established'"
check "status shows what the activity log marked" jcheck a "o['activity_log']['marked_at_attach'] > 0"
check "replicas byte-identical" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"

# --- a HELLO that waited: b (now Primary) loses power; a's redial reaches
# the proxy at once and its HELLO waits there while b is unreachable. a is
# promoted and writes meanwhile. When b returns, that stale HELLO (a as
# Secondary, old generation) must not decide the resync: a's writes stay.
linkcutb() { ip netns exec $NS_B iptables "$1" INPUT -i $VETH_B -j DROP; ip netns exec $NS_B iptables "$1" OUTPUT -o $VETH_B -j DROP; }
linkcutb -I
kill -9 "$(cat "$T/rb/r0.pid")"
check "a notices b is gone" wait_for 20 jcheck a "p['connection'] != 'Connected'"
sleep 1 # a redials; its HELLO now waits in the proxy
expect_rc "a takes over" 0 "" na primary r0
qemu-io -f raw -c "write -P 0x3d 120M 2M" "$(uri_a)" >/dev/null
GA=$(na status r0 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['generation']['current'])")
linkcutb -D
check "b comes back" bash -c "nsenter --net=/run/netns/$NS_B $DIPOLE -c $T/r.res --node b --run-dir $T/rb up r0 --device none >/dev/null 2>&1"
check "they reconnect and resync" \
	wait_for 40 both "p['connection']=='Connected' and p['out_of_sync_bytes']==0 and p['replication']=='Established'" \
	"p['connection']=='Connected' and o['disk']=='UpToDate'"
check "a's writes made while b was away survive on a" \
	bash -c "qemu-io -f raw -r -c 'read -P 0x3d 120M 2M' '$(uri_a)' >/dev/null 2>&1"
check "and reached b" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"
check "a was the sync source: both now carry a's new generation $GA" \
	both "o['generation']['current'] == '$GA'" "o['generation']['current'] == '$GA'"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1

# --- both nodes lose power; their disks have volatile write caches (the
# fault backend keeps unflushed writes in the daemon's memory): a FLUSHed
# write survives on both, an unflushed one may vanish, and the pair comes
# back consistent.
echo volatile >"$T/fa"
echo volatile >"$T/fb"
upv() { DIPOLE_FAULTS=$T/f$1 nsenter --net=/run/netns/$2 $DIPOLE -c $3 --node $1 --run-dir $T/r$1 up r0 --device none >/dev/null 2>&1; }
check "both up with volatile disk caches" bash -c "$(declare -f upv); T=$T DIPOLE=$DIPOLE; upv a $NS_A $T/r-a.res && upv b $NS_B $T/r.res"
check "connected" wait_for 30 both "p['connection']=='Connected' and p['out_of_sync_bytes']==0" "p['connection']=='Connected' and o['disk']=='UpToDate'"
na primary r0 >/dev/null 2>&1
qemu-io -f raw -c "write -P 0x51 10M 1M" -c flush "$(uri_a)" >/dev/null
check "an unflushed write (no flush after it)" python3 "$ROOT/tests/nbdwrite.py" "$T/ra/r0.nbd" r0 $((20 << 20)) $((1 << 20)) 0x52
kill -9 "$(cat "$T/ra/r0.pid")" "$(cat "$T/rb/r0.pid")"
sleep 0.5
pat() { dd if="$1" bs=1M skip="$2" count=1 2>/dev/null | tr -d "$3" | wc -c | grep -qx 0; }
check "the flushed write is on both disks after the power cut" bash -c "$(declare -f pat); pat $T/a.img 10 '\121' && pat $T/b.img 10 '\121'"
check "the unflushed write never reached a's disk (the cache was lost)" bash -c "$(declare -f pat); ! pat $T/a.img 20 '\122'"
check "both come back" bash -c "$(declare -f upv); T=$T DIPOLE=$DIPOLE; upv a $NS_A $T/r-a.res && upv b $NS_B $T/r.res"
check "they resync what may have been in flight" \
	wait_for 30 both "p['connection']=='Connected' and p['out_of_sync_bytes']==0 and p['replication']=='Established'" \
	"p['connection']=='Connected' and o['disk']=='UpToDate'"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
check "replicas identical after the power cut" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"
finish
