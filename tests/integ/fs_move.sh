#!/usr/bin/env bash
# dipole fs move (issue 14 item 5, docs/dipolefs.md "Planned handover"):
# two disk nodes a and b and c, a diskless tiebreaker. a owns, b and c are
# clients; a process on each node holds a file open and writes and fsyncs
# records in a loop; `fs move r0 b` on a hands ownership to b (a drains,
# flushes, unmounts, demotes; b promotes, mounts, serves; a and c follow):
# no process sees an error, not even EIO, and every record reads back; then
# back to a. Refusals: not the owner, a diskless node, this node, a node
# that has not mounted, a disconnected node, an Inconsistent one (resyncing
# what a wrote without it); each changes nothing. Then
# umount on a (owner) hands over to b (fs_handover.sh: umount and down).
. "$(dirname "$0")/lib.sh"
mknet3
# slow resync: b stays Inconsistent long enough to be refused as a target
DISK_OPTS="resync-rate 8M; c-max-rate 8M;" mkres3 64M
mkdir -p "$T/ma" "$T/mb" "$T/mc"
fsj() { jcheck "$1" "o['fs'] is not None and $2"; }
owner_is() { fsj a "o['fs']['owner'] == '$1'" && fsj b "o['fs']['owner'] == '$1'" && fsj c "o['fs']['owner'] == '$1' and o['fs']['reason'] == ''"; }
loop_of() { "n$1" status r0 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"]["loop"])'; }

fs3_start
expect_rc "mount on c: client of a" 0 "as client of a" nc mount r0 "$T/mc"

# ---- refusals, before b has mounted
expect_rc "fs move to b, which has not mounted: refused" 3 "b has not mounted" na fs move r0 b
expect_rc "fs move to c (diskless): refused" 3 "no disk" na fs move r0 c
expect_rc "fs move to a itself: refused" 3 "owns the filesystem already" na fs move r0 a
expect_rc "fs move on c (not the owner): refused" 3 "does not own" nc fs move r0 b
expect_rc "fs move to an unknown node: usage" 2 "not a host" na fs move r0 zz
expect_rc "fs move without a node: usage" 2 "fs move RES NODE" na fs move r0
expect_rc "mount on b: client of a" 0 "as client of a" nb mount r0 "$T/mb"
cut3 a b
check "b disconnected from a" wait_for 30 jcheck a "any(x['name'] == 'b' and x['connection'] != 'Connected' for x in o['peers'])"
expect_rc "fs move to b while it is disconnected: refused" 3 "not connected" na fs move r0 b
check "a goes on without b (c's vote): 24 MiB written and synced" \
	dd if=/dev/urandom of="$T/ma/bulk" bs=1M count=24 conv=fsync status=none
heal3 a b
check "b resyncs from a: Inconsistent meanwhile" wait_for 30 jcheck b "o['disk'] == 'Inconsistent'"
expect_rc "fs move to b while it is Inconsistent: refused" 3 "Inconsistent, not UpToDate" na fs move r0 b
check "b back" wait_for 60 eval "all_connected && jcheck b \"o['disk'] == 'UpToDate'\" && fsj b \"o['fs']['reason'] == ''\""
check "... nothing changed: a owns, b and c are its clients" owner_is a

# ---- the handover with a writer on every node
export STRICT=1
writer wa "$T/ma/from-a"
writer wb "$T/mb/from-b"
writer wc "$T/mc/from-c"
check "the three writers run (30 records each)" wait_for 60 eval "acked_past wa 30 && acked_past wb 30 && acked_past wc 30"
expect_rc "fs move r0 b on a" 0 "b now owns" na fs move r0 b
AT=$(( $(acked wa) > $(acked wb) ? $(acked wa) : $(acked wb) ))
check "b owns, a and c are its clients" wait_for 30 owner_is b
check "... b Primary, a Secondary" eval "jcheck b \"o['role'] == 'Primary'\" && jcheck a \"o['role'] == 'Secondary'\""
check "the writers go on (30 more records each)" wait_for 60 eval \
	"acked_past wa $((AT + 30)) && acked_past wb $((AT + 30)) && acked_past wc $((AT + 30))"
expect_rc "fs move r0 a on b: back" 0 "a now owns" nb fs move r0 a
check "a owns again" wait_for 30 owner_is a
AT=$(( $(acked wa) > $(acked wb) ? $(acked wa) : $(acked wb) ))
check "the writers go on again" wait_for 60 eval \
	"acked_past wa $((AT + 30)) && acked_past wb $((AT + 30)) && acked_past wc $((AT + 30))"
for w in wa wb wc; do
	check "writer $w: no error through both moves, every record read back" stop_writer $w
	sed "s/^/# $w: /" "$T/$w.out"
done
check "every node reads every writer's records" eval \
	"for m in ma mb mc; do records $T/\$m/from-a \$(acked wa) && records $T/\$m/from-b \$(acked wb) && records $T/\$m/from-c \$(acked wc) || exit 1; done"

# ---- a move leaves no write epoch behind (docs/dipolefs.md "A cut-off
# owner"): a's kernel mount is gone, so its epoch is disarmed, and b's
# take-over armed one. Once b went on without a during a cut, a is not
# fenced for it (its device reads as before) and takes the filesystem back
expect_rc "fs move r0 b on a, again" 0 "b now owns" na fs move r0 b
check "b owns, its mount armed with a write epoch; a's epoch disarmed" wait_for 30 eval \
	"owner_is b && fsj b \"o['fs']['write_epoch'] > 0\" && fsj a \"o['fs']['write_epoch'] == 0\""
cut3 a b
check "a disconnected from b" wait_for 30 jcheck b "any(x['name'] == 'a' and x['connection'] != 'Connected' for x in o['peers'])"
check "b goes on without a (c's vote): 2 MiB written and synced" \
	dd if=/dev/urandom of="$T/mb/while-cut" bs=1M count=2 conv=fsync status=none
heal3 a b
check "a resyncs and follows b again" wait_for 60 eval \
	"all_connected && jcheck a \"o['disk'] == 'UpToDate'\" && fsj a \"o['fs']['owner'] == 'b' and o['fs']['reason'] == ''\""
check "... a was not fenced: it owns no mount" fsj a "o['fs']['write_epoch'] == 0 and not o['fs']['write_epoch_fenced']"
expect_rc "fs move r0 a on b: a takes it back" 0 "a now owns" nb fs move r0 a
check "a owns again" wait_for 30 owner_is a
check "a and c read what b wrote during the cut" eval \
	"cmp $T/ma/while-cut $T/mb/while-cut && cmp $T/mc/while-cut $T/mb/while-cut"

# ---- umount of the owner's mount hands over to a client that can take it
expect_rc "umount on a: hands over to b (c has no disk)" 0 "" na umount "$T/ma"
check "b owns; a serves nothing" wait_for 30 eval "fsj b \"o['fs']['role'] == 'owner'\" && jcheck a \"o['fs'] is None and o['role'] == 'Secondary'\""
check "c follows b and reads every record" wait_for 30 eval "fsj c \"o['fs']['owner'] == 'b' and o['fs']['reason'] == ''\" && records $T/mc/from-a \$(acked wa)"

expect_rc "umount on c" 0 "" nc umount "$T/mc"
expect_rc "umount on b (owner)" 0 "" nb umount "$T/mb"
check "b Secondary" eval 'nb secondary r0 >/dev/null 2>&1 && jcheck b "o[\"role\"] == \"Secondary\""'
check "b's replica: ext4 clean (fsck.ext4 -fn)" fsck.ext4 -fn "$(loop_of b)"
finish
