" redo: :RedoWatch [targets] rebuilds on save and fills the quickfix list after each round;
" :RedoWatchStop ends it. :compiler redo + :make builds once. See README.md.

if exists('g:loaded_redo') || (!has('nvim') && !has('job'))
  finish
endif
let g:loaded_redo = 1

command! -nargs=* -complete=file RedoWatch call redo#watch(<q-args>)
command! -nargs=0 RedoWatchStop call redo#stop()

augroup redo_watch
  autocmd!
  autocmd VimLeavePre * if exists("*redo#watching") | call redo#stop() | endif
augroup END
