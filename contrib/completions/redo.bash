# bash completion for redo (goredo 1.x compatible, daemon-backed).
# Install: contrib/install.sh puts it in PREFIX/share/bash-completion/completions/ (as redo and
# as each redo-* name, which is how bash-completion finds it); or source it from ~/.bashrc.
# The options are those each command's --help lists (tests/tests/query.rs checks that).

# Targets for the word being completed: the ones redo knows (redo-targets), and those a
# NAME.do in the word's directory would build even if never built (not default*.do).
_redo_targets() {
    local dir="" f b
    case "$1" in */*) dir="${1%/*}/" ;; esac
    redo-targets 2>/dev/null
    for f in "$dir"*.do; do
        [ -e "$f" ] || continue
        b="${f##*/}"
        case "$b" in default*) continue ;; esac
        printf '%s\n' "$dir${b%.do}"
    done
}

_redo() {
    local cur prev cmd opts
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    cmd="${COMP_WORDS[0]##*/}"
    local common="-h --help --version"
    local build_opts="-j --events=json --timings --timings= --trace= -x -xx -k -s -f -d -log-pid -log-wait -log-lock -log-js -no-progress -no-status -keep-going -shuffle"
    case "$cmd" in
        redo) opts="$build_opts -watch --daemon-status --daemon-stop --daemon-watch= -symlinks $common" ;;
        redo-ifchange) opts="$build_opts $common" ;;
        redo-log) opts="-r -c $common" ;;
        redo-cleanup) opts="-n $common" ;;
        redo-dot) opts="--no-outside $common" ;;
        *) opts="$common" ;;
    esac
    if [ "$prev" = "-j" ]; then
        COMPREPLY=( $(compgen -W "0 1 2 4 8 16" -- "$cur") )
        return 0
    fi
    case "$cur" in
        --daemon-watch=*)
            COMPREPLY=( $(compgen -W "off on overflow" -- "${cur#*=}") )
            return 0 ;;
        --timings=*|--trace=*)
            COMPREPLY=( $(compgen -f -- "${cur#*=}") )
            return 0 ;;
        -*)
            COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
            return 0 ;;
    esac
    case "$cmd" in
        redo-cleanup)
            COMPREPLY=( $(compgen -W "tmp log lock full" -- "$cur") ) ;;
        redo-always|redo-stamp|redo-depfix)
            COMPREPLY=() ;;
        redo-targets)
            COMPREPLY=( $(compgen -d -- "$cur") ) ;;
        redo-ifcreate|redo-affects)
            COMPREPLY=( $(compgen -f -- "$cur") ) ;;
        *)
            local IFS=$'\n'
            COMPREPLY=( $( { compgen -W "$(_redo_targets "$cur")" -- "$cur"; compgen -f -- "$cur"; } | sort -u ) ) ;;
    esac
    return 0
}

complete -F _redo redo redo-ifchange redo-ifcreate redo-always redo-stamp redo-whichdo \
    redo-targets redo-sources redo-ood redo-affects redo-dot redo-log redo-cleanup redo-depfix
