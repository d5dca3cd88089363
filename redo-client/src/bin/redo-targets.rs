//! `redo-targets`: see `redo_client::Tool::Targets`.
#![cfg_attr(not(test), no_main)]
redo_client::entry!(redo_client::Tool::Targets);
