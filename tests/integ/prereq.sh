#!/usr/bin/env bash
# prereq — tests/prereq, which `make check` runs first: quiet and exit 0 on
# this machine (the suite is running, so it has everything); with a tool
# taken away it names exactly that tool, says how to get it and exits 1.
source "$(dirname "$0")/lib.sh"
PREREQ=$ROOT/tests/prereq

expect_rc "passes here (exit 0)" 0 "" bash "$PREREQ"
check "and prints nothing" test ! -s "$T/out"

# without: a PATH of links to everything on ours except one tool
without() { # TOOL CMD...
	local tool=$1 dir; shift
	mkdir -p "$T/bin"
	# earlier PATH entries win, so link the later ones first and overwrite
	for dir in $(tr ':' '\n' <<<"$PATH" | tac); do
		[ -d "$dir" ] && ln -sf "$dir"/* "$T/bin/" 2>/dev/null
	done
	rm -f "$T/bin/$tool"
	PATH=$T/bin "$@"
}
expect_rc "nbdinfo missing: named, with the package, exit 1" 1 \
	"^dipole: make check needs nbdinfo: bash scripts/install-deps \(Debian package libnbd-bin\)$" \
	without nbdinfo bash "$PREREQ"
check "only what is missing is named" test "$(grep -c 'needs' "$T/out")" = 1
rm -rf "$T/bin"
expect_rc "qemu-io missing: named" 1 "needs qemu-io: .*qemu-utils" without qemu-io bash "$PREREQ"

expect_rc "a compiler that is not there: libFuzzer named" 1 "needs /nonexistent/clang \(libFuzzer\)" \
	env FUZZ_CC=/nonexistent/clang bash "$PREREQ"
# gcc has no libFuzzer: the trial compile must catch it, not just the name
expect_rc "a compiler without libFuzzer: named" 1 "needs gcc -fsanitize=fuzzer" env FUZZ_CC=gcc bash "$PREREQ"

check "fast: under 2 s" bash -c "s=\$(date +%s%N); bash '$PREREQ'; [ \$(( (\$(date +%s%N) - s) / 1000000 )) -lt 2000 ]"
finish
