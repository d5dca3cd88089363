//! `redo-always`: see `redo_client::Tool::Always`.
#![cfg_attr(not(test), no_main)]
redo_client::entry!(redo_client::Tool::Always);
