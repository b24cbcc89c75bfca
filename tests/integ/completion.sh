#!/usr/bin/env bash
# bash completion (completion/dipole.bash): commands, options, and resource
# names read from the configuration the command line names (-c FILE) or
# dipole's default; the command list matches `dipole --help`.
. "$(dirname "$0")/lib.sh"
BC=/usr/share/bash-completion/bash_completion
if [ ! -f $BC ]; then
	echo "# completion: skipped: $BC is missing (Debian package bash-completion; bash scripts/install-deps)"
	exit 0
fi
cat >"$T/c.res" <<'EOT'
resource swarm { on a { address 127.0.0.1:7790; disk /dev/null; } on b { address 127.0.0.2:7790; disk /dev/null; } }
resource data-1 { on a { address 127.0.0.1:7791; disk /dev/zero; } on b { address 127.0.0.2:7791; disk /dev/zero; } }
EOT
mkdir -p "$T/dir1" "$T/dir2"

# comp LINE : the completions bash offers at the end of LINE (words split on blanks)
comp() {
	bash -c '
		. "$1" && . "$2" || exit 9
		COMP_LINE=$3; COMP_POINT=${#COMP_LINE}
		read -ra COMP_WORDS <<<"$COMP_LINE"
		[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_dipole
		printf "%s\n" "${COMPREPLY[@]}" | sort' _ "$BC" "$ROOT/completion/dipole.bash" "$1"
}
D=$DIPOLE
check "commands: 'dipole st' offers status" bash -c "[ \"\$($(declare -f comp); BC=$BC ROOT=$ROOT comp '$D st')\" = status ]"
expect_rc "commands: every command of 'dipole --help' is offered, and no other" 0 "" bash -c "
	diff <($D --help | sed -n '/^commands:/,/^\$/p' | awk 'NR > 1 && NF { print \$1 }' | sort) \
		<($(declare -f comp); BC=$BC ROOT=$ROOT comp '$D ')"
check "resources from -c FILE after 'up'" bash -c "[ \"\$($(declare -f comp); BC=$BC ROOT=$ROOT comp '$D -c $T/c.res up ' | tr '\n' ' ')\" = 'data-1 swarm ' ]"
check "resources after global options and a prefix" bash -c "[ \"\$($(declare -f comp); BC=$BC ROOT=$ROOT comp '$D -c $T/c.res --node a status s')\" = swarm ]"
check "options of a command: 'up RES --f' offers --foreground" bash -c "[ \"\$($(declare -f comp); BC=$BC ROOT=$ROOT comp '$D -c $T/c.res up swarm --f')\" = --foreground ]"
check "no second resource after the first" bash -c "[ -z \"\$($(declare -f comp); BC=$BC ROOT=$ROOT comp '$D -c $T/c.res down swarm ')\" ]"
check "mount RES then a directory" bash -c "cd $T && [ \"\$($(declare -f comp); BC=$BC ROOT=$ROOT comp '$D -c $T/c.res mount swarm dir' | tr '\n' ' ')\" = 'dir1 dir2 ' ]"
check "mkfs --type offers ext4 and xfs" bash -c "[ \"\$($(declare -f comp); BC=$BC ROOT=$ROOT comp '$D mkfs swarm --type ' | tr '\n' ' ')\" = 'ext4 xfs ' ]"
check "a configuration that does not parse offers no resources, quietly" \
	bash -c "echo 'resource {' >$T/bad.res; [ -z \"\$($(declare -f comp); BC=$BC ROOT=$ROOT comp '$D -c $T/bad.res up ' 2>&1)\" ]"
finish
