#!/usr/bin/env bash
# doctor: `dipole doctor` finds each misconfiguration before `up`, names it
# with its fix and the right exit code (0 no errors, 1 errors, 2 the
# configuration cannot be checked); peers' running daemons are asked for
# their configuration's digest and clock over the replication port.
. "$(dirname "$0")/lib.sh"
mknet2
mkres2 64M "protocol C;"
na create-md r0 --force >/dev/null 2>&1
nb create-md r0 --force >/dev/null 2>&1

# dj CMD...: run CMD doctor r0 --json into $T/dj, print its exit code;
# fcheck EXPR: EXPR over that report (has(check[, severity]), get(check))
fcheck() {
	/usr/bin/env python3 -c "
import json, sys
d = json.load(open('$T/dj'))
def has(check, sev=None):
    return any(f['check'] == check and (sev is None or f['severity'] == sev) for f in d['findings'])
def get(check):
    return next(f for f in d['findings'] if f['check'] == check)
ok = $1
if not ok: print(json.dumps(d, indent=1))
sys.exit(0 if ok else 1)"
}
dj() { "$@" doctor r0 --json >"$T/dj" 2>&1; echo $?; }

# ---- a good configuration, peer not up
expect_rc "a good configuration: exit 0, no errors" 0 "0 errors" na doctor r0
rc=$(dj na)
check "its findings: host found, port free, disk free, kernel devices there" \
	fcheck "$rc == 0 and d['errors'] == 0 and d['exit'] == 0 and has('host', 'info') and has('port-free') and has('disk-free') and has('kernel')"
check "the peer's daemon is not up: 'not checked'" fcheck "has('peer-not-checked', 'info') and 'not checked' in get('peer-not-checked')['message']"
check "two nodes without quorum or fencing: a warning saying what it risks and the fix" \
	fcheck "get('split-brain-risk')['severity'] == 'warning' and 'split brain' in get('split-brain-risk')['message'] and 'tiebreaker' in get('split-brain-risk')['fix']"

# ---- wrong host name
expect_rc "a host name with no on-section: exit 1, named with the fix" 1 \
	"host-unknown: this host's name 'zz'.*" \
	nsenter --net=/run/netns/$NS_A "$DIPOLE" -c "$T/r.res" --node zz --run-dir "$T/ra" doctor r0
check "the fix says --node or the host name" sh -c "nsenter --net=/run/netns/$NS_A '$DIPOLE' -c '$T/r.res' --node zz doctor r0 | grep -q 'fix: name this host.*--node NAME (one of: a, b)'"

cat "$T/r.res" >"$T/two.res"
printf 'resource other {\n  on x { address 10.211.0.8:7790; disk /x; }\n  on y { address 10.211.0.9:7790; disk /y; }\n}\n' >>"$T/two.res"
rc=$(nsenter --net=/run/netns/$NS_A "$DIPOLE" -c "$T/two.res" --node a --run-dir "$T/ra" doctor --json >"$T/dj" 2>&1; echo $?)
check "without RES, a resource of other nodes is noted, not an error" \
	fcheck "$rc == 0 and get('not-this-host')['resource'] == 'other' and not has('host-unknown')"
expect_rc "without RES and no resource on this host: host-unknown, exit 1" 1 "host-unknown" \
	nsenter --net=/run/netns/$NS_A "$DIPOLE" -c "$T/two.res" --node zz doctor

# ---- missing disk
sed "s|disk $T/a.img;|disk $T/nosuch.img;|" "$T/r.res" >"$T/missing.res"
expect_rc "a missing disk: exit 1, disk-missing with the fix and file:line:col" 1 \
	"disk-missing: backing disk $T/nosuch.img does not exist.*missing.res:[0-9]+:[0-9]+" \
	nsenter --net=/run/netns/$NS_A "$DIPOLE" -c "$T/missing.res" --node a doctor r0
check "its fix says how to create it" sh -c "nsenter --net=/run/netns/$NS_A '$DIPOLE' -c '$T/missing.res' --node a doctor r0 | grep -q 'fix: create it (for an LVM volume: lvcreate'"

# ---- disk mounted
truncate -s 64M "$T/m.img"
mkfs.ext4 -q -F "$T/m.img" >/dev/null 2>&1
mkdir -p "$T/mnt"
mount -o loop "$T/m.img" "$T/mnt"
sed "s|disk $T/a.img;|disk $T/m.img;|" "$T/r.res" >"$T/mounted.res"
expect_rc "a mounted disk: exit 1, disk-mounted naming where" 1 \
	"disk-mounted: backing file $T/m.img is mounted through /dev/loop[0-9]+ at $T/mnt" \
	nsenter --net=/run/netns/$NS_A "$DIPOLE" -c "$T/mounted.res" --node a doctor r0
check "its fix: unmount" sh -c "nsenter --net=/run/netns/$NS_A '$DIPOLE' -c '$T/mounted.res' --node a doctor r0 | grep -q 'fix: unmount it'"
umount "$T/mnt"
losetup -j "$T/m.img" -O NAME -n | xargs -r -n1 losetup -d

# ---- an address that is not this host's
sed "s|address $IP_A:7790;|address 10.211.9.9:7790;|" "$T/r.res" >"$T/nonlocal.res"
expect_rc "a non-local address: exit 1, address-not-local" 1 \
	"address-not-local: replication address 10.211.9.9:7790 is not an address of this host" \
	nsenter --net=/run/netns/$NS_A "$DIPOLE" -c "$T/nonlocal.res" --node a doctor r0

# ---- the port held by another process
nsenter --net=/run/netns/$NS_A python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$IP_A', 7790)); s.listen(); open('$T/held', 'w').close(); time.sleep(600)" &
HOLDER=$!
echo $HOLDER >>"$T/bg.pids"
wait_for 10 test -f "$T/held"
expect_rc "the port in use by another process: exit 1, naming it" 1 \
	"port-in-use: replication address $IP_A:7790 is in use by another process \(python3?[.0-9]*, pid [0-9]+\)" \
	na doctor r0
kill $HOLDER 2>/dev/null
wait $HOLDER 2>/dev/null

# ---- a peer whose address nothing answers: a warning, still 'not checked'
sed "s|address $IP_B:7790;|address 10.211.0.77:7790;|" "$T/r.res" >"$T/unreach.res"
rc=$(dj nsenter --net=/run/netns/$NS_A "$DIPOLE" -c "$T/unreach.res" --node a --run-dir "$T/ra")
check "an unreachable peer: peer-unreachable warning, exit 0" \
	fcheck "$rc == 0 and get('peer-unreachable')['severity'] == 'warning' and 'not checked' in get('peer-unreachable')['message']"

# ---- a configuration that does not parse
printf 'resource r0 {\n  on a { address 10.211.0.1:7790 disk /x; }\n}\n' >"$T/bad.res"
expect_rc "a configuration that does not parse: exit 2, file:line:col" 2 \
	"config-parse: the configuration does not parse: .*bad.res:2:[0-9]+" \
	nsenter --net=/run/netns/$NS_A "$DIPOLE" -c "$T/bad.res" --node a doctor r0
expect_rc "... and its summary still names the node (the host name)" 2 "doctor: 1 error, 0 warnings on node $(uname -n)$" \
	nsenter --net=/run/netns/$NS_A "$DIPOLE" -c "$T/bad.res" doctor r0
expect_rc "an unknown resource: exit 2" 2 "resource-unknown" na doctor nosuch

# ---- with a tiebreaker and quorum: no split-brain warning
cat >"$T/tb.res" <<EOT
resource r0 {
    options { quorum majority; }
    on a { address $IP_A:7790; disk $T/a.img; }
    on b { address $IP_B:7790; disk $T/b.img; }
    on c { address 10.211.0.3:7790; disk none; }
}
EOT
rc=$(dj nsenter --net=/run/netns/$NS_A "$DIPOLE" -c "$T/tb.res" --node a --run-dir "$T/ra")
check "a tiebreaker with quorum: no split-brain-risk finding" fcheck "$rc == 0 and has('host') and not has('split-brain-risk')"

# ---- peers up: the same configuration, then a different one
check "b up" nb up r0 --device none
rc=$(dj na)
check "b's daemon answers: the same configuration, clocks close" \
	fcheck "$rc == 0 and d['exit'] == 0 and has('config-same', 'info') and has('clock', 'info') and not has('config-differs')"
sed 's|net { connect-int 1;|net { after-sb-0pri discard-zero-changes; connect-int 1;|' "$T/r.res" >"$T/differs.res"
expect_rc "b runs a different configuration: exit 1, config-differs with the fix" 1 \
	"config-differs: b runs a different configuration of 'r0' \(digest [0-9a-f]{16}, this node's [0-9a-f]{16}\)" \
	nsenter --net=/run/netns/$NS_A "$DIPOLE" -c "$T/differs.res" --node a --run-dir "$T/ra" doctor r0
check "the fix says to copy the file" sh -c "nsenter --net=/run/netns/$NS_A '$DIPOLE' -c '$T/differs.res' --node a doctor r0 | grep -q 'fix: copy the same resource file to every node'"
sed 's|net { connect-int 1;|net { shared-secret "one"; connect-int 1;|' "$T/r.res" >"$T/secret.res"
expect_rc "a shared-secret only this node has: exit 1, config-differs" 1 "config-differs: .*" \
	nsenter --net=/run/netns/$NS_A "$DIPOLE" -c "$T/secret.res" --node a doctor r0
check "the refused queries left b's peer link alone (no refusal in its status)" \
	jcheck b "p['connection'] == 'Connecting' and 'authenticat' not in p['reason'] and 'secret' not in p['reason']"

# ---- this node up too: its ports are its own
check "a up" na up r0 --device none
check "connected" wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
rc=$(dj na)
check "with the resource up: port-ours, no errors" fcheck "$rc == 0 and d['exit'] == 0 and has('port-ours', 'info') and has('daemon') and not has('port-in-use')"
check "the queries did not disturb the connection" jcheck a "p['connection'] == 'Connected'"
check "doctor --help documents the exit codes" sh -c "'$DIPOLE' doctor --help | grep -q 'Exit 0: no errors'"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
finish
