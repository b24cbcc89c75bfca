#!/usr/bin/env bash
# tests/boot.sh — make boot-test (also run by make soak; not in make check):
# the guide's scenario under real systemd. Each node is a container booting
# systemd as PID 1 (systemd-nspawn -b over a Debian root made by debootstrap)
# in a network namespace of its own, joined by a bridge in another namespace
# the test makes, with the guide's addresses (192.168.1.1, .2; the
# tiebreaker .3) and host names (docker1, docker2). dipole is installed from
# the Debian package built from this tree, with the guide's swarm.res
# unchanged, `systemctl enable dipole@swarm` and the fstab line
# `swarm /mnt/swarm dipole _netdev,nofail 0 0`. Checked:
#   two nodes: /mnt/swarm mounted at boot on both; a file written on one is
#   read on the other; a node powered off hard (its PID 1 killed) and booted
#   again rejoins by itself: resync, Connected/UpToDate, no split brain, the
#   file written meanwhile on the survivor on its mount; a node with a
#   broken configuration fails its service with the doctor's finding in
#   `journalctl -u dipole@swarm`.
#   two + tiebreaker (quorum majority): the non-owner disk node powered off,
#   the survivor keeps serving /mnt/swarm (writes succeed), the node rejoins.
# The debootstrap'd root is cached in $BOOT_CACHE (default
# /var/cache/dipole-boot-test; about 250 MB, made once in about 70 s from the
# apt mirror this machine is configured with); each node boots an overlay of
# it. BOOT_DEB=FILE uses that package instead of building one.
# docs/boot-test.md says what the containers need and why.
SUITE=boot
. "$(dirname "$0")/integ/lib.sh"
# counted, for the summary line make boot-test ends with
PASS=0 FAIL=0
ok()     { echo "ok - $SUITE: $1"; PASS=$((PASS + 1)); }
notok()  { echo "not ok - $SUITE: $1"; FAILED=1; FAIL=$((FAIL + 1)); }
finish() { echo "$PASS passed, $FAIL failed"; exit $FAILED; }
# wait_for SECONDS CMD...: by the clock (lib.sh's counts tries, and each
# try here enters a container: slow on a loaded machine)
wait_for() {
	local end=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do [ $SECONDS -ge $end ] && return 1; sleep 0.5; done
}

BOOT_CACHE=${BOOT_CACHE:-/var/cache/dipole-boot-test}
CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
# what a node's root holds besides minbase: systemd as PID 1, and the
# package's dependencies (added from the .deb below)
ROOT_PKGS="systemd systemd-sysv dbus iproute2 util-linux procps"
FSTAB_LINE='swarm /mnt/swarm dipole _netdev,nofail 0 0'
NSPAWN_PIDS=$T/nspawn.pids
CGROUPS=$T/cgroups

for t in systemd-nspawn:systemd-container debootstrap:debootstrap dpkg-buildpackage:dpkg-dev dh:debhelper \
	fakeroot:fakeroot ip:iproute2 nsenter:util-linux python3:python3; do
	command -v "${t%%:*}" >/dev/null ||
		{ notok "${t%%:*} is installed (Debian package ${t#*:}; bash scripts/install-deps)"; finish; }
done
[ -n "$CODENAME" ] || { notok "this is Debian (/etc/os-release names a VERSION_CODENAME)"; finish; }
[ -c /dev/fuse ] && [ -c /dev/loop-control ] ||
	{ notok "/dev/fuse and /dev/loop-control exist (modprobe fuse loop)"; finish; }

# ---- cleanup: containers first (their PID 1 killed: the whole container
# goes), then lib.sh's (mounts under $T, namespaces), then our cgroups
boot_cleanup() {
	local n pid
	for n in $(cat "$T/nodes" 2>/dev/null); do
		pid=$(pid1 "$n")
		[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	done
	for pid in $(cat "$NSPAWN_PIDS" 2>/dev/null); do
		for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
		alive "$pid" && kill -9 "$pid" 2>/dev/null
	done
	for d in $(cat "$CGROUPS" 2>/dev/null); do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	cleanup
}
trap boot_cleanup EXIT

# ---- the Debian root, cached ------------------------------------------------
mirror() {
	[ -n "${BOOT_MIRROR:-}" ] && { echo "$BOOT_MIRROR"; return; }
	local m
	m=$(apt-cache policy 2>/dev/null | awk -v s="$CODENAME/main" '$3 == s && $NF == "Packages" { print $2; exit }')
	echo "${m:-http://deb.debian.org/debian}"
}

# base_root PKG...: $BASE, a root with minbase and PKGs, made once per set
base_root() {
	local inc key
	inc=$(printf '%s\n' "$@" | sort -u | paste -sd, -)
	key=$(printf '%s %s\n' "$CODENAME" "$inc" | sha256sum | cut -c1-12)
	BASE=$BOOT_CACHE/$CODENAME-$key/root
	mkdir -p "$BOOT_CACHE" || return 1
	(
		flock 9
		[ -f "$BOOT_CACHE/$CODENAME-$key/complete" ] && exit 0
		rm -rf "$BOOT_CACHE/$CODENAME-$key"
		mkdir -p "$BOOT_CACHE/$CODENAME-$key"
		echo "# boot: debootstrap --variant=minbase --include=$inc $CODENAME $BASE $(mirror) (once, about 70 s)"
		debootstrap --variant=minbase --include="$inc" "$CODENAME" "$BASE" "$(mirror)" \
			>"$BOOT_CACHE/$CODENAME-$key/debootstrap.log" 2>&1 ||
			{ tail -20 "$BOOT_CACHE/$CODENAME-$key/debootstrap.log"; exit 1; }
		# no identity of its own: each node writes its host name and machine id
		: >"$BASE/etc/machine-id"
		rm -f "$BASE/etc/hostname"
		touch "$BOOT_CACHE/$CODENAME-$key/complete"
	) 9>"$BOOT_CACHE/lock"
}

# ---- the package -------------------------------------------------------------
build_deb() {
	if [ -n "${BOOT_DEB:-}" ]; then DEB=$BOOT_DEB; return 0; fi
	mkdir -p "$T/src"
	git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 cp --parents -t "$T/src")
	(cd "$T/src" && dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1 || { tail -30 "$T/build.log"; return 1; }
	DEB=$(ls "$T"/dipole_*.deb 2>/dev/null | head -1)
	[ -n "$DEB" ]
}

# ---- the network: a bridge in a namespace of its own, one namespace per node
mkbridge() {
	NS_BR=dpboot$$br
	ip netns add "$NS_BR" && echo "$NS_BR" >>"$T/netns"
	ip -n "$NS_BR" link set lo up
	ip -n "$NS_BR" link add br0 type bridge
	ip -n "$NS_BR" link set br0 up
}
# nodens NAME IP: NAME's namespace, its eth0 on the bridge with IP/24
nodens() {
	local ns=dpboot$$$1
	ip netns add "$ns" && echo "$ns" >>"$T/netns"
	ip -n "$ns" link set lo up
	ip link add eth0 netns "$ns" type veth peer name "p-$1" netns "$NS_BR"
	ip -n "$NS_BR" link set "p-$1" master br0 up
	ip -n "$ns" addr add "$2/24" dev eth0
	ip -n "$ns" link set eth0 up
}

# ---- containers ----------------------------------------------------------------
# node dirs: $T/NAME/{upper,work,root} (the overlay), NAME.img (its disk)
# mknode NAME IP CONFIG-FILE: the node's root with the package installed,
# the configuration, the enabled unit and the fstab line; a fresh disk with
# fresh metadata. The same steps as the README's, done before the first boot.
mknode() {
	local n=$1 d=$T/$1
	mkdir -p "$d/upper" "$d/work" "$d/root"
	mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$d/upper,workdir=$d/work" "$d/root" || return 1
	echo "$n" >>"$T/nodes"
	nodens "$n" "$2"
	echo "$n" >"$d/root/etc/hostname"
	od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$d/root/etc/machine-id"
	echo >>"$d/root/etc/machine-id"
	mkdir -p "$d/root/etc/drbd.d" "$d/root/mnt/swarm"
	cp "$3" "$d/root/etc/drbd.d/swarm.res"
	cp "$DEB" "$d/root/var/tmp/dipole.deb"
	echo "$FSTAB_LINE" >>"$d/root/etc/fstab"
	# no udev in the container: make the loop device nodes the daemon's
	# loop device may get (LOOP_CTL_GET_FREE hands out a number; the node
	# must exist), before anything starts
	local max
	max=$(ls /sys/class/block 2>/dev/null | sed -n 's/^loop\([0-9]*\)$/\1/p' | sort -n | tail -1)
	cat >"$d/root/etc/systemd/system/loop-nodes.service" <<EOT
[Unit]
Description=loop device nodes (no udev in this container)
DefaultDependencies=no
Before=sysinit.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'for i in \$(seq 0 $(( ${max:-0} + 256 ))); do [ -e /dev/loop\$i ] || mknod -m 0660 /dev/loop\$i b 7 \$i; done'
[Install]
WantedBy=sysinit.target
EOT
	truncate -s 160M "$d/$n.img"
	# the README's steps on each node: the package, the resource's
	# metadata, the service enabled (the fstab line is in place)
	run_in "$n" /bin/sh -c 'dpkg -i /var/tmp/dipole.deb && systemctl enable loop-nodes.service dipole@swarm.service' \
		>"$d/setup.log" 2>&1 || {
		cat "$d/setup.log"; return 1; }
}

# launch NAME ARGS...: systemd-nspawn for NAME with ARGS (a command, or -b),
# in a cgroup of its own (hybrid or unified hierarchy, as this host has)
# when the host's PID 1 is not systemd; under systemd, nspawn's own scope
# with the devices allowed. Runs in the foreground.
launch() {
	local n=$1 d=$T/$1 cg=dipole-boot-$$-$1; shift
	local opts=(--quiet --machine="$cg" -D "$d/root" --network-namespace-path=/run/netns/dpboot$$$n
		--bind=/dev/fuse --bind=/dev/loop-control --bind=/dev/autofs --capability=all)
	[ -f "$d/$n.img" ] && opts+=(--bind="$d/$n.img:/dev/docker/swarm")
	if [ -d /run/systemd/system ]; then
		opts+=(--property=DeviceAllow='block-loop rwm' --property=DeviceAllow='/dev/fuse rwm'
			--property=DeviceAllow='/dev/loop-control rwm' --property=DeviceAllow='/dev/autofs rwm')
		exec systemd-nspawn "${opts[@]}" "$@"
	fi
	local h
	for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
		case $(stat -fc %T "$h" 2>/dev/null) in cgroup2fs|cgroupfs) ;; *) continue ;; esac
		[ "$h" = /sys/fs/cgroup ] && [ -d /sys/fs/cgroup/unified ] && continue
		mkdir -p "$h/$cg" && echo "$h/$cg" >>"$CGROUPS"
		echo $BASHPID >"$h/$cg/cgroup.procs"
	done
	exec systemd-nspawn --register=no --keep-unit "${opts[@]}" "$@"
}

# run_in NAME CMD...: CMD in NAME's root, not booted (setup)
run_in() { (launch "$1" --pipe --hostname="$1" "${@:2}"); }

# boot NAME: boot NAME's container in the background
boot() {
	(launch "$1" -b --console=passive) >>"$T/$1/console.log" 2>&1 &
	echo $! >"$T/$1/nspawn"
	echo $! >>"$NSPAWN_PIDS"
}

# alive PID: running (not a zombie nobody reaped yet)
alive() { [ -r /proc/$1/stat ] && [ "$(cut -d' ' -f3 /proc/$1/stat)" != Z ]; }

# pid1 NAME: the host's pid of NAME's systemd (nspawn's child), or nothing
pid1() {
	local p
	p=$(cat "$T/$1/nspawn" 2>/dev/null) || return 0
	alive "$p" || return 0
	cat /proc/$p/task/*/children 2>/dev/null | awk '{ print $1; exit }'
}

# on NAME CMD...: CMD inside NAME's running container (all its namespaces)
on() { local p; p=$(pid1 "$1"); [ -n "$p" ] || return 1; nsenter -t "$p" -a "${@:2}"; }

booted() { on "$1" systemctl is-system-running 2>/dev/null | grep -qxE 'running|degraded'; }

# down_hard NAME: kill its systemd (the whole container goes, as at a power
# cut); down_soft NAME: systemd's poweroff (SIGRTMIN+4). Both wait until
# nspawn exited and clear the cgroups for the next boot.
down_hard() { stop_node "$1" KILL; }
down_soft() { stop_node "$1" RTMIN+4; }
stop_node() {
	local p n=$1
	p=$(pid1 "$n")
	[ -n "$p" ] && kill -s "$2" "$p"
	local np; np=$(cat "$T/$n/nspawn" 2>/dev/null)
	while [ -n "$np" ] && alive "$np"; do sleep 0.2; done
	for d in $(grep -- "-$$-$n\$" "$CGROUPS" 2>/dev/null); do
		find "$d" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
	done
	rm -f "$T/$n/nspawn"
}

# st NAME PYTHON-EXPR: on NAME's status (o; its disk peers dp, all peers ps)
st() {
	on "$1" dipole status swarm --json 2>/dev/null | python3 -c "
import json, sys
o = json.loads(sys.stdin.read()); ps = o.get('peers') or []
dp = [p for p in ps if p.get('disk') not in (None, 'Diskless') or 'replication' in p]
sys.exit(0 if ($2) else 1)"
}
synced() { # NAME: connected to every peer, all disks UpToDate, nothing out of sync
	st "$1" "o['disk'] in ('UpToDate', 'Diskless') and ps and all(p['connection'] == 'Connected' and
		p.get('disk') in ('UpToDate', 'Diskless', None) and not p.get('out_of_sync_bytes') for p in ps)"
}
mounted() { on "$1" findmnt -n -o FSTYPE -M /mnt/swarm 2>/dev/null | grep -q '^fuse'; }
owner_of() { on "$1" dipole status swarm --json 2>/dev/null | python3 -c "
import json, sys; f = json.loads(sys.stdin.read()).get('fs') or {}; print(f.get('owner') or '')"; }
# a split brain detected, or one resolved by the after-sb policies (src/repl/peer_agree.c)
no_split_brain() { ! on "$1" journalctl -q -u dipole@swarm --no-pager 2>/dev/null | grep -qE 'split brain: both nodes changed|split brain resolved'; }
say() { echo "# boot: $*"; }
show() { # NAME: what to look at when a check failed
	say "---- $1: status, units, journal"
	on "$1" dipole status swarm 2>&1 | sed 's/^/#   /'
	on "$1" systemctl --no-pager --failed 2>&1 | sed 's/^/#   /'
	on "$1" journalctl -q -b --no-pager -u dipole@swarm -u mnt-swarm.mount 2>&1 | tail -25 | sed 's/^/#   /'
}

# what the checks run in a shell of their own (bash -c) need
FN="$(declare -f alive pid1 on booted st synced mounted owner_of no_split_brain wait_for); T=$T"

# ---- the two configurations --------------------------------------------------
SWARM2=$ROOT/tests/fixtures/swarm.res   # the guide's, byte for byte
check "tests/fixtures/swarm.res is the guide's swarm.res (the shipped example)" \
	bash -c "tr -s ' \t\n' ' ' <'$SWARM2' | grep -q 'resource swarm { device /dev/drbd0; meta-disk internal;'"
# the tiebreaker variant, as docs/quorum.md adds a third node: node ids,
# quorum majority, the tiebreaker's `on` section with disk none, the mesh
sed -e '/^   startup {/i\   options {\n      quorum majority;\n   }\n' \
	-e 's/^   on docker1 {/&\n      node-id 0;/' -e 's/^   on docker2 {/&\n      node-id 1;/' \
	-e '$d' "$SWARM2" >"$T/swarm3.res"
cat >>"$T/swarm3.res" <<'EOT'

   on tiebreaker {
      node-id 2;
      address   192.168.1.3:7790;
      disk none;
   }

   connection-mesh {
      hosts docker1 docker2 tiebreaker;
   }
}
EOT

start=$SECONDS
build_deb || { notok "the package builds (dpkg-buildpackage -us -uc -b)"; finish; }
ok "the package builds ($(basename "$DEB"))"
# the package's dependencies go into the cached root (no network in the nodes)
DEPS=$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed 's/[|(].*//; s/ //g' | grep -v '^$')
base_root $ROOT_PKGS $DEPS || { notok "debootstrap made a $CODENAME root in $BOOT_CACHE"; finish; }
ok "a $CODENAME root for the nodes (cached in $BOOT_CACHE)"

# ============================== two nodes ======================================
mkbridge
for n in docker1:192.168.1.1 docker2:192.168.1.2; do
	mknode "${n%%:*}" "${n#*:}" "$SWARM2" || { notok "${n%%:*}: package installed, unit enabled"; finish; }
done
ok "docker1 and docker2: package installed, swarm.res, unit enabled, fstab line"
for n in docker1 docker2; do
	run_in "$n" dipole create-md swarm >"$T/$n/create-md.log" 2>&1 || { cat "$T/$n/create-md.log"; notok "$n: create-md"; finish; }
done
ok "create-md swarm on both"

boot docker1; boot docker2
check "both boot to a running system (systemd as PID 1)" wait_for 120 bash -c "$FN; booted docker1 && booted docker2"
check "dipole@swarm is active on both after boot" \
	wait_for 60 bash -c "$FN; on docker1 systemctl is-active -q dipole@swarm && on docker2 systemctl is-active -q dipole@swarm"
check "and connected (no data yet: both Inconsistent)" wait_for 60 st docker1 "ps and ps[0]['connection'] == 'Connected'"
# the first time only, on one node: its data is the good copy; the filesystem
on docker1 dipole primary swarm --force >"$T/out" 2>&1 || { cat "$T/out"; notok "primary --force on docker1"; }
check "dipole mkfs swarm on docker1" on docker1 dipole mkfs swarm
check "the initial sync completes" wait_for 120 synced docker2
for n in docker1 docker2; do
	check "$n: systemctl start mnt-swarm.mount (from the fstab line) mounts /mnt/swarm" \
		on "$n" systemctl start mnt-swarm.mount
done
check "docker1 wrote a file before the reboot" on docker1 sh -c 'echo before-reboot >/mnt/swarm/before && sync'

say "power off both (systemd's poweroff), boot both"
down_soft docker1 & down_soft docker2 & wait
check "both power off (systemd's poweroff to the end)" \
	bash -c "grep -q 'Powering off' '$T/docker1/console.log' && grep -q 'Powering off' '$T/docker2/console.log'"
boot docker1; boot docker2
check "both boot again" wait_for 120 bash -c "$FN; booted docker1 && booted docker2"
for n in docker1 docker2; do
	check "$n: /mnt/swarm is mounted at boot, from the fstab line alone" wait_for 90 mounted "$n"
done
mounted docker1 && mounted docker2 || { show docker1; show docker2; }
check "both connected and UpToDate after the reboot" wait_for 90 bash -c "$FN; synced docker1 && synced docker2"
check "the file written before the reboot is there on both" \
	bash -c "$FN; [ \"\$(on docker1 cat /mnt/swarm/before)\" = before-reboot ] && [ \"\$(on docker2 cat /mnt/swarm/before)\" = before-reboot ]"
check "a file written on docker1 is read on docker2" \
	bash -c "$FN; on docker1 sh -c 'echo from-docker1 >/mnt/swarm/one' && [ \"\$(on docker2 cat /mnt/swarm/one)\" = from-docker1 ]"
check "a file written on docker2 is read on docker1" \
	bash -c "$FN; on docker2 sh -c 'echo from-docker2 >/mnt/swarm/two' && [ \"\$(on docker1 cat /mnt/swarm/two)\" = from-docker2 ]"

# a node powered off hard: the one that does not own the filesystem
# (the owner's loss needs dipolefs failover, issue 14)
OWNER=$(owner_of docker1)
case $OWNER in docker1) VICTIM=docker2 ;; docker2) VICTIM=docker1 ;; *) VICTIM=docker2; notok "status names the filesystem's owner (got '$OWNER')" ;; esac
SURV=$OWNER; [ "$SURV" = docker1 ] || [ "$SURV" = docker2 ] || SURV=docker1
say "owner $OWNER; powering off $VICTIM hard (its PID 1 killed)"
down_hard "$VICTIM"
check "$SURV keeps serving /mnt/swarm while $VICTIM is off (a write succeeds)" \
	timeout 60 bash -c "$FN; on $SURV sh -c 'dd if=/dev/urandom of=/mnt/swarm/meanwhile bs=1M count=8 2>/dev/null && sync'"
SUM=$(on "$SURV" md5sum /mnt/swarm/meanwhile | cut -d' ' -f1)
boot "$VICTIM"
check "$VICTIM boots again" wait_for 120 booted "$VICTIM"
check "$VICTIM rejoins by itself: connected, resynced, UpToDate on both" \
	wait_for 120 bash -c "$FN; synced docker1 && synced docker2"
check "$VICTIM: /mnt/swarm mounted again at boot" wait_for 60 mounted "$VICTIM"
check "the file written while $VICTIM was off is on its mount, whole" \
	bash -c "$FN; [ \"\$(on $VICTIM md5sum /mnt/swarm/meanwhile | cut -d' ' -f1)\" = '$SUM' ]"
check "no split brain (neither journal mentions one)" bash -c "$FN; no_split_brain docker1 && no_split_brain docker2"
synced "$VICTIM" && mounted "$VICTIM" || { show docker1; show docker2; }

# a broken configuration: the doctor says why, in the unit's journal
say "docker2 with a broken swarm.res: the doctor's finding in its journal"
down_soft docker2
cp "$T/docker2/root/etc/drbd.d/swarm.res" "$T/swarm.good"
sed -i 's/^      disk \/dev\/docker\/swarm;/      disk \/dev\/docker\/swarm/' "$T/docker2/root/etc/drbd.d/swarm.res"
boot docker2
check "docker2 boots with it" wait_for 120 booted docker2
check "dipole@swarm failed on docker2" wait_for 60 on docker2 systemctl is-failed -q dipole@swarm
on docker2 journalctl -q -b --no-pager -u dipole@swarm >"$T/journal" 2>&1
check "journalctl -u dipole@swarm has the doctor's finding (config-parse, file:line:col)" \
	grep -qE 'error +config-parse: .*/etc/drbd.d/swarm.res:[0-9]+:[0-9]+: expected' "$T/journal"
check "the journal says the start failed there (the ExecStartPre, a control process)" \
	bash -c "grep -qi 'control process exited' '$T/journal' && grep -q \"Failed with result 'exit-code'\" '$T/journal'"
check "and the mount did not half-start" bash -c "$FN; ! mounted docker2"
sed 's/^/#   /' "$T/journal" | head -12
cp "$T/swarm.good" "$T/docker2/root/etc/drbd.d/swarm.res"
check "fixed, the service and the mount start" \
	on docker2 sh -c 'systemctl reset-failed dipole@swarm && systemctl start dipole@swarm mnt-swarm.mount'
check "and docker2 is back in sync" wait_for 90 bash -c "$FN; synced docker1 && synced docker2"

# x-systemd.automount: the issue's fstab line. mount.dipole makes the
# mount itself and hands it to the daemon (docs/dipolefs.md); on failure
# the journal is printed, to see why.
on docker2 systemctl stop mnt-swarm.mount
sed -i 's/_netdev,nofail /_netdev,nofail,x-systemd.automount /' "$T/docker2/root/etc/fstab"
on docker2 sh -c 'systemctl daemon-reload && systemctl start mnt-swarm.automount'
if [ "$(on docker2 timeout 60 cat /mnt/swarm/one 2>&1)" = from-docker1 ]; then
	ok "x-systemd.automount: /mnt/swarm mounts on first access, the file read"
	check "... and it is dipolefs under the automount point" \
		on docker2 sh -c 'findmnt -n -o FSTYPE /mnt/swarm | grep -qx fuse.dipole'
else
	notok "x-systemd.automount: /mnt/swarm mounts on first access, the file read"
	on docker2 journalctl -q -b --no-pager -u mnt-swarm.mount -u mnt-swarm.automount -u dipole@swarm |
		tail -25 | sed 's/^/#   /'
fi
on docker2 systemctl stop mnt-swarm.automount mnt-swarm.mount
sed -i 's/,x-systemd.automount / /' "$T/docker2/root/etc/fstab"
on docker2 systemctl daemon-reload
down_hard docker1; down_hard docker2

# ======================= two nodes + tiebreaker ===================================
say "two nodes and a tiebreaker (quorum majority)"
for n in docker1 docker2; do
	umount "$T/$n/root" && rm -rf "${T:?}/$n" && ip netns del "dpboot$$$n"
done
: >"$T/nodes"
for n in docker1:192.168.1.1 docker2:192.168.1.2 tiebreaker:192.168.1.3; do
	mknode "${n%%:*}" "${n#*:}" "$T/swarm3.res" || { notok "${n%%:*}: installed (tiebreaker setup)"; finish; }
done
rm -f "$T/tiebreaker/tiebreaker.img"   # disk none: no disk passed in
for n in docker1 docker2; do
	run_in "$n" dipole create-md swarm >"$T/$n/create-md.log" 2>&1 || { cat "$T/$n/create-md.log"; notok "$n: create-md (3)"; }
done
boot docker1; boot docker2; boot tiebreaker
check "three nodes boot" wait_for 120 bash -c "$FN; booted docker1 && booted docker2 && booted tiebreaker"
check "all three connected" wait_for 60 bash -c "$FN;
	for n in docker1 docker2 tiebreaker; do st \$n \"len(ps) == 2 and all(p['connection'] == 'Connected' for p in ps)\" || exit 1; done"
on docker1 dipole primary swarm --force >"$T/out" 2>&1 || { cat "$T/out"; notok "primary --force on docker1 (3)"; }
check "mkfs on docker1, initial sync" bash -c "$FN; on docker1 dipole mkfs swarm && wait_for 120 synced docker2"
for n in docker1 docker2 tiebreaker; do
	check "$n: mnt-swarm.mount starts" on "$n" systemctl start mnt-swarm.mount
done
check "a file written on docker1 is read on docker2 and on the tiebreaker" \
	bash -c "$FN; on docker1 sh -c 'echo three >/mnt/swarm/t' &&
		[ \"\$(on docker2 cat /mnt/swarm/t)\" = three ] && [ \"\$(on tiebreaker cat /mnt/swarm/t)\" = three ]"
OWNER=$(owner_of docker2)
case $OWNER in docker1) VICTIM=docker2 ;; docker2) VICTIM=docker1 ;; *) VICTIM=docker2; notok "status names the owner (3; got '$OWNER')" ;; esac
SURV=$OWNER; [ "$SURV" = docker1 ] || [ "$SURV" = docker2 ] || SURV=docker1
say "owner $OWNER; powering off $VICTIM hard"
down_hard "$VICTIM"
check "the survivor $SURV keeps serving: a write on its mount succeeds" \
	timeout 90 bash -c "$FN; on $SURV sh -c 'dd if=/dev/urandom of=/mnt/swarm/alone bs=1M count=8 2>/dev/null && sync'"
check "and one through the tiebreaker's mount" \
	timeout 90 bash -c "$FN; on tiebreaker sh -c 'echo via-tiebreaker >/mnt/swarm/tb && sync'"
check "the survivor has quorum and stays Primary, UpToDate" \
	st "$SURV" "o['role'] == 'Primary' and o['disk'] == 'UpToDate'"
SUM=$(on "$SURV" md5sum /mnt/swarm/alone | cut -d' ' -f1)
boot "$VICTIM"
check "$VICTIM boots again and rejoins: all connected, UpToDate" \
	wait_for 120 bash -c "$FN; booted $VICTIM && synced docker1 && synced docker2 && synced tiebreaker"
check "$VICTIM: /mnt/swarm mounted at boot, with what was written meanwhile" \
	bash -c "$FN; wait_for 60 mounted $VICTIM &&
		[ \"\$(on $VICTIM md5sum /mnt/swarm/alone | cut -d' ' -f1)\" = '$SUM' ] && [ \"\$(on $VICTIM cat /mnt/swarm/tb)\" = via-tiebreaker ]"
check "no split brain (3)" bash -c "$FN; no_split_brain docker1 && no_split_brain docker2"
synced "$VICTIM" || { show docker1; show docker2; show tiebreaker; }
for n in docker1 docker2 tiebreaker; do down_hard "$n"; done
say "done in $((SECONDS - start)) s"
finish
