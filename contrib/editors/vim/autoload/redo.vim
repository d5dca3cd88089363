" redo support for Vim 8+ and Neovim: the shared errorformat and the :RedoWatch job.
" See README.md beside this directory.

let s:save_cpo = &cpo
set cpo&vim

" Compiler messages (gcc, clang and alike), with the `[target] ` prefix redo puts before
" each line of a .do's stderr when several jobs may run at once, then without it; redo's own
" failure lines `err  . target (x.do) (0.012s): exit status 1`, with the .do as the file and
" the target as the module (`%trr` takes the `e` of `err` as the type: an error); everything
" else is dropped.
function! redo#errorformat() abort
  return join([
        \ '[%*[^]]] %f:%l:%c: fatal %trror: %m',
        \ '[%*[^]]] %f:%l:%c: %trror: %m',
        \ '[%*[^]]] %f:%l:%c: %tarning: %m',
        \ '[%*[^]]] %f:%l:%c: %tote: %m',
        \ '[%*[^]]] %f:%l: %trror: %m',
        \ '[%*[^]]] %f:%l: %tarning: %m',
        \ '%f:%l:%c: fatal %trror: %m',
        \ '%f:%l:%c: %trror: %m',
        \ '%f:%l:%c: %tarning: %m',
        \ '%f:%l:%c: %tote: %m',
        \ '%f:%l: %trror: %m',
        \ '%f:%l: %tarning: %m',
        \ '%trr%*[. ]%o (%f) (%*[0-9.]s): %m',
        \ '%trr%*[. ]%o (%f): %m',
        \ '%-G%.%#',
        \ ], ',')
endfunction

" The line redo prints when a round of `redo --watch` is over.
let s:round_end = '^redo: \%(built\|failed\); watching '

let s:job = v:null
let s:lines = []
let s:partial = {'stdout': '', 'stderr': ''}
let g:redo_watch_rounds = 0
let g:redo_watch_status = ''

function! s:Line(line) abort
  let l = substitute(a:line, '\r$', '', '')
  if l =~# s:round_end
    call s:RoundOver(l)
  else
    call add(s:lines, l)
  endif
endfunction

" A round is over: its output becomes the quickfix list.
function! s:RoundOver(status) abort
  let g:redo_watch_rounds += 1
  let g:redo_watch_status = a:status
  call setqflist([], 'r', {'lines': s:lines, 'efm': redo#errorformat(),
        \ 'title': 'redo --watch: ' . a:status})
  let s:lines = []
  if get(g:, 'redo_watch_cwindow', 0)
    cwindow
  endif
  if exists('#User#RedoWatchRound')
    doautocmd <nomodeline> User RedoWatchRound
  endif
  redraw
  echomsg a:status
endfunction

" Neovim hands over chunks: the first item continues the last chunk's unfinished line, the
" last item is the start of the next one.
function! s:NvimData(id, data, event) abort
  let data = copy(a:data)
  let data[0] = s:partial[a:event] . data[0]
  let s:partial[a:event] = remove(data, -1)
  for l in data
    call s:Line(l)
  endfor
endfunction

function! s:VimLine(channel, line) abort
  call s:Line(a:line)
endfunction

function! s:Exited(...) abort
  let s:job = v:null
  if !empty(s:lines)
    call setqflist([], 'r', {'lines': s:lines, 'efm': redo#errorformat(),
          \ 'title': 'redo --watch: stopped'})
    let s:lines = []
  endif
endfunction

" :RedoWatch [targets]: `redo --watch targets` in the background (in Vim's current directory).
function! redo#watch(args) abort
  call redo#stop()
  let cmd = [get(g:, 'redo_command', 'redo'), '--watch'] + split(a:args)
  let s:lines = []
  let s:partial = {'stdout': '', 'stderr': ''}
  let g:redo_watch_rounds = 0
  let g:redo_watch_status = 'redo --watch: starting'
  if has('nvim')
    let s:job = jobstart(cmd, {
          \ 'on_stdout': function('s:NvimData'),
          \ 'on_stderr': function('s:NvimData'),
          \ 'on_exit': function('s:Exited')})
    if s:job <= 0
      let s:job = v:null
      echoerr 'RedoWatch: cannot start ' . join(cmd)
    endif
  else
    let s:job = job_start(cmd, {
          \ 'in_io': 'null',
          \ 'out_mode': 'nl', 'err_mode': 'nl',
          \ 'out_cb': function('s:VimLine'),
          \ 'err_cb': function('s:VimLine'),
          \ 'exit_cb': function('s:Exited')})
    if job_status(s:job) ==# 'fail'
      let s:job = v:null
      echoerr 'RedoWatch: cannot start ' . join(cmd)
    endif
  endif
endfunction

" :RedoWatchStop: interrupt the watch, as Ctrl-C would.
function! redo#stop() abort
  if s:job is v:null
    return
  endif
  if has('nvim')
    call jobstop(s:job)
  else
    call job_stop(s:job, 'int')
  endif
  let s:job = v:null
endfunction

function! redo#watching() abort
  return s:job isnot v:null
endfunction

let &cpo = s:save_cpo
unlet s:save_cpo
