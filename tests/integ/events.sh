#!/usr/bin/env bash
# `dipole events` streams every state transition as it happens: on a
# Secondary during its initial sync it sees, in order, Connecting ->
# Connected, Established -> StartingSyncT -> SyncTarget -> Established and
# Inconsistent -> UpToDate, StartingSyncT included although it lasts far
# less than any polling interval.
. "$(dirname "$0")/lib.sh"
mknet2
mkres2 16M "protocol C;"
na create-md r0 >/dev/null 2>&1
nb create-md r0 >/dev/null 2>&1
EV=$T/ev.b

expect_rc "events on a resource that is not up says down" 0 "r0 down" na events r0 --once
expect_rc "up b" 0 "up on b" nb up r0 --device none
nsenter --net=/run/netns/$NS_B "$DIPOLE" -c "$T/r.res" --node b --run-dir "$T/rb" events r0 >"$EV" 2>&1 &
EVPID=$!
echo $EVPID >>"$T/bg.pids"
check "events starts with the current state line" \
	wait_for 10 grep -q "r0 role:Secondary disk:Inconsistent peer:a connection:Connecting" "$EV"
check "status is served while events streams" nb status r0
expect_rc "up a" 0 "up on a" na up r0 --device none
check "connected" wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
expect_rc "primary --force on a" 0 "" na primary r0 --force
check "b's initial sync completes" wait_for 60 jcheck b "o['disk'] == 'UpToDate' and p['replication'] == 'Established'"
check "the final state line follows" \
	wait_for 10 grep -q "r0 role:Secondary disk:UpToDate peer:a connection:Connected peer-role:Primary peer-disk:UpToDate replication:Established" "$EV"

# line number of the first line matching a pattern after line $2 (0 if none)
at() { awk -v p="$1" -v from="${2:-0}" 'NR > from && index($0, p) { print NR; exit }' "$EV" | grep . || echo 0; }
conn=$(at "change connection name:r0 peer:a old:Connecting new:Connected")
est=$(at "change replication name:r0 peer:a old:Off new:Established" "$conn")
start=$(at "change replication name:r0 peer:a old:Established new:StartingSyncT" "$est")
tgt=$(at "change replication name:r0 peer:a old:StartingSyncT new:SyncTarget" "$start")
disk=$(at "change disk name:r0 old:Inconsistent new:UpToDate" "$tgt")
done_=$(at "change replication name:r0 peer:a old:SyncTarget new:Established" "$tgt")
ordered() { [ "$conn" -gt 0 ] && [ "$est" -gt "$conn" ] && [ "$start" -gt "$est" ] && [ "$tgt" -gt "$start" ] &&
	[ "$disk" -gt "$tgt" ] && [ "$done_" -gt "$tgt" ]; }
check "in order: Connecting->Connected, Off->Established->StartingSyncT->SyncTarget->Established, Inconsistent->UpToDate" ordered

us() { sed -n "${1}p" "$EV" | sed 's/.*time-us:\([0-9]*\).*/\1/'; }
short() { local d=$(( $(us "$tgt") - $(us "$start") )); echo "StartingSyncT lasted ${d} us"; [ "$d" -ge 0 ] && [ "$d" -lt 200000 ]; }
check "StartingSyncT, shorter than the old 200 ms poll, is reported" short
gapless() { grep -o ' seq:[0-9]*' "$EV" | cut -d: -f2 | awk 'NR > 1 && $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit bad }'; }
check "sequence numbers have no gaps and nothing was lost" bash -c "$(declare -f gapless); EV=$EV; gapless && ! grep -q ' lost ' $EV"
check "every change line says why" bash -c "! grep ' change ' '$EV' | grep -v 'why:\"[^\"]'"

expect_rc "events --once prints the current state" 0 "r0 role:Secondary disk:UpToDate peer:a connection:Connected" nb events r0 --once
expect_rc "down a" 0 "" na down r0
check "b streams a's going away: Connected -> Connecting, peer-role Primary -> Unknown" \
	wait_for 10 grep -q "change peer-role name:r0 peer:a old:Primary new:Unknown" "$EV"
check "b's events does not mix in anything refused as illegal" bash -c "! grep -rq 'BUG:' '$T/rb'"
expect_rc "down b" 0 "" nb down r0
check "events reports b down and keeps running" wait_for 10 grep -q " r0 down$" "$EV"
check "events is still running" kill -0 "$EVPID"
kill "$EVPID" 2>/dev/null
finish
