# fish completion for redo (goredo 1.x compatible, daemon-backed).
# Install: copy to ~/.config/fish/completions/redo.fish (fish loads completions per command
# name, so also link it as redo-ifchange.fish, redo-log.fish, ...), or source it from
# ~/.config/fish/config.fish.

set -l redo_cmds redo redo-ifchange redo-ifcreate redo-always redo-stamp redo-whichdo redo-targets redo-sources redo-ood redo-affects redo-dot redo-log redo-cleanup redo-depfix

for c in $redo_cmds
    complete -c $c -s h -l help -d 'print help'
    complete -c $c -l version -d 'print the version'
end

for c in redo redo-ifchange
    complete -c $c -o j -x -a '0 1 2 4 8 16' -d 'run up to N jobs at once, 0 = unlimited'
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
end
complete -c redo -l daemon-status -d 'print the state of the project daemon'
complete -c redo -l daemon-stop -d 'ask the project daemon to exit'

complete -c redo-log -o r -d 'also the dependencies logs, in build order'
complete -c redo-log -o c -d 'also how each job ran'
complete -c redo-cleanup -o n -d 'dry run'
complete -c redo-dot -l no-outside -d 'leave files outside the project root out'
complete -c redo-cleanup -f -a 'tmp log lock full'

for c in redo redo-ifchange redo-whichdo redo-sources redo-ood redo-dot redo-log
    complete -c $c -a '(redo-targets 2>/dev/null)' -d 'target'
end
