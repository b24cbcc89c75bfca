#!/usr/bin/env bash
# The POSIX conformance suite (tests/posix/posix.c, build/posix-suite) on
# kernel filesystems: whatever they do is what dipolefs must do, so every
# case must pass here before it means anything through dipolefs.
#
# Runs it on this machine's own /tmp filesystem, on a tmpfs, on a fresh ext4
# on a loop device and, when mkfs.xfs is installed, on XFS (the owner's other
# choice), each with --other-uid 65534 (nobody) and --second through a bind
# mount: a kernel filesystem is trivially coherent across its mounts, so this
# proves the coherence cases themselves before they run across two dipolefs
# nodes. Results that differ between filesystems are printed as
# "# difference:" lines (see docs/dipolefs.md, "Conformance").
. "$(dirname "$0")/lib.sh"
POSIX_SUITE=${POSIX_SUITE:-$ROOT/build/posix-suite}
OTHER_UID=65534

if ! [ -x "$POSIX_SUITE" ]; then
	notok "$POSIX_SUITE is built (make build/posix-suite)"
	finish
fi

# run_suite LABEL DIR [ARGS...]: the suite's lines, "posix:" tagged with
# LABEL so the runs stay apart; its raw output is kept in $T/LABEL.out
run_suite() {
	local label=$1 dir=$2; shift 2
	"$POSIX_SUITE" "$dir" --other-uid $OTHER_UID "$@" >"$T/$label.out" 2>&1
	local rc=$?
	sed "s/ - posix: / - posix[$label]: /" "$T/$label.out"
	if [ $rc -ne 0 ] && ! grep -q '^not ok ' "$T/$label.out"; then
		notok "posix[$label]: suite exited $rc without a failing case"
	fi
	[ $rc -eq 0 ] || FAILED=1
}

# loopfs LABEL MKFS...: a fresh filesystem on a 512M sparse file in $T,
# mounted at $T/LABEL with a bind mount at $T/LABEL-2; lib.sh's cleanup
# unmounts both and detaches the loop device
loopfs() {
	local label=$1; shift
	truncate -s 512M "$T/$label.img"
	local dev
	dev=$(losetup -f --show "$T/$label.img") || { notok "losetup for $label"; return 1; }
	"$@" "$dev" >"$T/mkfs.out" 2>&1 || { notok "$* on $dev"; cat "$T/mkfs.out"; return 1; }
	mkdir -p "$T/$label" "$T/$label-2"
	mount "$dev" "$T/$label" && mount --bind "$T/$label" "$T/$label-2" ||
		{ notok "mount $label"; return 1; }
}

mkdir -p "$T/rootfs" "$T/rootfs-2"
if mount --bind "$T/rootfs" "$T/rootfs-2"; then
	run_suite "tmpdir-$(findmnt -n -o FSTYPE -T "$T" || echo unknown)" "$T/rootfs" --second "$T/rootfs-2"
else
	notok "bind-mount a directory of $T"
fi

mkdir -p "$T/tmpfs" "$T/tmpfs-2"
if mount -t tmpfs -o size=256M tmpfs "$T/tmpfs" && mount --bind "$T/tmpfs" "$T/tmpfs-2"; then
	run_suite tmpfs "$T/tmpfs" --second "$T/tmpfs-2"
else
	notok "mount a tmpfs"
fi

loopfs ext4 mkfs.ext4 -q -F && run_suite ext4 "$T/ext4" --second "$T/ext4-2"

if command -v mkfs.xfs >/dev/null; then
	loopfs xfs mkfs.xfs -q -f && run_suite xfs "$T/xfs" --second "$T/xfs-2"
else
	echo "# mkfs.xfs not installed: XFS not run"
fi

# where filesystems disagree (a case skipped by a capability probe on one
# and run on another), say so; ext4 is the reference, dipolefs's default
strip() { sed -n 's/^\(ok\|not ok\) - posix: //p; s/^# caps: /caps: /p' "$1" | sort; }
for out in "$T"/*.out; do
	case "$out" in */ext4.out|*/mkfs.out) continue ;; esac
	[ -f "$T/ext4.out" ] || break
	label=$(basename "$out" .out)
	diff <(strip "$T/ext4.out") <(strip "$out") | sed -n "s/^> /# difference: $label: /p"
done
finish
