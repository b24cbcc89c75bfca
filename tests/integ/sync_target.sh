#!/usr/bin/env bash
# A SyncTarget can be Primary: blocks it has not received yet are read from
# the peer, writes (also partial-block ones) land on both, and the sync
# completes to byte-identical disks. An Inconsistent node without a peer
# refuses reads instead of serving garbage.
. "$(dirname "$0")/lib.sh"
mknet2
DISK_OPTS="resync-rate 12M;" mkres2 256M "protocol C;"
SIZE=268386304
M=1048576
na create-md r0 >/dev/null 2>&1
nb create-md r0 >/dev/null 2>&1
expect_rc "up b alone" 0 "up on b" nb up r0 --device none
check "b alone is Inconsistent and not connected" jcheck b "o['disk']=='Inconsistent' and p['connection']!='Connected'"
check "reading b's Inconsistent disk without a peer fails (EIO), no garbage" \
	bash -c "! qemu-io -f raw -r -c 'read 0 4k' '$(uri_b)' 2>&1 | grep -q '^read 4096'"
expect_rc "up a" 0 "up on a" na up r0 --device none
check "connected" wait_for 20 both "p['connection']=='Connected'" "p['connection']=='Connected'"
expect_rc "a primary --force: full sync to b, rate-limited" 0 "" na primary r0 --force

# what every copy must end up holding, built alongside
truncate -s $SIZE "$T/exp"
head -c 64M /dev/urandom >"$T/rand"
check "64 MiB written on a during the sync" nbdcopy "$T/rand" "$(uri_a)"
dd if="$T/rand" of="$T/exp" conv=notrunc status=none
qemu-io -f raw -c "write -P 0x3c $((200 * M)) $((8 * M))" "$(uri_a)" >/dev/null
python3 -c "
import sys; f = open('$T/exp', 'r+b'); f.seek(200 * $M); f.write(b'\x3c' * 8 * $M)"
check "b is SyncTarget, not done yet" jcheck b "p['replication']=='SyncTarget' and p['sync_done_percent'] < 60"

expect_rc "a steps down" 0 "" na secondary r0
check "b sees a Secondary" wait_for 10 jcheck b "p['role']=='Secondary'"
expect_rc "b, SyncTarget with an Inconsistent disk, may become Primary" 0 "" nb primary r0
check "b is Primary, still Inconsistent and SyncTarget" \
	jcheck b "o['role']=='Primary' and o['disk']=='Inconsistent' and p['replication']=='SyncTarget'"
check "b reads the unsynced blocks through a: 64 MiB equal what a wrote" \
	bash -c "nbdcopy '$(uri_b)' - | head -c 64M | cmp -s - '$T/rand'"
check "b reads the pattern at 200 MiB it has not received" \
	bash -c "qemu-io -f raw -r -c 'read -P 0x3c $((200 * M)) $((8 * M))' '$(uri_b)' >/dev/null 2>&1"

# partial-block writes on b into blocks it lacks: completed from a's copy
W="write -P 0x11 $((201 * M + 100)) 1000;write -P 0x22 $((202 * M + 4000)) 9000;write -z $((203 * M + 512)) 1024;write -P 0x33 $((240 * M)) 4096;write -P 0x44 $((250 * M + 7)) 3"
IFS=';' read -ra CMDS <<<"$W"
args=()
for c in "${CMDS[@]}"; do args+=(-c "$c"); done
check "partial, crossing, zeroing and aligned writes on b" bash -c "qemu-io -f raw $(printf "%q " "${args[@]}") '$(uri_b)' >/dev/null"
python3 - "$T/exp" <<'PY'
import sys
M = 1 << 20
f = open(sys.argv[1], 'r+b')
for off, n, b in ((201 * M + 100, 1000, 0x11), (202 * M + 4000, 9000, 0x22), (203 * M + 512, 1024, 0),
                  (240 * M, 4096, 0x33), (250 * M + 7, 3, 0x44)):
    f.seek(off); f.write(bytes([b]) * n)
PY
EXP=$(md5sum <"$T/exp" | cut -d' ' -f1)
check "what b serves mid-sync equals the expected image" \
	bash -c "test \"\$(nbdcopy '$(uri_b)' - | md5sum | cut -d' ' -f1)\" = $EXP"
check "the sync finishes: both UpToDate" \
	wait_for 60 both "p['disk']=='UpToDate' and p['replication']=='Established'" "o['disk']=='UpToDate' and p['replication']=='Established'"
check "a's disk equals the expected image" test "$(data_md5 $SIZE "$T/a.img")" = "$EXP"
check "b's disk equals the expected image" test "$(data_md5 $SIZE "$T/b.img")" = "$EXP"
check "nothing out of sync on either side" both "p['out_of_sync_bytes']==0" "p['out_of_sync_bytes']==0"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
finish
