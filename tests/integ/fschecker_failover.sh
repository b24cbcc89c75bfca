#!/usr/bin/env bash
# The dipolefs fault checker with its failover nemesis (tests/fsfailover.py,
# docs/dipolefs.md "Fault checker"), bounded: a and b with disks, c a
# diskless tiebreaker (quorum majority), both disk nodes mounted, workers
# on both. FSCHECK_SECONDS (default 20) of the nemesis: the owner's daemon
# SIGKILLed (the other takes over, the killed one restarts and mounts as a
# client), the owner's power cut (its links silent, then SIGKILL), the
# client's daemon SIGKILLed, the a-b link cut and healed, `fs move`,
# workers killed; a and b have volatile disk caches, so each SIGKILL loses
# what the daemon had not flushed; each of kill-owner, power-cut-owner, cut-link and move
# at least once. Then every acknowledged operation is checked through both
# mounts, fsck of both replicas, byte-identical replicas. The seed is printed;
# rerun with FSCHECK_SEED=N to replay the same schedule.
. "$(dirname "$0")/lib.sh"
FSCHECK_SEED=${FSCHECK_SEED:-$((RANDOM * 32768 + RANDOM))}
echo "# fschecker_failover: FSCHECK_SEED=$FSCHECK_SEED (rerun with it to replay the schedule)"
export FSCHECK_SEED
mknet3
NET_OPTS='protocol C; shared-secret "fsfailover";' mkres3 128M
mkdir -p "$T/ma" "$T/mb"
# volatile disk caches on a and b (src/store/disk.c): what a daemon holds
# unflushed dies with it, so every SIGKILL is a power cut for its disk too
for n in a b c; do echo volatile >"$T/faults.$n"; done
DIPOLE_FAULTS=$T/faults.a fs3_start
expect_rc "mount on b: client of a" 0 "as client of a" nb mount r0 "$T/mb"
T=$T NS_A=$NS_A NS_B=$NS_B NS_C=$NS_C LINK_AB=vab$$ LINK_BA=vba$$ DIPOLE=$DIPOLE CFG=$T/r.res MA=$T/ma MB=$T/mb \
	FSCHECK_SECONDS=${FSCHECK_SECONDS:-20} timeout 800 python3 "$ROOT/tests/fsfailover.py" || FAILED=1
# a failure in CI leaves only this output: the daemons' last words with it
if [ $FAILED = 1 ]; then
	for n in a b c; do tail -n 60 "$T/r$n/r0.log" 2>/dev/null | sed "s/^/# $n.log: /"; done
fi
if [ $FAILED = 1 ] && [ -n "${FSCHECK_KEEP:-}" ]; then
	mkdir -p "$FSCHECK_KEEP" && cp "$T"/journal.* "$T"/worker.*.err "$FSCHECK_KEEP/" 2>/dev/null
	for n in a b c; do cp "$T/r$n/r0.log" "$FSCHECK_KEEP/$n.log"; done
fi
for n in a b; do mountpoint -q "$T/m$n" && "n$n" umount "$T/m$n" >/dev/null 2>&1; done
for n in a b c; do "n$n" down r0 --force >/dev/null 2>&1; done
finish
