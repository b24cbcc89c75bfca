#!/usr/bin/env bash
# startup { become-primary-on; wfc-timeout; degr-wfc-timeout; } as DRBD users
# expect (docs/startup.md): a restarted node talks to a reachable peer before
# it becomes Primary; one that crashed while the peer carried on rejoins as
# SyncTarget and is Primary only afterwards (the guide's setup, case 07);
# with no peer reachable it waits the configured timeout and promotes only
# when it cannot have fallen behind, saying why otherwise. States and data
# are asserted, never timings.
. "$(dirname "$0")/lib.sh"
mknet2
SIZE=268386304
M=1048576
mkres2 256M "protocol C; allow-two-primaries; after-sb-0pri discard-zero-changes; after-sb-1pri discard-secondary; after-sb-2pri disconnect;"
# startup SETTINGS: the startup section of $T/r.res
startup() { sed -i '/^    startup {/d; s/^    disk {/    startup { '"$1"' }\n    disk {/' "$T/r.res"; }
startup "become-primary-on both; wfc-timeout 3; degr-wfc-timeout 2;"
w() { qemu-io -f raw -c "write -P $2 $(($3 * M)) 1M" -c flush "$(uri_$1)" >/dev/null 2>&1; }
r() { qemu-io -f raw -r -c "read -P $2 $(($3 * M)) 1M" "$(uri_$1)" >/dev/null 2>&1; }
identical() { test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"; }
kill_b() { kill -9 "$(head -1 "$T/rb/r0.pid")"; }
no_sb() { both "p['split_brains'] == 0" "p['split_brains'] == 0"; }
prim() { jcheck "$1" "o['role'] == 'Primary'"; }
# both Primary, connected, in sync, no split brain
settled() { both "o['role']=='Primary' and p['replication']=='Established' and p['out_of_sync_bytes']==0" \
	"o['role']=='Primary' and o['disk']=='UpToDate' and p['replication']=='Established'"; }

check "pair comes up and syncs" pair_up
check "become-primary-on did not promote b's fresh (Inconsistent) disk, and says so" \
	jcheck b "o['role']=='Secondary' and 'was Inconsistent at startup' in o['startup']['reason']"
check "b's log says it waits as a node never connected since create-md" grep -q 'not been connected since create-md' "$T"/rb/*.log
expect_rc "b becomes Primary too" 0 "" nb primary r0
# the declined promotion is history once b is Primary by hand: status
# (text and state line) no longer reports it; --json keeps the record
check "b, Primary now, no longer says it was not promoted" bash -c "$(declare -f nb); NS_B=$NS_B DIPOLE=$DIPOLE T=$T; \
	s=\$(nb status r0) && ! grep -q 'not promoting\|not-promoted' <<<\"\$s\" && grep -q Primary <<<\"\$s\""

# --- the guide's scenario (case 07): b crashes, a carries on, b comes back ---
kill_b
check "a notices b is gone" wait_for 20 jcheck a "p['connection'] == 'Connecting'"
check "a (Primary) writes without b" w a 0x5a 8
expect_rc "b is up again" 0 "" nb up r0 --device none
check "b rejoins as SyncTarget of a and only then is Primary again, both Primary" wait_for 60 settled
check "no split brain" no_sb
check "b has a's writes" r b 0x5a 8
check "replicas identical" identical

# --- both restarted after a clean shutdown ---------------------------------
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
expect_rc "a up" 0 "" na up r0 --device none
expect_rc "b up" 0 "" nb up r0 --device none
check "both meet and become Primary again" wait_for 60 settled
check "no split brain after a clean restart of both" no_sb

# --- b down, a carries on alone and goes down; b restarts alone -------------
nb down r0 >/dev/null 2>&1
check "a notices b left" wait_for 20 jcheck a "p['connection'] == 'Connecting'"
check "a writes without b" w a 0x61 16
na down r0 >/dev/null 2>&1
expect_rc "b up alone (a is down)" 0 "" nb up r0 --device none
check "b says it waits for a before becoming Primary (status)" \
	jcheck b "o['startup']['state'] == 'waiting-for-peer' and o['startup']['timeout_option'] == 'wfc-timeout'"
check "b's state line says so (events)" bash -c "$(declare -f nb); NS_B=$NS_B DIPOLE=$DIPOLE T=$T; nb events r0 --once | grep -q 'startup:waiting-for-peer'"
expect_rc "wait-connect on b ends after wfc-timeout without a peer (exit 1), saying why b is not promoted" 1 \
	"was connected to a when it went down.*may have carried on" nb wait-connect r0
check "b is still Secondary: a may have carried on (it did)" \
	jcheck b "o['role']=='Secondary' and o['startup']['declined'] and 'may have carried on' in o['startup']['reason']"
nb down r0 >/dev/null 2>&1

# --- a restarts alone: it was alone when it went down and carried on ---------
expect_rc "a up alone (b is down)" 0 "" na up r0 --device none
check "a waits degr-wfc-timeout (it was alone when it went down)" \
	jcheck a "o['startup']['timeout_option'] == 'degr-wfc-timeout'"
expect_rc "wait-connect on a ends without a peer (exit 1)" 1 "" na wait-connect r0
check "a, which carried on alone, is promoted after degr-wfc-timeout" wait_for 10 prim a
check "and says why" jcheck a "'carried on without' in o['startup']['reason']"
expect_rc "b up: a is reachable now" 0 "" nb up r0 --device none
expect_rc "wait-connect on b returns once connected" 0 "connected" nb wait-connect r0
check "b resyncs from a, then is Primary too" wait_for 60 settled
check "no split brain" no_sb
check "b has what a wrote alone" r b 0x61 16
check "replicas identical" identical

# --- become-primary-on naming one node ---------------------------------------
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
startup "become-primary-on a; wfc-timeout 3; degr-wfc-timeout 2;"
expect_rc "a up" 0 "" na up r0 --device none
expect_rc "b up" 0 "" nb up r0 --device none
check "a (named) becomes Primary after meeting b" wait_for 30 jcheck a "o['role']=='Primary' and p['replication']=='Established'"
check "b (not named) stays Secondary and connected" \
	jcheck b "o['role']=='Secondary' and p['connection']=='Connected' and not o['startup']['become_primary']"
check "no split brain" no_sb
finish
