#!/usr/bin/env bash
# The control socket spoken to directly (raw request lines, as the CLI never
# sends them): unknown commands and options are refused by name with exit
# code 2 and change nothing. And a startup that fails after the fork undoes
# every step it had started.
. "$(dirname "$0")/lib.sh"
mkres 64M
dp create-md r0 >/dev/null 2>&1

# ctl LINE : send LINE to the daemon's control socket, print the reply
ctl() {
	python3 - "$RUN/r0.ctl" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(10)
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    buf += b
sys.stdout.write(buf.decode())
PY
}
# reply_is NAME LINE PATTERN : the reply to LINE matches PATTERN (grep -E)
reply_is() {
	ctl "$2" >"$T/reply" 2>&1
	if grep -qE -- "$3" "$T/reply"; then ok "$1"; else notok "$1"; sed 's/^/    | /' "$T/reply" | head -5; fi
}

expect_rc "up" 0 "up on a" dp up r0 --device none
reply_is "a known request is served" "state" "^0 $"
reply_is "an unknown command is refused with exit 2, naming it" "frobnicate --now" \
	"^2 unknown control request 'frobnicate --now'$"
reply_is "a command is a whole word, not a prefix" "primaryx" "^2 unknown control request 'primaryx'$"
reply_is "an unknown option is refused with exit 2, naming it" "primary --forcefully" \
	"^2 unknown option '--forcefully' for control request 'primary'$"
reply_is "an option another command takes is unknown here" "status --force" \
	"^2 unknown option '--force' for control request 'status'$"
reply_is "a stray argument is refused" "down now" "^2 unexpected argument 'now' in control request 'down'$"
ctl state >"$T/state"
check "refused requests changed nothing (still Secondary)" grep -q "role:Secondary" "$T/state"
reply_is "an allowed option is taken" "primary --force" "^0 $"
reply_is "down with an unknown option does not go down" "down --fast" "^2 unknown option '--fast'"
expect_rc "the daemon still answers" 0 "role:Primary" dp status r0
expect_rc "down" 0 "" dp down r0

# a device link that cannot be created: the exports fail in the daemon,
# after the fork; what had started (engine, FUSE, loop device) is undone
expect_rc "up fails when the device link cannot be created" 1 "cannot create device link $T/nodir/r0" \
	dp up r0 --device "$T/nodir/r0"
wait_for 10 bash -c "! [ -e $RUN/r0.pid ]"
check "a failed startup leaves no runtime files" \
	bash -c "! [ -e $RUN/r0.nbd ] && ! [ -e $RUN/r0.ctl ] && ! [ -e $RUN/r0.pid ]"
check "nor a loop device" bash -c "! grep -qs '^$T' /sys/block/loop*/loop/backing_file"
dp up r0 --device none >"$T/up.out" 2>&1
check "the next up finds the disk detached cleanly" bash -c "grep -q 'up on a' $T/up.out && ! grep -q 'not detached cleanly' $T/up.out"
dp down r0 >/dev/null 2>&1
finish
