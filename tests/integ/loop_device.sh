#!/usr/bin/env bash
# The FUSE file + loop device export: a real ext4 on it survives down/up,
# fsck is clean, files are intact; in-use devices are protected.
. "$(dirname "$0")/lib.sh"
mkres 256M
dp create-md r0 >/dev/null 2>&1
DEV=$T/drbd0
expect_rc "up creates the device link to a loop device" 0 "loop /dev/loop[0-9]+, device $DEV" dp up r0 --device "$DEV"
check "device is a symlink to a block device" bash -c "[ -L $DEV ] && [ -b \$(readlink $DEV) ]"
check "Secondary: the block device is read-only" bash -c "[ \$(blockdev --getro \$(readlink $DEV)) = 1 ]"
check "Secondary: a direct write to the device fails" bash -c "! dd if=/dev/zero of=$DEV bs=4k count=1 oflag=direct 2>/dev/null"
dp primary r0 --force >/dev/null 2>&1
check "Primary: the block device is writable" bash -c "[ \$(blockdev --getro \$(readlink $DEV)) = 0 ]"
check "block device size equals the usable size" test "$(blockdev --getsize64 "$(readlink "$DEV")")" = 268386304
check "mkfs.ext4 on the device" mkfs.ext4 -q -F "$DEV"
mkdir -p "$T/mnt"
check "mount it" mount "$DEV" "$T/mnt"
head -c 20M /dev/urandom >"$T/big"
mkdir -p "$T/mnt/conf"
for i in $(seq 1 50); do echo "setting $i = $RANDOM" >"$T/mnt/conf/file$i.conf"; done
cp "$T/big" "$T/mnt/big"
(cd "$T/mnt" && find . -type f -exec md5sum {} + | sort -k2) >"$T/sums"
sync
expect_rc "down is refused while the filesystem is mounted (exit 3)" 3 "in use \(mounted or open\)" dp down r0
expect_rc "secondary is refused while mounted (exit 3)" 3 "in use" dp secondary r0
check "unmount" umount "$T/mnt"
expect_rc "down" 0 "" dp down r0
check "down detached the loop device and removed the link" bash -c "! [ -e $DEV ] && ! losetup -a | grep -q '$T'"
check "down unmounted FUSE" bash -c "! grep -q '$RUN' /proc/mounts"
dp dump-md r0 >"$T/md"
check "metadata marked clean and UpToDate after down" bash -c "grep -q 'disk-state UpToDate' $T/md && ! grep -q attached-or-crashed $T/md"
expect_rc "up again" 0 "disk UpToDate" dp up r0 --device "$DEV"
check "fsck -fn is clean" fsck.ext4 -fn "$DEV"
dp primary r0 >/dev/null 2>&1
check "mount again" mount "$DEV" "$T/mnt"
check "every file intact" bash -c "cd $T/mnt && find . -type f -exec md5sum {} + | sort -k2 | diff - $T/sums"
umount "$T/mnt"

# a daemon killed with SIGKILL while its device is mounted: its watchdog
# (src/export/fusedev.c) unmounts the device's FUSE mount by itself
mount "$DEV" "$T/mnt"
PID=$(cat "$RUN/r0.pid")
kill -9 "$PID"
wait_for 10 bash -c "! kill -0 $PID 2>/dev/null"
check "after SIGKILL the mounted filesystem sees I/O errors, not hangs" bash -c "! ls $T/mnt/conf >/dev/null 2>&1"
check "... and the watchdog unmounted the device's FUSE mount" wait_for 10 eval "! grep -q ' $RUN/r0.fuse ' /proc/mounts"
umount -l "$T/mnt"
expect_rc "up after SIGKILL" 0 "" dp up r0 --device "$DEV"
check "fsck -fn still clean after the crash (data was synced)" fsck.ext4 -fn "$DEV"
dp primary r0 >/dev/null 2>&1
mount "$DEV" "$T/mnt"
check "files intact after the crash" bash -c "cd $T/mnt && find . -type f -exec md5sum {} + | sort -k2 | diff - $T/sums"
umount "$T/mnt"

# the daemon and its watchdog both SIGKILLed: `up` cleans what is left
mount "$DEV" "$T/mnt"
PID=$(cat "$RUN/r0.pid")
W=$(ps -o pid= --ppid "$PID" | tr -d ' ')
check "the daemon has its watchdog" test -n "$W"
kill -9 $W "$PID"
wait_for 10 bash -c "! kill -0 $PID 2>/dev/null"
umount -l "$T/mnt"
expect_rc "up after SIGKILL of both cleans the stale FUSE mount and sockets" 0 "unmounted stale FUSE mount" \
	dp up r0 --device "$DEV"
check "fsck -fn still clean after the second crash" fsck.ext4 -fn "$DEV"
dp primary r0 >/dev/null 2>&1
mount "$DEV" "$T/mnt"
check "files intact after the second crash" bash -c "cd $T/mnt && find . -type f -exec md5sum {} + | sort -k2 | diff - $T/sums"
umount "$T/mnt"

# a Secondary's loop device is marked read-only (BLKROSET), a mark that
# belongs to /dev/loopN and outlives the binding: a killed Secondary must
# not leave it to the next user of the device (whose writes would fail
# with EPERM: a losetup + mkfs, say)
expect_rc "secondary" 0 "" dp secondary r0
L=$(readlink "$DEV")
check "Secondary: $L is read-only" bash -c "[ \$(blockdev --getro $L) = 1 ]"
PID=$(cat "$RUN/r0.pid")
kill -9 "$PID"
wait_for 10 bash -c "! kill -0 $PID 2>/dev/null"
check "after SIGKILL of the Secondary, $L is no longer read-only" wait_for 10 bash -c "[ \$(blockdev --getro $L) = 0 ]"
expect_rc "up after SIGKILL of the Secondary" 0 "" dp up r0 --device "$DEV"
expect_rc "down" 0 "" dp down r0
check "no loop device left" bash -c "! losetup -a | grep -q '$T'"
finish
