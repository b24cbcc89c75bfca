#!/usr/bin/env bash
# Split brain with the guide's policies (after-sb-0pri discard-zero-changes,
# after-sb-1pri discard-secondary, after-sb-2pri disconnect), the
# split-brain handler, and manual recovery with connect --discard-my-data.
. "$(dirname "$0")/lib.sh"
mknet2
SIZE=268386304
M=1048576
mkres2 256M "protocol C; allow-two-primaries; after-sb-0pri discard-zero-changes; after-sb-1pri discard-secondary; after-sb-2pri disconnect;"
cat >"$T/sb.sh" <<EOT
#!/bin/sh
env | grep -E '^(DRBD_|DIPOLE_)' | sort >"$T/handler.\$DRBD_MY_NODE_ID"
EOT
chmod +x "$T/sb.sh"
sed -i "s|    disk { |    handlers { split-brain \"$T/sb.sh\"; }\n    disk { |" "$T/r.res"
check "pair comes up and syncs" pair_up

# apart: partition by black-holing the link (both keep running)
part() { ip netns exec $NS_A iptables -I INPUT -i $VETH_A -j DROP; }
heal() { ip netns exec $NS_A iptables -D INPUT -i $VETH_A -j DROP; }
apart() {
	part
	wait_for 20 both "p['connection'] != 'Connected'" "p['connection'] != 'Connected'"
}
w() { qemu-io -f raw -c "write -P $2 $(($3 * M)) $(($4 * M))" "$(uri_$1)" >/dev/null; }
r() { qemu-io -f raw -r -c "read -P $2 $(($3 * M)) $(($4 * M))" "$(uri_$1)" >/dev/null 2>&1; }
identical() { test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"; }

# 1. after-sb-0pri discard-zero-changes: b was Primary apart but wrote nothing
check "partitioned" apart
w a 0x11 10 2
nb primary r0 >/dev/null
nb secondary r0 >/dev/null
na secondary r0 >/dev/null
heal
check "0pri, b made no changes: resolved, b resyncs from a" \
	wait_for 30 both "p['connection']=='Connected' and p['replication']=='Established' and p['out_of_sync_bytes']==0" \
	"p['connection']=='Connected' and o['disk']=='UpToDate' and p['split_brains']==1"
check "b's reason says it was resolved and how" jcheck b "'discard-zero-changes' in p['reason']"
check "a's writes are on b" r b 0x11 10 2
check "replicas identical" identical

# 2. after-sb-1pri discard-secondary: both wrote apart, a is still Primary
na primary r0 >/dev/null
check "partitioned again" apart
w a 0x22 20 2
nb primary r0 >/dev/null
w b 0x33 30 2
w b 0x34 20 1
nb secondary r0 >/dev/null
heal
check "1pri: the Secondary's changes are discarded, resync from the Primary" \
	wait_for 30 both "p['connection']=='Connected' and p['replication']=='Established' and p['out_of_sync_bytes']==0" \
	"p['connection']=='Connected' and o['disk']=='UpToDate' and p['split_brains']==2"
check "a's writes won on b" r b 0x22 20 2
check "b's own writes were rolled back to a's data" r b 0 30 2
check "replicas identical" identical

# 3. after-sb-2pri disconnect: both Primary when they meet -> StandAlone, handler runs
check "partitioned once more" apart
w a 0x44 40 1
nb primary r0 >/dev/null
w b 0x55 50 1
heal
check "2pri: not resolved, both StandAlone with the reason" \
	wait_for 30 both "p['connection']=='StandAlone' and 'split brain' in p['reason']" "p['connection']=='StandAlone'"
check "the split-brain handler ran on a with DRBD's environment" \
	wait_for 10 grep -q "DRBD_PEERS=b" "$T/handler.0"
check "... naming the resource and the handler" \
	bash -c "grep -q DRBD_RESOURCE=r0 '$T/handler.0' && grep -q DIPOLE_HANDLER=split-brain '$T/handler.0' && grep -q 'DRBD_PEER_ADDRESS=$IP_B' '$T/handler.0'"
check "and on b" wait_for 10 grep -q "DRBD_PEERS=a" "$T/handler.1"
check "nothing was overwritten on either side" bash -c "$(declare -f r); M=$M; uri_a() { echo '$(uri_a)'; }; uri_b() { echo '$(uri_b)'; }; r a 0x44 40 1 && r b 0x55 50 1"
expect_rc "manual recovery: b steps down" 0 "" nb secondary r0
expect_rc "connect --discard-my-data on b" 0 "" nb connect r0 --discard-my-data
expect_rc "connect on a" 0 "" na connect r0
check "b resyncs from a" \
	wait_for 30 both "p['connection']=='Connected' and p['replication']=='Established' and p['out_of_sync_bytes']==0" \
	"p['connection']=='Connected' and o['disk']=='UpToDate'"
check "a's data everywhere, b's discarded" bash -c "$(declare -f r); M=$M; uri_b() { echo '$(uri_b)'; }; r b 0x44 40 1 && r b 0 50 1"
check "replicas identical" identical
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
finish
