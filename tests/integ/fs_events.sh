#!/usr/bin/env bash
# `dipole events` streams the filesystem's events (issue 14 item 7,
# src/fs/fsevents.h, docs/dipolefs.md "Events") in order with the block
# layer's transitions: on the owner, fs:owner when it starts serving (on
# demand for a client, or mounted here) and stops, with the reason,
# fs:client when a client connects and goes, and fs:grace when a lock grace
# period begins and runs out (its early end: fs_reclaim.sh). Failover and
# per-client reclaim events come from the failover and lock-reclaim code;
# their lines are checked in tests/unit/test_fsevents.c.
. "$(dirname "$0")/lib.sh"
mknet2
mkres2 64M "protocol C; shared-secret \"ev\";"
mkdir -p "$T/ma" "$T/mb"
EV=$T/ev.a

na create-md r0 --force >/dev/null 2>&1 && nb create-md r0 --force >/dev/null 2>&1
check "a and b up" eval 'na up r0 >/dev/null && nb up r0 >/dev/null'
check "connected" wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
check "a Primary, b synced, ext4 made" eval \
	'na primary r0 --force >/dev/null 2>&1 && wait_for 60 jcheck b "o[\"disk\"] == \"UpToDate\"" && na mkfs r0 >/dev/null 2>&1'
nsenter --net=/run/netns/$NS_A "$DIPOLE" -c "$T/r.res" --node a --run-dir "$T/ra" events r0 >"$EV" 2>&1 &
echo $! >>"$T/bg.pids"
check "events streams on a" wait_for 10 grep -q "r0 role:Primary" "$EV"

# line number of the first line matching a pattern after line $2 (0 if none)
at() { awk -v p="$1" -v from="${2:-0}" 'NR > from && index($0, p) { print NR; exit }' "$EV" | grep . || echo 0; }
has_after() { [ "$(at "$1" "${2:-0}")" -gt 0 ]; }

expect_rc "b mounts first: client of a, which serves on demand" 0 "as client of a" nb mount r0 "$T/mb"
check "a: fs:owner none -> serving, a client asked" wait_for 10 has_after \
	'change fs:owner name:r0 node:a old:none new:serving why:"a client asked: serving without a mount here"'
check "a: fs:client b connected, from b's address" wait_for 10 has_after \
	"change fs:client name:r0 peer:b old:disconnected new:connected why:\"from $IP_B:"
serving=$(at "change fs:owner name:r0 node:a old:none new:serving")
conn=$(at "change fs:client name:r0 peer:b old:disconnected new:connected")
check "... serving comes before the client's connection" test "$serving" -gt 0 -a "$conn" -gt "$serving"
expect_rc "a mounts: owner, already serving" 0 "as owner" na mount r0 "$T/ma"
check "... no second fs:owner for a mount added to what serves" eval \
	"[ \$(grep -c 'change fs:owner' '$EV') = 1 ]"
echo data >"$T/ma/f"
check "b reads a's file" wait_for 10 grep -q data "$T/mb/f"
expect_rc "b unmounts" 0 "" nb umount "$T/mb"
check "a: fs:client b disconnected" wait_for 10 has_after \
	'change fs:client name:r0 peer:b old:connected new:disconnected' "$conn"
expect_rc "a unmounts" 0 "" na umount "$T/ma"
check "a: fs:owner serving -> none, with the reason" wait_for 10 has_after \
	'change fs:owner name:r0 node:a old:serving new:none why:"dipole umount"'
expect_rc "a mounts again (lock grace period 2 s)" 0 "as owner" na mount r0 "$T/ma" -o grace=2
check "a: fs:owner none -> serving, mounted here" wait_for 10 has_after \
	"change fs:owner name:r0 node:a old:none new:serving why:\"mounted at $T/ma as owner\""
# a grace period expecting b, which never reclaims (it is not mounted): it runs out
check "a begins a lock grace period expecting b" ctl a "fs-grace --expect=2"
check "a: fs:grace on, 2 s, one node expected" wait_for 10 has_after \
	'change fs:grace name:r0 old:off new:on duration-ms:2000 clients:1 why:"only reclaims are granted"'
check "a: fs:grace off once it ran out, nothing reclaimed" wait_for 10 has_after \
	'change fs:grace name:r0 old:on new:off reclaimed:0 refused:0 why:"expired"'
check "... once" eval "[ \$(grep -c 'change fs:grace name:r0 old:on new:off' '$EV') = 1 ]"
gapless() { grep -o ' seq:[0-9]*' "$EV" | cut -d: -f2 | awk 'NR > 1 && $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit bad }'; }
check "sequence numbers have no gaps: fs events share the block layer's log" \
	bash -c "$(declare -f gapless); EV=$EV; gapless && ! grep -q ' lost ' $EV"
check "every fs line carries seq and time-us" bash -c "! grep ' change fs:' '$EV' | grep -v ' seq:[0-9]* time-us:[0-9]*$'"
expect_rc "umount a" 0 "" na umount "$T/ma"
finish
