#!/usr/bin/env bash
# Coherence across a reconnect (docs/dipolefs.md "What a node caches, and
# how it is revoked"): b, a client, caches a file's attributes and pages,
# a name and an absent name; its link is cut (iptables in b's namespace)
# until the owner a, failing to get b's ack for a revocation, drops it;
# meanwhile a changes all of them. After the link heals and b is connected
# again (its "connections" counter says so), b sees every change at once:
# a client that reconnects drops all its kernel caches before any call is
# answered through the new connection. Outcomes only, never timings.
. "$(dirname "$0")/lib.sh"
mknet2
mkres2 64M 'protocol C; shared-secret "fs-reconnect-secret";'
mkdir -p "$T/ma" "$T/mb"
A=$T/ma B=$T/mb

fs2_start "$A"
expect_rc "mount on b: client" 0 "as client of a" nb mount r0 "$B"

# ---- b caches: a file's attributes and pages, names, an absent name
printf one >"$A/f"
chmod 0644 "$A/f"
mkdir "$A/d"
echo old >"$A/d/n1"
check "b reads the file, stats it, looks up names and an absent one" \
	eval "[ \"\$(cat $B/f)\" = one ] && stat $B/f $B/d/n1 >/dev/null && ! stat $B/d/late 2>/dev/null"
R0=$(fsn b requests)
check "b's kernel serves names and attributes from its cache (no request)" \
	eval "stat $B/f $B/d/n1 >/dev/null && ! stat $B/d/late 2>/dev/null && [ \$(fsn b requests) = $R0 ]"
C0=$(fsn b connections)
check "b counts its connection" test "$C0" -ge 1

# ---- b cut off; a changes everything b caches, and drops b for not acking
cut_b -I
printf changed >"$A/f" # waits for b's ack (5 s), then a drops b
chmod 0600 "$A/f"
mv "$A/d/n1" "$A/d/n2"
echo hi >"$A/d/late"
check "a dropped b" wait_for 30 eval "[ \"\$(fsn a clients)\" = '[]' ]"
# a readdir always asks the owner: b notices the dead connection once
# the link is back (a's reset), if a's close has not told it already
(ls "$B/d" >/dev/null 2>&1 &
 echo $! >>"$T/bg.pids")
cut_b -D
check "b connected again" wait_for 90 eval "[ \$(fsn b connections) -gt $C0 ] && [ -z \"\$(fsn b reason)\" ]"

# ---- b sees every change at once
check "data: b reads the new contents" eval "[ \"\$(cat $B/f)\" = changed ]"
check "size: b stats the new size" eval "[ \$(stat -c %s $B/f) = 7 ]"
check "mode: b stats the new mode" eval "[ \$(stat -c %a $B/f) = 600 ]"
check "names: the renamed name is gone on b" eval "! stat $B/d/n1 2>/dev/null"
check "names: its new name is there on b" eval "[ \"\$(cat $B/d/n2)\" = old ]"
check "names: the name b had found absent is there" eval "[ \"\$(cat $B/d/late)\" = hi ]"
check "caching again after: a repeated stat on b reaches no one" \
	eval "stat $B/f >/dev/null; r=\$(fsn b requests); stat $B/f >/dev/null && [ \$(fsn b requests) = \$r ]"

expect_rc "umount on b" 0 "" nb umount "$B"
expect_rc "umount on a" 0 "" na umount "$A"
check "down a" na down r0
check "down b" nb down r0
finish
