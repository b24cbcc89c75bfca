#!/usr/bin/env bash
# A cut-off dipolefs owner (issue 14 item 4, docs/dipolefs.md "A cut-off
# owner"): two disk nodes a and b and c, a diskless tiebreaker (quorum
# majority, allow-two-primaries as in the guide's swarm.res).
#  1. a owns the filesystem (mounted with io-timeout=3), a process on a
#     writes and fsyncs records; a is cut off from b and c. Within the
#     bound a's process gets EIO, new calls on a's mount fail EIO at once,
#     a's daemon and host stay up, status says why; a drops its kernel
#     mount and becomes Secondary. b, promoted as soon as it may, has every
#     record a acknowledged, and a's last acknowledgement came before b's
#     promotion returned. Healed: a is a SyncTarget, then Secondary and UpToDate,
#     with b's data, no split brain; a's mount unmounts and mounts again as
#     a client of b.
#  2. the stale epoch: b owns it with io-timeout=1000 (longer than the
#     test), its writer's fsync is held when b is cut off, status says
#     when it would give up; a takes over
#     and writes; when the link heals, b learns in the handshake that a
#     went on without it: its held writes fail with EIO instead of going
#     out on top of a's filesystem, which fsck finds clean afterwards.
# Outcomes only, never timings: the order of a's last acknowledgement and
# b's promotion is an outcome (one clock, CLOCK_MONOTONIC, for every
# namespace).
. "$(dirname "$0")/lib.sh"
mknet3
mkres3 64M
sed -i 's/net { /net { protocol C; shared-secret "cut"; /' "$T/r.res"
mkdir -p "$T/ma" "$T/mb"
mono() { python3 -c 'import time; print(time.monotonic_ns())'; }
fsj() { jcheck "$1" "o['fs'] is not None and $2"; }
loop_of() { "n$1" status r0 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"]["loop"])'; }
# one 512-byte record per fsync, acknowledged in $T/acked.NAME once fsync returned
cat >"$T/writer.py" <<'EOF'
import os, sys, time
path, name = sys.argv[1], sys.argv[2]
d = os.environ["T"]
acked = open(f"{d}/acked.{name}", "a", buffering=1)
n = 0
try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    while True:
        os.pwrite(fd, (f"rec {n:08d}".ljust(511) + "\n").encode(), n * 512)
        os.fsync(fd)
        acked.write(f"{n} {time.monotonic_ns()}\n")
        n += 1
        time.sleep(0.02)
except OSError as e:
    open(f"{d}/end.{name}", "w").write(f"{e.errno} {time.monotonic_ns()}\n")
EOF
export T
writer() { python3 "$T/writer.py" "$1" "$2" & echo $! >>"$T/bg.pids"; }
acked_n() { [ -f "$T/acked.$1" ] && [ "$(wc -l <"$T/acked.$1")" -ge "$2" ]; }
ended_with() { [ -s "$T/end.$1" ] && [ "$(cut -d' ' -f1 "$T/end.$1")" = "$2" ]; }
# every record NAME acknowledged is in FILE
has_acked() { python3 - "$T/acked.$1" "$2" <<'EOF'
import sys
acked = [int(l.split()[0]) for l in open(sys.argv[1])]
data = open(sys.argv[2], "rb").read()
bad = [n for n in acked if data[n * 512:n * 512 + 12] != f"rec {n:08d}".encode()]
print("acknowledged:", len(acked), "missing:", bad[:10])
sys.exit(1 if bad or not acked else 0)
EOF
}
# NAME's writer acknowledged nothing for 3 s and has not failed
stalled() { local n; n=$(wc -l <"$T/acked.$1"); sleep 3; [ "$(wc -l <"$T/acked.$1")" = "$n" ] && [ ! -s "$T/end.$1" ]; }
# errno of a call on PATH: stat
stat_errno() { python3 -c "
import os, sys
try: os.stat(sys.argv[1]); print(0)
except OSError as e: print(e.errno)" "$1"; }
# NODE's loop device can be opened exclusively: no kernel filesystem holds it
loop_free() { python3 -c "import os, sys; os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL))" "$(loop_of "$1")"; }
# try to promote b, recording when the attempt that succeeded started and
# when it returned (b is Primary by then)
promote_b() { mono >"$T/t_promote" && nb primary r0 && mono >"$T/t_promoted"; }

fs3_start io-timeout=3
check "b Secondary" wait_for 10 jcheck b "o['role'] == 'Secondary'"

# ---- 1. a cut off past io-timeout
writer "$T/ma/log" a
check "a's writer acknowledges records" wait_for 30 acked_n a 20
cut3 a b
cut3 a c
T_CUT=$(mono)
check "b is promoted once it may (quorum with c)" wait_for 60 promote_b
check "a's writer gets EIO" wait_for 60 ended_with a 5
awk -v c="$T_CUT" -v p="$(cat "$T/t_promote")" '{ printf "# measured: cut to EIO on a %.1f s, cut to b promoted %.1f s (io-timeout=3, ping-int 1, ping-timeout 0.5 s)\n", ($2 - c) / 1e9, (p - c) / 1e9 }' "$T/end.a"
check "a's daemon is alive and answers" eval "kill -0 \$(cat $T/ra/r0.pid) && na status r0 >/dev/null"
check "status says why: fenced, cut off for io-timeout" wait_for 10 fsj a \
	"o['fs']['reason'].startswith('fenced: this node lost the right to write: cut off (no quorum) for io-timeout=3 s')"
na status r0 --json | python3 -c 'import json,sys; print("# reason:", json.load(sys.stdin)["fs"]["reason"])'
check "a new call on a's mount fails with EIO at once" test "$(stat_errno "$T/ma/log")" = 5
check "a dropped its kernel mount and became Secondary" wait_for 20 eval \
	"jcheck a \"o['role'] == 'Secondary'\" && loop_free a"
check "... its log says so" grep -q "fs: a fenced owner became Secondary" "$T/ra/r0.log"
T_LAST=$(tail -1 "$T/acked.a" | cut -d' ' -f2)
# T_LAST is taken after a's fsync returned, so it is late by however long
# the writer waited for the CPU; a's last acknowledgement may legally fall
# inside b's promotion (the lease wait), so the bound is the promotion's
# return: an owner acknowledging past its lease is seconds past it
check "a's last acknowledgement came before b's promotion returned" test "$T_LAST" -lt "$(cat "$T/t_promoted")"
expect_rc "mount on b: owner (a is gone)" 0 "as owner" nb mount r0 "$T/mb"
check "b has every record a acknowledged" has_acked a "$T/mb/log"
head -c 200k /dev/urandom >"$T/src"
check "b writes" eval "cp $T/src $T/mb/from-b && sync $T/mb/from-b"
heal3 a b
heal3 a c
check "healed: all connected, a UpToDate Secondary, b Primary" wait_for 60 eval "all_connected && \
jcheck a \"o['role'] == 'Secondary' and o['disk'] == 'UpToDate'\" && jcheck b \"o['role'] == 'Primary' and o['disk'] == 'UpToDate'\""
check "a was a SyncTarget of b" grep -q "resync started as SyncTarget" "$T/ra/r0.log"
check "no split brain" eval "! grep -qi 'split brain' $T/ra/r0.log $T/rb/r0.log"
check "a's mount still answers EIO, with the reason" eval \
	"test \"\$(stat_errno $T/ma/log)\" = 5 && fsj a \"o['fs']['reason'].startswith('fenced:')\""
expect_rc "umount on a" 0 "" na umount "$T/ma"
expect_rc "mount on a again: client of b" 0 "as client of b" na mount r0 "$T/ma"
check "a reads b's file and a's acknowledged records" eval "cmp -s $T/src $T/ma/from-b && has_acked a $T/ma/log"
expect_rc "umount on a" 0 "" na umount "$T/ma"
expect_rc "umount on b" 0 "" nb umount "$T/mb"
check "a's data equals b's" eval '[ "$(img_md5 a)" = "$(img_md5 b)" ]'

# ---- 2. the stale epoch: b cut off, healed before it gave up by itself
expect_rc "mount on b with io-timeout=1000: owner" 0 "as owner" nb mount r0 "$T/mb" -o io-timeout=1000
writer "$T/mb/log2" b
check "b's writer acknowledges records" wait_for 30 acked_n b 20
cut3 b a
cut3 b c
# (a write in flight at the cut may still be acknowledged: it reached a)
check "b's writer is held (its acknowledgements stop, no error)" wait_for 30 stalled b
check "b's status: cut off, calls fail with EIO in so many seconds" wait_for 20 fsj b \
	"o['fs']['reason'].startswith('I/O suspended on the owner') and 'cut off: calls fail with EIO in' in o['fs']['reason']"
nb status r0 --json | python3 -c 'import json,sys; print("# reason:", json.load(sys.stdin)["fs"]["reason"])'
check "a is promoted once it may" wait_for 60 eval 'na primary r0'
expect_rc "mount on a: owner" 0 "as owner" na mount r0 "$T/ma"
check "a has every record b acknowledged" has_acked b "$T/ma/log2"
check "a writes over b's file" eval "cp $T/src $T/ma/log2 && sync $T/ma/log2 && cp $T/src $T/ma/more && sync $T/ma/more"
heal3 b a
heal3 b c
check "healed: b's held writes fail with EIO (its epoch is stale)" wait_for 60 ended_with b 5
check "... b's log says why" grep -q "fenced: peer a has data this node lacks" "$T/rb/r0.log"
check "b dropped its kernel mount and became Secondary" wait_for 30 eval \
	"jcheck b \"o['role'] == 'Secondary'\" && loop_free b"
check "b UpToDate, connected, a Primary" wait_for 60 eval "all_connected && \
jcheck b \"o['disk'] == 'UpToDate'\" && jcheck a \"o['role'] == 'Primary'\""
check "a still reads what it wrote" eval "cmp -s $T/src $T/ma/log2 && cmp -s $T/src $T/ma/more"
expect_rc "umount on b" 0 "" nb umount "$T/mb"
expect_rc "umount on a" 0 "" na umount "$T/ma"
check "a's data equals b's" eval '[ "$(img_md5 a)" = "$(img_md5 b)" ]'
check "fsck of the filesystem finds it clean" eval "fsck.ext4 -fn $(loop_of a)"

# ---- 2b. a fenced owner with a client still connected: b's mount goes on
# without a (takes over); the connection a still serves is closed when a
# drops its kernel mount, and what it held is released in a's backend
# before that goes (a crashed here: a null backend)
expect_rc "mount on a with io-timeout=3: owner" 0 "as owner" na mount r0 "$T/ma" -o io-timeout=3
expect_rc "mount on b: client of a" 0 "as client of a" nb mount r0 "$T/mb"
exec {held}<"$T/mb/more" # an open handle of b's in a's server
check "b writes through a" eval "cp $T/src $T/mb/via-a && sync $T/mb/via-a"
cut3 a c # first: a must not go on with c's vote
cut3 a b
check "b takes the filesystem over" wait_for 60 fsj b "o['fs']['role'] == 'owner'"
check "a dropped its kernel mount and became Secondary" wait_for 30 eval \
	"jcheck a \"o['role'] == 'Secondary'\" && loop_free a"
check "a's daemon is alive and answers" eval "kill -0 \$(cat $T/ra/r0.pid) && na status r0 >/dev/null"
exec {held}<&-
heal3 a b
heal3 a c
check "healed: a UpToDate Secondary, b Primary" wait_for 60 eval "all_connected && \
jcheck a \"o['role'] == 'Secondary' and o['disk'] == 'UpToDate'\" && jcheck b \"o['role'] == 'Primary'\""
check "b reads what it wrote through a" cmp -s "$T/src" "$T/mb/via-a"
expect_rc "umount on a" 0 "" na umount "$T/ma"
expect_rc "umount on b" 0 "" nb umount "$T/mb"
check "b Secondary, a Primary again" eval 'nb secondary r0 && na primary r0'

# ---- 3. the owner on the winning side of a cut is not fenced: a (the
# lower node-id) loses only its link to b and goes on with c's record
expect_rc "mount on a with io-timeout=3: owner" 0 "as owner" na mount r0 "$T/ma" -o io-timeout=3
rm -f "$T/acked.a" "$T/end.a"
writer "$T/ma/log3" a
check "a's writer acknowledges records" wait_for 30 acked_n a 20
cut3 a b
N_CUT=$(wc -l <"$T/acked.a")
sleep 8 # io-timeout and then some: an outcome after it, not a timing
check "a's writer goes on past io-timeout, no EIO" eval \
	"[ ! -s $T/end.a ] && [ \$(wc -l <$T/acked.a) -gt \$((N_CUT + 20)) ]"
check "... a is not fenced: owner, Primary" fsj a "not o['fs']['reason'].startswith('fenced') and o['fs']['role'] == 'owner'"
heal3 a b
check "healed: b UpToDate again, a still owner" wait_for 60 eval \
	"all_connected && jcheck b \"o['disk'] == 'UpToDate'\" && fsj a \"o['fs']['role'] == 'owner'\""
kill "$(tail -1 "$T/bg.pids")"
expect_rc "umount on a" 0 "" na umount "$T/ma"
check "b has every record a acknowledged" eval 'nb mount r0 "$T/mb" >/dev/null && has_acked a "$T/mb/log3" && nb umount "$T/mb"'

# ---- 4. a cut-off owner goes down without hanging: the kernel
# filesystem's unmount writes, which would wait for quorum for ever (the
# daemon in D state); they are given up instead, never acknowledged
check "a serves the filesystem (b's mount asked), not mounted here" fsj a "o['fs']['role'] == 'owner'"
cut3 a b
cut3 a c
check "a loses quorum" wait_for 20 jcheck a "not o['quorum']['have']"
( na down r0 >"$T/down.out" 2>&1; echo $? >"$T/down.rc" ) &
echo $! >>"$T/bg.pids"
check "down on the cut-off owner returns, exit 0" wait_for 60 eval '[ "$(cat $T/down.rc 2>/dev/null)" = 0 ]'
check "... its log says why" grep -q "fenced: unmounted while cut off (no quorum)" "$T/ra/r0.log"
heal3 a b
heal3 a c
check "down c, b" eval 'nc down r0 && nb down r0'
finish
