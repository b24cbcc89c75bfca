#!/usr/bin/env bash
# quorum_lease — with quorum on, pings (lease renewals) go out every
# second whatever ping-int says (CFG_FAILOVER_PING_MS, docs/quorum.md
# "Leases"), so a silent peer is noticed and waited out in about 1.75 s,
# not ping-int's default 10 s. Two disk nodes (a, b, both Primary) and a
# diskless tiebreaker c, ping-int and ping-timeout at their defaults: every
# node reports the 1.5 s lease; connected and idle for a few rounds of
# pings, a's lease on b never lapses (I/O is never held); b's daemon
# stopped (SIGSTOP: its sockets stay open, it answers nothing, as a hung
# or power-cut node): a reports b lost and
# completes a write without it; b continued and written to at once: it
# has lost quorum, so no split brain: both disks end with both writes.
source "$(dirname "$0")/lib.sh"
mknet3
NET_OPTS="ping-timeout 5;" mkres3 32M
sed -i 's/ping-int 1; //' "$T/r.res" # ping-int at its default, 10 s
check "ping-int is at its default" bash -c "! grep -q ping-int '$T/r.res'"

check "three nodes come up (c without a disk)" three_up
check "full mesh: every node connected to both others" wait_for 20 all_connected
lease_is() { local n; for n in a b c; do jcheck $n "o['quorum']['lease_ms'] == $1" || return 1; done; }
check "every node reports the lease: 1 s between pings + ping-timeout 0.5 s" lease_is 1500
lease_text() { na status r0 | grep -q 'lease:1500ms'; }
check "status text shows the lease" lease_text
na primary r0 --force >/dev/null
check "initial sync to b" wait_for 60 jcheck b "o['disk'] == 'UpToDate'"
check "b Primary too (allow-two-primaries)" nb primary r0
wbg w0 a 0x10 0
check "a write before the stop completes" wait_for 20 done_ok w0
mark=$(wc -l <"$T/ra/r0.log")
sleep 6 # idle, connected: six rounds of pings
check "connected and idle, a's lease on b never lapsed: I/O never held" \
	bash -c "! tail -n +$((mark + 1)) '$T/ra/r0.log' | grep 'I/O suspended'"
wbg w0 a 0x10 0
check "a write just before the stop completes" wait_for 20 done_ok w0

# a last heard b just now (w0's acknowledgement): it waits out b's lease
# from here, 1.75 s (with ping-int's 10 s between pings: 10.75 s)
BPID=$(cat "$T/rb/r0.pid")
kill -STOP "$BPID"
wbg w1 a 0x21 1M
lost_and_written() { done_ok w1 && jcheck a "p['connection'] != 'Connected'"; }
check "b silent: within seconds a reports b lost and completes a write without it (c's vote)" \
	wait_for 6 lost_and_written
check "a goes on alone with quorum" jcheck a "o['quorum']['have'] and o['quorum']['alone']"
kill -CONT "$BPID"
wbg w2 b 0x22 2M
check "b back: converged" wait_for 60 converged
check "b's held write completes" wait_for 30 done_ok w2
check "a's write during the stop and b's after are on both" both_have 0x10@0 0x21@1M 0x22@2M
check "no split brain, identical disks" sane_end
finish
