#!/usr/bin/env bash
# Handover on umount and down (issue 14 item 5, docs/dipolefs.md "Planned
# handover"): two disk nodes; a writer on b's mount (open file, pwrite +
# fsync in a loop, any error fails it) while the owner leaves:
#  - `dipole down` on the owner a (serving b without a mount of its own):
#    a hands the filesystem over to b first, then goes down;
#  - a comes back, mounts as b's client and is moved the filesystem back;
#    then a plain umount(8) of a's mount: the daemon sees its FUSE session
#    end and hands over to b before it gives the kernel filesystem up.
# Neither pause is an error for the writer; every record reads back on the
# new owner; a is Secondary afterwards (no split brain); fsck clean.
. "$(dirname "$0")/lib.sh"
mknet2
mkres2 64M
mkdir -p "$T/ma" "$T/mb"
fsj() { jcheck "$1" "o['fs'] is not None and $2"; }
loop_of() { "n$1" status r0 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"]["loop"])'; }
goes_on() { local at; at=$(acked wb); wait_for 30 acked_past wb $((at + 20)); }

na create-md r0 --force >/dev/null 2>&1 && nb create-md r0 --force >/dev/null 2>&1
check "a and b up, a Primary, b UpToDate" eval 'na up r0 >/dev/null && nb up r0 >/dev/null &&
	na primary r0 --force >/dev/null 2>&1 && wait_for 60 jcheck b "o[\"disk\"] == \"UpToDate\""'
expect_rc "mkfs on a" 0 "" na mkfs r0
expect_rc "mount on b: client of a (a serves without a mount)" 0 "as client of a" nb mount r0 "$T/mb"
export STRICT=1
writer wb "$T/mb/held"
check "b's writer runs (20 records)" wait_for 30 acked_past wb 20

# ---- down on the owner
expect_rc "down on a: hands over to b, then goes down" 0 "" na down r0
check "b owns and serves; a is down" wait_for 30 eval "fsj b \"o['fs']['role'] == 'owner' and o['fs']['reason'] == ''\" && ! na status r0 >/dev/null 2>&1"
check "... a's log says to whom and why" grep -q "handing r0's filesystem over to b (down)" "$T/ra/r0.log"
check "b's writer goes on through the down" goes_on

# ---- a back as a client, the filesystem moved to it, then umount(8) there
check "a up again and UpToDate" eval 'na up r0 >/dev/null && wait_for 60 jcheck a "o[\"disk\"] == \"UpToDate\" and p[\"connection\"] == \"Connected\" and p[\"out_of_sync_bytes\"] == 0"'
expect_rc "mount on a: client of b" 0 "as client of b" na mount r0 "$T/ma"
expect_rc "fs move r0 a on b" 0 "a now owns" nb fs move r0 a
check "a owns, b follows" wait_for 30 eval "fsj a \"o['fs']['role'] == 'owner'\" && fsj b \"o['fs']['owner'] == 'a' and o['fs']['reason'] == ''\""
check "b's writer goes on through the move" goes_on
check "plain umount(8) of a's mount" umount "$T/ma"
check "b owns again; a serves nothing and is Secondary" wait_for 30 eval \
	"fsj b \"o['fs']['role'] == 'owner' and o['fs']['reason'] == ''\" && jcheck a \"o['fs'] is None and o['role'] == 'Secondary'\""
check "... a's log says to whom and why" grep -q "handing r0's filesystem over to b (umount)" "$T/ra/r0.log"
check "b's writer goes on through the umount" goes_on

check "every old owner flushed its filesystem before handing it over" \
	eval '! grep -h "flushing before the handover failed" "$T"/r?/r0.log'
check "b's writer: no error through down, move and umount; every record read back" stop_writer wb
sed "s/^/# wb: /" "$T/wb.out"
check "the new owner's mount holds every record acknowledged" records "$T/mb/held" "$(acked wb)"
check "... and the same bytes after a remount on b (as owner)" eval \
	"S=\$(md5sum <$T/mb/held) && nb umount $T/mb && nb mount r0 $T/mb >/dev/null && [ \"\$(md5sum <$T/mb/held)\" = \"\$S\" ]"
expect_rc "umount on b" 0 "" nb umount "$T/mb"
check "b's replica: ext4 clean (fsck.ext4 -fn)" eval 'nb secondary r0 >/dev/null 2>&1; fsck.ext4 -fn "$(loop_of b)" >/dev/null 2>&1'
finish
