# SPDX-License-Identifier: GPL-2.0-or-later
# bash completion for netflash: the commands and their subcommands, each
# command's options as its own --help lists them (so completion and help
# never disagree), the catalog's image names where an image is meant
# (--image, image rm|check|finish) and enrolled MACs where a worker is
# (release, history, reimage, power cycle, enroll --force), both read from
# `netflash ls --json` / `image ls --json` of the root in use.
# Installed as /usr/share/bash-completion/completions/netflash.

# The netflash command line so far, with its --root, for the lookups.
_netflash_run() {
	netflash ${_netflash_root:+--root "$_netflash_root"} "$@" 2>/dev/null
}

_netflash_images() {
	_netflash_run image ls --json | grep -o '"name":"[^"]*"' | cut -d'"' -f4
}

# Enrolled MACs in the colon spelling people type and print.
_netflash_macs() {
	_netflash_run ls --json | grep -o '"mac":"[^"]*"' | cut -d'"' -f4 | tr - :
}

_netflash() {
	local cur prev words cword cmd= sub= i
	# A MAC holds colons, which readline splits words at: bash-completion's
	# helpers join them again (and trim what is typed from the answers).
	if declare -F _get_comp_words_by_ref >/dev/null; then
		_get_comp_words_by_ref -n : cur prev words cword
	else
		words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
		cur=${words[cword]} prev=${words[cword - 1]}
	fi
	_netflash_root=
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		--root) ((i++)); _netflash_root=${words[i]} ;;
		--root=*) _netflash_root=${words[i]#--root=} ;;
		-*) ;;
		*) if [ -z "$cmd" ]; then cmd=${words[i]}; elif [ -z "$sub" ]; then sub=${words[i]}; fi ;;
		esac
	done
	_netflash_complete
	if declare -F __ltrim_colon_completions >/dev/null; then
		__ltrim_colon_completions "$cur"
	fi
}

# Fills COMPREPLY for cur, given cmd, sub and prev (from _netflash).
_netflash_complete() {
	local words
	case $prev in
	--root | --boot-mount | --from-boot)
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		return ;;
	--image)
		mapfile -t COMPREPLY < <(compgen -W "$(_netflash_images)" -- "$cur")
		return ;;
	esac
	if [ -z "$cmd" ]; then
		words="$(netflash --help 2>/dev/null | awk '/^Commands:/ { f = 1; next } /^$/ { f = 0 } f { print $1 }')"
		mapfile -t COMPREPLY < <(compgen -W "$words --root --help --version" -- "$cur")
		return
	fi
	if [[ $cur == -* ]]; then
		words="$(netflash "$cmd" --help 2>/dev/null | grep -o -- '--[a-z][a-z0-9-]*' | sort -u)"
		mapfile -t COMPREPLY < <(compgen -W "$words --root" -- "$cur")
		return
	fi
	case $cmd in
	image | boot-files | power)
		if [ -z "$sub" ]; then
			# Subcommands from the Usage lines: "netflash ... image add FILE".
			words="$(netflash "$cmd" --help 2>/dev/null |
				awk -v c="$cmd" '{ for (i = 1; i < NF; i++) if ($i == c) { print $(i + 1); break } }' |
				grep -v '^[-[]' | tr '|' '\n' | sort -u)"
			mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
		elif [ "$cmd $sub" = "image add" ]; then
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		elif [ "$cmd" = image ]; then
			mapfile -t COMPREPLY < <(compgen -W "$(_netflash_images)" -- "$cur")
		elif [ "$cmd $sub" = "power cycle" ]; then
			mapfile -t COMPREPLY < <(compgen -W "$(_netflash_macs)" -- "$cur")
		fi ;;
	release | history | reimage | enroll)
		mapfile -t COMPREPLY < <(compgen -W "$(_netflash_macs)" -- "$cur") ;;
	*) mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
	esac
}
complete -F _netflash netflash
