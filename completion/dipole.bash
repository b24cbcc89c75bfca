# bash completion for dipole(8) — commands, their options and resource names.
# Resource names come from the configuration dipole itself would read: the
# -c/--config FILE on the command line being completed, else the default
# (/etc/dipole/dipole.conf, else /etc/drbd.d/*.res), through `dipole dump`.

_dipole_resources()
{
	local cfg=() i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-c | --config) cfg=(-c "${COMP_WORDS[i + 1]}") ;;
		--config=*) cfg=(-c "${COMP_WORDS[i]#--config=}") ;;
		esac
	done
	"${COMP_WORDS[0]}" "${cfg[@]}" dump 2>/dev/null |
		sed -n 's/^resource \([^ {]*\).*/\1/p'
}

_dipole()
{
	local cur prev words cword
	_init_completion || return

	local commands="create-md dump-md dump up down primary secondary connect
		disconnect invalidate resize resume-io verify wait-connect mkfs mount
		umount fs doctor status events"
	local globals="-c --config --node --run-dir -h --help -V --version"

	case $prev in
	-c | --config)
		_filedir
		return
		;;
	--run-dir)
		_filedir -d
		return
		;;
	--node)
		COMPREPLY=($(compgen -A hostname -- "$cur"))
		return
		;;
	--device)
		COMPREPLY=($(compgen -W "none" -- "$cur"))
		_filedir
		return
		;;
	--type)
		COMPREPLY=($(compgen -W "ext4 xfs" -- "$cur"))
		return
		;;
	--nbd-tcp | --metrics-listen | --timeout | --max-peers | -o)
		return
		;;
	esac

	# the subcommand: the first word that is not a global option or its value
	local i cmd="" cmdi=0
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-c | --config | --node | --run-dir) ((i++)) ;;
		-*) ;;
		*)
			cmd=${words[i]}
			cmdi=$i
			break
			;;
		esac
	done

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$globals" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		fi
		return
	fi

	local opts=""
	case $cmd in
	create-md) opts="--force --max-peers" ;;
	up) opts="--foreground --device --nbd-tcp --metrics-listen" ;;
	down | primary) opts="--force" ;;
	connect) opts="--discard-my-data" ;;
	wait-connect) opts="--timeout" ;;
	mkfs) opts="--type --force" ;;
	mount) opts="-o" ;;
	status | doctor) opts="--json" ;;
	events) opts="--once" ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))
		return
	fi

	# operands after the command: RES first (umount: a directory); mount: RES DIR
	local nargs=0
	for ((i = cmdi + 1; i < cword; i++)); do
		case ${words[i]} in
		--device | --nbd-tcp | --metrics-listen | --timeout | --max-peers | --type | -o) ((i++)) ;;
		-*) ;;
		*) ((nargs++)) ;;
		esac
	done
	case $cmd in
	umount)
		_filedir -d
		;;
	fs)
		if ((nargs == 0)); then
			COMPREPLY=($(compgen -W "move" -- "$cur"))
		elif ((nargs == 1)); then
			COMPREPLY=($(compgen -W "$(_dipole_resources)" -- "$cur"))
		fi
		;;
	mount)
		if ((nargs == 0)); then
			COMPREPLY=($(compgen -W "$(_dipole_resources)" -- "$cur"))
		elif ((nargs == 1)); then
			_filedir -d
		fi
		;;
	*)
		((nargs == 0)) && COMPREPLY=($(compgen -W "$(_dipole_resources)" -- "$cur"))
		;;
	esac
} &&
	complete -F _dipole dipole
