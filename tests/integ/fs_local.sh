#!/usr/bin/env bash
# dipolefs on the owner, without the daemon: a directory served through
# local.c + fusefs.c (build/fsmount-dir) behaves like the directory itself —
# same bytes, owners, modes, links, times, xattrs, holes, locks — and SQLite
# works on it; then the whole owner path (dipolefs_mount) on an ext4 loop
# device mounted detached.
. "$(dirname "$0")/lib.sh"
# the driver next to the dipole under test (the ASan build in make check)
FSM=${FSMOUNT:-$(dirname "$DIPOLE")/fsmount-dir}
[ -x "$FSM" ] || FSM=$ROOT/build/fsmount-dir
S=$T/src M=$T/mnt
chmod 755 "$T" # uid 1000 must reach the mount
mkdir -p "$S" "$M"
U="setpriv --reuid=1000 --regid=1000 --clear-groups"

# start_fsm OUT ARGS...: start the driver, wait for its "ready"
start_fsm() {
	local out=$1; shift
	"$FSM" "$@" >"$T/$out" 2>&1 &
	echo $! >"$T/$out.pid"
	wait_for 10 grep -q ready "$T/$out"
}
# stop_fsm OUT: SIGTERM, and the driver exits 0 by itself
stop_fsm() {
	local pid; pid=$(cat "$T/$1.pid")
	kill -TERM "$pid"
	local i; for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	! kill -0 "$pid" 2>/dev/null && wait "$pid"
}

check "driver mounts a directory" start_fsm drv "$S" "$M"
check "mount is fuse.dipole with default_permissions,allow_other" \
	bash -c "grep ' $M fuse.dipole ' /proc/mounts | grep -q 'default_permissions,allow_other'"

# data
head -c 3M /dev/urandom >"$T/rand"
cp "$T/rand" "$M/big"
check "written bytes land in the backing dir" cmp "$T/rand" "$S/big"
echo "from below" >"$S/below"
check "a file made in the backing dir reads through the mount" grep -qx "from below" "$M/below"
check "4k writes at random offsets read back" python3 - "$M/big" "$S/big" <<'EOF'
import os, random, sys
fd = os.open(sys.argv[1], os.O_RDWR)
rnd = random.Random(7)
for _ in range(200):
    off = rnd.randrange(0, 3 << 20); buf = os.urandom(rnd.randrange(1, 8192))
    os.pwrite(fd, buf, off)
    assert os.pread(fd, len(buf), off) == buf
os.close(fd)
assert open(sys.argv[1], 'rb').read() == open(sys.argv[2], 'rb').read()
EOF

# names
mkdir -p "$M/d1/d2"
echo one >"$M/d1/a"; echo two >"$M/d1/b"
mv "$M/d1/a" "$M/d1/d2/a2"
check "rename across directories" bash -c "[ -f $S/d1/d2/a2 ] && [ ! -e $S/d1/a ]"
mv -f "$M/d1/b" "$M/d1/d2/a2"
check "rename over an existing name replaces it" bash -c "grep -qx two $S/d1/d2/a2 && [ ! -e $S/d1/b ]"
echo x >"$M/d1/x"; echo y >"$M/d1/y"
check "RENAME_NOREPLACE refuses an existing name" bash -c "! mv --no-clobber -T $M/d1/x $M/d1/y 2>/dev/null; python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
r = libc.renameat2(-100, b\"$M/d1/x\", -100, b\"$M/d1/y\", 1)
sys.exit(0 if r == -1 and ctypes.get_errno() == 17 else 1)'"
check "RENAME_EXCHANGE swaps two names" python3 -c "
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
r = libc.renameat2(-100, b'$M/d1/x', -100, b'$M/d1/y', 2)
sys.exit(0 if r == 0 and open('$S/d1/x').read() == 'y\n' and open('$S/d1/y').read() == 'x\n' else 1)"
ln "$M/d1/x" "$M/d1/x.link"
check "hard link: count 2 and one inode, below and through the mount" bash -c \
	"[ \$(stat -c %h $S/d1/x) = 2 ] && [ \$(stat -c %i $M/d1/x) = \$(stat -c %i $M/d1/x.link) ] && [ \$(stat -c %i $M/d1/x) = \$(stat -c %i $S/d1/x) ]"
ln -s ../x "$M/d1/d2/sym"
check "symlink target below and through the mount" bash -c \
	"[ \$(readlink $S/d1/d2/sym) = ../x ] && [ \$(readlink $M/d1/d2/sym) = ../x ] && grep -qx y $M/d1/d2/sym"
check "rmdir of a non-empty directory is ENOTEMPTY" bash -c "rmdir $M/d1 2>&1 | grep -q 'not empty'"
check "readdir lists what the backing dir holds" bash -c "diff <(ls -a $S/d1) <(ls -a $M/d1)"
mkdir "$M/many"; for i in $(seq 1 600); do : >"$M/many/file-with-a-long-name-$i"; done
check "readdir over many pages (600 entries)" test "$(ls "$M/many" | wc -l)" = 600

# ownership and permissions
echo secret >"$M/mode"
chmod 0640 "$M/mode"; chown 1000:1000 "$M/mode"
check "chmod and chown reach the backing file" test "$(stat -c %a:%u:%g "$S/mode")" = "640:1000:1000"
mkdir "$M/pub"; chmod 1777 "$M/pub"
$U sh -c "echo mine >$M/pub/u1; umask 002; mkdir $M/pub/ud; umask 077; echo p >$M/pub/u2"
check "created as the caller: uid/gid 1000" test "$(stat -c %u:%g "$S/pub/u1")" = "1000:1000"
check "the caller's umask applies, not the server's" test "$(stat -c %a "$S/pub/ud"):$(stat -c %a "$S/pub/u2")" = "775:600"
echo root >"$M/pub/rootfile"; chmod 0644 "$M/pub/rootfile"
check "another uid cannot write a 0644 root file (EACCES)" bash -c "! $U sh -c 'echo no >>$M/pub/rootfile' 2>/dev/null && grep -qx root $S/pub/rootfile"
check "another uid cannot unlink in a sticky dir (EPERM)" bash -c "! $U rm -f $M/pub/rootfile 2>/dev/null && [ -e $S/pub/rootfile ]"
mkdir "$M/sgid"; chgrp 1234 "$M/sgid"; chmod 2777 "$M/sgid"
$U sh -c "echo g >$M/sgid/f; mkdir $M/sgid/sub"
check "a setgid directory gives its group (and the bit to subdirectories)" bash -c \
	"[ \$(stat -c %g $S/sgid/f) = 1234 ] && [ \$(stat -c %u $S/sgid/f) = 1000 ] && [ -g $S/sgid/sub ]"
check "chown by a non-owner is refused (EPERM)" bash -c "! $U chown 1000 $M/pub/rootfile 2>/dev/null"
# a supplementary group is what lets uid 1000 create here: the caller's
# groups reach the backend (fusefs.c reads them for a caller not root)
mkdir "$M/grp"; chgrp 1235 "$M/grp"; chmod 0770 "$M/grp"
check "a supplementary group's directory: create, mkdir, symlink, mknod" \
	setpriv --reuid=1000 --regid=1000 --groups=1235 sh -c "echo s >$M/grp/f && mkdir $M/grp/d && ln -s f $M/grp/l && mkfifo $M/grp/p"
check "... not without the group (EACCES)" bash -c "! $U sh -c 'echo s >$M/grp/g' 2>/dev/null && [ ! -e $S/grp/g ]"

# times, sizes, holes, xattrs
touch -d "2001-02-03 04:05:06.123456789" "$M/mode"
check "utimensat sets atime and mtime to the nanosecond" test \
	"$(stat -c %x/%y "$S/mode")" = "$(stat -c %x/%y "$M/mode")"
check "mtime is the one set" bash -c "stat -c %y $S/mode | grep -q '^2001-02-03 04:05:06.123456789'"
truncate -s 10M "$M/sparse"
printf 'data' | dd of="$M/sparse" bs=1 seek=$((5 << 20)) conv=notrunc status=none
check "truncate grows: size 10M, a hole below" bash -c "[ \$(stat -c %s $S/sparse) = 10485760 ] && [ \$(stat -c %b $S/sparse) -lt 100 ]"
check "SEEK_DATA/SEEK_HOLE through the mount" python3 -c "
import os
fd = os.open('$M/sparse', os.O_RDONLY)
d = os.lseek(fd, 0, os.SEEK_DATA); h = os.lseek(fd, d, os.SEEK_HOLE)
assert d <= 5 << 20 < h <= 10 << 20, (d, h)
"
truncate -s 1000 "$M/sparse"
check "truncate shrinks" test "$(stat -c %s "$S/sparse")" = 1000
fallocate -l 4M "$M/falloc"
check "fallocate allocates blocks" bash -c "[ \$(stat -c %s $S/falloc) = 4194304 ] && [ \$(stat -c %b $S/falloc) -ge 8192 ]"
check "fallocate --punch-hole frees them" bash -c "fallocate -p -o 0 -l 4M $M/falloc && [ \$(stat -c %b $S/falloc) -lt 100 ]"
check "user xattrs: set, get, list, remove" python3 -c "
import os
p = '$M/mode'
os.setxattr(p, 'user.colour', b'blue')
assert os.getxattr('$S/mode', 'user.colour') == b'blue'
assert os.getxattr(p, 'user.colour') == b'blue'
assert 'user.colour' in os.listxattr(p)
os.removexattr(p, 'user.colour')
try:
    os.getxattr(p, 'user.colour'); raise SystemExit(1)
except OSError as e:
    assert e.errno == 61
"
check "statfs reports the backing filesystem" test "$(stat -f -c %b:%S "$M")" = "$(stat -f -c %b:%S "$S")"

# open flags and open files
check "O_APPEND, O_EXCL, O_TRUNC" python3 -c "
import os, errno
p = '$M/flags'
fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
os.write(fd, b'abc'); os.close(fd)
try:
    os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY); raise SystemExit('O_EXCL')
except FileExistsError: pass
a = os.open(p, os.O_WRONLY | os.O_APPEND); b = os.open(p, os.O_WRONLY | os.O_APPEND)
os.write(a, b'1'); os.write(b, b'2'); os.write(a, b'3')
os.close(a); os.close(b)
assert open('$S/flags', 'rb').read() == b'abc123'
os.close(os.open(p, os.O_WRONLY | os.O_TRUNC))
assert os.stat('$S/flags').st_size == 0
"
check "an unlinked open file stays readable and writable" python3 -c "
import os
p = '$M/gone'
open(p, 'w').write('still here')
fd = os.open(p, os.O_RDWR)
os.unlink(p)
assert not os.path.exists('$S/gone')
assert os.pread(fd, 10, 0) == b'still here'
os.pwrite(fd, b'X', 0); assert os.pread(fd, 10, 0) == b'Xtill here'
os.close(fd)
"
check "shared writable mmap reaches the file" python3 -c "
import mmap, os
p = '$M/mapped'
open(p, 'wb').write(b'\0' * 8192)
with open(p, 'r+b') as f:
    m = mmap.mmap(f.fileno(), 8192); m[4096:4101] = b'hello'; m.flush(); m.close()
assert open('$S/mapped', 'rb').read()[4096:4101] == b'hello'
"

# locks
: >"$M/lockf"
flock "$M/lockf" sleep 3 &
echo $! >>"$T/bg.pids"
sleep 0.5
check "flock: a second exclusive lock is refused while held" bash -c "! flock -n $M/lockf true"
check "flock: a blocked lock is granted when the holder exits" timeout 10 flock "$M/lockf" true
check "fcntl: F_GETLK reports the holder, F_SETLK conflicts, F_SETLKW interruptible" python3 -c "
import fcntl, os, signal, struct, time
p = '$M/lockf'
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    fd = os.open(p, os.O_RDWR); fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)
    os.write(w, b'x'); time.sleep(5); os._exit(0)
os.read(r, 1)
fd = os.open(p, os.O_RDWR)
q = struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0, 10, 0)
t, _, s, l, hp = struct.unpack('hhqqi', fcntl.fcntl(fd, fcntl.F_GETLK, q))
assert t == fcntl.F_WRLCK and hp == pid, (t, hp, pid)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0); raise SystemExit('granted')
except OSError: pass
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 10)  # the range beside it is free
def ring(*a): raise TimeoutError  # a handler that returns makes Python retry
signal.signal(signal.SIGALRM, ring); signal.alarm(1)
t0 = time.time()
try:
    fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0); raise SystemExit('granted')
except TimeoutError: pass
assert time.time() - t0 < 3
os.kill(pid, 9); os.waitpid(pid, 0)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)  # the holder's exit freed it
"

# SQLite in rollback-journal mode, with concurrent writers
DB=$M/app.db
sqlite3 "$DB" "PRAGMA journal_mode=DELETE; CREATE TABLE t(id INTEGER PRIMARY KEY, w INT, v TEXT);" >/dev/null
for w in 1 2; do
	( for i in $(seq 1 40); do
		sqlite3 -cmd ".timeout 10000" "$DB" "BEGIN; INSERT INTO t(w, v) VALUES($w, hex(randomblob(200))); COMMIT;" || echo fail
	done >"$T/sq$w.out" 2>&1 ) &
	echo $! >>"$T/bg.pids"
	sqpids="${sqpids:-} $!"
done
# shellcheck disable=SC2086
wait $sqpids
check "SQLite: two writers commit every transaction" test "$(sqlite3 "$DB" 'SELECT count(*) FROM t')" = 80
check "SQLite: no writer failed" bash -c "! grep -q . $T/sq1.out $T/sq2.out"
check "SQLite: integrity_check ok, below too" bash -c \
	"[ \"\$(sqlite3 $DB 'PRAGMA integrity_check')\" = ok ] && [ \"\$(sqlite3 $S/app.db 'PRAGMA integrity_check')\" = ok ]"

check "SIGTERM: the driver unmounts and exits 0" stop_fsm drv
check "nothing left mounted" bash -c "! grep -q ' $M ' /proc/mounts"

# the owner's path: ext4 on a loop device, mounted detached
truncate -s 64M "$T/disk"
mkfs.ext4 -q -F "$T/disk"
LOOP=$(losetup -f --show "$T/disk")
truncate -s 16M "$T/empty"
EMPTY=$(losetup -f --show "$T/empty")
expect_rc "a device with no filesystem is refused, saying so" 1 "holds no filesystem" "$FSM" --device "$EMPTY" "$M"
check "dipolefs_mount as owner on ext4 (type detected)" start_fsm own --device "$LOOP" "$M"
check "status json: owner role, no clients, no locks" grep -q \
	'"role":"owner","clients":\[\],"locks":0,"grace":false,"reason":""' "$T/own"
check "the kernel filesystem is mounted nowhere visible" bash -c "! grep -q '^$LOOP ' /proc/mounts"
check "the FUSE mount is fsname dipole:RES" bash -c "grep -q '^dipole:fsmount $M fuse.dipole' /proc/mounts"
check "lost+found of the ext4 root is there" test -d "$M/lost+found"
cp "$T/rand" "$M/onext4"
mkdir "$M/dir"; chown 1000:1000 "$M/dir"; $U sh -c "echo u >$M/dir/user"
check "fsync through the mount" python3 -c "
import os
fd = os.open('$M/synced', os.O_CREAT | os.O_WRONLY, 0o644); os.write(fd, b'durable'); os.fsync(fd); os.fdatasync(fd); os.close(fd)"
check "SIGTERM unmounts FUSE and the kernel filesystem" stop_fsm own
mkdir -p "$T/direct"
check "the device is free: mounts directly" mount -o ro "$LOOP" "$T/direct"
check "the data is on the ext4 device" bash -c \
	"cmp $T/rand $T/direct/onext4 && [ \$(stat -c %u:%g $T/direct/dir/user) = 1000:1000 ] && grep -qx durable $T/direct/synced"
umount "$T/direct"
check "fsck.ext4 -fn is clean" fsck.ext4 -fn "$LOOP"
losetup -d "$LOOP" "$EMPTY"
finish
