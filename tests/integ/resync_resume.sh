#!/usr/bin/env bash
# resync_resume — an interrupted resync goes on from the persistent bitmaps
# instead of starting over (docs/replication.md, "Interrupted resync"): the
# initial full sync and a bitmap resync are each interrupted — link flap,
# clean restart of the target and of the source, SIGKILL of the target and
# of the source — at a point chosen by status (10-60 % done, the resync
# rate-limited to 8 MiB/s), never by a sleep. Each time: the bytes moved stay
# within 1.05 x what was out of sync at the start plus one 1 MiB resync
# chunk (the one on the wire when it broke), `status` shows less left after
# the interruption than before it, and both disks end identical.
source "$(dirname "$0")/lib.sh"
mknet2
DISK_OPTS="resync-rate 8M; c-max-rate 8M;" mkres2 64M
MIB=1048576
num() { "n$1" status r0 --json 2>/dev/null | python3 -c "import json,sys; o=json.load(sys.stdin); p=o['peers'][0] if o['peers'] else {}; print(int($2))"; }
# mid NODE: NODE is SyncTarget and 10-60 % through
mid() { jcheck "$1" "p['replication'] == 'SyncTarget' and 10 <= p['sync_done_percent'] <= 60"; }
synced() {
	both "o['disk'] == 'UpToDate' and p['replication'] == 'Established' and p['out_of_sync_bytes'] == 0" \
		"o['disk'] == 'UpToDate' and p['replication'] == 'Established' and p['out_of_sync_bytes'] == 0"
}
same() { [ "$(data_md5 $((64 * MIB - 4 * MIB)) "$T/a.img")" = "$(data_md5 $((64 * MIB - 4 * MIB)) "$T/b.img")" ]; }
# within MOVED OOS: MOVED <= 1.05 x OOS + 1 MiB
within() { [ "$2" -gt 0 ] && [ "$1" -le $(( $2 * 105 / 100 + MIB )) ]; }
ratio() { echo "# $1: moved $2 bytes for $3 out of sync: ratio $(python3 -c "print(round($2 / max($3, 1), 3))")"; }
up_a() { na up r0 --device none >/dev/null 2>&1; }
up_b() { nb up r0 --device none >/dev/null 2>&1; }
kill_node() { kill -9 "$(cat "$T/r$1/r0.pid")"; wait_for 10 sh -c "! kill -0 $(cat "$T/r$1/r0.pid") 2>/dev/null"; }

# interrupt KIND: break the running resync; afterwards the node that kept
# running or came back first is queried for what is left (LEFT_NODE)
interrupt() {
	case $1 in
	flap)
		ip -n "$NS_A" link set "$VETH_A" down
		wait_for 20 jcheck b "p.get('connection') != 'Connected'"
		LEFT_NODE=b; LEFT=$(num b "p['out_of_sync_bytes']")
		ip -n "$NS_A" link set "$VETH_A" up ;;
	target-restart) nb down r0 >/dev/null 2>&1; up_b; LEFT_NODE=b ;;
	target-kill) kill_node b; up_b; LEFT_NODE=b ;;
	source-restart) na down r0 >/dev/null 2>&1; up_a; LEFT_NODE=a ;;
	source-kill) kill_node a; up_a; LEFT_NODE=a ;;
	esac
	[ "$1" = flap ] || LEFT=$(num $LEFT_NODE "p['out_of_sync_bytes']")
}

# ---- the initial full sync, interrupted by a SIGKILL of the target
na create-md r0 --force >/dev/null 2>&1; nb create-md r0 --force >/dev/null 2>&1
up_a; up_b
check "both up and connected" wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
na primary r0 --force >/dev/null
SIZE=$(num a "o['size_bytes']")
check "full sync: b 10-60 % through" wait_for 30 mid b
interrupt target-kill
echo "# full sync, target-kill: $SIZE bytes at the start, $LEFT left after"
check "full sync, b killed: b still knows how much is left (less than all)" test "$LEFT" -lt "$SIZE"
check "full sync: resumed and finished" wait_for 60 synced
moved=$(num a "o['stats']['sent_bytes']")
ratio "full sync, target-kill" "$moved" "$SIZE"
check "full sync: sent at most 1.05 x the device + 1 MiB" within "$moved" "$SIZE"
check "full sync: disks identical" same

# ---- bitmap resyncs: b away while a writes 32 MiB, then interrupted
pat=0x40
for kind in flap target-restart target-kill source-restart source-kill; do
	pat=$((pat + 1))
	nb down r0 >/dev/null 2>&1
	jcheck a "o['role'] == 'Primary'" || na primary r0 >/dev/null 2>&1
	check "$kind: a writes 32 MiB while b is away" \
		qemu-io -f raw -c "write -P $pat 8M 32M" -c flush "$(uri_a)"
	if [ $kind = source-kill ]; then
		# a clean restart first: the activity log of a crashed Primary
		# marks its recent extents again, as in DRBD; that is not what
		# this measures
		na down r0 >/dev/null 2>&1; up_a
	fi
	OOS0=$(num a "p['out_of_sync_bytes']")
	A0=$(num a "o['stats']['sent_bytes']")
	up_b
	check "$kind: b resyncing, 10-60 % through" wait_for 30 mid b
	BEFORE=$(num b "p['out_of_sync_bytes']")
	interrupt $kind
	echo "# $kind: out of sync $OOS0 at the start, $BEFORE before the interruption, $LEFT after"
	check "$kind: what is left survived the interruption (less than at the start)" test "$LEFT" -lt "$OOS0"
	check "$kind: resumed and finished" wait_for 60 synced
	case $kind in
	source-*) moved=$(num b "o['stats']['received_bytes']") ;;   # (a's counters restarted)
	*) moved=$(( $(num a "o['stats']['sent_bytes']") - A0 )) ;;
	esac
	ratio "$kind" "$moved" "$OOS0"
	check "$kind: moved at most 1.05 x the out-of-sync bytes + 1 MiB" within "$moved" "$OOS0"
	check "$kind: disks identical" same
done
na secondary r0 >/dev/null 2>&1
na down r0 >/dev/null 2>&1; nb down r0 >/dev/null 2>&1
finish
