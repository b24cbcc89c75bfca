#!/usr/bin/env bash
# Failures of a pair: a link that drops (only the changed blocks are
# resynced), a Primary killed with writes in flight (the activity log marks
# what may have been in flight; the restarted node rejoins by itself and the
# replicas converge), and failover to the survivor.
. "$(dirname "$0")/lib.sh"
mknet2
SIZE=1073668096
M=1048576
mkres2 1G "protocol C;"
check "pair comes up and syncs 1 GiB" pair_up
identical() { test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"; }
rx() { nb status r0 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['stats']['received_bytes'])"; }

# --- link drops, 1 MiB changes, link returns: about 1 MiB moves -------------
ip netns exec $NS_A iptables -I INPUT -i $VETH_A -j DROP
check "a notices the dead link (ping timeout)" wait_for 20 jcheck a "p['connection'] != 'Connected'"
# (dump-md reads the disk under the running daemon: the superblock is written through)
bitmap_gen_kept() { na dump-md r0 >"$T/md" && grep -q 'peer-slot 0 { node-id 1; bitmap-uuid ' "$T/md" &&
	! grep -q 'bitmap-uuid 0000000000000000' "$T/md"; }
check "a started a new data generation, keeping the old one as b's bitmap generation" bitmap_gen_kept
before=$(rx)
qemu-io -f raw -c "write -P 0x5a $((300 * M)) 1M" "$(uri_a)" >/dev/null
check "the write is marked out of sync" jcheck a "p['out_of_sync_bytes'] == $M"
ip netns exec $NS_A iptables -D INPUT -i $VETH_A -j DROP
check "reconnected and resynced" wait_for 30 both "p['connection']=='Connected' and p['out_of_sync_bytes']==0 and p['replication']=='Established'" "o['disk']=='UpToDate'"
after=$(rx)
echo "# resync after 1 MiB changed on a 1 GiB device moved $((after - before)) bytes"
check "only about the changed 1 MiB crossed the link, not the device" test $((after - before)) -le $((2 * M))
check "replicas identical" identical

# --- the Primary dies with writes in flight; restarted, it rejoins --------
bg fio --name=crash --random_distribution=zipf:1.2 --ioengine=nbd --uri="$(uri_a)" --rw=randwrite --bs=4k --iodepth=16 --size=1G \
	--time_based=1 --runtime=30 --output=/dev/null 2>/dev/null
sleep 2
kill -9 "$(cat "$T/ra/r0.pid")"
check "b notices a is gone" wait_for 20 jcheck b "p['connection'] != 'Connected'"
check "b stays Secondary and UpToDate" jcheck b "o['role']=='Secondary' and o['disk']=='UpToDate'"
check "a restarts" bash -c "nsenter --net=/run/netns/$NS_A $DIPOLE -c $T/r.res --node a --run-dir $T/ra up r0 --device none >$T/up.out 2>&1"
check "up says the activity log marked what may have been in flight" \
	grep -q "activity log: .* marked out of sync" "$T/up.out"
check "a rejoins by itself and resyncs the marked blocks" \
	wait_for 30 both "p['connection']=='Connected' and p['out_of_sync_bytes']==0 and p['replication']=='Established'" "o['disk']=='UpToDate'"
check "replicas identical after the crash" identical

# --- the Primary dies again; b takes over and writes; a comes back --------
na primary r0 >/dev/null
bg fio --name=crash2 --ioengine=nbd --uri="$(uri_a)" --rw=randwrite --bs=4k --iodepth=16 --size=1G \
	--time_based=1 --runtime=30 --output=/dev/null 2>/dev/null
sleep 2
kill -9 "$(cat "$T/ra/r0.pid")"
check "b notices" wait_for 20 jcheck b "p['connection'] != 'Connected'"
expect_rc "b takes over as Primary" 0 "" nb primary r0
qemu-io -f raw -c "write -P 0x77 $((700 * M)) 2M" "$(uri_b)" >/dev/null
expect_rc "a restarts" 0 "up on a" na up r0 --device none
check "a rejoins as target of b (its in-flight blocks included)" \
	wait_for 30 both "p['connection']=='Connected' and p['role']=='Primary' and o['disk']=='UpToDate'" \
	"p['connection']=='Connected' and p['out_of_sync_bytes']==0 and p['replication']=='Established'"
check "b's writes after the failover are on a" \
	bash -c "qemu-io -f raw -r -c 'read -P 0x77 $((700 * M)) 2M' '$(uri_a)' >/dev/null 2>&1"
check "replicas identical after failover and return" identical
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
finish
