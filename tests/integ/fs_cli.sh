#!/usr/bin/env bash
# dipolefs commands (issue 13, docs/dipolefs.md "Using it"): mkfs only on
# the Primary and never over a filesystem without --force; mount's and
# mount.dipole's refusals of bad input, each naming the cause, with nothing
# changed; and, once the owner side of dipolefs is built in, a mount on the
# Primary that files can be written and read through.
. "$(dirname "$0")/lib.sh"
mknet2
mkres2 64M "protocol C;"
mkdir -p "$T/mnt" "$T/mntb" "$T/busy"
touch "$T/file"
# mount(8) finds its helper by name (/sbin/mount.dipole); here: a link
ln -s "$DIPOLE" "$T/mount.dipole"
ma() { nsenter --net=/run/netns/$NS_A "$T/mount.dipole" "$@"; }
OPTS_A="config=$T/r.res,node=a,run-dir=$T/ra"
loop_of() { "n$1" status r0 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"]["loop"])'; }
fstype() { blkid -p -o value -s TYPE "$1" 2>/dev/null; }

# ---- the resource down
expect_rc "mount: resource down refused, saying how to start it" 3 "not up on this node" \
	na mount r0 "$T/mnt"
expect_rc "mkfs: resource down refused" 3 "not up on this node" na mkfs r0
expect_rc "mount.dipole: resource down refused" 3 "mount.dipole: resource 'r0' is not up" \
	ma r0 "$T/mnt" -o "$OPTS_A"

# ---- usage
expect_rc "mount: missing mount point" 2 "missing mount point" na mount r0
expect_rc "mount: unknown resource" 2 "no resource 'nosuch'" na mount nosuch "$T/mnt"
expect_rc "mkfs: unknown --type named" 2 "unknown filesystem type 'btrfs'" na mkfs r0 --type btrfs
expect_rc "mount --help" 0 "usage: dipole .*mount RES DIR" na mount --help
expect_rc "mkfs --help" 0 "--type ext4\|xfs" na mkfs --help
expect_rc "mount.dipole -h" 0 "usage: mount.dipole RES DIR" "$T/mount.dipole" -h
expect_rc "mount.dipole --help" 0 "usage: mount.dipole RES DIR" "$T/mount.dipole" --help

# both up, fresh metadata: both Inconsistent, nobody Primary
na create-md r0 --force >/dev/null 2>&1 && nb create-md r0 --force >/dev/null 2>&1
check "a up (with a loop device)" na up r0
check "b up (with a loop device)" nb up r0
check "connected" wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
check "status --json: fs is null while not mounted" jcheck a "o['fs'] is None"
expect_rc "mount: Inconsistent data and no owner refused" 3 "disk is Inconsistent and no Primary is connected" \
	na mount r0 "$T/mnt"
check "... and a stayed Secondary" jcheck a "o['role'] == 'Secondary'"
expect_rc "mkfs on a Secondary refused" 3 "refused: this node is Secondary for .r0.; the filesystem is made on the Primary" na mkfs r0

check "a Primary, initial sync done" eval 'na primary r0 --force >/dev/null 2>&1 && wait_for 60 jcheck b "o[\"disk\"] == \"UpToDate\""'
LA=$(loop_of a) LB=$(loop_of b)
check "loop devices exported ($LA, $LB)" test -b "$LA" -a -b "$LB"
expect_rc "mkfs on the Secondary b refused" 3 "this node is Secondary" nb mkfs r0
check "... nothing written" test -z "$(fstype "$LA")"

# ---- mount: the device and the mount point
expect_rc "mount on an empty device refused, pointing to mkfs" 3 "holds no filesystem.*dipole mkfs r0" \
	na mount r0 "$T/mnt"
expect_rc "mount: missing mount point named" 2 "mount point $T/nodir does not exist" na mount r0 "$T/nodir"
expect_rc "mount: a file as mount point refused" 2 "is not a directory" na mount r0 "$T/file"
mount -t tmpfs none "$T/busy"
expect_rc "mount: busy mount point refused" 3 "$T/busy is busy" na mount r0 "$T/busy"
expect_rc "mount: unknown -o option named" 2 "unknown mount option 'bogus'" na mount r0 "$T/mnt" -o noatime,bogus
expect_rc "mount: -o ro refused for now" 2 "option 'ro' refused" na mount r0 "$T/mnt" -o ro
expect_rc "mount: no shared-secret warns of impersonation" 3 "no shared-secret.*impersonate" na mount r0 "$T/mnt"
expect_rc "mount.dipole: missing mount point" 2 "mount.dipole: mount point $T/nodir does not exist" \
	ma r0 "$T/nodir" -o "$OPTS_A"
expect_rc "mount.dipole: unknown option refused" 2 "unknown mount option 'bogus'" ma r0 "$T/mnt" -o "$OPTS_A,bogus"
expect_rc "mount.dipole -s: unknown options ignored, fstab's too (-f: check only)" 0 "ignoring unknown option 'bogus'" \
	ma r0 "$T/mnt" -f -s -n -o "$OPTS_A,bogus,_netdev,nofail,x-systemd.requires=dipole@r0.service"
check "... -f mounted nothing" eval "! mountpoint -q $T/mnt"

# ---- a foreign filesystem, then mkfs
check "a swap signature on the device (foreign)" mkswap "$LA"
expect_rc "mount on a foreign filesystem refused, naming it" 3 "holds swap, not ext4 or xfs.*dipole mkfs r0 --force" \
	na mount r0 "$T/mnt"
expect_rc "mkfs over it refused without --force" 3 "already holds a filesystem: swap .blkid -p.; nothing was written" na mkfs r0
check "... nothing written" test "$(fstype "$LA")" = swap
expect_rc "mkfs --force makes ext4, mkfs's output shown" 0 "Writing superblocks|Creating journal" na mkfs r0 --force
check "blkid: ext4 on a" test "$(fstype "$LA")" = ext4
check "blkid: ext4 on b too (replicated)" test "$(fstype "$LB")" = ext4
expect_rc "mkfs again refused without --force" 3 "already holds a filesystem: ext4" na mkfs r0
expect_rc "mkfs --type xfs on a 64 MiB device refused (XFS needs 300 MiB)" 3 "XFS needs a device of at least 300 MiB" \
	na mkfs r0 --type xfs --force
check "... nothing written" test "$(fstype "$LA")" = ext4
expect_rc "umount: not a dipolefs mount" 3 "not where a resource up on this node is mounted" na umount "$T/mnt"

# ---- mounting needs a Primary; a node with UpToDate data becomes it
check "a Secondary again: nobody Primary" na secondary r0
if grep -q dipolefs_stub "$ROOT"/src/fs/*.c 2>/dev/null && ! [ -f "$ROOT/src/fs/dipolefs.c" ]; then
	expect_rc "mount without dipolefs built in fails saying so" 1 "not built into this binary" na mount r0 "$T/mnt"
	check "... the promotion it made is undone (a Secondary)" jcheck a "o['role'] == 'Secondary'"
	echo "# dipolefs (owner side) is not built in: mount/write/read skipped"
else
	expect_rc "mount on a: promotes it (nobody Primary, UpToDate) and owns" 0 "" na mount r0 "$T/mnt"
	check "a is Primary and the owner" jcheck a "o['role'] == 'Primary' and o['fs']['role'] == 'owner' and o['fs']['mountpoint'] == '$T/mnt'"
	check "the mount point is a mount" mountpoint -q "$T/mnt"
	check "write a file through the mount" eval "echo hello-dipolefs >$T/mnt/f && sync $T/mnt/f"
	check "read it back" test "$(cat "$T/mnt/f")" = hello-dipolefs
	expect_rc "mount again refused: already mounted" 3 "already mounted on this node" na mount r0 "$T/mntb"
	expect_rc "secondary refused while a owns the mounted filesystem" 3 "owns r0's filesystem" na secondary r0
	expect_rc "mkfs refused while mounted" 3 "is mounted" na mkfs r0 --force
	expect_rc "down refused while mounted" 3 "filesystem is mounted" na down r0
	expect_rc "dipole umount" 0 "" na umount "$T/mnt"
	check "status: fs null again" jcheck a "o['fs'] is None"
	check "unmounted" eval "! mountpoint -q $T/mnt"
	expect_rc "mount.dipole mounts too" 0 "" ma r0 "$T/mnt" -o "$OPTS_A"
	check "plain umount(8) works, the daemon lets go" eval "umount $T/mnt && wait_for 5 jcheck a \"o['fs'] is None\""
	check "the file survived (ext4, fsck clean)" eval "na secondary r0 && fsck.ext4 -fn $LB"
fi
umount "$T/busy"
check "down a" na down r0
check "down b" nb down r0

# ---- XFS, on a device big enough for it (node a alone, b never starts)
rm -f "$T/a.img" "$T/b.img"
mkres 320M
dp create-md r0 --force >/dev/null 2>&1
check "a alone up, Primary" eval 'dp up r0 >/dev/null && dp primary r0 --force'
LX=$("$DIPOLE" -c "$T/r.res" --node a --run-dir "$RUN" status r0 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"]["loop"])')
expect_rc "mkfs --type xfs" 0 "" dp mkfs r0 --type xfs
check "blkid: xfs" test "$(fstype "$LX")" = xfs
expect_rc "mkfs --type ext4 over it refused without --force" 3 "already holds a filesystem: xfs" dp mkfs r0
check "down" dp down r0
finish
