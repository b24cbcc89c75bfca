#!/usr/bin/env bash
# Debian's filesystem load tools through dipolefs (issue 13, items 2 and 7):
# two nodes as in fs_two.sh, a the owner, b its client; every tool runs on
# both mounts at once, each node in a directory of its own. stress-ng's
# filesystem class (minus the stressors that cannot apply to a FUSE
# filesystem: docs/dipolefs.md, "Load tools"), dbench, fs_mark, and fio
# with verification. Then both unmount, and the ext4 on b's replica must be
# clean and the two replicas byte-identical. Outcomes only, never timings:
# a tool's exit status and its own error reports.
. "$(dirname "$0")/lib.sh"
STRESS_T=${STRESS_T:-1} # seconds per stressor; each mount runs them all in turn
mknet2
mkres2 768M 'protocol C; shared-secret "fs-load-secret"; verify-alg sha256;'
mkdir -p "$T/ma" "$T/mb"
loop_of() { "n$1" status r0 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"]["loop"])'; }

for tool in stress-ng dbench fs_mark fio; do
	command -v $tool >/dev/null || { notok "$tool installed (scripts/install-deps)"; finish; }
done

na create-md r0 --force >/dev/null 2>&1 && nb create-md r0 --force >/dev/null 2>&1
check "a and b up" eval 'na up r0 >/dev/null && nb up r0 >/dev/null'
check "connected" wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
check "a Primary, b UpToDate" eval 'na primary r0 --force >/dev/null 2>&1 && wait_for 60 jcheck b "o[\"disk\"] == \"UpToDate\""'
LA=$(loop_of a) LB=$(loop_of b)
expect_rc "mkfs on a" 0 "" na mkfs r0
expect_rc "mount on a: owner" 0 "as owner" na mount r0 "$T/ma"
expect_rc "mount on b: client of a" 0 "as client of a" nb mount r0 "$T/mb"

# both_nodes LABEL CMD: run CMD on a and on b at once, @M replaced by that
# node's mount and @N by its name; output in $T/LABEL-a.out and $T/LABEL-b.out, exit
# status in $T/LABEL-a.rc and $T/LABEL-b.rc
both_nodes() {
	local label=$1 cmd=$2 n
	for n in a b; do
		local c=${cmd//@M/$T/m$n}
		# in $T: fio and fs_mark leave state and log files in their cwd
		(cd "$T" && eval "${c//@N/$n}" >"$T/$label-$n.out" 2>&1; echo $? >"$T/$label-$n.rc") &
		echo $! >>"$T/bg.pids"
	done
	wait
}
# ran_clean LABEL NODE PATTERN: exit status 0 and no line matching PATTERN
# (dbench 4.00 prints "failed to create barrier semaphore" whenever semget
# returns id 0, a valid id and the first one on a fresh machine, and goes
# on: its own bug, not a failure of the filesystem)
ran_clean() {
	local rc; rc=$(cat "$T/$1-$2.rc")
	if [ "$rc" = 0 ] && ! grep -v 'failed to create barrier semaphore' "$T/$1-$2.out" | grep -Eiq "$3"; then
		return 0
	fi
	echo "exit $rc"; grep -Ei "$3" "$T/$1-$2.out" | head -20; tail -5 "$T/$1-$2.out"
	return 1
}
role() { [ "$1" = a ] && echo owner || echo client; }

# ---- one directory changed from both nodes at once (what fs_mark and
# dbench do to their common parent): each node's kernel holds the
# directory's lock for its own request while the owner revokes the other's
# entry, so no revocation may wait on a kernel holding that lock
mkdir "$T/ma/shared"
both_nodes shared "timeout 60 python3 -c '
import os, sys
for i in range(300):
    p = \"@M/shared/@N-%d\" % i
    os.mkdir(p); open(p + \".f\", \"w\").close()
    os.rename(p + \".f\", p + \".g\"); os.unlink(p + \".g\"); os.rmdir(p)
'"
for n in a b; do
	check "mkdir/create/rename/unlink/rmdir in one directory from both nodes: $n ($(role $n))" \
		ran_clean shared $n 'error'
done
check "... and the client was never dropped" eval "! grep -q 'did not acknowledge' $T/ra/r0.log"

# (one page written from both nodes at once: fs_cache.sh)

# ---- stress-ng: every filesystem stressor that applies to FUSE, one at a time
# The exclusions and their reasons are listed in docs/dipolefs.md.
EXCLUDE=binderfs,fanotify,fiemap,getdent,verity
# the file sizes of the stressors that default to 1 GB or more: both nodes
# share one 768 MB filesystem, and ENOSPC is not what this test is after
BYTES="--hdd-bytes 32M --iomix-bytes 32M --fallocate-bytes 32M --copy-file-bytes 128M --sync-file-bytes 32M"
# and the counts that make a stressor's setup and cleanup outlast -t many
# times through a client (8192 directories for chdir and dir, 20000 fds)
COUNTS="--chdir-dirs 512 --dir-dirs 512 --dentries 512 --dirdeep-inodes 2000 --open-max 2000"
mkdir -p "$T/ma/stress-a" "$T/mb/stress-b"
both_nodes stress "timeout 240 stress-ng --class filesystem --sequential 1 -t $STRESS_T \
	--exclude $EXCLUDE $BYTES $COUNTS --temp-path @M/stress-@N --verify --metrics-brief"
for n in a b; do
	check "stress-ng filesystem class on $n ($(role $n)): exit 0, nothing failed" \
		ran_clean stress $n 'fail|error|skipping stressor'
done
check "stress-ng: each run reports a successful completion" \
	eval "grep -q 'successful run completed' $T/stress-a.out && grep -q 'successful run completed' $T/stress-b.out"

# ---- dbench: its standard load (client.txt), two clients per node
mkdir -p "$T/ma/dbench-a" "$T/mb/dbench-b"
both_nodes dbench "timeout 60 dbench -c /usr/share/dbench/client.txt -D @M/dbench-@N -t 8 2"
for n in a b; do
	check "dbench on $n ($(role $n)): exit 0, no errors" ran_clean dbench $n 'error|failed|unexpected'
	check "dbench on $n: reached its throughput line" grep -q '^Throughput .* 2 clients' "$T/dbench-$n.out"
done

# ---- fs_mark: small files created, written, fsynced
both_nodes fsmark "timeout 90 fs_mark -d @M/fsmark-@N -s 4096 -n 200 -L 2 -S 1"
for n in a b; do
	check "fs_mark on $n ($(role $n)): exit 0, both loops" ran_clean fsmark $n 'error|fail'
	check "fs_mark on $n: 2 result lines of 200 files" \
		test "$(grep -Ec '^ +[0-9]+ +(200|400) +4096 ' "$T/fsmark-$n.out")" = 2
done

# ---- fio: random writes read back and verified (crc32c), psync and libaio
FIO="timeout 120 fio --directory=@M/fio-@N --bs=4k --verify=crc32c --verify_fatal=1 --fsync=32"
mkdir -p "$T/ma/fio-a" "$T/mb/fio-b"
both_nodes fio "$FIO --name=psync --ioengine=psync --rw=randrw --size=32M \
	--name=libaio --stonewall --ioengine=libaio --iodepth=8 --rw=randwrite --do_verify=1 --size=16M"
for n in a b; do
	check "fio on $n ($(role $n)): exit 0, err=0 for both jobs" eval "[ \$(cat $T/fio-$n.rc) = 0 ] &&
		[ \$(grep -c 'err= 0' $T/fio-$n.out) = 2 ] && ! grep -Eiq 'verify.*(fail|bad)|crc32c' $T/fio-$n.out"
	# a randwrite job reads only to verify: its READ line is the verification
	check "fio on $n: libaio job read its 16 MiB back to verify" \
		eval "sed -n '/^libaio:/,\$p' $T/fio-$n.out | grep -q 'read: IOPS=.*(16.0MiB/'"
done

# ---- the filesystem after all that, on both replicas
expect_rc "umount on b (client)" 0 "" nb umount "$T/mb"
expect_rc "umount on a (owner)" 0 "" na umount "$T/ma"
check "a Secondary" eval 'na secondary r0 >/dev/null 2>&1 && jcheck a "o[\"role\"] == \"Secondary\""'
check "b's replica: ext4 clean (fsck.ext4 -fn)" fsck.ext4 -fn "$LB"
check "a's replica: ext4 clean (fsck.ext4 -fn)" fsck.ext4 -fn "$LA"
check "verify: the replicas hold the same blocks" \
	eval "na verify r0 2>&1 | grep -q ': 0 of [0-9]* blocks out of sync'"
check "the two loop devices are byte-identical (md5)" \
	test "$(md5sum <"$LA" | cut -d' ' -f1)" = "$(md5sum <"$LB" | cut -d' ' -f1)"
check "down a" na down r0
check "down b" nb down r0
# what the daemons said about the filesystem, when something failed
[ $FAILED = 0 ] || grep -h ' fs\| dipolefs' "$T/ra/r0.log" "$T/rb/r0.log" | sed 's/^/# /' | tail -40
finish
