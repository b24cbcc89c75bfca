#!/usr/bin/env bash
# dipolefs under systemd's automount (fstab's x-systemd.automount): the
# mount point then holds an autofs mount before dipolefs goes over it and
# after it comes off. Here a python3 holder plays systemd's part (autofs in
# direct mode, its own process group). The mount helper must take the autofs
# point as free and must not trigger it (that would deadlock a real boot:
# systemd waits for the helper, the helper for systemd); a plain umount(8)
# must still be seen by the daemon; and `down` right after the umount (what
# systemd does: stop the mount unit, then ExecStop) must not be refused.
# And the real thing: a first access triggers the automount, the stand-in
# runs the helper in its process group (as systemd runs mount(8)) and
# answers the request once it is done; the helper makes the FUSE mount
# itself and hands it to the daemon, which must never look at the path
# while the request is pending (it would wait for it: docs/dipolefs.md
# "At boot").
. "$(dirname "$0")/lib.sh"
# (a kernel built without autofs, as some VMs' are, cannot hold the point)
has_autofs() {
	grep -qw autofs /proc/filesystems ||
		{ { modprobe -q autofs4 || modprobe -q autofs; } 2>/dev/null && grep -qw autofs /proc/filesystems; }
}
if ! has_autofs; then
	ok "this kernel has no autofs filesystem (CONFIG_AUTOFS_FS): automount checks skipped"
	finish
fi
mkres 64M
mkdir -p "$T/mnt" "$T/plain"
ln -s "$DIPOLE" "$T/mount.dipole"
OPTS="config=$T/r.res,node=a,run-dir=$RUN"
dp create-md r0 >/dev/null 2>&1
check "up" dp up r0
check "primary --force" dp primary r0 --force
check "mkfs" dp mkfs r0
# the daemon's /dev/fuse descriptors with nothing mounted
DPID=$(cat "$RUN/r0.pid")
nfuse() { ls -l /proc/$DPID/fd | grep -c /dev/fuse; }
FUSE0=$(nfuse)
python3 - "$T/mnt" "$T/autofs.log" "$T/autofs.stop" <<'PY' &
# systemd's part: an autofs mount (direct) in a process group of its own;
# every request is logged and failed at once (AUTOFS_IOC_FAIL), so that
# nothing waits, unless an on-demand command is set: then, as systemd, it
# runs that in its process group and answers (AUTOFS_IOC_READY on exit 0);
# on the stop file it unmounts it (exempt from triggering)
import fcntl, json, os, select, struct, subprocess, sys
d, log, stop = sys.argv[1:]
ondemand = stop + ".ondemand"  # the mount command (JSON list), as systemd runs mount(8)
os.setsid()  # a process group of its own: every other process triggers
r, w = os.pipe()
subprocess.run(["mount", "-t", "autofs", "-o", "fd=%d,pgrp=%d,minproto=5,maxproto=5,direct" % (w, os.getpgrp()),
                "dipole-test-automount", d], pass_fds=[w], check=True)
os.close(w)
ioctl_fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
AUTOFS_IOC_READY, AUTOFS_IOC_FAIL = 0x9360, 0x9361
with open(log, "a") as f:
    f.write("ready\n"); f.flush()
    while not os.path.exists(stop):
        rl, _, _ = select.select([r], [], [], 0.2)
        if rl:
            pkt = os.read(r, 4096)
            token = struct.unpack_from("=I", pkt, 8)[0]  # autofs_v5_packet.wait_queue_token
            if os.path.exists(ondemand):
                cmd = json.load(open(ondemand))
                os.unlink(ondemand)
                try:
                    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
                    rc, err = p.returncode, p.stderr
                except subprocess.TimeoutExpired:
                    rc, err = "timeout", ""
                fcntl.ioctl(ioctl_fd, AUTOFS_IOC_READY if rc == 0 else AUTOFS_IOC_FAIL, token)
                open(ondemand + ".out", "w").write("rc %s\n%s" % (rc, err))
                f.write("mounted on demand\n"); f.flush()
            else:
                fcntl.ioctl(ioctl_fd, AUTOFS_IOC_FAIL, token)
                f.write("triggered\n"); f.flush()
    os.close(ioctl_fd)
    subprocess.run(["umount", d])
    f.write("stopped\n")
PY
echo $! >>"$T/bg.pids"
disown $!
wait_for 10 grep -q ready "$T/autofs.log"
check "the stand-in for systemd holds an autofs mount at the mount point" \
	bash -c "findmnt -n -o FSTYPE --mountpoint $T/mnt | grep -qx autofs"

expect_rc "mount.dipole over the automount point is not 'busy'" 0 "" \
	timeout -s KILL 20 "$T/mount.dipole" r0 "$T/mnt" -o "$OPTS,_netdev,x-systemd.automount"
check "dipolefs is on top of the autofs mount" \
	bash -c "findmnt -n -o FSTYPE --mountpoint $T/mnt | tail -1 | grep -qx fuse.dipole"
check "status shows the mount" bash -c "dp() { $DIPOLE -c $T/r.res --node a --run-dir $RUN \"\$@\"; }; dp status r0 --json | grep -q '\"mountpoint\":\"$T/mnt\"'"
check "files go through it" bash -c "echo hello >$T/mnt/f && [ \"\$(cat $T/mnt/f)\" = hello ]"
expect_rc "a second mount there is refused (busy: dipolefs is on top now)" 3 "is busy" \
	timeout -s KILL 20 "$T/mount.dipole" r0 "$T/mnt" -o "$OPTS"

# systemd's part for real: the first access triggers the automount; the
# stand-in runs the helper in its own process group, as systemd runs
# mount(8), and only then answers the pending request. The helper mounts
# FUSE there itself and hands the descriptor to the daemon: a daemon that
# looked the path up would wait for the pending request (and the stand-in
# for the helper) until the 60 s timeout.
# The first access comes right after the umount, as in `systemctl stop
# mnt-swarm.mount; systemctl start mnt-swarm.automount; ls`: before the
# daemon's once-a-second look has seen the umount.
check "unmount to try as systemd would" umount "$T/mnt"
printf '["%s", "r0", "%s", "-o", "%s"]' "$T/mount.dipole" "$T/mnt" "$OPTS,_netdev,x-systemd.automount" \
	>"$T/autofs.stop.ondemand"
check "the first access waits for the automount, then reads the file through dipolefs" \
	bash -c "[ \"\$(timeout -s KILL 40 cat $T/mnt/f)\" = hello ]"
check "the helper, run for the pending request, succeeded (exit 0)" \
	bash -c "grep -qx 'rc 0' $T/autofs.stop.ondemand.out || { cat $T/autofs.stop.ondemand.out; false; }"
check "dipolefs is on top of the autofs mount, as the helper's mount" \
	bash -c "findmnt -n -o FSTYPE,SOURCE --mountpoint $T/mnt | tail -1 | grep -qx 'fuse.dipole *dipole:r0'"
check "status shows the mount" bash -c "$DIPOLE -c $T/r.res --node a --run-dir $RUN status r0 --json | grep -q '\"mountpoint\":\"$T/mnt\"'"
check "writes go through it" bash -c "echo again >$T/mnt/g && [ \"\$(cat $T/mnt/g)\" = again ]"
check "the daemon holds the helper's /dev/fuse descriptor (one more)" test "$(nfuse)" = $((FUSE0 + 1))
check "plain umount of the helper's mount" umount "$T/mnt"
wait_for 5 bash -c "$DIPOLE -c $T/r.res --node a --run-dir $RUN status r0 --json | grep -q '\"fs\":null'"
check "the daemon saw it (fs null)" \
	bash -c "$DIPOLE -c $T/r.res --node a --run-dir $RUN status r0 --json | grep -q '\"fs\":null'"
check "and let go of the descriptor" test "$(nfuse)" = "$FUSE0"
check "the autofs point stays" bash -c "findmnt -n -o FSTYPE --mountpoint $T/mnt | grep -qx autofs"
check "mounted again from another process group" timeout -s KILL 20 "$T/mount.dipole" r0 "$T/mnt" -o "$OPTS"

# plain umount: the daemon lets go although autofs stays mounted there
check "plain umount" umount "$T/mnt"
wait_for 5 bash -c "$DIPOLE -c $T/r.res --node a --run-dir $RUN status r0 --json | grep -q '\"fs\":null'"
check "the daemon saw the umount (fs null)" \
	bash -c "$DIPOLE -c $T/r.res --node a --run-dir $RUN status r0 --json | grep -q '\"fs\":null'"
check "and letting go left systemd's autofs point alone" \
	bash -c "findmnt -n -o FSTYPE --mountpoint $T/mnt | grep -qx autofs"

# mounted again, then umount and down at once: down is not refused
check "mount again" timeout -s KILL 20 "$T/mount.dipole" r0 "$T/mnt" -o "$OPTS"
check "the file is still there" grep -qx hello "$T/mnt/f"
expect_rc "umount then down at once (systemd's stop order): down succeeds" 0 "" \
	bash -c "umount $T/mnt && $DIPOLE -c $T/r.res --node a --run-dir $RUN down r0"
check "the autofs point is still there after down" \
	bash -c "findmnt -n -o FSTYPE --mountpoint $T/mnt | grep -qx autofs"
check "the mount helper, the daemon and dipolefs never triggered the automount" \
	bash -c "! grep -q triggered $T/autofs.log"
# the control: a look inside does trigger it (so the check above can fail)
timeout -s KILL 10 ls "$T/mnt/" >/dev/null 2>&1
check "(control: listing the directory triggers the automount)" grep -q triggered "$T/autofs.log"
# a first access with the resource down: the helper's own mount is not
# left behind (a FUSE mount nobody serves would hang its users)
printf '["%s", "r0", "%s", "-o", "%s"]' "$T/mount.dipole" "$T/mnt" "$OPTS,_netdev,x-systemd.automount" \
	>"$T/autofs.stop.ondemand"
rm -f "$T/autofs.stop.ondemand.out"
timeout -s KILL 40 ls "$T/mnt/" >/dev/null 2>&1
check "a first access with the resource down: the helper says it is not up (exit 3)" \
	bash -c "grep -qx 'rc 3' $T/autofs.stop.ondemand.out && grep -q 'not up' $T/autofs.stop.ondemand.out"
check "and took its FUSE mount away again: the autofs point is on top" \
	bash -c "findmnt -n -o FSTYPE --mountpoint $T/mnt | tail -1 | grep -qx autofs &&
		! findmnt -n -o FSTYPE --mountpoint $T/mnt | grep -q fuse"
touch "$T/autofs.stop"
wait_for 10 grep -q stopped "$T/autofs.log"
check "(the autofs stand-in is gone)" bash -c "! findmnt --mountpoint $T/mnt >/dev/null"
# and a plain directory still works as before
check "up again" dp up r0
check "primary" dp primary r0
expect_rc "a mount on a plain directory" 0 "" timeout -s KILL 20 "$T/mount.dipole" r0 "$T/plain" -o "$OPTS"
expect_rc "down refused while mounted (no umount)" 3 "refusing to go down.*mounted" dp down r0
check "umount" umount "$T/plain"
check "down" dp down r0
finish
