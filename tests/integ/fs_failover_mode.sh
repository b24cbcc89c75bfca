#!/usr/bin/env bash
# Which nodes can take over the filesystem (issue 14 item 2, docs/dipolefs.md
# "Which nodes can take over"): status's "failover" on every node, and the
# warning of `dipole mount` when nothing lets a survivor take over.
#  - two nodes, no third vote, no fencing: "failover": "none" on both; the
#    first mount on each node since `up` warns, once, what is missing and
#    how to add it; a second mount (another directory) does not; a restarted
#    daemon warns again at its first mount; the owner killed, the survivor
#    follows the block layer's rule: it does not promote itself (no split
#    brain) and its mount says no owner is reachable;
#  - two disks and a diskless tiebreaker with quorum: "tiebreaker" on all
#    three nodes (the tiebreaker mounts as a client), no warning;
#  - two nodes with fencing resource-only and a fence-peer handler:
#    "fencing" on both, no warning.
# One network of three namespaces serves every case; each case writes its
# own resource file. Outcomes only, never timings.
. "$(dirname "$0")/lib.sh"
mknet3
mkdir -p "$T/ma" "$T/ma2" "$T/mb" "$T/mc"
cat >"$T/fence.sh" <<'EOT'
#!/bin/sh
exit 1
EOT
chmod +x "$T/fence.sh"
WARN='warning: no automatic failover'

# res EXTRA-RESOURCE-TEXT [c]: a and b with disks (c a diskless tiebreaker
# when the second argument is c), fresh backing files; NET_X adds to net
res() {
	rm -f "$T/a.img" "$T/b.img" "$T"/r?/r0.log
	truncate -s 64M "$T/a.img" "$T/b.img"
	local c="" mesh=""
	if [ "${2:-}" = c ]; then
		c="on c { node-id 2; address $IP_C:7790; disk none; }"
		mesh="connection-mesh { hosts a b c; }"
	fi
	cat >"$T/r.res" <<EOT
resource r0 {
    net { protocol C; connect-int 1; ping-int 1; ping-timeout 5; shared-secret "fo"; ${NET_X:-} }
    $1
    on a { node-id 0; address $IP_A:7790; disk $T/a.img; }
    on b { node-id 1; address $IP_B:7790; disk $T/b.img; }
    $c
    $mesh
}
EOT
}
# start NODES...: fresh metadata on the disk nodes, every node up, a
# Primary with the initial sync done, ext4 made on a
start() {
	na create-md r0 --force >/dev/null 2>&1 && nb create-md r0 --force >/dev/null 2>&1 || return 1
	local n
	for n in "$@"; do "n$n" up r0 >/dev/null || return 1; done
	wait_for 30 jcheck a "all(x['connection'] == 'Connected' for x in o['peers'])" &&
		na primary r0 --force >/dev/null 2>&1 &&
		wait_for 60 jcheck b "o['disk'] == 'UpToDate'" &&
		na mkfs r0 >/dev/null 2>&1
}
# stop NODES...: unmount everywhere, then take the nodes down in that order,
# owner (a) first: without its peers it would hold its I/O (no quorum, or
# a fence-peer handler that fails) and its unmount would wait for it
stop() {
	local n
	# clients first: the owner then stops serving at its own umount
	for n in c b a; do umount "$T/m$n" 2>/dev/null; done
	umount "$T/ma2" 2>/dev/null
	case " $* " in *" a "*) wait_for 10 jcheck a "o['fs'] is None" ;; esac
	for n in "$@"; do "n$n" down r0 >/dev/null 2>&1 || "n$n" down r0 --force >/dev/null 2>&1; done
	true
}
warnings() { grep -c -- "$WARN" "$T/mout"; }
# mount_warns NODE DIR: mounted (exit 0), the warning exactly once, naming the fix
mount_warns() {
	"n$1" mount r0 "$2" >"$T/mout" 2>&1 || { cat "$T/mout"; return 1; }
	cat "$T/mout"
	[ "$(warnings)" = 1 ] && grep -q 'disk none; } and options { quorum majority; }' "$T/mout" &&
		grep -q 'fence-peer' "$T/mout"
}
# mount_quiet NODE DIR: mounted, no warning
mount_quiet() {
	"n$1" mount r0 "$2" >"$T/mout" 2>&1 || { cat "$T/mout"; return 1; }
	cat "$T/mout"
	[ "$(warnings)" = 0 ]
}
fo() { jcheck "$1" "o['fs'] is not None and o['fs']['failover'] == '$2'"; }
fo_text() { "n$1" status r0 | grep -q "fs failover: $2"; }

# ---- two nodes, no third vote, no fencing
res ""
check "two nodes: up, a Primary, ext4 made" start a b
check "mount on a (owner) warns once: no automatic failover, and how to add it" mount_warns a "$T/ma"
check "... logged on a" grep -q "fs: $WARN" "$T/ra/r0.log"
check "a: status says failover none" fo a none
check "a: status text says so, with the way out" eval 'na status r0 | grep -q "fs failover: none: no tiebreaker and no fencing"'
check "mount on b (client) warns once too: its first mount" mount_warns b "$T/mb"
check "b: status says failover none" fo b none
check "b: client of a" jcheck b "o['fs']['role'] == 'client' and o['fs']['owner'] == 'a'"
check "umount on b" nb umount "$T/mb"
check "mount on b again: no second warning" mount_quiet b "$T/mb"
check "umount on a, mount at another directory: no second warning" eval \
	'na umount "$T/ma" && mount_quiet a "$T/ma2"'
check "b's daemon restarted: its first mount warns again" eval \
	'nb umount "$T/mb" && nb down r0 && nb up r0 >/dev/null &&
	 wait_for 30 jcheck b "all(x[\"connection\"] == \"Connected\" for x in o[\"peers\"])" && mount_warns b "$T/mb"'
echo hello >"$T/ma2/f" 2>/dev/null
check "b reads what a wrote" wait_for 10 grep -q hello "$T/mb/f"
# the owner dies: with two nodes nothing lets b go on; it must not promote
# itself (a could be alive behind a cut link: two owners, a split brain)
kill -9 "$(cat "$T/ra/r0.pid")"
check "a killed: b sees its peer gone" wait_for 20 jcheck b "o['peers'][0]['connection'] != 'Connected'"
check "... b's mount says no owner is reachable" wait_for 10 jcheck b "o['fs']['reason'].startswith('no owner reachable')"
sleep 2 # a wrong takeover would come within ping-timeout; the check is of a state, not a time
check "... b did not take over: Secondary, still a client of a, failover none" jcheck b \
	"o['role'] == 'Secondary' and o['fs']['role'] == 'client' and o['fs']['owner'] == 'a' and o['fs']['failover'] == 'none'"
# nor by mounting again: `mount` promotes only where `primary` by hand is
# not needed, and a peer last seen Primary may be alive behind a cut link
check "... b unmounts" nb umount "$T/mb"
mkdir -p "$T/mb2"
expect_rc "... mounting again on b is refused: a was Primary when b lost it; how to go on by hand" 3 \
	"a was Primary when this node lost it.*(dipole primary r0)" nb mount r0 "$T/mb2"
check "... b is still Secondary, not mounted" jcheck b "o['role'] == 'Secondary' and o['fs'] is None"
umount -l "$T/ma2" 2>/dev/null
na down r0 --force >/dev/null 2>&1 # a killed daemon's leftovers
stop b

# ---- two disks and a diskless tiebreaker with quorum
res "options { quorum majority; }" c
check "tiebreaker: a, b, c up, a Primary, ext4 made" start a b c
check "mount on a (owner): no warning" mount_quiet a "$T/ma"
check "mount on b (client): no warning" mount_quiet b "$T/mb"
check "mount on c (the tiebreaker, client): no warning" mount_quiet c "$T/mc"
check "status says failover tiebreaker on a, b and c" eval 'fo a tiebreaker && fo b tiebreaker && fo c tiebreaker'
check "status text names the tiebreaker and the votes" fo_text b "tiebreaker (c): if a node dies, the side with 2 of 3 votes"
check "no warning in any log" eval "! grep -q '$WARN' $T/ra/r0.log $T/rb/r0.log $T/rc/r0.log"
stop a b c

# ---- two nodes with fencing and a fence-peer handler
NET_X="fencing resource-only;" res "handlers { fence-peer \"$T/fence.sh\"; }"
check "fencing: a, b up, a Primary, ext4 made" start a b
check "mount on a: no warning" mount_quiet a "$T/ma"
check "mount on b: no warning" mount_quiet b "$T/mb"
check "status says failover fencing on a and b" eval 'fo a fencing && fo b fencing'
check "status text says the handler decides" fo_text a "fencing: if the owner dies, a survivor may take over once the fence-peer handler"
stop a b
finish
