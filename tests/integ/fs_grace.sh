#!/usr/bin/env bash
# Locks across a failover, for a node that follows the new owner (issue 14
# item 3, docs/dipolefs.md "Locks", grace period): disk nodes a and b and
# c, a diskless tiebreaker. a owns, b and c are clients; a process on c
# holds a classic fcntl lock and a flock on f through the failover, a
# process on a a classic lock on g. a's daemon is SIGKILLed: b takes over
# and opens a grace period expecting c (a told its clients which nodes
# mounted); c follows b and reclaims. Afterwards c's process still holds
# both locks: F_GETLK on b names it, b's conflicting requests are refused
# (EAGAIN), it writes and locks again without EIO; grace ended because
# every node reclaimed; a's lock is gone. Outcomes only, never timings.
. "$(dirname "$0")/lib.sh"
mknet3
mkres3 64M
mkdir -p "$T/ma" "$T/mb" "$T/mc"
fsj() { jcheck "$1" "o['fs'] is not None and $2"; }
getlk() { python3 "$LOCKER" getlk "$1" "$2" "$3" "$4"; }

fs3_start
# a grace that would run out long after the test's waits: only c's
# reclaim can end it in time
expect_rc "mount on b: client of a" 0 "as client of a" nb mount r0 "$T/mb" -o grace=300
expect_rc "mount on c: client of a" 0 "as client of a" nc mount r0 "$T/mc"
check "b hears from a that a, b and c mounted" wait_for 10 grep -q "the nodes with the filesystem mounted: a b c" \
	"$T/rb/r0.log"
check "c creates f and g, fsync'd (they outlive a)" eval \
	'echo data | dd of="$T/mc/f" conv=fsync status=none && echo data | dd of="$T/mc/g" conv=fsync status=none'
check "c's process holds a classic lock on f [0,10)" lk_hold p1 "$T/mc/f" posix w 0 10
check "c's process holds a flock on f" lk_hold p2 "$T/mc/f" flock w 0 0
check "a's process holds a classic lock on g [0,10)" lk_hold p3 "$T/ma/g" posix w 0 10
check "a's table holds the 3 locks" jcheck a "o['fs']['locks'] == 3"

kill_daemon a
check "b takes the filesystem over" wait_for 60 fsj b \
	"o['role'] == 'Primary' and o['fs']['role'] == 'owner' and o['fs']['reason'] == ''"
check "c follows b" wait_for 60 fsj c "o['fs']['owner'] == 'b' and o['fs']['reason'] == ''"
check "b's grace period waits for c" grep -q "lock grace period waits for the nodes that the lost owner said had mounted: c\$" \
	"$T/rb/r0.log"
check "b's grace period ends: every node reclaimed" wait_for 30 grep -q \
	"lock grace period over: every node reclaimed (the last: node 2)" "$T/rb/r0.log"
check "c reclaimed its 2 locks, lost none" grep -q "fs: 2 locks reclaimed, 0 lost" "$T/rc/r0.log"
check "b's table holds c's 2 locks, granted as reclaims" fsj b \
	"o['fs']['locks'] == 2 and o['fs']['reclaims'] == 2 and o['fs']['locks_lost'] == 0"
check "F_GETLK on b names c's process" test "$(getlk posix "$T/mb/f" 0 0)" = "write 0 10 $p1"
expect_rc "b's process is refused c's classic lock (EAGAIN)" 1 "" try "$T/mb/f" posix w 0 10
expect_rc "... and c's flock" 1 "" try "$T/mb/f" flock w 0 0
check "c's holders write and lock as before: no EIO" eval \
	'[ "$(probe p1)" = "write:ok lock:ok" ] && [ "$(probe p2)" = "write:ok lock:ok" ]'
expect_rc "a's lock died with a: b's process takes g [0,10)" 0 "" try "$T/mb/g" posix w 0 10
check "c's holders let go; b takes the lock then" eval 'done_with p1 && done_with p2 && try "$T/mb/f" posix w 0 10'

expect_rc "umount on c" 0 "" nc umount "$T/mc"
expect_rc "umount on b (owner)" 0 "" nb umount "$T/mb"
umount -l "$T/ma" 2>/dev/null
for n in b c; do "n$n" down r0 >/dev/null 2>&1; done
finish
