//! `redo-log`: see `redo_client::Tool::Log`.
#![cfg_attr(not(test), no_main)]
redo_client::entry!(redo_client::Tool::Log);
