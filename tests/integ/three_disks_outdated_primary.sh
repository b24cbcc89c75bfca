#!/usr/bin/env bash
# three_disks_outdated_primary — b is Primary, c its SyncTarget; b demotes,
# a is promoted at once and b dies 0.1 s later (an attack round found it).
# c's resync stopped, so it handshook again with a at the moment a lost b:
# a saw 1 of 3 votes, its disk went Outdated, and with c Inconsistent
# neither could be a source ("wait"): stuck until b returned. Worse, a
# Primary with an Outdated disk took writes without starting a new
# generation for b: b came back at "the same" generation as c, went
# UpToDate by the quorum-generation rule and resynced a's acknowledged
# write away everywhere. Now an Inconsistent disk that follows its
# Primary counts for that rule (so a is UpToDate again once c is back),
# and an Outdated Primary holds writes until its disk is UpToDate.
source "$(dirname "$0")/lib.sh"
DELAY=${DELAY:-0.1}
mknet3
DISK_OPTS="resync-rate 8M;" mkres3d 32M "quorum majority;"
check "three disks up, a Primary, synced" up3_synced
check "a demoted" na secondary r0
check "b promoted" nb primary r0
sleep 1
c_synctarget_of_b
sleep 0.5
check "b demoted" nb secondary r0
check "a promoted at once" na primary r0
wbg w1 a 0x44 20M
sleep "$DELAY"
kill -9 "$(pid_of b)"
check "c sees b gone" wait_for 20 peer_conn c b Connecting
check "a's write w1 completed" wait_for 20 done_ok w1
cup() { jcheck c "o['disk'] == 'UpToDate'"; }
check "c resyncs from a (not stuck)" wait_for 60 cup
check "a writes 0x45@28M" qemu-io -f raw -c "write -P 0x45 28M 64k" -c flush "$(uri_a)"
kill -9 "$(pid_of a)"
check "c sees a gone" wait_for 20 peer_conn c a Connecting
check "b back" nb up r0 --device none
check "a back" na up r0 --device none
converge3 "acked writes on all three" 0x11@0 0x11@15M 0x44@20M 0x45@28M
finish
