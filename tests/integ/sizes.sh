#!/usr/bin/env bash
# Sizes (issue 12 item 2): backing disks of different sizes pair at the
# smaller; disk { size } caps the device and one larger than the disk is
# refused; `resize` grows an online resource after both disks grew, moving
# the metadata and resyncing only the new area; a disk grown while down
# comes up with its data; a failure in the middle of the metadata move
# leaves the old metadata in use; shrinking and resize without a healthy peer are
# refused with nothing changed.
. "$(dirname "$0")/lib.sh"
mknet2
MD128=$((128 * 1048576 - 45056))   # 128 MiB minus metadata (one peer slot)
size_is() { jcheck "$1" "o['size_bytes'] == $2"; }
has() { grep -q -- "$2" <<<"$1"; }   # has TEXT PATTERN

# --- different sizes pair at the smaller --------------------------------------
mkres2 256M
truncate -s 200M "$T/b.img"
na create-md r0 --force >/dev/null 2>&1; nb create-md r0 --force >/dev/null 2>&1
na up r0 --device none >/dev/null 2>&1; nb up r0 --device none >/dev/null 2>&1
check "256 MiB and 200 MiB disks connect" wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
S200=$((200 * 1048576 - 49152))
check "both export the smaller usable size" both "o['size_bytes'] == $S200" "o['size_bytes'] == $S200"
check "dump-md shows the agreed and the backing size" \
	sh -c "'$DIPOLE' -c '$T/r.res' --node a dump-md r0 2>/dev/null | grep -q 'la-size $S200'"
na down r0 >/dev/null 2>&1; nb down r0 >/dev/null 2>&1

# --- the larger node holds data: refused, naming both sizes ------------------
na create-md r0 --force >/dev/null 2>&1
na up r0 --device none >/dev/null 2>&1 && na primary r0 --force >/dev/null 2>&1
nb up r0 --device none >/dev/null 2>&1
check "a larger node with data is not shrunk: refused with both sizes" \
	wait_for 20 jcheck a "'too small' in p['reason'] and '200' in p['reason'] and p['connection'] != 'Connected'"
check "and its size is unchanged" size_is a $((256 * 1048576 - 49152))
na down r0 >/dev/null 2>&1; nb down r0 >/dev/null 2>&1

# --- disk { size } ------------------------------------------------------------
DISK_OPTS="size 100M;" mkres2 128M
na create-md r0 --force >/dev/null 2>&1; nb create-md r0 --force >/dev/null 2>&1
na up r0 --device none >/dev/null 2>&1; nb up r0 --device none >/dev/null 2>&1
check "disk { size 100M } caps both" wait_for 20 both "o['size_bytes'] == 104857600 and p['connection'] == 'Connected'" \
	"o['size_bytes'] == 104857600"
na down r0 >/dev/null 2>&1; nb down r0 >/dev/null 2>&1
DISK_OPTS="size 1G;" mkres2 128M
na create-md r0 --force >/dev/null 2>&1
sum=$(md5sum <"$T/a.img")
out=$(na up r0 --device none 2>&1); rc=$?
check "a size larger than the disk is refused (exit 3)" test "$rc" = 3
check "naming what and where" has "$out" 'r.res:[0-9]*:[0-9]*: disk { size 1.0 GiB } is larger than the usable size'
check "and nothing was changed" test "$sum" = "$(md5sum <"$T/a.img")"

# --- online resize after both disks grew --------------------------------------
mkres2 128M
pair_up || notok "pair up (128 MiB)"
qemu-io -f raw -c "write -P 0x5a 0 4M" -c "write -P 0x3c 100M 4M" -c flush "$(uri_a)" >/dev/null
before=$(jcheck b "True" && nb status r0 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['stats']['received_bytes'])")
truncate -s 192M "$T/a.img"
nb disconnect r0 >/dev/null 2>&1
wait_for 10 jcheck a "p['connection'] != 'Connected'"
out=$(na resize r0 2>&1); rc=$?
check "resize with the peer disconnected is refused (exit 3)" test "$rc" = 3
check "saying which peer and why" has "$out" 'resize refused: peer b is .*nothing was changed'
check "and nothing changed: same size, metadata still at the old end" \
	sh -c "'$DIPOLE' -c '$T/r.res' --node a dump-md r0 2>/dev/null | grep -q 'disk-size 134217728'"
nb connect r0 >/dev/null 2>&1
wait_for 20 both "p['connection'] == 'Connected' and p['replication'] == 'Established'" "o['disk'] == 'UpToDate'"
out=$(na resize r0 2>&1); rc=$?
check "resize when only one disk grew does nothing (exit 0, says which limits)" \
	eval '[ $rc = 0 ] && has "$out" "nothing to grow.*usable size on b"'
truncate -s 192M "$T/b.img"
t0=$(date +%s.%N)
out=$(na resize r0 2>&1); rc=$?
t1=$(date +%s.%N)
check "resize after both grew succeeds" test "$rc" = 0
echo "# $out"
NEW=$((192 * 1048576 - 49152))   # 192 MiB minus metadata (bitmap one page larger)
check "both export the new size" wait_for 10 both "o['size_bytes'] == $NEW" "o['size_bytes'] == $NEW"
check "the new area is resynced, b UpToDate again" wait_for 60 jcheck b "o['disk'] == 'UpToDate' and p['replication'] == 'Established'"
t2=$(date +%s.%N)
echo "# resize command $(echo "$t1 - $t0" | bc) s; new area synced after $(echo "$t2 - $t0" | bc) s"
after=$(nb status r0 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['stats']['received_bytes'])")
got=$((after - before))
echo "# b received $got bytes for a growth of $((NEW - MD128)) bytes"
check "only the new area was synced (no more than it)" test "$got" -le $((NEW - MD128 + 1048576))
check "and all of it" test "$got" -ge $((NEW - MD128 - 1048576))
check "old data intact on a" qemu-io -f raw -c "read -P 0x5a 0 4M" -c "read -P 0x3c 100M 4M" "$(uri_a)"
check "the new end is writable" qemu-io -f raw -c "write -P 0x77 $((NEW - 1048576)) 1M" -c flush "$(uri_a)"
na secondary r0 >/dev/null 2>&1
wait_for 10 jcheck b "o['disk'] == 'UpToDate'"
na down r0 >/dev/null 2>&1; nb down r0 >/dev/null 2>&1
check "the data areas are identical on both" test "$(data_md5 $NEW "$T/a.img")" = "$(data_md5 $NEW "$T/b.img")"
check "metadata moved: dump-md shows the new disk and agreed size" \
	sh -c "'$DIPOLE' -c '$T/r.res' --node b dump-md r0 2>/dev/null | grep -q 'la-size $NEW'"

# --- grown while down -----------------------------------------------------------
truncate -s 256M "$T/a.img"
out=$(na up r0 --device none 2>&1); rc=$?
check "a disk grown while down comes up (metadata found at the old end)" test "$rc" = 0
check "with a message that says so" has "$out" 'grew from 192.0 MiB to 256.0 MiB'
check "with its data" qemu-io -r -f raw -c "read -P 0x5a 0 4M" "$(uri_a)"
check "keeping its agreed size" size_is a $NEW
na down r0 >/dev/null 2>&1

# --- shrinking below the data is refused --------------------------------------
sed "s/disk {  }/disk { size 100M; }/" "$T/r.res" >"$T/small.res"
sum=$(md5sum <"$T/a.img")
out=$(CFG_A=$T/small.res na up r0 --device none 2>&1); rc=$?
check "a cap below the agreed size of a disk with data is refused (exit 3)" test "$rc" = 3
check "with a clear message" has "$out" 'shrinking below the data is refused'
check "and nothing was changed" test "$sum" = "$(md5sum <"$T/a.img")"

# --- a crash in the middle of the metadata move (disk fault hooks) -------------
mkres2 128M
: >"$T/faults"
na create-md r0 --force >/dev/null 2>&1; nb create-md r0 --force >/dev/null 2>&1
DIPOLE_FAULTS=$T/faults na up r0 --device none >/dev/null 2>&1; nb up r0 --device none >/dev/null 2>&1
wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'" && na primary r0 --force >/dev/null 2>&1
wait_for 60 jcheck b "o['disk'] == 'UpToDate'" || notok "pair up with fault hooks"
qemu-io -f raw -c "write -P 0x6b 0 4M" -c flush "$(uri_a)" >/dev/null
truncate -s 192M "$T/a.img" "$T/b.img"
echo "eio any $((192 * 1048576 - 8192)) 8192" >"$T/faults"   # the new superblock pair
out=$(na resize r0 2>&1); rc=$?
check "a failure writing the new superblock fails resize (exit 1)" test "$rc" = 1
check "saying the old metadata stays valid" has "$out" 'old metadata stays valid'
check "the device keeps its size" size_is a $MD128
kill -9 "$(head -1 "$T/ra/r0.pid")"; sleep 0.5   # and the node crashes there
: >"$T/faults"
out=$(na up r0 --device none 2>&1); rc=$?
check "after the crash the node comes up from the old metadata" test "$rc" = 0
check "recognised at the old end" has "$out" 'metadata is still at the old end'
check "with its data and size" eval 'qemu-io -r -f raw -c "read -P 0x6b 0 4M" "$(uri_a)" >/dev/null && size_is a $MD128'
wait_for 30 both "p['connection'] == 'Connected' and o['disk'] == 'UpToDate'" "o['disk'] == 'UpToDate'"
check "and resize then completes" na resize r0
check "to the new size" wait_for 10 both "o['size_bytes'] == $NEW" "o['size_bytes'] == $NEW"
na down r0 >/dev/null 2>&1; nb down r0 >/dev/null 2>&1
finish
