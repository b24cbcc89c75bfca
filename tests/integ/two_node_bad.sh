#!/usr/bin/env bash
# Two nodes that must not connect, or must survive a bad peer: wrong or
# missing shared secret, size or protocol mismatch, garbage on the
# replication port (sizes: sizes.sh). Then dual-primary, protocol A and B, writes during a
# rate-limited initial sync.
. "$(dirname "$0")/lib.sh"
mknet2
SIZE=268386304

# --- authentication --------------------------------------------------------
mkres2 256M "protocol C; shared-secret \"right-secret\"; cram-hmac-alg sha256;"
sed "s/right-secret/wrong-secret/" "$T/r.res" >"$T/wrong.res"
na create-md r0 >/dev/null 2>&1
CFG_B=$T/wrong.res nb create-md r0 >/dev/null 2>&1
na up r0 --device none >/dev/null 2>&1
CFG_B=$T/wrong.res nb up r0 --device none >/dev/null 2>&1
check "a peer with a wrong shared-secret is refused (reason in status)" \
	wait_for 20 jcheck a "'authentication' in p['reason'] and p['connection'] != 'Connected'"
check "the refusal names the peer's address in the log" wait_for 10 grep -q "$IP_B.*authentication\|authentication.*$IP_B\|failed authentication" "$T/ra/r0.log"
check "and changed no state: both still Inconsistent, nothing received" \
	both "o['disk'] == 'Inconsistent' and o['stats']['received_bytes'] == 0" "o['disk'] == 'Inconsistent' and o['stats']['received_bytes'] == 0"
nb down r0 >/dev/null 2>&1
sed "/shared-secret/d" "$T/r.res" | sed 's/cram-hmac-alg sha256;//' >"$T/nosecret.res"
CFG_B=$T/nosecret.res nb up r0 --device none >/dev/null 2>&1
check "a peer without a secret is refused when one is configured" \
	wait_for 20 jcheck a "'shared-secret' in p['reason'] and p['connection'] != 'Connected'"
nb down r0 >/dev/null 2>&1
nb up r0 --device none >/dev/null 2>&1
check "with the right secret they connect" wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1

# --- size and protocol mismatch ---------------------------------------------
mkres2 256M "protocol C;"
truncate -s 300M "$T/b.img"
na create-md r0 --force >/dev/null 2>&1
nb create-md r0 --force >/dev/null 2>&1
na up r0 --device none >/dev/null 2>&1
nb up r0 --device none >/dev/null 2>&1
# (sizes.sh: a larger node with data is refused instead)
check "different device sizes pair at the smaller (DRBD's rule)" \
	wait_for 20 both "p['connection'] == 'Connected' and o['size_bytes'] == $SIZE" "o['size_bytes'] == $SIZE"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
na up r0 --device none >/dev/null 2>&1
truncate -s 256M "$T/b.img"
nb create-md r0 --force >/dev/null 2>&1
sed 's/protocol C;/protocol A;/' "$T/r.res" >"$T/protoA.res"
CFG_B=$T/protoA.res nb up r0 --device none >/dev/null 2>&1
check "different protocols are refused, naming both" wait_for 20 jcheck a "'protocol differs: peer uses A, this node C' in p['reason']"
nb down r0 >/dev/null 2>&1
sed 's/protocol C;/protocol C; allow-two-primaries;/' "$T/r.res" >"$T/two.res"
CFG_B=$T/two.res nb up r0 --device none >/dev/null 2>&1
check "allow-two-primaries on one side only is refused" wait_for 20 jcheck a "'allow-two-primaries differs: set on the peer only' in p['reason']"
nb down r0 >/dev/null 2>&1

# --- garbage on the replication port ----------------------------------------
for junk in "GET / HTTP/1.0" "" "$(head -c 300 /dev/urandom | base64)"; do
	nsenter --net=/run/netns/$NS_A python3 - "$IP_A" "$junk" <<'PY' >/dev/null 2>&1
import socket, sys
s = socket.create_connection((sys.argv[1], 7790), timeout=10)
s.sendall(sys.argv[2].encode())
s.settimeout(10)
try:
    s.recv(100)
except Exception:
    pass
PY
done
# b is the acceptor (node-id 1), a dials; probe b's port too
nb up r0 --device none >/dev/null 2>&1
nsenter --net=/run/netns/$NS_B python3 -c "
import socket, struct
s = socket.create_connection(('$IP_B', 7790), timeout=10)
s.sendall(struct.pack('>IHHIIQ', 0x44504c31, 1, 0, 0xffffffff, 0, 0))
s.settimeout(10)
try: s.recv(100)
except Exception: pass
" >/dev/null 2>&1
check "garbage and oversized packets are dropped with a log line naming the address" \
	wait_for 10 grep -q "not a dipole peer" "$T/rb/r0.log"
check "after the garbage the real peer still connects" wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
check "and both daemons still serve NBD" bash -c "nbdinfo '$(uri_a)' >/dev/null && nbdinfo '$(uri_b)' >/dev/null"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1

# --- writes during a rate-limited initial sync, dual primary -----------------
DISK_OPTS="resync-rate 40M;" mkres2 256M "protocol C; allow-two-primaries;"
na create-md r0 --force >/dev/null 2>&1
nb create-md r0 --force >/dev/null 2>&1
na up r0 --device none >/dev/null 2>&1
nb up r0 --device none >/dev/null 2>&1
wait_for 20 both "p['connection'] == 'Connected'" "p['connection'] == 'Connected'"
na primary r0 --force >/dev/null 2>&1
check "status shows the sync in progress with done %, speed and ETA" \
	wait_for 10 jcheck a "p['replication'] == 'SyncSource' and 0 <= p['sync_done_percent'] < 100 and p['sync_speed_mib_s'] >= 0"
check "the target says SyncTarget and Inconsistent" jcheck b "p['replication'] == 'SyncTarget' and o['disk'] == 'Inconsistent'"
head -c 32M /dev/urandom >"$T/rand"
check "writes during the sync succeed" nbdcopy "$T/rand" "$(uri_a)"
qemu-io -f raw -c 'write -P 0x21 200M 1M' "$(uri_a)" >/dev/null
check "the sync finishes" wait_for 60 both "p['disk'] == 'UpToDate' and p['replication'] == 'Established'" "o['disk'] == 'UpToDate'"
check "writes made during the sync are on both disks: identical" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"
expect_rc "with allow-two-primaries b may become Primary too" 0 "" nb primary r0
check "both Primary" wait_for 10 both "o['role'] == 'Primary' and p['role'] == 'Primary'" "o['role'] == 'Primary' and p['role'] == 'Primary'"
qemu-io -f raw -c 'write -P 0xaa 10M 4M' "$(uri_a)" >/dev/null &
qemu-io -f raw -c 'write -P 0xbb 50M 4M' "$(uri_b)" >/dev/null &
wait
check "dual-primary writes to different regions: both disks identical" \
	test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"
check "each side's data visible on the other" bash -c "qemu-io -r -f raw -c 'read -P 0xbb 50M 4M' '$(uri_a)' >/dev/null 2>&1 && qemu-io -r -f raw -c 'read -P 0xaa 10M 4M' '$(uri_b)' >/dev/null 2>&1"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1

# --- protocols A and B replicate too ----------------------------------------
for proto in A B; do
	mkres2 256M "protocol $proto;"
	pair_up || notok "protocol $proto: pair comes up and syncs"
	head -c 16M /dev/urandom >"$T/rand"
	nbdcopy "$T/rand" "$(uri_a)"
	qemu-io -f raw -c flush "$(uri_a)" >/dev/null
	check "protocol $proto: after a flush b holds the data" cmp -n 16777216 "$T/rand" "$T/b.img"
	na down r0 >/dev/null 2>&1
	nb down r0 >/dev/null 2>&1
done
finish
