#!/usr/bin/env bash
# The Debian package: built from a copy of the tracked tree with
# `dpkg-buildpackage -us -uc -b` (no sanitizers: the release build), unpacked
# with `dpkg -x` into a temp root, its files checked, the packaged binary
# run, and lintian run on it (no errors). About half a minute on two cores
# (a release build and lintian); alone: `make package-test`.
. "$(dirname "$0")/lib.sh"
for t in dpkg-buildpackage:dpkg-dev dh:debhelper lintian:lintian fakeroot:fakeroot; do
	command -v "${t%%:*}" >/dev/null || { notok "${t%%:*} is installed (Debian package ${t#*:}; bash scripts/install-deps)"; finish; }
done
mkdir -p "$T/src"
git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 cp --parents -t "$T/src")
(cd "$T/src" && dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1
rc=$?
check "dpkg-buildpackage -us -uc -b succeeds" test $rc -eq 0
[ $rc -eq 0 ] || { tail -30 "$T/build.log"; finish; }
DEB=$(ls "$T"/dipole_*.deb 2>/dev/null | head -1)
check "it made dipole_VERSION_ARCH.deb" test -n "$DEB"
check "the build used no sanitizer" bash -c "! grep -q -- '-fsanitize' $T/build.log"
check "the build used dpkg-buildflags' hardening (fortify, relro)" \
	bash -c "grep -q -- '-D_FORTIFY_SOURCE' $T/build.log && grep -q -- '-z,relro' $T/build.log"

R=$T/root
dpkg -x "$DEB" "$R"
for f in usr/sbin/dipole sbin/mount.dipole lib/systemd/system/dipole@.service \
	lib/systemd/system-generators/dipole-fstab-generator \
	usr/share/man/man8/dipole.8.gz usr/share/man/man8/mount.dipole.8.gz usr/share/man/man5/dipole.conf.5.gz \
	usr/share/bash-completion/completions/dipole usr/share/doc/dipole/examples/swarm.res \
	usr/share/doc/dipole/copyright etc/default/dipole; do
	check "the package installs /$f" test -e "$R/$f" -o -L "$R/$f"
done
# the README's service steps begin with `cp swarm.res /etc/drbd.d/`; on a
# fresh machine without drbd-utils nothing else makes that directory
check "the package makes /etc/drbd.d, where the README copies swarm.res" test -d "$R/etc/drbd.d"
check "mount.dipole is a link to /usr/sbin/dipole" test "$(readlink "$R/sbin/mount.dipole")" = /usr/sbin/dipole
check "the generator is a link to /usr/sbin/dipole" \
	test "$(readlink "$R/lib/systemd/system-generators/dipole-fstab-generator")" = /usr/sbin/dipole
check "the unit starts /usr/sbin/dipole" grep -q '^ExecStart=/usr/sbin/dipole ' "$R/lib/systemd/system/dipole@.service"
check "/etc/default/dipole is a conffile" bash -c "dpkg-deb -e $DEB $T/ctl && grep -qx /etc/default/dipole $T/ctl/conffiles"
check "the binary is not built with sanitizers" bash -c "! nm -D $R/usr/sbin/dipole | grep -q __asan"
expect_rc "the packaged binary runs: --help" 0 "usage: dipole" "$R/usr/sbin/dipole" --help
expect_rc "the packaged binary parses the example config" 0 "resource swarm" \
	"$R/usr/sbin/dipole" -c "$R/usr/share/doc/dipole/examples/swarm.res" dump
expect_rc "called mount.dipole it is the mount helper" 0 "usage: mount.dipole" bash -c "exec -a mount.dipole $R/usr/sbin/dipole -h"
check "Depends: shlibs (libfuse3, libsystemd) and the tools" \
	bash -c "dpkg-deb -f $DEB Depends | grep -q libfuse3 && dpkg-deb -f $DEB Depends | grep -q libsystemd0 &&
		dpkg-deb -f $DEB Depends | grep -q fuse3 && dpkg-deb -f $DEB Depends | grep -q e2fsprogs"
check "the man pages render without warnings" bash -c "for m in $R/usr/share/man/man*/*.gz; do
	out=\$(MANWIDTH=80 man --warnings -l \$m 2>&1 >/dev/null | grep -v 'cannot adjust line\|can.t break line'); [ -z \"\$out\" ] || { echo \$m: \$out; exit 1; }; done"
lintian --tag-display-limit 0 --info "$DEB" >"$T/lintian.out" 2>&1
check "lintian: no errors" bash -c "! grep -q '^E:' $T/lintian.out"
sed 's/^/# lintian: /' "$T/lintian.out"
finish
