#!/usr/bin/env bash
# dipolefs's caches on two nodes (issue 13 "Coherence", docs/dipolefs.md
# "What a node caches, and how it is revoked"): a owns, b is its client;
# both FUSE mounts cache names, absent names, attributes and pages for an
# hour. Each change on one node must be seen at once on the other, which
# had the old state cached just before: sizes, times, modes, owners,
# permissions as another uid, absent names then created, readdir, hard
# link counts, rename over, xattrs. Then that the caches serve: a repeated
# stat on b and a repeated lookup of an absent name reach no one (b's
# "requests" counter), a stream of writes on a costs b one revocation,
# not one per write (a's "revocations" counter); and cache=0 turns it off.
# Outcomes and counters only, never timings.
. "$(dirname "$0")/lib.sh"
mknet2
mkres2 64M 'protocol C; shared-secret "fs-cache-secret";'
chmod 755 "$T" # uid 65534 must reach the mounts
mkdir -p "$T/ma" "$T/mb"
A=$T/ma B=$T/mb
U="setpriv --reuid=65534 --regid=65534 --clear-groups"
py() { timeout 120 python3 -c "$@"; }

na create-md r0 --force >/dev/null 2>&1 && nb create-md r0 --force >/dev/null 2>&1
# a starts with a soft limit of 256 open files, as systemd's default 1024
# is to a service: the owner holds a descriptor per node the kernels hold
check "a and b up" eval '(ulimit -Sn 256 && na up r0 >/dev/null) && nb up r0 >/dev/null'
check "connected" wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
check "a Primary, b UpToDate" eval 'na primary r0 --force >/dev/null 2>&1 && wait_for 60 jcheck b "o[\"disk\"] == \"UpToDate\""'
expect_rc "mkfs on a" 0 "" na mkfs r0
expect_rc "mount on a: owner" 0 "as owner" na mount r0 "$A"
expect_rc "mount on b: client" 0 "as client of a" nb mount r0 "$B"
chmod 755 "$A"

# ---- more nodes held than the soft limit of open files a started with
mkdir "$A/many"
check "600 files made on a (its soft limit was 256 open files)" \
	bash -c "for i in \$(seq 1 600); do : >$A/many/f\$i || exit 1; done"
check "... listed with their attributes on a and on b" \
	eval "[ \$(ls -l $A/many | grep -c ' f') = 600 ] && [ \$(ls -l $B/many | grep -c ' f') = 600 ]"
# READDIRPLUS (docs/dipolefs.md "Listings with their attributes"): a cold
# listing with a stat of every name is a request per batch, not per name
# (the interpreter itself, isolated: pyenv's shim and the current
# directory on sys.path would look names up of their own)
PYBIN=$(python3 -c 'import sys; print(sys.executable)')
lstat_all() { "$PYBIN" -I -c "import os; fd = os.open('$1', os.O_RDONLY); [os.lstat(n, dir_fd=fd) for n in os.listdir(fd)]"; }
# cold NODE FIELD CMD...: how far NODE's FIELD count moves for CMD run
# with every cache dropped (FIELD: requests, a client's to the owner, or
# mount_requests, its own mount's)
cold() {
	local node=$1 field=$2 r0 r1
	shift 2
	echo 3 >/proc/sys/vm/drop_caches
	r0=$(settled "$node" "$field")
	"$@" >/dev/null
	r1=$(settled "$node" "$field")
	echo $((r1 - r0))
}
N=$(cold b requests lstat_all "$B/many")
check "a cold listing of 600 files with a stat of each on b asks a at most 10 times ($N)" test "$N" -le 10
# ... and one request per batch, not two (its names, then the names with
# their attributes): after a batch that needed its lookups, fusefs asks
# for the next with its attributes at once (plus_dir)
check "3000 files made on a" bash -c "mkdir $A/wide && for i in \$(seq 1 3000); do : >$A/wide/w\$i || exit 1; done"
N=$(cold b requests lstat_all "$B/wide")
check "a cold listing of 3000 files with a stat of each on b asks a at most 30 times ($N)" test "$N" -le 30
N=$(cold b requests ls -l "$B/many")
# (fusefs.c keeps "absent" in 32768 slots: two of 600 nodes on one slot
# cost their questions again, ~6 such pairs; one per name: 1,200)
check "a cold ls -l of them on b too: their ACLs and labels are known absent ($N)" test "$N" -le 60
# (on a, in a directory b never looked into: a caches no name where b does)
mkdir "$A/mine"
for i in $(seq 1 300); do : >"$A/mine/f$i"; done
N=$(cold a mount_requests lstat_all "$A/mine")
check "... on a, 300 files: at most 20 requests to its own mount ($N)" test "$N" -le 20
check "... a change on a after b's listing is seen on b" \
	eval "chmod 600 $A/many/f7 && rm $A/many/f8 && [ \$(stat -c %a $B/many/f7) = 600 ] && ! stat $B/many/f8 2>/dev/null"

# ---- each change seen at once by the other node, which cached the old state
# stat both sides before each change, so both kernels hold the old answer
same() { [ "$(stat -c "$1" "$A/$2")" = "$(stat -c "$1" "$B/$2")" ]; }
echo one >"$A/f"
stat "$B/f" >/dev/null
check "size: append on a, stat on b at once" eval 'echo two >>$A/f && [ $(stat -c %s $B/f) = 8 ]'
check "size: truncate on b, stat on a at once" eval 'stat $A/f >/dev/null && truncate -s 3 $B/f && [ $(stat -c %s $A/f) = 3 ]'
check "data: overwrite on b, read on a at once" eval 'cat $A/f >/dev/null && printf xyz >$B/f && [ "$(cat $A/f)" = xyz ]'
check "mtime: touch -d on a, stat on b" eval 'stat $B/f >/dev/null && touch -d "2001-02-03 04:05:06" $A/f && same %Y f && [ $(stat -c %Y $B/f) = $(date -d "2001-02-03 04:05:06" +%s) ]'
check "mode: chmod on b, stat on a" eval 'stat $A/f >/dev/null && chmod 0604 $B/f && [ $(stat -c %a $A/f) = 604 ]'
check "owner: chown on a, stat on b" eval 'stat $B/f >/dev/null && chown 1234:4321 $A/f && [ $(stat -c %u:%g $B/f) = 1234:4321 ]'
check "ctime: moves with the chown on both" same %Z f

# permissions: b's kernel checks the mode it caches (default_permissions)
echo secret >"$A/p"
chmod 0600 "$A/p"
check "perm: uid 65534 on b is denied a 0600 file" eval "! $U cat $B/p >/dev/null 2>&1"
chmod 0644 "$A/p"
check "perm: chmod 0644 on a, uid 65534 on b reads at once" eval "[ \"\$($U cat $B/p)\" = secret ]"
chmod 0600 "$B/p"
check "perm: chmod 0600 on b, uid 65534 on a denied at once" eval "! $U cat $A/p >/dev/null 2>&1"
mkdir "$A/d"
chmod 0755 "$A/d"
check "perm: a directory searchable by uid 65534 on b" eval "$U ls $B/d >/dev/null"
chmod 0700 "$A/d"
check "perm: chmod 0700 on a, uid 65534 on b refused the directory at once" eval "! $U ls $B/d >/dev/null 2>&1"

# names: an absent name cached (negative entry) and then created elsewhere
check "negative: b looks up an absent name" eval "! stat $B/late 2>/dev/null && ! stat $B/late 2>/dev/null"
check "negative: created on a, seen on b at once" eval "echo hi >$A/late && [ \"\$(cat $B/late)\" = hi ]"
check "negative: a looks up an absent name" eval "! stat $A/late2 2>/dev/null"
check "negative: made on b (mkdir), seen on a at once" eval "mkdir $B/late2 && [ -d $A/late2 ]"
check "negative: symlink on b over a's cached absence" eval "! stat $A/sl 2>/dev/null; ln -s late $B/sl && [ \"\$(readlink $A/sl)\" = late ]"
check "negative: mknod (fifo) on a over b's cached absence" eval "! stat $B/fifo 2>/dev/null; mkfifo $A/fifo && [ -p $B/fifo ]"
check "readdir: create on a, listed on b" eval "ls $B >/dev/null && touch $A/new1 && ls $B | grep -qx new1"
check "readdir: unlink on b, gone from a's listing and lookup" eval "ls $A >/dev/null && stat $A/new1 >/dev/null && rm $B/new1 && ! ls $A | grep -qx new1 && ! stat $A/new1 2>/dev/null"
check "dir nlink: mkdir on a, parent's nlink on b" eval "stat $B/d >/dev/null && mkdir $A/d/sub && [ \$(stat -c %h $B/d) = 3 ]"

# hard links: another name's nlink, the replaced file of a rename
echo L >"$A/h1"
stat "$B/h1" >/dev/null
check "link on a: nlink 2 on b" eval "ln $A/h1 $A/h2 && [ \$(stat -c %h $B/h1) = 2 ]"
check "unlink on b: nlink 1 on a (the other name)" eval "stat $A/h1 >/dev/null && rm $B/h2 && [ \$(stat -c %h $A/h1) = 1 ]"
ln "$A/h1" "$A/h3"
echo R >"$A/r"
stat "$B/h1" "$B/h3" "$B/r" >/dev/null
check "rename over on a: the replaced file's other name on b shows nlink 1" \
	eval "mv $A/r $A/h3 && [ \$(stat -c %h $B/h1) = 1 ] && [ \"\$(cat $B/h3)\" = R ]"
stat "$A/h1" "$A/h3" >/dev/null
check "rename over on b: seen on a" eval "mv $B/h1 $B/h3 && [ \"\$(cat $A/h3)\" = L ] && ! stat $A/h1 2>/dev/null"

# xattrs
check "xattr: set on a, read on b" py "
import os
os.setxattr('$A/f', 'user.c', b'blue'); os.getxattr('$B/f', 'user.c')
os.setxattr('$A/f', 'user.c', b'green'); assert os.getxattr('$B/f', 'user.c') == b'green'
os.removexattr('$B/f', 'user.c')
try: os.getxattr('$A/f', 'user.c'); raise SystemExit('still there on a')
except OSError: pass
assert 'user.c' not in os.listxattr('$B/f')"

# security.capability: the kernel asks for it before each write (to drop
# it, as it drops setuid bits), so each node caches "none" (fusefs.c,
# nocap); a capability set on any node, this one included, must be seen
# at once everywhere, and the next write on any node drops it
capgone() { [ -z "$(getcap "$1")" ]; }
capset() { [ -n "$(getcap "$1")" ]; }
echo x >"$A/cap"
check "capability: none on both, set on a: seen on b and a" eval \
	'capgone $A/cap && capgone $B/cap && setcap cap_net_raw+ep $A/cap && capset $B/cap && capset $A/cap'
check "capability: a write on b drops it, on both" eval 'echo w >>$B/cap && capgone $A/cap && capgone $B/cap'
check "capability: none on both, set on b: seen on a and b" eval \
	'capgone $A/cap && capgone $B/cap && setcap cap_net_raw+ep $B/cap && capset $A/cap && capset $B/cap'
check "capability: a write on a drops it, on both" eval 'echo w >>$A/cap && capgone $B/cap && capgone $A/cap'
# the ACL and SELinux label `ls -l` asks of every entry: "none" cached,
# an ACL set on either node seen at once on the other and on itself
mkdir "$A/acl"
for i in 1 2 3 4 5 6 7 8 9 10; do : >"$A/acl/f$i"; done
ls -l "$B/acl" >/dev/null
R0=$(settled b)
ls -l "$B/acl" >/dev/null
R1=$(settled b)
check "xattr: a second ls -l of 10 files on b asks a at most 8 times, not 25 ($R0 -> $R1)" test $((R1 - R0)) -le 8
acl() { getfacl -cpn "$1" 2>/dev/null | grep -c '^user:65534:'; }
check "acl: none on both, set on a: seen on b and a" eval \
	'[ $(acl $A/acl/f1) = 0 ] && [ $(acl $B/acl/f1) = 0 ] && setfacl -m u:65534:r $A/acl/f1 && [ $(acl $B/acl/f1) = 1 ] && [ $(acl $A/acl/f1) = 1 ]'
check "acl: none on both, set on b: seen on a and b" eval \
	'[ $(acl $A/acl/f2) = 0 ] && [ $(acl $B/acl/f2) = 0 ] && setfacl -m u:65534:r $B/acl/f2 && [ $(acl $A/acl/f2) = 1 ] && [ $(acl $B/acl/f2) = 1 ]'
check "acl: removed on b, gone on a and b" eval 'setfacl -b $B/acl/f1 && [ $(acl $A/acl/f1) = 0 ] && [ $(acl $B/acl/f1) = 0 ]'
check "acl: a default ACL set on b after a's ls -l, seen on a" eval \
	'ls -l $A >/dev/null && getfacl -cdpn $A/acl >/dev/null && setfacl -d -m u:65534:r $B/acl && getfacl -cdpn $A/acl | grep -q "^user:65534:"'

exec 7>>"$B/cap"
echo y >&7
R0=$(settled b)
for i in $(seq 10); do echo y >&7; done
R1=$(settled b)
exec 7>&-
check "capability: 10 writes on b are 10 requests to a, not 20 ($R0 -> $R1)" test $((R1 - R0)) -le 12

# O_APPEND writes: the bytes land at the end, whatever the offset said
check "O_APPEND on b, pages on a revoked where the data landed" py "
import os
open('$A/ap', 'wb').write(b'0' * 5000)
ra = os.open('$A/ap', os.O_RDONLY); os.pread(ra, 8192, 0)
wb = os.open('$B/ap', os.O_WRONLY | os.O_APPEND); os.write(wb, b'tail')
assert os.pread(ra, 8192, 0) == b'0' * 5000 + b'tail', 'stale page on a'"

check "O_APPEND on b after an append on a: b's own pages right too" py "
import os
open('$A/ap2', 'wb').write(b'0' * 4096)
rb = os.open('$B/ap2', os.O_RDONLY); os.pread(rb, 8192, 0); os.fstat(rb)
wb = os.open('$B/ap2', os.O_WRONLY | os.O_APPEND)
with open('$A/ap2', 'ab') as f: f.write(b'A' * 100)
os.write(wb, b'B' * 4096)
want = b'0' * 4096 + b'A' * 100 + b'B' * 4096
assert open('$A/ap2', 'rb').read() == want, 'owner has it wrong'
got = os.pread(rb, 16384, 0)
assert got == want, ('stale or misplaced pages on b', len(got), got[4090:4110])"

# ---- names changed in one directory from both nodes at once: each node's
# kernel holds the directory's lock while its own unlink is at the owner,
# and each unlink revokes a name the other node cached; neither may wait
# for the other (that cost b its connection: "did not acknowledge")
mkdir "$A/both"
for i in $(seq 0 299); do : >"$A/both/a$i"; : >"$A/both/b$i"; done
stat "$A"/both/* "$B"/both/* >/dev/null
# unl_both DIR N: a unlinks DIR/a0.., b DIR/b0.. at once (both start
# together: each waits for $T/unl.go); RA and RB their exit codes
unl_both() {
	rm -f "$T/unl.go"
	local u="import os, sys, time
d, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
while not os.path.exists('$T/unl.go'): time.sleep(0.001)
for i in range(n): os.unlink('%s/%s%d' % (d, who, i))"
	python3 -c "$u" "$A/$1" a "$2" >"$T/ua.out" 2>&1 &
	local ua=$!
	python3 -c "$u" "$B/$1" b "$2" >"$T/ub.out" 2>&1 &
	local ub=$!
	sleep 0.3
	: >"$T/unl.go"
	wait $ua; RA=$?
	wait $ub; RB=$?
}
unl_both both 300
check "unlinks in one directory on a and b at once both finish ($RA, $RB)" eval "[ $RA = 0 ] && [ $RB = 0 ]" || cat "$T/ua.out" "$T/ub.out"
check "... b was not dropped" eval "jcheck a \"o['fs']['clients'] == ['b']\" && ! grep -q 'did not acknowledge' $T/ra/r0.log"
check "... the directory is empty on both" eval "[ -z \"\$(ls $A/both)\" ] && [ -z \"\$(ls $B/both)\" ]"

# ---- names on the owner's mount (dirsplit.h): a's kernel caches the names
# of a directory no client caches names in; b's first request naming
# something there revokes them before it runs, so a sees b's changes at once
mkdir "$A/on" "$A/on/sub"
for i in 1 2 3; do echo $i >"$A/on/f$i"; done
# (from inside the directory: b caches names in the root, so a does not)
stat_on() { (cd "$A/on" && stat f1 f2 f3 sub >/dev/null && ! stat absent 2>/dev/null); }
stat_on
R0=$(settled a mount_requests)
(cd "$A/on")
R1=$(settled a mount_requests)
stat_on
R2=$(settled a mount_requests)
check "owner names: a repeated stat on a costs what the cd costs ($R0 -> $R1 -> $R2)" \
	test $((R2 - R1)) = $((R1 - R0))
check "... a may cache names" eval "[ \$(fsn a owner_names) -gt 0 ]"
check "owner names: created on b, seen on a (it had cached the name absent)" \
	eval "echo b >$B/on/absent && [ \"\$(cat $A/on/absent)\" = b ]"
check "owner names: unlinked on b, gone on a" eval "rm $B/on/f1 && ! stat $A/on/f1 2>/dev/null"
check "owner names: renamed on b, seen on a" \
	eval "mv $B/on/f2 $B/on/g2 && ! stat $A/on/f2 2>/dev/null && [ \$(cat $A/on/g2) = 2 ]"
check "owner names: rmdir on b, gone on a" eval "rmdir $B/on/sub && ! stat $A/on/sub 2>/dev/null"
# the attributes in an entry reply are cached (docs/dipolefs.md "Replies
# racing revocations"): a's first stat of a name is its LOOKUP alone, and
# b's later change of the node still reaches a
for i in 1 2 3 4; do : >"$B/on/e$i"; done
R0=$(settled a mount_requests)
(cd "$A/on")
R1=$(settled a mount_requests)
(cd "$A/on" && stat e1 e2 e3 e4 >/dev/null)
R2=$(settled a mount_requests)
check "entry attributes: a's first stat of 4 names b made is 4 requests more than the cd ($R0 -> $R1 -> $R2)" \
	test $((R2 - R1)) = $((R1 - R0 + 4))
check "... b's chmod and write after it seen on a" \
	eval "chmod 600 $B/on/e1 && echo xy >$B/on/e2 && [ \$(stat -c %a $A/on/e1) = 600 ] && [ \$(stat -c %s $A/on/e2) = 3 ]"
# a rename on a moves a's cached entry (with its timeout) into a directory
# b caches names in: a change there on b revokes it on a
mkdir "$A/mv1" "$A/mv2"
echo m >"$A/mv1/m"
stat "$A/mv1/m" >/dev/null
ls "$B/mv2" >/dev/null; stat "$B/mv2/x" 2>/dev/null
mv "$A/mv1/m" "$A/mv2/m"
check "owner names: moved into b's directory on a, unlinked on b, gone on a" \
	eval "rm $B/mv2/m && ! stat $A/mv2/m 2>/dev/null"
# the same race as above, from a directory only a cached names of: b's
# first unlink there waits for a's kernel, which is busy with a's unlinks
mkdir "$A/both2"
for i in $(seq 0 299); do : >"$A/both2/a$i"; : >"$A/both2/b$i"; done
stat "$A"/both2/* >/dev/null
unl_both both2 300
check "owner names: unlinks on a and b at once in a directory a cached ($RA, $RB)" \
	eval "[ $RA = 0 ] && [ $RB = 0 ]" || cat "$T/ua.out" "$T/ub.out"
check "... b was not dropped, the directory is empty on both" eval "jcheck a \"o['fs']['clients'] == ['b']\" && \
	! grep -q 'did not acknowledge' $T/ra/r0.log && [ -z \"\$(ls $A/both2)\" ] && [ -z \"\$(ls $B/both2)\" ]"

# ---- attributes that come with an entry (lookup, create) are cached too
# (fusefs.c, the attribute cache): a stat of a name b never saw is one
# request, the lookup, and of a name b listed none (READDIRPLUS); the
# owner marked the node before reading them (server.c, entry_reread), so
# a change on a still reaches b
mkdir "$A/ent"
for i in 1 2 3; do echo $i >"$A/ent/e$i"; done
ls "$B/ent" >/dev/null
echo 4 >"$A/ent/e4"
stat "$B/ent" >/dev/null
R0=$(settled b)
stat "$B/ent/e4" >/dev/null
R1=$(settled b)
stat "$B/ent/e1" >/dev/null
R2=$(settled b)
check "entry: a stat of a name b never saw is one request, of one it listed none ($R0 -> $R1 -> $R2)" \
	eval "[ $((R1 - R0)) = 1 ] && [ $((R2 - R1)) = 0 ]"
check "entry: chmod on a after b's lookup, seen on b" eval '[ $(stat -c %a $B/ent/e3) = 644 ] && chmod 0611 $A/ent/e3 && [ $(stat -c %a $B/ent/e3) = 611 ]'
check "entry: chmod on b after a's lookup, seen on a" eval '[ $(stat -c %a $A/ent/e2) = 644 ] && chmod 0612 $B/ent/e2 && [ $(stat -c %a $A/ent/e2) = 612 ]'
check "entry: created on b, appended on a, the size on b" eval 'echo x >$B/ent/n1 && [ $(stat -c %s $B/ent/n1) = 2 ] && echo more >>$A/ent/n1 && [ $(stat -c %s $B/ent/n1) = 7 ]'
check "entry: created on a, appended on b, the size on a" eval 'echo x >$A/ent/n2 && [ $(stat -c %s $A/ent/n2) = 2 ] && echo more >>$B/ent/n2 && [ $(stat -c %s $A/ent/n2) = 7 ]'
check "entry: b's own truncate and chmod, seen on b" eval 'truncate -s 1 $B/ent/n2 && chmod 0600 $B/ent/n2 && [ "$(stat -c %s:%a $B/ent/n2)" = 1:600 ]'
check "entry: b's own append after a stat, seen on b" eval 'stat $B/ent/n2 >/dev/null && echo abc >>$B/ent/n2 && [ $(stat -c %s $B/ent/n2) = 5 ]'
R0=$(settled b)
py "
import os
fd = os.open('$B/ent/n2', os.O_WRONLY)
for i in range(10):
    os.pwrite(fd, b'w' * 100, 100 * i)
    assert os.fstat(fd).st_size == max(5, 100 * (i + 1)), os.fstat(fd).st_size
os.close(fd)"
R1=$(settled b)
# a write reads no attributes (fsops.h), so each fstat after one asks a
check "write: 10 writes on b, each with an fstat: a WRITE and a GETATTR each ($R0 -> $R1)" test $((R1 - R0)) -le 22
check "write: the size b kept after its writes, seen on a" eval '[ $(stat -c %s $A/ent/n2) = 1000 ]'
check "write: a's append after b's, seen on b" eval 'echo x >>$A/ent/n2 && [ $(stat -c %s $B/ent/n2) = 1002 ]'
check "entry: b's own hard link: nlink 2 on b and a" eval 'ln $B/ent/n2 $B/ent/n3 && [ $(stat -c %h $B/ent/n2) = 2 ] && [ $(stat -c %h $A/ent/n2) = 2 ]'
check "entry: b's own unlink of the link: nlink 1 on b" eval 'rm $B/ent/n3 && [ $(stat -c %h $B/ent/n2) = 1 ]'

# ---- replies that change a directory carry its attributes (fsproto 6), a
# file b made has no capability, and b's own writes keep b's pages
mkdir "$A/par"
stat "$B/par" "$B/ent/n2" >/dev/null
R0=$(settled b)
py "
import os
for i in range(10):
    fd = os.open('$B/par/c%d' % i, os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b'x' * 4096)
    os.fsync(fd)
    os.close(fd)"
R1=$(settled b)
check "parent: 10 creates+write+fsync+close on b are about 5 requests each, not 7 ($R0 -> $R1)" test $((R1 - R0)) -le 55
R0=$(settled b)
stat "$B/par" >/dev/null
R1=$(settled b)
check "parent: the directory's stat after b's creates asks no one ($R0 -> $R1)" test "$R0" = "$R1"
check "parent: its mtime and nlink on b are a's" eval 'same %y:%h par && mkdir $A/par/sub && [ $(stat -c %h $B/par) = 3 ]'
stat "$B/par" "$B/ent/n2" "$B/par/c0" >/dev/null # rm(1) looks at c0 first
R0=$(settled b)
rm "$B/par/c0"
stat "$B/par" "$B/ent/n2" >/dev/null
R1=$(settled b)
check "parent: after b's unlink, stat of the directory and of another file: 1 request ($R0 -> $R1)" test $((R1 - R0)) = 1
check "parent: the directory's mtime after b's unlink, as on a" same %y par
check "parent: a's create after b's unlink, seen in b's directory mtime" eval 'touch $A/par/late && same %y par'
py "
import os
fd = os.open('$B/par/pages', os.O_CREAT | os.O_RDWR, 0o644)
for i in range(64):
    os.pwrite(fd, bytes([i]) * 4096, 4096 * i)
os.close(fd)"
R0=$(settled b)
check "pages: b reads back what it wrote, after a stat" py "
import os
fd = os.open('$B/par/pages', os.O_RDONLY)
os.fstat(fd)
for i in range(64):
    assert os.pread(fd, 4096, 4096 * i) == bytes([i]) * 4096, i
os.close(fd)"
R1=$(settled b)
check "pages: ... from its own page cache: open, the fstat's GETATTR and release only ($R0 -> $R1)" test $((R1 - R0)) -le 3
check "pages: a's overwrite after that, read on b at once" py "
import os
fd = os.open('$A/par/pages', os.O_WRONLY)
os.pwrite(fd, b'Z' * 10, 4096 * 7 + 5)
os.close(fd)
fd = os.open('$B/par/pages', os.O_RDONLY)
d = os.pread(fd, 4096, 4096 * 7)
assert d == bytes([7]) * 5 + b'Z' * 10 + bytes([7]) * 4081, d[:20]
os.close(fd)"

# ---- a directory b made itself, empty, is known whole on b (fsproto 8):
# the lookup before each create there is answered by b, until a name made
# there on another node revokes the directory (docs/dipolefs.md)
mkdir "$B/own"
R0=$(settled b)
py "
import os
for i in range(20):
    os.close(os.open('$B/own/k%d' % i, os.O_CREAT | os.O_WRONLY, 0o644))"
R1=$(settled b)
check "own dir: 20 creates on b in a directory b made: create and release each, no lookup ($R0 -> $R1)" \
	test $((R1 - R0)) -le 44
R0=$(settled b)
! stat "$B/own/nothere" 2>/dev/null
R1=$(settled b)
check "own dir: a name b never made there is absent without asking a ($R0 -> $R1)" test "$R0" = "$R1"
check "own dir: one it made there is there" test -f "$B/own/k7"
check "own dir: b's files are on a" eval '[ $(ls $A/own | wc -l) = 20 ]'
# each way a name lands in such a directory from another node, seen on b
# at once (b answered the name absent just before)
i=0
for how in create mkdir symlink link rename fifo; do
	i=$((i + 1))
	mkdir "$B/own$i"
	! stat "$B/own$i/n" 2>/dev/null
	case $how in
	create) echo hi >"$A/own$i/n" ;;
	mkdir) mkdir "$A/own$i/n" ;;
	symlink) ln -s hi "$A/own$i/n" ;;
	link) ln "$A/f" "$A/own$i/n" ;;
	rename) echo hi >"$A/mv$i" && mv "$A/mv$i" "$A/own$i/n" ;;
	fifo) mkfifo "$A/own$i/n" ;;
	esac
	check "own dir: a name made there on a by $how is seen on b at once" eval "[ -e $B/own$i/n ] || [ -L $B/own$i/n ]"
	check "... and b's creates there after it work and show on a" eval "echo b >$B/own$i/m && [ \"\$(cat $A/own$i/m)\" = b ]"
done
# names made on a one after another, each looked up on b as soon as a's
# call returned; and b's own creates in between
mkdir "$B/race"
check "own dir: 40 names made on a, each seen on b at once; b's own creates too" py "
import os
for i in range(40):
    open('$A/race/a%d' % i, 'w').close()
    os.stat('$B/race/a%d' % i)
    try:
        os.stat('$B/race/b%d' % i); raise SystemExit('b%d exists on b before anyone made it' % i)
    except FileNotFoundError: pass
    open('$B/race/b%d' % i, 'w').close()
    os.stat('$A/race/b%d' % i)
assert len(os.listdir('$B/race')) == 80"
# the kernel lets b's directory go (drop_caches): b forgets it is whole,
# and the owner stops revoking it there
mkdir "$B/forgot"
sync
echo 2 >/proc/sys/vm/drop_caches
check "own dir: after b's kernel dropped it, a name made on a is seen on b" \
	eval 'echo a >$A/forgot/n && [ "$(cat $B/forgot/n)" = a ]'

# ---- the caches serve
stat "$B/f" >/dev/null
R0=$(settled b)
for i in $(seq 20); do stat "$B/f" >/dev/null; done
R1=$(settled b)
check "a repeated stat on b reaches no one (requests $R0 -> $R1)" test "$R0" = "$R1"
! stat "$B/absent" 2>/dev/null
R0=$(settled b)
for i in $(seq 20); do stat "$B/absent" 2>/dev/null; done
R1=$(settled b)
check "a repeated lookup of an absent name on b reaches no one ($R0 -> $R1)" test "$R0" = "$R1"
# a name b itself removed is known absent (the kernel expires the negative
# entry its own unlink leaves: SQLite's hot-journal check), until a
# create elsewhere revokes it
echo x >"$B/gone1"
mkdir "$B/gone2"
echo x >"$B/gone3"
mv "$B/gone3" "$B/gone3b"
rm "$B/gone1"
rmdir "$B/gone2"
R0=$(settled b)
! stat "$B/gone1" 2>/dev/null && ! stat "$B/gone2" 2>/dev/null && ! stat "$B/gone3" 2>/dev/null
R1=$(settled b)
check "names b itself removed or renamed away: their lookups reach no one ($R0 -> $R1)" test "$R0" = "$R1"
check "... created on a, seen on b at once" eval 'echo a1 >$A/gone1 && [ "$(cat $B/gone1)" = a1 ] && mkdir $A/gone3 && [ -d $B/gone3 ]'
check "... created on b again, seen on a" eval 'echo b2 >$B/gone2 && [ "$(cat $A/gone2)" = b2 ]'
rm "$B/gone1"
check "... removed on b again, recreated on a while b did not look: seen on b" \
	eval 'echo a2 >$A/gone1 && [ "$(cat $B/gone1)" = a2 ]'
head -c 1M /dev/urandom >"$A/big"
cmp -s "$A/big" "$B/big"
R0=$(settled b)
for i in $(seq 10); do cmp -s "$A/big" "$B/big"; done
R1=$(settled b)
# open and release are requests (2 per cmp, and a getattr or so), the
# reads are not: reading 1 MiB from the owner takes at least one
check "re-reading 1 MiB on b 10 times reads no data from a (requests $R0 -> $R1)" test $((R1 - R0)) -lt 30

head -c 1M /dev/zero >"$A/stream"
cat "$B/stream" >/dev/null
V0=$(fsn a revocations)
check "100 writes on a to a file b read once" py "
import os
fd = os.open('$A/stream', os.O_WRONLY)
for i in range(100): os.pwrite(fd, b'%04d' % i, i * 4096)
os.close(fd)"
V1=$(fsn a revocations)
check "... cost b one revocation, not one per write ($V0 -> $V1)" test $((V1 - V0)) -le 2
check "... and b reads every write" py "
import os
fd = os.open('$B/stream', os.O_RDONLY)
for i in range(100): assert os.pread(fd, 4, i * 4096) == b'%04d' % i, i"
V1=$(fsn a revocations)
printf 'x' | dd of="$A/stream" bs=1 seek=5 conv=notrunc status=none
V2=$(fsn a revocations)
check "b read again: the next write revokes again ($V1 -> $V2)" test $((V2 - V1)) -ge 1
check "... and b sees it" eval "[ \"\$(dd if=$B/stream bs=1 skip=5 count=1 status=none)\" = x ]"

# ---- a file open for writing on two nodes: only the first opener caches
# (FS_FH_UNCACHED, fsops.h), else both nodes writing one page deadlock
head -c 1M /dev/urandom >"$A/two"
# the observable sign of an uncached open: no shared mapping (ENODEV)
mapb() { timeout 60 python3 -c "
import errno, mmap, os
fd = os.open('$B/two', os.O_RDWR)
try:
    mmap.mmap(fd, 4096, mmap.MAP_SHARED); print('mapped')
except OSError as e:
    print(errno.errorcode[e.errno])"; }
check "alone, b's open for writing is cached (a shared mapping works)" test "$(mapb)" = mapped
python3 -c "import os, time; fd = os.open('$A/two', os.O_RDWR); print(flush=True); time.sleep(600)" >"$T/holder.out" &
HOLDER=$!
check "a holds it open for writing" wait_for 10 test -s "$T/holder.out"
check "meanwhile b's open for writing is uncached (mmap: ENODEV)" test "$(mapb)" = ENODEV
check "... and reads a's writes at once" py "
import os
fd = os.open('$B/two', os.O_RDWR); os.pread(fd, 4096, 0)
a = os.open('$A/two', os.O_RDWR); os.pwrite(a, b'new', 0)
assert os.pread(fd, 3, 0) == b'new'"
kill $HOLDER; wait $HOLDER 2>/dev/null
# its release reaches the owner after the process is gone
check "once a closed it, b's opens for writing cache again" wait_for 10 eval '[ "$(mapb)" = mapped ]'
echo x >"$A/page"
pw() { timeout 120 python3 -c "
import os
fd = os.open('$1/page', os.O_RDWR)
for i in range(2000):
    os.pwrite(fd, bytes([i % 256]) * 6000, 1000); os.pread(fd, 4096, 0)"; }
pw "$A" >"$T/pa.out" 2>&1 &
PA=$!
pw "$B" >"$T/pb.out" 2>&1
RB=$?
wait $PA
RA=$?
check "one page written from both nodes at once, 2000 times each ($RA, $RB)" eval "[ $RA = 0 ] && [ $RB = 0 ]" ||
	cat "$T/pa.out" "$T/pb.out"
check "... b was not dropped" eval "jcheck a \"o['fs']['clients'] == ['b']\" && ! grep -q 'did not acknowledge' $T/ra/r0.log"

# ---- fewer, larger requests: a close by a process that holds no lock
# costs no FLUSH (the lock case: fs_locks, "gone at its process's first
# close"); a cold sequential read is a request per MiB (readahead 1 MiB)
echo c >"$A/closes"
stat "$B/closes" >/dev/null
R0=$(settled b)
py "
import os
for i in range(10): os.close(os.open('$B/closes', os.O_RDONLY))"
check "10 opens and closes on b without locks: OPEN and RELEASE each, no FLUSH" \
	wait_for 10 eval '[ $(($(fsn b requests) - R0)) -eq 20 ]'
check "... and none more ($R0 -> $(fsn b requests))" eval '[ $(($(fsn b requests) - R0)) -eq 20 ]'
check "b's mount reads ahead 1 MiB" eval 'd=$(stat -c %d $B); [ "$(cat /sys/class/bdi/0:$((d & 255))/read_ahead_kb)" = 1024 ]'
head -c 8M /dev/urandom >"$A/seq"
sync
echo 1 >/proc/sys/vm/drop_caches
R0=$(settled b)
cmp -s "$A/seq" "$B/seq"
R1=$(settled b)
# the window grows from 128 KiB to 1 MiB: 11 reads; 128 KiB ones were 64
check "a cold 8 MiB read on b: about a request per MiB ($R0 -> $R1)" test $((R1 - R0)) -le 24

# ---- nobody reads a file's times behind its writer's back: an overwrite
# + fsync commits a's journal only when the clock ticked since the last
# write (tests/overwrite_commits.py; fsops.h `write`). Reading the
# attributes after each write (fsproto 5) made every fsync a commit.
JBD2=/proc/fs/jbd2/$(basename "$(na status r0 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"]["loop"])')")-8/info
check "overwrite + fsync on a: no journal commit unless the clock ticked" \
	timeout 120 python3 "$ROOT/tests/overwrite_commits.py" "$A/overwrite" "$JBD2"
check "overwrite + fsync on b: no journal commit at a unless the clock ticked" \
	timeout 120 python3 "$ROOT/tests/overwrite_commits.py" "$B/overwrite" "$JBD2"

# ---- cache=0: every stat asks the owner
expect_rc "umount on b" 0 "" nb umount "$B"
expect_rc "mount on b with -o cache=0" 0 "as client of a" nb mount r0 "$B" -o cache=0
stat "$B/f" >/dev/null
R0=$(settled b)
for i in $(seq 5); do stat "$B/f" >/dev/null; done
R1=$(settled b)
check "cache=0: each stat on b is a request ($R0 -> $R1)" test $((R1 - R0)) -ge 5
mkdir -p "$T/mc"
expect_rc "cache=soon refused" 2 "cache=soon.*seconds" nb mount r0 "$T/mc" -o cache=soon

# ---- unmount with a file open: the connection is aborted, the holder gets
# ENOTCONN (without fusectl: umount2 MNT_FORCE)
python3 -c "
import os, time, errno
fd = os.open('$B/f', os.O_RDONLY); open('$T/holding', 'w').close()
while not os.path.exists('$T/go'): time.sleep(0.05)
try: os.fsync(fd); print('fsync ok')
except OSError as e: print(errno.errorcode[e.errno])" >"$T/holder.out" 2>&1 &
HOLDER=$!
echo $HOLDER >>"$T/bg.pids"
check "a process on b holds a file open" wait_for 10 test -f "$T/holding"
nb umount "$B" >"$T/um.out" 2>&1 &
UM=$!
check "umount on b while it is open returns" wait_for 60 eval "! kill -0 $UM 2>/dev/null"
wait $UM
check "... exit 0" test $? = 0
touch "$T/go"
wait $HOLDER
check "... the holder's next call (fsync) fails ENOTCONN" grep -qx ENOTCONN "$T/holder.out"
check "... b is not mounted, its daemon serves" eval "! mountpoint -q $B && jcheck b \"o['fs'] is None\""
expect_rc "umount on a" 0 "" na umount "$A"
check "down a" na down r0
check "down b" nb down r0
finish
