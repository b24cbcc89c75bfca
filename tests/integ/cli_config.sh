#!/usr/bin/env bash
# Configuration and command-line behaviour: the guide's swarm.res, dump,
# errors with file:line:col and exit 2, unknown node/resource, --help.
. "$(dirname "$0")/lib.sh"
FIX=$ROOT/tests/fixtures

expect_rc "swarm.res from the guide dumps unchanged" 0 "on docker2" \
	"$DIPOLE" -c "$FIX/swarm.res" --node docker1 dump swarm
"$DIPOLE" -c "$FIX/swarm.res" dump swarm >"$T/dump" 2>"$T/warn"
check "dump shows inherited device and node ids" \
	bash -c "grep -q 'device /dev/drbd0;' $T/dump && grep -q 'node-id 1;' $T/dump && grep -q 'address ipv4 192.168.1.2:7790;' $T/dump"
check "the guide's swarm.res has nothing dipole does not implement: no warnings" test ! -s "$T/warn"
printf 'resource r {\n  net { data-integrity-alg sha1; }\n  on a { address 127.0.0.1:7790; disk /x; }\n}\n' >"$T/ny.res"
"$DIPOLE" -c "$T/ny.res" dump r >/dev/null 2>"$T/warn2"
check "not-yet-implemented options are warned about with their location" \
	grep -q "ny.res:2:9: warning: option 'data-integrity-alg'" "$T/warn2"
# the normalized dump is itself a valid configuration that dumps the same
"$DIPOLE" -c "$T/dump" dump swarm 2>/dev/null >"$T/dump2"
check "the dump parses back to the same configuration" \
	bash -c "diff <(grep -v '^#' $T/dump) <(grep -v '^#' $T/dump2)"

printf 'resource r0 {\n  net {\n    protocol C\n  }\n  on a { address 127.0.0.1:7790; disk /tmp/x; }\n}\n' >"$T/bad.res"
expect_rc "syntax error: file:line:col, expected/found, exit 2" 2 "bad.res:4:3: expected ';' after 'protocol C', found '}'" \
	"$DIPOLE" -c "$T/bad.res" dump
expect_rc "syntax error carries a hint" 2 "hint:" "$DIPOLE" -c "$T/bad.res" dump
printf 'resource r0 {\n  on a { address 127.0.0.1:7790; disk /tmp/x; }\n  net { protocol Z; }\n}\n' >"$T/bad2.res"
expect_rc "bad option value names the valid ones" 2 "bad2.res:3:18: expected a valid value for 'protocol', found 'Z'" \
	"$DIPOLE" -c "$T/bad2.res" dump
printf 'resource r0 {   \t\n\n  on a { address 127.0.0.1:7790;   disk /tmp/x; }  \r\n  disk { wibble 3; }\n}   \n\n' >"$T/ws.res"
expect_rc "trailing spaces and CRLF are fine; unknown option warned" 0 "ws.res:4:10: warning: unknown option 'wibble'" \
	"$DIPOLE" -c "$T/ws.res" dump
expect_rc "missing config file is a clear error" 2 "cannot read configuration: No such file" \
	"$DIPOLE" -c "$T/nonexistent.res" dump
expect_rc "... whose hint is to check the path given" 2 "hint: check the path" "$DIPOLE" -c "$T/nonexistent.res" dump

mkres
expect_rc "unknown node lists the hosts the file knows" 2 "hosts known: a, b" \
	"$DIPOLE" -c "$T/r.res" --node zed --run-dir "$RUN" create-md r0
expect_rc "unknown resource lists the resources" 2 "resources known: r0" \
	"$DIPOLE" -c "$T/r.res" --node a dump nope
expect_rc "unknown command exits 2" 2 "unknown command 'frob'" "$DIPOLE" frob
expect_rc "no command prints usage and exits 2" 2 "usage: dipole" "$DIPOLE"
expect_rc "an unknown global option is named, by 'dipole:', not the binary's path" 2 \
	"^dipole: unknown option '--bogus'; try 'dipole --help'" "$DIPOLE" --bogus status
expect_rc "a global option without its value says so" 2 "dipole: option '-c' needs a value" "$DIPOLE" -c
expect_rc "missing resource argument exits 2" 2 "missing resource name" dp up
expect_rc "bad flag exits 2" 2 "unexpected argument '--bogus'" dp up r0 --bogus

# an option given last without its value is named as such, not as an
# "unexpected argument" (a user who typed the option would not know why)
expect_rc "up --device without a value says it needs one" 2 "dipole up: --device needs a value" dp up r0 --device
expect_rc "up --nbd-tcp without a value says it needs one" 2 "dipole up: --nbd-tcp needs a value" dp up r0 --nbd-tcp
expect_rc "up --metrics-listen without a value says it needs one" 2 "dipole up: --metrics-listen needs a value" \
	dp up r0 --metrics-listen
expect_rc "wait-connect --timeout abc names the bad value" 2 "--timeout needs seconds from 0 to 1000000 .got 'abc'" \
	dp wait-connect r0 --timeout abc
expect_rc "wait-connect --timeout without a value says it needs one" 2 "--timeout needs seconds" \
	dp wait-connect r0 --timeout
expect_rc "mkfs --type without a value says it needs one" 2 "dipole mkfs: --type needs a value" dp mkfs r0 --type
expect_rc "mount -o without a value says it needs one" 2 "dipole mount: -o needs a value" dp mount r0 "$T" -o
expect_rc "mount -o config= (empty) says it needs a value, not 'unknown'" 2 "mount option 'config=' needs a value" \
	dp mount r0 "$T" -o config=
expect_rc "mount -o node= (empty) says it needs a value" 2 "mount option 'node=' needs a value" dp mount r0 "$T" -o node=
expect_rc "events of an unknown resource says so (it printed nothing, exit 0)" 2 "no resource 'nosuch'" \
	timeout 10 "$DIPOLE" -c "$T/r.res" --node a --run-dir "$RUN" events nosuch
expect_rc "events --once of an unknown resource says so" 2 "no resource 'nosuch'" dp events nosuch --once

# a tiebreaker (`disk none;`) keeps no metadata: create-md there is told so,
# not "cannot open backing disk none"
printf 'resource r0 {\n  on a { address 127.0.0.1:7790; disk %s; }\n  on t { address 127.0.0.3:7790; disk none; }\n}\n' \
	"$T/a.img" >"$T/tb.res"
expect_rc "create-md on a diskless node says it keeps no metadata" 2 "node 't' is diskless .disk none;, .*tb.res:3.*no metadata" \
	"$DIPOLE" -c "$T/tb.res" --node t create-md r0
expect_rc "dump-md on a diskless node says the same" 2 "node 't' is diskless" "$DIPOLE" -c "$T/tb.res" --node t dump-md r0

# every command `dipole --help` lists answers --help with its usage, exit 0
cmds=$("$DIPOLE" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } /^$/ { on = 0 }')
helpok=1
for c in $cmds; do
	out=$("$DIPOLE" "$c" --help 2>&1) && echo "$out" | grep -q "usage: dipole .*$c" ||
		{ helpok=0; echo "    | $c --help: $out"; }
done
[ $helpok = 1 ] && [ "$(echo $cmds | wc -w)" -ge 20 ] && ok "--help works on every command ($(echo $cmds | wc -w))" ||
	notok "--help works on every command"
badok=1
for c in $cmds; do
	out=$(dp "$c" --bogus 2>&1)
	[ $? = 2 ] && echo "$out" | grep -q "dipole $c: unexpected argument '--bogus'" &&
		echo "$out" | grep -q "^  usage: dipole $c" || { badok=0; echo "    | $c --bogus: $out"; }
done
[ $badok = 1 ] && ok "an unknown flag on every command: exit 2, named, with the usage" ||
	notok "an unknown flag on every command: exit 2, named, with the usage"
check "global --help has no trailing spaces" bash -c '"$0" --help >"$1" && ! grep -n " $" "$1"' "$DIPOLE" "$T/help"
expect_rc "mount --help names cache=, grace= and io-timeout=" 0 "cache=SECONDS.*grace=SECONDS.*io-timeout=SECONDS" \
	bash -c '"$0" mount --help | tr "\n" " "' "$DIPOLE"
ln -s "$DIPOLE" "$T/mount.dipole" # mount(8)'s helper: the same binary by that name
expect_rc "mount.dipole -h names grace=" 0 "grace=SECONDS" bash -c '"$0" -h | tr "\\n" " "' "$T/mount.dipole"
expect_rc "global --help lists the commands and exit codes" 0 "exit codes" "$DIPOLE" --help
expect_rc "--version" 0 "^dipole [0-9]" "$DIPOLE" --version
expect_rc "verify of a resource that is not up says so (exit 3)" 3 "not up" dp verify r0
expect_rc "... and that another --run-dir finds another daemon" 3 "the same --run-dir DIR" dp status r0
finish
