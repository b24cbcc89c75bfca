#!/usr/bin/env bash
# dipolefs under systemd's automount (fstab's x-systemd.automount): the
# mount point then holds an autofs mount before dipolefs goes over it and
# after it comes off. Here a python3 holder plays systemd's part (autofs in
# direct mode, its own process group). The mount helper must take the autofs
# point as free and must not trigger it (that would deadlock a real boot:
# systemd waits for the helper, the helper for systemd); a plain umount(8)
# must still be seen by the daemon; and `down` right after the umount (what
# systemd does: stop the mount unit, then ExecStop) must not be refused. Run
# the way systemd runs a mount for an automount request (in the
# automounter's process group), the helper refuses at once: the daemon
# could not mount there without waiting for that very request
# (docs/dipolefs.md "At boot").
. "$(dirname "$0")/lib.sh"
mkres 64M
mkdir -p "$T/mnt" "$T/plain"
ln -s "$DIPOLE" "$T/mount.dipole"
OPTS="config=$T/r.res,node=a,run-dir=$RUN"
dp create-md r0 >/dev/null 2>&1
check "up" dp up r0
check "primary --force" dp primary r0 --force
check "mkfs" dp mkfs r0
python3 - "$T/mnt" "$T/autofs.log" "$T/autofs.stop" <<'PY' &
# systemd's part: an autofs mount (direct) in a process group of its own;
# every request is logged and failed at once (AUTOFS_IOC_FAIL), so that
# nothing waits; on the stop file it unmounts it (exempt from triggering)
import fcntl, json, os, select, struct, subprocess, sys
d, log, stop = sys.argv[1:]
run = stop + ".run"  # a command (JSON list) to run in this process group, as systemd runs mount(8)
os.setsid()  # a process group of its own: every other process triggers
r, w = os.pipe()
subprocess.run(["mount", "-t", "autofs", "-o", "fd=%d,pgrp=%d,minproto=5,maxproto=5,direct" % (w, os.getpgrp()),
                "dipole-test-automount", d], pass_fds=[w], check=True)
os.close(w)
ioctl_fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
AUTOFS_IOC_FAIL = 0x9361
with open(log, "a") as f:
    f.write("ready\n"); f.flush()
    while not os.path.exists(stop):
        if os.path.exists(run):
            cmd = json.load(open(run))
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            open(run + ".out", "w").write("rc %d\n%s" % (p.returncode, p.stderr))
            os.unlink(run)
        rl, _, _ = select.select([r], [], [], 0.2)
        if rl:
            pkt = os.read(r, 4096)
            token = struct.unpack_from("=I", pkt, 8)[0]  # autofs_v5_packet.wait_queue_token
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

# systemd runs mount(8), and so the helper, in its own process group, the
# one the automount point lets through: the daemon, which is not in it,
# would wait for the pending automount while mounting there (a deadlock
# until systemd's mount timeout), so the helper refuses at once, saying why
check "unmount to try as systemd would" umount "$T/mnt"
wait_for 5 bash -c "$DIPOLE -c $T/r.res --node a --run-dir $RUN status r0 --json | grep -q '\"fs\":null'"
printf '["%s", "r0", "%s", "-o", "%s"]' "$T/mount.dipole" "$T/mnt" "$OPTS,_netdev,x-systemd.automount" >"$T/autofs.stop.run"
wait_for 30 test -f "$T/autofs.stop.run.out"
check "the helper in the automounter's process group refuses at once (exit 3)" grep -qx 'rc 3' "$T/autofs.stop.run.out"
check "saying the automount point waits for this mount, and to mount at boot instead" \
	bash -c "grep -q 'automount point waiting for this mount' $T/autofs.stop.run.out &&
		grep -q 'drop x-systemd.automount' $T/autofs.stop.run.out"
check "nothing was mounted" bash -c "findmnt -n -o FSTYPE --mountpoint $T/mnt | grep -qx autofs"
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
