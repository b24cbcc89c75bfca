#!/usr/bin/env bash
# The replication link through our fault proxy (tests/faultproxy.py): added
# latency shows in protocol C but not in protocol A; a stalled or reset link
# never blocks the Primary for good, and the nodes converge afterwards.
. "$(dirname "$0")/lib.sh"
mknet2
SIZE=268386304
CTL=$T/ctl
mkdir -p "$CTL"
for proto in C A; do
	mkres2 256M "protocol $proto;"
	# node a reaches b through the proxy in a's namespace; b's own view is direct
	sed "s/address $IP_B:7790/address $IP_A:17790/" "$T/r.res" >"$T/r-a-$proto.res"
	cp "$T/r.res" "$T/r-b-$proto.res"
done
nsenter --net=/run/netns/$NS_A python3 "$ROOT/tests/faultproxy.py" $IP_A:17790 $IP_B:7790 "$CTL" &
echo $! >>"$T/bg.pids"; disown $!
wait_for 10 test -f "$CTL/ready" || notok "fault proxy started"

CFG_A=$T/r-a-C.res CFG_B=$T/r-b-C.res
na create-md r0 >/dev/null 2>&1
nb create-md r0 >/dev/null 2>&1
na up r0 --device none >/dev/null 2>&1
nb up r0 --device none >/dev/null 2>&1
check "a and b connect through the proxy" wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
na primary r0 --force >/dev/null 2>&1
check "initial sync through the proxy" wait_for 60 jcheck b "o['disk'] == 'UpToDate'"

echo 5 >"$CTL/delay_ms"
read -r n iops p50c p99 < <("$ROOT/build/synclat" nbd "$T/ra/r0.nbd" r0 2 write)
echo "# protocol C, 5 ms each way: $n writes, p50 ${p50c} us"
check "protocol C: a write waits for the peer's disk (p50 >= 10 ms with 5 ms each way)" \
	python3 -c "import sys; sys.exit(0 if $p50c >= 10000 else 1)"

# the same pair with protocol A (data identical, so they reconnect without a sync)
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
CFG_A=$T/r-a-A.res CFG_B=$T/r-b-A.res
na up r0 --device none >/dev/null 2>&1
nb up r0 --device none >/dev/null 2>&1
check "protocol A pair connects with nothing to sync" wait_for 20 jcheck a "p['connection'] == 'Connected' and p['replication'] == 'Established' and p['out_of_sync_bytes'] == 0"
na primary r0 >/dev/null 2>&1
read -r n iops p50a p99 < <("$ROOT/build/synclat" nbd "$T/ra/r0.nbd" r0 2 write)
echo "# protocol A, 5 ms each way: $n writes, p50 ${p50a} us"
check "protocol A: a write does not wait for the link (p50 < 5 ms)" python3 -c "import sys; sys.exit(0 if $p50a < 5000 else 1)"
read -r n iops p50f p99 < <("$ROOT/build/synclat" nbd "$T/ra/r0.nbd" r0 2 fua)
check "protocol A: a FUA write still waits until the peer has it durable (p50 >= 10 ms)" \
	python3 -c "import sys; sys.exit(0 if $p50f >= 10000 else 1)"
echo 0 >"$CTL/delay_ms"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1

# a link that stalls: the Primary drops it after ping-timeout and keeps serving
CFG_A=$T/r-a-C.res CFG_B=$T/r-b-C.res
na up r0 --device none >/dev/null 2>&1
nb up r0 --device none >/dev/null 2>&1
wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
na primary r0 >/dev/null 2>&1
touch "$CTL/stall_up" "$CTL/stall_down"
check "a write during a stalled link completes once the link is declared dead" \
	timeout 60 qemu-io -f raw -c 'write -P 0x3c 20M 1M' "$(uri_a)"
check "the stalled peer is shown as not connected, the write as out of sync" \
	wait_for 20 jcheck a "p['connection'] != 'Connected' and p['out_of_sync_bytes'] >= 1 << 20"
rm -f "$CTL/stall_up" "$CTL/stall_down"
check "when the link heals they reconnect and resync" \
	wait_for 60 both "p['connection'] == 'Connected' and p['out_of_sync_bytes'] == 0 and p['replication'] == 'Established'" "o['disk'] == 'UpToDate'"
check "and the data areas are identical" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"

# a link that is reset
touch "$CTL/reset"
check "a reset link is noticed" wait_for 20 jcheck a "p['connection'] != 'Connected'"
head -c 8M /dev/urandom >"$T/rand"
check "the Primary keeps serving writes while disconnected" nbdcopy "$T/rand" "$(uri_a)"
rm -f "$CTL/reset"
check "after the reset they reconnect, resync, and converge" \
	wait_for 60 both "p['connection'] == 'Connected' and p['out_of_sync_bytes'] == 0 and p['replication'] == 'Established'" "o['disk'] == 'UpToDate'"
check "data identical after the reset" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
rm -rf "$CTL"
finish
