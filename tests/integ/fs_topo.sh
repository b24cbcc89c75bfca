#!/usr/bin/env bash
# dipolefs topologies and orders of mounting (issue 13, docs/dipolefs.md
# "The client role and finding the owner", "One writer"): two disk nodes a
# and b with the guide's swarm.res options (allow-two-primaries,
# become-primary-on both) and c, a diskless tiebreaker (quorum majority).
#  - one node mounting as owner demotes the other Primary at once (the
#    fs-owner flag in the peers' state exchange), with a log line; the
#    other's `primary` is refused, its NBD export read-only; when its
#    device is in use it stays Primary, says why, and demotes once free;
#  - a client mounting before the owner has mounted: the Primary serves
#    without a mount of its own (status says so; secondary/down refused
#    while only clients that cannot take over are connected), and mounts
#    on top of that later;
#  - the tiebreaker mounts as a client, reads and writes, sees the other
#    client's writes; its `primary` stays refused;
#  - status's fs reason for every state that is not serving.
# The daemons share the test's mount namespace: $T/ma, $T/mb, $T/mc are
# a's, b's and c's mounts. Outcomes only, never timings.
. "$(dirname "$0")/lib.sh"
mknet3
truncate -s 64M "$T/a.img" "$T/b.img"
cat >"$T/r.res" <<EOT
resource r0 {
    net { protocol C; connect-int 1; ping-int 1; ping-timeout 5; allow-two-primaries; shared-secret "topo"; }
    startup { become-primary-on both; }
    options { quorum majority; }
    on a { node-id 0; address $IP_A:7790; disk $T/a.img; }
    on b { node-id 1; address $IP_B:7790; disk $T/b.img; }
    on c { node-id 2; address $IP_C:7790; disk none; }
    connection-mesh { hosts a b c; }
}
EOT
mkdir -p "$T/ma" "$T/mb" "$T/mc"
FA=$T/faults.a
: >"$FA"
na_f() { DIPOLE_FAULTS=$FA na "$@"; }
loop_of() { "n$1" status r0 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"]["loop"])'; }
logged() { grep -q -- "$2" "$T/r$1/r0.log"; }
fsj() { jcheck "$1" "o['fs'] is not None and $2"; }
nbd_write() { qemu-io -f raw -c "write -P 0x5a 60M 4k" "$(uri_$1)" >/dev/null 2>&1; }
# hold DEVICE open exclusively (as a mount would), in the background; unhold ends it
hold() { python3 -c "import os, time; fd = os.open('$1', os.O_RDONLY | os.O_EXCL); open('$T/held', 'w').close(); time.sleep(300)" &
	HOLD=$!; echo $HOLD >>"$T/bg.pids"; wait_for 10 test -e "$T/held"; }
unhold() { kill "$HOLD"; wait "$HOLD" 2>/dev/null; rm -f "$T/held"; }

na create-md r0 --force >/dev/null 2>&1 && nb create-md r0 --force >/dev/null 2>&1
check "a, b and c up" eval 'na_f up r0 >/dev/null && nb up r0 >/dev/null && nc up r0 >/dev/null'
check "all connected" wait_for 30 all_connected
check "a Primary, b synced" eval \
	'na primary r0 --force >/dev/null 2>&1 && wait_for 60 jcheck b "o[\"disk\"] == \"UpToDate\""'
# become-primary-on leaves the initial sync to a person; a restart with
# UpToDate data is the guide's case: both nodes come up Primary
check "b restarted: Primary too (become-primary-on both)" eval \
	'nb down r0 && nb up r0 >/dev/null && wait_for 60 jcheck b "o[\"role\"] == \"Primary\""'
jcheck b "o['role'] == 'Primary'" || { nb status r0; grep -E 'startup|role' "$T/rb/r0.log" | tail -20; } | sed 's/^/# /'

# ---- a client asking a Primary that cannot serve: the reason comes back
expect_rc "c mounts before mkfs: refused with a's reason" 3 "no owner reachable.*holds no filesystem" \
	nc mount r0 "$T/mc"
check "... c: fs null, not mounted" eval "jcheck c \"o['fs'] is None\" && ! mountpoint -q $T/mc"
check "... a serves nothing" jcheck a "o['fs'] is None"
expect_rc "mkfs on a" 0 "" na mkfs r0

# ---- one writer: a mounts as owner, b (Primary, unmounted) is demoted at once
expect_rc "mount on a: owner" 0 "as owner" na mount r0 "$T/ma"
check "b demoted to Secondary without mounting" wait_for 10 jcheck b "o['role'] == 'Secondary'"
check "... b's log says why" logged b "fs: demoted to Secondary: a owns r0's mounted filesystem"
expect_rc "primary on b refused: a owns the filesystem" 3 "a owns r0's mounted filesystem" nb primary r0
LB=$(loop_of b) # after b's restarts
check "... b's loop device ($LB) is read-only" test "$(blockdev --getro "$LB")" = 1
check "... b's NBD export refuses writes" eval '! nbd_write b'
check "b restarted while a owns the filesystem: kept Secondary" eval \
	'nb down r0 && nb up r0 >/dev/null && wait_for 30 jcheck b "all(x[\"connection\"] == \"Connected\" for x in o[\"peers\"])" && jcheck b "o[\"role\"] == \"Secondary\""'
check "... its startup says why" eval "nb status r0 | grep -q 'a owns r0.s mounted filesystem'"
check "a: owner, mounted here, serving" fsj a "o['fs']['role'] == 'owner' and o['fs']['mounted_here'] and o['fs']['reason'] == ''"

# ---- the tiebreaker as a client; b as a client
expect_rc "mount on c (diskless): client of a" 0 "as client of a" nc mount r0 "$T/mc"
expect_rc "mount on b: client of a" 0 "as client of a" nb mount r0 "$T/mb"
check "a lists both clients" wait_for 10 fsj a "sorted(o['fs']['clients']) == ['b', 'c']"
check "c: client of a, serving" fsj c "o['fs']['role'] == 'client' and o['fs']['owner'] == 'a' and o['fs']['reason'] == ''"
head -c 300k /dev/urandom >"$T/src1"
head -c 200k /dev/urandom >"$T/src2"
check "c writes a file and reads it back" eval "cp $T/src1 $T/mc/from-c && cmp -s $T/src1 $T/mc/from-c"
check "... a and b read it" eval "cmp -s $T/src1 $T/ma/from-c && cmp -s $T/src1 $T/mb/from-c"
check "b writes; c sees it at once" eval "cp $T/src2 $T/mb/from-b && cmp -s $T/src2 $T/mc/from-b"
check "c: mkdir, rename, unlink seen on b" eval "mkdir $T/mc/d && mv $T/mc/from-c $T/mc/d/x && test -f $T/mb/d/x && rm $T/mc/d/x && test ! -e $T/mb/d/x"
expect_rc "primary on c refused (no disk)" 3 "no disk" nc primary r0
check "... c stays Secondary" jcheck c "o['role'] == 'Secondary'"

# ---- the owner unmounts while only c (diskless: it cannot take over) is
# connected: it keeps serving (a disk client would take over: fs_handover.sh)
expect_rc "umount on b" 0 "" nb umount "$T/mb"
check "a lists c only" wait_for 10 fsj a "o['fs']['clients'] == ['c']"
expect_rc "umount on a while c is mounted" 0 "" na umount "$T/ma"
check "a: not mounted here, still owner serving c" eval "! mountpoint -q $T/ma && fsj a \
\"o['fs']['role'] == 'owner' and not o['fs']['mounted_here'] and o['fs']['mountpoint'] is None and o['fs']['clients'] == ['c']\""
check "... a's log says why it did not hand over" logged a "still serving the filesystem to 1 client nodes, not mounted here: c has no disk"
check "a's status text says it serves without a local mount" eval "na status r0 | grep -q 'fs: owner serving without a local mount, owner a, 1 clients'"
check "c still reads and writes" eval "cp $T/src2 $T/mc/again && cmp -s $T/src2 $T/mc/again"
expect_rc "secondary on a refused while c is mounted" 3 "serves it to 1 client nodes" na secondary r0
expect_rc "down on a refused: c is mounted and cannot take over" 3 "serves r0's filesystem to 1 client nodes and none can take it over \(c has no disk" na down r0
check "... a stays Primary and owner" fsj a "o['role'] == 'Primary' and o['fs']['role'] == 'owner'"
expect_rc "umount on c" 0 "" nc umount "$T/mc"
check "a: no clients left, still serving" wait_for 10 fsj a "o['fs']['clients'] == []"
expect_rc "secondary on a, no client left: allowed, serving stops" 0 "" na secondary r0
check "... a: Secondary, fs null" jcheck a "o['role'] == 'Secondary' and o['fs'] is None"
check "... b may be Primary again" eval 'nb primary r0 && jcheck b "o[\"role\"] == \"Primary\""'

# ---- a client mounts before the owner (b, Primary) has mounted
expect_rc "mount on a (Secondary) while b has not mounted: client of b" 0 "as client of b" na mount r0 "$T/ma"
check "b serves without a mount of its own" fsj b \
	"o['fs']['role'] == 'owner' and not o['fs']['mounted_here'] and o['fs']['clients'] == ['a'] and o['fs']['reason'] == ''"
check "b tells its peers: a refuses primary" eval "nb status r0 --json >/dev/null && ! na primary r0 >/dev/null 2>&1"
check "a reads what was written before, writes more" eval "cmp -s $T/src2 $T/ma/from-b && cp $T/src1 $T/ma/late && cmp -s $T/src1 $T/ma/late"
expect_rc "secondary on b refused while a is mounted" 3 "serves it to 1 client" nb secondary r0
expect_rc "mount on b now: the owner adds its own mount" 0 "as owner.*serving 1 clients" nb mount r0 "$T/mb"
check "b: mounted here, still serving a" fsj b "o['fs']['mounted_here'] and o['fs']['mountpoint'] == '$T/mb' and o['fs']['clients'] == ['a']"
check "b sees a's file; a sees b's" eval "cmp -s $T/src1 $T/mb/late && cp $T/src2 $T/mb/late2 && cmp -s $T/src2 $T/ma/late2"
expect_rc "umount on a (client)" 0 "" na umount "$T/ma"
expect_rc "umount on b (owner, no client left)" 0 "" nb umount "$T/mb"
check "b: fs null, stays Primary" wait_for 10 jcheck b "o['fs'] is None and o['role'] == 'Primary'"

# ---- the other Primary's device is in use: it stays Primary, says why, demotes once free
check "a Primary again (allow-two-primaries)" na primary r0
LB=$(loop_of b)
hold "$LB"
expect_rc "mount on a: owner, while b is Primary with its device held" 0 "as owner" na mount r0 "$T/ma"
check "b says why it stays Primary" wait_for 10 logged b "a owns the mounted filesystem, but this node stays Primary: its device is in use"
check "... b is still Primary" jcheck b "o['role'] == 'Primary'"
check "... but a new NBD client of b cannot write" eval '! nbd_write b'
expect_rc "... and b mounting is refused (a client must not write its device)" 3 "device is in use" nb mount r0 "$T/mb"
unhold
check "b's device free: demoted to Secondary" wait_for 10 jcheck b "o['role'] == 'Secondary'"

# ---- why a mount is not serving
expect_rc "mount on c: client of a" 0 "as client of a" nc mount r0 "$T/mc"
cut3 a c
check "c cut off from a: reason says no owner reachable" wait_for 20 fsj c "o['fs']['reason'].startswith('no owner reachable')"
nc status r0 --json | python3 -c 'import json,sys; print("# reason:", json.load(sys.stdin)["fs"]["reason"])'
check "... status text too" eval "nc status r0 | grep -q 'no owner reachable'"
heal3 a c
check "c reconnected: reason empty" wait_for 30 fsj c "o['fs']['reason'] == ''"
check "... and reads again" cmp -s "$T/src1" "$T/mc/late"
# the owner cut off from b and c: no quorum, its I/O is held, with a
# writer on a (write + fsync in a loop) across the cut. b stays Secondary
# and writes nothing. The write in flight at the cut is on a's disk, not
# b's, so on the heal a (Outdated) is a SyncTarget of b with the same
# generation: nobody went on without a, it must not fence itself, and its
# held fsync completes (the cut is shorter than io-timeout)
rm -f "$T/held.stop"
held_writer() {
	local i=0
	while [ ! -e "$T/held.stop" ]; do
		i=$((i + 1))
		dd if="$T/src2" of="$T/ma/held.$((i % 4))" bs=64k conv=fsync 2>/dev/null || { echo "$i" >"$T/held.rc"; return; }
		echo $i >"$T/held.n"
	done
	echo 0 >"$T/held.rc"
}
bg held_writer
check "a's writer runs" wait_for 20 eval "[ \"\$(cat $T/held.n 2>/dev/null)\" -ge 3 ]"
cut3 a b
cut3 a c
check "a alone: no quorum, reason says its I/O is suspended" wait_for 20 fsj a \
	"not o['quorum']['have'] and o['fs']['reason'].startswith('I/O suspended on the owner: I/O is held by the quorum rules')"
n_cut=$(cat "$T/held.n")
check "... a's writer is held" eval "sleep 1; [ \"\$(cat $T/held.n)\" = $n_cut ] && [ ! -s $T/held.rc ]"
heal3 a b
heal3 a c
check "healed: all connected, a serves again" wait_for 60 eval \
	"all_connected && fsj a \"o['quorum']['have'] and o['fs']['reason'] == '' and o['disk'] == 'UpToDate' and all(x['disk'] == 'UpToDate' for x in o['peers'] if x['name'] == 'b')\""
check "... a's writer goes on" wait_for 30 eval "[ \"\$(cat $T/held.n)\" -gt $((n_cut + 1)) ]"
touch "$T/held.stop"
check "... and never failed" wait_for 30 grep -qx 0 "$T/held.rc"
check "... a was not fenced (b went on with nothing)" eval '! logged a "write epoch .* fenced"'
check "... c too, and reads" eval "wait_for 40 fsj c \"o['fs']['reason'] == ''\" && cmp -s $T/src1 $T/mc/late && cmp -s $T/src2 $T/mc/held.1"
# a's disk fails every write: on-io-error detach, a goes on through b
printf 'eio write 0 %d\n' $((64 << 20)) >"$FA"
check "a write through c after a's disk failed succeeds (b has it)" \
	eval "cp $T/src2 $T/mc/after-fail && sync $T/mc/after-fail && cmp -s $T/src2 $T/ma/after-fail"
check "a detached its disk" wait_for 20 jcheck a "o['disk'] == 'Diskless'"
check "a: reason names the owner's disk" wait_for 10 fsj a "o['fs']['reason'] == \"owner's disk not UpToDate: a's disk is Diskless\""
check "c: the same reason, seen through its vote link" wait_for 10 fsj c "o['fs']['reason'] == \"owner's disk not UpToDate: a's disk is Diskless\""
expect_rc "umount on c" 0 "" nc umount "$T/mc"
expect_rc "umount on a" 0 "" na umount "$T/ma"
check "down c, b, a" eval 'nc down r0 && nb down r0 && na down r0 --force'
finish
