#!/usr/bin/env bash
# The fault checker (tests/checker.py), bounded: two nodes, protocol C,
# CHECK_SECONDS (default 50) of writes under a random nemesis (power cut =
# link cut + kill -9, restart, failover, partition, packet loss). The link
# runs through the fault proxy with CHECK_DELAY_MS (default 20) each way, so
# writes are really in flight when a node dies. The seed is printed; rerun
# with CHECK_SEED=N to replay the same schedule.
. "$(dirname "$0")/lib.sh"
mknet2
mkres2 256M "protocol C;"
# node a reaches b through the proxy in a's namespace
start_proxy
echo "${CHECK_DELAY_MS:-20}" >"$CTL/delay_ms"
CFG_A=$T/r-a.res
check "pair comes up and syncs" pair_up
T=$T NS_A=$NS_A NS_B=$NS_B VETH_A=$VETH_A VETH_B=$VETH_B DIPOLE=$DIPOLE CFG_A=$T/r-a.res CFG_B=$T/r.res \
	CHECK_SECONDS=${CHECK_SECONDS:-50} python3 "$ROOT/tests/checker.py" || FAILED=1
na down r0 --force >/dev/null 2>&1
nb down r0 --force >/dev/null 2>&1
finish
