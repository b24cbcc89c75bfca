#!/usr/bin/env bash
# A node that owns the filesystem again reads the disk, not what its loop
# device cached while it owned it before (found by tests/fsfailover.py,
# FSCHECK_SEED=636018852: fs move a -> b, then b killed, a takes over).
# The daemon keeps its loop device open for the device's life, so the
# kernel's page cache of that block device outlives the kernel
# filesystem's unmount; what the next owner wrote reaches this node's
# disk through replication, under that cache. Two disk nodes a and b and
# a tiebreaker c: a owns and reads a directory's files (ext4 caches the
# directory and inode blocks); fs move to b; b removes them and writes
# others in their place; fs move back to a, and b's SIGKILL with a taking
# over: a must show b's files, and fsck of the replica must be clean.
. "$(dirname "$0")/lib.sh"
mknet3
mkres3 64M
mkdir -p "$T/ma" "$T/mb"
fs3_start
expect_rc "mount on b: client of a" 0 "as client of a" nb mount r0 "$T/mb"
loop_of() { "n$1" status r0 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"]["loop"])'; }
# gen DIR TAG: 60 files TAG-N holding "TAG N", each and the directory
# fsync'd; seen DIR TAG: they are all there, nothing else, each holding its
# own text
gen() {
	mkdir -p "$1" && python3 -c 'import os, sys
d, tag = sys.argv[1:]
for i in range(1, 61):
    fd = os.open("%s/%s-%d" % (d, tag, i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.write(fd, b"%s %d\n" % (tag.encode(), i))
    os.fsync(fd)
    os.close(fd)
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
os.fsync(fd)' "$1" "$2"
}
seen() {
	local i
	[ "$(ls "$1" | wc -l)" = 60 ] || return 1
	for i in $(seq 60); do [ "$(cat "$1/$2-$i" 2>/dev/null)" = "$2 $i" ] || return 1; done
}
# fresh TAG: b removes the directory's files, writes 60 others (fsync'd)
fresh() { rm -f "$T/mb/d/"* && gen "$T/mb/d" "$1"; }

check "a writes and reads 60 files (its kernel caches their blocks)" eval 'gen "$T/ma/d" old && seen "$T/ma/d" old'
expect_rc "fs move r0 b" 0 "b now owns" na fs move r0 b
check "b replaces them with 60 others" eval 'fresh new && seen "$T/mb/d" new'
expect_rc "fs move r0 a: a owns again" 0 "a now owns" nb fs move r0 a
check "a shows b's files, not what it cached as owner before" seen "$T/ma/d" new
check "... so does b" seen "$T/mb/d" new

expect_rc "fs move r0 b again" 0 "b now owns" na fs move r0 b
check "b replaces them once more" eval 'fresh newer && seen "$T/mb/d" newer'
kill -9 "$(cat "$T/rb/r0.pid")"
check "b's daemon killed: a takes over" wait_for 60 jcheck a "o['fs'] is not None and o['fs']['role'] == 'owner' and o['fs']['reason'] == ''"
check "a shows the files b wrote before its death" seen "$T/ma/d" newer
expect_rc "umount on a" 0 "" na umount "$T/ma"
check "a Secondary" eval 'na secondary r0 >/dev/null 2>&1'
check "a's replica: ext4 clean (fsck.ext4 -fn)" fsck.ext4 -fn "$(loop_of a)"
umount -f "$T/rb/r0.fuse" 2>/dev/null
umount -l "$T/mb" 2>/dev/null
for n in a c; do "n$n" down r0 --force >/dev/null 2>&1; done
finish
