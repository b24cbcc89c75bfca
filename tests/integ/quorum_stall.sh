#!/usr/bin/env bash
# quorum_stall — the side that goes on never overlaps with the side that
# stops: the a->b direction of their link stalls (fault proxy: nothing
# breaks, nothing arrives) while both still reach the tiebreaker c. By rule
# a (lower node-id) goes on, and only once b's lease has ended: b must not
# serve a read of old data after a acknowledged new data. Then
# on-no-quorum io-error, and the tiebreaker's memory.
source "$(dirname "$0")/lib.sh"
mknet3
NET_OPTS="ping-timeout 10;" mkres3 64M

# a dials b through the fault proxy
start_proxy
export CFG_A=$T/r-a.res
check "three nodes up, a reaching b through the proxy" three_up
check "connected" wait_for 20 all_connected
na primary r0 --force >/dev/null
check "synced" wait_for 60 jcheck b "o['disk'] == 'UpToDate'"
check "both Primary" nb primary r0
check "old data on both" rd a 0x00 0
wbg w1 a 0x71 0
check "a writes 0x71" wait_for 20 done_ok w1

touch "$CTL/stall_up"   # a -> b stalls; b -> a still flows; both reach c
wbg w2 a 0x72 0
check "a goes on (lower node-id, c sees both) after b's lease" wait_for 30 done_ok w2
rbg r1 b 0x72 0
wbg w3 b 0x73 1M
sleep 3
check "b returns no read of the old 0x71 after a acknowledged 0x72: the read waits" pending r1
check "b's write waits too" pending w3
check "b says why: a went on without it, recorded by c" jcheck b "o['io_suspended'] and \
'went on without this node (recorded by c)' in o['suspend_reason']"
check "a goes on alone with quorum" jcheck a "o['quorum']['alone'] and not o['io_suspended']"
rm -f "$CTL/stall_up"
check "unstalled: b's read completes with a's new data" wait_for 60 done_ok r1
check "b's held write completes" wait_for 60 done_ok w3
check "converged" wait_for 60 converged
check "both writes on both disks" both_have 0x72@0 0x73@1M
check "no split brain, identical disks" sane_end

# tiebreaker memory (the optimized build, when present: ASan adds its own)
rss_kb() { awk '/^VmRSS/ { print $2 }' /proc/"$(cat "$T/rc/r0.pid")"/status; }
if [ -x "$ROOT/build/dipole" ] && [ "$DIPOLE" != "$ROOT/build/dipole" ]; then
	nc down r0 >/dev/null 2>&1
	DIPOLE=$ROOT/build/dipole nc up r0 --device none >/dev/null 2>&1
	check "release tiebreaker reconnects" wait_for 20 jcheck c "all(x['connection'] == 'Connected' for x in o['peers'])"
fi
check "tiebreaker RSS at most 16 MiB ($(rss_kb) KiB)" test "$(rss_kb)" -le 16384

# on-no-quorum io-error: a cut off from both fails I/O instead of waiting
for n in a b c; do "n$n" down r0 --force >/dev/null 2>&1; done
unset CFG_A
NET_OPTS="ping-timeout 10;" mkres3 64M "on-no-quorum io-error;"
check "io-error trio up" three_up
check "connected again" wait_for 20 all_connected
na primary r0 --force >/dev/null
check "synced" wait_for 60 jcheck b "o['disk'] == 'UpToDate'"
cut3 a b; cut3 a c
check "a loses quorum" wait_for 20 jcheck a "not o['quorum']['have']"
expect_rc "a write without quorum fails with EIO at once" 1 "Input/output error" \
	timeout 20 qemu-io -f raw -c "write -P 0x81 0 64k" "$(uri_a)"
check "I/O is not suspended (it fails instead)" jcheck a "not o['io_suspended'] and \
o['quorum']['on_no_quorum'] == 'io-error'"
heal3 a b; heal3 a c
check "quorum back" wait_for 30 jcheck a "o['quorum']['have']"
check "reconnected and synced before writing (an Outdated Primary alone fails writes)" wait_for 60 converged
check "writes work again" timeout 20 qemu-io -f raw -c "write -P 0x82 0 64k" -c flush "$(uri_a)"
check "converged after io-error" wait_for 60 converged
check "b has the write" rd b 0x82 0

# b's disk fails (it detaches, Diskless): with quorum a still writes, marking
# what b misses, and b gets it back after the repair
nb down r0 >/dev/null 2>&1
: >"$T/faults.b"
b_up() { DIPOLE_FAULTS="$T/faults.b" nb up r0 --device none; }
check "b up again with a fault file" b_up
check "b back in sync" wait_for 60 converged
echo "eio any 0 1099511627776" >"$T/faults.b"
check "a's write completes although b's disk fails under it" timeout 30 qemu-io -f raw -c "write -P 0x83 0 64k" \
	-c flush "$(uri_a)"
check "b detached (Diskless), a not suspended" wait_for 20 both "not o['io_suspended'] and p['disk'] == 'Diskless'" \
	"o['disk'] == 'Diskless'"
check "more writes complete on a" timeout 30 qemu-io -f raw -c "write -P 0x84 1M 64k" -c flush "$(uri_a)"
nb down r0 >/dev/null 2>&1
: >"$T/faults.b"
check "b's disk repaired: it comes back" b_up
check "converged after the repair" wait_for 60 converged
check "b has the writes made while its disk was failed" both_have 0x83@0 0x84@1M
finish
