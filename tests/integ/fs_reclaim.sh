#!/usr/bin/env bash
# Locks across a reconnect (docs/dipolefs.md "Locks", reclaim): a owns the
# filesystem, b is its client. b's processes hold a classic fcntl lock, an
# OFD lock and a flock on f and g, and a classic lock on x. b's link is cut
# (iptables in b's namespace) until a drops b (a change b must revoke goes
# unacknowledged), so a drops b's locks; meanwhile a's process takes x's
# range and lets go (the lock came and went), and a begins a lock grace
# period expecting b. In grace a new lock on a is refused or waits, even
# without a conflict. Once the link heals b reconnects and reclaims: every
# lock comes back but x's, whose holder gets EIO on its next use of the
# file (write and lock), the others keep working; a's processes are
# refused b's locks; b's reclaims end grace early and a's waiter is
# granted. A second cut, without grace, gives b back what nobody took
# meanwhile (the owner kept it for b), and so does a reset of b's
# connections (ss -K). Outcomes only, never timings.
. "$(dirname "$0")/lib.sh"
mknet2
mkres2 64M 'protocol C; shared-secret "fs-reclaim-secret";'
mkdir -p "$T/ma" "$T/mb"
A=$T/ma B=$T/mb

fs2_start "$A" grace=60
nsenter --net=/run/netns/$NS_A "$DIPOLE" -c "$T/r.res" --node a --run-dir "$T/ra" events r0 >"$T/ev.a" 2>&1 &
echo $! >>"$T/bg.pids"
expect_rc "mount on b: client" 0 "as client of a" nb mount r0 "$B"
check "status a: b is a client" wait_for 10 jcheck a "o['fs']['clients'] == ['b']"
for f in f g x c; do echo data >"$A/$f"; done


# ---- b's processes hold locks
check "b: classic lock on f [0,10)" lk_hold p1 "$B/f" posix w 0 10
check "b: OFD lock on f [100,110)" lk_hold p2 "$B/f" ofd w 100 10
check "b: flock on g" lk_hold p3 "$B/g" flock w 0 0
check "b: classic lock on x [0,10)" lk_hold p4 "$B/x" posix w 0 10
check "a's table holds b's 4 locks" jcheck a "o['fs']['locks'] == 4"
expect_rc "a's process is refused f [0,10)" 1 "" try "$A/f" posix w 0 10
check "b reads c (caches it)" eval "[ \"\$(cat $B/c)\" = data ]"
C0=$(fsn b connections)

# ---- b cut off; a drops it (an unacknowledged revocation) and its locks
cut_b -I
printf changed >"$A/c" # waits for b's ack (5 s), then a drops b
check "a dropped b" wait_for 30 eval "[ \"\$(fsn a clients)\" = '[]' ]"
check "a's table dropped b's locks" jcheck a "o['fs']['locks'] == 0"
expect_rc "meanwhile a's process takes x [0,10) and lets go" 0 "" try "$A/x" posix w 0 10
check "a begins a grace period, expecting b (node id 1)" ctl a "fs-grace --expect=2"
check "status a: grace" jcheck a "o['fs']['grace'] == True"
check "events on a: fs:grace on, 60 s, expecting one node" wait_for 10 grep -q \
	'change fs:grace name:r0 old:off new:on duration-ms:60000 clients:1 why:"only reclaims are granted"' "$T/ev.a"
check "status a (text) says so" eval "na status r0 | grep -q 'grace period: only reclaims granted'"
expect_rc "in grace a's new lock on a free range is refused" 1 "" try "$A/f" posix w 50 10
lk_wait w1 "$A/f" posix w 60 10
check "in grace a's blocking request waits" wait_for 10 blocked "$w1"
check "... and is not granted" test ! -f "$T/w1/granted"

# ---- b comes back and reclaims
cut_b -D
check "b connected again" wait_for 90 eval "[ \$(fsn b connections) -gt $C0 ] && [ -z \"\$(fsn b reason)\" ]"
check "b reclaimed 3 locks and lost 1" wait_for 20 eval "[ \$(fsn b reclaims) -ge 3 ] && [ \$(fsn b locks_lost) = 1 ]"
check "grace ended early: b reclaimed" wait_for 20 jcheck a "o['fs']['grace'] == False"
check "events on a: fs:grace off, with the table's reclaims (3 granted, 1 refused or more)" wait_for 10 grep -Eq \
	'change fs:grace name:r0 old:on new:off reclaimed:[3-9][0-9]* refused:1 why:"every node reclaimed"' "$T/ev.a"
check "a's waiter granted after grace" wait_for 20 test -f "$T/w1/granted"
check "status a: 3 reclaims granted (or more: a second reconnect), 1 refused" jcheck a "o['fs']['reclaims'] >= 3 and o['fs']['locks_lost'] == 1"
check "a's table: b's 3 locks and a's waiter" jcheck a "o['fs']['locks'] == 4"
expect_rc "a's process is refused f [0,10) (classic)" 1 "" try "$A/f" posix w 0 10
expect_rc "a's process is refused f [100,110) (OFD)" 1 "" try "$A/f" ofd w 100 10
expect_rc "a's process is refused g (flock)" 1 "" try "$A/g" flock w 0 0
check "F_GETLK on a names b's holder of f" test "$(python3 "$LOCKER" getlk posix "$A/f" 0 10)" = "write 0 10 $p1"
check "b's classic holder writes and locks as before" test "$(probe p1)" = "write:ok lock:ok"
check "b's OFD holder writes and locks as before" test "$(probe p2)" = "write:ok lock:ok"
check "b's flock holder writes and locks as before" test "$(probe p3)" = "write:ok lock:ok"
check "b's holder of x, taken meanwhile, gets EIO on write and lock" test "$(probe p4)" = "write:EIO lock:EIO"
check "... again on its next use" test "$(probe p4)" = "write:EIO lock:EIO"
check "b's log names the lost lock" grep -q "refused to give back the byte-range write lock of process $p4" "$T/rb/r0.log"
expect_rc "x is free for a's process" 0 "" try "$A/x" posix w 0 10

# ---- again without grace: what nobody took meanwhile comes back
R1=$(fsn a reclaims) C1=$(fsn b connections)
check "b reads c again (caches it)" eval "[ \"\$(cat $B/c)\" = changed ]"
cut_b -I
printf again >"$A/c"
check "a dropped b again" wait_for 30 eval "[ \"\$(fsn a clients)\" = '[]' ]"
check "a's table: its own waiter's lock only" jcheck a "o['fs']['locks'] == 1 and o['fs']['grace'] == False"
cut_b -D
check "b connected again" wait_for 90 eval "[ \$(fsn b connections) -gt $C1 ] && [ -z \"\$(fsn b reason)\" ]"
check "without grace, a granted b's 3 reclaims" wait_for 20 jcheck a "o['fs']['reclaims'] >= $R1 + 3 and o['fs']['locks'] == 4"
expect_rc "a's process is refused f [0,10) (classic)" 1 "" try "$A/f" posix w 0 10
expect_rc "a's process is refused g (flock)" 1 "" try "$A/g" flock w 0 0
check "b's OFD holder writes and locks as before" test "$(probe p2)" = "write:ok lock:ok"
check "b's lost lock was not reclaimed: still EIO" test "$(probe p4)" = "write:EIO lock:EIO"

# ---- b's connections reset (ss -K): b may be back before a noticed the
# old connection die; its new one ends the old one and takes over
C2=$(fsn b connections)
check "b's TCP connections to a reset" ip netns exec "$NS_B" ss -K dst "$IP_A"
check "b connected again" wait_for 90 eval "[ \$(fsn b connections) -gt $C2 ] && [ -z \"\$(fsn b reason)\" ]"
check "a's table: b's 3 locks back, and a's waiter" wait_for 20 jcheck a "o['fs']['locks'] == 4 and o['fs']['clients'] == ['b']"
expect_rc "a's process is refused f [100,110) (OFD)" 1 "" try "$A/f" ofd w 100 10
check "b's classic holder writes and locks as before" test "$(probe p1)" = "write:ok lock:ok"
check "b's flock holder writes and locks as before" test "$(probe p3)" = "write:ok lock:ok"

# ---- a blip a's fs server does not notice (nothing for it to send b):
# b gives up on its owner when their replication link times out, and its
# new connection ends the old one on a, which b's locks outlive
C3=$(fsn b connections)
# the old connection's packets stay dropped after the heal, so that a
# cannot learn of its end before b's new connection comes (b's FIN)
P=$(grep -o "client b connected from $IP_B:[0-9]*" "$T/ra/r0.log" | tail -1 | cut -d: -f2)
old_fs() { ip netns exec "$NS_B" iptables "$1" OUTPUT -p tcp --sport "$P" -j DROP; }
cut_b -I
check "b gave up on its connection to a" wait_for 30 eval "[ -n \"\$(fsn b reason)\" ]"
check "a still counts b as a client" test "$(fsn a clients)" = "['b']"
check "b's old fs connection (port $P) stays cut" old_fs -I
cut_b -D
check "b connected again" wait_for 90 eval "[ \$(fsn b connections) -gt $C3 ] && [ -z \"\$(fsn b reason)\" ]"
check "a's table: b's 3 locks back, and a's waiter" wait_for 20 jcheck a "o['fs']['locks'] == 4 and o['fs']['clients'] == ['b']"
check "a ended b's old connection for the new one" grep -q "fs: client b connected again: its old connection from $IP_B:$P ends" "$T/ra/r0.log"
old_fs -D
expect_rc "a's process is refused g (flock)" 1 "" try "$A/g" flock w 0 0
check "b's OFD holder writes and locks as before" test "$(probe p2)" = "write:ok lock:ok"

# ---- holders let go: nothing left
for p in p1 p2 p3 p4 w1; do check "$p lets go" done_with $p; done
check "no lock left" wait_for 10 jcheck a "o['fs']['locks'] == 0"
check "x works on b again through a new open" eval "echo new >$B/x && [ \"\$(cat $A/x)\" = new ]"
expect_rc "fs-grace on a client is refused" 3 "not the filesystem's owner" ctl b fs-grace

expect_rc "umount on b" 0 "" nb umount "$B"
expect_rc "umount on a" 0 "" na umount "$A"
check "down a" na down r0
check "down b" nb down r0
finish
