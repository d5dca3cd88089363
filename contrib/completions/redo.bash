# bash completion for redo (goredo 1.x compatible, daemon-backed).
# Install: source this file from ~/.bashrc, or copy it to
# /usr/share/bash-completion/completions/redo (and symlink it as each redo-* name).

_redo_targets() {
    # Known targets beneath the current directory, plus .do-buildable names and files.
    redo-targets 2>/dev/null
}

_redo() {
    local cur prev cmd opts
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    cmd="${COMP_WORDS[0]##*/}"
    local build_opts="-j -x -xx -k -s -f -d -log-pid -log-wait -log-lock -log-js -no-progress -no-status -h --help --version"
    case "$cmd" in
        redo) opts="$build_opts --daemon-status --daemon-stop" ;;
        redo-ifchange) opts="$build_opts" ;;
        redo-log) opts="-r -c -h --help --version" ;;
        redo-cleanup) opts="-n -h --help --version" ;;
        redo-dot) opts="--no-outside -h --help --version" ;;
        *) opts="-h --help --version" ;;
    esac
    if [ "$prev" = "-j" ]; then
        COMPREPLY=( $(compgen -W "0 1 2 4 8 16" -- "$cur") )
        return 0
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
        return 0
    fi
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
            COMPREPLY=( $( { compgen -W "$(_redo_targets)" -- "$cur"; compgen -f -- "$cur"; } | sort -u ) ) ;;
    esac
    return 0
}

complete -F _redo redo redo-ifchange redo-ifcreate redo-always redo-stamp redo-whichdo \
    redo-targets redo-sources redo-ood redo-affects redo-dot redo-log redo-cleanup redo-depfix
