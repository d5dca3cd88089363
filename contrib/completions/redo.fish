# fish completion for redo (goredo 1.x compatible, daemon-backed).
# Install: contrib/install.sh puts it in PREFIX/share/fish/vendor_completions.d/ (as redo.fish
# and as each redo-*.fish, since fish loads completions by command name); or copy it to
# ~/.config/fish/completions/ under those names.
# The options are those each command's --help lists (tests/tests/query.rs checks that).

set -l redo_cmds redo redo-ifchange redo-ifcreate redo-always redo-stamp redo-whichdo redo-targets redo-sources redo-ood redo-affects redo-dot redo-log redo-cleanup redo-depfix

for c in $redo_cmds
    complete -c $c -s h -l help -d 'print help'
    complete -c $c -l version -d 'print the version'
end

for c in redo redo-ifchange
    complete -c $c -o j -x -a '0 1 2 4 8 16' -d 'run up to N jobs at once, 0 = unlimited'
    complete -c $c -l events -x -a 'json' -d 'also write the build events as JSON lines on stdout'
    complete -c $c -l timings -F -d 'write an HTML report of where the build time went'
    complete -c $c -l trace -r -F -d 'write the build as Chrome trace-event JSON'
    complete -c $c -o x -d 'trace the .do files this command starts'
    complete -c $c -o xx -d 'trace every .do file, nested ones too'
    complete -c $c -o k -d 'keep each job stderr in .redo/TARGET.log'
    complete -c $c -o s -d 'do not print the jobs stderr'
    complete -c $c -o f -d 'rebuild without the out-of-date check'
    complete -c $c -o d -d 'print debug messages'
    complete -c $c -o log-pid -d 'prefix job stderr lines with the pid'
    complete -c $c -o log-wait -d 'print a line when a job is about to run'
    complete -c $c -o log-lock -d 'print lock messages'
    complete -c $c -o log-js -d 'print job token messages'
    complete -c $c -o no-progress -d 'no completion lines, no status line'
    complete -c $c -o no-status -d 'no status line'
    complete -c $c -o keep-going -d 'build every target that can be built, report every failure'
    complete -c $c -o shuffle -d 'start the targets in random order'
end
complete -c redo -o watch -d 'build again whenever an input changes'
complete -c redo -l daemon-status -d 'print the state of the project daemon'
complete -c redo -l daemon-stop -d 'ask the project daemon to exit'
complete -c redo -l daemon-watch -x -a 'off on overflow' -d 'switch the daemon file watcher'
complete -c redo -o symlinks -d 'make the command links in the current directory'

complete -c redo-log -o r -d 'also the dependencies logs, in build order'
complete -c redo-log -o c -d 'also how each job ran'
complete -c redo-cleanup -o n -d 'dry run'
complete -c redo-dot -l no-outside -d 'leave files outside the project root out'
complete -c redo-cleanup -f -a 'tmp log lock full'

# Targets: the ones redo knows, and those a NAME.do in the directory of the token being
# completed would build even if never built (not default*.do).
function __redo_targets
    redo-targets 2>/dev/null
    set -l tok (commandline -ct)
    set -l dir (string match -r '^.*/' -- $tok)
    for f in $dir*.do
        set -l b (basename $f)
        string match -q 'default*' -- $b; and continue
        echo $dir(string replace -r '\.do$' '' -- $b)
    end
end

for c in redo redo-ifchange redo-whichdo redo-sources redo-ood redo-dot redo-log
    complete -c $c -a '(__redo_targets)' -d 'target'
end
