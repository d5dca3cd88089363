" Vim compiler file
" Compiler:    redo (goredo-compatible, with a build daemon)
" Usage:       :compiler redo   then   :make [targets]   (no target: all)

if exists('current_compiler')
  finish
endif
let current_compiler = 'redo'

if exists(':CompilerSet') != 2
  command -nargs=* CompilerSet setlocal <args>
endif

let s:save_cpo = &cpo
set cpo&vim

CompilerSet makeprg=redo-ifchange\ $*
execute 'CompilerSet errorformat=' . escape(redo#errorformat(), ' \|"')

let &cpo = s:save_cpo
unlet s:save_cpo
