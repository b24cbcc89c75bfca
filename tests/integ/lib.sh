# lib.sh — helpers for dipole integration tests. Source it from a test script.
#
# Every test gets a private temp dir $T with its own run dir, configs and
# backing files. cleanup() (run on any exit) kills the daemons this test
# started (by PID from their pid files), unmounts what is mounted under $T,
# detaches loop devices backed by files under $T and deletes the network
# namespaces the test created. Output: one "ok - SUITE: NAME" or
# "not ok - SUITE: NAME" line per check, which tests/run counts.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIPOLE=${DIPOLE:-$ROOT/build/dipole}
SUITE=${SUITE:-$(basename "$0" .sh)}
T=$(mktemp -d /tmp/dipole-t.XXXXXX)
RUN=$T/run
FAILED=0

# show_logs: the last lines of every daemon log of this test, as "#" lines
# (tests/run counts only ok/not ok lines), so a failure in CI, where $T is
# gone afterwards, still says what the daemons were doing
show_logs() {
	local f
	for f in "$T"/r?/*.log; do
		[ -f "$f" ] || continue
		echo "# ---- ${f#$T/} (last ${LOG_LINES:-40} lines)"
		tail -n "${LOG_LINES:-40}" "$f" | sed 's/^/#   /'
	done
}

cleanup() {
	local f pid ns
	[ "$FAILED" = 1 ] && show_logs
	# globs, not find: find would enter a FUSE mount whose server is stuck
	for f in "$T"/*.pid "$T"/r?/*.pid "$T/bg.pids"; do
		[ -f "$f" ] || continue
		for pid in $(cat "$f"); do
			if [ -r /proc/$pid/cmdline ]; then kill -9 "$pid" 2>/dev/null; fi
		done
	done
	sleep 0.2
	# a FUSE mount whose server is stuck (a daemon in D state) would hang
	# its unmount: abort its connection first (the minor of its device is
	# the connection's number), where the host has fusectl mounted
	awk -v t="$T" 'index($5, t) == 1 { for (i = 7; $i != "-"; i++); if ($(i + 1) ~ /^fuse/) { split($3, d, ":"); print d[2] } }' \
		/proc/self/mountinfo | while read -r c; do
		[ -w "/sys/fs/fuse/connections/$c/abort" ] && echo 1 >"/sys/fs/fuse/connections/$c/abort"
	done
	awk -v t="$T" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null
	done
	for f in /sys/block/loop*/loop/backing_file; do
		[ -f "$f" ] || continue
		if grep -q "^$T" "$f" 2>/dev/null; then
			losetup -d "/dev/$(basename "$(dirname "$(dirname "$f")")")" 2>/dev/null
		fi
	done
	for ns in $(cat "$T/netns" 2>/dev/null); do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	# KEEP=1: keep the logs and configs for a look afterwards (the images go)
	if [ "${KEEP:-0}" = 1 ]; then rm -f "$T"/*.img; echo "# kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

ok()    { echo "ok - $SUITE: $1"; }
notok() { echo "not ok - $SUITE: $1"; FAILED=1; }

# check NAME CMD... : passes when CMD exits 0
check() {
	local name=$1; shift
	if "$@" >"$T/out" 2>&1; then ok "$name"; else notok "$name"; sed 's/^/    | /' "$T/out" | tail -15; fi
}

# expect_rc NAME RC PATTERN CMD... : CMD exits RC and its output matches PATTERN (grep -E)
expect_rc() {
	local name=$1 want=$2 pat=$3; shift 3
	"$@" >"$T/out" 2>&1
	local rc=$?
	if [ "$rc" -eq "$want" ] && { [ -z "$pat" ] || grep -qE -- "$pat" "$T/out"; }; then ok "$name"
	else notok "$name (exit $rc, wanted $want and /$pat/)"; sed 's/^/    | /' "$T/out" | tail -15; fi
}

# wait_for SECONDS CMD... : poll until CMD succeeds, every 0.1 s, at most
# SECONDS*10 tries and never longer than 3*SECONDS of wall time (a status
# call that takes seconds on a loaded machine must not stretch a one-minute
# wait into half an hour). On giving up, the last try's output is printed,
# so check() shows why.
wait_for() {
	local n=$(( $1 * 10 )) start=$SECONDS end=$(( SECONDS + 3 * $1 )); shift
	while [ $n -gt 0 ] && [ $SECONDS -lt $end ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1; n=$((n - 1))
	done
	"$@" 2>&1 && return 0
	echo "wait_for: gave up after $(( SECONDS - start )) s: $*"
	return 1
}

# free_port: a TCP port nobody holds right now, on any address. Tests that
# listen in the host's namespace take their port from here, never a fixed
# one, so two checkouts can run their suites side by side.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'
}

# mkres [SIZE] : write $T/r.res for resource r0 with nodes a and b, backing
# files $T/a.img, $T/b.img. Node a listens for its peer on 127.0.0.1:$PORT
# in the host's namespace even when b never starts, so PORT is free_port's.
mkres() {
	local size=${1:-256M}
	PORT=$(free_port)
	truncate -s "$size" "$T/a.img" "$T/b.img"
	cat >"$T/r.res" <<EOT
resource r0 {
    meta-disk internal;
    net { protocol C; }
    on a { address 127.0.0.1:$PORT; disk $T/a.img; }
    on b { address 127.0.0.2:$PORT; disk $T/b.img; }
}
EOT
}

# dp ARGS... : dipole for node a of $T/r.res with the test's run dir
dp() { "$DIPOLE" -c "$T/r.res" --node a --run-dir "$RUN" "$@"; }

NBD_URI() { echo "nbd+unix:///r0?socket=$RUN/r0.nbd"; }

# bg CMD... : start a background process whose PID cleanup() will kill
bg() { "$@" & echo $! >>"$T/bg.pids"; }

finish() { exit $FAILED; }

# ---- two nodes in network namespaces -------------------------------------
# mknet2: namespaces for nodes a and b joined by a veth pair, addresses
# $IP_A and $IP_B (10.211.0.1/.2). Deleted by cleanup().
mknet2() {
	NS_A=dpt$$a NS_B=dpt$$b IP_A=10.211.0.1 IP_B=10.211.0.2
	ip netns add "$NS_A" && echo "$NS_A" >>"$T/netns"
	ip netns add "$NS_B" && echo "$NS_B" >>"$T/netns"
	ip link add va$$ netns "$NS_A" type veth peer name vb$$ netns "$NS_B"
	ip -n "$NS_A" addr add $IP_A/24 dev va$$
	ip -n "$NS_B" addr add $IP_B/24 dev vb$$
	for n in "$NS_A" "$NS_B"; do ip -n "$n" link set lo up; done
	ip -n "$NS_A" link set va$$ up
	ip -n "$NS_B" link set vb$$ up
	VETH_A=va$$ VETH_B=vb$$
}

# mkres2 SIZE [NET-OPTIONS...]: $T/r.res for a and b in the namespaces
mkres2() {
	local size=$1; shift
	truncate -s "$size" "$T/a.img" "$T/b.img"
	cat >"$T/r.res" <<EOT
resource r0 {
    net { connect-int 1; ping-int 1; ping-timeout 10; $* }
    disk { ${DISK_OPTS:-} }
    on a { address $IP_A:7790; disk $T/a.img; }
    on b { address $IP_B:7790; disk $T/b.img; }
}
EOT
}

# na/nb ARGS...: dipole as node a/b inside its namespace, own run dir
na() { nsenter --net=/run/netns/$NS_A "$DIPOLE" -c "${CFG_A:-$T/r.res}" --node a --run-dir "$T/ra" "$@"; }
nb() { nsenter --net=/run/netns/$NS_B "$DIPOLE" -c "${CFG_B:-$T/r.res}" --node b --run-dir "$T/rb" "$@"; }
URI_A="nbd+unix:///r0?socket=\$T/ra/r0.nbd"
uri_a() { echo "nbd+unix:///r0?socket=$T/ra/r0.nbd"; }
uri_b() { echo "nbd+unix:///r0?socket=$T/rb/r0.nbd"; }
uri_c() { echo "nbd+unix:///r0?socket=$T/rc/r0.nbd"; }

# jq-like check on a node's status: jcheck NODE PYTHON-EXPR (o = the status object, p = first peer)
jcheck() {
	local node=$1 expr=$2
	"n$node" status r0 --json 2>/dev/null | python3 -c "
import json, sys
o = json.loads(sys.stdin.read()); p = o['peers'][0] if o['peers'] else {}
if ($expr): sys.exit(0)
print('$node:', 'role', o.get('role'), 'disk', o.get('disk'), 'quorum', o.get('quorum'), 'io_suspended', o.get('io_suspended'))
for x in o['peers']: print('  peer', x.get('name'), x.get('connection'), x.get('replication'), x.get('disk'),
	'oos', x.get('out_of_sync_bytes'), 'unsure', x.get('unsure'), 'deferred', x.get('resync_deferred'),
	'reason', repr(x.get('reason')))
sys.exit(1)"
}

# ctl NODE REQUEST: a control request no CLI command sends (fs-grace), to
# the node's daemon; prints the reply line, exits with its code
ctl() {
	python3 - "$T/r$1/r0.ctl" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b'\n')
reply = s.makefile().readline()
print(reply.strip())
sys.exit(int(reply.split()[0]))
PY
}

# both A-EXPR B-EXPR: jcheck on a and on b
both() { jcheck a "$1" && jcheck b "$2"; }

# pair_up: fresh metadata on both, both up, connected, a forced Primary and
# the initial sync finished (b UpToDate). Returns non-zero if any step fails.
pair_up() {
	na create-md r0 --force >/dev/null 2>&1 && nb create-md r0 --force >/dev/null 2>&1 &&
		na up r0 --device none >/dev/null 2>&1 && nb up r0 --device none >/dev/null 2>&1 &&
		wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'" &&
		na primary r0 --force >/dev/null 2>&1 &&
		wait_for 60 jcheck b "o['disk'] == 'UpToDate'"
}

# start_proxy: the fault proxy (tests/faultproxy.py) in a's namespace on
# $IP_A:17790 forwarding to b, controlled through files in $CTL; writes
# $T/r-a.res, the config through which a dials b via the proxy.
start_proxy() {
	CTL=$T/ctl
	mkdir -p "$CTL"
	sed "s/address $IP_B:7790/address $IP_A:17790/" "$T/r.res" >"$T/r-a.res"
	nsenter --net=/run/netns/$NS_A python3 "$ROOT/tests/faultproxy.py" $IP_A:17790 $IP_B:7790 "$CTL" &
	echo $! >>"$T/bg.pids"
	disown $!
	wait_for 10 test -f "$CTL/ready" || notok "fault proxy started"
}

# data area of a backing file (metadata excluded): md5
data_md5() { head -c "$1" "$2" | md5sum | cut -d' ' -f1; }

# ---- three nodes ---------------------------------------------------------
# mknet3: namespaces for a, b and c; each node's address ($IP_A/$IP_B/$IP_C,
# 10.212.0.1-3) sits on its loopback and every pair has its own veth link
# (v<x><y> in x's namespace), so one link can be cut (cut3/heal3) while the
# others stay up. Deleted by cleanup(). mknetn NODE... does the same for
# any of a, b, c and d ($NS_D, $IP_D: 10.212.0.4).
mknet3() { mknetn a b c; }
mknetn() {
	NS_A=dpt$$a NS_B=dpt$$b NS_C=dpt$$c NS_D=dpt$$d IP_A=10.212.0.1 IP_B=10.212.0.2 IP_C=10.212.0.3 IP_D=10.212.0.4
	local x y
	for x in "$@"; do
		local ns=dpt$$$x
		ip netns add "$ns" && echo "$ns" >>"$T/netns"
		ip -n "$ns" link set lo up
		ip -n "$ns" addr add "$(ip3 $x)/32" dev lo
	done
	for x in "$@"; do for y in "$@"; do
		[[ $x < $y ]] || continue
		ip link add v$x$y$$ netns dpt$$$x type veth peer name v$y$x$$ netns dpt$$$y
		ip -n dpt$$$x link set v$x$y$$ up
		ip -n dpt$$$y link set v$y$x$$ up
		ip -n dpt$$$x route add "$(ip3 $y)/32" dev v$x$y$$ src "$(ip3 $x)"
		ip -n dpt$$$y route add "$(ip3 $x)/32" dev v$y$x$$ src "$(ip3 $y)"
	done; done
}
ip3() { case $1 in a) echo 10.212.0.1;; b) echo 10.212.0.2;; c) echo 10.212.0.3;; d) echo 10.212.0.4;; esac; }

# cut3 X Y / heal3 X Y: silently drop everything between X and Y (both ways)
# linkdrop X Y -I|-D: drop what X receives from Y only (a one-way stall)
linkdrop() { ip netns exec dpt$$$1 iptables "$3" INPUT -i v$1$2$$ -j DROP; }
cut3() { linkdrop "$1" "$2" -I; linkdrop "$2" "$1" -I; }
heal3() { linkdrop "$1" "$2" -D; linkdrop "$2" "$1" -D; }

# mkres3 SIZE [OPTIONS-SECTION-TEXT]: a and b with disks, c a diskless
# tiebreaker, quorum majority, both may be Primary; NET_OPTS and DISK_OPTS
# add to the net and disk sections
mkres3() {
	local size=$1; shift
	truncate -s "$size" "$T/a.img" "$T/b.img"
	cat >"$T/r.res" <<EOT
resource r0 {
    net { connect-int 1; ping-int 1; ping-timeout 5; allow-two-primaries; ${NET_OPTS:-} }
    disk { ${DISK_OPTS:-} }
    options { quorum majority; ${*:-} }
    on a { node-id 0; address $IP_A:7790; disk $T/a.img; }
    on b { node-id 1; address $IP_B:7790; disk $T/b.img; }
    on c { node-id 2; address $IP_C:7790; disk none; }
    connection-mesh { hosts a b c; }
}
EOT
}
# mkres3d SIZE [OPTIONS-SECTION-TEXT]: a, b and c all with disks (protocol C,
# full mesh); NET_OPTS adds to the net section, DISK_OPTS to the disk section
mkres3d() {
	local size=$1; shift
	truncate -s "$size" "$T/a.img" "$T/b.img" "$T/c.img"
	cat >"$T/r.res" <<EOT
resource r0 {
    net { protocol C; connect-int 1; ping-int 1; ping-timeout 10; ${NET_OPTS:-} }
    disk { ${DISK_OPTS:-} }
    options { ${*:-} }
    on a { node-id 0; address $IP_A:7790; disk $T/a.img; }
    on b { node-id 1; address $IP_B:7790; disk $T/b.img; }
    on c { node-id 2; address $IP_C:7790; disk $T/c.img; }
    connection-mesh { hosts a b c; }
}
EOT
}
# all3 EXPR: a, b and c all satisfy EXPR (each is asked, so a failure
# shows every node that does not)
all3() { local n rc=0; for n in a b c; do jcheck $n "$1" || rc=1; done; return $rc; }
# up3_synced: fresh metadata on a, b and c, all up and connected, a Primary
# (--force) and every disk UpToDate with nothing out of sync
up3_synced() {
	local n
	for n in a b c; do "n$n" create-md r0 --force >/dev/null 2>&1 || return 1; done
	na up r0 --device none && nb up r0 --device none && nc up r0 --device none &&
		wait_for 20 all3 "len(o['peers']) == 2 and all(x['connection'] == 'Connected' for x in o['peers'])" &&
		na primary r0 --force && wait_for 60 all3 "o['disk'] == 'UpToDate' and \
all(x['disk'] == 'UpToDate' and x['out_of_sync_bytes'] == 0 for x in o['peers'])"
}
# all3_have BYTE@OFF...: a, b and c each read every pattern
all3_have() { has a "$@" && has b "$@" && has c "$@"; }
# synced3: a, b and c UpToDate, nothing suspended, every link Connected and
# Established with nothing out of sync
synced3() { all3 "o['disk'] == 'UpToDate' and not o['io_suspended'] and all(x['connection'] == 'Connected' and \
x['out_of_sync_bytes'] == 0 and x['replication'] == 'Established' for x in o['peers'])"; }
# peer_conn N PEER STATE: node N's connection to PEER is STATE
peer_conn() { jcheck "$1" "[x['connection'] for x in o['peers'] if x['name'] == '$2'] == ['$3']"; }
# c_synctarget_of_b (three disks, b Primary, resync-rate low): c goes down,
# b writes 16 MiB of 0x11 at 0, c comes back and is b's SyncTarget
c_synctarget_of_b() {
	check "c goes down" nc down r0
	check "b writes 16 MiB while c is down" qemu-io -f raw -c "write -P 0x11 0 16M" -c flush "$(uri_b)"
	check "c comes back" nc up r0 --device none
	check "c is SyncTarget of b" wait_for 20 jcheck c "any(x['name'] == 'b' and x['replication'] == 'SyncTarget' \
for x in o['peers'])"
}
# converge3 WHAT BYTE@OFF...: a, b and c (healed) converge, each reads every
# pattern (the check says WHAT), the disks are identical; then all go down
converge3() {
	local what=$1 n; shift
	check "converged" wait_for 90 synced3
	check "$what" all3_have "$@"
	check "identical disks" md5_all_equal
	for n in a b c; do timeout 30 "n$n" down r0 >/dev/null 2>&1; done
}
md5_all_equal() {
	local x y z
	x=$(img_md5 a) && y=$(img_md5 b) && z=$(img_md5 c) && [ "$x" = "$y" ] && [ "$y" = "$z" ]
}
nc3() { nsenter --net=/run/netns/$NS_C "$DIPOLE" -c "${CFG_C:-$T/r.res}" --node c --run-dir "$T/rc" "$@"; }
nc() { nc3 "$@"; }

# ---- I/O and checks for the three-node tests (nodes a and b have disks) ---
# wbg NAME NODE BYTE OFF: write 64 KiB of BYTE at OFF through NODE's NBD
# socket, then flush, in the background; its exit status lands in $T/NAME.rc
wbg() { bgio "$1" "$2" -c "write -P $3 $4 64k" -c flush; }
# rbg NAME NODE BYTE OFF: read in the background; rc 0 only if the data is BYTE
rbg() { bgio "$1" "$2" -r -c "read -P $3 $4 64k"; }
bgio() {
	local name=$1 node=$2; shift 2
	rm -f "$T/$name.rc"
	( timeout 90 qemu-io -f raw "$@" "$(uri_$node)" >/dev/null 2>&1; echo $? >"$T/$name.rc" ) &
	echo $! >>"$T/bg.pids"
}
done_ok() { [ -s "$T/$1.rc" ] && [ "$(cat "$T/$1.rc")" = 0 ]; }
pending() { [ ! -s "$T/$1.rc" ]; }
all_ok() { local n; for n in "$@"; do done_ok "$n" || return 1; done; }
all_pending() { local n; for n in "$@"; do pending "$n" || return 1; done; }
# rd NODE BYTE OFF: NODE reads 64 KiB of BYTE at OFF
rd() { qemu-io -r -f raw -c "read -P $2 $3 64k" "$(uri_$1)" >/dev/null 2>&1; }
# has N BYTE@OFF...: node N reads each pattern
has() { local n=$1 x; shift; for x in "$@"; do rd "$n" "${x%@*}" "${x#*@}" || return 1; done; }
both_have() { has a "$@" && has b "$@"; }
img_md5() { nbdcopy "$(uri_$1)" - | md5sum | cut -d' ' -f1; }
three_up() {
	na create-md r0 --force >/dev/null 2>&1 && nb create-md r0 --force >/dev/null 2>&1 && na up r0 --device none &&
		nb up r0 --device none && nc up r0 --device none
}
all_connected() {
	local n
	for n in a b c; do jcheck $n "all(x['connection'] == 'Connected' for x in o['peers'])" || return 1; done
}
converged() {
	all_connected && both "o['disk'] == 'UpToDate' and p['disk'] == 'UpToDate' and p['out_of_sync_bytes'] == 0 \
and not o['io_suspended']" "o['disk'] == 'UpToDate' and p['out_of_sync_bytes'] == 0 and not o['io_suspended']"
}
# no split brain, identical disks
sane_end() { both "p['split_brains'] == 0" "p['split_brains'] == 0" && [ "$(img_md5 a)" = "$(img_md5 b)" ]; }

# ---- dipolefs ---------------------------------------------------------------
# fsn NODE FIELD: a value from the node's "fs" status object
fsn() { "n$1" status r0 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['fs']['$2'])"; }
# settled NODE [FIELD]: the node's fs `requests` count (or FIELD's, e.g.
# mount_requests) once it stopped moving. The
# kernel sends the RELEASE of a closed file without waiting for it, so a
# count read right after a close may still miss that request: read until
# two reads 0.2 s apart agree (a wait, not a timed assertion)
settled() {
	local a b f=${2:-requests}
	a=$(fsn "$1" "$f")
	while sleep 0.2; b=$(fsn "$1" "$f"); [ "$a" != "$b" ]; do a=$b; done
	echo "$a"
}
# cut_b -I|-D: drop every packet into and out of b's namespace / stop
cut_b() { for c in INPUT OUTPUT; do ip netns exec "$NS_B" iptables "$1" "$c" -j DROP; done; }

# Lock holders: one process per lock request (tests/locker.py).
LOCKER=$ROOT/tests/locker.py
# lk_hold NAME PATH KIND TYPE START LEN: a process holding the lock on PATH,
# its state in $T/NAME/, its pid in $NAME; fails if it could not take it
lk_hold() {
	rm -rf "$T/$1" && mkdir "$T/$1"
	python3 "$LOCKER" hold "$3" "$4" "$2" "$5" "$6" "$T/$1" 2>"$T/$1.err" &
	eval "$1=$!"
	echo $! >>"$T/bg.pids"
	wait_for 10 test -f "$T/$1/held"
}
# lk_wait NAME PATH KIND TYPE START LEN: a blocking request, as lk_hold
lk_wait() {
	rm -rf "$T/$1" && mkdir "$T/$1"
	python3 "$LOCKER" wait "$3" "$4" "$2" "$5" "$6" "$T/$1" 2>"$T/$1.err" &
	eval "$1=$!"
	echo $! >>"$T/bg.pids"
}
# probe NAME: the holder writes and locks again; prints "write:R lock:R"
probe() {
	rm -f "$T/$1/probed"
	touch "$T/$1/probe"
	wait_for 20 test -f "$T/$1/probed" && cat "$T/$1/probed"
}
# try PATH KIND TYPE START LEN: 0 granted, 1 conflict (EAGAIN), 2 other
try() { python3 "$LOCKER" try "$2" "$3" "$1" "$4" "$5"; }
# gone PID: exited (a zombie counts): a process stuck in a lock request
# that never ends would hang the test in `wait`
gone() { [ ! -d "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
# done_with NAME: it lets go (exits, closing the file) and is reaped
done_with() {
	touch "$T/$1/go"
	wait_for 20 gone "${!1}" || { echo "$1 (pid ${!1}) did not exit"; return 1; }
	wait "${!1}" 2>/dev/null
}
# blocked PID: asleep inside fcntl (72) or flock (73), i.e. in the lock
# request the FUSE mount forwarded (x86-64 system call numbers)
blocked() { read -r nr _ <"/proc/$1/syscall" && { [ "$nr" = 72 ] || [ "$nr" = 73 ]; }; }

# ---- dipolefs: an owner that dies ---------------------------------------
# pid_of X: X's daemon's pid (fs_failover, fs_grace)
pid_of() { cat "$T/r$1/r0.pid"; }
# kill_daemon X: SIGKILL X's daemon. A thread of it that was inside the
# kernel filesystem it owned (an fsync waiting for the journal) waits for
# its own loop device, whose FUSE file the dead process no longer serves
# but still holds open (the thread keeps the descriptor table alive): the
# process stays a zombie holding its lock and sockets. Aborting that FUSE
# connection (MNT_FORCE: FUSE's umount_begin; the unmount itself fails,
# the loop device holds it) lets it finish. The daemon's watchdog does
# that by itself now (fs_killed_owner.sh checks it alone); this stays as
# a net, so one failure does not hang a whole test.
kill_daemon() {
	local pid
	pid=$(pid_of "$1")
	kill -9 "$pid"
	wait_for 5 test ! -e "/proc/$pid" || { umount -f "$T/r$1/r0.fuse" 2>/dev/null; wait_for 30 test ! -e "/proc/$pid"; }
}

# ---- dipolefs: a process writing through an owner change ----------------
# writer NAME FILE (fs_failover, fs_move): a process that opens FILE once
# and, until $T/NAME.stop exists, writes record i (64 bytes at i*64) and fsyncs it, i = 0, 1, ...;
# $T/NAME.acked holds the last i whose fsync returned 0. An fsync failing
# EIO (its writes were on the dead owner only, fsswitch.h) is answered by
# writing the records since the last good fsync again; any other error
# ends it with exit 1; STRICT=1: so does EIO (a planned handover loses
# nothing). At the end it reads every record back through the
# same descriptor and exits 0 only if all are intact.
writer() {
	STRICT=${STRICT:-0} python3 - "$T/$1" "$2" <<'EOF' >"$T/$1.out" 2>&1 &
import errno, os, sys, time
base, path = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
rec = lambda i: (b"record %08d of the failover writer" % i).ljust(63, b".") + b"\n"
i = good = 0
eio = 0
last, pause = time.monotonic(), 0.0
while not os.path.exists(base + ".stop"):
	try:
		os.pwrite(fd, rec(i), i * 64)
		os.fsync(fd)
	except OSError as e:
		if e.errno != errno.EIO or eio > 3 or os.environ["STRICT"] == "1":
			print("error at record", i, e); sys.exit(1)
		eio += 1
		print("fsync EIO at record", i, "(writes on the dead owner): writing again from", good)
		i = good
		continue
	good = i + 1
	now = time.monotonic()
	pause, last = max(pause, now - last), now
	with open(base + ".acked.tmp", "w") as f:
		f.write(str(i))
	os.rename(base + ".acked.tmp", base + ".acked")
	i += 1
	time.sleep(0.02)
for j in range(good):
	got = os.pread(fd, 64, j * 64)
	if got != rec(j):
		print("record", j, "read back wrong:", got[:40]); sys.exit(1)
os.close(fd)
print("ok", good, "records; longest pause between two fsyncs %.1f s" % pause)
EOF
	echo $! >"$T/$1.pid"
	echo $! >>"$T/bg.pids"
}
acked() { cat "$T/$1.acked" 2>/dev/null || echo -1; }
acked_past() { [ "$(acked "$1")" -gt "$2" ]; }
stop_writer() { local rc; touch "$T/$1.stop"; wait "$(cat "$T/$1.pid")"; rc=$?; cat "$T/$1.out"; return $rc; }
# records FILE N: the first N records of a writer's file are intact
records() {
	python3 - "$1" "$2" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
for i in range(int(sys.argv[2])):
	want = (b"record %08d of the failover writer" % i).ljust(63, b".") + b"\n"
	if data[i * 64:(i + 1) * 64] != want:
		sys.exit("record %d wrong" % i)
EOF
}
# fs3_start: on mknet3 + mkres3, a, b and c up and connected, a Primary
# with b synced, mkfs and a mounted as owner at $T/ma, with -o $1 if given
# (fs_failover, fs_move, fs_cutoff)
fs3_start() {
	na create-md r0 --force >/dev/null 2>&1 && nb create-md r0 --force >/dev/null 2>&1
	check "a, b and c up" eval 'na up r0 >/dev/null && nb up r0 >/dev/null && nc up r0 >/dev/null'
	check "all connected" wait_for 30 all_connected
	check "a Primary, b synced" eval \
		'na primary r0 --force >/dev/null 2>&1 && wait_for 60 jcheck b "o[\"disk\"] == \"UpToDate\""'
	expect_rc "mkfs on a" 0 "" na mkfs r0
	fs_mount_a "$T/ma" "$@"
}
# fs_mount_a DIR [OPTIONS]: mount on a as owner (with -o OPTIONS if given)
fs_mount_a() {
	if [ -n "${2:-}" ]; then
		expect_rc "mount on a with $2: owner" 0 "as owner" na mount r0 "$1" -o "$2"
	else
		expect_rc "mount on a: owner" 0 "as owner" na mount r0 "$1"
	fi
}
# fs2_start DIR [OPTIONS]: on mknet2 + mkres2, a and b up and connected, a
# Primary with b synced, mkfs and a mounted as owner at DIR. FAULTS_A: a
# fault file for a's disk (DIPOLE_FAULTS), none if unset
fs2_start() {
	na create-md r0 --force >/dev/null 2>&1 && nb create-md r0 --force >/dev/null 2>&1
	check "a and b up" eval 'DIPOLE_FAULTS=${FAULTS_A:-} na up r0 >/dev/null && nb up r0 >/dev/null'
	check "connected" wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
	check "a Primary, b UpToDate" eval 'na primary r0 --force >/dev/null 2>&1 && wait_for 60 jcheck b "o[\"disk\"] == \"UpToDate\""'
	expect_rc "mkfs on a" 0 "" na mkfs r0
	fs_mount_a "$@"
}
