#!/usr/bin/env bash
# Local disk errors (the injectable fault backend, DIPOLE_FAULTS): with
# on-io-error detach the failing disk is detached, the node goes Diskless and
# keeps serving reads and writes through the peer; with pass_on the error
# reaches the client; with call-local-io-error the handler runs.
. "$(dirname "$0")/lib.sh"
mknet2
SIZE=268386304
M=1048576
DISK_OPTS="on-io-error detach;" mkres2 256M "protocol C;"
FA=$T/faults.a
: >"$FA"
na_f() { DIPOLE_FAULTS=$FA na "$@"; }
na create-md r0 >/dev/null 2>&1
nb create-md r0 >/dev/null 2>&1
na_f up r0 --device none >/dev/null 2>&1
nb up r0 --device none >/dev/null 2>&1
check "connected" wait_for 20 both "p['connection']=='Connected'" "p['connection']=='Connected'"
na primary r0 --force >/dev/null 2>&1
check "synced" wait_for 60 jcheck b "o['disk']=='UpToDate'"
qemu-io -f raw -c "write -P 0x21 10M 1M" "$(uri_a)" >/dev/null

# a's disk starts failing writes in [50M, 51M) and reads in [10M, 11M)
printf 'eio write %d %d\neio read %d %d\n' $((50 * M)) $M $((10 * M)) $M >"$FA"
check "a write hitting the bad region still succeeds (the peer has it)" \
	bash -c "qemu-io -f raw -c 'write -P 0x42 50M 64k' '$(uri_a)' | grep -q '^wrote'"
check "a detached its disk: Diskless, with the reason" \
	wait_for 10 jcheck a "o['disk']=='Diskless' and 'write of' in o['disk_reason'] and o['stats']['io_errors'] >= 1"
check "b sees a's disk as Diskless" wait_for 10 jcheck b "p['disk']=='Diskless'"
check "reads on a come from b, even where a's disk fails" \
	bash -c "qemu-io -f raw -r -c 'read -P 0x21 10M 1M' '$(uri_a)' >/dev/null 2>&1"
check "writes on a keep working and land on b" \
	bash -c "qemu-io -f raw -c 'write -P 0x43 80M 1M' -c flush '$(uri_a)' | grep -q '^wrote'"
check "b holds both writes" \
	bash -c "qemu-io -f raw -r -c 'read -P 0x42 50M 64k' -c 'read -P 0x43 80M 1M' '$(uri_b)' >/dev/null 2>&1"
check "status text says why the disk was detached" bash -c "nsenter --net=/run/netns/$NS_A $DIPOLE -c $T/r.res --node a --run-dir $T/ra status r0 | grep -q 'disk detached: write of'"
# a disk that fails after writes the peer never got: the peer is stale for it
na down r0 >/dev/null 2>&1
: >"$FA"
check "a comes back with its disk and resyncs from b" bash -c "DIPOLE_FAULTS=$FA nsenter --net=/run/netns/$NS_A $DIPOLE -c $T/r.res --node a --run-dir $T/ra up r0 --device none >/dev/null 2>&1"
check "in sync" wait_for 30 both "p['connection']=='Connected' and p['replication']=='Established' and o['disk']=='UpToDate'" "p['out_of_sync_bytes']==0"

# the same for a read through the NBD server's io_uring (reads with
# others in flight): its error is a disk error like any other (detach),
# and the read is answered from b
if dd if=/dev/zero of="$T/odirect" bs=4096 count=1 oflag=direct 2>/dev/null; then
	na primary r0 >/dev/null 2>&1
	qemu-io -f raw -c "write -P 0x46 30M 1M" "$(uri_a)" >/dev/null
	printf 'eio async-read %d %d\n' $((30 * M)) $M >"$FA"
	nbdcopy --requests=16 --request-size=65536 "$(uri_a)" "$T/copy" 2>/dev/null
	check "a read failing in the ring detaches a's disk, saying why" \
		wait_for 10 jcheck a "o['disk']=='Diskless' and 'read of' in o['disk_reason']"
	check "... and it was answered from b: the data is intact" \
		bash -c "head -c $M /dev/zero | tr '\\0' '\\106' | cmp -s -n $M -i $((30 * M)):0 $T/copy -"
	na down r0 >/dev/null 2>&1
	: >"$FA"
	check "a comes back with its disk (after the ring's read error)" bash -c "DIPOLE_FAULTS=$FA nsenter --net=/run/netns/$NS_A $DIPOLE -c $T/r.res --node a --run-dir $T/ra up r0 --device none >/dev/null 2>&1"
	check "in sync again" wait_for 30 both "p['connection']=='Connected' and p['replication']=='Established' and o['disk']=='UpToDate'" "p['out_of_sync_bytes']==0"
else
	ok "no O_DIRECT under $T: NBD reads take no io_uring here (ring error checks skipped)"
fi
nb disconnect r0 >/dev/null 2>&1
check "apart" wait_for 20 jcheck a "p['connection']!='Connected'"
na primary r0 >/dev/null 2>&1
qemu-io -f raw -c "write -P 0x44 90M 1M" "$(uri_a)" >/dev/null
printf 'eio any 0 %d\n' $SIZE >"$FA"
qemu-io -f raw -c "write -P 0x45 91M 4k" "$(uri_a)" >/dev/null 2>&1
check "a's disk failed while b was away: Diskless" wait_for 10 jcheck a "o['disk']=='Diskless'"
nb connect r0 >/dev/null 2>&1
check "a refuses to serve through b, which lacks a's last writes, saying why" \
	wait_for 20 jcheck a "'would return old data' in p['reason'] and p['connection']=='StandAlone'"
check "reads on a fail rather than return b's old data" \
	bash -c "! qemu-io -f raw -r -c 'read -P 0x44 90M 4k' '$(uri_a)' >/dev/null 2>&1"
na down r0 --force >/dev/null 2>&1
: >"$FA"
nb connect r0 >/dev/null 2>&1

# pass_on: the error reaches the client, the disk stays attached
: >"$FA"
sed -i 's/on-io-error detach;/on-io-error pass_on;/' "$T/r.res"
nb connect r0 >/dev/null 2>&1
check "a comes back (pass_on)" bash -c "DIPOLE_FAULTS=$FA nsenter --net=/run/netns/$NS_A $DIPOLE -c $T/r.res --node a --run-dir $T/ra up r0 --device none >/dev/null 2>&1"
check "a reconnects and gets what was written while it was Diskless from b" \
	wait_for 30 both "p['connection']=='Connected' and p['replication']=='Established' and o['disk']=='UpToDate'" \
	"p['out_of_sync_bytes']==0 and p['disk']=='UpToDate'"
check "replicas identical again" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")"
printf 'eio read %d %d\n' $((20 * M)) $M >"$FA"
check "with pass_on a failing read returns EIO to the client" \
	bash -c "qemu-io -f raw -r -c 'read 20M 4k' '$(uri_a)' 2>&1 | grep -q 'Input/output error'"
check "and the disk stays attached" jcheck a "o['disk'] != 'Diskless'"
na down r0 >/dev/null 2>&1

# call-local-io-error: the handler runs with DRBD's environment
: >"$FA"
sed -i "s|on-io-error pass_on;|on-io-error call-local-io-error;|; s|    disk { |    handlers { local-io-error \"env > $T/lie.env\"; }\n    disk { |" "$T/r.res"
check "a comes back (call-local-io-error)" bash -c "DIPOLE_FAULTS=$FA nsenter --net=/run/netns/$NS_A $DIPOLE -c $T/r.res --node a --run-dir $T/ra up r0 --device none >/dev/null 2>&1"
printf 'eio read %d %d\n' $((20 * M)) $M >"$FA"
qemu-io -f raw -r -c 'read 20M 4k' "$(uri_a)" >/dev/null 2>&1
check "the local-io-error handler ran" wait_for 10 grep -q "DIPOLE_HANDLER=local-io-error" "$T/lie.env"
check "... for resource r0" grep -q "DRBD_RESOURCE=r0" "$T/lie.env"
na down r0 >/dev/null 2>&1
nb down r0 >/dev/null 2>&1
finish
