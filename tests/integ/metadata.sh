#!/usr/bin/env bash
# create-md / dump-md: sizes, refusal to clobber, corrupt superblocks, bad disks.
. "$(dirname "$0")/lib.sh"
mkres 256M

expect_rc "create-md prints the usable size" 0 "usable size 256.0 MiB \(268386304 bytes\)" dp create-md r0
expect_rc "dump-md shows layout, uuids, flags and state" 0 "data-size 268386304;.*" dp dump-md r0
dp dump-md r0 >"$T/md"
check "dump-md reports Inconsistent and an empty bitmap" \
	bash -c "grep -q 'disk-state Inconsistent;' $T/md && grep -q 'out-of-sync 0;' $T/md && grep -q '^uuid current' $T/md"
expect_rc "create-md refuses to overwrite dipole metadata (exit 3)" 3 "already holds dipole metadata" dp create-md r0
expect_rc "create-md --force overwrites" 0 "wrote metadata" dp create-md r0 --force

mkfs.ext4 -q -F "$T/a.img" >/dev/null 2>&1
expect_rc "create-md refuses a disk holding a filesystem, saying what it found" 3 "looks like it holds an ext2/ext3/ext4 filesystem" \
	dp create-md r0
expect_rc "create-md --force overrides the filesystem check" 0 "wrote metadata" dp create-md r0 --force

# corrupt the active superblock (slot 0 is the last 8 KiB of the disk): flip a byte of its data-size
sz=$(stat -c %s "$T/a.img")
printf '\xff' | dd of="$T/a.img" bs=1 seek=$((sz - 8192 + 41)) conv=notrunc 2>/dev/null
expect_rc "corrupt superblock: dump-md refuses with slot, offset and reason" 1 "corrupt metadata superblock \(slot 0 at byte offset $((sz - 8192))\): checksum mismatch" \
	dp dump-md r0
expect_rc "corrupt superblock: up refuses (exit 3) and changes nothing" 3 "checksum mismatch.*refusing to attach" dp up r0
before=$(md5sum <"$T/a.img")
dp up r0 >/dev/null 2>&1
check "the refused up did not write to the disk" test "$before" = "$(md5sum <"$T/a.img")"
expect_rc "create-md on damaged metadata needs --force too" 3 "damaged" dp create-md r0

truncate -s 600K "$T/a.img"
expect_rc "too-small disk: clear message" 1 "too small .*at least 1 MiB must remain" dp create-md r0
rm -f "$T/a.img"
expect_rc "missing disk: clear message with a hint" 1 "cannot open backing disk $T/a.img: No such file" dp create-md r0
expect_rc "up on a missing disk fails with the path" 1 "cannot open backing disk $T/a.img" dp up r0
truncate -s 64M "$T/a.img"
expect_rc "up without metadata says to run create-md" 1 "no dipole metadata.*create-md r0" dp up r0
mkdir "$T/dir.img"
sed -i "s|disk $T/dir.img|disk $T/a.img|" "$T/r.res" 2>/dev/null
sed -i "s|disk $T/a.img|disk $T/dir.img|" "$T/r.res"
expect_rc "a directory as disk is refused" 1 "must be a regular file or a block device" dp create-md r0
sed -i "s|disk $T/dir.img|disk $T/a.img|" "$T/r.res"

# metadata that is not this resource's, this node's, or is damaged: refused, untouched
truncate -s 64M "$T/a.img"
dp create-md r0 --force >/dev/null 2>&1
sed "s/resource r0/resource r1/" "$T/r.res" >"$T/r1.res"
before=$(md5sum <"$T/a.img")
expect_rc "a disk holding another resource's metadata is refused" 3 "metadata of resource 'r0', not 'r1'" \
	"$DIPOLE" -c "$T/r1.res" --node a --run-dir "$RUN" up r1
sed "s|disk $T/b.img|disk $T/a.img|" "$T/r.res" >"$T/swap.res"
expect_rc "the other node's disk is refused (disks swapped)" 3 "created for node-id 0, but this node is node-id 1" \
	"$DIPOLE" -c "$T/swap.res" --node b --run-dir "$RUN" up r0 --device none
check "neither refusal wrote to the disk" test "$before" = "$(md5sum <"$T/a.img")"
dp up r0 --device none >/dev/null 2>&1 && dp down r0 >/dev/null 2>&1
bmoff=$(dp dump-md r0 2>/dev/null | awk '/^bm-offset/ {print $2}' | tr -d ';')
printf 'junk' | dd of="$T/a.img" bs=1 seek=$((bmoff + 100)) conv=notrunc status=none
before=$(md5sum <"$T/a.img")
expect_rc "a corrupt bitmap (after a clean detach) is refused with its offset" 3 "bitmap .at byte $bmoff, .* is corrupt" dp up r0 --device none
check "and nothing was written" test "$before" = "$(md5sum <"$T/a.img")"
dp create-md r0 --force >/dev/null 2>&1
dp up r0 --device none >/dev/null 2>&1
kill -9 "$(cat "$RUN/r0.pid")"
aloff=$(dp dump-md r0 2>/dev/null | awk '/^al-offset/ {print $2}' | tr -d ';')
printf 'junkjunk' | dd of="$T/a.img" bs=1 seek=$((aloff)) conv=notrunc status=none
printf 'junkjunk' | dd of="$T/a.img" bs=1 seek=$((aloff + 4096)) conv=notrunc status=none
expect_rc "after a crash, a corrupt activity log is refused with its offset" 3 "activity log .at byte $aloff. is corrupt" dp up r0 --device none
dp down r0 --force >/dev/null 2>&1
finish
