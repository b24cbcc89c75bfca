#!/usr/bin/env bash
# The activity log's fast paths under a crash (docs/failures.md): a
# sequential writer's extents are logged 8 to a record and evicted in
# batches; an evicted extent's bitmap page is written only when it holds
# marks, its data is flushed either way. Their slow branches are forced:
# al-extents 67 (a write past 268 MiB evicts), a random write (no
# look-ahead), writes that cross an extent and a bitmap page (128 MiB).
#   1. a degraded Primary (peer away) writes 400 MiB and more, never
#      flushes, and is killed: restarted, it marks at least every block the
#      peer missed, and the pair converges when the peer returns;
#   2. connected, with a volatile disk cache on a (unflushed writes die with
#      the process): a sequential writer evicts clean extents, a is killed,
#      and the pair converges byte for byte.
. "$(dirname "$0")/lib.sh"
mknet2
M=1048576
DISK_OPTS="al-extents 67;"
mkres2 512M "protocol C;"
check "pair comes up and syncs" pair_up
SIZE=$(na status r0 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['size_bytes'])")
identical() { test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"; }
oos() { na status r0 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['peers'][0]['out_of_sync_bytes'])"; }
nbdw() { python3 "$ROOT/tests/nbdwrite.py" "$T/ra/r0.nbd" r0 "$1" "$2" "$3"; }

# --- 1. degraded: everything written is marked, through a crash ----------
nb down r0 >/dev/null 2>&1
check "a is a degraded Primary" wait_for 20 jcheck a "p['connection'] != 'Connected' and o['role'] == 'Primary'"
# 400 MiB sequentially (100 extents: the log of 67 evicts, in batches; the
# bitmap page boundaries at 128, 256 and 384 MiB are crossed), no flush
check "400 MiB written sequentially, no flush" fio --name=seq --ioengine=nbd --uri="$(uri_a)" --rw=write --bs=1M \
	--iodepth=8 --size=400M --output=/dev/null
check "a write across an extent boundary" nbdw $((452 * M - 65536)) 131072 0x3c
check "a random 4 KiB write, first in its extent" nbdw $((500 * M + 12288)) 4096 0x3d
want=$((400 * M + 131072 + 4096))
check "before the crash: $want bytes out of sync" test "$(oos)" -ge $want
kill -9 "$(cat "$T/ra/r0.pid")"
check "a restarts after the crash" bash -c "nsenter --net=/run/netns/$NS_A $DIPOLE -c $T/r.res --node a --run-dir $T/ra up r0 --device none >$T/up.out 2>&1"
got=$(oos)
echo "# after the crash a marks $got bytes out of sync (wrote $want)"
check "every block the peer missed is still marked" test "$got" -ge $want
check "b returns" bash -c "nsenter --net=/run/netns/$NS_B $DIPOLE -c $T/r.res --node b --run-dir $T/rb up r0 --device none >/dev/null 2>&1"
check "a resyncs b" wait_for 60 both "p['connection']=='Connected' and p['out_of_sync_bytes']==0 and p['replication']=='Established'" "o['disk']=='UpToDate'"
# (the 4 KiB write at 500 MiB + 12 KiB, byte 0x3d, as b's disk has it now)
check "a's writes made while b was away reached b" bash -c \
	"dd if=$T/b.img bs=4096 skip=$((500 * 256 + 3)) count=1 2>/dev/null | tr -d '\075' | wc -c | grep -qx 0"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
check "replicas identical after the degraded crash" identical

# --- 2. connected, volatile cache on a: evicted clean extents ------------
echo volatile >"$T/fa"
check "both up again, a's disk with a volatile cache" bash -c \
	"DIPOLE_FAULTS=$T/fa nsenter --net=/run/netns/$NS_A $DIPOLE -c $T/r.res --node a --run-dir $T/ra up r0 --device none >/dev/null 2>&1 &&
	 nsenter --net=/run/netns/$NS_B $DIPOLE -c $T/r.res --node b --run-dir $T/rb up r0 --device none >/dev/null 2>&1"
check "connected" wait_for 30 both "p['connection']=='Connected' and p['out_of_sync_bytes']==0" "p['connection']=='Connected' and o['disk']=='UpToDate'"
na primary r0 >/dev/null 2>&1
check "400 MiB written sequentially while connected, no flush" fio --name=seq2 --ioengine=nbd --uri="$(uri_a)" \
	--rw=write --bs=1M --iodepth=8 --size=400M --offset=64M --buffer_pattern=0x7e --output=/dev/null
check "nothing out of sync while connected" jcheck a "p['out_of_sync_bytes'] == 0"
kill -9 "$(cat "$T/ra/r0.pid")"
check "b notices" wait_for 20 jcheck b "p['connection'] != 'Connected'"
check "a comes back (its cache lost)" bash -c "DIPOLE_FAULTS=$T/fa nsenter --net=/run/netns/$NS_A $DIPOLE -c $T/r.res --node a --run-dir $T/ra up r0 --device none >/dev/null 2>&1"
check "they resync what may have been in flight" \
	wait_for 60 both "p['connection']=='Connected' and p['out_of_sync_bytes']==0 and p['replication']=='Established'" \
	"p['connection']=='Connected' and o['disk']=='UpToDate'"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
check "replicas identical after the crash with a volatile cache" identical
finish
