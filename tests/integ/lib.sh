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

cleanup() {
	local f pid ns
	for f in $(find "$T" -name '*.pid' 2>/dev/null) "$T/bg.pids"; do
		[ -f "$f" ] || continue
		for pid in $(cat "$f"); do
			if [ -r /proc/$pid/cmdline ]; then kill -9 "$pid" 2>/dev/null; fi
		done
	done
	sleep 0.2
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
	rm -rf "$T"
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

# wait_for SECONDS CMD... : poll until CMD succeeds
wait_for() {
	local n=$(( $1 * 10 )); shift
	while [ $n -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; n=$((n - 1)); done
	return 1
}

# mkres [SIZE] : write $T/r.res for resource r0 with nodes a and b, backing files $T/a.img, $T/b.img
mkres() {
	local size=${1:-256M}
	truncate -s "$size" "$T/a.img" "$T/b.img"
	cat >"$T/r.res" <<EOT
resource r0 {
    meta-disk internal;
    net { protocol C; }
    on a { address 127.0.0.1:7790; disk $T/a.img; }
    on b { address 127.0.0.2:7790; disk $T/b.img; }
}
EOT
}

# dp ARGS... : dipole for node a of $T/r.res with the test's run dir
dp() { "$DIPOLE" -c "$T/r.res" --node a --run-dir "$RUN" "$@"; }

NBD_URI() { echo "nbd+unix:///r0?socket=$RUN/r0.nbd"; }

# bg CMD... : start a background process whose PID cleanup() will kill
bg() { "$@" & echo $! >>"$T/bg.pids"; }

finish() { exit $FAILED; }
