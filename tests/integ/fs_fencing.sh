#!/usr/bin/env bash
# Fencing as the takeover path (issue 14 item 1, docs/dipolefs.md "Which
# nodes can take over"): two disk nodes, no tiebreaker, `fencing
# resource-only` and a fence-peer handler that records its call and exits
# with the code in $T/fence.rc.
#  - exit 7 (peer fenced): the owner a's daemon is SIGKILLed; b runs the
#    handler against a, then promotes, mounts and serves through the same
#    FUSE mount; a process on b writing and fsyncing goes on, every record
#    reads back;
#  - exit 1 (did not fence): a back as b's client, b's daemon SIGKILLed; a
#    runs the handler, does not take over (b could be alive behind a cut
#    link: no split brain), stays Secondary, says why, and its mount's
#    calls fail ENOTCONN.
# The daemons share the test's mount namespace. Outcomes only, no timings.
. "$(dirname "$0")/lib.sh"
mknet2
mkdir -p "$T/ma" "$T/mb"
truncate -s 64M "$T/a.img" "$T/b.img"
cat >"$T/fence.sh" <<EOT
#!/bin/sh
echo "\$DRBD_MY_NODE_ID fences \$DRBD_PEERS (\$DRBD_PEER_ADDRESS)" >>"$T/fence.calls"
# held while fence.block exists, until the test makes fence.go
if [ -e "$T/fence.block" ]; then while [ ! -e "$T/fence.go" ]; do sleep 0.1; done; fi
exit \$(cat "$T/fence.rc")
EOT
chmod +x "$T/fence.sh"
cat >"$T/r.res" <<EOT
resource r0 {
    net { protocol C; connect-int 1; ping-int 1; ping-timeout 5; fencing resource-only; }
    handlers { fence-peer "$T/fence.sh"; }
    on a { node-id 0; address $IP_A:7790; disk $T/a.img; }
    on b { node-id 1; address $IP_B:7790; disk $T/b.img; }
}
EOT
fsj() { jcheck "$1" "o['fs'] is not None and $2"; }
# kill_daemon X: SIGKILL X's daemon; a thread left inside its kernel
# filesystem is let go by aborting its loop file's FUSE (fs_failover.sh)
kill_daemon() {
	local pid
	pid=$(cat "$T/r$1/r0.pid")
	kill -9 "$pid"
	wait_for 5 test ! -e "/proc/$pid" || { umount -f "$T/r$1/r0.fuse" 2>/dev/null; wait_for 30 test ! -e "/proc/$pid"; }
}
errno_of() { python3 -c 'import os,sys
try: os.stat(sys.argv[1]); print(0)
except OSError as e: print(e.errno)' "$1"; }

echo 7 >"$T/fence.rc"
fs2_start "$T/ma"
check "failover mode: fencing" fsj a "o['fs']['failover'] == 'fencing'"
expect_rc "mount on b: client of a" 0 "as client of a" nb mount r0 "$T/mb"
writer wb "$T/mb/held"
check "b's writer runs through a (20 records)" wait_for 30 acked_past wb 20

# ---- the handler fences the dead owner: b takes over
: >"$T/fence.block"
kill_daemon a
AT=$(acked wb)
check "b runs its fence-peer handler (held by the test)" wait_for 30 grep -qx "1 fences a ($IP_A)" "$T/fence.calls"
# the handler may take as long as it likes: the daemon answers meanwhile
# (timeout only catches a hang)
check "... status on b answers while the handler runs: Secondary, not the owner yet" eval \
	"timeout 10 \"$DIPOLE\" -c $T/r.res --node b --run-dir $T/rb status r0 --json | python3 -c \"import json,sys; o=json.load(sys.stdin); sys.exit(0 if o['role'] == 'Secondary' and o['fs']['role'] == 'client' else 1)\""
check "... and says the handler runs" eval "timeout 10 \"$DIPOLE\" -c $T/r.res --node b --run-dir $T/rb status r0 | grep -q 'fence-peer handler runs'"
: >"$T/fence.go"
check "b takes the filesystem over: Primary, owner, serving" wait_for 30 fsj b \
	"o['role'] == 'Primary' and o['fs']['role'] == 'owner' and o['fs']['reason'] == ''"
check "... after its fence-peer handler fenced a" grep -qx "1 fences a ($IP_A)" "$T/fence.calls"
check "... its log says so" grep -q "fence-peer handler exited 7: peer was fenced (STONITH)" "$T/rb/r0.log"
check "... without a remount" eval "grep -c ' $T/mb fuse.dipole' /proc/self/mounts | grep -qx 1"
check "b's writer goes on (20 more records)" wait_for 30 acked_past wb $((AT + 20))
check "b's writer: every record read back through its descriptor" stop_writer wb
sed "s/^/# wb: /" "$T/wb.out"
check "... and through the mount" records "$T/mb/held" "$(acked wb)"

# ---- a back as b's client; the handler fails: a does not take over
umount -l "$T/ma" 2>/dev/null
check "a back: resynced from b" eval 'na up r0 >/dev/null && wait_for 60 jcheck a "o[\"disk\"] == \"UpToDate\" and p[\"connection\"] == \"Connected\" and p[\"out_of_sync_bytes\"] == 0"'
expect_rc "mount on a: client of b" 0 "as client of b" na mount r0 "$T/ma"
echo 1 >"$T/fence.rc"
nsenter --net=/run/netns/$NS_A "$DIPOLE" -c "$T/r.res" --node a --run-dir "$T/ra" events r0 >"$T/events.a" 2>&1 &
echo $! >>"$T/bg.pids"
check "events stream on a" wait_for 10 grep -q "r0 role:" "$T/events.a"
kill_daemon b
check "a ran the handler against b" wait_for 30 grep -qx "0 fences b ($IP_B)" "$T/fence.calls"
check "... and did not take over: Secondary, still b's client, says why" wait_for 30 eval \
	"fsj a \"o['role'] == 'Secondary' and o['fs']['role'] == 'client' and o['fs']['owner'] == 'b'\" && grep -q 'not taking the filesystem over: fence-peer handler did not fence the peer (exit 1)' $T/ra/r0.log"
check "... its mount's calls fail ENOTCONN" wait_for 40 eval '[ "$(errno_of $T/ma/held)" = 107 ]'
check "... logged once, not every second" eval "sleep 2; [ \$(grep -c 'not taking the filesystem over: fence-peer handler' $T/ra/r0.log) = 1 ]"
check "... and the refusal is an event, once" eval "[ \$(grep -c 'change fs:takeover name:r0 node:a old-owner:b result:refused why:\".*fence-peer handler did not fence the peer (exit 1)' $T/events.a) = 1 ]"
check "... and its status says no owner is reachable" fsj a "o['fs']['reason'].startswith('no owner reachable')"
umount -l "$T/ma" 2>/dev/null
na down r0 >/dev/null 2>&1
umount -l "$T/mb" 2>/dev/null
nb down r0 --force >/dev/null 2>&1
finish
