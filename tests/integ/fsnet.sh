#!/usr/bin/env bash
# dipolefs networking without FUSE or a daemon: the client backend
# (remote.c) against the owner's server (server.c) over loopback, through
# the listener's CH_FS route and the real handshake (tests/fsnet/selftest.c).
cd "$(dirname "$0")/../.." || exit 2
bin=build/fsnet-selftest
if [ ! -x "$bin" ]; then
	echo "not ok - fsnet: $bin is not built (make $bin)"
	exit 1
fi
exec timeout 300 "$bin"
