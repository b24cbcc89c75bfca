#!/usr/bin/env bash
# Online verify (verify-alg) finds blocks that differ behind dipole's back,
# marks them, and a reconnect resyncs them; invalidate forces a full resync.
. "$(dirname "$0")/lib.sh"
mknet2
SIZE=268386304
mkres2 256M "protocol C; verify-alg sha256;"
check "pair comes up and syncs" pair_up
head -c 32M /dev/urandom >"$T/rand"
nbdcopy "$T/rand" "$(uri_a)"
check "verify on identical replicas finds nothing" \
	bash -c "nsenter --net=/run/netns/$NS_A $DIPOLE -c $T/r.res --node a --run-dir $T/ra verify r0 2>/dev/null | grep -q ': 0 of 65524 blocks out of sync'"
# damage three blocks of b's copy behind dipole's back (bit rot, a stray dd)
printf 'rot' | dd of="$T/b.img" bs=1 seek=$((5 << 20)) conv=notrunc status=none
printf 'rot' | dd of="$T/b.img" bs=1 seek=$((9 << 20)) conv=notrunc status=none
printf 'rot' | dd of="$T/b.img" bs=1 seek=$((200 << 20)) conv=notrunc status=none
check "verify finds exactly the three damaged blocks" \
	bash -c "nsenter --net=/run/netns/$NS_A $DIPOLE -c $T/r.res --node a --run-dir $T/ra verify r0 2>/dev/null | grep -q ': 3 of 65524 blocks out of sync (12288 bytes)'"
check "they are marked out of sync" jcheck a "p['out_of_sync_bytes'] == 12288"
na disconnect r0 >/dev/null 2>&1
na connect r0 >/dev/null 2>&1
check "after disconnect/connect they are resynced" \
	wait_for 30 both "p['connection']=='Connected' and p['out_of_sync_bytes']==0 and p['replication']=='Established'" "o['disk']=='UpToDate'"
check "replicas identical again" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"
expect_rc "verify while disconnected is refused (exit 3)" 3 "refusing to verify" bash -c "nsenter --net=/run/netns/$NS_A $DIPOLE -c $T/r.res --node a --run-dir $T/ra disconnect r0 && nsenter --net=/run/netns/$NS_A $DIPOLE -c $T/r.res --node a --run-dir $T/ra verify r0"
na connect r0 >/dev/null 2>&1
check "reconnected" wait_for 30 both "p['connection']=='Connected' and p['replication']=='Established'" "p['connection']=='Connected'"

# invalidate: b throws its copy away and gets everything again
rx0=$(nb status r0 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['stats']['received_bytes'])")
printf 'rot' | dd of="$T/b.img" bs=1 seek=$((77 << 20)) conv=notrunc status=none
expect_rc "invalidate on b" 0 "" nb invalidate r0
check "b resyncs fully from a" \
	wait_for 60 both "p['out_of_sync_bytes']==0 and p['replication']=='Established'" "o['disk']=='UpToDate' and o['stats']['received_bytes'] >= $rx0 + $SIZE"
check "replicas identical after invalidate" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"

# csums-alg: the same full resync moves only the blocks whose checksums differ
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
sed -i 's/verify-alg sha256;/verify-alg sha256; csums-alg sha1;/' "$T/r.res"
na up r0 --device none >/dev/null 2>&1
nb up r0 --device none >/dev/null 2>&1
check "up again with csums-alg" wait_for 30 both "p['connection']=='Connected' and p['replication']=='Established'" "p['connection']=='Connected'"
printf 'rot' | dd of="$T/b.img" bs=1 seek=$((33 << 20)) conv=notrunc status=none
printf 'rot' | dd of="$T/b.img" bs=1 seek=$((133 << 20)) conv=notrunc status=none
tx0=$(na status r0 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['stats']['sent_bytes'])")
expect_rc "invalidate on b" 0 "" nb invalidate r0
check "the resync completes" \
	wait_for 60 both "p['out_of_sync_bytes']==0 and p['replication']=='Established'" "o['disk']=='UpToDate'"
check "checksums matched for all but the damaged blocks" jcheck a "p['csum_skipped_bytes'] >= $SIZE - 2 * 4096 - 4096"
check "and only their data crossed the link" jcheck a "o['stats']['sent_bytes'] - $tx0 <= 64 * 4096"
check "replicas identical after the checksum resync" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
finish
