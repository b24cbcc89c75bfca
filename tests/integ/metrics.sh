#!/usr/bin/env bash
# metrics: the Prometheus endpoint (docs/metrics.md). Two nodes in
# namespaces, a's endpoint from `up --metrics-listen`, b's from the config's
# metrics-address; each scraped with curl inside its namespace, parsed with
# Debian's prometheus_client, and checked against `status --json`: role,
# connection and disk states, out-of-sync bytes after writes while
# disconnected, byte counters after a write. Bad addresses fail `up`.
. "$(dirname "$0")/lib.sh"
mknet2
mkres2 64M "protocol C;"
sed -i "s|on b { address $IP_B:7790;|on b { address $IP_B:7790; metrics-address $IP_B:9942;|" "$T/r.res"
MA=$IP_A:9942

# scrape NODE [PATH]: the exposition text of that node's endpoint
scrape() {
	local ns=$NS_A addr=$MA
	[ "$1" = b ] && ns=$NS_B addr=$IP_B:9942
	nsenter --net=/run/netns/$ns curl -sf --max-time 5 "http://$addr${2:-/metrics}"
}

# mcheck NODE PYTHON-EXPR: the expression over the node's metrics (m(NAME,
# label=value...) is a sample's value, None if absent; fams the parsed
# families) and its status (o, p as in jcheck); the status is read after
# the scrape, so a counter may only have grown in between
cat >"$T/mcheck.py" <<'PY'
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text, status, expr = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3]
fams = list(text_string_to_metric_families(text))
samples = [s for f in fams for s in f.samples]
def m(_metric, **labels):
    for s in samples:
        # the parser names a counter's samples NAME_total: DRBD's
        # drbd_peerdevice_sent_bytes (a counter without _total) comes back so
        if s.name in (_metric, _metric + '_total') and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None
o = json.loads(status); p = o['peers'][0] if o['peers'] else {}
ok = eval(expr)
if not ok:
    print(text); print(status)
sys.exit(0 if ok else 1)
PY
mcheck() {
	scrape "$1" >"$T/m.$1" || { echo "scrape failed"; return 1; }
	"n$1" status r0 --json >"$T/s.$1" || return 1
	/usr/bin/python3 "$T/mcheck.py" "$T/m.$1" "$T/s.$1" "$2"
}
metric() { # NODE NAME [LABEL=VALUE...]: one sample's value
	local node=$1 name=$2; shift 2
	scrape "$node" | /usr/bin/python3 -c "
import sys
from prometheus_client.parser import text_string_to_metric_families
want = dict(a.split('=', 1) for a in sys.argv[2:])
for f in text_string_to_metric_families(sys.stdin.read()):
    for s in f.samples:
        if s.name in (sys.argv[1], sys.argv[1] + '_total') and all(s.labels.get(k) == v for k, v in want.items()):
            print(int(s.value)); sys.exit(0)
sys.exit(1)" "$name" "$@"
}

na create-md r0 --force >/dev/null 2>&1
nb create-md r0 --force >/dev/null 2>&1

# ---- bad input: up refuses, nothing is left running
expect_rc "a metrics address without a port is refused (usage)" 2 "not IP:PORT" \
	na up r0 --device none --metrics-listen $IP_A
expect_rc "an address that is not this host's is refused" 1 "not an address of this host" \
	na up r0 --device none --metrics-listen 10.211.9.9:9942
nsenter --net=/run/netns/$NS_A python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$IP_A', 9943)); s.listen(); open('$T/held', 'w').close(); time.sleep(600)" &
HOLDER=$!
echo $HOLDER >>"$T/bg.pids"
wait_for 10 test -f "$T/held"
expect_rc "a port another process holds is refused, saying so" 1 "9943 is in use by another process" \
	na up r0 --device none --metrics-listen $IP_A:9943
kill $HOLDER 2>/dev/null
check "after a refused up, no daemon is left" sh -c "! test -S $T/ra/r0.ctl"
printf 'resource r0 {\n  on a { address 127.0.0.1:7790; disk /dev/null; metrics-address 127.0.0.1:99999; }\n}\n' >"$T/bad.res"
expect_rc "a bad metrics-address in the config names file:line:col" 2 "bad.res:2:[0-9]+:.*port" \
	"$DIPOLE" -c "$T/bad.res" dump

# ---- up, connected, a Primary
check "a comes up with --metrics-listen" na up r0 --device none --metrics-listen $MA
check "b comes up with metrics-address from the config" nb up r0 --device none
check "connected" wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
check "a Primary" na primary r0 --force
check "b in sync" wait_for 60 jcheck b "o['disk'] == 'UpToDate'"

check "a serves metrics that parse (prometheus_client)" mcheck a "len(fams) > 10"
check "role on a matches status (Primary)" mcheck a \
	"o['role'] == 'Primary' and m('drbd_resource_role', name='r0', drbd_resource_role='Primary') == 1 and m('drbd_resource_role', name='r0', drbd_resource_role='Secondary') == 0"
check "role on b matches status (Secondary)" mcheck b \
	"o['role'] == 'Secondary' and m('drbd_resource_role', name='r0', drbd_resource_role='Secondary') == 1"
check "connection state matches status (Connected)" mcheck a \
	"p['connection'] == 'Connected' and m('drbd_connection_state', name='r0', conn_name='b', peer_node_id='1', drbd_connection_state='Connected') == 1 and m('drbd_connection_state', conn_name='b', drbd_connection_state='StandAlone') == 0"
check "disk states match status (UpToDate, peer UpToDate)" mcheck a \
	"m('drbd_device_state', name='r0', volume='0', drbd_device_state=o['disk']) == 1 and m('dipole_peerdevice_peer_disk_state', conn_name='b', dipole_peerdevice_peer_disk_state=p['disk']) == 1"
check "size, quorum (off: 1), not suspended, in sync" mcheck a \
	"m('drbd_device_size_bytes', name='r0') == o['size_bytes'] and m('drbd_device_quorum', name='r0') == 1 and m('drbd_resource_suspended', name='r0') == 0 and m('drbd_peerdevice_outofsync_bytes', conn_name='b', volume='0') == 0 and m('dipole_peerdevice_resync_done_ratio', conn_name='b') == 1"
check "no filesystem mounted" mcheck a "m('dipole_fs_mounted', name='r0') == 0"

# ---- byte counters grow with a write, and never pass status's
S0=$(metric a drbd_peerdevice_sent_bytes conn_name=b)
W0=$(metric a drbd_device_written_bytes_total name=r0)
R0=$(metric b drbd_peerdevice_received_bytes conn_name=a)
head -c 1M /dev/urandom >"$T/rand1"
check "a 1 MiB write on a" nbdcopy "$T/rand1" "$(uri_a)"
check "sent and written on a grew by the write, and match status" mcheck a \
	"m('drbd_peerdevice_sent_bytes', conn_name='b') >= ${S0:-0} + (1 << 20) and m('drbd_device_written_bytes_total', name='r0') >= ${W0:-0} + (1 << 20) and m('drbd_peerdevice_sent_bytes', conn_name='b') <= o['stats']['sent_bytes'] and m('drbd_device_written_bytes_total', name='r0') <= o['stats']['written_bytes'] and m('dipole_resource_sent_bytes_total', name='r0') <= o['stats']['sent_bytes']"
check "received on b grew by the write" mcheck b \
	"m('drbd_peerdevice_received_bytes', conn_name='a') >= ${R0:-0} + (1 << 20) and m('drbd_peerdevice_received_bytes', conn_name='a') <= o['stats']['received_bytes']"
RD0=$(metric a drbd_device_read_bytes_total name=r0)
nbdcopy "$(uri_a)" - 2>/dev/null | head -c 1M >/dev/null
check "read bytes grew with a read" mcheck a "m('drbd_device_read_bytes_total', name='r0') > ${RD0:-0}"

# ---- disconnected: writes are out of sync, the states say so
check "disconnect" na disconnect r0
head -c 4M /dev/urandom >"$T/rand4"
check "4 MiB written while disconnected" nbdcopy "$T/rand4" "$(uri_a)"
check "out-of-sync bytes match status (>= 4 MiB) and StandAlone is 1" mcheck a \
	"p['connection'] == 'StandAlone' and m('drbd_connection_state', conn_name='b', drbd_connection_state='StandAlone') == 1 and m('drbd_connection_state', conn_name='b', drbd_connection_state='Connected') == 0 and p['out_of_sync_bytes'] >= 4 << 20 and m('drbd_peerdevice_outofsync_bytes', conn_name='b', volume='0') == p['out_of_sync_bytes'] and m('dipole_connection_peer_role', conn_name='b', dipole_connection_peer_role='Unknown') == 1"
check "connect again" na connect r0
check "resynced: out of sync back to 0 in the metrics" \
	wait_for 30 mcheck a "p['out_of_sync_bytes'] == 0 and m('drbd_peerdevice_outofsync_bytes', conn_name='b') == 0 and m('drbd_connection_state', conn_name='b', drbd_connection_state='Connected') == 1"

# ---- only /metrics, only GET
check "another path is 404" test "$(nsenter --net=/run/netns/$NS_A curl -s -o /dev/null -w '%{http_code}' http://$MA/)" = 404
check "POST is 405" test "$(nsenter --net=/run/netns/$NS_A curl -s -o /dev/null -w '%{http_code}' -X POST http://$MA/metrics)" = 405

check "down a" na down r0
check "the endpoint is gone after down" sh -c "! nsenter --net=/run/netns/$NS_A curl -sf --max-time 3 http://$MA/metrics"
check "a comes up again on the same address (the port was released)" na up r0 --device none --metrics-listen $MA
check "and serves again" wait_for 10 mcheck a "m('drbd_resource_resources') == 1"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1

# ---- dipolefs: owner, role, clients and locks as status's "fs" says
mkdir -p "$T/ma" "$T/mb"
check "both up with their devices" eval "na up r0 --metrics-listen $MA >/dev/null && nb up r0 >/dev/null"
check "connected again" wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
check "a Primary again" na primary r0
check "mkfs on a" na mkfs r0
check "mount on a (owner) and b (client)" eval "na mount r0 $T/ma >/dev/null && nb mount r0 $T/mb >/dev/null"
check "a's fs metrics match status: owner a, role owner, one client" wait_for 10 mcheck a \
	"o['fs']['clients'] == ['b'] and m('dipole_fs_mounted', name='r0') == 1 and m('dipole_fs_owner', name='r0', owner='a') == 1 and m('dipole_fs_role', dipole_fs_role='owner') == 1 and m('dipole_fs_clients') == len(o['fs']['clients']) and m('dipole_fs_locks') == o['fs']['locks'] and m('dipole_fs_grace') == int(o['fs']['grace'])"
check "failover case and counters: none (two nodes), no failover, reclaims as status says" mcheck a \
	"o['fs']['failover'] == 'none' and m('dipole_fs_failover_mode', dipole_fs_failover_mode='none') == 1 and m('dipole_fs_failover_mode', dipole_fs_failover_mode='tiebreaker') == 0 and m('dipole_fs_failovers_total', name='r0') == 0 and m('dipole_fs_failover_last_milliseconds') == 0 and m('dipole_fs_lock_reclaims_total', result='granted') == o['fs']['reclaims'] and m('dipole_fs_lock_reclaims_total', result='refused') == o['fs']['locks_lost']"
check "b's fs metrics: client of a" wait_for 10 mcheck b \
	"m('dipole_fs_mounted') == 1 and m('dipole_fs_owner', owner='a') == 1 and m('dipole_fs_role', dipole_fs_role='client') == 1 and m('dipole_fs_clients') == 0"
check "unmount both" eval "nb umount $T/mb >/dev/null && na umount $T/ma >/dev/null"
check "unmounted: dipole_fs_mounted 0, no owner" wait_for 10 mcheck a \
	"o['fs'] is None and m('dipole_fs_mounted') == 0 and m('dipole_fs_owner') is None and m('dipole_fs_owner_changes_total') == 0"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
finish
