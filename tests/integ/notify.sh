#!/usr/bin/env bash
# sd_notify (src/daemon/service.c): `up --foreground` under a service
# manager's NOTIFY_SOCKET sends READY=1 only once the resource is up (the
# NBD socket serves, the control socket answers), and STATUS= lines; a
# failed start sends no READY=1 and says why; without --foreground or
# without NOTIFY_SOCKET nothing is sent. The manager is a python3 datagram
# socket that records each message with what it found at that moment.
. "$(dirname "$0")/lib.sh"
mkres 64M
dp create-md r0 >/dev/null 2>&1

# listen SOCK OUT: receive datagrams on SOCK; at each READY=1, check the
# resource is up right then (socket connects and answers NBD's greeting,
# `status` exits 0), record it, and stop at READY=1 or after 60 s
listen() {
	python3 - "$1" "$2" "$DIPOLE" "$T/r.res" "$RUN" <<'PY' &
import os, socket, subprocess, sys, time
path, out, dipole, cfg, run = sys.argv[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(1)
with open(out, "w") as f:
    f.write("listening\n"); f.flush()
    end = time.time() + 60
    while time.time() < end:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            continue
        for line in msg.split("\n"):
            f.write("msg " + line + "\n")
        if "READY=1" in msg.split("\n"):
            # what a client finds at this very moment
            try:
                c = socket.socket(socket.AF_UNIX); c.settimeout(5)
                c.connect(run + "/r0.nbd")
                greet = c.recv(8)
                f.write("nbd " + ("serving" if greet == b"NBDMAGIC" else "bad greeting") + "\n")
            except OSError as e:
                f.write("nbd not serving: %s\n" % e)
            rc = subprocess.run([dipole, "-c", cfg, "--node", "a", "--run-dir", run, "status", "r0"],
                                capture_output=True).returncode
            f.write("status-rc %d\n" % rc)
            break
        f.flush()
    f.write("done\n")
PY
	echo $! >>"$T/bg.pids"
	disown $!
	wait_for 10 grep -q listening "$2"
}

# 1. up --foreground with NOTIFY_SOCKET: READY=1 once up, STATUS= before and with it
listen "$T/notify.sock" "$T/n1"
NOTIFY_SOCKET=$T/notify.sock "$DIPOLE" -c "$T/r.res" --node a --run-dir "$RUN" up r0 --foreground --device none \
	>"$T/fg.out" 2>&1 &
fg=$!
echo $fg >>"$T/bg.pids"
wait_for 60 grep -q '^done' "$T/n1"
check "READY=1 arrives" grep -qx 'msg READY=1' "$T/n1"
check "when READY=1 arrives the NBD socket serves" grep -qx 'nbd serving' "$T/n1"
check "when READY=1 arrives 'status' answers (exit 0)" grep -qx 'status-rc 0' "$T/n1"
check "STATUS= says the startup steps before READY=1, up to the last" \
	bash -c "sed -n '1,/READY=1/p' $T/n1 | grep -q '^msg STATUS=starting: attach the engine' &&
		sed -n '1,/READY=1/p' $T/n1 | grep -q '^msg STATUS=starting: give events the state line'"
check "READY=1 comes with a short state: role and disk" grep -qE '^msg STATUS=Secondary, disk [A-Za-z]+; b not connected' "$T/n1"
check "no startup step is announced after READY=1" \
	bash -c "! sed -n '/READY=1/,\$p' $T/n1 | grep -q 'starting:'"
check "the foreground daemon printed the ready line (the journal's)" grep -q "r0: up on a as Secondary" "$T/fg.out"

# 2. a state change shows in STATUS= within a second or so, then the stop
rm -f "$T/notify.sock"
python3 - "$T/notify.sock" "$T/n2" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(1)
end = time.time() + 60
with open(sys.argv[2], "w") as f:
    while time.time() < end:
        try:
            m = s.recv(4096).decode()
        except socket.timeout:
            continue
        f.write(m.replace("\n", " | ") + "\n"); f.flush()
        if "STOPPING=1" in m:
            break
PY
echo $! >>"$T/bg.pids"
disown $!
wait_for 10 test -S "$T/notify.sock"
# the running daemon read NOTIFY_SOCKET at startup: it still names this path
dp primary r0 --force >/dev/null 2>&1
wait_for 10 grep -q 'STATUS=Primary, disk UpToDate' "$T/n2"
check "STATUS= follows a role change" grep -q 'STATUS=Primary, disk UpToDate' "$T/n2"
expect_rc "down stops the foreground daemon" 0 "" dp down r0
wait_for 10 grep -q STOPPING=1 "$T/n2"
check "down sends STOPPING=1 with a status" grep -q 'STOPPING=1 | STATUS=stopping' "$T/n2"
wait_for 20 bash -c "! kill -0 $fg 2>/dev/null"
wait $fg
check "the foreground daemon exits 0 after down" test $? -eq 0

# 3. a start that fails: no READY=1, STATUS= names the failure, exit non-zero
rm -f "$T/notify.sock"
listen "$T/notify.sock" "$T/n3"
sed 's|disk '"$T"'/a.img|disk '"$T"'/missing.img|' "$T/r.res" >"$T/bad.res"
NOTIFY_SOCKET=$T/notify.sock "$DIPOLE" -c "$T/bad.res" --node a --run-dir "$RUN" up r0 --foreground --device none \
	>"$T/bad.out" 2>&1
rc=$?
check "a failing foreground start exits non-zero" test $rc -ne 0
wait_for 3 grep -q 'STATUS=failed' "$T/n3"
check "a failing start says so in STATUS=" grep -q '^msg STATUS=failed to attach the engine' "$T/n3"
check "a failing start never sends READY=1" bash -c "! grep -q READY=1 $T/n3"
check "the cause is on stderr (the journal)" grep -q "missing.img" "$T/bad.out"

# a unit for a resource that does not exist: exit 2 (no restart: the unit's
# RestartPreventExitStatus), the cause and the fix on stderr, no READY=1
rm -f "$T/notify.sock"
listen "$T/notify.sock" "$T/n3b"
NOTIFY_SOCKET=$T/notify.sock "$DIPOLE" -c "$T/r.res" --node a --run-dir "$RUN" up nosuch --foreground \
	>"$T/nosuch.out" 2>&1
check "up --foreground of an unknown resource exits 2" test $? -eq 2
check "naming the cause and the resources known" grep -q "no resource 'nosuch'.*" "$T/nosuch.out"
check "and never sends READY=1" bash -c "sleep 0.5; ! grep -q READY=1 $T/n3b"
check "the unit does not restart on exit 2 or 3" grep -qx 'RestartPreventExitStatus=2 3' "$ROOT/systemd/dipole@.service"

# 4. a forking up (no --foreground) with NOTIFY_SOCKET set sends nothing:
# whoever runs it waits for `up` to return, not for a notification
rm -f "$T/notify.sock"
listen "$T/notify.sock" "$T/n4"
NOTIFY_SOCKET=$T/notify.sock dp up r0 --device none >/dev/null 2>&1
check "a forking up still works" dp status r0
sleep 1.5 # the daemon would have sent STATUS= within a second
check "a forking up sends no notification" bash -c "! grep -q '^msg' $T/n4"
dp down r0 >/dev/null 2>&1

# 5. --foreground without NOTIFY_SOCKET: as before (ready line, down works)
env -u NOTIFY_SOCKET "$DIPOLE" -c "$T/r.res" --node a --run-dir "$RUN" up r0 --foreground --device none \
	>"$T/plain.out" 2>&1 &
fg=$!
echo $fg >>"$T/bg.pids"
wait_for 30 grep -q "up on a" "$T/plain.out"
check "--foreground without NOTIFY_SOCKET comes up" dp status r0
expect_rc "and goes down" 0 "" dp down r0
wait_for 20 bash -c "! kill -0 $fg 2>/dev/null"

# 6. a diskless tiebreaker: the same unit, READY=1 with its state
PORT3=$(free_port)
cat >"$T/r3.res" <<EOT
resource r0 {
    options { quorum majority; }
    on a { address 127.0.0.1:$PORT; disk $T/a.img; }
    on b { address 127.0.0.2:$PORT; disk $T/b.img; }
    on c { address 127.0.0.3:$PORT3; disk none; }
}
EOT
rm -f "$T/notify.sock"
python3 - "$T/notify.sock" "$T/n6" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(1)
end = time.time() + 60
with open(sys.argv[2], "w") as f:
    while time.time() < end:
        try:
            m = s.recv(4096).decode()
        except socket.timeout:
            continue
        f.write(m.replace("\n", " | ") + "\n"); f.flush()
        if "READY=1" in m:
            break
PY
echo $! >>"$T/bg.pids"
disown $!
wait_for 10 test -S "$T/notify.sock"
NOTIFY_SOCKET=$T/notify.sock "$DIPOLE" -c "$T/r3.res" --node c --run-dir "$T/rc" up r0 --foreground \
	>"$T/tb.out" 2>&1 &
tb=$!
echo $tb >>"$T/bg.pids"
wait_for 30 grep -q READY=1 "$T/n6"
check "a diskless tiebreaker sends READY=1 with its state" grep -q 'READY=1 | STATUS=tiebreaker (votes only)' "$T/n6"
expect_rc "and goes down" 0 "" "$DIPOLE" -c "$T/r3.res" --node c --run-dir "$T/rc" down r0
wait_for 20 bash -c "! kill -0 $tb 2>/dev/null"
finish
