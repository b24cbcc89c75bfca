#!/usr/bin/env bash
# The dipolefs fault checker (tests/fschecker.py, docs/dipolefs.md "Fault
# checker"), bounded: two nodes, protocol C, a shared secret; a mounted as
# owner with a volatile disk cache (a power cut loses what was not
# flushed), b as client. FSCHECK_SECONDS (default 50) of workers on both
# mounts under the nemesis (b's daemon killed and remounted, the link cut
# and healed, workers killed mid-operation), then a's power cut, b promoted
# by hand, every acknowledged operation checked on b, a back as b's sync
# target, fsck and byte-identical replicas. The seed is printed; rerun with
# FSCHECK_SEED=N to replay the same schedule.
. "$(dirname "$0")/lib.sh"
FSCHECK_SEED=${FSCHECK_SEED:-$((RANDOM * 32768 + RANDOM))}
echo "# fschecker: FSCHECK_SEED=$FSCHECK_SEED (rerun with it to replay the schedule)"
export FSCHECK_SEED
# A worker restarted just before the owner's power cut sees its mount
# lazily unmounted: its path then names the bare mountpoint directory of
# the host. It must not recreate its directory there and acknowledge work
# that never went through dipolefs (seed 933000843 once "lost" 330 rows so).
mkdir -p "$T/gone"
timeout -k 2 3 python3 "$ROOT/tests/fschecker.py" --worker "$T/gone/a1" a1 "$T/gone.journal" 1 >/dev/null 2>&1
check "a worker whose mount is gone creates nothing under the bare mountpoint" eval 'test -z "$(ls -A "$T/gone")"'
check "... and acknowledges nothing" eval '! grep -q "\"a\":1" "$T/gone.journal"'
mknet2
mkres2 128M 'protocol C; shared-secret "fschecker";'
mkdir -p "$T/ma" "$T/mb"
echo volatile >"$T/faults.a"
: >"$T/faults.b"
na_f() { DIPOLE_FAULTS=$T/faults.a na "$@"; }
nb_f() { DIPOLE_FAULTS=$T/faults.b nb "$@"; }
na create-md r0 --force >/dev/null 2>&1 && nb create-md r0 --force >/dev/null 2>&1
check "a and b up" eval 'na_f up r0 >/dev/null && nb_f up r0 >/dev/null'
check "connected" wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
check "a Primary, b UpToDate" eval 'na primary r0 --force >/dev/null 2>&1 && wait_for 60 jcheck b "o[\"disk\"] == \"UpToDate\""'
expect_rc "mkfs on a" 0 "" na mkfs r0
expect_rc "mount on a: owner" 0 "as owner" na mount r0 "$T/ma"
# b restarted (killed) while cut off from the owner must not own a stale
# copy: mount waits until it has talked to a (docs/startup.md's rule)
cutb() { ip netns exec "$NS_B" iptables "$1" INPUT -i "$VETH_B" -j DROP; ip netns exec "$NS_B" iptables "$1" OUTPUT -o "$VETH_B" -j DROP; }
cutb -I
kill -9 "$(cat "$T/rb/r0.pid")"
check "b restarted while cut off from a" eval 'nb_f up r0 >/dev/null'
expect_rc "mount on b before it talked to a: refused, no second owner" 3 "has not talked to its peer" nb mount r0 "$T/mb"
check "... b stays Secondary" jcheck b "o['role'] == 'Secondary' and o['fs'] is None"
cutb -D
check "b reconnects to a" wait_for 60 jcheck b "p['connection'] == 'Connected' and o['disk'] == 'UpToDate'"
expect_rc "mount on b: client of a" 0 "as client of a" nb mount r0 "$T/mb"
echo x >"$T/ma/probe"
cutb -I
# a silent owner: once the replication link times out, a call through b
# fails (ENOTCONN) instead of waiting for TCP to give up (~15 min)
check "link cut: a call through b fails instead of hanging" eval \
	"timeout -k 5 30 cat $T/mb/probe >$T/probe.out 2>&1; test \$? = 1 && grep -q 'not connected' $T/probe.out"
cutb -D
check "healed: b reads through its mount again" wait_for 60 grep -q x "$T/mb/probe"
T=$T NS_A=$NS_A NS_B=$NS_B VETH_A=$VETH_A VETH_B=$VETH_B DIPOLE=$DIPOLE CFG=$T/r.res MA=$T/ma MB=$T/mb \
	FSCHECK_SECONDS=${FSCHECK_SECONDS:-50} timeout 800 python3 "$ROOT/tests/fschecker.py" || FAILED=1
# a failure in CI leaves only this output: the daemons' last words with it
if [ $FAILED = 1 ]; then
	for n in a b; do tail -n 60 "$T/r$n/r0.log" 2>/dev/null | sed "s/^/# $n.log: /"; done
fi
if [ $FAILED = 1 ] && [ -n "${FSCHECK_KEEP:-}" ]; then
	mkdir -p "$FSCHECK_KEEP" && cp "$T"/journal.* "$T"/worker.*.err "$FSCHECK_KEEP/" 2>/dev/null; cp "$T/ra/r0.log" "$FSCHECK_KEEP/a.log"; cp "$T/rb/r0.log" "$FSCHECK_KEEP/b.log"
fi
for n in a b; do
	mountpoint -q "$T/m$n" && "n$n" umount "$T/m$n" >/dev/null 2>&1
	"n$n" down r0 --force >/dev/null 2>&1
done
finish
