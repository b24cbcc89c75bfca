#!/usr/bin/env bash
# The man pages (man/, roff) keep up with the program: every command of
# `dipole --help` is described in dipole(8), the pages render without
# groff warnings (long code lines aside), and mount.dipole(8) explains each
# option of the fstab line it recommends.
. "$(dirname "$0")/lib.sh"
for m in "$ROOT"/man/*.[0-9]; do
	check "$(basename "$m") renders without warnings" bash -c "
		out=\$(MANWIDTH=80 man --warnings -l $m 2>&1 >/dev/null | grep -v 'cannot adjust line\|can.t break line')
		[ -z \"\$out\" ] || { echo \"\$out\"; false; }"
done
for c in $("$DIPOLE" --help | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }'); do
	lit="\\fB${c//-/\\-} "   # as roff writes it: \fBcreate\-md RES...
	check "dipole(8) describes '$c'" grep -qF -- "$lit" "$ROOT/man/dipole.8"
done
for o in _netdev nofail '0 0'; do
	check "mount.dipole(8) explains '$o' of the fstab line" grep -q "^\\\\fB$o\\\\fR\$" "$ROOT/man/mount.dipole.8"
done
# the mount options the program takes (as its unknown-option error lists
# them) are each described in both pages and in docs/dipole.8.md
for o in $("$DIPOLE" mount r0 /nonexistent -o wibble 2>&1 | sed -n 's/^  known: \(.*\); ignored.*/\1/p' |
	tr -d ' ' | tr ',' '\n' | sed 's/=.*//'); do
	roff="\\fB${o//-/\\-}"
	check "dipole(8) describes mount option '$o'" grep -qF -- "$roff" "$ROOT/man/dipole.8"
	check "mount.dipole(8) describes mount option '$o'" grep -qF -- "$roff" "$ROOT/man/mount.dipole.8"
	check "docs/dipole.8.md describes mount option '$o'" grep -qF -- "\`$o" "$ROOT/docs/dipole.8.md"
done
check "dipole.conf(5) shows the example swarm.res" grep -q 'become\\-primary\\-on both;' "$ROOT/man/dipole.conf.5"
finish
