//! `redo` and every `redo-*` command: one program, run as the one it is called by (see
//! `redo_client::Tool::called_as`).
#![cfg_attr(not(test), no_main)]
redo_client::entry!();
