# SPDX-License-Identifier: GPL-2.0-or-later
# bash completion for netflash: the commands, and each command's options as
# its own --help lists them (so completion and help never disagree).
# Installed as /usr/share/bash-completion/completions/netflash.
_netflash() {
	local cur=${COMP_WORDS[COMP_CWORD]} cmd= i words
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--root) ((i++)) ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	if [ "${COMP_WORDS[COMP_CWORD - 1]}" = --root ]; then
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		return
	fi
	if [ -z "$cmd" ]; then
		words="$(netflash --help 2>/dev/null | awk '/^Commands:/ { f = 1; next } /^$/ { f = 0 } f { print $1 }')"
		mapfile -t COMPREPLY < <(compgen -W "$words --root --help --version" -- "$cur")
		return
	fi
	case $cur in
	-*)
		words="$(netflash "$cmd" --help 2>/dev/null | grep -o -- '--[a-z][a-z0-9-]*' | sort -u)"
		mapfile -t COMPREPLY < <(compgen -W "$words --root" -- "$cur")
		;;
	*) mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
	esac
}
complete -F _netflash netflash
