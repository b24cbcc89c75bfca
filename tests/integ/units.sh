#!/usr/bin/env bash
# The shipped systemd units and the fstab generator, checked with systemd's
# own tools: `systemd-analyze verify` of every unit in systemd/ (any output
# is a failure: it only warns on misspelled keys), and of the units
# systemd-fstab-generator and dipole-fstab-generator make of a temp fstab;
# the generator's drop-ins, unit names (as systemd-escape makes them) and
# refusals. No systemd needs to run.
. "$(dirname "$0")/lib.sh"
if ! command -v systemd-analyze >/dev/null; then
	echo "# units: skipped: systemd-analyze is missing (Debian package systemd; bash scripts/install-deps)"
	exit 0
fi
GEN=$T/dipole-fstab-generator
ln -s "$DIPOLE" "$GEN"
FSTAB_GEN=
for d in /usr/lib/systemd/system-generators /lib/systemd/system-generators; do
	[ -x $d/systemd-fstab-generator ] && FSTAB_GEN=$d/systemd-fstab-generator && break
done

# verify UNIT... : systemd-analyze verify prints nothing and exits 0;
# our man pages are found through MANPATH (Documentation=man:... is checked)
mkdir -p "$T/man/man5" "$T/man/man8"
for m in "$ROOT"/man/*.[58]; do ln -s "$m" "$T/man/man${m##*.}/"; done
verify() {
	local out rc
	out=$(MANPATH=$T/man systemd-analyze verify "$@" 2>&1)
	rc=$?
	[ $rc -eq 0 ] && [ -z "$out" ] && return 0
	echo "$out"
	return 1
}

# every shipped unit, with ExecStart= pointing at the binary under test
mkdir -p "$T/units"
n=0
for u in "$ROOT"/systemd/*.service "$ROOT"/systemd/*.mount "$ROOT"/systemd/*.target; do
	[ -f "$u" ] || continue
	name=$(basename "$u")
	inst=${name/@./@swarm.}
	sed "s|/usr/sbin/dipole|$DIPOLE|g" "$u" >"$T/units/$inst"
	check "systemd-analyze verify $name (as $inst) says nothing" verify "$T/units/$inst"
	n=$((n + 1))
done
check "systemd/ ships dipole@.service" test -f "$ROOT/systemd/dipole@.service"
check "the unit is Type=notify, started in the foreground, stopped by down" \
	grep -qzE 'Type=notify.*ExecStart=/usr/sbin/dipole \$DIPOLE_OPTS up %i --foreground.*ExecStop=/usr/sbin/dipole \$DIPOLE_OPTS down %i' \
	"$ROOT/systemd/dipole@.service"
check "the unit runs the doctor before up (ExecStartPre), with the same options" \
	awk '$0 == "ExecStartPre=/usr/sbin/dipole $DIPOLE_OPTS doctor %i" { pre = NR }
		/^ExecStart=/ { start = NR } END { exit !(pre && start && pre < start) }' "$ROOT/systemd/dipole@.service"
# what systemd runs there, run the same way: the doctor stops the start on
# an error (exit 1) or an uncheckable configuration (exit 2), not on warnings
printf 'resource swarm {\n on %s { address 127.0.0.1:%s; disk %s; }\n on other { address 127.0.0.2:%s; disk %s; }\n}\n' \
	"$(uname -n)" "$(free_port)" "$T/missing.img" 7790 "$T/missing.img" >"$T/doc.res"
expect_rc "ExecStartPre's doctor fails the start on an error, naming it (disk-missing)" 1 "disk-missing" \
	"$DIPOLE" -c "$T/doc.res" doctor swarm
expect_rc "and on a resource the configuration lacks (exit 2, resource-unknown)" 2 "resource-unknown" \
	"$DIPOLE" -c "$T/doc.res" doctor nosuch
check "the unit restarts on failure with a limit, after network-online.target" \
	grep -qzE 'Wants=network-online.target.*After=network-online.target.*StartLimitBurst=[0-9]+.*Restart=on-failure' \
	"$ROOT/systemd/dipole@.service"
# the harness itself: a misspelled key must fail it
sed 's/^Restart=/Restartt=/' "$T/units/dipole@swarm.service" >"$T/bad@swarm.service"
if verify "$T/bad@swarm.service" >"$T/bad.out" 2>&1; then notok "verify fails on a misspelled key (the check can fail)"
else ok "verify fails on a misspelled key (the check can fail)"; fi

# ---- the generator
mkdir -p "$T/gen"/{n,e,l}
cat >"$T/fstab" <<'EOT'
# a comment, a blank line, other filesystems: ignored

/dev/sda1   /            ext4    defaults                      0 1
swarm       /mnt/swarm   dipole  _netdev,x-systemd.automount   0 0
data-1      /srv/a\040b//c/  dipole  defaults,_netdev         0 0
local       /mnt/local   dipole  defaults                      0 0
bad/name    /mnt/bad     dipole  _netdev                       0 0
rel         mnt/rel      dipole  _netdev                       0 0
EOT
SYSTEMD_FSTAB=$T/fstab "$GEN" "$T/gen/n" "$T/gen/e" "$T/gen/l" 2>"$T/gen.err"
check "the generator exits 0 even with bad lines" test $? -eq 0
D=$T/gen/n/mnt-swarm.mount.d/50-dipole.conf
check "the swarm line gets a drop-in for mnt-swarm.mount" test -f "$D"
check "which requires dipole@swarm.service" grep -qx 'Requires=dipole@swarm.service' "$D"
check "and orders the mount after it" grep -qx 'After=dipole@swarm.service' "$D"
check "a path with an escaped blank and doubled slashes: systemd-escape's unit name" \
	test -f "$T/gen/n/$(systemd-escape --path --suffix=mount '/srv/a b//c/').d/50-dipole.conf"
check "a resource with a dash keeps it in the instance (the unit uses %i)" \
	grep -rqx 'Requires=dipole@data-1.service' "$T/gen/n"
check "a line without _netdev gets no drop-in" test ! -e "$T/gen/n/mnt-local.mount.d"
check "and the generator says to add _netdev" grep -q "local on /mnt/local has no _netdev.*hint: add _netdev" \
	<(tr '\n' ' ' <"$T/gen.err")
check "a resource name no unit can carry is skipped, named" grep -q "resource name 'bad/name'" "$T/gen.err"
check "a relative mount point is skipped, named" grep -q "mount point 'mnt/rel'" "$T/gen.err"
check "nothing is written for other filesystems or to the early/late dirs" \
	bash -c "[ \$(find $T/gen -type f | wc -l) -eq 2 ] && [ -z \"\$(find $T/gen/e $T/gen/l -mindepth 1)\" ]"
check "no fstab: nothing written, exit 0" \
	bash -c "mkdir -p $T/g0 && SYSTEMD_FSTAB=$T/none $GEN $T/g0 $T/g0 $T/g0 && [ -z \"\$(ls -A $T/g0)\" ]"
expect_rc "called wrongly: usage, exit 2" 2 "usage: dipole-fstab-generator" "$GEN"
expect_rc "--help: usage, exit 0 (it was taken as the output directory)" 0 "usage: dipole-fstab-generator" "$GEN" --help
expect_rc "an option for a directory: usage, exit 2" 2 "usage: dipole-fstab-generator" "$GEN" -x

# unit names as systemd makes them, for awkward paths
for p in /mnt/swarm /mnt/swarm/ //mnt///x/./y /srv/my-data /srv/.hidden/x '/srv/ü ñ' '/srv/a\b' /srv/x:y_z.w /; do
	printf 'r0 %s dipole _netdev 0 0\n' "$(printf '%s' "$p" | sed 's/ /\\040/g')" >"$T/f1"
	rm -rf "$T/g1" && mkdir -p "$T/g1"
	SYSTEMD_FSTAB=$T/f1 "$GEN" "$T/g1" "$T/g1" "$T/g1" 2>/dev/null
	want=$(systemd-escape --path --suffix=mount "$p")
	check "unit name of '$p' is systemd-escape's ($want)" test -f "$T/g1/$want.d/50-dipole.conf"
done

# what systemd makes of it: systemd-fstab-generator's units with our
# drop-ins, and dipole@.service beside them, verify cleanly
if [ -n "$FSTAB_GEN" ]; then
	mkdir -p "$T/sd"/{n,e,l}
	grep -E 'swarm|data-1' "$T/fstab" >"$T/fstab2"
	SYSTEMD_FSTAB=$T/fstab2 "$FSTAB_GEN" "$T/sd/n" "$T/sd/e" "$T/sd/l"
	SYSTEMD_FSTAB=$T/fstab2 "$GEN" "$T/sd/n" "$T/sd/e" "$T/sd/l"
	check "systemd-fstab-generator made mnt-swarm.mount and .automount" \
		test -f "$T/sd/n/mnt-swarm.mount" -a -f "$T/sd/n/mnt-swarm.automount"
	# without the service the Requires= must fail verify: the drop-in is read
	expect_rc "without dipole@.service, verify names the missing service (the drop-in is read)" 1 \
		"dipole@swarm.service not found" systemd-analyze verify --man=no "$T/sd/n/mnt-swarm.mount"
	cp "$T/units/dipole@swarm.service" "$T/sd/n/dipole@.service"
	sed -i 's/^Documentation=.*//' "$T/sd/n/dipole@.service"
	check "the mount, automount and service verify together without a word" \
		bash -c "out=\$(systemd-analyze verify --man=no $T/sd/n/mnt-swarm.mount $T/sd/n/mnt-swarm.automount \
			'$T/sd/n/$(systemd-escape --path --suffix=mount '/srv/a b/c')' 2>&1) && [ -z \"\$out\" ] || { echo \"\$out\"; false; }"
	# and the line without _netdev, had it got a drop-in, is the cycle the generator avoids
	printf 'local /mnt/local dipole defaults 0 0\n' >"$T/fstab3"
	mkdir -p "$T/cy"/{n,e,l}
	SYSTEMD_FSTAB=$T/fstab3 "$FSTAB_GEN" "$T/cy/n" "$T/cy/e" "$T/cy/l"
	mkdir -p "$T/cy/n/mnt-local.mount.d"
	printf '[Unit]\nRequires=dipole@local.service\nAfter=dipole@local.service\n' >"$T/cy/n/mnt-local.mount.d/x.conf"
	cp "$T/sd/n/dipole@.service" "$T/cy/n/"
	check "(why: without _netdev such a drop-in is an ordering cycle)" \
		bash -c "systemd-analyze verify --man=no $T/cy/n/mnt-local.mount 2>&1 | grep -q 'ordering cycle'"
else
	echo "# units: systemd-fstab-generator not found: the combined verify is skipped"
fi
finish
