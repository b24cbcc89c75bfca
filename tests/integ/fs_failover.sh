#!/usr/bin/env bash
# dipolefs failover (issue 14 item 1, docs/dipolefs.md "Failover"): two
# disk nodes a and b and c, a diskless tiebreaker (quorum majority).
#  - a owns, b and c are clients; a process on b holds a file open and
#    writes and fsyncs records in a loop; a's daemon is SIGKILLed: b takes
#    the filesystem over without a remount (promotes with c's vote, mounts
#    ext4, its mount switches to serving), the process's open file keeps
#    working, c follows b and keeps its ids, everything fsync'd before the
#    death is there; a comes back, resyncs and mounts as a client;
#  - the owner b's links are cut (iptables): a takes over the same way,
#    with a writer on a;
#  - at the end fsck of the filesystem is clean, the replicas identical;
#  - two nodes without a third vote: the survivor does not take over (no
#    split brain: it could be the other side of a cut link); its mount's
#    calls fail ENOTCONN and its log says why.
# The daemons share the test's mount namespace. Outcomes only, no timings.
. "$(dirname "$0")/lib.sh"
mknet3
mkres3 96M
mkdir -p "$T/ma" "$T/mb" "$T/mc"
fsj() { jcheck "$1" "o['fs'] is not None and $2"; }
# dirsync DIR: fsync(2) of a directory: "ok" or the error's name
dirsync() { python3 -c 'import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
try:
    os.fsync(fd); print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])' "$1"; }
loop_of() { "n$1" status r0 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"]["loop"])'; }
# rejoin X: X's daemon was killed; its FUSE mount goes, it comes up again,
# resyncs from the new owner and mounts as a client
rejoin() {
	umount -l "$T/m$1" 2>/dev/null
	"n$1" up r0 >/dev/null && wait_for 60 jcheck "$1" "o['disk'] == 'UpToDate' and all(x['connection'] == 'Connected' and x['out_of_sync_bytes'] == 0 for x in o['peers'])"
}

fs3_start
expect_rc "mount on b: client of a" 0 "as client of a" nb mount r0 "$T/mb"
expect_rc "mount on c: client of a" 0 "as client of a" nc mount r0 "$T/mc"
nsenter --net=/run/netns/$NS_B "$DIPOLE" -c "$T/r.res" --node b --run-dir "$T/rb" events r0 >"$T/ev.b" 2>&1 &
echo $! >>"$T/bg.pids"
LA=$(loop_of a) LB=$(loop_of b)

# ---- the owner's daemon is killed -----------------------------------------
head -c 300k /dev/urandom >"$T/src1"
head -c 200k /dev/urandom >"$T/src2"
check "a writes a file, fsync'd" eval "dd if=$T/src1 of=$T/ma/from-a bs=64k conv=fsync status=none"
check "c writes a file, fsync'd, in a directory" eval "mkdir $T/mc/dir && dd if=$T/src2 of=$T/mc/dir/from-c bs=64k conv=fsync status=none"
check "c caches the directory it will use after the failover" eval "ls $T/mc/dir >/dev/null && cmp -s $T/src1 $T/mc/from-a"
writer wb "$T/mb/held"
check "b's writer runs through a (50 records fsync'd)" wait_for 60 acked_past wb 50
: >"$T/mb/lk"
check "b's processes hold a classic lock and a flock (in a's table)" eval \
	'lk_hold p1 "$T/mb/lk" posix w 0 10 && lk_hold p3 "$T/mb/lk" flock w 0 0 && jcheck a "o[\"fs\"][\"locks\"] == 2"'
# the owner epoch ("Owner epochs"): a's clients learned a's
epoch_of() { "n$1" status r0 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fs"]["owner_epoch"])'; }
EPOCH_A=$(epoch_of a)
check "b and c carry owner a's epoch ($EPOCH_A)" eval '[ "$EPOCH_A" != 00000000 ] && [ "$(epoch_of b)" = "$EPOCH_A" ] && [ "$(epoch_of c)" = "$EPOCH_A" ]'
kill_daemon a
AT_DEATH=$(acked wb)
check "b takes the filesystem over: Primary, owner, serving" wait_for 60 fsj b \
	"o['role'] == 'Primary' and o['fs']['role'] == 'owner' and o['fs']['owner'] == 'b' and o['fs']['reason'] == ''"
check "... without a remount: the same FUSE mount at b's mount point" eval \
	"grep -c ' $T/mb fuse.dipole' /proc/self/mounts | grep -qx 1"
check "... its log says so" grep -q "this node took the filesystem over (promoted to Primary, with quorum)" "$T/rb/r0.log"
check "... status counts the failover with its time" fsj b "o['fs']['failovers'] == 1 and o['fs']['last_failover_ms'] > 0"
check "... and says it in text" eval 'nb status r0 | grep -q "fs takeovers here: 1, the last served again [0-9]* ms after"'
check "... and as an event, with its phases" wait_for 10 grep -Eq \
	'change fs:failover name:r0 node:b old-owner:a total-ms:[0-9]+ promote-ms:[0-9]+ why:"the owner is lost"' "$T/ev.b"
check "b's writer goes on through the same open file (50 more records)" wait_for 60 acked_past wb $((AT_DEATH + 50))
check "... and has not failed" eval "kill -0 $(cat "$T/wb.pid")"
check "c follows b: client of b, serving" wait_for 60 fsj c "o['fs']['owner'] == 'b' and o['fs']['reason'] == ''"
check "b serves under a new owner epoch, and c carries it" wait_for 20 eval \
	'[ "$(epoch_of b)" != "$EPOCH_A" ] && [ "$(epoch_of c)" = "$(epoch_of b)" ]'
check "... no request was refused as stale" fsj b "o['fs']['stale_refused'] == 0"
check "c's names made through a, never fsync'd: the directory's fsync says EIO, once" eval \
	'[ "$(dirsync "$T/mc/dir")" = EIO ] && [ "$(dirsync "$T/mc/dir")" = ok ]'
check "b's locks came along: b's table holds them, no grace left" wait_for 30 fsj b \
	"o['fs']['locks'] == 2 and o['fs']['grace'] == False and o['fs']['locks_lost'] == 0"
expect_rc "... c's process is refused b's classic lock" 1 "" try "$T/mc/lk" posix w 0 10
expect_rc "... and b's flock" 1 "" try "$T/mc/lk" flock w 0 0
check "... b's holders write and lock as before" eval '[ "$(probe p1)" = "write:ok lock:ok" ] && [ "$(probe p3)" = "write:ok lock:ok" ]'
check "... and let go; c takes the lock then" eval 'done_with p1 && done_with p3 && try "$T/mc/lk" posix w 0 10'
check "what was fsync'd before the death is there, on b and on c" eval \
	"cmp -s $T/src1 $T/mb/from-a && cmp -s $T/src2 $T/mb/dir/from-c && cmp -s $T/src1 $T/mc/from-a && cmp -s $T/src2 $T/mc/dir/from-c"
check "new files on b (fsync'd); c reads them" eval "dd if=$T/src2 of=$T/mb/after-b bs=64k conv=fsync status=none && cmp -s $T/src2 $T/mc/after-b"
check "c writes in the directory it cached (fsync'd); b reads it" eval "dd if=$T/src1 of=$T/mc/dir/after-c bs=64k conv=fsync status=none && cmp -s $T/src1 $T/mb/dir/after-c"
check "c reads b's writer's records fsync'd so far" eval "records $T/mc/held $(acked wb)"
check "b's writer: stopped, every record read back through its descriptor" stop_writer wb
sed 's/^/# b writer: /' "$T/wb.out"
check "a comes back: resyncs from b" rejoin a
check "... stays Secondary (b owns)" jcheck a "o['role'] == 'Secondary'"
expect_rc "mount on a: client of b" 0 "as client of b" na mount r0 "$T/ma"
check "a reads b's and c's files" eval "cmp -s $T/src2 $T/ma/after-b && cmp -s $T/src1 $T/ma/dir/after-c && records $T/ma/held 50"

# ---- the owner's links are cut -------------------------------------------
writer wa "$T/ma/held-a"
check "a's writer runs through b (50 records)" wait_for 60 acked_past wa 50
cut3 b a
cut3 b c
AT_CUT=$(acked wa)
check "a takes the filesystem over" wait_for 90 fsj a \
	"o['role'] == 'Primary' and o['fs']['role'] == 'owner' and o['fs']['owner'] == 'a' and o['fs']['reason'] == ''"
check "a's writer goes on (50 more records)" wait_for 60 acked_past wa $((AT_CUT + 50))
check "c follows a" wait_for 60 fsj c "o['fs']['owner'] == 'a' and o['fs']['reason'] == ''"
check "c reads a's records" records "$T/mc/held-a" 50
check "c reads b's file written before the cut" cmp "$T/src2" "$T/mc/after-b"
check "b, cut off, cannot write: no quorum" jcheck b "o['quorum']['have'] == False" 
check "a's writer: stopped, records read back" stop_writer wa
sed 's/^/# a writer: /' "$T/wa.out"
kill_daemon b
heal3 b a
heal3 b c
check "b comes back: resyncs from a" rejoin b
expect_rc "mount on b: client of a" 0 "as client of a" nb mount r0 "$T/mb"
check "b reads a's records" eval "records $T/mb/held-a $(acked wa)"

# ---- the end: fsck and identical replicas ---------------------------------
expect_rc "umount on c" 0 "" nc umount "$T/mc"
expect_rc "umount on b" 0 "" nb umount "$T/mb"
expect_rc "umount on a (owner)" 0 "" na umount "$T/ma"
check "a Secondary" eval 'na secondary r0 >/dev/null 2>&1 && jcheck a "o[\"role\"] == \"Secondary\""'
LA=$(loop_of a) LB=$(loop_of b)
check "a's replica: ext4 clean (fsck.ext4 -fn)" fsck.ext4 -fn "$LA"
check "the two loop devices are byte-identical (md5)" \
	test "$(md5sum <"$LA" | cut -d' ' -f1)" = "$(md5sum <"$LB" | cut -d' ' -f1)"
for n in a b c; do "n$n" down r0 >/dev/null 2>&1; done

# ---- two nodes, no third vote: the survivor does not take over ------------
cat >"$T/r2.res" <<EOT
resource r0 {
    net { connect-int 1; ping-int 1; ping-timeout 5; }
    on a { node-id 0; address $IP_A:7791; disk $T/a2.img; }
    on b { node-id 1; address $IP_B:7791; disk $T/b2.img; }
}
EOT
truncate -s 64M "$T/a2.img" "$T/b2.img"
export CFG_A=$T/r2.res CFG_B=$T/r2.res
na create-md r0 --force >/dev/null 2>&1 && nb create-md r0 --force >/dev/null 2>&1
check "2 nodes: up, a Primary, b synced" eval 'na up r0 >/dev/null && nb up r0 >/dev/null &&
	na primary r0 --force >/dev/null 2>&1 && wait_for 60 jcheck b "o[\"disk\"] == \"UpToDate\""'
check "2 nodes: mkfs, a owner, b client" eval "na mkfs r0 >/dev/null && na mount r0 $T/ma >/dev/null && nb mount r0 $T/mb >/dev/null"
check "2 nodes: b writes a file" eval "dd if=$T/src1 of=$T/mb/two bs=64k conv=fsync status=none"
kill_daemon a
check "2 nodes: b notices a is gone" wait_for 30 jcheck b "o['peers'][0]['connection'] != 'Connected'"
check "... says why it does not take over" wait_for 10 grep -q "automatic failover needs a tiebreaker" "$T/rb/r0.log"
check "... stays Secondary and client: no split brain" jcheck b "o['role'] == 'Secondary' and o['fs']['role'] == 'client'"
expect_rc "... its mount fails calls: ENOTCONN" 1 "not connected" stat "$T/mb/never-looked-up"
finish
