#!/usr/bin/env bash
# four_disks — four nodes with disks on loopback addresses (127.0.1.1-4,
# a port free_port picked: they listen in the host's namespace),
# quorum majority (3 of 4 votes; a write completes on 2 disks): a full mesh of
# six links, failover from a killed Primary, the old Primary back as
# SyncTarget, a Secondary away and back with only what it missed, no writes
# with two of four down; all four disks end identical. The code has nothing three-specific; this checks it.
source "$(dirname "$0")/lib.sh"
truncate -s 64M "$T/a.img" "$T/b.img" "$T/c.img" "$T/d.img"
PORT=$(free_port)
cat >"$T/r.res" <<EOT
resource r0 {
    net { protocol C; connect-int 1; ping-int 1; ping-timeout 10; }
    options { quorum majority; }
    on a { node-id 0; address 127.0.1.1:$PORT; disk $T/a.img; }
    on b { node-id 1; address 127.0.1.2:$PORT; disk $T/b.img; }
    on c { node-id 2; address 127.0.1.3:$PORT; disk $T/c.img; }
    on d { node-id 3; address 127.0.1.4:$PORT; disk $T/d.img; }
    connection-mesh { hosts a b c d; }
}
EOT
n4() { local n=$1; shift; "$DIPOLE" -c "$T/r.res" --node "$n" --run-dir "$T/r$n" "$@"; }
uri4() { echo "nbd+unix:///r0?socket=$T/r$1/r0.nbd"; }
na() { n4 a "$@"; }; nb() { n4 b "$@"; }; nc() { n4 c "$@"; }; nd() { n4 d "$@"; }
js() { jcheck "$@"; } # (says the node's state when EXPR is false)
all4() { local n rc=0; for n in a b c d; do js $n "$1" || rc=1; done; return $rc; }
synced4() { all4 "o['disk'] == 'UpToDate' and len(o['peers']) == 3 and all(x['connection'] == 'Connected' and \
x['out_of_sync_bytes'] == 0 and x['replication'] == 'Established' for x in o['peers'])"; }
w4() { timeout 60 qemu-io -f raw -c "write -P $2 $3 $4" -c flush "$(uri4 $1)" >/dev/null 2>&1; }
r4() { local n; shift; for n in $1; do qemu-io -r -f raw -c "read -P $2 $3 $4" "$(uri4 $n)" >/dev/null 2>&1 || return 1; done; }
same4() {
	local n m first=""
	for n in a b c d; do
		m=$(nbdcopy "$(uri4 $n)" - | md5sum | cut -d' ' -f1) || return 1
		[ -z "$first" ] && first=$m
		[ "$m" = "$first" ] || return 1
	done
}
# pe NODE PEER EXPR: NODE's status entry x for PEER satisfies EXPR
pe() { js "$1" "any(x['name'] == '$2' and ($3) for x in o['peers'])"; }
# c and d hold all of b's data and are connected to it: a write b completes
# (protocol C) is then on their disks. Right after the failover they may
# still be resyncing or comparing with each other; a write that completes
# without one of them is allowed (quorum: 2 of 4 disks) and reaches it by
# resync, so the read-back below is only meaningful once this holds.
with_b() {
	local n
	for n in c d; do
		js $n "o['disk'] == 'UpToDate'" && pe $n b "x['replication'] == 'Established' and \
x['out_of_sync_bytes'] == 0" && pe b $n "x['replication'] == 'Established' and x['out_of_sync_bytes'] == 0" || return 1
	done
}
# b and d know they hold the same data (neither is unsure of the other:
# every writer lost since was compared away), so what d misses while away
# is exactly b's bitmap for it.
sure_bd() { pe b d "not x['unsure']" && pe d b "not x['unsure']"; }
rx() { n4 "$1" status r0 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['stats']['received_bytes'])"; }

expect_rc "create-md: three peer slots on each disk" 0 "3 peer slots" n4 a create-md r0
for n in b c d; do n4 $n create-md r0 >/dev/null 2>&1; done
up4() { local n; for n in a b c d; do n4 $n up r0 --device none || return 1; done; }
check "four disk nodes come up" up4
check "full mesh: each node connected to the three others" wait_for 20 all4 "len(o['peers']) == 3 and \
all(x['connection'] == 'Connected' for x in o['peers'])"
n4 a primary r0 --force >/dev/null
check "initial sync to b, c and d" wait_for 60 synced4
check "a write on a" w4 a 0x61 0 1M
check "read back on all four" r4 x "a b c d" 0x61 0 1M

kill -9 "$(cat "$T/ra/r0.pid")"
check "a killed: b is promoted (quorum 3 of 4) once it compared with c and d" wait_for 40 n4 b primary r0
check "b has a's last write" r4 x "b" 0x61 0 1M
check "c and d in sync with and connected to b" wait_for 60 with_b
check "b writes; c and d get it" w4 b 0x62 4M 1M
check "read back on b, c and d" r4 x "b c d" 0x62 4M 1M

n4 a up r0 --device none >/dev/null 2>&1
check "a back as Secondary: all four synced" wait_for 90 synced4
check "a has b's write" r4 x "a" 0x62 4M 1M

check "b and d are sure of each other" wait_for 60 sure_bd
n4 d down r0 >/dev/null
check "d away (3 of 4 votes left): b writes 1 MiB" w4 b 0x63 8M 1M
n4 d up r0 --device none >/dev/null
check "d back: all four synced" wait_for 60 synced4
moved=$(rx d)
echo "# d's resync after 1 MiB changed moved $moved bytes"
check "d received only what it missed" test "$moved" -le $((2 * 1048576))
n4 c down r0 >/dev/null; n4 d down r0 >/dev/null
expect_rc "two of four down: b's write does not complete (no quorum)" 124 "" \
	timeout 10 qemu-io -f raw -c "write -P 0x64 12M 64k" -c flush "$(uri4 b)"
check "b reports no quorum, I/O suspended" js b "not o['quorum']['have'] and o['io_suspended']"
n4 c up r0 --device none >/dev/null; n4 d up r0 --device none >/dev/null
check "c and d back: all four synced" wait_for 90 synced4
check "every write is on all four" r4 x "a b c d" 0x63 8M 1M
check "identical disks" same4
check "no split brain" all4 "all(x['split_brains'] == 0 for x in o['peers'])"
for n in a b c d; do n4 $n down r0 >/dev/null 2>&1; done
finish
